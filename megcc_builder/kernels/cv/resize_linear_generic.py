"""cv2.resize(INTER_LINEAR) to dst's size, portable C, 1..4 channels.

Coefficients as OpenCV computes them: source coordinate (d + 0.5) * scale - 0.5 in double,
rounded to float, clamped at the borders (the first tap takes weight 1). ui8 uses OpenCV's
fixed point: 11-bit weights (saturate_cast<short>(w * 2048)), the horizontal pass exact in
int, the vertical pass as OpenCV 4's vector code computes it for every pixel
((S0 >> 4) * b0 >> 16) + ((S1 >> 4) * b1 >> 16), then (+2) >> 2: bit-exact with
cv2.resize. f32: float weights, a0*S0 + a1*S1 then b0*H0 + b1*H1.

No heap: destination columns are processed in strips of TINYCV_RESIZE_STRIP whose
coefficient tables live on the stack (about 1.5 KB).
"""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ROUND, function, ir_dtypes, op_types, request_of

# One axis's tap: source index (of the first tap, in pixels), second tap's index, the two
# weights as float (OpenCV's cbuf values).
COEF = ("tinycv_linear_tap", r"""
#define TINYCV_RESIZE_STRIP 128

static void tinycv_linear_tap(int d, double scale, int len, int* i0, int* i1, float* w0,
                              float* w1)
{
    float f = (float)((d + 0.5) * scale - 0.5);
    int s = (int)floorf(f);
    f -= (float)s;
    if (s < 0) { f = 0.f; s = 0; }
    if (s >= len - 1) { f = 0.f; s = len - 1; }
    *i0 = s;
    *i1 = s + 1 < len ? s + 1 : s;
    *w0 = 1.f - f;
    *w1 = f;
}

/* INTER_AREA's coefficient when enlarging: s = floor(d * scale), the fraction of the
 * destination cell past source pixel s + 1, modulo 1. */
static float tinycv_area_frac(int d, double scale, int* s_out)
{
    const int s = (int)floor(d * scale);
    float f = (float)((d + 1) - (s + 1) * (1.0 / scale));
    *s_out = s;
    return f <= 0 ? 0.f : f - (float)floorf(f);
}

/* The vertical tap of OpenCV: its rows clamp, its weights do not. */
static void tinycv_linear_row_tap(int d, double scale, int len, int area, int* r0, int* r1,
                                  float* w0, float* w1)
{
    int s;
    float f;
    if (area) {
        f = tinycv_area_frac(d, scale, &s);
    } else {
        f = (float)((d + 0.5) * scale - 0.5);
        s = (int)floorf(f);
        f -= (float)s;
    }
    *r0 = s < 0 ? 0 : s > len - 1 ? len - 1 : s;
    *r1 = s + 1 < 0 ? 0 : s + 1 > len - 1 ? len - 1 : s + 1;
    *w0 = 1.f - f;
    *w1 = f;
}
""")

ANY_TAP = ("tinycv_any_tap", r"""
/* resize_linear's tap, or INTER_AREA's (area != 0) with the same clamping */
static void tinycv_any_tap(int d, double scale, int len, int area, int* i0, int* i1,
                           float* w0, float* w1)
{
    int s;
    float f;
    if (!area) {
        tinycv_linear_tap(d, scale, len, i0, i1, w0, w1);
        return;
    }
    f = tinycv_area_frac(d, scale, &s);
    if (s < 0) { f = 0.f; s = 0; }
    if (s >= len - 1) { f = 0.f; s = len - 1; }
    *i0 = s;
    *i1 = s + 1 < len ? s + 1 : s;
    *w0 = 1.f - f;
    *w1 = f;
}
""")

_CHECKS = r"""
    TINYCV_CHECK(FN, tinycv_valid(src, 4) && tinycv_valid(dst, 4));
    TINYCV_CHECK(FN, dst->channels == src->channels);
"""

# The two passes over strided images: crop_and_resize and letterbox call them on a part of
# src / dst (row strides in elements), resize_linear on the whole images.
CORE_U8 = ("tinycv_resize_linear_u8_core", r"""
#define TINYCV_RESIZE_U8_ROW(CN)                                                              \
    for (k = 0; k < n; ++k) {                                                                 \
        const int i0 = x_ofs[k][0], i1 = x_ofs[k][1], a0 = x_w[k][0], a1 = x_w[k][1];         \
        for (c = 0; c < (CN); ++c, ++o) {                                                     \
            int h0 = s0[i0 + c] * a0 + s0[i1 + c] * a1;                                       \
            int h1 = s1[i0 + c] * a0 + s1[i1 + c] * a1;                                       \
            int v = ((((h0 >> 4) * b0) >> 16) + (((h1 >> 4) * b1) >> 16) + 2) >> 2;          \
            *o = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);                                    \
        }                                                                                     \
    }

static void tinycv_resize_linear_u8_core(const uint8_t* s, int sw, int sh, size_t s_stride,
                                         uint8_t* d, int dw, int dh, size_t d_stride, int cn,
                                         int area)
{
    const double scale_x = 1.0 / ((double)dw / sw), scale_y = 1.0 / ((double)dh / sh);
    int x_ofs[TINYCV_RESIZE_STRIP][2];
    int16_t x_w[TINYCV_RESIZE_STRIP][2];
    int x0, k, c, dy;
    for (x0 = 0; x0 < dw; x0 += TINYCV_RESIZE_STRIP) {
        const int n = dw - x0 < TINYCV_RESIZE_STRIP ? dw - x0 : TINYCV_RESIZE_STRIP;
        for (k = 0; k < n; ++k) {
            float w0, w1;
            tinycv_any_tap(x0 + k, scale_x, sw, area, &x_ofs[k][0], &x_ofs[k][1], &w0, &w1);
            x_ofs[k][0] *= cn;
            x_ofs[k][1] *= cn;
            x_w[k][0] = (int16_t)tinycv_round(w0 * 2048.f);
            x_w[k][1] = (int16_t)tinycv_round(w1 * 2048.f);
        }
        for (dy = 0; dy < dh; ++dy) {
            int r0, r1, b0, b1;
            float w0, w1;
            const uint8_t *s0, *s1;
            uint8_t* o = d + (size_t)dy * d_stride + (size_t)x0 * cn;
            tinycv_linear_row_tap(dy, scale_y, sh, area, &r0, &r1, &w0, &w1);
            b0 = tinycv_round(w0 * 2048.f);
            b1 = tinycv_round(w1 * 2048.f);
            s0 = s + (size_t)r0 * s_stride;
            s1 = s + (size_t)r1 * s_stride;
            /* the channel count as a constant where it is common: unrolled loops */
            switch (cn) {
            case 1: TINYCV_RESIZE_U8_ROW(1); break;
            case 3: TINYCV_RESIZE_U8_ROW(3); break;
            case 4: TINYCV_RESIZE_U8_ROW(4); break;
            default: TINYCV_RESIZE_U8_ROW(cn); break;
            }
        }
    }
}
""")

CORE_F32 = ("tinycv_resize_linear_f32_core", r"""
static void tinycv_resize_linear_f32_core(const float* s, int sw, int sh, size_t s_stride,
                                          float* d, int dw, int dh, size_t d_stride, int cn,
                                          int area)
{
    const double scale_x = 1.0 / ((double)dw / sw), scale_y = 1.0 / ((double)dh / sh);
    int x_ofs[TINYCV_RESIZE_STRIP][2];
    float x_w[TINYCV_RESIZE_STRIP][2];
    int x0, k, c, dy;
    for (x0 = 0; x0 < dw; x0 += TINYCV_RESIZE_STRIP) {
        const int n = dw - x0 < TINYCV_RESIZE_STRIP ? dw - x0 : TINYCV_RESIZE_STRIP;
        for (k = 0; k < n; ++k) {
            tinycv_any_tap(x0 + k, scale_x, sw, area, &x_ofs[k][0], &x_ofs[k][1], &x_w[k][0],
                           &x_w[k][1]);
            x_ofs[k][0] *= cn;
            x_ofs[k][1] *= cn;
        }
        for (dy = 0; dy < dh; ++dy) {
            int r0, r1;
            float b0, b1;
            const float *s0, *s1;
            float* o = d + (size_t)dy * d_stride + (size_t)x0 * cn;
            tinycv_linear_row_tap(dy, scale_y, sh, area, &r0, &r1, &b0, &b1);
            s0 = s + (size_t)r0 * s_stride;
            s1 = s + (size_t)r1 * s_stride;
            for (k = 0; k < n; ++k) {
                const int i0 = x_ofs[k][0], i1 = x_ofs[k][1];
                const float a0 = x_w[k][0], a1 = x_w[k][1];
                for (c = 0; c < cn; ++c, ++o) {
                    float h0 = s0[i0 + c] * a0 + s0[i1 + c] * a1;
                    float h1 = s1[i0 + c] * a0 + s1[i1 + c] * a1;
                    *o = h0 * b0 + h1 * b1;
                }
            }
        }
    }
}
""")

# (core function name, helpers) per dtype: the portable strided cores. A vector ISA
# provides its own (same signature, bit-identical results) and every resize-based operator
# (resize_linear, crop_and_resize, letterbox, resize_area's enlargement) takes a core table.
PORTABLE_CORES = {"ui8": ("tinycv_resize_linear_u8_core", (ROUND, COEF, ANY_TAP, CORE_U8)),
                  "f32": ("tinycv_resize_linear_f32_core", (ROUND, COEF, ANY_TAP, CORE_F32))}
C_TYPE = {"ui8": "uint8_t", "f32": "float"}


def resize_linear_function(op: Op, graph: Graph, cores=PORTABLE_CORES, isa: str = ""):
    """tinycv_resize_linear_<dtype>: the whole images through `cores[dtype]`."""
    _, dtype = request_of(op, graph)
    core, helpers = cores[dtype]
    ctype = C_TYPE[dtype]
    return function(op, graph, _CHECKS + f"""
    {core}((const {ctype}*)src->data, (int)src->cols, (int)src->rows,
           src->cols * src->channels, ({ctype}*)dst->data, (int)dst->cols, (int)dst->rows,
           dst->cols * dst->channels, (int)src->channels, 0);
""", helpers, isa)


def portable_cost(op, graph, isa) -> float:
    return 1.0  # relative: CV images have no compile-time size


@implements(*op_types("resize_linear"), dtypes=ir_dtypes("ui8", "f32"), cost=portable_cost)
def emit(op: Op, graph: Graph):
    return resize_linear_function(op, graph)
