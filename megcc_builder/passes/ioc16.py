"""enable_ioc16: compute a float32 model in float16 on levels with half-precision arithmetic
(Armv8.2-A + FP16, level arm64-fp16), MegCC's `enable_ioc16`.

How far this goes today: fully-connected layers (Gemm without transA, alpha 1; MatMul by a
2-D constant), with no activation or a fused ReLU, run in float16 (8 lanes per NEON
register, kernels/matmul/fc_neon64fp16_f16.py); their input is converted to float16 and
their output back to float32, and a conversion back immediately followed by one to float16
(two fully-connected layers in a row) is skipped, so a chain of them is one float16 region.
Convolutions, pooling, element-wise operations and the NCHW88 layout stay float32 (not done
yet). On a level without float16 arithmetic the option is refused, naming the level.
"""
from __future__ import annotations

import numpy as np

from ..ir import CompileError, Graph, Op, Tensor
from .dce import eliminate_dead_code

ONNX_FLOAT16, ONNX_FLOAT = 10, 1


def _fc_weights(op: Op, graph: Graph):
    """(B as (K, N), bias (N,) or None) of a float32 FC layer this pass runs in float16."""
    if op.type not in ("Gemm", "MatMul") or len(op.inputs) < 2:
        return None
    x, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    if x.dtype != "float32" or x.is_const or b.dtype != "float32" or not b.is_const \
            or len(b.shape) != 2 or len(x.shape) != 2:
        return None
    act = op.attrs.get("activation")
    if act is not None and act != ("Relu", ("in", 0)):
        return None
    w = np.asarray(b.data, np.float32)
    bias = None
    if op.type == "Gemm":
        if int(op.attrs.get("transA", 0)) or float(op.attrs.get("alpha", 1.0)) != 1.0:
            return None
        if int(op.attrs.get("transB", 0)):
            w = w.T
        beta = float(op.attrs.get("beta", 1.0))
        if len(op.inputs) > 2 and op.inputs[2] and beta != 0.0:
            c = graph.tensors[op.inputs[2]]
            if not c.is_const or c.dtype != "float32" or c.data.size not in (1, w.shape[1]) \
                    or (len(c.shape) == 2 and c.shape[0] != 1):
                return None
            bias = np.broadcast_to(np.asarray(c.data, np.float32).reshape(-1),
                                   (w.shape[1],)) * np.float32(beta)
    if np.any(np.abs(w[np.isfinite(w)]) > 65504.0):
        return None
    return np.ascontiguousarray(w), bias


def compute_in_float16(graph: Graph, isa) -> Graph:
    if isa.vec("f16").gemm is None:
        raise CompileError(f"enable_ioc16 computes in float16, and ISA level '{isa.name}' has "
                           "no float16 arithmetic (Armv8.2-A with FP16 has: --isa arm64-fp16)",
                           graph.source)
    ops = []
    for op in graph.ops:
        fc = _fc_weights(op, graph)
        if fc is None:
            ops.append(op)
            continue
        w, bias = fc
        x, y = op.inputs[0], op.outputs[0]
        x16, y16 = graph.unique_name(x + "_f16"), graph.unique_name(y + "_f16")
        graph.add_tensor(Tensor(x16, graph.tensors[x].shape, "float16"))
        graph.add_tensor(Tensor(y16, graph.tensors[y].shape, "float16"))
        wname = graph.unique_name(op.inputs[1] + "__kn_f16")
        graph.add_const(wname, w.astype(np.float16))
        inputs = [x16, wname]
        if bias is not None:
            bname = graph.unique_name(y + "__bias_f16")
            graph.add_const(bname, np.asarray(bias).astype(np.float16))
            inputs.append(bname)
        attrs = {"activation": op.attrs["activation"]} if op.attrs.get("activation") else {}
        ops.append(Op("Cast", [x], [x16], {"to": ONNX_FLOAT16}, (op.name or y) + "_in_f16"))
        # a float16 FC: MatMul of (M, K) by the (K, N) weights, the bias a third input
        ops.append(Op("MatMul", inputs, [y16], attrs, op.name))
        ops.append(Op("Cast", [y16], [y], {"to": ONNX_FLOAT}, (op.name or y) + "_out_f32"))
    graph.ops = _join_regions(ops, graph)
    return eliminate_dead_code(graph)


def _join_regions(ops, graph: Graph):
    """Cast(f16 -> f32) whose only reader is a Cast(f32 -> f16): the second reads the float16
    value directly (an Identity, a view), and the first goes when nothing else needs it."""
    readers = {}
    for op in ops:
        for n in op.inputs:
            readers.setdefault(n, []).append(op)
    producer = {o: op for op in ops for o in op.outputs}
    out = []
    for op in ops:
        src = producer.get(op.inputs[0]) if op.type == "Cast" and op.inputs else None
        if (src is not None and src.type == "Cast" and op.attrs.get("to") == ONNX_FLOAT16
                and src.attrs.get("to") == ONNX_FLOAT
                and graph.tensors[src.inputs[0]].dtype == "float16"):
            op = Op("Identity", [src.inputs[0]], list(op.outputs), {}, op.name)
        out.append(op)
    return out
