"""GaussianBlur ui8 with NEON (ARMv7 and AArch64): the portable blur's loops
(gaussian_blur_generic) with 8 columns per vector; the same exact integer sums, so
bit-identical to it and to OpenCV."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ir_dtypes
from .gaussian_blur_generic import BLUR_OPS, blur_function, core_ui8

VERT = r"""
                    {   /* colq[e..e+7] += w * q[e..e+7] in 16 bits (exact: <= 65280) */
                        const uint16x8_t wv = vdupq_n_u16(w);
                        for (; e + 8 <= L; e += 8)
                            vst1q_u16(colq + e, vmlaq_u16(vld1q_u16(colq + e),
                                                         vmovl_u8(vld1_u8(q + e)), wv));
                    }"""

HORIZ = r"""
            {   /* 32-bit sums; vraddhn gives (sum + 2^15) >> 16 */
                const uint32x4_t zero = vdupq_n_u32(0);
                for (; e + 8 <= n * cn; e += 8) {
                    uint32x4_t lo = zero, hi = zero;
                    for (k = 0; k < kw; ++k) {
                        const uint16x8_t c16 = vld1q_u16(col + e + k * cn);
                        lo = vmlal_n_u16(lo, vget_low_u16(c16), wx[k]);
                        hi = vmlal_n_u16(hi, vget_high_u16(c16), wx[k]);
                    }
                    vst1_u8(o + e, vmovn_u16(vcombine_u16(vraddhn_u32(lo, zero),
                                                          vraddhn_u32(hi, zero))));
                }
            }"""

CORE = core_ui8("_neon", VERT, HORIZ)


@implements(*BLUR_OPS, dtypes=ir_dtypes("ui8"), requires="neon", cost=lambda o, g, i: 0.25,
            label="NEON")
def emit(op: Op, graph: Graph):
    return blur_function(op, graph, CORE, "neon")
