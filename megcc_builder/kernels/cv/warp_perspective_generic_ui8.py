"""cv2.warpPerspective(INTER_LINEAR | WARP_INVERSE_MAP) on ui8, portable C, 1..4 channels
(beyond MegCC): `trans` (3x3) maps dst (x, y) to src ((t0 x + t1 y + t2) / w,
(t3 x + t4 y + t5) / w), w = t6 x + t7 y + t8.

OpenCV's arithmetic, bit for bit: per row and per block of bw0 columns (its tiling:
bh0 = min(16, rows), bw0 = min(1024 / bh0, cols), then bh0 = min(1024 / bw0, rows)) the
block start's X0 = M0 xb + M1 y + M2 (W0, Y0 alike) in double, then per column
W = 32 / (W0 + M6 x1), X = cvRound((X0 + M0 x1) W) in 1/32 pixel; the bilinear remap and
borders are warp_affine_generic_ui8's.
"""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ROUND, function, ir_dtypes, op_types
from .warp_affine_generic_ui8 import PIXEL, SAT_S16, portable_cost

_BODY = r"""
    TINYCV_CHECK(FN, tinycv_valid(src, 4) && tinycv_valid(dst, 4) && trans != NULL);
    TINYCV_CHECK(FN, dst->channels == src->channels);
    {
        const int sw = (int)src->cols, sh = (int)src->rows, dw = (int)dst->cols;
        const int dh = (int)dst->rows, cn = (int)src->channels;
        const uint8_t* s = (const uint8_t*)src->data;
        uint8_t* d = (uint8_t*)dst->data;
        const int bh = dh < 16 ? dh : 16;
        const int bw = 1024 / bh < dw ? 1024 / bh : dw;
        int xb, x1, y;
        for (y = 0; y < dh; ++y)
            for (xb = 0; xb < dw; xb += bw) {
                const double X0 = trans[0] * xb + trans[1] * y + trans[2];
                const double Y0 = trans[3] * xb + trans[4] * y + trans[5];
                const double W0 = trans[6] * xb + trans[7] * y + trans[8];
                x1 = 0;
VECTOR
                for (; x1 < bw && xb + x1 < dw; ++x1) {
                    double W = W0 + trans[6] * x1, fX, fY;
                    W = W != 0 ? 32.0 / W : 0;
                    fX = (X0 + trans[0] * x1) * W;
                    fY = (Y0 + trans[3] * x1) * W;
                    fX = fX < -2147483648.0 ? -2147483648.0 : fX > 2147483647.0 ? 2147483647.0 : fX;
                    fY = fY < -2147483648.0 ? -2147483648.0 : fY > 2147483647.0 ? 2147483647.0 : fY;
                    PIXEL(s, sw, sh, cn, tinycv_round(fX), tinycv_round(fY),
                          d + ((size_t)y * dw + xb + x1) * cn, BOARD);
                }
            }
    }
"""


def perspective_function(op: Op, graph: Graph, border: str, vector: str = "", helpers=(),
                         isa: str = ""):
    """The public function; `vector` may compute groups of a block's columns first
    (advancing x1; X0, Y0, W0, xb, y in scope)."""
    body = (_BODY.replace("VECTOR", vector).replace("PIXEL", PIXEL[border][0])
            .replace("BOARD", "board" if border == "constant" else "0"))
    return function(op, graph, body, (ROUND, SAT_S16, PIXEL[border]) + tuple(helpers), isa)


def _emit(op: Op, graph: Graph, border: str):
    return perspective_function(op, graph, border)


@implements(*op_types("warp_perspective_replicate_linear"), dtypes=ir_dtypes("ui8"),
            cost=portable_cost)
def emit_replicate(op: Op, graph: Graph):
    return _emit(op, graph, "replicate")


@implements(*op_types("warp_perspective_constant_linear"), dtypes=ir_dtypes("ui8"),
            cost=portable_cost)
def emit_constant(op: Op, graph: Graph):
    return _emit(op, graph, "constant")
