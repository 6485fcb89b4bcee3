"""Quantized MegEngine oprs -> the IR's integer operators (ONNX's QOperator vocabulary).

MegEngine's quantized dtypes (QuantizedS8, QuantizedS32, Quantized8Asymm) become the IR
dtypes int8 / int32 / uint8 with the scale (and zero point) as explicit constant operands,
exactly as ONNX carries them; `Tensor.quant` repeats them for `inspect` and the manifest.

MegEngine's int8 arithmetic on CPU, measured against MegEngine itself (the formulas are
recorded in /work/coord/int8.md and asserted bit-exactly by tests/test_int8_mge_*.py): every
quantized opr dequantizes in float32, computes, multiplies by 1/scale_out and rounds half
away from zero, so every requantizing op gets rounding="half_away". Non-linearities fused
into an opr (ConvBias nonlineMode, QFUSE_ADD_RELU, ...) become the `activation` attribute,
applied to the real value before rounding.

Two translations are not the literal ONNX reading of the opr and say why:
* a requantizing TypeCvt (qint8 -> qint8, qint32 -> qint8) is MegEngine's
  `(float)q * (s_in / s_out)`, so it becomes DequantizeLinear(scale = s_in / s_out) and
  QuantizeLinear(scale = 1), which computes exactly that product;
* average pooling never changes the scale in MegEngine and rounds `sum / count` directly,
  so QLinearAveragePool gets scale 1 on both sides: the same value, without the two
  scale multiplications that would move exact .5 ties.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..ir import QuantParams

ROUNDING = "half_away"

# MegEngine dtype name -> (IR dtype, zero point range)
_KINDS = {
    "QuantizedS8": ("int8", (0, 0)),
    "QuantizedS32": ("int32", (0, 0)),
    "Quantized8Asymm": ("uint8", (0, 255)),
}

# MegCC refuses a conv whose bias scale differs from s_in * s_w by more than this (relative).
BIAS_SCALE_RTOL = 1e-5

# ElemwiseMultiType quantized modes -> (IR op, activation, inputs); unary modes that are an
# activation of the input become QLinearAdd(x, 0) (a * s + 0.0 is exact).
_MULTI_TYPE = {
    "QADD": ("QLinearAdd", "", 2),
    "QFUSE_ADD_RELU": ("QLinearAdd", "Relu", 2),
    "QFUSE_ADD_SIGMOID": ("QLinearAdd", "Sigmoid", 2),
    "QFUSE_ADD_H_SWISH": ("QLinearAdd", "HSwish", 2),
    "QMUL": ("QLinearMul", "", 2),
    "QRELU": ("QLinearAdd", "Relu", 1),
    "QH_SWISH": ("QLinearAdd", "HSwish", 1),
    "QSIGMOID": ("QLinearSigmoid", "", 1),
}
SUPPORTED_MULTI_TYPE_MODES = tuple(_MULTI_TYPE)

_ACTIVATIONS = {"IDENTITY": "", "RELU": "Relu", "SIGMOID": "Sigmoid", "H_SWISH": "HSwish"}


@dataclass(frozen=True)
class MgbQuant:
    kind: str  # MegEngine's dtype name
    scale: float
    zero_point: int = 0

    @property
    def dtype(self) -> str:
        return _KINDS[self.kind][0]

    @property
    def params(self) -> QuantParams:
        return QuantParams(self.scale, self.zero_point)


class QuantDtypeError(ValueError):
    """A quantized dtype we cannot represent; the message is user-facing."""


def quant_of(np_dtype) -> Optional[MgbQuant]:
    """MegEngine's quantization parameters of a var's numpy dtype, None if not quantized."""
    meta = np.dtype(np_dtype).metadata
    if not meta or "mgb_dtype" not in meta:
        return None
    info = meta["mgb_dtype"]
    kind = info.get("name", "?")
    if kind not in _KINDS:
        raise QuantDtypeError(f"quantized dtype {kind} is not supported "
                              f"(supported: {', '.join(sorted(_KINDS))})")
    scale = float(info.get("scale", float("nan")))
    if not math.isfinite(scale) or scale <= 0:
        raise QuantDtypeError(f"quantized dtype {kind} has scale {scale:.9g}: scales must be "
                              "positive and finite")
    zp = int(info.get("zero_point", 0))
    lo, hi = _KINDS[kind][1]
    if not lo <= zp <= hi:
        raise QuantDtypeError(f"quantized dtype {kind} has zero point {zp}, outside [{lo}, {hi}]")
    return MgbQuant(kind, scale, zp)


# ---------------------------------------------------------------------- helpers
def _shared_const(cv, base: str, value: np.ndarray) -> str:
    """One constant per distinct (dtype, value): a scale used by ten ops is stored once."""
    key = (value.dtype.str, value.tobytes())
    if key not in cv.shared_consts:
        cv.shared_consts[key] = cv.const(base, value)
    return cv.shared_consts[key]


def _scale_const(cv, scale: float) -> str:
    return _shared_const(cv, "scale", np.array(scale, np.float32))


def _zp_const(cv, q: MgbQuant) -> str:
    dtype = np.uint8 if q.dtype == "uint8" else (np.int32 if q.dtype == "int32" else np.int8)
    return _shared_const(cv, f"zero_point_{q.dtype}", np.array(q.zero_point, dtype))


def _qargs(cv, q: MgbQuant, scale: Optional[float] = None):
    """Names of the (scale, zero point) operands for quantization `q` (scale overridable)."""
    return [_scale_const(cv, q.scale if scale is None else scale), _zp_const(cv, q)]


def _require(cv, var, what: str, kinds=("QuantizedS8",)) -> MgbQuant:
    q = cv.quant(var)
    if q is None or q.kind not in kinds:
        got = q.kind if q is not None else str(np.dtype(var.dtype))
        raise cv.error(f"{what} must be {' or '.join(kinds)}, got {got}")
    return q


def is_quantized(cv, opr) -> bool:
    return any(cv.quant(v) is not None for v in list(opr.inputs) + list(opr.outputs))


# ---------------------------------------------------------------------- TypeCvt
def type_cvt(cv, opr) -> None:
    src, dst = opr.inputs[0], opr.outputs[0]
    qs, qd = cv.quant(src), cv.quant(dst)
    x = cv.name(src)
    out = cv.out(dst)
    float_src = np.dtype(src.dtype) == np.float32 and qs is None
    float_dst = np.dtype(dst.dtype) == np.float32 and qd is None
    if qs is None and qd is not None:
        if not float_src:
            raise cv.error(f"conversion from {np.dtype(src.dtype)} to {qd.kind} is not supported")
        if qd.kind == "QuantizedS32":
            raise cv.error("conversion from float32 to QuantizedS32 is not supported")
        cv.emit("QuantizeLinear", [x] + _qargs(cv, qd), [out], rounding=ROUNDING)
    elif qs is not None and qd is None:
        if not float_dst:
            raise cv.error(f"conversion from {qs.kind} to {np.dtype(dst.dtype)} is not supported")
        cv.emit("DequantizeLinear", [x] + _qargs(cv, qs), [out])
    else:  # requantize: MegEngine computes (float)q * (s_in / s_out), then rounds
        if qd.kind == "QuantizedS32":
            raise cv.error(f"conversion from {qs.kind} to QuantizedS32 is not supported")
        ratio = float(np.float32(qs.scale) / np.float32(qd.scale))
        mid = cv.tmp(f"{out}_requant", cv.g.tensor(out).shape, "float32")
        cv.emit("DequantizeLinear", [x] + _qargs(cv, qs, scale=ratio), [mid])
        cv.emit("QuantizeLinear", [mid] + _qargs(cv, qd, scale=1.0), [out],
                rounding=ROUNDING)


# ---------------------------------------------------------------------- ConvBias
def conv_bias(cv, opr, params, x: str, w: str, attrs: dict, out: str, bias: Optional[str]):
    """QLinearConv for a ConvBias with qint8 input and weight; `bias` is the (OC,) int32
    constant already reshaped by the caller (or None)."""
    qx = _require(cv, opr.inputs[0], "the input")
    qw = _require(cv, opr.inputs[1], "the weight")
    qy = _require(cv, opr.outputs[0], "the output")
    if len(opr.inputs) > 3:
        raise cv.error("a quantized ConvBias with a residual input (z) is not supported")
    mode = params.get("nonlineMode", "IDENTITY")
    if mode not in _ACTIVATIONS:
        raise cv.error(f"quantized nonlineMode {mode} is not supported "
                       f"(supported: {', '.join(_ACTIVATIONS)})")
    cv.g.tensor(w).quant = qw.params  # (re-laid-out weights are new constants)
    inputs = [x] + _qargs(cv, qx) + [w] + _qargs(cv, qw) + _qargs(cv, qy)
    if len(opr.inputs) > 2:
        qb = _require(cv, opr.inputs[2], "the bias", kinds=("QuantizedS32",))
        expected = float(np.float32(qx.scale) * np.float32(qw.scale))
        if abs(qb.scale - expected) > BIAS_SCALE_RTOL * expected:
            raise cv.error(f"bias scale {qb.scale:.9g} != input scale {qx.scale:.9g} x weight "
                           f"scale {qw.scale:.9g} = {expected:.9g}")
        if bias is None:
            raise cv.error("a quantized bias must be a per-channel constant")
        cv.g.tensor(bias).quant = qb.params
        inputs.append(bias)
    cv.emit("QLinearConv", inputs, [out], rounding=ROUNDING, activation=_ACTIVATIONS[mode],
            **attrs)


# ---------------------------------------------------------------------- ElemwiseMultiType
def elemwise_multi_type(cv, opr) -> None:
    mode = cv.params(opr)["mode"]
    if mode not in _MULTI_TYPE:
        raise cv.error(f"quantized mode {mode} is not supported "
                       f"(supported: {', '.join(SUPPORTED_MULTI_TYPE_MODES)})")
    op_type, activation, arity = _MULTI_TYPE[mode]
    if len(opr.inputs) != arity:
        raise cv.error(f"mode {mode} takes {arity} inputs, got {len(opr.inputs)}")
    kinds = ("QuantizedS8", "Quantized8Asymm")
    qins = [_require(cv, v, f"input {i}", kinds) for i, v in enumerate(opr.inputs)]
    qy = _require(cv, opr.outputs[0], "the output", kinds)
    names = [cv.name(v) for v in opr.inputs]
    out = cv.out(opr.outputs[0])
    inputs = []
    for name, q in zip(names, qins):
        inputs += [name] + _qargs(cv, q)
    if op_type == "QLinearAdd" and arity == 1:  # act(x * s + 0 * 1)
        zdtype = np.uint8 if qins[0].dtype == "uint8" else np.int8
        inputs += [_shared_const(cv, "zero", np.zeros((1,), zdtype)),
                   _shared_const(cv, "one", np.array(1.0, np.float32)),
                   _shared_const(cv, f"zero_point_{qins[0].dtype}", np.array(0, zdtype))]
    inputs += _qargs(cv, qy)
    attrs = {"rounding": ROUNDING}
    if op_type != "QLinearSigmoid":
        attrs["activation"] = activation
    cv.emit(op_type, inputs, [out], **attrs)


# ---------------------------------------------------------------------- MatrixMul
def matrix_mul(cv, opr, params) -> None:
    """qint8 x qint8 -> qint32: MatMulInteger (zero points 0)."""
    a, b = opr.inputs
    qa, qb = _require(cv, a, "input A"), _require(cv, b, "input B")
    qy = _require(cv, opr.outputs[0], "the output", kinds=("QuantizedS32",))
    expected = float(np.float32(qa.scale) * np.float32(qb.scale))
    if abs(qy.scale - expected) > BIAS_SCALE_RTOL * expected:
        raise cv.error(f"output scale {qy.scale:.9g} != {qa.scale:.9g} x {qb.scale:.9g}")
    names = []
    for var, flag in ((a, "transposeA"), (b, "transposeB")):
        name = cv.name(var)
        if params[flag]:
            t = cv.g.tensor(name)
            if t.data is not None:
                name = cv.const(f"{name}_T", np.ascontiguousarray(t.data.T))
            else:
                tr = cv.tmp(f"{name}_T", t.shape[::-1], t.dtype)
                cv.emit("Transpose", [name], [tr], perm=[1, 0])
                name = tr
        names.append(name)
    cv.emit("MatMulInteger", names, [cv.out(opr.outputs[0])])


# ---------------------------------------------------------------------- Elemwise on qint32
def elemwise(cv, opr, mode: str) -> None:
    """MegEngine adds a quantized Linear's bias with a plain Elemwise ADD on qint32."""
    qs = [cv.quant(v) for v in list(opr.inputs) + list(opr.outputs)]
    if mode != "ADD" or any(q is None or q.kind != "QuantizedS32" for q in qs):
        kinds = sorted({q.kind if q else str(np.dtype(v.dtype))
                        for q, v in zip(qs, list(opr.inputs) + list(opr.outputs))})
        raise cv.error(f"mode {mode} on quantized tensors ({', '.join(kinds)}) is not supported "
                       "(only ADD of QuantizedS32 with equal scales is)")
    _same_scale(cv, opr, qs)
    cv.emit("Add", [cv.name(v) for v in opr.inputs], [cv.out(opr.outputs[0])])


def _same_scale(cv, opr, qs) -> None:
    first = qs[0]
    for q in qs[1:]:
        if q.kind != first.kind or not math.isclose(q.scale, first.scale, rel_tol=1e-6) \
                or q.zero_point != first.zero_point:
            raise cv.error(f"inputs and output have different quantization ({first.kind} "
                           f"scale {first.scale:.9g} vs {q.kind} scale {q.scale:.9g}); "
                           "this opr cannot requantize")


def check_data_movement(cv, opr) -> None:
    """Oprs that only move int8 values (Reshape, Concat, max pooling, ...) keep the scale;
    a model in which they would not is refused instead of being silently rescaled."""
    qs = [cv.quant(v) for v in list(opr.inputs) + list(opr.outputs)]
    quantized = [q for q in qs if q is not None]
    if not quantized:
        return
    _same_scale(cv, opr, quantized)


# ---------------------------------------------------------------------- pooling
def average_pool(cv, opr, x: str, out: str, attrs: dict, count_include_pad: int) -> None:
    """QLinearAveragePool at scale 1 on both sides (see the module docstring)."""
    q = _require(cv, opr.inputs[0], "the input", kinds=("QuantizedS8",))
    qy = _require(cv, opr.outputs[0], "the output", kinds=("QuantizedS8",))
    _same_scale(cv, opr, [q, qy])
    one = q.__class__(q.kind, 1.0, 0)
    cv.emit("QLinearAveragePool", [x] + _qargs(cv, one) + _qargs(cv, one), [out],
            count_include_pad=count_include_pad, rounding=ROUNDING, **attrs)
