"""Constant folding of the quantization ops with onnxruntime's formulas (ir/quant.py): the
onnx reference evaluator implements QuantizeLinear/DequantizeLinear only from opset 19."""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from .graph import Graph, Op
from .quant import QRANGE, dequantize, quantize


def _axis(op: Op, rank: int) -> int:
    axis = int(op.attrs.get("axis", 1))
    return axis + rank if axis < 0 and rank else axis


def evaluate_quant_op(graph: Graph, op: Op, feeds: dict) -> Optional[List[np.ndarray]]:
    """The outputs of a constant QuantizeLinear / DequantizeLinear, or None for other ops
    (and for forms left to the reference evaluator: block quantization, float8)."""
    if op.type not in ("QuantizeLinear", "DequantizeLinear") or op.attrs.get("block_size"):
        return None
    vals = [feeds.get(n) if n else None for n in op.inputs] + [None] * 3
    x, scale, zp = vals[0], vals[1], vals[2]
    if scale is None or np.asarray(scale).dtype != np.float32:
        return None
    axis = _axis(op, np.ndim(x))
    if op.type == "DequantizeLinear":
        if np.asarray(x).dtype.name not in QRANGE:
            return None
        return [dequantize(x, scale, zp, axis)]
    if zp is not None:
        dtype = np.asarray(zp).dtype.name
    else:
        to = op.attrs.get("output_dtype", 0)
        dtype = {0: "uint8", 2: "uint8", 3: "int8"}.get(to)
    if dtype not in ("int8", "uint8", "int16", "uint16"):
        return None
    zp = np.zeros((), dtype) if zp is None else zp
    return [quantize(x, scale, zp, dtype, axis)]
