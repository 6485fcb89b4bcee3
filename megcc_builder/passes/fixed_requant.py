"""enable_fixed_point_requant: the integer convolutions, matrix products and element-wise
QLinearAdd / QLinearMul of a build requantize in fixed point (a Q31 multiplier and a shift per output channel, CMSIS-NN's
arithmetic: no float unit needed; kernels/quant/requant.py), instead of the model's own
float requantization. Marks each eligible op with the attribute requant="fixed"; an op
stays in float mode (and is listed with the reason) when its activation needs the real
value (Sigmoid, HSwish, Tanh), its scales are not compile-time constants, its output is
float (QGemm without y_scale) or its multiplier is outside the Q31 range."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..ir import Graph, Op
from ..ir.quant import fixed_binary_problem, fixed_point_problem, operand

FIXED_ACTIVATIONS = ("", "Relu", "Clip")
# op type -> (x scale, w scale, y scale) input slots
SCALES = {"QLinearConv": (1, 4, 6), "QLinearMatMul": (1, 4, 6), "QGemm": (1, 4, 7)}
# int8 element-wise ops with an integer form (kernels/quant/elementwise_generic_s8.py)
ELEMENTWISE = ("QLinearAdd", "QLinearMul")


def _reason(op: Op, graph: Graph) -> str:
    act = op.attrs.get("activation", "") or ""
    if act not in FIXED_ACTIVATIONS:
        return f"activation {act} is computed on the real value"
    if op.type in ELEMENTWISE:
        return fixed_binary_problem(op, graph)
    slots = SCALES[op.type]
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
        if op.type not in SCALES and op.type not in ELEMENTWISE:
            continue
        why = _reason(op, graph)
        if why:
            left.append((op.name, op.type, why))
        else:
            op.attrs["requant"] = "fixed"
    graph.fixed_point_notes = graph.fixed_point_notes + left
    return left
