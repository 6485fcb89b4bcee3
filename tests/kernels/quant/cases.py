"""Quantized operator cases (QOperator vocabulary: ONNX's and onnxruntime's com.microsoft
ops), onnxruntime as the oracle: integer outputs bit-exact. Odd channel counts, sizes off
any vector width, saturating values, per-channel scales, non-zero zero points, int8 and
uint8, ties in the rounding."""
from __future__ import annotations

import ml_dtypes
import numpy as np

from kernels.harness import Book, Const

BOOK = Book("quant", exact=True)
MS = "com.microsoft"
F32 = np.float32
_r = np.random.default_rng(8128)


def q(dtype, *shape):
    lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
    return _r.integers(lo, hi + 1, shape).astype(dtype)


def s(v):
    return Const(np.array(v, F32))


def z(dtype, v):
    return Const(np.array(v, dtype))


# --- QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear -------------------------
_x = (_r.standard_normal((2, 5, 3, 7)) * 4).astype(F32)
_x.flat[:8] = [0.25, 0.75, -0.25, -0.75, 1000.0, -1000.0, 0.5, -0.5]  # ties, saturation
for _opset in (10, 13, 19):
    BOOK.add(f"quantize_u8_opset{_opset}", "QuantizeLinear", [_x, s(0.05), z("uint8", 128)],
             opset=_opset)
    BOOK.add(f"quantize_s8_opset{_opset}", "QuantizeLinear", [_x, s(0.5), z("int8", -3)],
             opset=_opset)
    BOOK.add(f"dequantize_u8_opset{_opset}", "DequantizeLinear",
             [q("uint8", 3, 17), s(0.037), z("uint8", 131)], opset=_opset)
BOOK.add("quantize_no_zp", "QuantizeLinear", [_x, s(0.02)], opset=13)
BOOK.add("quantize_per_axis", "QuantizeLinear",
         [_x, s([0.1, 0.5, 0.05, 0.25, 1.0]), z("int8", [0, 3, -5, 100, -128])],
         dict(axis=1), opset=13)
BOOK.add("quantize_per_axis_last", "QuantizeLinear",
         [_x, s(np.linspace(0.01, 0.3, 7)), z("uint8", np.arange(7) * 30)],
         dict(axis=-1), opset=13)
BOOK.add("dequantize_s8_per_axis", "DequantizeLinear",
         [q("int8", 2, 5, 3), s([0.1, 0.5, 0.05, 0.25, 1.0]), z("int8", [0, 3, -5, 100, -128])],
         dict(axis=1), opset=13)
BOOK.add("dequantize_int32", "DequantizeLinear",
         [_r.integers(-100000, 100000, (4, 9)).astype(np.int32), s(0.0013)], opset=13)
# blocked (opset 21; onnx's reference): blocks along an inner axis, a last block shorter
# than the others, zero points, int16 output (output_dtype), dequantizing int8
_xb = (_r.standard_normal((3, 7, 4)) * 3).astype(F32)
_sb = _r.uniform(0.05, 0.5, (3, 3, 4)).astype(F32)
BOOK.add("quantize_blocked_u8", "QuantizeLinear",
         [_xb, Const(_sb), Const(_r.integers(100, 150, (3, 3, 4)).astype(np.uint8))],
         {"axis": 1, "block_size": 3}, opset=21, ref="onnx")
BOOK.add("quantize_blocked_s16_no_zp", "QuantizeLinear", [_xb, Const(_sb)],
         {"axis": 1, "block_size": 3, "output_dtype": 5}, opset=21, ref="onnx")
BOOK.add("dequantize_blocked_s8", "DequantizeLinear",
         [q("int8", 2, 5, 6), Const(_r.uniform(0.01, 0.2, (2, 5, 2)).astype(F32)),
          Const(_r.integers(-5, 5, (2, 5, 2)).astype(np.int8))],
         {"axis": -1, "block_size": 4}, opset=21, ref="onnx")
BOOK.add("dynamic_quantize", "DynamicQuantizeLinear", [_x], n_out=3, opset=13)
BOOK.add("dynamic_quantize_positive", "DynamicQuantizeLinear",
         [np.abs(_x[:, :2]) + F32(0.5)], n_out=3, opset=13)
BOOK.add("dynamic_quantize_negative", "DynamicQuantizeLinear",
         [-np.abs(_x[:1, :3]) - F32(0.1)], n_out=3, opset=13)

# the narrow quantized types (opset 25) against onnx's reference: int4/uint4/int2/uint2 (ties,
# saturation, zero points), float8 (saturate or not; the zero point is zero), float4e2m1
_NARROW = {"int4": ml_dtypes.int4, "uint4": ml_dtypes.uint4, "int2": ml_dtypes.int2,
           "uint2": ml_dtypes.uint2, "float8e4m3fn": ml_dtypes.float8_e4m3fn,
           "float8e4m3fnuz": ml_dtypes.float8_e4m3fnuz, "float8e5m2": ml_dtypes.float8_e5m2,
           "float8e5m2fnuz": ml_dtypes.float8_e5m2fnuz, "float4e2m1": ml_dtypes.float4_e2m1fn}
_xs = np.concatenate([_x.reshape(-1)[:100], np.array([0.125, -0.125, 0.375, 1e6, -1e6, 0.0],
                                                      F32)]).reshape(2, 53)
for _name, _t in _NARROW.items():
    _int = _name[-4:] in ("int4", "int2")
    _zp = np.array(1 if _name.startswith("u") else -1 if _int else 0, F32).astype(_t)
    _sat = (1,) if _int or _name == "float4e2m1" else (1, 0)
    for _k in _sat:
        BOOK.add(f"quantize_{_name}_sat{_k}", "QuantizeLinear", [_xs, s(0.25), Const(_zp)],
                 {"saturate": _k} if not _int else {}, opset=25, ref="onnx")
    BOOK.add(f"quantize_{_name}_per_axis", "QuantizeLinear",
             [_x[:, :, 0, :], s([0.1, 0.5, 0.05, 0.25, 1.0]),
              Const(np.zeros(5, F32).astype(_t))], {"axis": 1}, opset=25, ref="onnx")
    _codes = (np.arange(-8, 16) if _int else np.arange(256 if _name[-2:] != "m1" else 16,
                                                      dtype=np.uint8).view(_t).astype(F32))
    _codes = np.asarray(_codes)[np.isfinite(np.asarray(_codes, F32))].astype(_t)
    BOOK.add(f"dequantize_{_name}", "DequantizeLinear", [_codes, s(0.37), Const(_zp)],
             opset=25, ref="onnx")
    BOOK.add(f"dequantize_{_name}_per_axis_f16", "DequantizeLinear",
             [_codes[:16].reshape(2, 8), Const(np.array([0.5, 3.0], np.float16)),
              Const(np.zeros(2, F32).astype(_t))], {"axis": 0}, opset=25, ref="onnx")


# --- QLinearConv / ConvInteger --------------------------------------------------------
def qconv(id_, xt, wt, n, c, h, w, oc, k, group=1, strides=(1, 1), pads=(0, 0, 0, 0),
          dil=(1, 1), per_channel=False, bias=True, xz=None, wz=0, yz=None, one_d=False,
          expect=None, wmax=None):
    x = q(xt, n, c, w) if one_d else q(xt, n, c, h, w)
    wshape = (oc, c // group, k) if one_d else (oc, c // group, k, k)
    wv = q(wt, *wshape) if wmax is None else \
        (_r.integers(-wmax, wmax + 1, wshape) + wz).astype(wt)  # small: |w - wz| <= wmax
    ws = np.linspace(0.002, 0.01, oc).astype(F32) if per_channel else np.array(0.004, F32)
    xz = (7 if xt == "int8" else 121) if xz is None else xz
    yz = (-9 if xt == "int8" else 130) if yz is None else yz
    attrs = dict(group=group, strides=list(strides[-1:] if one_d else strides),
                 pads=list((pads[1], pads[3]) if one_d else pads),
                 dilations=list(dil[-1:] if one_d else dil))
    ins = [x, s(0.05), z(xt, xz), Const(wv), Const(ws), z(wt, [wz] * oc if per_channel
                                                        else wz), s(0.08), z(xt, yz)]
    if bias:
        ins.append(Const(_r.integers(-3000, 3000, oc).astype(np.int32)))
    BOOK.add(id_, "QLinearConv", ins, attrs, opset=13, expect=expect or {})


qconv("qconv_u8s8_dense_pad", "uint8", "int8", 1, 3, 9, 11, 5, 3, pads=(1, 1, 1, 1))
qconv("qconv_u8s8_per_channel_stride2", "uint8", "int8", 2, 5, 10, 9, 7, 3, strides=(2, 2),
      pads=(1, 0, 1, 2), per_channel=True)
qconv("qconv_s8s8_group", "int8", "int8", 1, 6, 7, 8, 9, 3, group=3, pads=(1, 1, 1, 1),
      per_channel=True)
qconv("qconv_s8s8_depthwise", "int8", "int8", 1, 11, 9, 9, 11, 3, group=11,
      pads=(1, 1, 1, 1), per_channel=True)
qconv("qconv_u8u8_1x1_wzp", "uint8", "uint8", 1, 13, 5, 6, 17, 1, wz=131, bias=False)
qconv("qconv_s8s8_dilated", "int8", "int8", 1, 4, 12, 12, 3, 3, dil=(2, 2),
      pads=(2, 2, 2, 2))
qconv("qconv_u8s8_1d", "uint8", "int8", 1, 3, 1, 19, 4, 5, pads=(0, 2, 0, 2), one_d=True)
qconv("qconv_u8s8_saturating", "uint8", "int8", 1, 8, 6, 6, 4, 3, yz=0)
BOOK.add("conv_integer_u8u8_zp", "ConvInteger",
         [q("uint8", 1, 3, 7, 8), Const(q("uint8", 4, 3, 3, 3)), z("uint8", 120),
          z("uint8", 133)], dict(pads=[1, 1, 1, 1]), opset=13)
BOOK.add("conv_integer_u8u8_nozp", "ConvInteger",
         [q("uint8", 2, 4, 6, 5), Const(q("uint8", 6, 2, 2, 2))], dict(group=2, strides=[2, 1]),
         opset=13)

# --- QLinearMatMul / MatMulInteger / QGemm / MatMulIntegerToFloat ----------------------
BOOK.add("qmatmul_u8s8", "QLinearMatMul",
         [q("uint8", 5, 19), s(0.02), z("uint8", 128), Const(q("int8", 19, 7)), s(0.01),
          z("int8", 0), s(0.1), z("uint8", 120)], opset=13)
BOOK.add("qmatmul_s8s8_batched", "QLinearMatMul",
         [q("int8", 2, 3, 5, 9), s(0.02), z("int8", -4), q("int8", 3, 9, 6), s(0.01),
          z("int8", 3), s(0.05), z("int8", 5)], opset=13)
BOOK.add("qmatmul_u8u8", "QLinearMatMul",
         [q("uint8", 4, 33), s(0.03), z("uint8", 100), Const(q("uint8", 33, 3)), s(0.02),
          z("uint8", 140), s(0.3), z("uint8", 0)], opset=13)
# float16 scales (opset 21): constants widened at compile time, run-time ones by a Cast. The
# oracle: onnxruntime on the same product with the scales widened (exactly) to float32
# (onnx's reference requantizes in float16 arithmetic, 1 LSB apart at times)
def _qmatmul_f32_scales(*vals):
    import onnxruntime as ort
    from kernels.harness import Case, build_model, feeds

    ins = [v.astype(np.float32) if v.dtype == np.float16 else v for v in vals]
    case = Case("f32", "QLinearMatMul", ins, opset=13)
    sess = ort.InferenceSession(build_model([case]).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds([case]))


_h = lambda v: Const(np.array(v, np.float16))  # noqa: E731
BOOK.add("qmatmul_f16_scales_const", "QLinearMatMul",
         [q("uint8", 5, 19), _h(0.02), z("uint8", 128), Const(q("int8", 19, 7)), _h(0.01),
          z("int8", 0), _h(0.1), z("uint8", 120)], opset=21, ref=_qmatmul_f32_scales)
BOOK.add("qmatmul_f16_scales_runtime", "QLinearMatMul",
         [q("int8", 2, 3, 9), np.array(0.03, np.float16), z("int8", -4), q("int8", 9, 6),
          np.array(0.02, np.float16), z("int8", 3), np.array(0.25, np.float16), z("int8", 5)],
         opset=21, ref=_qmatmul_f32_scales)
BOOK.add("matmul_integer_u8u8", "MatMulInteger",
         [q("uint8", 4, 11), Const(q("uint8", 11, 6)), z("uint8", 130), z("uint8", 125)],
         opset=13)
BOOK.add("matmul_integer_u8s8_3d", "MatMulInteger",
         [q("uint8", 2, 3, 10), Const(q("int8", 10, 5)), z("uint8", 7)], opset=13)
BOOK.add("matmul_integer_b_per_column", "MatMulInteger",
         [q("uint8", 3, 8), Const(q("int8", 8, 5)), z("uint8", 100),
          z("int8", [1, -2, 3, 0, 5])], opset=13)
BOOK.add("qgemm_u8s8_transb_bias", "QGemm",
         [q("uint8", 3, 17), s(0.02), z("uint8", 120), Const(q("int8", 6, 17)), s(0.004),
          z("int8", 0), Const(_r.integers(-2000, 2000, 6).astype(np.int32)), s(0.07),
          z("uint8", 128)], dict(transB=1), domain=MS, opset=13)
BOOK.add("qgemm_s8s8_per_column", "QGemm",
         [q("int8", 4, 9), s(0.02), z("int8", 1), Const(q("int8", 9, 5)),
          Const(np.linspace(0.001, 0.01, 5).astype(F32)), Const(np.zeros(5, np.int8)),
          Const(_r.integers(-500, 500, 5).astype(np.int32)), s(0.05), z("int8", -2)],
         domain=MS, opset=13)
BOOK.add("matmul_integer_to_float", "MatMulIntegerToFloat",
         [q("uint8", 3, 12), Const(q("int8", 12, 7)), s(0.02), s(0.005), z("uint8", 128),
          z("int8", 0), Const(_r.standard_normal(7).astype(F32))],
         domain=MS, opset=13, exact=False)

# --- QLinearAdd / QLinearMul (broadcasting) -------------------------------------------
for _op in ("QLinearAdd", "QLinearMul"):
    for _t in ("uint8", "int8"):
        _zs = (3, -7, 11) if _t == "int8" else (128, 100, 131)
        for _name, _sa, _sb in [("same", (1, 7, 5, 3), (1, 7, 5, 3)),
                                ("bcast_channel", (2, 7, 5, 3), (1, 7, 1, 1)),
                                ("bcast_row", (2, 3, 19), (19,)),
                                ("bcast_scalar_a", (1,), (3, 17)),
                                ("bcast_outer", (5, 1), (1, 9))]:
            BOOK.add(f"{_op}_{_t}_{_name}".lower(), _op,
                     [q(_t, *_sa), s(0.031), z(_t, _zs[0]), q(_t, *_sb), s(0.017),
                      z(_t, _zs[1]), s(0.045), z(_t, _zs[2])], domain=MS, opset=13)

# runs of 16-code vector steps plus a tail (AVX2): same shape, a per-channel operand on
# either side (one value per innermost run), a scalar, a broadcast row; the output scale
# small enough to saturate both ways; the avx2 kernel must be the cost model's choice
_long = [("same_long", (2, 3, 37, 11), (2, 3, 37, 11)),
         ("bcast_channel_b_long", (1, 6, 9, 7), (1, 6, 1, 1)),
         ("bcast_channel_a_long", (1, 5, 1, 1), (2, 5, 7, 5)),
         ("bcast_scalar_b_long", (3, 41), (1,)),
         ("bcast_row_long", (4, 2, 35), (35,))]
for _op in ("QLinearAdd", "QLinearMul"):
    for _t in ("uint8", "int8"):
        _zs = (-128, 127, 5) if _t == "int8" else (0, 255, 131)
        _sc = 0.011 if _op == "QLinearAdd" else 0.9
        for _name, _sa, _sb in _long:
            _a, _b = q(_t, *_sa), q(_t, *_sb)
            _a.flat[:4] = [-128, 127, -128, 127] if _t == "int8" else [0, 255, 0, 255]
            BOOK.add(f"{_op}_{_t}_{_name}".lower(), _op,
                     [_a, s(0.031), z(_t, _zs[0]), _b, s(0.017), z(_t, _zs[1]), s(_sc),
                      z(_t, _zs[2])], domain=MS, opset=13,
                     expect={"avx2": (f"qlinear_{_op[7:].lower()}_avx2_", "")})

# --- table-driven unary ops ------------------------------------------------------------
for _t in ("uint8", "int8"):
    _zx, _zy = (5, -128) if _t == "int8" else (133, 0)
    BOOK.add(f"qsigmoid_{_t}", "QLinearSigmoid",
             [q(_t, 2, 5, 7), s(0.06), z(_t, _zx), s(1.0 / 256), z(_t, _zy)],
             domain=MS, opset=13)
    BOOK.add(f"qleakyrelu_{_t}", "QLinearLeakyRelu",
             [q(_t, 3, 13), s(0.05), z(_t, _zx), s(0.03), z(_t, _zx - 5)],
             dict(alpha=0.1), domain=MS, opset=13)

# --- pooling ---------------------------------------------------------------------------
for _t in ("uint8", "int8"):
    _zx, _zy = (-3, 4) if _t == "int8" else (120, 110)
    BOOK.add(f"qavgpool_{_t}_k3s2p1", "QLinearAveragePool",
             [q(_t, 1, 5, 9, 11), s(0.05), z(_t, _zx), s(0.04), z(_t, _zy)],
             dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), domain=MS, opset=13)
    BOOK.add(f"qavgpool_{_t}_incpad", "QLinearAveragePool",
             [q(_t, 2, 3, 7, 7), s(0.05), z(_t, _zx), s(0.03), z(_t, _zy)],
             dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
                  count_include_pad=1), domain=MS, opset=13)
    BOOK.add(f"qglobalavgpool_{_t}", "QLinearGlobalAveragePool",
             [q(_t, 2, 7, 5, 9), s(0.05), z(_t, _zx), s(0.02), z(_t, _zy)],
             dict(channels_last=0), domain=MS, opset=13)

# --- concatenation ---------------------------------------------------------------------
for _t in ("uint8", "int8"):
    _zy = 3 if _t == "int8" else 128
    BOOK.add(f"qconcat_{_t}", "QLinearConcat",
             [s(0.05), z(_t, _zy), q(_t, 1, 3, 4, 5), s(0.05), z(_t, _zy),
              q(_t, 1, 2, 4, 5), s(0.11), z(_t, _zy - 3), q(_t, 1, 5, 4, 5), s(0.02),
              z(_t, _zy + 2)], dict(axis=1), domain=MS, opset=13)

# AVX2's 16-code steps: blocks of 16+ codes and tails, several outer blocks (axis 2), an
# input copied between two requantized ones, scales that saturate (0.3 / 0.05) both ways;
# the AVX2 kernel is the cost model's choice
for _t in ("uint8", "int8"):
    _zy = -5 if _t == "int8" else 120
    _x0, _x2 = q(_t, 2, 3, 7, 9), q(_t, 2, 3, 5, 9)
    _x0.flat[:4] = [-128, 127, -128, 127] if _t == "int8" else [0, 255, 0, 255]
    BOOK.add(f"qconcat_{_t}_axis2_saturating", "QLinearConcat",
             [s(0.05), z(_t, _zy), _x0, s(0.3), z(_t, _zy + 4), q(_t, 2, 3, 2, 9), s(0.05),
              z(_t, _zy), _x2, s(0.0171), z(_t, _zy - 2)], dict(axis=2), domain=MS, opset=13,
             expect={"avx2": ("qlinear_concat_avx2_", "")})

# AVX2 requantizes by one multiplication when a float32 r reproduces the table for all 256
# codes, else by the division: X_scale / Y_scale = 0.007 / 0.07 has exact ties (q - xz = 5,
# 15, ...) no multiplier rounds like the division, 0.3 / 0.07 has a multiplier; copied,
# divided and multiplied inputs in one kernel (pattern c, t, m), every code of each input,
# blocks of 259 codes (16-code steps and a tail)
for _t in ("uint8", "int8"):
    _zy = -5 if _t == "int8" else 120
    _every = np.resize(np.arange(256, dtype=np.uint8), 259).view(_t).reshape(1, 7, 1, 37)
    _sh = "u" if _t == "uint8" else "s"
    BOOK.add(f"qconcat_{_t}_multiplier_or_division", "QLinearConcat",
             [s(0.07), z(_t, _zy), q(_t, 1, 3, 1, 37), s(0.07), z(_t, _zy),
              _every, s(0.007), z(_t, _zy + 3), _every[:, :, :, ::-1].copy(), s(0.3),
              z(_t, _zy - 2)], dict(axis=1), domain=MS, opset=13,
             expect={"avx2": ("qlinear_concat_avx2_", f"_ct{_sh}m{_sh}")})

# --- megcc's rounding / activation attributes (MegEngine's conventions): NumPy references --
def _round(v, mode):
    """half_even: onnxruntime's; half_away: MegEngine's, v + 0.5f (or - 0.5f) in float32
    then truncated (just below a tie the float addition already rounds up)."""
    if mode == "half_even":
        return np.rint(v.astype(np.float64))  # exact for float32 values
    v = v.astype(F32)
    return np.trunc((v + np.where(v >= 0, F32(0.5), F32(-0.5))).astype(F32)).astype(np.float64)


def _to_steps(real, so, mode):
    """A real value in output steps: onnxruntime divides by the scale, MegEngine multiplies
    by its float32 reciprocal."""
    if mode == "half_away":
        return (real.astype(F32) * (F32(1) / F32(so))).astype(F32)
    return (real.astype(F32) / F32(so)).astype(F32)


def _act_real(r, act):
    r = r.astype(np.float64)
    if act == "Sigmoid":
        return 1.0 / (1.0 + np.exp(-r))
    if act == "HSwish":
        return r * np.clip(r + 3.0, 0.0, 6.0) / 6.0
    return r


def _requant(acc, real_scale, mult, so, zp, dtype, mode, act, bounds=None):
    """The contract (coord/int8.md): v = float(acc) * mult (onnxruntime), or, for MegEngine's
    rounding and for real activations, act(float(acc) * s_in*s_w) in output steps; Relu /
    Clip as bounds; rounded; + zp; saturated."""
    lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
    lo_f, hi_f = F32(lo - zp), F32(hi - zp)
    if act in ("Sigmoid", "HSwish") or mode == "half_away":
        real = (acc.astype(F32) * real_scale).astype(F32)
        if act in ("Sigmoid", "HSwish"):
            real = _act_real(real, act).astype(F32)
        v = _to_steps(real, so, mode)
    else:
        v = (acc.astype(F32) * mult).astype(F32)
    if act == "Relu":
        lo_f = max(lo_f, F32(0))
    if act == "Clip":
        lo_f = max(lo_f, F32(F32(bounds[0]) / so))
        hi_f = min(hi_f, F32(F32(bounds[1]) / so))
    v = np.clip(v, lo_f, hi_f)
    return (_round(v, mode) + zp).astype(dtype)


def _conv_acc(x, xz, w, wz, pads, group):
    n, c, h, wd = x.shape
    oc, icg, kh, kw = w.shape
    xp = np.pad(x.astype(np.int64) - xz, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh, ow = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    acc = np.zeros((n, oc, oh, ow), np.int64)
    wc = w.astype(np.int64) - wz
    ocg = oc // group
    for o in range(oc):
        g = o // ocg
        for ky in range(kh):
            for kx in range(kw):
                acc[:, o] += np.einsum("nchw,c->nhw", xp[:, g * icg:(g + 1) * icg, ky:ky + oh,
                                                          kx:kx + ow], wc[o, :, ky, kx])
    return acc.astype(np.int32)


def megengine_conv(id_, xt, act, mode="half_away", bounds=None, group=1, size=(6, 7),
                   channels=None, wmax=None):
    c, oc = channels or ((4, 4) if group > 1 else (3, 5))
    x = q(xt, 1, c, *size)
    w = q("int8", oc, c // group, 3, 3) if wmax is None else \
        _r.integers(-wmax, wmax + 1, (oc, c // group, 3, 3)).astype(np.int8)
    ws = np.linspace(0.002, 0.01, oc).astype(F32)
    bias = _r.integers(-2000, 2000, oc).astype(np.int32)
    xs, ys, xz, yz = F32(0.05), F32(0.04), (0 if xt == "int8" else 128), \
        (0 if xt == "int8" else 120)
    attrs = dict(pads=[1, 1, 1, 1], group=group, rounding=mode, activation=act)
    if bounds:
        attrs["activation_bounds"] = list(bounds)

    def ref(x, xs_, xz_, w, ws_, wz_, ys_, yz_, b):
        acc = _conv_acc(x, int(xz), w, 0, (1, 1, 1, 1), group) + b.reshape(1, -1, 1, 1)
        rs = (xs * ws).astype(F32).reshape(1, -1, 1, 1)
        mult = ((xs * ws).astype(F32) / ys).astype(F32).reshape(1, -1, 1, 1)
        return [_requant(acc, rs, mult, ys, int(yz), xt, mode, act, bounds)]

    BOOK.add(id_, "QLinearConv", [x, s(xs), z(xt, xz), Const(w), Const(ws), Const(np.zeros(oc, "int8")),
                                   s(ys), z(xt, yz), Const(bias)], attrs, ref=ref, opset=13)


megengine_conv("qconv_half_away_s8", "int8", "")
megengine_conv("qconv_half_away_relu_s8", "int8", "Relu")
megengine_conv("qconv_half_away_relu_u8_group", "uint8", "Relu", group=2)
megengine_conv("qconv_half_even_clip_u8", "uint8", "Clip", mode="half_even", bounds=(0.0, 0.5))
megengine_conv("qconv_half_away_sigmoid_s8", "int8", "Sigmoid")
megengine_conv("qconv_half_away_hswish_s8", "int8", "HSwish")

_xq = (_r.standard_normal((3, 11)) * 3).astype(F32)
_xq.flat[:6] = [0.25, -0.25, 0.75, -0.75, 2.5 * 0.5, -2.5 * 0.5]  # ties at scale 0.5
BOOK.add("quantize_half_away", "QuantizeLinear", [_xq, s(0.5), z("int8", 1)],
         dict(rounding="half_away"), opset=13,
         ref=lambda x, sc, zp: [np.clip(_round(_to_steps(x, 0.5, "half_away"), "half_away")
                                        + 1, -128, 127).astype(np.int8)])


def _binary_ref(op_type, mode, act, dtype, za, zb, zc):
    def ref(a, sa, za_, b, sb, zb_, sc, zc_):
        ra = ((a.astype(np.int32) - za).astype(F32) * F32(sa)).astype(F32)
        rb = ((b.astype(np.int32) - zb).astype(F32) * F32(sb)).astype(F32)
        r = (ra + rb if op_type == "QLinearAdd" else ra * rb).astype(F32)
        v = _to_steps(_act_real(r, act).astype(F32) if act in ("Sigmoid", "HSwish") else r,
                      sc, mode)
        lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
        lo_f = F32(0) if act == "Relu" else F32(lo - zc)
        v = np.clip(v, max(lo_f, F32(lo - zc)), F32(hi - zc))
        return [(_round(v, mode) + zc).astype(dtype)]
    return ref


for _op, _act in (("QLinearAdd", "Relu"), ("QLinearAdd", ""), ("QLinearMul", ""),
                  ("QLinearAdd", "Sigmoid")):
    _za, _zb, _zc = 0, 0, 0
    BOOK.add(f"{_op.lower()}_half_away_{_act.lower() or 'none'}", _op,
             [q("int8", 2, 5, 3, 3), s(0.05), z("int8", _za), q("int8", 1, 5, 1, 1), s(0.04),
              z("int8", _zb), s(0.06), z("int8", _zc)],
             dict(rounding="half_away", activation=_act), domain=MS, opset=13,
             ref=_binary_ref(_op, "half_away", _act, "int8", _za, _zb, _zc))

# --- shapes for the AVX2 int16-pair GEMM: K odd / even, positions off the 16-wide tile,
# output channels off the 4-row panel, blocks of positions, saturation, strides, dilation
qconv("qconv_gemm_k_odd_p_tail", "uint8", "int8", 1, 3, 7, 5, 6, 3, pads=(1, 1, 1, 1))
# the cost model: the AVX2 GEMM for a dense convolution, the portable row-wise depthwise
qconv("qconv_gemm_many_blocks", "uint8", "int8", 2, 9, 40, 37, 10, 3, pads=(1, 1, 1, 1),
      per_channel=True, expect={"avx2": ("qlinear_conv_gemm_avx2_", "_bias"),
                                "armv7": ("qlinear_conv_gemm_neon_", "_bias")})
# (i8mm: 150 channels fill its octets; with 3 input channels sdot's quads waste less)
qconv("qconv_gemm_1x1_wide_k", "int8", "int8", 1, 150, 6, 6, 5, 1, wz=0,
      expect={"arm64i8mm": ("qlinear_conv_i8mm_", "")})
qconv("qconv_gemm_u8u8_wzp_stride", "uint8", "uint8", 1, 5, 11, 13, 7, 3, strides=(2, 2),
      pads=(0, 1, 1, 0), wz=120, yz=0)
qconv("qconv_gemm_dilated_s8", "int8", "int8", 1, 4, 12, 12, 3, 3, dil=(2, 2),
      pads=(2, 2, 2, 2), per_channel=True, yz=127)
megengine_conv("qconv_gemm_half_away_relu", "int8", "Relu")

# --- MaxPool on quantized codes ----------------------------------------------------------
for _t in ("uint8", "int8"):
    for _k, _st, _p, _ceil in (((3, 3), (2, 2), (1, 1, 1, 1), 0), ((2, 2), (2, 2), (0, 0, 0, 0), 1),
                               ((3, 3), (1, 1), (0, 1, 2, 1), 0)):
        BOOK.add(f"maxpool_{_t}_k{_k[0]}s{_st[0]}p{''.join(map(str, _p))}c{_ceil}", "MaxPool",
                 [q(_t, 2, 3, 11, 9)], dict(kernel_shape=list(_k), strides=list(_st),
                                             pads=list(_p), ceil_mode=_ceil), opset=12)

# depthwise: strided, asymmetric padding, 5x5, dilated (the unrolled interior + edge loops)
qconv("qconv_dw_u8_s2_asym", "uint8", "int8", 1, 7, 13, 12, 7, 3, group=7, strides=(2, 2),
      pads=(0, 1, 2, 1), per_channel=True,
      expect={"avx2": ("qlinear_dwconv_avx2_k3x3_s2x2", ""), "generic": ("qlinear_dwconv_", "")})
qconv("qconv_dw_s8_k5_dilated", "int8", "int8", 2, 5, 14, 11, 5, 5, group=5, dil=(2, 1),
      pads=(4, 2, 4, 2), wz=3)
megengine_conv("qconv_dw_half_away_relu", "int8", "Relu", group=4)

# --- AVX2 int16-pair GEMM edges for constant-B products: rows over several blocks and off
# the 16-wide tile, columns off the 6-row panel, odd K, batched A, float QGemm output
BOOK.add("qmatmul_gemm_edges_batched", "QLinearMatMul",
         [q("uint8", 2, 300, 37), s(0.02), z("uint8", 131), Const(q("int8", 37, 13)), s(0.004),
          z("int8", 0), s(0.2), z("uint8", 125)], opset=13,
         expect={"arm64": ("qlinear_matmul_u8_gemm_neon_", ""),
                 "armv7": ("qlinear_matmul_u8_gemm_neon_", "")})
BOOK.add("qgemm_float_out", "QGemm",
         [q("uint8", 21, 10), s(0.02), z("uint8", 120), Const(q("int8", 10, 7)), s(0.004),
          z("int8", 0), Const(_r.integers(-500, 500, 7).astype(np.int32))],
         dict(alpha=1.0), domain=MS, opset=13, exact=False)
BOOK.add("qgemm_s8_relu_clip_u8", "QGemm",
         [q("uint8", 19, 33), s(0.02), z("uint8", 128), Const(q("int8", 11, 33)), s(0.005),
          z("int8", 0), Const(_r.integers(-900, 900, 11).astype(np.int32)), s(0.05),
          z("uint8", 0)], dict(transB=1), domain=MS, opset=13)

# --- the AVX2 (tap, channel pair) GEMM: rows wide enough for the 16-position vector packing
# (stride 1) and its scalar tail, odd input channels per group (a channel paired with
# itself), int8 inputs (sign-extending widening), 1x1 planes packed without im2col, blocks
# of positions, both roundings with an in-register epilogue, saturation at both ends
qconv("qconv_pairs_s8_odd_channels_wide", "int8", "int8", 1, 7, 20, 35, 13, 3,
      pads=(1, 1, 1, 1), per_channel=True, xz=-5, yz=3,
      expect={"arm64": ("qlinear_conv_gemm_neon64_", "")})
qconv("qconv_pairs_u8_group3_odd", "uint8", "int8", 1, 9, 18, 19, 6, 3, group=3,
      pads=(1, 0, 1, 2), per_channel=True, expect={"avx2": ("qlinear_conv_gemm_avx2_", "")})
qconv("qconv_pairs_1x1_plane_u8", "uint8", "int8", 2, 33, 24, 24, 11, 1, per_channel=True,
      expect={"avx2": ("qlinear_conv_gemm_avx2_", "")})
qconv("qconv_pairs_1x1_plane_s8_saturating", "int8", "int8", 1, 40, 9, 13, 7, 1, yz=127)
qconv("qconv_pairs_u8u8_wzp_stride2_wide", "uint8", "uint8", 1, 6, 21, 45, 5, 3,
      strides=(2, 2), pads=(1, 1, 1, 1), wz=125, per_channel=True)
# a 7x7 map (49 = 3 x 16 + 1) and a 5x5 one (25 = 16 + 9): the AVX2 GEMM's last strip of
# <= 8 positions runs its 6 x 8 half tile, one of 9 the full tile; 13 output channels
qconv("qconv_pairs_7x7_half_strip_u8", "uint8", "int8", 2, 24, 7, 7, 13, 3, pads=(1, 1, 1, 1),
      per_channel=True, expect={"avx2": ("qlinear_conv_gemm_avx2_", "")})
qconv("qconv_pairs_5x5_s8_full_tail", "int8", "int8", 1, 10, 5, 5, 7, 1, per_channel=True,
      yz=-128)
qconv("qconv_pairs_1d_wide", "int8", "int8", 2, 5, 1, 70, 3, 3, pads=(0, 1, 0, 1), one_d=True)
megengine_conv("qconv_pairs_half_away_s8_wide", "int8", "", size=(17, 37), channels=(5, 7))
megengine_conv("qconv_pairs_half_away_relu_u8_wide", "uint8", "Relu", size=(9, 40),
               channels=(4, 9))
megengine_conv("qconv_pairs_half_even_clip_u8_wide", "uint8", "Clip", mode="half_even",
               bounds=(-0.3, 0.45), size=(10, 33), channels=(6, 5))
qconv("qconv_pairs_s8_stride2_wide", "int8", "int8", 1, 3, 11, 75, 8, 3, strides=(2, 2),
      pads=(1, 1, 1, 1), per_channel=True, xz=-11)

# --- AVX2 depthwise: rows wide enough for the 16-position tap-pair blocks (stride 1 and 2),
# borders on both sides, an odd tap count (the last tap paired with zero), int8 and uint8,
# per-channel weight zero points, saturation, both roundings, ReLU
qconv("qconv_dw_avx2_u8_s1_wide", "uint8", "int8", 1, 5, 9, 41, 5, 3, group=5,
      pads=(1, 1, 1, 1), per_channel=True,
      expect={"avx2": ("qlinear_dwconv_avx2_k3x3_s1x1", ""),
              "arm64": ("qlinear_dwconv_neon_k3x3_s1x1", ""),
              "armv7": ("qlinear_dwconv_neon_k3x3_s1x1", "")})
qconv("qconv_dw_avx2_s8_s2_wide", "int8", "int8", 2, 3, 11, 70, 3, 3, group=3, strides=(2, 2),
      pads=(1, 1, 1, 1), per_channel=True, xz=-20, yz=127)
qconv("qconv_dw_avx2_u8u8_k5_wzp", "uint8", "uint8", 1, 4, 12, 38, 4, 5, group=4,
      pads=(2, 2, 2, 2), wz=130, per_channel=True)
qconv("qconv_dw_avx2_s8_k3_nopad_saturating", "int8", "int8", 1, 6, 5, 35, 6, 3, group=6,
      yz=-128)
megengine_conv("qconv_dw_avx2_half_away_relu_wide", "int8", "Relu", group=6, size=(7, 36),
               channels=(6, 6))
megengine_conv("qconv_dw_avx2_half_away_u8_wide", "uint8", "", group=5, size=(6, 50),
               channels=(5, 5))
qconv("qconv_dw_avx2_u8_stride3_scalar", "uint8", "int8", 1, 3, 13, 29, 3, 3, group=3,
      strides=(3, 3), pads=(1, 2, 1, 0), per_channel=True)

# --- AVX2 MaxPool on codes: rows wide enough for 32-code vectors (stride 1 and 2, the
# even-byte extraction), padding, dilation, a scalar tail, another stride (scalar pass)
for _t in ("uint8", "int8"):
    for _k, _st, _p, _d, _w in (((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 81),
                                ((3, 3), (1, 1), (0, 1, 2, 1), (1, 1), 47),
                                ((2, 3), (1, 1), (0, 0, 0, 0), (2, 2), 70),
                                ((3, 3), (3, 2), (1, 0, 1, 2), (1, 1), 90)):
        BOOK.add(f"maxpool_wide_{_t}_k{_k[0]}{_k[1]}s{_st[0]}{_st[1]}d{_d[0]}w{_w}", "MaxPool",
                 [q(_t, 1, 3, 9, _w)], dict(kernel_shape=list(_k), strides=list(_st),
                                           pads=list(_p), dilations=list(_d)), opset=12,
                 expect={"avx2": ("maxpool_sep_avx2_", ""), "arm64": ("maxpool_sep_neon_", ""),
                         "armv7": ("maxpool_sep_neon_", "")} if _st == (2, 2) else {})

# --- sdot GEMM (arm64-dot) edges: K off the 4-wide quad, rows off the 12-row block, columns
# off the 8-column panel, int8 A (no shift), uint8 B whose centred values fit int8 (so the
# dot kernel takes it), batched A
BOOK.add("qmatmul_dot_s8s8_k_odd_batched", "QLinearMatMul",
         [q("int8", 2, 29, 13), s(0.02), z("int8", -7), Const(q("int8", 13, 11)), s(0.006),
          z("int8", 0), s(0.1), z("int8", 9)], opset=13)
BOOK.add("qmatmul_dot_u8u8_b_centred_fits", "QLinearMatMul",
         [q("uint8", 14, 21), s(0.02), z("uint8", 120),
          Const(_r.integers(10, 246, (21, 9)).astype(np.uint8)), s(0.004), z("uint8", 128),
          s(0.05), z("uint8", 127)], opset=13)
qconv("qconv_dot_u8u8_centred_fits", "uint8", "uint8", 1, 6, 9, 14, 10, 3, pads=(1, 1, 1, 1),
      wz=128, per_channel=True)

# --- AVX2 vpmaddubsw (u8 x s8 quads): weights whose pairs cannot saturate (|w| <= 64, as
# onnxruntime's reduce_range makes them), extremes included; int8 and uint8 activations
# (int8 shifted by 128), odd channels (quads padded), stride 1 and 2, 1x1 planes, groups,
# padding, both roundings, uint8 weights with a zero point
qconv("qconv_u8s8q_u8_wide_pad", "uint8", "int8", 1, 7, 12, 37, 13, 3, pads=(1, 1, 1, 1),
      per_channel=True, wmax=64, expect={"avx2": ("qlinear_conv_u8s8_avx2_", "")})
qconv("qconv_u8s8q_s8_stride2", "int8", "int8", 2, 5, 15, 40, 7, 3, strides=(2, 2),
      pads=(0, 1, 2, 1), per_channel=True, wmax=64, xz=-9, yz=5)
qconv("qconv_u8s8q_1x1_plane", "uint8", "int8", 1, 22, 10, 19, 9, 1, wmax=60, xz=0)
qconv("qconv_u8s8q_s8_group_saturating", "int8", "int8", 1, 10, 9, 21, 4, 3, group=2,
      pads=(1, 1, 1, 1), wmax=64, yz=127)
qconv("qconv_u8s8q_u8u8_wzp", "uint8", "uint8", 1, 3, 8, 33, 5, 3, pads=(1, 1, 1, 1),
      wz=128, wmax=64)
qconv("qconv_u8s8q_1d_dilated", "uint8", "int8", 1, 9, 1, 50, 6, 3, pads=(0, 2, 0, 2),
      dil=(1, 2), one_d=True, wmax=50)
megengine_conv("qconv_u8s8q_half_away_s8_wide", "int8", "Relu", size=(11, 35), channels=(6, 8),
               wmax=64)
megengine_conv("qconv_u8s8q_half_away_u8_wide", "uint8", "", size=(7, 40), channels=(5, 7),
               wmax=64)


def _extreme_weights(oc, c, k, seed):
    """Pairs at the vpmaddubsw bound: |w(c even)| + |w(c odd)| = 128 (64 + 64, -128 + 0)."""
    g = np.random.default_rng(seed)
    w = np.where(g.integers(0, 2, (oc, c, k, k)) == 1, 64, -64).astype(np.int8)
    w[::2, 0::2] = -128
    w[::2, 1::2] = 0
    return w


for _xt, _xv in (("uint8", 255), ("int8", 127)):
    _xe = np.full((1, 6, 5, 33), _xv, dtype=_xt)
    _xe[0, :, 2, ::3] = 0 if _xt == "uint8" else -128
    BOOK.add(f"qconv_u8s8q_extreme_{_xt}", "QLinearConv",
             [_xe, s(0.05), z(_xt, 0 if _xt == "uint8" else -128),
              Const(_extreme_weights(5, 6, 3, 3)), Const(np.full(5, 0.0004, F32)),
              z("int8", [0] * 5), s(2.0), z(_xt, 0), Const(np.arange(5, dtype=np.int32) * 999)],
             dict(pads=[1, 1, 1, 1]), opset=13,
             expect={"avx2": ("qlinear_conv_u8s8_avx2_", "")})

# --- a bias at the ends of int32 (the Lite-C fuzzer's find: `acc + bias` overflowed, C's
# undefined behaviour): onnxruntime adds it modulo 2^32 (MLAS's vector add), so must every
# kernel; channels whose sum stays in range are unaffected
_b_edge = np.array([2**31 - 10, -2**31 + 10, 2**31 - 1, -2**31, 100, -7], np.int32)
for _xt, _xz, _yz in (("uint8", 0, 128), ("int8", -3, 0)):
    BOOK.add(f"qconv_bias_int32_edges_{_xt}", "QLinearConv",
             [q(_xt, 1, 5, 7, 19), s(0.05), z(_xt, _xz), Const(q("int8", 6, 5, 3, 3)),
              Const(np.linspace(0.002, 0.006, 6).astype(F32)), z("int8", [0] * 6), s(0.08),
              z(_xt, _yz), Const(_b_edge)], dict(pads=[1, 1, 1, 1]), opset=13)
    BOOK.add(f"qconv_dw_bias_int32_edges_{_xt}", "QLinearConv",
             [q(_xt, 1, 6, 7, 21), s(0.05), z(_xt, _xz), Const(q("int8", 6, 1, 3, 3)),
              s(0.004), z("int8", 0), s(0.08), z(_xt, _yz), Const(_b_edge)],
             dict(pads=[1, 1, 1, 1], group=6), opset=13)
BOOK.add("qgemm_bias_int32_edges", "QGemm",
         [q("uint8", 9, 40), s(0.02), z("uint8", 128), Const(q("int8", 6, 40)), s(0.005),
          z("int8", 0), Const(_b_edge), s(0.05), z("uint8", 128)], dict(transB=1),
         domain=MS, opset=13)

# full-range centred weights (uint8 weights, zero point 0: up to 255): sdot / smmla cannot take
# them, the int16 NEON GEMM must (on arm64-i8mm too), bit-exact
qconv("qconv_neon_full_range_u8u8", "uint8", "uint8", 1, 7, 9, 21, 10, 3, pads=(1, 1, 1, 1),
      wz=0, per_channel=True, expect={"arm64": ("qlinear_conv_gemm_neon", ""),
                                      "armv7": ("qlinear_conv_gemm_neon_", "")})


# --- Cortex-M (cortexm4: DSP / SMLAD, cortexm55: Helium / MVE): K off the 4- and 16-wide
# steps, an odd number of output channels and positions (the 2 x 2 and 4 x 1 tiles' edges),
# int8 and uint8 inputs, zero points, the cost model choosing the extension's kernel
_MCU_CONV = {"cortexm4": ("qlinear_conv_smlad_dsp_", ""), "cortexm55": ("qlinear_conv_vmladav_mve_", "")}
_MCU_DW = {"cortexm4": ("qlinear_dwconv_smlad_dsp_", ""), "cortexm55": ("qlinear_dwconv_vmla_mve_", "")}
_MCU_FC = {t: {"cortexm4": (f"qlinear_matmul_{t}_smlad_dsp_", ""),
               "cortexm55": (f"qlinear_matmul_{t}_vmladav_mve_", "")} for t in ("u8", "s8")}
qconv("qconv_mcu_u8_k_odd_oc_odd", "uint8", "int8", 1, 3, 7, 9, 7, 3, pads=(1, 1, 1, 1),
      per_channel=True, expect=_MCU_CONV)
qconv("qconv_mcu_s8_1x1_k17_p_odd", "int8", "int8", 1, 17, 5, 3, 6, 1, xz=-3, yz=127,
      expect=_MCU_CONV)
qconv("qconv_mcu_s8_stride2_group2", "int8", "int8", 1, 10, 11, 9, 6, 3, group=2,
      strides=(2, 2), pads=(1, 1, 1, 1), per_channel=True, xz=100, expect=_MCU_CONV)
megengine_conv("qconv_mcu_half_away_relu", "int8", "Relu", size=(6, 7), channels=(5, 9))
qconv("qconv_mcu_dw_u8_k3_s1", "uint8", "int8", 1, 5, 9, 13, 5, 3, group=5,
      pads=(1, 1, 1, 1), per_channel=True, expect=_MCU_DW)
qconv("qconv_mcu_dw_s8_k5_s2_asym", "int8", "int8", 1, 4, 11, 10, 4, 5, group=4,
      strides=(2, 2), pads=(2, 1, 2, 2), xz=-50, yz=-128, expect=_MCU_DW)
qconv("qconv_mcu_dw_u8u8_k4_wzp", "uint8", "uint8", 2, 3, 8, 9, 3, 4, group=3,
      pads=(1, 2, 2, 1), wz=128, per_channel=True, expect=_MCU_DW)
BOOK.add("qmatmul_mcu_u8s8_k37_n5_m3", "QLinearMatMul",
         [q("uint8", 3, 37), s(0.02), z("uint8", 131), Const(q("int8", 37, 5)), s(0.004),
          z("int8", 0), s(0.2), z("uint8", 125)], opset=13, expect=_MCU_FC["u8"])
BOOK.add("qmatmul_mcu_s8s8_k64_n10_m1", "QLinearMatMul",
         [q("int8", 1, 64), s(0.03), z("int8", 5), Const(q("int8", 64, 10)), s(0.003),
          z("int8", 0), s(0.1), z("int8", -2)], opset=13, expect=_MCU_FC["s8"])
BOOK.add("qgemm_mcu_u8_transb_bias_k7", "QGemm",
         [q("uint8", 4, 7), s(0.02), z("uint8", 128), Const(q("int8", 9, 7)), s(0.005),
          z("int8", 0), Const(_r.integers(-900, 900, 9).astype(np.int32)), s(0.05),
          z("uint8", 10)], dict(transB=1), domain=MS, opset=13)


# --- fixed-point requantization (requant="fixed", enable_fixed_point_requant): the Q31
# multiplier m and exponent e of s_in * s_w[c] / s_out (real = m * 2^(e-31)) computed here
# in float64 and the output in exact integers, (acc * m + 2^(30-e)) >> (31-e); Clip's bounds
# rounded half away in output steps. The reference also checks the mode's promise: never
# more than one step from the exact real value (acc * real rounded), on every case.
def _q31(real):
    import math

    m, e = [], []
    for r in np.asarray(real, np.float64).reshape(-1):
        frac, exp = math.frexp(float(r))
        q = int(round(frac * 2 ** 31))
        if q == 2 ** 31:
            q, exp = q // 2, exp + 1
        m.append(q)
        e.append(exp)
    return m, e


def _fixed_requant(acc, real, zp, dtype, act, bounds, so, axis_len):
    m, e = _q31(real)
    m, e = np.broadcast_to(m, (axis_len,)), np.broadcast_to(e, (axis_len,))
    lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
    lo, hi = lo - zp, hi - zp
    if act == "Relu":
        lo = max(lo, 0)
    if act == "Clip":
        steps = [int(np.floor(abs(b / float(so)) + 0.5)) * (1 if b >= 0 else -1) for b in bounds]
        lo, hi = max(lo, steps[0]), min(hi, steps[1])
    out = np.empty(acc.shape, np.int64)
    exact = np.empty(acc.shape, np.float64)
    for idx in np.ndindex(*acc.shape):
        c = idx[1] if acc.ndim == 4 else idx[-1]
        t = 31 - int(e[c])
        out[idx] = (int(acc[idx]) * int(m[c]) + (1 << (t - 1))) >> t
        exact[idx] = float(acc[idx]) * float(np.broadcast_to(real, (axis_len,))[c])
    assert np.all(np.abs(out - np.rint(exact)) <= 1), "fixed point more than a step off"
    return (np.clip(out, lo, hi) + zp).astype(dtype)


def fixed_conv(id_, xt, act, bounds=None, group=1, size=(6, 7), channels=(3, 5), xz=0, yz=0,
               per_channel=True, expect=None):
    c, oc = channels
    x = q(xt, 1, c, *size)
    w = q("int8", oc, c // group, 3, 3)
    ws = (np.linspace(0.002, 0.01, oc) if per_channel else np.full(oc, 0.004)).astype(F32)
    bias = _r.integers(-2000, 2000, oc).astype(np.int32)
    xs, ys = F32(0.05), F32(0.04)
    attrs = dict(pads=[1, 1, 1, 1], group=group, requant="fixed", activation=act)
    if bounds:
        attrs["activation_bounds"] = list(bounds)

    def ref(x, xs_, xz_, w, ws_, wz_, ys_, yz_, b):
        acc = _conv_acc(x, xz, w, 0, (1, 1, 1, 1), group) + b.reshape(1, -1, 1, 1)
        real = np.float64(xs) * ws.astype(np.float64) / np.float64(ys)
        return [_fixed_requant(acc, real, yz, xt, act, bounds, ys, oc)]

    BOOK.add(id_, "QLinearConv", [x, s(xs), z(xt, xz), Const(w),
                                   Const(ws if per_channel else ws[:1]),
                                   Const(np.zeros(oc if per_channel else 1, "int8")), s(ys),
                                   z(xt, yz), Const(bias)], attrs, ref=ref, opset=13,
             expect=expect or {})


fixed_conv("qconv_fixed_s8", "int8", "", xz=3, yz=-5,
           expect={"cortexm4": ("qlinear_conv_smlad_dsp_", ""),
                   "cortexm55": ("qlinear_conv_vmladav_mve_", "")})
fixed_conv("qconv_fixed_u8_relu_per_tensor", "uint8", "Relu", xz=128, yz=120, per_channel=False)
fixed_conv("qconv_fixed_s8_clip_group", "int8", "Clip", bounds=(-0.3, 0.5), group=2,
           channels=(4, 6), yz=10)
fixed_conv("qconv_fixed_dw_u8", "uint8", "Relu", group=5, channels=(5, 5), size=(9, 10),
           xz=100, yz=3)


def _fixed_matmul_ref(at, yz, act=""):
    def ref(a, as_, az, b, bs, bz, ys, yz_):
        acc = (a.astype(np.int64) - int(az)) @ (b.astype(np.int64) - np.asarray(bz, np.int64))
        real = np.float64(as_) * np.asarray(bs, np.float64).reshape(-1) / np.float64(ys)
        return [_fixed_requant(acc, real, yz, at, act, None, ys, b.shape[1])]
    return ref


BOOK.add("qmatmul_fixed_u8s8", "QLinearMatMul",
         [q("uint8", 5, 37), s(0.02), z("uint8", 128), Const(q("int8", 37, 9)),
          Const(np.linspace(0.001, 0.01, 9).astype(F32)), Const(np.zeros(9, np.int8)), s(0.1),
          z("uint8", 120)], dict(requant="fixed"), opset=21,
         ref=_fixed_matmul_ref("uint8", 120),
         expect={"cortexm4": ("qlinear_matmul_u8_q31_smlad_dsp_", ""),
                 "cortexm55": ("qlinear_matmul_u8_q31_vmladav_mve_", "")})
BOOK.add("qmatmul_fixed_s8s8_relu", "QLinearMatMul",
         [q("int8", 3, 20), s(0.03), z("int8", -2), Const(q("int8", 20, 6)), s(0.004),
          z("int8", 0), s(0.05), z("int8", -10)], dict(requant="fixed", activation="Relu"),
         opset=13, ref=_fixed_matmul_ref("int8", -10, "Relu"))

# --- AVX2 integer Winograd F(2x2, 3x3) (3x3 stride 1): channel counts off the 16-channel
# vectors and the 16-channel weight blocks, odd output sizes (partial 2x2 tiles), tile
# counts off the 6-tile group, asymmetric padding, batches, int8 and uint8 activations,
# uint8 weights with a zero point (centred to +-255: the widest transformed weights),
# saturation, both roundings, Relu and Clip; the cost model picks it for 32 and more channels
_WINO = {"avx2": ("qlinear_conv_winograd_avx2_", "")}
qconv("qconv_wino_u8_odd_out", "uint8", "int8", 1, 20, 11, 13, 24, 3, pads=(1, 1, 1, 1),
      per_channel=True)
qconv("qconv_wino_s8_asym_batch_saturating", "int8", "int8", 2, 17, 9, 14, 33, 3,
      pads=(0, 1, 2, 1), per_channel=True, xz=-5, yz=127)
qconv("qconv_wino_u8u8_wzp_nopad", "uint8", "uint8", 1, 40, 8, 9, 16, 3, wz=125,
      per_channel=True, expect=_WINO)
qconv("qconv_wino_s8_per_tensor_no_bias", "int8", "int8", 1, 32, 6, 7, 40, 3,
      pads=(1, 1, 1, 1), bias=False, expect=_WINO)
megengine_conv("qconv_wino_half_away_relu_s8", "int8", "Relu", size=(10, 9), channels=(24, 20))
megengine_conv("qconv_wino_half_away_u8", "uint8", "", size=(7, 12), channels=(33, 17))
megengine_conv("qconv_wino_half_even_clip_u8", "uint8", "Clip", mode="half_even",
               bounds=(-0.2, 0.6), size=(9, 9), channels=(18, 30))
# the exactness bound: 255 * sum|w - w_zp| = 255 * 900 * 9 * 255 < 2^29, so 4 * acc still
# fits int32; every input at 255 with zero point 0 puts the accumulators at that bound
_xw = np.full((1, 900, 4, 5), 255, np.uint8)
_xw[0, ::7, 1, 2] = 0
BOOK.add("qconv_wino_accumulator_at_bound", "QLinearConv",
         [_xw, s(1.0), z("uint8", 0), Const(np.full((3, 900, 3, 3), 255, np.uint8)),
          Const(np.array([2.0 ** -22, 2.0 ** -23, 2.0 ** -21], F32)), z("uint8", [0] * 3),
          s(1.0), z("uint8", 0), Const(np.array([7, -2**31 + 5, 2**31 - 9], np.int32))],
         dict(pads=[1, 1, 1, 1]), opset=13)

# --- AVX512-VNNI vpdpbusd quads (x86_64-vnni): full-range int8 weights (-128 everywhere: every
# vpmaddubsw pair would saturate), int8 activations at both ends (shifted by 128 to 0 / 255),
# a long K (576, 16-bit partial sums would overflow), positions off the 16-wide strip,
# stride 2, 1x1 with wide K; a matmul with odd K / M / N, an int8 A zero point and -128 in
# B; uint8 weights centred beyond int8 are refused (the AVX2 int16-pair GEMM is chosen)
_VNNI = {"vnni": ("qlinear_conv_u8s8_vnni_", "")}
_xv = np.where(_r.integers(0, 2, (1, 64, 7, 9)) == 1, 127, -128).astype(np.int8)
_wv = np.full((24, 64, 3, 3), -128, np.int8)
_wv[1::2, ::3] = 127
BOOK.add("qconv_vnni_full_range_extremes_s8", "QLinearConv",
         [_xv, s(0.05), z("int8", -128), Const(_wv), Const(np.linspace(1e-5, 4e-5, 24, dtype=F32)),
          z("int8", [0] * 24), s(0.5), z("int8", 3), Const(_r.integers(-9000, 9000, 24)
                                                         .astype(np.int32))],
         dict(pads=[1, 1, 1, 1]), opset=13, expect=_VNNI)
qconv("qconv_vnni_1x1_wide_k_u8", "uint8", "int8", 1, 256, 7, 7, 30, 1, per_channel=True,
      expect=_VNNI)
qconv("qconv_vnni_s8_stride2_odd", "int8", "int8", 2, 19, 13, 15, 11, 3, strides=(2, 2),
      pads=(1, 1, 1, 1), per_channel=True, xz=-100, expect=_VNNI)
qconv("qconv_vnni_refuses_u8_weights_beyond_int8", "uint8", "uint8", 1, 16, 6, 10, 8, 1,
      expect={"vnni": ("qlinear_conv_gemm_avx2_", "")})
_bv = q("int8", 131, 13)
_bv[::5, ::2] = -128
BOOK.add("qgemm_vnni_s8_full_range_odd", "QGemm",
         [q("int8", 23, 131), s(0.02), z("int8", -7), Const(_bv),
          Const(np.linspace(0.002, 0.01, 13).astype(F32)), z("int8", [0] * 13),
          Const(_r.integers(-5000, 5000, 13).astype(np.int32)), s(0.3), z("int8", 5)],
         domain=MS, opset=13, expect={"vnni": ("qgemm_s8_vnni_", "")})


# --- AVX-512BW MaxPool (x86_64-vnni): rows longer than one 64-code vector with masked tails,
# SqueezeNet's 3x3 stride 2 without padding (111 wide) and with ceil_mode (windows past the
# row), stride 1 with padding, a dilated stride 2, a stride-3 scalar pass
for _t in ("uint8", "int8"):
    for _k, _st, _p, _d, _w, _ceil in (((3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 111, 0),
                                       ((3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 130, 1),
                                       ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 129, 0),
                                       ((2, 3), (2, 2), (1, 2, 0, 1), (2, 2), 97, 0),
                                       ((3, 2), (1, 3), (0, 1, 2, 0), (1, 1), 75, 1)):
        BOOK.add(f"maxpool_zmm_{_t}_k{_k[0]}{_k[1]}s{_st[0]}{_st[1]}d{_d[0]}w{_w}c{_ceil}",
                 "MaxPool", [q(_t, 2, 3, 7, _w)],
                 dict(kernel_shape=list(_k), strides=list(_st), pads=list(_p),
                      dilations=list(_d), ceil_mode=_ceil), opset=12,
                 # stride 2: the AVX2 separable kernel measured faster (pool_vnni_s8.cost)
                 expect={"vnni": ("maxpool_sep_avx2_" if _st[1] == 2 else "maxpool_vnni_",
                                  "")})

# --- VNNI GEMV (QGemm / QLinearMatMul with at most 4 rows of A: B quads in 16-column panels,
# the row broadcast): one row (fc), N off the 16-column panel and past the 64-column pass,
# K off the quad, uint8 and int8 A with zero points, per-column B scales, saturating output
_bg = _r.integers(-128, 128, (131, 75)).astype(np.int8)
_bg[:3] = 127
_bg[3:6] = -128
BOOK.add("qgemm_vnni_gemv_u8_m1", "QGemm",
         [q("uint8", 1, 131), s(0.02), z("uint8", 131), Const(_bg),
          Const(np.linspace(0.002, 0.01, 75).astype(F32)), z("int8", [0] * 75),
          Const(_r.integers(-5000, 5000, 75).astype(np.int32)), s(0.2), z("uint8", 120)],
         domain=MS, opset=13, expect={"vnni": ("qgemm_u8_vnni_gemv_", "")})
BOOK.add("qgemm_vnni_gemv_s8_m3", "QGemm",
         [q("int8", 3, 131), s(0.02), z("int8", -7), Const(_bg),
          Const(np.linspace(0.002, 0.01, 75).astype(F32)), z("int8", [0] * 75),
          Const(_r.integers(-5000, 5000, 75).astype(np.int32)), s(0.3), z("int8", 5)],
         domain=MS, opset=13, expect={"vnni": ("qgemm_s8_vnni_gemv_", "")})
BOOK.add("qlinear_matmul_vnni_gemv_u8_m2", "QLinearMatMul",
         [q("uint8", 2, 131), s(0.03), z("uint8", 3), Const(_bg), s(0.004), z("int8", 0),
          s(0.5), z("uint8", 128)], opset=13,
         expect={"vnni": ("qlinear_matmul_u8_vnni_gemv_", "")})

# --- VNNI channel-lane tile (7 positions x 32 output channels; 7x7 and 14x14 maps, reduction
# >= 64 quads): output channels off the 16-channel panel (94 = 5 x 16 + 14), input channels off
# the quad, positions off the 7-position tile (stride 2: 7x7 out of 13x13 with padding; 1x1
# on a 3x11 map, 33 positions), uint8 and int8 activations, per-tensor and per-channel
# weights with a zero point, group 2; each asserts the c32 kernel ran
qconv("qconv_vnni_c32_u8_3x3_7x7", "uint8", "int8", 1, 115, 7, 7, 94, 3, pads=(1, 1, 1, 1),
      per_channel=True, expect={"vnni": ("qlinear_conv_u8s8_vnni_c32_", "")})
qconv("qconv_vnni_c32_s8_3x3_s2", "int8", "int8", 1, 120, 13, 13, 64, 3, strides=(2, 2),
      pads=(1, 1, 1, 1), wz=3, wmax=120, expect={"vnni": ("qlinear_conv_u8s8_vnni_c32_", "")})
qconv("qconv_vnni_c32_u8_1x1_33", "uint8", "int8", 1, 1030, 3, 11, 62, 1, bias=False,
      expect={"vnni": ("qlinear_conv_u8s8_vnni_c32_", "")})
qconv("qconv_vnni_c32_s8_group2", "int8", "int8", 1, 2 * 116, 7, 7, 2 * 32, 3, group=2,
      pads=(1, 1, 1, 1), per_channel=True, yz=100,
      expect={"vnni": ("qlinear_conv_u8s8_vnni_c32_", "")})
# a 14x14 map (196 positions against the position tile's 208), 1x1 with 64 quads; a 13x13
# map (169 against 176) keeps the position tile
qconv("qconv_vnni_c32_u8_1x1_14x14_k64", "uint8", "int8", 1, 256, 14, 14, 64, 1,
      per_channel=True, expect={"vnni": ("qlinear_conv_u8s8_vnni_c32_", "")})
qconv("qconv_vnni_13x13_position_tile", "uint8", "int8", 1, 64, 13, 13, 40, 3,
      pads=(1, 1, 1, 1), per_channel=True,
      expect={"vnni": ("qlinear_conv_u8s8_vnni_u8s8_", "")})

# --- AVX2 integer Winograd F(4x4, 3x3) (winograd_f43_avx2_s8): images whose 4x4 tiles do not
# divide them (partial tiles on both edges), channel counts off 16, asymmetric padding,
# batches, int8 and uint8 activations (non-zero zero points: the accumulator centres move),
# uint8 weights with a zero point, saturation, both roundings, Relu and Clip; then the
# recovery window: 576 * acc wraps int32 long before |acc - centre| reaches 2^25
_WINO43 = {"avx2": ("qlinear_conv_winograd_f43_avx2_", "")}
qconv("qconv_wino43_u8_wide", "uint8", "int8", 1, 40, 21, 23, 24, 3, pads=(1, 1, 1, 1),
      per_channel=True, expect=_WINO43)
qconv("qconv_wino43_s8_asym_batch_saturating", "int8", "int8", 2, 17, 15, 18, 33, 3,
      pads=(0, 1, 2, 1), per_channel=True, xz=-5, yz=127)
qconv("qconv_wino43_u8u8_wzp_nopad", "uint8", "uint8", 1, 48, 18, 17, 20, 3, wz=125,
      per_channel=True, expect=_WINO43)
qconv("qconv_wino43_s8_per_tensor_no_bias", "int8", "int8", 1, 32, 22, 23, 40, 3,
      pads=(1, 1, 1, 1), bias=False, xz=-128, expect=_WINO43)
megengine_conv("qconv_wino43_half_away_relu_s8", "int8", "Relu", size=(17, 19),
               channels=(24, 20))
megengine_conv("qconv_wino43_half_even_clip_u8", "uint8", "Clip", mode="half_even",
               bounds=(-0.2, 0.6), size=(13, 22), channels=(18, 30))
# 114 channels of 255 (zero point 0) against inputs at 255: acc up to 255 * 255 * 9 * 114 =
# 6.7e7 (576 * acc is far beyond int32), centre 3.3e7, |acc - centre| < 2^25 = 3.36e7; then
# the input zero point 255 (centred inputs in [-255, 0]) turns the range negative; biases at
# the int32 ends (centre + bias wraps)
_xw43 = np.full((1, 114, 9, 10), 255, np.uint8)
_xw43[0, ::5, 3, 4] = 0
_xw43[0, 1::7, 6, :] = 0
BOOK.add("qconv_wino43_accumulator_at_window", "QLinearConv",
         [_xw43, s(1.0), z("uint8", 0), Const(np.full((3, 114, 3, 3), 255, np.uint8)),
          Const(np.array([2.0 ** -23, 2.0 ** -24, 2.0 ** -22], F32)), z("uint8", [0] * 3),
          s(1.0), z("uint8", 0), Const(np.array([7, -2**31 + 5, 2**31 - 9], np.int32))],
         dict(pads=[1, 1, 1, 1]), opset=13)
BOOK.add("qconv_wino43_accumulator_at_window_negative", "QLinearConv",
         [255 - _xw43, s(1.0), z("uint8", 255), Const(np.full((3, 114, 3, 3), 255, np.uint8)),
          Const(np.array([2.0 ** -23, 2.0 ** -24, 2.0 ** -22], F32)), z("uint8", [0] * 3),
          s(1.0), z("uint8", 255), Const(np.array([-2**31 + 5, 7, 2**31 - 9], np.int32))],
         dict(pads=[1, 1, 1, 1]), opset=13)

# --- AVX2 few-channel stem (conv_stem_avx2_s8): horizontal tap pairs on a padded plane; odd
# kernel widths (the last pair's zero weight), 1, 3 and 4 channels, output rows off the
# 16-position vector (runs overshoot into the next row's positions), asymmetric padding,
# batches, int8 / uint8 activations with zero points at the ends, uint8 weights with a zero
# point, extreme codes, stride 1 (the scalar packing)
_STEM = {"avx2": ("qlinear_conv_stem_avx2_", "")}
qconv("qconv_stem_u8_7x7_s2", "uint8", "int8", 1, 3, 37, 41, 13, 7, strides=(2, 2),
      pads=(3, 3, 3, 3), per_channel=True, expect=_STEM)
qconv("qconv_stem_s8_3x3_s2_batch_saturating", "int8", "int8", 2, 3, 23, 30, 20, 3,
      strides=(2, 2), pads=(1, 0, 1, 1), per_channel=True, xz=-100, yz=127, expect=_STEM)
qconv("qconv_stem_u8u8_wzp_c1_5x5", "uint8", "uint8", 1, 1, 19, 17, 7, 5, strides=(2, 2),
      pads=(2, 1, 0, 2), wz=125, per_channel=True)
qconv("qconv_stem_s8_c4_stride1", "int8", "int8", 1, 4, 9, 12, 11, 3, pads=(1, 1, 1, 1),
      per_channel=True, xz=127)
_xs = np.where(_r.integers(0, 2, (1, 3, 20, 35)) == 1, 255, 0).astype(np.uint8)
_ws = np.where(_r.integers(0, 2, (10, 3, 3, 3)) == 1, 127, -128).astype(np.int8)
BOOK.add("qconv_stem_extremes_u8", "QLinearConv",
         [_xs, s(0.05), z("uint8", 0), Const(_ws), Const(np.linspace(1e-4, 4e-4, 10, dtype=F32)),
          z("int8", [0] * 10), s(0.5), z("uint8", 3),
          Const(_r.integers(-9000, 9000, 10).astype(np.int32))],
         dict(pads=[1, 1, 1, 1], strides=[2, 2]), opset=13, expect=_STEM)

# --- AVX2 GEMV for few rows of A (matmul_gemv_avx2_s8): one row against wide B (a classifier
# head: K off the pair unroll, N off 16), transposed B with per-column scales, zero points
# and a bias, extreme codes over a long K, float output, batched rows (2 x 2 <= 4 rows)
_ag = np.where(_r.integers(0, 2, (1, 1001)) == 1, 255, 0).astype(np.uint8)
_bg = np.where(_r.integers(0, 2, (1001, 37)) == 1, 127, -128).astype(np.int8)
BOOK.add("qgemm_gemv_row_extremes_long_k", "QGemm",
         [_ag, s(0.02), z("uint8", 0), Const(_bg), Const(np.linspace(1e-5, 4e-5, 37, dtype=F32)),
          z("int8", [0] * 37), Const(_r.integers(-9000, 9000, 37).astype(np.int32)), s(0.5),
          z("uint8", 128)], domain=MS, opset=13, expect={"avx2": ("qgemm_u8_gemv_avx2_", "")})
BOOK.add("qgemm_gemv_transb_per_column_zp", "QGemm",
         [q("uint8", 1, 203), s(0.02), z("uint8", 120), Const(q("int8", 45, 203)),
          Const(np.linspace(0.001, 0.004, 45).astype(F32)), z("int8", [3] * 45),
          Const(_r.integers(-2000, 2000, 45).astype(np.int32)), s(0.07), z("uint8", 128)],
         dict(transB=1), domain=MS, opset=13)
BOOK.add("qgemm_gemv_float_out_3_rows", "QGemm",
         [q("uint8", 3, 64), s(0.02), z("uint8", 120), Const(q("int8", 64, 19)), s(0.004),
          z("int8", 0), Const(_r.integers(-500, 500, 19).astype(np.int32))],
         dict(alpha=1.0), domain=MS, opset=13, exact=False)
BOOK.add("qmatmul_gemv_s8_batched_rows", "QLinearMatMul",
         [q("int8", 2, 2, 33), s(0.03), z("int8", -3), Const(q("int8", 33, 18)), s(0.004),
          z("int8", 0), s(0.2), z("int8", 5)], opset=13,
         expect={"avx2": ("qlinear_matmul_s8_gemv_avx2_", "")})

# --- vector MaxPool on codes (pool_sep_s8) for rows narrower than the widest vector: the
# 16- and 8-code widths (SqueezeNet's 55 -> 27 and 27 -> 13 rows), rows and output rows
# ending in an overlapping vector, ceil_mode windows past the row, padding, dilation, a
# row narrower than every width (scalar), stride 1 over 20 and 12 columns
for _t in ("uint8", "int8"):
    for _k, _st, _p, _d, _w, _ceil in (((3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 55, 0),
                                       ((3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 27, 1),
                                       ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 34, 0),
                                       ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 20, 0),
                                       ((2, 3), (1, 1), (0, 2, 1, 0), (2, 2), 12, 1),
                                       ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 7, 1)):
        BOOK.add(f"maxpool_narrow_{_t}_k{_k[0]}{_k[1]}s{_st[0]}{_st[1]}d{_d[0]}w{_w}c{_ceil}",
                 "MaxPool", [q(_t, 2, 3, 6, _w)],
                 dict(kernel_shape=list(_k), strides=list(_st), pads=list(_p),
                      dilations=list(_d), ceil_mode=_ceil), opset=12,
                 expect={"avx2": ("maxpool_sep_avx2_", ""), "arm64": ("maxpool_sep_neon_", ""),
                         "armv7": ("maxpool_sep_neon_", "")})

# --- QLinearSoftmax (onnxruntime's exp-table kernel): opset >= 13 rows along one axis
# (last, inner, outer), opset < 13 rows coerced to 2-D at the axis; odd row lengths;
# rows of one repeated code and rows with one dominant code (probability 1: int8 wraps
# to -128 at y_zp -128, as onnxruntime's kernel does); rows of length 1, whose product
# overflows float at y_scale 1/256 (onnxruntime's conversions of infinity); non-zero zero
# points (the input's cancels out) and output scales other than the quantizer's 1/256
def _softmax_input(t, *shape):
    x = q(t, *shape)
    lo, hi = (-128, 127) if t == "int8" else (0, 255)
    flat = x.reshape(-1, shape[-1])
    flat[0] = hi                      # one repeated code
    flat[1] = lo
    flat[1, shape[-1] // 2] = hi      # one dominant code
    return x


for _t in ("uint8", "int8"):
    _lo = -128 if _t == "int8" else 0
    _zx = -7 if _t == "int8" else 131
    for _id, _shape, _attrs, _ys, _zy in (
            ("last", (3, 37), dict(axis=-1, opset=13), 1.0 / 256, _lo),
            ("classifier_1000", (2, 1000), dict(axis=1, opset=13), 1.0 / 256, _lo),
            ("default_axis", (4, 13), dict(opset=13), 1.0 / 256, _lo),
            ("inner_axis", (2, 9, 5), dict(axis=1, opset=13), 1.0 / 256, _lo),
            ("outer_axis", (7, 3, 4), dict(axis=0, opset=13), 0.01, _lo + 9),
            ("coerced_axis1", (2, 3, 5), dict(axis=1, opset=11), 0.003, _lo + 20),
            ("coerced_axis0", (3, 11), dict(axis=0, opset=12), 1.0 / 255, _lo + 1),
            ("coerced_default_axis", (5, 2, 3), dict(opset=12), 1.0 / 256, _lo),
            ("row_of_one", (5, 1), dict(axis=-1, opset=13), 1.0 / 256, _lo + 3),
            ("row_of_one_neg_zp", (5, 1), dict(axis=-1, opset=13), 1.0 / 256, -100
             if _t == "int8" else 250)):
        BOOK.add(f"qsoftmax_{_t}_{_id}", "QLinearSoftmax",
                 [_softmax_input(_t, *_shape), s(0.06 if _id != "last" else 0.2),
                  z(_t, _zx), s(_ys), z(_t, _zy)], _attrs, domain=MS, opset=13)

# --- DynamicQuantizeLSTM (what quantize_dynamic makes of an ONNX LSTM): X and each step's
# hidden rows quantized to uint8 by their own range, integer products with 8-bit W / R,
# MLAS's logistic and tanh. Batch 1: onnxruntime quantizes the hidden rows of a batch
# chunk by chunk when it has several threads and a batch of 2 or more, and the harness's
# onnxruntime runs with its default threads (batches > 1: tests/test_int8_dynamic_lstm.py,
# one thread). Odd sizes; per-tensor and per-column scales; int8 weights (the quantizer's)
# and uint8 weights with a zero point per direction; all optional inputs, lengths short
# of the sequence and of length 0; clip and input_forget.
def _dq_lstm(dirs, I, H, S, w_type="int8", per_column=False, bias=True, lens=None,
             states=False, peep=False, **attrs):
    def weights(rows):
        if w_type == "int8":
            w, zp = _r.integers(-127, 128, (dirs, rows, 4 * H)).astype(np.int8), None
        else:
            w = _r.integers(0, 256, (dirs, rows, 4 * H)).astype(np.uint8)
            zp = np.repeat(_r.integers(100, 160, (dirs, 1)), 4 * H if per_column else 1,
                           axis=1).astype(np.uint8)
        n = (dirs, 4 * H) if per_column else (dirs,)
        sc = (_r.uniform(0.004, 0.02, n)).astype(F32)
        if zp is None:
            zp = np.zeros(n, np.int8)
        return [Const(w), Const(sc), Const(zp.reshape(n))]
    w, ws, wz = weights(I)
    r, rs, rz = weights(H)
    ins = [(_r.standard_normal((S, 1, I)) * 1.5).astype(F32), w, r,
           Const((_r.standard_normal((dirs, 8 * H)) * 0.3).astype(F32)) if bias else None,
           None if lens is None else np.array(lens, np.int32),
           (_r.standard_normal((dirs, 1, H)) * 0.5).astype(F32) if states else None,
           (_r.standard_normal((dirs, 1, H)) * 0.5).astype(F32) if states else None,
           Const((_r.standard_normal((dirs, 3 * H)) * 0.3).astype(F32)) if peep else None,
           ws, wz, rs, rz]
    attrs = dict(hidden_size=H, **attrs)
    if dirs == 2:
        attrs["direction"] = "bidirectional"
    return ins, attrs


for _id, _kw in (
        ("fwd_plain", dict(dirs=1, I=5, H=7, S=6)),
        ("fwd_all_inputs", dict(dirs=1, I=9, H=12, S=5, per_column=True, lens=[3],
                                states=True, peep=True)),
        ("rev_all_inputs", dict(dirs=1, I=4, H=9, S=7, per_column=True, lens=[5],
                                states=True, peep=True, direction="reverse")),
        ("bi_per_column", dict(dirs=2, I=6, H=5, S=4, per_column=True, states=True,
                               peep=True, lens=[4])),
        ("bi_u8_weights", dict(dirs=2, I=3, H=6, S=5, w_type="uint8", lens=[3])),
        ("fwd_u8_per_column", dict(dirs=1, I=8, H=4, S=3, w_type="uint8", per_column=True,
                                   bias=False)),
        ("fwd_clip_input_forget", dict(dirs=1, I=5, H=6, S=6, clip=0.7, input_forget=1,
                                       peep=True, states=True)),
        ("bi_length_0", dict(dirs=2, I=5, H=6, S=3, lens=[0], states=True))):
    _ins, _attrs = _dq_lstm(**_kw)
    BOOK.add(f"dq_lstm_{_id}", "DynamicQuantizeLSTM", _ins, _attrs, domain=MS, n_out=3,
             opset=14)


# --- fixed-point QLinearAdd / QLinearMul (requant="fixed"): CMSIS-NN's integer arithmetic,
# the multipliers computed here in float64 from the float32 scales, the outputs in exact
# integers. Add: each centred operand << 20, rescaled by the Q31 form of s_x / (2 max(sa,
# sb)), summed, then requantized by 2 max(sa, sb) / (sc 2^20); Mul: the product of the
# centred operands requantized by sa sb / sc. Every case also checks the mode's promise:
# never more than one step from the exact real result.
def _q31_apply(v, real):
    (m,), (e,) = _q31(real)
    t = 31 - e
    return (np.asarray(v, np.int64) * m + (1 << (t - 1))) >> t  # int64 exact (|v| < 2^28)


def _fixed_binary_ref(op_type, dtype, act="", bounds=None):
    def ref(a, as_, az, b, bs, bz, cs, cz):
        sa, sb, sc = (float(np.float64(v)) for v in (as_, bs, cs))
        ca = a.astype(np.int64) - int(az)
        cb = b.astype(np.int64) - int(bz)
        if op_type == "QLinearAdd":
            tm = 2.0 * max(sa, sb)
            acc = _q31_apply(ca << 20, sa / tm) + _q31_apply(cb << 20, sb / tm)
            out = _q31_apply(acc, tm / (sc * 2.0 ** 20))
            exact = (sa * ca + sb * cb) / sc
        else:
            out = _q31_apply(ca * cb, sa * sb / sc)
            exact = sa * sb * (ca * cb) / sc
        assert np.all(np.abs(out - np.rint(exact)) <= 1), "fixed point more than a step off"
        lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
        lo, hi = lo - int(cz), hi - int(cz)
        if act == "Relu":
            lo = max(lo, 0)
        if act == "Clip":
            st = [int(np.floor(abs(v / sc) + 0.5)) * (1 if v >= 0 else -1) for v in bounds]
            lo, hi = max(lo, st[0]), min(hi, st[1])
        return [(np.clip(out, lo, hi) + int(cz)).astype(dtype)]
    return ref


def fixed_binary(id_, op_type, dtype, sa_shape, sb_shape, scales, zps, act="", bounds=None):
    attrs = dict(requant="fixed")
    if act:
        attrs["activation"] = act
    if bounds:
        attrs["activation_bounds"] = list(bounds)
    a, b = q(dtype, *sa_shape), q(dtype, *sb_shape)
    lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
    a.flat[:2], b.flat[:1] = [lo, hi], [hi]  # the extremes of the centred range
    kind = op_type[7:].lower()
    BOOK.add(id_, op_type, [a, s(scales[0]), z(dtype, zps[0]), b, s(scales[1]),
                            z(dtype, zps[1]), s(scales[2]), z(dtype, zps[2])], attrs,
             domain=MS, opset=13, ref=_fixed_binary_ref(op_type, dtype, act, bounds),
             expect={p: (f"qlinear_{kind}_{'s8' if dtype == 'int8' else 'u8'}_q31", "")
                     for p in ("generic", "avx2", "arm64", "armv7", "cortexm4")})


fixed_binary("qadd_fixed_s8_same", "QLinearAdd", "int8", (1, 7, 5, 3), (1, 7, 5, 3),
             (0.031, 0.017, 0.045), (3, -7, 11))
fixed_binary("qadd_fixed_u8_bcast_channel_relu", "QLinearAdd", "uint8", (2, 7, 5, 3),
             (1, 7, 1, 1), (0.02, 0.09, 0.05), (128, 100, 131), act="Relu")
fixed_binary("qadd_fixed_s8_saturating_long", "QLinearAdd", "int8", (2, 3, 37, 11),
             (2, 3, 37, 11), (0.031, 0.017, 0.011), (-128, 127, 5))
fixed_binary("qadd_fixed_s8_clip_scalar_b", "QLinearAdd", "int8", (3, 41), (1,),
             (0.004, 0.3, 0.01), (0, -20, -3), act="Clip", bounds=(-0.6, 0.9))
fixed_binary("qmul_fixed_u8_bcast_row", "QLinearMul", "uint8", (4, 2, 35), (35,),
             (0.031, 0.017, 0.9), (0, 255, 131))
fixed_binary("qmul_fixed_s8_relu_outer", "QLinearMul", "int8", (5, 1), (1, 9),
             (0.02, 0.05, 0.01), (3, -7, 11), act="Relu")


# --- fixed-point average pools (requant="fixed"): onnxruntime's windows (end clipped to the
# input, start to 0), the exact int32 sum of the centred codes, requantized by the Q31 form
# of x_scale / (y_scale * count) (count: the window's cells, or kh * kw with
# count_include_pad); within one step of the exact real average (checked on every case).
def _fixed_pool_ref(dtype, ks=None, st=None, pads=None, incpad=0, act="", glob=False):
    def ref(x, xs_, xz, ys_, yz):
        xs, ys = float(np.float64(xs_)), float(np.float64(ys_))
        c = x.astype(np.int64) - int(xz)
        if glob:
            sums = c.reshape(c.shape[0], c.shape[1], -1).sum(-1)[..., None, None]
            counts = np.full(sums.shape, c[0, 0].size)
        else:
            n, ch, h, w = c.shape
            oh = (h + pads[0] + pads[2] - ks[0]) // st[0] + 1
            ow = (w + pads[1] + pads[3] - ks[1]) // st[1] + 1
            sums = np.zeros((n, ch, oh, ow), np.int64)
            counts = np.zeros_like(sums)
            for oy in range(oh):
                hs = oy * st[0] - pads[0]
                he, hs = min(hs + ks[0], h), max(hs, 0)
                for ox in range(ow):
                    ws = ox * st[1] - pads[1]
                    we, ws = min(ws + ks[1], w), max(ws, 0)
                    sums[:, :, oy, ox] = c[:, :, hs:he, ws:we].sum((2, 3))
                    counts[:, :, oy, ox] = ks[0] * ks[1] if incpad else (he - hs) * (we - ws)
        out = np.zeros(sums.shape, np.int64)
        for idx in np.ndindex(*sums.shape):
            out[idx] = _q31_apply(sums[idx], xs / (ys * int(counts[idx])))
        exact = sums * xs / (ys * counts)
        assert np.all(np.abs(out - np.rint(exact)) <= 1), "fixed point more than a step off"
        lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
        lo, hi = lo - int(yz), hi - int(yz)
        if act == "Relu":
            lo = max(lo, 0)
        out = np.clip(out, lo, hi) + int(yz)
        return [out.astype(dtype)]
    return ref


for _t in ("uint8", "int8"):
    _zx, _zy = (-3, 4) if _t == "int8" else (120, 110)
    _st = "s8" if _t == "int8" else "u8"
    _exp = {p: (f"qlinear_avgpool_{_st}_q31", "") for p in ("generic", "avx2", "arm64",
                                                            "cortexm4")}
    BOOK.add(f"qavgpool_fixed_{_t}_k3s2p1", "QLinearAveragePool",
             [q(_t, 1, 5, 9, 11), s(0.05), z(_t, _zx), s(0.04), z(_t, _zy)],
             dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], requant="fixed"),
             domain=MS, opset=13, expect=_exp,
             ref=_fixed_pool_ref(_t, (3, 3), (2, 2), (1, 1, 1, 1)))
    BOOK.add(f"qavgpool_fixed_{_t}_incpad", "QLinearAveragePool",
             [q(_t, 2, 3, 7, 7), s(0.05), z(_t, _zx), s(0.03), z(_t, _zy)],
             dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
                  count_include_pad=1, requant="fixed"), domain=MS, opset=13, expect=_exp,
             ref=_fixed_pool_ref(_t, (3, 3), (1, 1), (1, 1, 1, 1), incpad=1))
    BOOK.add(f"qglobalavgpool_fixed_{_t}", "QLinearGlobalAveragePool",
             [q(_t, 2, 7, 5, 9), s(0.05), z(_t, _zx), s(0.02), z(_t, _zy)],
             dict(channels_last=0, requant="fixed"), domain=MS, opset=13,
             expect={p: (f"qlinear_global_avgpool_{_st}_q31", "")
                     for p in ("generic", "avx2", "arm64", "cortexm4")},
             ref=_fixed_pool_ref(_t, glob=True))
BOOK.add("qglobalavgpool_fixed_s8_relu", "QLinearGlobalAveragePool",
         [q("int8", 1, 6, 7, 7), s(0.05), z("int8", 9), s(0.01), z("int8", -20)],
         dict(channels_last=0, requant="fixed", activation="Relu"), domain=MS, opset=13,
         ref=_fixed_pool_ref("int8", act="Relu", glob=True))
# QLinearGlobalAveragePool's SIMD sums (AVX2 vpsadbw 32/16-code steps; NEON 16-code vpadal
# blocks of at most 2048 codes, an 8-code step): planes off every step (17, 31, 45, 48),
# 56x56 and 47x47 (> 2048 codes: several 16-bit blocks; int32 sums near 800000), every code
# at its extreme (all 255 / -128 / 127), outputs saturating both ways, 1-D planes (N, C, L);
# the SIMD kernels are the cost model's choice
_GAP = {"avx2": ("qlinear_global_avgpool_avx2_", ""),
        "arm64": ("qlinear_global_avgpool_neon_", ""),
        "armv7": ("qlinear_global_avgpool_neon_", "")}
for _t in ("uint8", "int8"):
    _lo, _hi = (-128, 127) if _t == "int8" else (0, 255)
    _zx, _zy = (-7, 5) if _t == "int8" else (131, 120)
    for _shape in ((1, 5, 1, 17), (2, 3, 31, 1), (1, 9, 6, 8), (1, 11, 47, 47)):
        BOOK.add(f"qglobalavgpool_{_t}_{'x'.join(map(str, _shape))}",
                 "QLinearGlobalAveragePool",
                 [q(_t, *_shape), s(0.05), z(_t, _zx), s(0.021), z(_t, _zy)],
                 dict(channels_last=0), domain=MS, opset=13, expect=_GAP)
    _xe = q(_t, 1, 5, 56, 56)
    _xe[0, 0], _xe[0, 1], _xe[0, 2] = _hi, _lo, _lo + 1  # extreme planes: exact int32 sums
    BOOK.add(f"qglobalavgpool_{_t}_56x56_extremes", "QLinearGlobalAveragePool",
             [_xe, s(0.5), z(_t, _zx), s(0.01), z(_t, _zy)],  # x 50: saturates both ways
             dict(channels_last=0), domain=MS, opset=13, expect=_GAP)
    _xm = np.full((1, 3, 56, 56), _hi, _t)
    _xm[0, 1] = _lo
    BOOK.add(f"qglobalavgpool_{_t}_56x56_full_scale", "QLinearGlobalAveragePool",
             [_xm, s(0.02), z(_t, 0), s(0.02), z(_t, _zy)], dict(channels_last=0),
             domain=MS, opset=13, expect=_GAP)
    BOOK.add(f"qglobalavgpool_{_t}_1d", "QLinearGlobalAveragePool",
             [q(_t, 2, 7, 53), s(0.03), z(_t, _zx), s(0.03), z(_t, _zy)],
             dict(channels_last=0), domain=MS, opset=13, expect=_GAP)

# --- NEON QLinearAdd / QLinearMul (16-code steps, ARMv7 and AArch64) -------------------
# runs of 16 plus tails (33, 47, 17), shorter than one step (7: the scalar tail only), both
# contiguous, a per-channel operand on either side, a scalar, a broadcast row, an outer
# broadcast (strides other than 0/1 in the inner run fall back to scalar); codes at both
# ends, zero points at the type's ends, output scales that saturate both ways; the NEON
# kernel must be the cost model's choice on both ARM levels
_neon_shapes = [("same_odd", (3, 5, 33), (3, 5, 33)),
                ("bcast_channel_b", (2, 5, 3, 17), (1, 5, 1, 1)),
                ("bcast_channel_a", (1, 3, 1), (2, 3, 47)),
                ("bcast_scalar_a", (1,), (5, 49)),
                ("bcast_row_short", (9, 7), (7,)),
                ("bcast_outer", (11, 1), (1, 35))]
for _op in ("QLinearAdd", "QLinearMul"):
    for _t in ("uint8", "int8"):
        _zs = (127, -128, -9) if _t == "int8" else (255, 0, 77)
        for _sc in ((0.013, 0.037) if _op == "QLinearAdd" else (1.3, 0.05)):
            for _name, _sa, _sb in _neon_shapes:
                _a, _b = q(_t, *_sa), q(_t, *_sb)
                _ends = [-128, 127, -128, 127] if _t == "int8" else [0, 255, 0, 255]
                _a.flat[:min(4, _a.size)] = _ends[:min(4, _a.size)]
                _b.flat[:min(4, _b.size)] = _ends[::-1][:min(4, _b.size)]
                _kind = _op[7:].lower()
                BOOK.add(f"neon_{_op}_{_t}_{_name}_{_sc}".lower().replace(".", "p"), _op,
                         [_a, s(0.031), z(_t, _zs[0]), _b, s(0.017), z(_t, _zs[1]), s(_sc),
                          z(_t, _zs[2])], domain=MS, opset=13,
                         expect={p: (f"qlinear_{_kind}_neon_", "") for p in ("arm64", "armv7")})

# --- NEON QLinearConcat (16-code steps): copied, multiplied ("m") and divided ("t": vdivq
# on AArch64, the scalar statements on ARMv7) inputs in one kernel, every code of each
# input, blocks of 16+ codes with tails and of fewer than 16, several outer blocks, scales
# that saturate both ways; the NEON kernel must be the cost model's choice on both levels
for _t in ("uint8", "int8"):
    _zy = 7 if _t == "int8" else 100
    _sh = "u" if _t == "uint8" else "s"
    _every = np.resize(np.arange(256, dtype=np.uint8), 2 * 3 * 43).view(_t).reshape(2, 3, 43)
    BOOK.add(f"neon_qconcat_{_t}_copy_div_mul", "QLinearConcat",
             [s(0.07), z(_t, _zy), q(_t, 2, 5, 43), s(0.07), z(_t, _zy),
              _every, s(0.007), z(_t, _zy + 3), _every[:, :, ::-1].copy(), s(0.3),
              z(_t, _zy - 2), q(_t, 2, 1, 43), s(0.05), z(_t, _zy + 1)],
             dict(axis=1), domain=MS, opset=13,
             expect={"arm64": ("qlinear_concat_neon_", f"_ct{_sh}m{_sh}m{_sh}"),
                     # ARMv7 divides in scalar code: the portable table is cheaper there
                     "armv7": (f"qlinear_concat_{_sh}8_", "")})
    _x0 = q(_t, 3, 2, 7, 5)
    _x0.flat[:4] = [-128, 127, -128, 127] if _t == "int8" else [0, 255, 0, 255]
    BOOK.add(f"neon_qconcat_{_t}_axis2_short_blocks", "QLinearConcat",
             [s(0.05), z(_t, _zy), _x0, s(0.3), z(_t, _zy + 4), q(_t, 3, 2, 2, 5), s(0.05),
              z(_t, _zy), q(_t, 3, 2, 1, 5), s(0.0171), z(_t, _zy - 2)], dict(axis=2),
             domain=MS, opset=13,
             expect={p: ("qlinear_concat_neon_", "") for p in ("arm64", "armv7")})

# --- QLinearAdd: every code pair against onnxruntime, per broadcast form ----------------
# onnxruntime swaps the operands when A is one value per innermost run and contracts its
# constant part into FMAs (elementwise_generic_s8.add_fixed_setup); near-ties (x.5 within
# an ulp) then round differently from an unfused order. Each case holds all 256 x 256
# (a, b) code pairs: same shape, B per channel (one value per run), A per channel, an outer
# broadcast of two contiguous runs, and scalar A / scalar B against every code; scale sets:
# the one that caught the unfused order (C scale 0.02, zero points 255 / 0 / 77) and one
# where only fma(rxc, zx, ryc * zy) - not the other contraction - matches
def _every_pair(t):
    codes = np.arange(256, dtype=np.uint8).view(t) if t == "int8" else \
        np.arange(256, dtype=np.uint8)
    codes = np.sort(codes)
    run = np.tile(codes, (256, 1))                     # [i, j] = code j
    per_row = codes.reshape(256, 1)                    # [i] = code i
    shifted = np.stack([np.roll(codes, -m) for m in range(256)])[None]  # [0, m, j] = j + m
    return {"same": (run, np.tile(per_row, (1, 256))),
            "channel_b": (run, per_row.copy()),
            "channel_a": (per_row.copy(), run),
            "outer": (np.stack([codes, codes])[:, None, :], shifted),
            "scalar_a": (codes[-3:-2].copy(), run),
            "scalar_b": (run, codes[1:2].copy())}


for _t in ("uint8", "int8"):
    _d = 128 if _t == "int8" else 0
    for _k, (_s, _zs) in enumerate((((0.031, 0.017, 0.02), (255, 0, 77)),
                                     ((0.1, 0.003, 0.07), (17, 250, 255)))):
        for _name, (_a, _b) in _every_pair(_t).items():
            BOOK.add(f"qadd_every_pair_{_t}_{_name}_set{_k}", "QLinearAdd",
                     [_a, s(_s[0]), z(_t, _zs[0] - _d), _b, s(_s[1]), z(_t, _zs[1] - _d),
                      s(_s[2]), z(_t, _zs[2] - _d)], domain=MS, opset=13)

# the exact case that exposed it (C scale 0.02: a = 200, b = 255 lands within an ulp of
# 208.5 and onnxruntime gives 209), per-channel B and per-channel A
for _t in ("uint8", "int8"):
    _zs = (127, -128, -9) if _t == "int8" else (255, 0, 77)
    for _name, _sa, _sb in (("channel_b", (2, 5, 3, 17), (1, 5, 1, 1)),
                            ("channel_a", (1, 3, 1), (2, 3, 47))):
        _a, _b = q(_t, *_sa), q(_t, *_sb)
        _ends = [-128, 127, -128, 127] if _t == "int8" else [0, 255, 0, 255]
        _a.flat[:min(4, _a.size)] = _ends[:min(4, _a.size)]
        _b.flat[:min(4, _b.size)] = _ends[::-1][:min(4, _b.size)]
        BOOK.add(f"qadd_tie_{_t}_{_name}_0p02", "QLinearAdd",
                 [_a, s(0.031), z(_t, _zs[0]), _b, s(0.017), z(_t, _zs[1]), s(0.02),
                  z(_t, _zs[2])], domain=MS, opset=13)
