"""Colour conversions with OpenCV's arithmetic (cvtColor), portable C.

rgb2gray: OpenCV 4's RGB2Gray<uchar> uses 15-bit coefficients (9798, 19235, 3735), which is
what COLOR_RGB2GRAY returns; MegCC's 14-bit ones (4899, 9617, 1868) differ by 1 on some
pixels, so we follow OpenCV. rgb2yuv: OpenCV's 14-bit RGB2YCrCb_i with the YUV
coefficients (U = 8061, V = 14369). yuv2bgr_nv21: OpenCV's COLOR_YUV2BGR_NV21 (BT.601
limited range, 20-bit fixed point); MegCC's full-range 8-bit version differs by many
levels, and users compare against OpenCV.
"""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import SAT_U8, function, ir_dtypes, op_types, request_of

def portable_cost(op, graph, isa) -> float:
    return 1.0  # relative: CV images have no compile-time size


_SAME_SIZE = """    TINYCV_CHECK(FN, tinycv_valid(src, 4) && tinycv_valid(dst, 4));
    TINYCV_CHECK(FN, dst->rows == src->rows && dst->cols == src->cols &&
                     src->channels == SRC_CN && dst->channels == DST_CN);
"""


def _checks(src_cn: int, dst_cn: int) -> str:
    return _SAME_SIZE.replace("SRC_CN", str(src_cn)).replace("DST_CN", str(dst_cn))


@implements(*op_types("rgb2bgr"), dtypes=ir_dtypes("ui8"), cost=portable_cost)
def emit_rgb2bgr(op: Op, graph: Graph):
    return function(op, graph, _checks(3, 3) + r"""
    {
        const size_t n = src->rows * src->cols;
        const uint8_t* s = (const uint8_t*)src->data;
        uint8_t* d = (uint8_t*)dst->data;
        size_t i;
        for (i = 0; i < n; ++i, s += 3, d += 3) {
            uint8_t r = s[0], g = s[1], b = s[2];  /* src may be dst */
            d[0] = b; d[1] = g; d[2] = r;
        }
    }
""")


@implements(*op_types("gray2rgb"), dtypes=ir_dtypes("ui8", "f32"))
def emit_gray2rgb(op: Op, graph: Graph):
    _, dtype = request_of(op, graph)
    t = "uint8_t" if dtype == "ui8" else "float"
    return function(op, graph, _checks(1, 3) + f"""
    {{
        const size_t n = src->rows * src->cols;
        const {t}* s = (const {t}*)src->data;
        {t}* d = ({t}*)dst->data;
        size_t i;
        for (i = 0; i < n; ++i, d += 3) d[0] = d[1] = d[2] = s[i];
    }}
""")


@implements(*op_types("rgb2gray"), dtypes=ir_dtypes("ui8"), cost=portable_cost)
def emit_rgb2gray(op: Op, graph: Graph):
    return function(op, graph, _checks(3, 1) + r"""
    {
        const size_t n = src->rows * src->cols;
        const uint8_t* s = (const uint8_t*)src->data;
        uint8_t* d = (uint8_t*)dst->data;
        size_t i;
        for (i = 0; i < n; ++i, s += 3)
            d[i] = (uint8_t)((s[0] * 9798 + s[1] * 19235 + s[2] * 3735 + (1 << 14)) >> 15);
    }
""")


@implements(*op_types("rgb2yuv"), dtypes=ir_dtypes("ui8"), cost=portable_cost)
def emit_rgb2yuv(op: Op, graph: Graph):
    return function(op, graph, _checks(3, 3) + r"""
    {
        const size_t n = src->rows * src->cols;
        const uint8_t* s = (const uint8_t*)src->data;
        uint8_t* d = (uint8_t*)dst->data;
        const int delta = (128 << 14) + (1 << 13);
        size_t i;
        for (i = 0; i < n; ++i, s += 3, d += 3) {
            int r = s[0], g = s[1], b = s[2];  /* src may be dst */
            int y = (r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14;
            d[0] = tinycv_sat_u8(y);
            d[1] = tinycv_sat_u8(((b - y) * 8061 + delta) >> 14);
            d[2] = tinycv_sat_u8(((r - y) * 14369 + delta) >> 14);
        }
    }
""", (SAT_U8,))


NV21_CHECKS = r"""
    TINYCV_CHECK(FN, tinycv_valid(src, 1) && tinycv_valid(dst, 3));
    TINYCV_CHECK(FN, src->rows % 3 == 0 && src->cols % 2 == 0 && dst->channels == 3 &&
                     dst->rows == src->rows / 3 * 2 && dst->cols == src->cols);
"""

# Two pixels sharing one V, U pair: ITU-R BT.601 limited range, 20-bit fixed point
# (OpenCV's constants). In: y, vu (row pointers), j; out: o[0..5].
NV21_PAIR = r"""int v = vu[j] - 128, u = vu[j + 1] - 128;
                int ruv = (1 << 19) + 1673527 * v;
                int guv = (1 << 19) - 852492 * v - 409993 * u;
                int buv = (1 << 19) + 2116026 * u;
                int y0 = (y[j] > 16 ? y[j] - 16 : 0) * 1220542;
                int y1 = (y[j + 1] > 16 ? y[j + 1] - 16 : 0) * 1220542;
                o[0] = tinycv_sat_u8((y0 + buv) >> 20);
                o[1] = tinycv_sat_u8((y0 + guv) >> 20);
                o[2] = tinycv_sat_u8((y0 + ruv) >> 20);
                o[3] = tinycv_sat_u8((y1 + buv) >> 20);
                o[4] = tinycv_sat_u8((y1 + guv) >> 20);
                o[5] = tinycv_sat_u8((y1 + ruv) >> 20);"""


@implements(*op_types("yuv2bgr_nv21"), dtypes=ir_dtypes("ui8"), cost=portable_cost)
def emit_yuv2bgr_nv21(op: Op, graph: Graph):
    return function(op, graph, NV21_CHECKS + r"""
    {
        const size_t H = dst->rows, W = dst->cols;
        const uint8_t* ys = (const uint8_t*)src->data;
        const uint8_t* vus = ys + H * W;
        uint8_t* d = (uint8_t*)dst->data;
        size_t i, j;
        for (i = 0; i < H; ++i) {
            const uint8_t* y = ys + i * W;
            const uint8_t* vu = vus + (i / 2) * W;
            uint8_t* o = d + i * W * 3;
            for (j = 0; j < W; j += 2, o += 6) {
                NV21_PAIR
            }
        }
    }
""".replace("NV21_PAIR", NV21_PAIR), (SAT_U8,))
