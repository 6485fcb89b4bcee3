"""LSTM / GRU / RNN in portable C: the input projection and the per-step recurrent
products through megcc_gemm_nn (loops the C compiler vectorises), weights transposed at
compile time, the gate math one element at a time with libm's functions."""
from __future__ import annotations

from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .problem import applies
from .recurrent import lower_rnn, rnn_macs


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    per_mac = isa.core.portable_fc if isa.core is not None else 0.5
    return rnn_macs(op, graph) * per_mac


@implements("LSTM", "GRU", "RNN", applies=lambda op, graph, isa: applies(op, graph),
            cost=_cost, label="portable C")
def emit(op: Op, graph: Graph):
    return lower_rnn(op, graph, None, None, "c", "portable C")
