"""cv2.warpPerspective(INTER_LINEAR | WARP_INVERSE_MAP) on ui8 with NEON (ARMv7 and
AArch64), bit-identical to warp_perspective_generic_ui8: 8 columns of a block at a time,
their 1/32-pixel coordinates computed in scalar double exactly as the portable code does
(ARMv7 NEON has no double lanes), then warp_affine_neon_ui8's 8-pixel bilinear remap;
pixels whose taps leave the image go through the portable per-pixel code."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ir_dtypes, op_types
from .warp_affine_neon_ui8 import WARP8, neon_cost
from .warp_perspective_generic_ui8 import perspective_function

COORDS = ("tinycv_persp_coords", r"""
/* column x1's source coordinates in 1/32 pixel, as warp_perspective_generic_ui8 */
static void tinycv_persp_coords(const double* M, double X0, double Y0, double W0, int x1,
                                int* X, int* Y)
{
    double W = W0 + M[6] * x1, fX, fY;
    W = W != 0 ? 32.0 / W : 0;
    fX = (X0 + M[0] * x1) * W;
    fY = (Y0 + M[3] * x1) * W;
    fX = fX < -2147483648.0 ? -2147483648.0 : fX > 2147483647.0 ? 2147483647.0 : fX;
    fY = fY < -2147483648.0 ? -2147483648.0 : fY > 2147483647.0 ? 2147483647.0 : fY;
    *X = tinycv_round(fX);
    *Y = tinycv_round(fY);
}
""")

VECTOR = r"""
                for (; x1 + 8 <= bw && xb + x1 + 8 <= dw; x1 += 8) {
                    uint8_t* o = d + ((size_t)y * dw + xb + x1) * cn;
                    int32_t Xs[8], Ys[8];
                    int32x4_t X[2], Y[2];
                    int j;
                    for (j = 0; j < 8; ++j)
                        tinycv_persp_coords(trans, X0, Y0, W0, x1 + j, Xs + j, Ys + j);
                    X[0] = vld1q_s32(Xs); X[1] = vld1q_s32(Xs + 4);
                    Y[0] = vld1q_s32(Ys); Y[1] = vld1q_s32(Ys + 4);
                    if (!tinycv_warp8_xy_neon(s, sw, sh, cn, X, Y, o))
                        for (j = 0; j < 8; ++j)
                            PIXEL(s, sw, sh, cn, Xs[j], Ys[j], o + j * cn, BOARD);
                }"""


@implements(*op_types("warp_perspective_replicate_linear"), dtypes=ir_dtypes("ui8"),
            requires="neon", cost=neon_cost, label="NEON")
def emit_replicate(op: Op, graph: Graph):
    return perspective_function(op, graph, "replicate", VECTOR, (WARP8, COORDS), "neon")


@implements(*op_types("warp_perspective_constant_linear"), dtypes=ir_dtypes("ui8"),
            requires="neon", cost=neon_cost, label="NEON")
def emit_constant(op: Op, graph: Graph):
    return perspective_function(op, graph, "constant", VECTOR, (WARP8, COORDS), "neon")
