"""cv2.resize(INTER_AREA) to dst's size, portable C, 1..4 channels, OpenCV's three paths:

* integer shrink factors (|scale - cvRound(scale)| < DBL_EPSILON on both axes): the block
  average. ui8 2x2 with 1, 3 or 4 channels is (a + b + c + d + 2) >> 2 (OpenCV's vector
  path, which covers every such pixel); other ui8 factors saturate_cast<uchar>((float)sum *
  (1.f / area)), rounding half to even; f32 sums in OpenCV's order (four at a time).
* other shrinks: OpenCV's computeResizeAreaTab weights (double arithmetic, float alphas),
  accumulated in float exactly in OpenCV's order (per row: the weighted sum of each source
  row's horizontally weighted samples), then rounded half to even (ui8).
* any enlargement: INTER_LINEAR's two passes with INTER_AREA's coefficients (sx =
  floor(dx * scale), fx = (dx + 1) - (sx + 1) / scale taken modulo 1), i.e. resize_linear's
  strided core in its `area` mode.

No heap: the table path works on strips of 64 destination columns whose sums and column
cells (computed once per strip) live on the stack (about 3 KB).
"""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import ROUND, function, ir_dtypes, op_types, request_of
from .resize_linear_generic import _CHECKS, C_TYPE, PORTABLE_CORES, portable_cost

# One destination cell's source interval on an axis (computeResizeAreaTab, one dx).
AREA_CELL = ("tinycv_area_cell", r"""
#define TINYCV_AREA_STRIP 64

/* Source samples of destination index d: first (partial) sample `first` with weight wf
 * if has_first, full samples [s1, s2) with weight wmid each, last partial sample s2 with
 * weight wl if has_last. */
typedef struct {
    int has_first, has_last, first, s1, s2;
    float wf, wmid, wl;
} tinycv_area_cell_t;

static tinycv_area_cell_t tinycv_area_cell(int d, int len, double scale)
{
    tinycv_area_cell_t c;
    const double f1 = d * scale, f2 = f1 + scale;
    const double cell = scale < len - f1 ? scale : len - f1;
    int s1 = (int)ceil(f1), s2 = (int)floor(f2);
    if (s2 > len - 1) s2 = len - 1;
    if (s1 > s2) s1 = s2;
    c.has_first = s1 - f1 > 1e-3;
    c.first = s1 - 1;
    c.wf = (float)((s1 - f1) / cell);
    c.s1 = s1;
    c.s2 = s2;
    c.wmid = (float)(1.0 / cell);
    c.has_last = f2 - s2 > 1e-3;
    {
        double last = f2 - s2 < 1.0 ? f2 - s2 : 1.0;
        if (last > cell) last = cell;
        c.wl = (float)(last / cell);
    }
    return c;
}
""")


_FAST_UI8 = r"""
static void tinycv_resize_area_fast_ui8(const uint8_t* src, int sw, uint8_t* dst, int dw,
                                        int dh, int cn, int ix, int iy)
{
    const float inv_area = 1.f / (ix * iy);
    const size_t sstride = (size_t)sw * cn;
    /* OpenCV's 2x2 vector path, used for every pixel with 1, 3 or 4 channels */
    const int pair = ix == 2 && iy == 2 && (cn == 1 || cn == 3 || cn == 4);
    int dy, dx, c, sy, sx;
    for (dy = 0; dy < dh; ++dy) {
        uint8_t* o = dst + (size_t)dy * dw * cn;
        for (dx = 0; dx < dw; ++dx)
            for (c = 0; c < cn; ++c, ++o) {
                const uint8_t* s = src + (size_t)dy * iy * sstride + (size_t)dx * ix * cn + c;
                int sum = 0, v;
                for (sy = 0; sy < iy; ++sy)
                    for (sx = 0; sx < ix; ++sx) sum += s[sy * sstride + (size_t)sx * cn];
                v = pair ? (sum + 2) >> 2 : tinycv_round((double)((float)sum * inv_area));
                *o = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    }
}
"""

_FAST_F32 = r"""
static void tinycv_resize_area_fast_f32(const float* src, int sw, float* dst, int dw, int dh,
                                        int cn, int ix, int iy)
{
    const int area = ix * iy;
    const float inv_area = 1.f / area;
    const size_t sstride = (size_t)sw * cn;
    int ofs[TINYCV_AREA_MAX_BLOCK];
    int dy, dx, c, sy, sx, m = 0;
    for (sy = 0; sy < iy; ++sy)
        for (sx = 0; sx < ix; ++sx) ofs[m++] = (int)(sy * sstride) + sx * cn;
    for (dy = 0; dy < dh; ++dy) {
        float* o = dst + (size_t)dy * dw * cn;
        for (dx = 0; dx < dw; ++dx)
            for (c = 0; c < cn; ++c, ++o) {
                const float* s = src + (size_t)dy * iy * sstride + (size_t)dx * ix * cn + c;
                float sum = 0.f;
                /* OpenCV's order: four samples added, then to the sum */
                for (m = 0; m + 4 <= area; m += 4)
                    sum += s[ofs[m]] + s[ofs[m + 1]] + s[ofs[m + 2]] + s[ofs[m + 3]];
                for (; m < area; ++m) sum += s[ofs[m]];
                *o = sum * inv_area;
            }
    }
}
"""


_SCALAR_COLUMN = """
                    if (cell->has_first)
                        for (c = 0; c < cn; ++c) b[c] = b[c] + s[cell->first * cn + c] * cell->wf;
                    for (sx = cell->s1; sx < cell->s2; ++sx)
                        for (c = 0; c < cn; ++c) b[c] = b[c] + s[sx * cn + c] * cell->wmid;
                    if (cell->has_last)
                        for (c = 0; c < cn; ++c) b[c] = b[c] + s[cell->s2 * cn + c] * cell->wl;"""
_SCALAR_FIRST = "for (; x < width; ++x) sum[x] = beta * buf[x];"
_SCALAR_ADD = "for (; x < width; ++x) sum[x] += beta * buf[x];"


def table_source(ctype: str, dtype: str, suffix: str = "", column: str = _SCALAR_COLUMN,
                 first: str = "", add: str = "") -> str:
    """tinycv_resize_area_table_<dtype><suffix>: OpenCV's area-table shrink. A vector
    variant passes C for one destination column of one source row (`column`: b[0..cn) =
    b + p * w over the cell's pixels p in order, each channel rounded as _SCALAR_COLUMN
    rounds it; `cell`, `s`, `b`, `k`, `x0`, `last_row`, `sx`, `c` in scope) and for the
    leading part of the vertical accumulation (`first`: sum = beta * buf, `add`: sum +=
    beta * buf, over x from 0, leaving x where the scalar loop goes on)."""
    if dtype == "ui8":
        out = "o[x] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);"
        rnd = "const int r = tinycv_round((double)sum[x]);"
    else:
        out, rnd = "o[x] = sum[x];", ""
    return rf"""
static void tinycv_resize_area_table_{dtype}{suffix}(const {ctype}* src, int sw, int sh,
        {ctype}* dst, int dw, int dh, int cn, double scale_x, double scale_y)
{{
    float buf[TINYCV_AREA_STRIP * 4], sum[TINYCV_AREA_STRIP * 4];
    tinycv_area_cell_t cols[TINYCV_AREA_STRIP];  /* the strip's column cells */
    const size_t sstride = (size_t)sw * cn;
    int x0, dy, k;
    for (x0 = 0; x0 < dw; x0 += TINYCV_AREA_STRIP) {{
        const int n = dw - x0 < TINYCV_AREA_STRIP ? dw - x0 : TINYCV_AREA_STRIP;
        const int width = n * cn;
        for (k = 0; k < n; ++k) cols[k] = tinycv_area_cell(x0 + k, sw, scale_x);
        for (dy = 0; dy < dh; ++dy) {{
            const tinycv_area_cell_t rows = tinycv_area_cell(dy, sh, scale_y);
            {ctype}* o = dst + (size_t)dy * dw * cn + (size_t)x0 * cn;
            int first = 1, sy, x;
            for (sy = rows.has_first ? rows.first : rows.s1;
                 sy <= (rows.has_last ? rows.s2 : rows.s2 - 1); ++sy) {{
                const float beta = rows.has_first && sy == rows.first ? rows.wf
                                   : sy < rows.s2 ? rows.wmid : rows.wl;
                const {ctype}* s = src + (size_t)sy * sstride;
                /* pixels of this row after which a 4-element load may pass the image */
                const int last_row = sy == sh - 1;
                int c;
                (void)last_row;
                for (x = 0; x < width; ++x) buf[x] = 0.f;
                for (k = 0; k < n; ++k) {{
                    const tinycv_area_cell_t* cell = cols + k;
                    float* b = buf + k * cn;
                    int sx;
                    {column}
                }}
                x = 0;
                if (first) {{
                    {first}
                    {_SCALAR_FIRST}
                    first = 0;
                }} else {{
                    {add}
                    {_SCALAR_ADD}
                }}
            }}
            for (x = 0; x < width; ++x) {{
                {rnd}
                {out}
            }}
        }}
    }}
}}
"""


AREA_FAST = {dtype: (f"tinycv_resize_area_fast_{dtype}", "\n#define TINYCV_AREA_MAX_BLOCK 1024\n" + fast)
             for dtype, fast in (("ui8", _FAST_UI8), ("f32", _FAST_F32))}
AREA_TABLE = {dtype: (f"tinycv_resize_area_table_{dtype}", table_source(ctype, dtype))
              for dtype, ctype in (("ui8", "uint8_t"), ("f32", "float"))}

# per dtype: (integer-factor function, area-table function, helpers defining them)
PORTABLE_AREA = {dtype: (f"tinycv_resize_area_fast_{dtype}", f"tinycv_resize_area_table_{dtype}",
                         (ROUND, AREA_CELL, AREA_FAST[dtype], AREA_TABLE[dtype]))
                 for dtype in ("ui8", "f32")}


def resize_area_function(op: Op, graph: Graph, cores=PORTABLE_CORES, paths=PORTABLE_AREA,
                         isa: str = ""):
    """OpenCV's three INTER_AREA paths: `paths[dtype]` for shrinking (block average, area
    table), the resize core `cores[dtype]` in its area mode for enlarging."""
    _, dtype = request_of(op, graph)
    ctype = C_TYPE[dtype]
    core, core_helpers = cores[dtype]
    fast, table, path_helpers = paths[dtype]
    helpers = tuple(dict.fromkeys(core_helpers + path_helpers))  # ROUND once, first
    return function(op, graph, _CHECKS + f"""
    {{
        const int sw = (int)src->cols, sh = (int)src->rows, dw = (int)dst->cols;
        const int dh = (int)dst->rows, cn = (int)src->channels;
        const double scale_x = 1.0 / ((double)dw / sw), scale_y = 1.0 / ((double)dh / sh);
        const int dtype_is_u8 = {int(dtype == "ui8")};
        const {ctype}* s = (const {ctype}*)src->data;
        {ctype}* d = ({ctype}*)dst->data;
        if (scale_x >= 1 && scale_y >= 1) {{
            const int ix = tinycv_round(scale_x), iy = tinycv_round(scale_y);
            if (fabs(scale_x - ix) < 2.220446049250313e-16 &&
                fabs(scale_y - iy) < 2.220446049250313e-16 && (dtype_is_u8 || ix * iy <= TINYCV_AREA_MAX_BLOCK))
                {fast}(s, sw, d, dw, dh, cn, ix, iy);
            else
                {table}(s, sw, sh, d, dw, dh, cn, scale_x, scale_y);
        }} else {{
            {core}(s, sw, sh, (size_t)sw * cn, d, dw, dh, (size_t)dw * cn, cn, 1);
        }}
    }}
""", helpers, isa)


@implements(*op_types("resize_area"), dtypes=ir_dtypes("ui8", "f32"), cost=portable_cost)
def emit(op: Op, graph: Graph):
    return resize_area_function(op, graph)
