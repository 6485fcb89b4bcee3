"""CV operators around boxes, portable C: a box of an image resized (crop_and_resize), an
image fitted into a model input keeping its aspect ratio (letterbox), and the detector
post-processing every app writes by hand: top-k of a score vector, SSD box decoding and
OpenCV's non-maximum suppression (cv2.dnn.NMSBoxes).

crop_and_resize and letterbox run resize_linear's strided core on a part of src or dst,
so their pixels are bit-exact with cv2.resize on the same box (ui8) as resize_linear is.
No heap anywhere: NMS sorts in a caller-provided workspace (CMSIS-NN style)."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .common import function, ir_dtypes, op_types, request_of
from .resize_linear_generic import C_TYPE, PORTABLE_CORES, portable_cost


def crop_and_resize_function(op: Op, graph: Graph, cores=PORTABLE_CORES, isa: str = ""):
    """The box of src through the resize core `cores[dtype]` (src's row stride)."""
    _, dtype = request_of(op, graph)
    core, helpers = cores[dtype]
    ctype = C_TYPE[dtype]
    return function(op, graph, f"""
    TINYCV_CHECK(FN, tinycv_valid(src, 4) && tinycv_valid(dst, 4));
    TINYCV_CHECK(FN, dst->channels == src->channels && rows > 0 && cols > 0);
    TINYCV_CHECK(FN, row < src->rows && rows <= src->rows - row && col < src->cols &&
                     cols <= src->cols - col);
    {{
        const size_t cn = src->channels;
        const {ctype}* box = (const {ctype}*)src->data + (row * src->cols + col) * cn;
        {core}(box, (int)cols, (int)rows, src->cols * cn, ({ctype}*)dst->data,
               (int)dst->cols, (int)dst->rows, dst->cols * cn, (int)cn, 0);
    }}
""", helpers, isa)


def letterbox_function(op: Op, graph: Graph, cores=PORTABLE_CORES, isa: str = ""):
    """src resized through `cores[dtype]` into the centred part of dst (dst's row stride)."""
    _, dtype = request_of(op, graph)
    core, helpers = cores[dtype]
    ctype = C_TYPE[dtype]
    if dtype == "ui8":
        fill = "const int p = tinycv_round(pad);\n        const uint8_t v = (uint8_t)(p < 0 ? 0 : p > 255 ? 255 : p);"
    else:
        fill = "const float v = (float)pad;"
    return function(op, graph, f"""
    TINYCV_CHECK(FN, tinycv_valid(src, 4) && tinycv_valid(dst, 4));
    TINYCV_CHECK(FN, dst->channels == src->channels);
    {{
        const size_t cn = src->channels, n = dst->rows * dst->cols * cn;
        const double sx = (double)dst->cols / src->cols, sy = (double)dst->rows / src->rows;
        const double s = sx < sy ? sx : sy;
        int nw = tinycv_round(src->cols * s), nh = tinycv_round(src->rows * s), x0, y0;
        {ctype}* d = ({ctype}*)dst->data;
        size_t i;
        {fill}
        if (nw < 1) nw = 1;
        if (nw > (int)dst->cols) nw = (int)dst->cols;
        if (nh < 1) nh = 1;
        if (nh > (int)dst->rows) nh = (int)dst->rows;
        x0 = ((int)dst->cols - nw) / 2;
        y0 = ((int)dst->rows - nh) / 2;
        for (i = 0; i < n; ++i) d[i] = v;
        {core}((const {ctype}*)src->data, (int)src->cols, (int)src->rows, src->cols * cn,
               d + ((size_t)y0 * dst->cols + (size_t)x0) * cn, nw, nh, dst->cols * cn,
               (int)cn, 0);
        if (scale) *scale = (float)s;
        if (left) *left = x0;
        if (top) *top = y0;
    }}
""", helpers, isa)


@implements(*op_types("crop_and_resize"), dtypes=ir_dtypes("ui8", "f32"), cost=portable_cost)
def emit_crop_and_resize(op: Op, graph: Graph):
    return crop_and_resize_function(op, graph)


@implements(*op_types("letterbox"), dtypes=ir_dtypes("ui8", "f32"), cost=portable_cost)
def emit_letterbox(op: Op, graph: Graph):
    return letterbox_function(op, graph)


@implements(*op_types("topk"), dtypes=ir_dtypes("f32"), cost=portable_cost)
def emit_topk(op: Op, graph: Graph):
    # insertion into the sorted list of the k best so far: O(n k), no workspace; an
    # element equal to a listed one goes after it (stable, like argsort kind='stable')
    return function(op, graph, r"""
    TINYCV_CHECK(FN, tinycv_valid(src, 1) && tinycv_valid(dst, 1));
    TINYCV_CHECK(FN, dst->rows * dst->cols <= src->rows * src->cols);
    {
        const size_t n = src->rows * src->cols, k = dst->rows * dst->cols;
        const float* x = (const float*)src->data;
        int32_t* top = (int32_t*)dst->data;
        size_t have = 0, i, j;
        for (i = 0; i < n; ++i) {
            const float v = x[i];
            size_t pos = have;
            /* NaN ranks below every number; among NaNs, by index */
            while (pos > 0) {
                const float u = x[top[pos - 1]];
                const int better = v == v && (u != u || v > u);
                if (!better) break;
                --pos;
            }
            if (pos >= k) continue;
            for (j = have < k ? have : k - 1; j > pos; --j) top[j] = top[j - 1];
            top[pos] = (int32_t)i;
            if (have < k) ++have;
        }
    }
""")


# OpenCV's Rect2d overlap: 1 - jaccardDistance, the intersection computed as Rect_'s &=
NMS_OVERLAP = ("tinycv_rect_overlap", r"""
static float tinycv_rect_overlap(const float* a4, const float* b4)
{
    const double ax = a4[0], ay = a4[1], aw = a4[2], ah = a4[3];
    const double bx = b4[0], by = b4[1], bw = b4[2], bh = b4[3];
    const double area_a = aw * ah, area_b = bw * bh;
    double iw, ih, inter = 0.0;
    if (area_a + area_b <= 2.220446049250313e-16) return 1.f;
    if (aw > 0 && ah > 0 && bw > 0 && bh > 0) {
        const double xmin_x = ax < bx ? ax : bx, xmin_w = ax < bx ? aw : bw;
        const double xmax_x = ax < bx ? bx : ax, xmax_w = ax < bx ? bw : aw;
        const double ymin_y = ay < by ? ay : by, ymin_h = ay < by ? ah : bh;
        const double ymax_y = ay < by ? by : ay, ymax_h = ay < by ? bh : ah;
        iw = xmin_w - (xmax_x - xmin_x);
        ih = ymin_h - (ymax_y - ymin_y);
        if (iw > xmax_w) iw = xmax_w;
        if (ih > ymax_h) ih = ymax_h;
        if (iw > 0 && ih > 0) inter = iw * ih;
    }
    return 1.f - (float)(1.0 - inter / (area_a + area_b - inter));
}
""")


@implements(*op_types("nms"), dtypes=ir_dtypes("f32"), cost=portable_cost)
def emit_nms(op: Op, graph: Graph):
    return function(op, graph, r"""
    TINYCV_CHECK(FN, tinycv_valid(src, 1) && tinycv_valid(dst, 1) && src->cols == 4);
    TINYCV_CHECK(FN, scores != NULL && workspace != NULL);
    {
        const size_t n = src->rows, cap = dst->rows * dst->cols;
        const float* boxes = (const float*)src->data;
        int32_t* keep = (int32_t*)dst->data;
        int32_t *order = workspace, *tmp = workspace + n;
        size_t m = 0, kept = 0, i, j, width;
        /* candidates above the threshold, then a stable merge sort by descending score */
        for (i = 0; i < n; ++i)
            if (scores[i] > score_threshold) order[m++] = (int32_t)i;
        for (width = 1; width < m; width *= 2) {
            for (i = 0; i < m; i += 2 * width) {
                size_t a = i, mid = i + width < m ? i + width : m;
                size_t end = i + 2 * width < m ? i + 2 * width : m, b = mid, o = i;
                while (a < mid && b < end)
                    tmp[o++] = scores[order[b]] > scores[order[a]] ? order[b++] : order[a++];
                while (a < mid) tmp[o++] = order[a++];
                while (b < end) tmp[o++] = order[b++];
            }
            for (i = 0; i < m; ++i) order[i] = tmp[i];
        }
        if (top_k > 0 && (size_t)top_k < m) m = (size_t)top_k;
        for (i = 0; i < m && kept < cap; ++i) {
            const float* box = boxes + (size_t)order[i] * 4;
            int ok = 1;
            for (j = 0; j < kept && ok; ++j)
                ok = tinycv_rect_overlap(box, boxes + (size_t)keep[j] * 4) <= nms_threshold;
            if (ok) keep[kept++] = order[i];
        }
        for (i = kept; i < cap; ++i) keep[i] = -1;
    }
""", (NMS_OVERLAP,))


@implements(*op_types("box_decode"), dtypes=ir_dtypes("f32"), cost=portable_cost)
def emit_box_decode(op: Op, graph: Graph):
    return function(op, graph, r"""
    TINYCV_CHECK(FN, tinycv_valid(src, 1) && tinycv_valid(dst, 1) && src->cols == 4);
    TINYCV_CHECK(FN, dst->rows == src->rows && dst->cols == 4 && anchors && variances);
    {
        const float* dlt = (const float*)src->data;
        float* out = (float*)dst->data;
        size_t i;
        for (i = 0; i < src->rows; ++i, dlt += 4, out += 4) {
            const float* a = anchors + i * 4;
            const float aw = a[2] - a[0], ah = a[3] - a[1];
            const float acx = a[0] + 0.5f * aw, acy = a[1] + 0.5f * ah;
            const float cx = acx + dlt[0] * variances[0] * aw;
            const float cy = acy + dlt[1] * variances[1] * ah;
            const float w = aw * expf(dlt[2] * variances[2]);
            const float h = ah * expf(dlt[3] * variances[3]);
            out[0] = cx - 0.5f * w;
            out[1] = cy - 0.5f * h;
            out[2] = cx + 0.5f * w;
            out[3] = cy + 0.5f * h;
        }
    }
""")


SIGMOID = ("tinycv_sigmoid", r"""
static float tinycv_sigmoid(float x)
{
    return 1.f / (1.f + expf(-x));
}
""")


@implements(*op_types("yolo_decode"), dtypes=ir_dtypes("f32"), cost=portable_cost)
def emit_yolo_decode(op: Op, graph: Graph):
    # the sigmoid as 1 / (1 + exp(-x)) in float (what the exported models compute)
    return function(op, graph, r"""
    TINYCV_CHECK(FN, tinycv_valid(src, 1) && tinycv_valid(dst, 1) && src->cols > 5);
    TINYCV_CHECK(FN, grid_h > 0 && grid_w > 0 && dst->rows == src->rows && dst->cols == 4);
    TINYCV_CHECK(FN, src->rows % ((size_t)grid_h * grid_w) == 0);
    TINYCV_CHECK(FN, anchors != NULL || src->rows == (size_t)grid_h * grid_w);
    {
        const size_t cells = (size_t)grid_h * grid_w, width = src->cols;
        const float* t = (const float*)src->data;
        float* out = (float*)dst->data;
        size_t i, c;
        for (i = 0; i < src->rows; ++i, t += width, out += 4) {
            const size_t a = i / cells, cell = i % cells;
            const float gx = (float)(cell % (size_t)grid_w), gy = (float)(cell / (size_t)grid_w);
            float cx, cy, w, h, best, obj;
            int32_t best_c = 0;
            if (anchors == NULL) {
                cx = (t[0] + gx) * stride;
                cy = (t[1] + gy) * stride;
                w = expf(t[2]) * stride;
                h = expf(t[3]) * stride;
            } else {
                const float px = tinycv_sigmoid(t[0]), py = tinycv_sigmoid(t[1]);
                const float pw = 2.f * tinycv_sigmoid(t[2]), ph = 2.f * tinycv_sigmoid(t[3]);
                cx = (2.f * px - 0.5f + gx) * stride;
                cy = (2.f * py - 0.5f + gy) * stride;
                w = pw * pw * anchors[2 * a];
                h = ph * ph * anchors[2 * a + 1];
            }
            out[0] = cx - 0.5f * w;
            out[1] = cy - 0.5f * h;
            out[2] = cx + 0.5f * w;
            out[3] = cy + 0.5f * h;
            best = t[5];
            for (c = 6; c < width; ++c)
                if (t[c] > best) {
                    best = t[c];
                    best_c = (int32_t)(c - 5);
                }
            /* the sigmoid is monotonic: the best logit is the best score */
            obj = sigmoid ? tinycv_sigmoid(t[4]) : t[4];
            if (scores) scores[i] = obj * (sigmoid ? tinycv_sigmoid(best) : best);
            if (classes) classes[i] = best_c;
        }
    }
""", (SIGMOID,))

