"""enable_fixed_point_requant: the integer convolutions, matrix products, element-wise
QLinearAdd / QLinearMul and average pools of a build requantize in fixed point (Q31
multipliers and shifts, CMSIS-NN's arithmetic: no float unit needed;
kernels/quant/requant.py), instead of the model's own
float requantization. Marks each eligible op with the attribute requant="fixed"; an op
stays in float mode (and is listed with the reason) when its activation needs the real
value (Sigmoid, HSwish, Tanh), its scales are not compile-time constants, its output is
float (QGemm without y_scale) or its multiplier is outside the Q31 range."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..ir import Graph, Op
from ..ir.quant import avgpool_problem, fixed_binary_problem, fixed_point_problem, operand

FIXED_ACTIVATIONS = ("", "Relu", "Clip")
# op type -> (x scale, w scale, y scale) input slots
SCALE_SLOTS = {"QLinearConv": (1, 4, 6), "QLinearMatMul": (1, 4, 6), "QGemm": (1, 4, 7)}
SCALES = tuple(SCALE_SLOTS)
# int8 element-wise ops with an integer form (kernels/quant/elementwise_generic_s8.py)
ELEMENTWISE = ("QLinearAdd", "QLinearMul")
# quantized average pools: the window sum, one multiplier per window size (pool_generic_s8)
POOLS = ("QLinearAveragePool", "QLinearGlobalAveragePool")


def _pool_reason(op: Op, graph: Graph) -> str:
    x = graph.tensors[op.inputs[0]]
    if op.type == "QLinearGlobalAveragePool":
        if op.attrs.get("channels_last", 0):
            return "channels_last"
        if not all(isinstance(d, int) for d in x.shape[2:]):
            return "window size known only at run time"
        return avgpool_problem(op, graph, [int(np.prod(x.shape[2:], dtype=np.int64))])
    ks = [int(k) for k in op.attrs.get("kernel_shape", [])]
    return avgpool_problem(op, graph, range(1, int(np.prod(ks, dtype=np.int64)) + 1))


def _reason(op: Op, graph: Graph) -> str:
    act = op.attrs.get("activation", "") or ""
    if act not in FIXED_ACTIVATIONS:
        return f"activation {act} is computed on the real value"
    if op.type in ELEMENTWISE:
        return fixed_binary_problem(op, graph)
    if op.type in POOLS:
        return _pool_reason(op, graph)
    slots = SCALE_SLOTS[op.type]
    if operand(graph, op, slots[2]) is None:
        return "float output"
    vals = []
    for k in slots:
        t = graph.tensors[op.inputs[k]]
        if not t.is_const:
            return "scales known only at run time"
        vals.append(np.asarray(t.data, np.float64).reshape(-1))
    if vals[0].size != 1 or vals[2].size != 1:
        return "input or output scale not per tensor"
    alpha = float(op.attrs.get("alpha", 1.0)) if op.type == "QGemm" else 1.0
    return fixed_point_problem(alpha * vals[0][0] * vals[1] / vals[2][0])


def use_fixed_point_requant(graph: Graph) -> List[Tuple[str, str, str]]:
    """Mark the eligible ops; records (node, op type, reason) of those left in float mode
    in graph.fixed_point_notes (`megcc inspect` prints them) and returns them."""
    left = []
    for op in graph.ops:
        if op.type not in SCALES + ELEMENTWISE + POOLS:
            continue
        why = _reason(op, graph)
        if why:
            left.append((op.name, op.type, why))
        else:
            op.attrs["requant"] = "fixed"
    graph.fixed_point_notes = graph.fixed_point_notes + left
    return left
