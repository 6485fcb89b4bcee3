"""WarpPerspective (MegEngine's, float32 NCHW): for every output pixel the 3x3 matrix of
its sample gives the source point (x, y) = (M0 w + M1 h + M2, M3 w + M4 h + M5) /
(M6 w + M7 h + M8), sampled bilinearly. MegDNN's arithmetic, in float: the four taps at
floor(x) + {0, 1}, floor(y) + {0, 1} mapped through the border mode (OpenCV's
borderInterpolate), weights (1 - a) and a from the fractional parts; with a constant
border, a tap outside reads border_val and a non-finite result becomes border_val."""
from __future__ import annotations

from ...codegen.kernel import Instr, f32_bits, make_kernel
from ...codegen.params import f32, i32, schema
from ...ir import Graph, Op
from ...ir.opdefs.warp import BORDER_MODES
from ..registry import F32, implements

PARAMS = schema(i32("N", "samples"), i32("C", "channels"), i32("H", "input height"),
                i32("W", "input width"), i32("OH", "output height"), i32("OW", "output width"),
                i32("BMODE", "border mode: 0 replicate, 1 reflect, 2 reflect_101, 3 wrap, "
                             "4 constant"),
                f32("BV", "border value (constant mode)"))

_BODY = """    const float *x = (const float *)in_ptrs[0];
    const float *mat = (const float *)in_ptrs[1];
    float *y = (float *)out_ptrs[0];
    int32_t n, c, oh, ow;
    for (n = 0; n < N; ++n) {
        const float *m = mat + (int64_t)n * 9;
        const float *xn = x + (int64_t)n * C * H * W;
        float *yn = y + (int64_t)n * C * OH * OW;
        for (oh = 0; oh < OH; ++oh)
            for (ow = 0; ow < OW; ++ow) {
                const float nw = m[0] * ow + m[1] * oh + m[2];
                const float nh = m[3] * ow + m[4] * oh + m[5];
                const float d = m[6] * ow + m[7] * oh + m[8];
                float aw = nw / d, ah = nh / d;
                const float fw = floorf(aw), fh = floorf(ah);
                const int32_t w0 = megcc_warp_coord(fw, W, BMODE);
                const int32_t w1 = megcc_warp_coord(fw + 1.0f, W, BMODE);
                const int32_t h0 = megcc_warp_coord(fh, H, BMODE);
                const int32_t h1 = megcc_warp_coord(fh + 1.0f, H, BMODE);
                aw -= fw;
                ah -= fh;
                for (c = 0; c < C; ++c) {
                    const float *xc = xn + (int64_t)c * H * W;
                    const float v00 = h0 >= 0 && w0 >= 0 ? xc[(int64_t)h0 * W + w0] : BV;
                    const float v01 = h0 >= 0 && w1 >= 0 ? xc[(int64_t)h0 * W + w1] : BV;
                    const float v10 = h1 >= 0 && w0 >= 0 ? xc[(int64_t)h1 * W + w0] : BV;
                    const float v11 = h1 >= 0 && w1 >= 0 ? xc[(int64_t)h1 * W + w1] : BV;
                    float v = v00 * (1.0f - aw) * (1.0f - ah) + v01 * aw * (1.0f - ah) +
                              v10 * (1.0f - aw) * ah + v11 * aw * ah;
                    if (BMODE == 4 && !(v - v == 0.0f)) v = BV; /* not finite */
                    yn[((int64_t)c * OH + oh) * OW + ow] = v;
                }
            }
    }
"""

# borderInterpolate on a float coordinate (far outside points must not overflow an int)
COORD_HELPER = ("warp_coord", """static int32_t megcc_warp_coord(float p, int32_t len, int32_t mode) {
    int32_t i;
    if (p >= 0.0f && p < (float)len) return (int32_t)p;
    if (mode == 4) return -1;                       /* constant */
    if (mode == 0) return p < 0.0f ? 0 : len - 1;   /* replicate */
    if (len == 1) return 0;
    if (p < -2147483647.0f / 4 || p > 2147483647.0f / 4) {
        double q = (double)p;                       /* reduce far points by the period */
        double period = mode == 3 ? len : mode == 1 ? 2.0 * len : 2.0 * (len - 1);
        q = q - period * floor(q / period);
        p = (float)q;
    }
    i = (int32_t)p;
    if (mode == 3) return ((i % len) + len) % len;  /* wrap */
    {
        const int32_t delta = mode == 2;            /* reflect_101 */
        do {
            i = i < 0 ? -i - 1 + delta : len - 1 - (i - len) - delta;
        } while (i < 0 || i >= len);
    }
    return i;
}
""")


@implements("WarpPerspective", dtypes=F32)
def lower_warp_perspective(op: Op, graph: Graph):
    x, mat = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    if len(x.shape) != 4 or mat.shape != (x.shape[0], 3, 3) or mat.dtype != "float32":
        raise graph.error(f"WarpPerspective needs x (N, C, H, W) and float32 matrices (N, 3, 3), "
                          f"got {tuple(x.shape)} and {tuple(mat.shape)}", op)
    bmode = op.attrs.get("bmode", "replicate")
    kernel = make_kernel("warp_perspective_nchw_f32", _BODY, PARAMS, ("math", COORD_HELPER))
    params = PARAMS.pack(N=x.shape[0], C=x.shape[1], H=x.shape[2], W=x.shape[3], OH=y.shape[2],
                         OW=y.shape[3], BMODE=BORDER_MODES.index(bmode),
                         BV=f32_bits(op.attrs.get("border_val", 0.0)))
    return [Instr(kernel, [op.inputs[0], op.inputs[1]], [op.outputs[0]], params,
                  note=f"bilinear, border {bmode}")]
