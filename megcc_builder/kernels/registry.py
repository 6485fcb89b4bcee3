"""The kernel registry: which implementations exist, and which one an op gets.

Every implementation declares, where it is defined, what it serves and when:

    @implements("Conv", dtypes=F32, layout="nchw", requires="f32.gemm",
                applies=gemm_applies, cost=gemm_cost, label=gemm_label)
    def emit_gemm_conv(op, graph, isa): ...

- `ops`: the IR op types it computes;
- `dtypes`: the element types its typed inputs (`typed_inputs`, input 0 by default) may
  have; None = any (the implementation handles every dtype itself);
- `layout`: the layout of the output it writes ("nchw", "nchw44"); None = any;
- `requires`: what the build's ISA level must offer: "" (portable C99), a kernel tag
  ("avx2", "neon", "neon64": isa.KernelTag) or a vector vocabulary ("f32.gemm",
  "f32.direct", "f32.elementwise": isa.VectorSet);
- `applies(op, graph, isa)`: None if it can compute this op, else the reason it cannot;
- `cost(op, graph, isa)`: estimated cycles (kernels/cost.py); needed wherever two
  implementations can apply to the same op;
- `label`: how notes and `megcc inspect` name it (a string, or a function of the level);
- `name`: unique; by default the module's path in kernels/ ("conv.gemm_simd_f32") when
  the emitter is called `emit`, else that path and the emitter's name;
- the emitter: the instructions (kernels + params + workspace) computing the op; it takes
  (op, graph), or (op, graph, isa) when it reads the level's vector vocabularies.

Selection (`lower`) filters by op type, ISA level, dtype, layout and `applies`, then takes
the cheapest by cost (ties: portable first, then in registration order). With a choice to
make, the chosen instruction's note records every estimate and why the others were not
taken, which `megcc inspect` prints. Adding a variant is one new module that registers
itself (and is imported by its family's __init__).
"""
from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

from ..ir import symbolic
from ..ir import Graph, Op
from ..isa import IsaSpec


F32 = ("float32",)

Applies = Callable[[Op, Graph, IsaSpec], Optional[str]]
Cost = Callable[[Op, Graph, IsaSpec], float]


@dataclass(frozen=True)
class Implementation:
    name: str                       # module-qualified, unique: "conv.gemm_simd_f32"
    ops: Tuple[str, ...]
    emit: Callable[[Op, Graph, IsaSpec], list]
    dtypes: Optional[Tuple[str, ...]] = None
    typed_inputs: Tuple[int, ...] = (0,)
    layout: Optional[str] = None
    requires: str = ""
    applies: Optional[Applies] = None
    cost: Optional[Cost] = None
    label: Union[str, Callable[[IsaSpec], str]] = ""

    def label_for(self, isa: IsaSpec) -> str:
        if callable(self.label):
            return self.label(isa)
        return self.label or ("portable C" if not self.requires else self.name)

    def rejection(self, op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
        """None if this implementation can compute `op` on `isa`, else why not."""
        if not provides(isa, self.requires):
            return f"needs {self.requires}"
        if self.dtypes is not None:
            got = typed_dtypes(self, op, graph)
            if any(dt not in self.dtypes for dt in got):
                return f"on {'/'.join(got)} (computes {'/'.join(self.dtypes)})"
        if self.layout is not None and op.outputs and op.outputs[0] in graph.tensors \
                and graph.tensors[op.outputs[0]].layout != self.layout:
            return f"writes {self.layout}"
        return self.applies(op, graph, isa) if self.applies else None


REGISTRY: Dict[str, List[Implementation]] = {}
# implementation names `only` restricts selection to (tests: run one implementation)
_ONLY: List[Tuple[str, ...]] = []


def provides(isa: IsaSpec, requirement: str) -> bool:
    """Whether a level offers what an implementation requires (see the module doc)."""
    if "." in requirement:
        elem, role = requirement.split(".", 1)
        return getattr(isa.vec(elem), role) is not None
    return isa.has(requirement)


def typed_dtypes(impl: Implementation, op: Op, graph: Graph) -> List[str]:
    return [graph.tensors[op.inputs[k]].dtype for k in impl.typed_inputs
            if k < len(op.inputs) and op.inputs[k]]


def implements(*ops: str, dtypes: Optional[Tuple[str, ...]] = None,
               typed_inputs: Tuple[int, ...] = (0,), layout: Optional[str] = None,
               requires: str = "", applies: Optional[Applies] = None,
               cost: Optional[Cost] = None, label: Union[str, Callable] = "",
               name: str = ""):
    """Register the decorated emitter as an implementation of `ops` (see the module doc)."""

    def register(fn):
        emit = fn
        if len(inspect.signature(fn).parameters) == 2:  # needs nothing of the level
            emit = lambda op, graph, isa: fn(op, graph)  # noqa: E731
        # the module's name ("conv.gemm_simd_f32") if the emitter is its `emit`
        module = fn.__module__.split(".kernels.", 1)[-1]
        default = module if fn.__name__ == "emit" else f"{module}.{fn.__name__}"
        impl = Implementation(name or default, tuple(ops), emit, dtypes,
                              typed_inputs, layout, requires, applies, cost, label)
        for op_type in ops:
            REGISTRY.setdefault(op_type, []).append(impl)
        return fn

    return register


def has_kernel(op_type: str) -> bool:
    """Whether some implementation computes `op_type` (on some level)."""
    return op_type in REGISTRY


@contextlib.contextmanager
def only(*names: str) -> Iterator[None]:
    """Within the block, an op that one of the named implementations serves may get only
    those (the others are rejected as "not chosen"): how tests run every implementation of
    an operator on the same cases. Unknown names are an error."""
    known = {impl.name for impls in REGISTRY.values() for impl in impls}
    unknown = sorted(set(names) - known)
    if unknown:
        raise KeyError(f"no implementation named {', '.join(unknown)}")
    _ONLY.append(names)
    try:
        yield
    finally:
        _ONLY.pop()


def implementations(op_type: str) -> List[Implementation]:
    return list(REGISTRY.get(op_type, []))


def candidates(op: Op, graph: Graph, isa: IsaSpec):
    """(applicable implementations, [(rejected implementation, reason)]) for `op`."""
    ok, rejected = [], []
    impls = REGISTRY.get(op.type, [])
    chosen = [n for names in _ONLY for n in names]
    restrict = chosen and any(impl.name in chosen for impl in impls)
    for impl in impls:
        reason = "not chosen" if restrict and impl.name not in chosen else None
        reason = reason or impl.rejection(op, graph, isa)
        if reason is None:
            ok.append(impl)
        else:
            rejected.append((impl, reason))
    return ok, rejected


def _mcyc(c: float) -> str:
    return f"{c / 1e6:.3f} Mcyc"


def _refusal(op: Op, graph: Graph, rejected) -> str:
    """The error when nothing applies: the dtype message users know, else every reason."""
    typed = [impl for impl, _ in rejected if impl.dtypes is not None]
    if typed and all(impl.dtypes is not None for impl, _ in rejected):
        got = "/".join(typed_dtypes(typed[0], op, graph))
        known = sorted({dt for impl in typed for dt in impl.dtypes})
        return (f"{op.type} on {got} is not supported ({', '.join(known)} "
                f"{'is' if len(known) == 1 else 'are'})")
    return "no kernel applies: " + "; ".join(f"{impl.name} {why}" for impl, why in rejected)


def lower(op: Op, graph: Graph, isa: IsaSpec) -> list:
    """The instructions of the cheapest implementation of `op` on `isa`."""
    if op.type not in REGISTRY:
        raise graph.error("operator is not supported", op)
    ok, rejected = candidates(op, graph, isa)
    if not ok:
        raise graph.error(_refusal(op, graph, rejected), op)
    if len(ok) == 1:
        return _tagged(ok[0].emit(op, graph, isa), ok[0])
    missing = [impl.name for impl in ok if impl.cost is None]
    if missing:
        raise AssertionError(f"{op.type}: {', '.join(missing)} can apply beside another "
                             "implementation but has no cost estimate")
    order = {impl: k for k, impl in enumerate(ok)}
    with symbolic.hint_only():  # speed only: a symbolic extent is costed at its hint
        costs = {impl: impl.cost(op, graph, isa) for impl in ok}
    ranked = sorted(ok, key=lambda impl: (costs[impl], impl.requires != "", order[impl]))
    session, node = symbolic.current(), op.name or op.outputs[0]
    if session is not None:
        wanted = session.replay.get(node)
        ranked.sort(key=lambda impl: impl.name != wanted)  # stable: the rest by cost
        session.choices[node] = ranked[0].name
    best = ranked[0]
    items = best.emit(op, graph, isa)
    why = (f"cost model [{isa.name}]: {best.label_for(isa)} ~{_mcyc(costs[best])}; rejected "
           + ", ".join(f"{impl.label_for(isa)} ~{_mcyc(costs[impl])}" for impl in ranked[1:]))
    shown = [(impl, reason) for impl, reason in rejected if provides(isa, impl.requires)]
    if shown:
        why += "; not applicable: " + ", ".join(f"{impl.label_for(isa)} ({reason})"
                                                 for impl, reason in shown)
    for item in items:
        if hasattr(item, "note"):
            item.note = f"{item.note}; {why}" if item.note else why
    return _tagged(items, best)


def _tagged(items: list, impl: Implementation) -> list:
    """Record on each instruction which implementation emitted it (inspect, tests)."""
    for item in items:
        if hasattr(item, "impl"):
            item.impl = impl.name
    return items
