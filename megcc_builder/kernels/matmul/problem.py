"""The matrix problem of a Gemm / MatMul with constant weights, as the vector FC and the
cost model see it."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import numel
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..cost import overlapped
from ..elementwise.generic import broadcast_strides


def fc_problem(op: Op, graph: Graph):
    """(M, N, K, B as (K, N) array, bias (N,) or None) if the vector FC applies, else None."""
    a = graph.tensors[op.inputs[0]]
    b = graph.tensors[op.inputs[1]]
    # float16 B: compressed weights (passes/compress_fp16.py), values exact in float32
    if a.dtype != "float32" or b.dtype not in ("float32", "float16") or not b.is_const \
            or len(b.shape) != 2:
        return None
    bmat = np.asarray(b.data, np.float32)
    bias = None
    if op.type == "Gemm":
        if int(op.attrs.get("transA", 0)):
            return None
        if int(op.attrs.get("transB", 0)):
            bmat = bmat.T
        alpha, beta = float(op.attrs.get("alpha", 1.0)), float(op.attrs.get("beta", 1.0))
        k, n = bmat.shape
        m = a.shape[0]
        if alpha != 1.0:
            bmat = bmat * np.float32(alpha)
        if len(op.inputs) > 2 and op.inputs[2] and beta != 0.0:
            c = graph.tensors[op.inputs[2]]
            if not c.is_const or c.dtype != "float32":
                return None
            csm, _ = broadcast_strides(c.shape, (m, n))
            if csm != 0 and m > 1:  # C varies along rows: not a bias
                return None
            bias = (np.broadcast_to(np.asarray(c.data, np.float32).reshape(-1) if c.data.size > 1
                                    else np.asarray(c.data, np.float32).reshape(1), (n,))
                    * np.float32(beta)).astype(np.float32)
    elif op.type == "MatMul":
        if len(a.shape) < 2:
            return None
        k, n = bmat.shape
        m = numel(a.shape) // k
    else:
        return None
    return m, n, k, bmat, bias


def fc_cost(op: Op, graph: Graph, isa: IsaSpec, compute) -> float:
    """Either way the weights stream from memory; loads and FMAs overlap, imperfectly.
    `compute(m, n, k)`: the cycles of the arithmetic."""
    m, n, k = fc_problem(op, graph)[:3]
    wbytes = 2 if graph.tensors[op.inputs[1]].dtype == "float16" else 4
    return overlapped(compute(m, n, k), k * n * wbytes / isa.core.stream_bytes, 0.25)
