"""Weight compression (`enable_compress_fp16`): the weights of convolutions and matrix
products stored as float16, which halves the model file; the kernels widen them to float32
block by block where they read them (codegen/half.py), so arithmetic stays float32.

What is compressed: input 1 of
- Conv (NCHW output layout; 1-D/2-D), the filters;
- Gemm without transA and with alpha 1, and MatMul with a 2-D B, when B is a constant and A is not (the
  fully-connected layers).
These are nearly all of a CNN's bytes. What is not, and why:
- biases and other small constants (< MIN_ELEMENTS elements, or any tensor of another op):
  a bias is about 1 % of a layer's weights, is added while the output tile is in registers
  (widening it there costs more than the bytes saved), and, after batch-norm folding, holds
  the large terms whose fp16 rounding would cost the most absolute accuracy; tensors this
  small gain nothing anyway, since each weight is 64-byte aligned in the file;
- weights with a magnitude above float16's range (65504): they would become inf;
- convolutions in the NCHW44 layout and ConvTranspose: their kernels read float32 only.
The conversion rounds to nearest even (numpy), so the model computes exactly what the
float32 kernels compute on the rounded weights: the kernel tests compare against that.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from ..ir import Graph, Op

MIN_ELEMENTS = 32
F16_MAX = 65504.0


def _weight_input(op: Op, graph: Graph, exact_only: bool = False):
    """The index of the op's compressible weight input, or None."""
    if op.type not in ("Conv", "Gemm", "MatMul") or len(op.inputs) < 2:
        return None
    x, w = graph.tensors.get(op.inputs[0]), graph.tensors.get(op.inputs[1])
    if x is None or w is None or x.is_const or not w.is_const:
        return None
    if x.dtype != "float32" or w.dtype != "float32" or w.quant is not None:
        return None
    if op.type == "Conv":
        out = graph.tensors.get(op.outputs[0])
        if len(w.shape) not in (3, 4) or out is None or out.layout != "nchw":
            return None
    elif op.type == "Gemm":
        # alpha is folded into the packed weights: it would round them a second time
        if int(op.attrs.get("transA", 0)) or len(w.shape) != 2 \
                or float(op.attrs.get("alpha", 1.0)) != 1.0:
            return None
    elif len(w.shape) != 2 or len(x.shape) < 2:  # MatMul
        return None
    data = np.asarray(w.data, np.float32)
    if data.size < MIN_ELEMENTS or not np.all(np.abs(data[np.isfinite(data)]) <= F16_MAX):
        return None
    if exact_only and not np.array_equal(data.astype(np.float16).astype(np.float32), data,
                                         equal_nan=True):
        return None
    return 1


def compress_op_weight(op: Op, graph: Graph, done: Optional[Dict[str, str]] = None,
                       exact_only: bool = False) -> int:
    """Give `op` its compressible weight as float16 (a new constant, shared through `done`
    by the ops reading the same weight); the bytes saved, 0 if nothing was compressed.
    exact_only: only a weight float16 represents exactly (a float16 model's)."""
    k = _weight_input(op, graph, exact_only)
    if k is None:
        return 0
    done = {} if done is None else done
    name = op.inputs[k]
    saved = 0
    if name not in done:
        half = np.asarray(graph.tensors[name].data, np.float32).astype(np.float16)
        done[name] = graph.unique_name(name + "__f16")
        graph.add_const(done[name], half)
        saved = half.nbytes
    op.inputs[k] = done[name]
    return saved


def compress_weights_fp16(graph: Graph, exact_only: bool = False) -> Dict[str, int]:
    """Replace the compressible weights by float16 constants; {"tensors", "bytes_saved"}."""
    done: Dict[str, str] = {}
    saved = sum(compress_op_weight(op, graph, done, exact_only) for op in graph.ops)
    return {"tensors": len(done), "bytes_saved": saved}
