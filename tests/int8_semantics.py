"""A numpy evaluator of IR graphs holding integer operators, written from the IR contract
(/work/coord/int8.md): rounding="half_away" ops use MegEngine's float32 arithmetic,
rounding="half_even" ONNX's. Plain ONNX ops (Reshape, Concat, MaxPool, MatMulInteger, ...)
run in the `onnx` package's reference implementation.

It shares no code with the compiler's kernels; tests use it to check the *frontend's
translation* against MegEngine (load_mge + this evaluator must reproduce MegEngine's own
run bit-exactly), independently of whether a C kernel exists for an op yet.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

f32 = np.float32
_INT_RANGE = {"int8": (-128, 127), "uint8": (0, 255)}
_NP = {"int8": np.int8, "uint8": np.uint8, "int32": np.int32}


def round_half(v: np.ndarray, mode: str) -> np.ndarray:
    v = np.asarray(v, f32)
    if mode == "half_away":
        # MegEngine's x86 SIMD rounding: add +-0.5 in float32, then truncate. Not roundf:
        # just below a tie (k + 0.5 - ulp) the float32 addition rounds up to the next integer
        return np.trunc((v + np.where(v >= 0, f32(0.5), f32(-0.5))).astype(f32)).astype(np.float64)
    assert mode == "half_even", mode
    return np.rint(v.astype(np.float64))


def _saturate(v, dtype):
    lo, hi = _INT_RANGE[dtype]
    return np.clip(v, lo, hi).astype(_NP[dtype])


def _dtype_of(zero_point) -> str:
    return "uint8" if np.asarray(zero_point).dtype == np.uint8 else "int8"


def _act(v: np.ndarray, name: str) -> np.ndarray:
    v = v.astype(f32)
    if name == "":
        return v
    if name == "Relu":
        return np.maximum(v, f32(0))
    if name == "Sigmoid":
        return (f32(1) / (f32(1) + np.exp(-v))).astype(f32)
    if name == "HSwish":
        return (v * np.clip(v + f32(3), f32(0), f32(6)) / f32(6)).astype(f32)
    if name == "Tanh":
        return np.tanh(v).astype(f32)
    raise NotImplementedError(f"activation {name!r}")


def _quantize(real: np.ndarray, scale, zero_point, rounding: str) -> np.ndarray:
    scale = f32(scale)
    if rounding == "half_away":  # MegEngine: multiply by the float reciprocal
        q = round_half(real.astype(f32) * (f32(1) / scale), rounding)
    else:
        q = round_half(real.astype(f32) / scale, rounding)
    return _saturate(q + int(zero_point), _dtype_of(zero_point))


def _dequant(q, scale, zero_point) -> np.ndarray:
    return ((q.astype(np.int64) - int(zero_point)).astype(f32) * f32(scale)).astype(f32)


def _conv_int(x, w, pads, strides, dilations, group):
    n, c, h, wd = x.shape
    oc, icg, kh, kw = w.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (h + pads[0] + pads[2] - (kh - 1) * dilations[0] - 1) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - (kw - 1) * dilations[1] - 1) // strides[1] + 1
    out = np.zeros((n, oc, oh, ow), np.int64)
    ocg = oc // group
    for g in range(group):
        for i in range(kh):
            for j in range(kw):
                y0, x0 = i * dilations[0], j * dilations[1]
                patch = xp[:, g * icg:(g + 1) * icg, y0:y0 + strides[0] * (oh - 1) + 1:strides[0],
                           x0:x0 + strides[1] * (ow - 1) + 1:strides[1]]
                out[:, g * ocg:(g + 1) * ocg] += np.einsum(
                    "nchw,oc->nohw", patch, w[g * ocg:(g + 1) * ocg, :, i, j].astype(np.int64))
    return out


def qlinear_conv(op, v):
    x, sx, zx, w, sw, zw, sy, zy = v[:8]
    a = op.attrs
    kh, kw = w.shape[2:]
    acc = _conv_int(x.astype(np.int64) - int(zx), w.astype(np.int64) - int(zw),
                    a.get("pads", [0, 0, 0, 0]), a.get("strides", [1, 1]),
                    a.get("dilations", [1, 1]), a.get("group", 1))
    if len(v) > 8:
        acc = acc + v[8].astype(np.int64).reshape(1, -1, 1, 1)
    rounding = a.get("rounding", "half_even")
    if rounding == "half_away":  # MegEngine: real value, activation, * 1/s_out
        real = acc.astype(f32) * (f32(sx) * f32(sw))
        return _quantize(_act(real, a.get("activation", "")), sy, zy, rounding)
    # onnxruntime: acc * (sx * sw / sy) in float, ties to even
    return _saturate(round_half(acc.astype(f32) * f32(f32(sx) * f32(sw) / f32(sy)), rounding)
                     + int(zy), _dtype_of(zy))


def qlinear_binary(op, v):
    a, sa, za, b, sb, zb, sy, zy = v
    ra, rb = _dequant(a, sa, za), _dequant(b, sb, zb)
    real = ra + rb if op.type == "QLinearAdd" else ra * rb
    return _quantize(_act(real, op.attrs.get("activation", "")), sy, zy,
                     op.attrs.get("rounding", "half_even"))


def qlinear_sigmoid(op, v):
    x, sx, zx, sy, zy = v
    return _quantize(_act(_dequant(x, sx, zx), "Sigmoid"), sy, zy,
                     op.attrs.get("rounding", "half_even"))


def qlinear_average_pool(op, v):
    x, sx, zx, sy, zy = v
    a = op.attrs
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    pads = a.get("pads", [0, 0, 0, 0])
    xr = _dequant(x, sx, zx).astype(np.float64)
    ones = np.ones_like(xr)
    pad = ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3]))
    xp, op_ = np.pad(xr, pad), np.pad(ones, pad)
    n, c, h, w = xp.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    total = np.zeros((n, c, oh, ow))
    count = np.zeros((n, c, oh, ow))
    for i in range(kh):
        for j in range(kw):
            total += xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            count += op_[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
    if a.get("count_include_pad", 0):
        count[:] = kh * kw
    # the sum of integers is exact in float64; sum / count is MegEngine's float division
    return _quantize(total.astype(f32) / count.astype(f32), sy, zy,
                     a.get("rounding", "half_even"))


def quantize_linear(op, v):
    x, s = v[0], v[1]
    zp = v[2] if len(v) > 2 else np.uint8(0)
    return _quantize(x, s, zp, op.attrs.get("rounding", "half_even"))


def dequantize_linear(op, v):
    x, s = v[0], v[1]
    zp = v[2] if len(v) > 2 else 0
    return _dequant(x, s, zp)


_CUSTOM = {"QLinearConv": qlinear_conv, "QLinearAdd": qlinear_binary,
           "QLinearMul": qlinear_binary, "QLinearSigmoid": qlinear_sigmoid,
           "QLinearAveragePool": qlinear_average_pool, "QuantizeLinear": quantize_linear,
           "DequantizeLinear": dequantize_linear}

_ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int8): TensorProto.INT8,
         np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int32): TensorProto.INT32,
         np.dtype(np.int64): TensorProto.INT64, np.dtype(np.bool_): TensorProto.BOOL}


def _onnx_reference(op, values):
    ins = [f"i{k}" for k in range(len(values))]
    outs = [f"o{k}" for k in range(len(op.outputs))]
    node = helper.make_node(op.type, ins, outs, **op.attrs)
    graph = helper.make_graph(
        [node], "one",
        [helper.make_tensor_value_info(n, _ELEM[np.asarray(x).dtype], np.asarray(x).shape)
         for n, x in zip(ins, values)],
        [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return ReferenceEvaluator(model).run(None, dict(zip(ins, [np.asarray(x) for x in values])))


def run_graph(graph, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Evaluate `graph`; returns its outputs by name."""
    env = {name: t.data for name, t in graph.tensors.items() if t.data is not None}
    env.update(feeds)
    for op in graph.ops:
        values = [env[name] for name in op.inputs if name]
        if op.type in _CUSTOM:
            results = [_CUSTOM[op.type](op, values)]
        else:
            results = _onnx_reference(op, values)
        for name, value in zip(op.outputs, results):
            t = graph.tensor(name)
            value = np.asarray(value)
            assert value.dtype == np.dtype(_NP.get(t.dtype, t.dtype)), (op.type, name, value.dtype,
                                                                        t.dtype)
            env[name] = value.reshape(t.shape)
    return {name: env[name] for name in graph.outputs}
