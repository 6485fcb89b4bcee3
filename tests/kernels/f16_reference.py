"""NumPy float16 arithmetic in the order the float16 kernels (`*_neon64fp16_f16`,
enable_ioc16) compute, the oracle of the harness's ioc16 cases.

Every float16 operation of a kernel rounds its exact result to float16 once (a fused
multiply-add included), so the reference computes each step exactly in float64 (sums and
products of float16 values are exact there) and rounds to float16: `r16`. The model's input
is rounded to float16 first (the region's conversion), and the result is returned as the
float32 the model's conversion back gives.
"""
from __future__ import annotations

import numpy as np


def r16(a) -> np.ndarray:
    """Round to float16, held in float64 (exact)."""
    return np.asarray(a, np.float64).astype(np.float16).astype(np.float64)


def r32(a) -> np.ndarray:
    """Round to float32, held in float64 (exact)."""
    return np.asarray(a, np.float64).astype(np.float32).astype(np.float64)


def out32(a) -> np.ndarray:
    return np.asarray(a).astype(np.float16).astype(np.float32)


def clamp(a, act, lo_hi=None):
    if act == "relu":
        return np.maximum(a, 0)
    if act == "clip":
        lo, hi = lo_hi
        return np.minimum(np.maximum(a, r16(lo)), r16(hi))
    if act == "hswish":  # x * min(max(x + 3, 0), 6) * fl16(1/6), each step rounded
        t = np.minimum(np.maximum(r16(a + 3), 0), 6)
        return r16(r16(a * t) * r16(1.0 / 6.0))
    return a


def conv_f16(x, w, b, strides, pads, dil, group, act=None, lo_hi=None, residual=None,
             acc32=False):
    """float16 Conv: the accumulator starts at the bias and adds one tap product per FMA,
    over (input channel, ky, kx) in that order (the packed GEMM's k, the depthwise taps).
    acc32: the accumulator is float32 (FMLAL, level arm64-fp16fml: the float16 product is
    exact, each step rounds to float32), rounded to float16 once at the end."""
    step = r32 if acc32 else r16
    x16, w16 = r16(x), r16(w)
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    sh, sw = strides
    dh, dw = dil
    pt, pl, pb, pr = pads
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    xp = np.zeros((n, c, h + pt + pb, wd + pl + pr))
    xp[:, :, pt:pt + h, pl:pl + wd] = x16
    ocg = oc // group
    acc = np.zeros((n, oc, oh, ow))
    if b is not None:
        acc += r16(b).reshape(1, oc, 1, 1)
    xg = xp.reshape(n, group, cg, *xp.shape[2:])
    wg = w16.reshape(group, ocg, cg, kh, kw)
    for ci in range(cg):
        for ky in range(kh):
            for kx in range(kw):
                patch = xg[:, :, ci, ky * dh: ky * dh + (oh - 1) * sh + 1: sh,
                           kx * dw: kx * dw + (ow - 1) * sw + 1: sw]  # (n, G, oh, ow)
                prod = patch[:, :, None] * wg[None, :, :, ci, ky, kx, None, None]
                acc = step(acc + prod.reshape(n, oc, oh, ow))
    acc = r16(acc)
    if residual is not None:
        acc = r16(acc + r16(residual))
    return [out32(clamp(acc, act, lo_hi))]


def fc_f16(x, w_kn, bias=None, relu=False, acc32=False):
    """float16 FC: acc = bias, then acc = r16(acc + a_k * b_k) for k in order (acc32: r32
    per step, r16 once at the end)."""
    step = r32 if acc32 else r16
    x16, w16 = r16(x), r16(w_kn)
    acc = np.zeros((x.shape[0], w_kn.shape[1]))
    if bias is not None:
        acc += r16(bias)
    for k in range(w_kn.shape[0]):
        acc = step(acc + x16[:, k:k + 1] * w16[k])
    acc = r16(acc)
    return [out32(np.maximum(acc, 0) if relu else acc)]


def pool_f16(x, kind, kernel, strides, pads, count_include_pad=False):
    """float16 max / average pooling: the window sum over (ky, kx) in float16, divided in
    float32 by the tap count and rounded once."""
    x16 = r16(x)
    n, c, h, wd = x.shape
    kh, kw = kernel
    sh, sw = strides
    pt, pl, pb, pr = pads
    oh = (h + pt + pb - kh) // sh + 1
    ow = (wd + pl + pr - kw) // sw + 1
    fill = -np.inf if kind == "max" else 0.0
    xp = np.full((n, c, h + pt + pb, wd + pl + pr), fill)
    xp[:, :, pt:pt + h, pl:pl + wd] = x16
    acc = np.full((n, c, oh, ow), fill)
    for ky in range(kh):
        for kx in range(kw):
            v = xp[:, :, ky: ky + (oh - 1) * sh + 1: sh, kx: kx + (ow - 1) * sw + 1: sw]
            acc = np.maximum(acc, v) if kind == "max" else r16(acc + v)
    if kind == "max":
        return [out32(acc)]
    lo_y, hi_y, lo_x, hi_x = (-pt, h + pb, -pl, wd + pr) if count_include_pad else (0, h, 0, wd)
    ys = np.arange(oh)[:, None] * sh - pt + np.arange(kh)[None, :]
    xs = np.arange(ow)[:, None] * sw - pl + np.arange(kw)[None, :]
    ny = ((ys >= lo_y) & (ys < hi_y)).sum(1)
    nx = ((xs >= lo_x) & (xs < hi_x)).sum(1)
    cnt = (ny[:, None] * nx[None, :]).astype(np.float32)
    return [out32(acc.astype(np.float32) / cnt)]


def ew_f16(fn, *xs):
    """An element-wise float16 operation: exact in float64, rounded once."""
    return [out32(fn(*[r16(x) for x in xs]))]


def hardswish_f16(x):
    """x * min(max(x + 3, 0), 6) * fl16(1/6), each step rounded (the kernel's order)."""
    return [out32(clamp(r16(x), "hswish"))]
