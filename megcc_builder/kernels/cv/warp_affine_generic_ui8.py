"""cv2.warpAffine(flags=INTER_LINEAR | WARP_INVERSE_MAP) on ui8, portable C, 1..4 channels:
`trans` maps dst (x, y) to src (t0 x + t1 y + t2, t3 x + t4 y + t5).

OpenCV's fixed point, bit for bit: coordinates in 1/1024 (cvRound of M * x * 1024 per
column and of (M * y + M) * 1024 per row), reduced to 1/32 pixel, bilinear weights
(32 - fy)(32 - fx) * 32 ... summing to 2^15, (sum + 2^14) >> 15. MegCC interpolates in float
instead; users compare against OpenCV. BORDER_REPLICATE clamps each tap; BORDER_CONSTANT
writes `board` where the 2x2 neighbourhood is wholly outside and uses it for the outside taps
otherwise.
"""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ROUND, function, ir_dtypes, op_types

# The row loop; PIXELS computes o[0..cn) of columns [k, n) (a vector version does whole
# groups first and leaves the rest).
_BODY = r"""
    TINYCV_CHECK(FN, tinycv_valid(src, 4) && tinycv_valid(dst, 4) && trans != NULL);
    TINYCV_CHECK(FN, dst->channels == src->channels);
    {
        const int sw = (int)src->cols, sh = (int)src->rows, dw = (int)dst->cols;
        const int dh = (int)dst->rows, cn = (int)src->channels;
        const uint8_t* s = (const uint8_t*)src->data;
        uint8_t* d = (uint8_t*)dst->data;
        int adelta[TINYCV_WARP_STRIP], bdelta[TINYCV_WARP_STRIP];
        int x0, k, y;
        for (x0 = 0; x0 < dw; x0 += TINYCV_WARP_STRIP) {
            const int n = dw - x0 < TINYCV_WARP_STRIP ? dw - x0 : TINYCV_WARP_STRIP;
            for (k = 0; k < n; ++k) {
                adelta[k] = tinycv_round(trans[0] * (x0 + k) * 1024);
                bdelta[k] = tinycv_round(trans[3] * (x0 + k) * 1024);
            }
            for (y = 0; y < dh; ++y) {
                const int X0 = tinycv_round((trans[1] * y + trans[2]) * 1024) + 16;
                const int Y0 = tinycv_round((trans[4] * y + trans[5]) * 1024) + 16;
                uint8_t* orow = d + ((size_t)y * dw + x0) * cn;
                k = 0;
VECTOR
                for (; k < n; ++k)  /* 1/1024 -> 1/32 pixel */
                    PIXEL(s, sw, sh, cn, (X0 + adelta[k]) >> 5, (Y0 + bdelta[k]) >> 5,
                          orow + k * cn, BOARD);
            }
        }
    }
"""

# One destination pixel from its source coordinates (X, Y) in 1/32 pixel (OpenCV's remap
# table: integer part and a 5-bit fraction); the border differs.
_PIXEL = r"""
static void NAME(const uint8_t* s, int sw, int sh, int cn, int X, int Y, uint8_t* o,
                 uint8_t board)
{
    const size_t sstep = (size_t)sw * cn;
    const int fx = X & 31, fy = Y & 31;
    const int sx = tinycv_sat_s16(X >> 5), sy = tinycv_sat_s16(Y >> 5);
    const int w00 = (32 - fy) * (32 - fx) * 32, w01 = (32 - fy) * fx * 32;
    const int w10 = fy * (32 - fx) * 32, w11 = fy * fx * 32;
    int c;
    (void)board;
    if ((unsigned)sx < (unsigned)(sw - 1) && (unsigned)sy < (unsigned)(sh - 1)) {
        const uint8_t* p = s + (size_t)sy * sstep + (size_t)sx * cn;
        for (c = 0; c < cn; ++c)
            o[c] = (uint8_t)((p[c] * w00 + p[c + cn] * w01 + p[c + sstep] * w10 +
                              p[c + sstep + cn] * w11 + (1 << 14)) >> 15);
        return;
    }
BORDER
}
"""

_REPLICATE = r"""
    {
        const int x_0 = sx < 0 ? 0 : sx >= sw ? sw - 1 : sx;
        const int x_1 = sx + 1 < 0 ? 0 : sx + 1 >= sw ? sw - 1 : sx + 1;
        const int y_0 = sy < 0 ? 0 : sy >= sh ? sh - 1 : sy;
        const int y_1 = sy + 1 < 0 ? 0 : sy + 1 >= sh ? sh - 1 : sy + 1;
        const uint8_t* p00 = s + (size_t)y_0 * sstep + (size_t)x_0 * cn;
        const uint8_t* p01 = s + (size_t)y_0 * sstep + (size_t)x_1 * cn;
        const uint8_t* p10 = s + (size_t)y_1 * sstep + (size_t)x_0 * cn;
        const uint8_t* p11 = s + (size_t)y_1 * sstep + (size_t)x_1 * cn;
        for (c = 0; c < cn; ++c)
            o[c] = (uint8_t)((p00[c] * w00 + p01[c] * w01 + p10[c] * w10 + p11[c] * w11 +
                              (1 << 14)) >> 15);
    }"""

_CONSTANT = r"""
    if (sx >= sw || sx + 1 < 0 || sy >= sh || sy + 1 < 0) {
        for (c = 0; c < cn; ++c) o[c] = board;
    } else {
        const int in_x0 = sx >= 0, in_x1 = sx + 1 < sw;
        const int in_y0 = sy >= 0, in_y1 = sy + 1 < sh;
        const ptrdiff_t b = (ptrdiff_t)sy * (ptrdiff_t)sstep + (ptrdiff_t)sx * cn;
        for (c = 0; c < cn; ++c) {
            const int v00 = in_y0 && in_x0 ? s[b + c] : board;
            const int v01 = in_y0 && in_x1 ? s[b + c + cn] : board;
            const int v10 = in_y1 && in_x0 ? s[b + c + (ptrdiff_t)sstep] : board;
            const int v11 = in_y1 && in_x1 ? s[b + c + (ptrdiff_t)sstep + cn] : board;
            o[c] = (uint8_t)((v00 * w00 + v01 * w01 + v10 * w10 + v11 * w11 + (1 << 14)) >> 15);
        }
    }"""

SAT_S16 = ("tinycv_sat_s16", r"""
#define TINYCV_WARP_STRIP 128

static int tinycv_sat_s16(int v)
{
    return v < -32768 ? -32768 : v > 32767 ? 32767 : v;
}
""")

PIXEL = {"replicate": ("tinycv_warp_pixel_replicate", _PIXEL.replace(
             "NAME", "tinycv_warp_pixel_replicate").replace("BORDER", _REPLICATE)),
         "constant": ("tinycv_warp_pixel_constant", _PIXEL.replace(
             "NAME", "tinycv_warp_pixel_constant").replace("BORDER", _CONSTANT))}


def warp_function(op: Op, graph: Graph, border: str, vector: str = "", helpers=(),
                  isa: str = ""):
    """The public function; `vector` may compute groups of columns first (advancing k)."""
    body = (_BODY.replace("VECTOR", vector).replace("PIXEL", PIXEL[border][0])
            .replace("BOARD", "board" if border == "constant" else "0"))
    return function(op, graph, body, (ROUND, SAT_S16, PIXEL[border]) + tuple(helpers), isa)


def portable_cost(op, graph, isa) -> float:
    return 1.0  # relative: CV images have no compile-time size


@implements(*op_types("warp_affine_replicate_linear"), dtypes=ir_dtypes("ui8"),
            cost=portable_cost)
def emit_replicate(op: Op, graph: Graph):
    return warp_function(op, graph, "replicate")


@implements(*op_types("warp_affine_constant_linear"), dtypes=ir_dtypes("ui8"),
            cost=portable_cost)
def emit_constant(op: Op, graph: Graph):
    return warp_function(op, graph, "constant")
