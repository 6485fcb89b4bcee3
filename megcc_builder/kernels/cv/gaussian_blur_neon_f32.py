"""GaussianBlur f32 with NEON: the portable blur's loops (gaussian_blur_generic) with 4
columns per vector, multiply then add in the scalar code's order (no fused
multiply-add), so the results are bit-identical to it."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ir_dtypes
from .gaussian_blur_generic import BLUR_OPS, blur_function, core_f32

VERT = r"""
                    {
                        const float32x4_t wv = vdupq_n_f32(w);
                        for (; e + 4 <= L; e += 4)
                            vst1q_f32(colq + e, vaddq_f32(vld1q_f32(colq + e),
                                                          vmulq_f32(wv, vld1q_f32(q + e))));
                    }"""

HORIZ = r"""
            for (; e + 4 <= n * cn; e += 4) {
                float32x4_t a = vdupq_n_f32(0.f);
                for (k = 0; k < kw; ++k)
                    a = vaddq_f32(a, vmulq_f32(vdupq_n_f32(wx[k]), vld1q_f32(col + e + k * cn)));
                vst1q_f32(o + e, a);
            }"""

CORE = core_f32("_neon", VERT, HORIZ)


@implements(*BLUR_OPS, dtypes=ir_dtypes("f32"), requires="neon", cost=lambda o, g, i: 0.25,
            label="NEON")
def emit(op: Op, graph: Graph):
    return blur_function(op, graph, CORE, "neon")
