"""Compiler side of dynamic plans: a Plan traced with symbolic dims -> `DynamicPlan`.

The compile of a model with run-time dimensions is one ordinary compile at the symbols'
hints, where every size, offset and kernel param that depends on a symbol is a `Sym`
(ir/symbolic.py). This module turns those into the expressions of `emit/dynamic.py`
(docs/dynamic-shapes.md): symbols, guards, tensor dims, view offsets, params and arena
buffers, in the blob's tensor numbering. It also refuses, with the node to blame, plans
that pinned a symbol to its hint (the dimension cannot stay dynamic) and plans whose sizes
could pass 4 GiB within the bounds.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

from .emit.dynamic import VALUE_INPUT, VALUE_SHAPE, Buffer, DynamicPlan, Symbol, Value
from .ir import CompileError, Graph
from .ir import symbolic
from .ir.symbolic import Guard, Sym, hint

MAX_BYTES = 0xFFFFFFFF


def bounds_of(graph: Graph) -> Dict[str, Tuple[int, int]]:
    return {n: (lo, hi) for n, (lo, hi, _) in graph.symbols.items()}


def refuse_pins(graph: Graph, guards: List[Guard]) -> None:
    """A guard that fixes a symbol's value means the plan only works at the hint: say which
    node needed the value (the user then gives that dimension in --input-shapes)."""
    for g in guards:
        syms = symbolic._symbols_of(g.expr, set())
        if g.pins and not (syms <= set(graph.value_symbols) and not g.specialised):
            # (an equality on a value symbol is a run-time check of what it computed)
            sym = sorted(syms)[0]
            node = f"node {g.node}" if g.node else "the compiler"
            raise CompileError(f"dimension {sym} cannot stay dynamic: {node} needs its value "
                               f"at compile time ({g.why or 'a decision on ' + g.text()}); "
                               f"give it in --input-shapes", graph.source)


def guard_message(g: Guard) -> str:
    """What the runtime says when a shape violates the guard (and the manifest lists)."""
    return f"node {g.node}: needs {g.text()}" if g.node else f"needs {g.text()}"


def check_upper_bounds(graph: Graph, names, producers=None) -> None:
    """Every tensor stays addressable (< 4 GiB) at the symbols' upper bounds. Symbols whose
    upper bound nobody gave get a smaller one where needed: the largest is halved until the
    tensor fits (ties: the leading, batch-like axis first, then by name)."""
    producers = producers if producers is not None else graph.producers()
    for name in names:
        t = graph.tensors[name]
        nbytes = t.nbytes
        if not isinstance(nbytes, Sym) or nbytes.symbols & graph.shape_symbols:
            continue  # (computed shapes are placed at a byte cap, ir/value_shapes.py)
        top = symbolic.upper_bound(nbytes, bounds_of(graph))
        while top > MAX_BYTES and _lower_a_default_bound(graph, nbytes.symbols):
            top = symbolic.upper_bound(nbytes, bounds_of(graph))
        if top > MAX_BYTES:
            raise graph.error(f"tensor '{name}' of shape {symbolic.shape_text(t.shape)} "
                              f"({t.dtype}) can take {int(top)} bytes within the bounds of its "
                              "dimensions; a compiled model addresses at most 4 GiB - 1: give "
                              "smaller upper bounds (e.g. \"W<=2048\" in --input-shapes)",
                              producers.get(name))


def _lower_a_default_bound(graph: Graph, names) -> bool:
    where = defining_dims(graph)
    free = [n for n in names if n in graph.default_bounded
            and graph.symbols[n][1] // 2 >= max(graph.symbols[n][0], graph.symbols[n][2])]
    if not free:
        return False
    pick = min(free, key=lambda n: (-graph.symbols[n][1], where.get(n, (0, 0))[1], n))
    lo, hi, h = graph.symbols[pick]
    graph.symbols[pick] = (lo, hi // 2, h)
    s = symbolic.current()
    if s is not None:
        s.bounds[pick] = (lo, hi // 2)
    return True


def defining_dims(graph: Graph) -> Dict[str, Tuple[int, int]]:
    """Symbol -> (input index, axis) of the first input dimension that is exactly it."""
    found: Dict[str, Tuple[int, int]] = {}
    for i, name in enumerate(graph.inputs):
        for axis, d in enumerate(graph.tensors[name].shape):
            if isinstance(d, Sym) and len(d.symbols) == 1:
                s = next(iter(d.symbols))
                if s not in found and d.poly == Sym.symbol(s, 1).poly:
                    found[s] = (i, axis)
    return found


def build(graph: Graph, plan, blob, index: Dict[str, int], guards: List[Guard],
          shapes: List[tuple], view_offsets: Dict[int, object], params: List[list]
          ) -> DynamicPlan:
    """The DynamicPlan of `blob` (built by compiler.plan_to_blob from `plan`, which wrote
    hints where `shapes`, `view_offsets` and `params` (by blob index) hold Syms; `index`
    maps tensor names to blob tensor indices)."""
    where = defining_dims(graph)
    for buf in plan.memory.buffers:  # workspaces are only known now: shrink default bounds
        size = buf.expr                # for them as for tensors (check_upper_bounds)
        while isinstance(size, Sym) and \
                symbolic.upper_bound(size, bounds_of(graph)) > MAX_BYTES and \
                _lower_a_default_bound(graph, size.symbols):
            pass
    # value symbols after the input symbols, in the order their instructions define them
    defined_at = _defining_instrs(graph, blob, index)
    names = sorted((s for s in graph.symbols if s not in graph.value_symbols),
                   key=lambda s: where.get(s, (1 << 30, 0)))
    missing = [s for s in names if s not in where]
    if missing:
        raise CompileError(f"dimension {missing[0]} is not an input dimension of its own",
                           graph.source)
    names += sorted(defined_at, key=lambda s: (defined_at[s], s))
    dyn = DynamicPlan()
    sym_index = {s: k for k, s in enumerate(names)}
    for s in names:
        lo, hi, _ = graph.symbols[s]
        dyn.symbols.append(Symbol(s, lo, hi, *where[s]) if s in where else
                           Symbol(s, lo, hi, VALUE_INPUT,
                                  VALUE_SHAPE if s in graph.shape_symbols else 0))

    def expr(x) -> int:
        try:
            return dyn.expr_index(symbolic.program(x, sym_index))
        except symbolic.ExprError as exc:
            raise CompileError(f"expression {x!r} cannot be stored: {exc}", graph.source) \
                from None

    for g in guards:
        dyn.guards.append((dyn.expr_index(symbolic.guard_program(g, sym_index)),
                           guard_message(g)))
    for t_index, bt in enumerate(blob.tensors):
        for axis, d in enumerate(shapes[t_index]):
            if isinstance(d, Sym):
                dyn.dims.append((t_index, axis, expr(d)))
    for t_index, off in sorted(view_offsets.items()):
        if isinstance(off, Sym):
            dyn.view_offsets.append((t_index, expr(off)))
    for i_index, words in enumerate(params):
        for k, p in enumerate(words):
            if isinstance(p, Sym):
                dyn.params.append((i_index, k, expr(p)))
    bounds = bounds_of(graph)
    for buf in plan.memory.buffers:
        members = tuple(sorted(index[m] for m in buf.members if m in index))
        size = buf.expr
        if symbolic.upper_bound(size, bounds) > MAX_BYTES:  # e.g. a workspace
            raise CompileError(f"buffer '{buf.name}' ({size!r} bytes) can pass 4 GiB - 1 within "
                               "the bounds of its dimensions: give smaller upper bounds",
                               graph.source)
        dyn.buffers.append(Buffer(expr(size), buf.first, buf.last, members))
    for s in names[len(names) - len(defined_at):]:
        tensor, element, cap = graph.value_symbols[s]
        dyn.values.append(Value(sym_index[s], defined_at[s], index[tensor], element, expr(cap)))
    _check_members(dyn, blob)
    return dyn


def _defining_instrs(graph: Graph, blob, index: Dict[str, int]) -> Dict[str, int]:
    """Value symbol -> the instruction writing its count tensor (ir/value_shapes.py)."""
    out: Dict[str, int] = {}
    for s, (tensor, _, _) in graph.value_symbols.items():
        t = index.get(tensor)
        writers = [i for i, ins in enumerate(blob.instrs) if t is not None and t in ins.outputs]
        if len(writers) != 1:
            raise CompileError(f"the count of value symbol {s} ('{tensor}') is written by "
                               f"{len(writers)} instructions (one expected)", graph.source)
        out[s] = writers[0]
    return out


def _check_members(dyn: DynamicPlan, blob) -> None:
    seen: Dict[int, int] = {}
    for b, buf in enumerate(dyn.buffers):
        for m in buf.members:
            if m in seen:
                raise AssertionError(f"tensor {m} in buffers {seen[m]} and {b}")
            seen[m] = b
    for t_index, bt in enumerate(blob.tensors):
        if bt.storage == "arena" and t_index not in seen:
            raise AssertionError(f"arena tensor {bt.name} is in no buffer")


def hints(values) -> list:
    return [hint(v) for v in values]
