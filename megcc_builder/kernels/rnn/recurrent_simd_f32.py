"""LSTM / GRU / RNN through a vector vocabulary: both products (all steps' X * W^T, each
step's H * R^T) by the packed GEMM of the level (codegen/packed_gemm.py) with W^T and R^T
pre-packed in its column panels, and the gate math VW hidden units at a time with the
vector sigmoid/tanh/exp of codegen/vmath.py."""
from __future__ import annotations

from typing import Optional

from ...ir import Graph, Op
from ...isa import IsaSpec
from ..cost import gemm_cycles
from ..registry import implements
from .lanes import Vector
from .problem import applies, rnn_problem
from .recurrent import lower_rnn


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    if isa.vec("f32").math is None or isa.core is None:
        return "no vector math on this level"
    return applies(op, graph)


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    p = rnn_problem(op, graph)
    s = isa.vec("f32").gemm
    proj = gemm_cycles(p.S * p.B, p.N, p.I, 0.5, 1, s, isa.core)
    step = gemm_cycles(p.B, p.N, p.H, 0.5, 1, s, isa.core)
    return p.dirs * (proj + p.S * step)


def _label(isa: IsaSpec) -> str:
    return f"{isa.vec('f32').gemm.name} packed GEMM recurrent"


@implements("LSTM", "GRU", "RNN", requires="f32.gemm", applies=_applies, cost=_cost,
            label=_label)
def emit(op: Op, graph: Graph, isa: IsaSpec):
    vs = isa.vec("f32")
    return lower_rnn(op, graph, vs.gemm, Vector(vs.math), vs.gemm.name, _label(isa))
