"""Layering of the megcc_builder package, checked by reading the source (nothing is
imported): no import cycles, and the IR depends on nothing else in the package.

The module graph has an edge A -> B for every import statement in A naming B, wherever it
sits (module level or inside a function: a function-level import only hides a cycle, it
does not remove it). Rules for what an import names:
- relative imports are resolved against A's package;
- `from pkg import name` names the submodule pkg.name when that is a module of ours, else
  pkg itself (its __init__.py, which defines `name`);
- importing a submodule is NOT counted as importing its parent packages. Python does run
  the parents' __init__.py first, but always before the submodule, so a package __init__
  that imports its own submodules (kernels/__init__.py) is no cycle with them. A submodule
  that imports a *name* from its package's __init__ (`from . import LOWERINGS`) does get
  an edge to the __init__, and then is a cycle if the __init__ imports it back.
A cycle is a strongly connected component of more than one module.
"""
from __future__ import annotations

import ast
import os
from typing import Dict, List, Set

PACKAGE = "megcc_builder"
ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), PACKAGE)


# The IR is the bottom layer: it may import only itself (and third-party packages).
IR_PACKAGE = PACKAGE + ".ir"


def _modules() -> Dict[str, str]:
    """Module name -> file path of every .py file in the package."""
    found = {}
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), os.path.dirname(ROOT))
            parts = rel[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = os.path.join(dirpath, f)
    return found


def _package_of(module: str, path: str) -> str:
    return module if path.endswith("__init__.py") else module.rpartition(".")[0]


def _imports(module: str, path: str, modules: Dict[str, str]) -> Set[str]:
    """The package modules that `module` imports anywhere in its source."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    named = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(module, path)
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = base + ("." + node.module if node.module else "")
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                named.add(sub if sub in modules else target)
    return {n for n in named if n == PACKAGE or n.startswith(PACKAGE + ".")}


def import_graph() -> Dict[str, Set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def strongly_connected(graph: Dict[str, Set[str]]) -> List[Set[str]]:
    """Tarjan's algorithm (iterative: the graph is small, but recursion limits are not)."""
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                result.append(component)
    return result


def test_graph_sees_the_package():
    graph = import_graph()
    assert f"{PACKAGE}.compiler" in graph and f"{IR_PACKAGE}.infer" in graph
    # the resolution rules above, on imports we know
    assert f"{IR_PACKAGE}.graph" in graph[f"{IR_PACKAGE}.infer"]
    assert f"{PACKAGE}.kernels.conv" in graph[f"{PACKAGE}.kernels"]


def test_no_import_cycles():
    cycles = [c for c in strongly_connected(import_graph()) if len(c) > 1]
    assert not cycles, f"import cycles among package modules: {[sorted(c) for c in cycles]}"


def test_ir_imports_only_ir():
    bad = []
    for module, targets in import_graph().items():
        if module != IR_PACKAGE and not module.startswith(IR_PACKAGE + "."):
            continue
        for target in sorted(targets):
            if target != IR_PACKAGE and not target.startswith(IR_PACKAGE + "."):
                bad.append(f"{module} imports {target}")
    assert not bad, "the IR must not depend on the rest of the package: " + "; ".join(bad)


def test_strongly_connected_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    comps = [c for c in strongly_connected(graph) if len(c) > 1]
    assert comps == [{"a", "b", "c"}]
