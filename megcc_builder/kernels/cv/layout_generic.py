"""Moving pixels without arithmetic: transpose, ROI copy, 90-degree rotation, flips.
Portable C; any channel count; one pixel is channels x element size bytes."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import function, ir_dtypes, op_types, request_of

# a pixel of `px` bytes; memcpy with a constant size for the common ones compiles to moves
PIXEL_COPY = ("tinycv_copy_pixel", r"""
static void tinycv_copy_pixel(uint8_t* d, const uint8_t* s, size_t px)
{
    switch (px) {
    case 1: d[0] = s[0]; break;
    case 2: memcpy(d, s, 2); break;
    case 3: memcpy(d, s, 3); break;
    case 4: memcpy(d, s, 4); break;
    default: memcpy(d, s, px);
    }
}
""")

# dst(i, j) = src(map(i, j)) over 32x32 blocks, so both sides stay in cache
_BLOCKED_MAP = r"""
    const size_t px = src->channels * ESIZE, H = dst->rows, W = dst->cols;
    const size_t SW = src->cols;
    const uint8_t* s = (const uint8_t*)src->data;
    uint8_t* d = (uint8_t*)dst->data;
    size_t i0, j0, i, j;
    for (i0 = 0; i0 < H; i0 += 32)
        for (j0 = 0; j0 < W; j0 += 32)
            for (i = i0; i < H && i < i0 + 32; ++i)
                for (j = j0; j < W && j < j0 + 32; ++j)
                    tinycv_copy_pixel(d + (i * W + j) * px, s + (SRC_ROW * SW + SRC_COL) * px, px);
"""

_ESIZE = {"ui8": "1", "f16": "2", "f32": "4"}


def _map(op: Op, graph: Graph, checks: str, row: str, col: str):
    _, dtype = request_of(op, graph)
    body = checks + _BLOCKED_MAP.replace("ESIZE", _ESIZE[dtype]).replace(
        "SRC_ROW", row).replace("SRC_COL", col)
    return function(op, graph, body, (PIXEL_COPY,))


_SWAPPED = """    TINYCV_CHECK(FN, tinycv_valid(src, (size_t)-1) && tinycv_valid(dst, (size_t)-1));
    TINYCV_CHECK(FN, dst->rows == src->cols && dst->cols == src->rows &&
                     dst->channels == src->channels);
"""


@implements(*op_types("transpose"), dtypes=ir_dtypes("ui8"))
def emit_transpose(op: Op, graph: Graph):
    return _map(op, graph, _SWAPPED, "j", "i")


@implements(*op_types("rotate"), dtypes=ir_dtypes("ui8", "f16"))
def emit_rotate(op: Op, graph: Graph):
    # clockwise: dst(i, j) = src(H - 1 - j, i); counter-clockwise: src(j, W - 1 - i)
    return _map(op, graph, _SWAPPED, "(clockwise ? src->rows - 1 - j : j)",
                "(clockwise ? i : src->cols - 1 - i)")


@implements(*op_types("flip"), dtypes=ir_dtypes("ui8"))
def emit_flip(op: Op, graph: Graph):
    checks = """    TINYCV_CHECK(FN, tinycv_valid(src, (size_t)-1) && tinycv_valid(dst, (size_t)-1));
    TINYCV_CHECK(FN, dst->rows == src->rows && dst->cols == src->cols &&
                     dst->channels == src->channels);
"""
    return _map(op, graph, checks, "(vertical ? H - 1 - i : i)", "(horizontal ? W - 1 - j : j)")


@implements(*op_types("roicopy"), dtypes=ir_dtypes("ui8"))
def emit_roi_copy(op: Op, graph: Graph):
    return function(op, graph, r"""
    TINYCV_CHECK(FN, tinycv_valid(src, (size_t)-1) && tinycv_valid(dst, (size_t)-1));
    TINYCV_CHECK(FN, row_from < row_to && row_to <= src->rows && col_from < col_to &&
                     col_to <= src->cols);
    TINYCV_CHECK(FN, dst->rows == row_to - row_from && dst->cols == col_to - col_from &&
                     dst->channels == src->channels);
    {
        const size_t px = src->channels, n = (col_to - col_from) * px;
        const uint8_t* s = (const uint8_t*)src->data;
        uint8_t* d = (uint8_t*)dst->data;
        size_t i;
        for (i = row_from; i < row_to; ++i)
            memcpy(d + (i - row_from) * n, s + (i * src->cols + col_from) * px, n);
    }
""")
