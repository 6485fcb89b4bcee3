"""FusedElementwise: a chain of element-wise ops merged by passes/fuse.py into one
expression (ir/expr.py) evaluated in one loop."""
from __future__ import annotations

from typing import List

import numpy as np

from ..graph import Graph, Op, Tensor
from .base import Attr, define
from .nchw44 import BLOCK_OF
from ..symbolic import broadcast_shapes


def infer_fused(graph: Graph, op: Op) -> List[Tensor]:
    """Multidirectional (numpy) broadcast of the inputs, in the first input's dtype (the
    pass fuses float32 chains only). The output is NCHW44 (NCHW88) when a runtime input is:
    the layout pass feeds blocked tensors and constants re-laid out to broadcast against
    them."""
    ins = [graph.tensors[i] for i in op.inputs if i]
    shape = broadcast_shapes(*(t.shape for t in ins))
    layout = next((t.layout for t in ins if t.layout in BLOCK_OF and not t.is_const), "nchw")
    return [Tensor(op.outputs[0], shape, ins[0].dtype, layout=layout)]


FUSED_ELEMENTWISE = define(
    "FusedElementwise",
    "y = expr(inputs...), element by element with broadcasting",
    [Attr("expr", "the expression tree over the op's inputs (ir/expr.py)"),
     Attr("chain", "the fused op types joined by '+', for notes and debugging", "")],
    infer_fused)
