"""Compile-time 256-entry look-up tables of quantized unary functions, built the way
onnxruntime builds them (QlinearBuildLookupTable): every input code dequantized
(float32 x_scale * (q - x_zp)), the function applied in float32, the result quantized with
MlasQuantizeLinear (y / y_scale, clamp, ties-to-even, + y_zp)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...ir.quant import QRANGE

F32 = np.float32


def _fma(a, b, c):
    """float32 fused multiply-add (the exact product fits a float64; one final rounding
    up to double rounding, which these polynomial terms do not hit in practice)."""
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(F32)


def mlas_logistic(x: np.ndarray) -> np.ndarray:
    """MLAS's logistic (Eigen's rational approximation, its FMA3 kernel on x86-64)."""
    c = {k: F32(v) for k, v in dict(
        a9=4.37031012579801e-11, a7=1.15627324459942e-07, a5=6.08574864600143e-05,
        a3=8.51377133304701e-03, a1=2.48287947061529e-01, b10=6.10247389755681e-13,
        b8=5.76102136993427e-09, b6=6.29106785017040e-06, b4=1.70198817374094e-03,
        b2=1.16817656904453e-01, b0=9.93151921023180e-01).items()}
    v = np.clip(x.astype(F32), F32(-18.0), F32(18.0))
    v2 = (v * v).astype(F32)
    full = lambda k: np.full_like(v, c[k])  # noqa: E731
    p = _fma(v2, full("a9"), full("a7"))
    p = _fma(p, v2, full("a5"))
    p = _fma(p, v2, full("a3"))
    p = _fma(p, v2, full("a1"))
    p = (p * v).astype(F32)
    q = _fma(v2, full("b10"), full("b8"))
    q = _fma(q, v2, full("b6"))
    q = _fma(q, v2, full("b4"))
    q = _fma(q, v2, full("b2"))
    q = _fma(q, v2, full("b0"))
    return np.clip((p / q).astype(F32) + F32(0.5), F32(0.0), F32(1.0)).astype(F32)


def leaky_relu(alpha: float) -> Callable:
    a = F32(alpha)
    return lambda x: np.where(x >= 0, x, (x * a).astype(F32)).astype(F32)


def identity(x: np.ndarray) -> np.ndarray:
    return x


def quantize_f32(y: np.ndarray, y_scale: float, y_zp: int, dtype: str) -> np.ndarray:
    lo, hi = QRANGE[dtype]
    v = (y.astype(F32) / F32(y_scale)).astype(F32)
    v = np.clip(v, F32(lo - y_zp), F32(hi - y_zp))
    return (np.rint(v).astype(np.int64) + int(y_zp)).astype(np.int64)


def build_table(x_dtype: str, x_scale: float, x_zp: int, y_dtype: str, y_scale: float,
                y_zp: int, fn: Callable) -> np.ndarray:
    """table[byte] = quantize(fn(dequantize(code))) for the 256 byte values (an int8
    code's byte is its two's complement)."""
    codes = np.arange(256, dtype=np.uint8).view(np.dtype(x_dtype)).astype(np.int64)
    x = (F32(x_scale) * (codes - int(x_zp)).astype(F32)).astype(F32)
    return quantize_f32(fn(x), y_scale, y_zp, y_dtype)
