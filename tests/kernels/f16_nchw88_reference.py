"""NumPy float16 arithmetic in the order the NCHW88 float16 kernels compute (enable_ioc16 +
enable_nchw88; kernels/*/nchw88_neon64fp16_f16.py), the oracle of the harness's NCHW88
cases. As kernels/f16_reference.py: each step exact in float64, rounded to float16 once.

The dense NCHW88 conv (per group) adds its taps in (input block of 8, ky, kx, input lane) order; the
hybrid (IC < 8) and depthwise ones in (input channel, ky, kx) order, f16_reference.conv_f16's.
"""
from __future__ import annotations

import numpy as np

from kernels.f16_reference import clamp, conv_f16, out32, r16


def conv_f16_nchw88(x, w, b, strides, pads, dil, group, act=None, lo_hi=None, residual=None):
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    if (group == 1 and c < 8) or (group == c and cg == 1):  # hybrid / depthwise
        return conv_f16(x, w, b, strides, pads, dil, group, act, lo_hi, residual)
    x16, w16 = r16(x), r16(w)
    sh, sw = strides
    dh, dw = dil
    pt, pl, pb, pr = pads
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    xp = np.zeros((n, c, h + pt + pb, wd + pl + pr))
    xp[:, :, pt:pt + h, pl:pl + wd] = x16
    acc = np.zeros((n, oc, oh, ow))
    if b is not None:
        acc += r16(b).reshape(1, oc, 1, 1)
    ocg = oc // group
    for g in range(group):  # (a grouped conv: each group of whole blocks, dense)
        o = slice(g * ocg, (g + 1) * ocg)
        for icb in range(0, cg, 8):
            for ky in range(kh):
                for kx in range(kw):
                    for ci in range(icb, min(icb + 8, cg)):
                        patch = xp[:, g * cg + ci, ky * dh: ky * dh + (oh - 1) * sh + 1: sh,
                                   kx * dw: kx * dw + (ow - 1) * sw + 1: sw]  # (n, oh, ow)
                        acc[:, o] = r16(acc[:, o] + patch[:, None] * w16[None, o, ci, ky, kx, None, None])
    if residual is not None:
        acc = r16(acc + r16(residual))
    return [out32(clamp(acc, act, lo_hi))]


def global_mean_f16_nchw88(x):
    """Per channel, the float16 values summed one pixel at a time in float32, divided in
    float32, rounded to float16 (the kernel's widened accumulators)."""
    x16 = r16(x).astype(np.float32)
    n, c, h, w = x.shape
    flat = x16.reshape(n, c, h * w)
    s = np.zeros((n, c), np.float32)
    for i in range(h * w):
        s = (s + flat[:, :, i]).astype(np.float32)
    return [out32((s / np.float32(h * w)).astype(np.float32).reshape(n, c, 1, 1))]
