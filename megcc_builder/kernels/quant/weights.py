"""What the int8 convolution kernels with compile-time weights share: the checks that the
weights (and their zero point) are constants, and the weights centred on their zero point
(per tensor or per output channel), the int32 values every packed layout starts from."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...ir import Graph, Op
from ...ir.quant import operand


def is_depthwise(op: Op, graph: Graph) -> bool:
    """One filter per channel (QLinearConv: group == output channels, one input channel each)."""
    w = graph.tensors[op.inputs[3]]
    group = int(op.attrs.get("group", 1))
    return group > 1 and w.shape[0] == group and w.shape[1] == 1


def not_constant(op: Op, graph: Graph) -> Optional[str]:
    """Why the weights cannot be packed at compile time (None if they can)."""
    if not graph.tensors[op.inputs[3]].is_const:
        return "weights not constant"
    zp = operand(graph, op, 5)
    if zp is not None and not graph.tensors[zp].is_const:
        return "weight zero point not constant"
    return None


def centred_weights(op: Op, graph: Graph) -> np.ndarray:
    """[OC][ICG * taps] int32 (the weight tensor's order): the constant weights minus their
    zero point (one, or one per output channel); within [-255, 255]."""
    w = graph.tensors[op.inputs[3]]
    oc = w.shape[0]
    wv = np.asarray(w.data).reshape(oc, -1).astype(np.int32)
    zp = operand(graph, op, 5)
    wz = np.zeros(oc, np.int32) if zp is None else \
        np.broadcast_to(np.asarray(graph.tensors[zp].data).reshape(-1).astype(np.int32), (oc,))
    return wv - wz[:, None]
