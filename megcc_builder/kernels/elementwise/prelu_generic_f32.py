"""PRelu (float32): the slope broadcast per channel or element."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import View
from ...ir import Graph, Op, Tensor
from ..registry import F32, implements
from .generic import elementwise_instr


@implements("PRelu", dtypes=F32)
def lower_prelu(op: Op, graph: Graph):
    # x >= 0 ? x : x * slope, with the slope broadcast like any element-wise operand.
    x, slope = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    items, slope_name = [], op.inputs[1]
    if graph.opset < 7 and len(slope.shape) == 1 and len(x.shape) > 2 \
            and slope.shape[0] == x.shape[1] and slope.shape[0] != 1:
        # PRelu-6: a 1-D slope is per channel (axis 1), not NumPy-aligned to the last axis
        slope_name = graph.unique_name(op.inputs[1] + "_per_channel")
        graph.add_tensor(Tensor(slope_name, (slope.shape[0],) + (1,) * (len(x.shape) - 2),
                                slope.dtype, data=None if not slope.is_const else
                                np.asarray(slope.data).reshape(-1, *[1] * (len(x.shape) - 2))))
        if not slope.is_const:
            items.append(View(slope_name, op.inputs[1]))
    return items + [elementwise_instr(("leaky", ("in", 0), ("in", 1)), [op.inputs[0], slope_name],
                                      op.outputs[0], graph, note="PRelu")]
