"""CV operators beyond MegCC's set, portable C: the other YUV 4:2:0 layouts (NV12, I420) to
BGR/RGB with OpenCV's arithmetic, nearest-neighbour resize (cv2.INTER_NEAREST) and
normalisation of an interleaved ui8 image into planar float (the usual model input)."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .color_generic import NV21_CHECKS, portable_cost
from .common import SAT_U8, function, ir_dtypes, op_types, request_of

_LAYOUTS = {  # how pixel column j of row i finds its U and V (uv: the chroma plane(s))
    "nv21": ("const uint8_t* c = uvs + (i / 2) * W;", "c[j + 1]", "c[j]"),
    "nv12": ("const uint8_t* c = uvs + (i / 2) * W;", "c[j]", "c[j + 1]"),
    "i420": ("const uint8_t* cu = uvs + (i / 2) * (W / 2);\n"
             "            const uint8_t* cv = uvs + (H / 2) * (W / 2) + (i / 2) * (W / 2);",
             "cu[j / 2]", "cv[j / 2]"),
}
YUV_OPS = [(order, layout) for order, layout in (("bgr", "nv12"), ("rgb", "nv21"),
                                                 ("rgb", "nv12"), ("bgr", "i420"),
                                                 ("rgb", "i420"))]


@implements(*op_types(*(f"yuv2{o}_{l}" for o, l in YUV_OPS)), dtypes=ir_dtypes("ui8"),
            cost=portable_cost)
def emit_yuv420(op: Op, graph: Graph):
    cv_op, _ = request_of(op, graph)
    order, layout = cv_op.name[len("yuv2"):].split("_")
    rows, u, v = _LAYOUTS[layout]
    first, last = ("b", "r") if order == "bgr" else ("r", "b")
    return function(op, graph, NV21_CHECKS + f"""
    {{
        const size_t H = dst->rows, W = dst->cols;
        const uint8_t* ys = (const uint8_t*)src->data;
        const uint8_t* uvs = ys + H * W;
        uint8_t* d = (uint8_t*)dst->data;
        size_t i, j;
        for (i = 0; i < H; ++i) {{
            const uint8_t* y = ys + i * W;
            {rows}
            uint8_t* o = d + i * W * 3;
            for (j = 0; j < W; j += 2, o += 6) {{
                /* ITU-R BT.601 limited range, 20-bit fixed point (OpenCV's constants) */
                int u = {u} - 128, v = {v} - 128;
                int r = (1 << 19) + 1673527 * v;
                int g = (1 << 19) - 852492 * v - 409993 * u;
                int b = (1 << 19) + 2116026 * u;
                int y0 = (y[j] > 16 ? y[j] - 16 : 0) * 1220542;
                int y1 = (y[j + 1] > 16 ? y[j + 1] - 16 : 0) * 1220542;
                o[0] = tinycv_sat_u8((y0 + {first}) >> 20);
                o[1] = tinycv_sat_u8((y0 + g) >> 20);
                o[2] = tinycv_sat_u8((y0 + {last}) >> 20);
                o[3] = tinycv_sat_u8((y1 + {first}) >> 20);
                o[4] = tinycv_sat_u8((y1 + g) >> 20);
                o[5] = tinycv_sat_u8((y1 + {last}) >> 20);
            }}
        }}
    }}
""", (SAT_U8,))


@implements(*op_types("resize_nearest"), dtypes=ir_dtypes("ui8", "f32"), cost=portable_cost)
def emit_resize_nearest(op: Op, graph: Graph):
    _, dtype = request_of(op, graph)
    esize = 1 if dtype == "ui8" else 4
    # OpenCV's resizeNN: sx = min(cvFloor(dx * (sw / dw)), sw - 1), the same for rows
    return function(op, graph, f"""
    TINYCV_CHECK(FN, tinycv_valid(src, 4) && tinycv_valid(dst, 4));
    TINYCV_CHECK(FN, dst->channels == src->channels);
    {{
        const size_t px = src->channels * {esize}, sw = src->cols, dw = dst->cols;
        const double fx = 1.0 / ((double)dst->cols / src->cols);
        const double fy = 1.0 / ((double)dst->rows / src->rows);
        const uint8_t* s = (const uint8_t*)src->data;
        uint8_t* d = (uint8_t*)dst->data;
        size_t x, y;
        for (y = 0; y < dst->rows; ++y) {{
            size_t sy = (size_t)floor(y * fy);
            const uint8_t* row;
            if (sy > src->rows - 1) sy = src->rows - 1;
            row = s + sy * sw * px;
            for (x = 0; x < dw; ++x) {{
                size_t sx = (size_t)floor(x * fx);
                if (sx > sw - 1) sx = sw - 1;
                memcpy(d + (y * dw + x) * px, row + sx * px, px);
            }}
        }}
    }}
""")


@implements(*op_types("normalize"), dtypes=ir_dtypes("ui8"), cost=portable_cost)
def emit_normalize(op: Op, graph: Graph):
    return function(op, graph, r"""
    TINYCV_CHECK(FN, tinycv_valid(src, 4) && tinycv_valid(dst, 4) && mean && std);
    TINYCV_CHECK(FN, dst->rows == src->rows && dst->cols == src->cols &&
                     dst->channels == src->channels);
    {
        const size_t n = src->rows * src->cols, cn = src->channels;
        const uint8_t* s = (const uint8_t*)src->data;
        float* d = (float*)dst->data;
        size_t i, c;
        for (c = 0; c < cn; ++c) {
            const float m = mean[c], inv = 1.0f / std[c];
            float* plane = d + c * n;
            for (i = 0; i < n; ++i) plane[i] = ((float)s[i * cn + c] - m) * inv;
        }
    }
""")
