"""Quantization semantics shared by passes, constant folding and kernel emitters.

The formulas are onnxruntime's (MLAS): quantize = saturate(round_half_even(x / scale) +
zero_point) with a float32 division; dequantize = float(q - zero_point) * scale. Scales and
zero points are ordinary operand tensors (ONNX's QOperator vocabulary); this module reads
and checks them.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .graph import Graph, Op

# integer ranges of the quantized storage types
QRANGE = {"int8": (-128, 127), "uint8": (0, 255), "int32": (-(1 << 31), (1 << 31) - 1),
          "int16": (-32768, 32767), "uint16": (0, 65535)}
ROUNDING = ("half_even", "half_away")


def round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + np.float32(0.5))


def per_axis(value: np.ndarray, rank: int, axis: int) -> np.ndarray:
    """A scale / zero point (scalar or 1-D along `axis`) shaped to broadcast over a tensor."""
    value = np.asarray(value)
    if value.ndim == 0 or value.size == 1 and rank == 0:
        return value.reshape(())
    shape = [1] * rank
    shape[axis % rank] = value.size
    return value.reshape(shape)


def quantize(x: np.ndarray, scale, zero_point, dtype: str, axis: int = 1,
             rounding: str = "half_even") -> np.ndarray:
    x = np.asarray(x, np.float32)
    s = per_axis(np.asarray(scale, np.float32), x.ndim, axis)
    z = per_axis(np.asarray(zero_point).astype(np.float32), x.ndim, axis)
    v = (x / s).astype(np.float32)
    v = np.rint(v) if rounding == "half_even" else round_half_away(v)
    lo, hi = QRANGE[dtype]
    return np.clip(v + z, lo, hi).astype(dtype)


def dequantize(q: np.ndarray, scale, zero_point, axis: int = 1) -> np.ndarray:
    q = np.asarray(q)
    s = per_axis(np.asarray(scale, np.float32), q.ndim, axis)
    z = per_axis(np.asarray(zero_point if zero_point is not None else 0).astype(np.int64),
                 q.ndim, axis)
    return ((q.astype(np.int64) - z).astype(np.float32) * s).astype(np.float32)


def operand(graph: Graph, op: Op, index: int) -> Optional[str]:
    """The name of input `index`, or None when omitted."""
    return op.inputs[index] if index < len(op.inputs) and op.inputs[index] else None


def const_value(graph: Graph, op: Op, index: int, what: str) -> Optional[np.ndarray]:
    name = operand(graph, op, index)
    if name is None:
        return None
    t = graph.tensors[name]
    if not t.is_const:
        raise graph.needs_value(op, name, what)
    return np.asarray(t.data)


def check_scale(graph: Graph, op: Op, index: int, what: str = "scale",
                required: bool = True) -> Optional[np.ndarray]:
    """The constant float scale at input `index`, refused unless finite and > 0."""
    name = operand(graph, op, index)
    if name is None:
        if required:
            raise graph.error(f"the {what} (input {index}) is missing", op)
        return None
    t = graph.tensors[name]
    if not t.is_const:
        return None  # known at run time only (dynamic quantization): nothing to check
    value = np.asarray(t.data)
    if value.dtype.kind != "f":
        raise graph.error(f"the {what} '{name}' must be float, not {t.dtype}", op)
    if value.size == 0 or not np.all(np.isfinite(value)) or np.any(value <= 0):
        bad = value.reshape(-1)[np.flatnonzero(~(np.isfinite(value) & (value > 0)))[:1]]
        raise graph.error(f"the {what} '{name}' must be finite and > 0 (has "
                          f"{bad[0] if bad.size else 'no value'})", op)
    return value.astype(np.float32)


def check_zero_point(graph: Graph, op: Op, index: int, data_dtype: Optional[str],
                     what: str = "zero point") -> Optional[np.ndarray]:
    """The zero point at `index` (None if omitted); its dtype must be the data's."""
    name = operand(graph, op, index)
    if name is None:
        return None
    t = graph.tensors[name]
    if data_dtype is not None and t.dtype != data_dtype:
        raise graph.error(f"the {what} '{name}' is {t.dtype}, but the data it goes with is "
                          f"{data_dtype}", op)
    if t.dtype not in QRANGE:
        raise graph.error(f"the {what} '{name}' has unsupported dtype {t.dtype}", op)
    if not t.is_const:
        return None
    value = np.asarray(t.data)
    lo, hi = QRANGE[t.dtype]
    if value.size and (value.min() < lo or value.max() > hi):
        raise graph.error(f"the {what} '{name}' is out of the {t.dtype} range", op)
    return value


def count_of(graph: Graph, name: Optional[str]) -> int:
    return 1 if name is None else graph.tensors[name].numel


def channels_match(graph: Graph, op: Op, name: Optional[str], channels: int,
                   what: str) -> Tuple[bool, int]:
    """(per-channel?, count) of a scale / zero point: one value, or one per channel."""
    n = count_of(graph, name)
    if n not in (1, channels):
        raise graph.error(f"the {what} has {n} values; 1 or {channels} (one per channel) "
                          "expected", op)
    return n != 1, n


# --- fixed-point requantization (CMSIS-NN style; kernels/quant/requant.py) ---------------
def q31_multipliers(real) -> "tuple":
    """(m, e) int32 arrays with real = m * 2^(e - 31), m in [2^30, 2^31) (0, 0 for 0); a
    real multiplier must leave 31 - e in [1, 62] (the int64 product's range)."""
    import numpy as np

    real = np.asarray(real, np.float64).reshape(-1)
    m = np.zeros(real.shape, np.int64)
    e = np.zeros(real.shape, np.int64)
    for i, r in enumerate(real):
        if r == 0.0:
            continue
        frac, exp = np.frexp(r)  # r = frac * 2^exp, frac in [0.5, 1)
        q = int(round(frac * (1 << 31)))
        if q == 1 << 31:
            q, exp = q // 2, exp + 1
        m[i], e[i] = q, exp
    return m.astype(np.int32), e.astype(np.int32)


def fixed_point_problem(real) -> str:
    """Why a multiplier cannot be requantized in fixed point ("" if it can)."""
    import numpy as np

    for r in np.asarray(real, np.float64).reshape(-1):
        if not np.isfinite(r) or r < 0.0:
            return f"the requantization multiplier {r:g} is not a finite non-negative number"
        if r and not (2.0 ** -31 <= r < 2.0 ** 30):
            return f"the requantization multiplier {r:g} is outside [2^-31, 2^30)"
    return ""


# CMSIS-NN's arm_elementwise_add_s8: both operands, centred, are shifted left by 20 bits
# (255 << 20 < 2^28: room for the sum in int32) so that rescaling them onto a common scale
# loses nothing that shows in an 8-bit output
ADD_LEFT_SHIFT = 20


def fixed_binary_multipliers(op: Op, graph: Graph) -> dict:
    """The real multipliers of a fixed-point QLinearAdd / QLinearMul from its (compile-time
    constant, per-tensor) scales: Add, CMSIS-NN's split, each operand onto the common scale
    2 * max(sa, sb) (a ratio in (0, 1/2]) then sum * 2 * max(sa, sb) / (sc * 2^20) into output
    steps; Mul, the product's sa * sb / sc. Empty when a scale is not a constant."""
    vals = []
    for k in (1, 4, 6):
        t = graph.tensors[op.inputs[k]]
        if not t.is_const:
            return {}
        vals.append(float(np.asarray(t.data, np.float64).reshape(-1)[0]))
    sa, sb, sc = vals
    if op.type == "QLinearMul":
        return {"o": sa * sb / sc}
    twice_max = 2.0 * max(sa, sb)
    return {"a": sa / twice_max, "b": sb / twice_max,
            "o": twice_max / (sc * float(1 << ADD_LEFT_SHIFT))}


def fixed_binary_problem(op: Op, graph: Graph) -> str:
    """Why a QLinearAdd / QLinearMul cannot compute in fixed point ("" if it can)."""
    mults = fixed_binary_multipliers(op, graph)
    if not mults:
        return "scales known only at run time"
    for what, real in mults.items():
        why = fixed_point_problem(real)
        if why:
            return why
    return ""


def fixed_scales(op: Op, graph: Graph, slots) -> list:
    """The per-tensor scales at input `slots` as float64 (None if one is not a constant)."""
    vals = []
    for k in slots:
        t = graph.tensors[op.inputs[k]]
        if not t.is_const:
            return None
        vals.append(float(np.asarray(t.data, np.float64).reshape(-1)[0]))
    return vals


def avgpool_problem(op: Op, graph: Graph, counts) -> str:
    """Why a quantized average pool cannot requantize its window sums in fixed point by
    x_scale / (y_scale * n) for each window size n of `counts` ("" if it can)."""
    sc = fixed_scales(op, graph, (1, 3))
    if sc is None:
        return "scales known only at run time"
    return fixed_point_problem([sc[0] / (sc[1] * n) for n in counts])
