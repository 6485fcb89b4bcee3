"""Ops whose output length is computed by the kernel: NonZero, Range with run-time operands.

Each writes its element count into an extra int64 output (`<output>:count`,
ir/value_shapes.py); the runtime reads it right after the call and recomputes the sizes
that depend on it (docs/dynamic-shapes.md, "Value symbols"). The main output's storage is
placed for the count's cap, so the kernel only has to check the count against the cap
given as a param (a count above it fails the kernel rather than writing past its output).
"""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel, numel
from ...codegen.params import i32, schema, table
from ...ir import Graph, Op, c_type
from ...ir.value_shapes import RANGE_DTYPES, cap_of
from ..registry import implements

MAX_RANK = 8

# How each dtype tests "non-zero" (float16/bfloat16 are stored as their bits: +-0 is zero).
_NONZERO = {"float32": "x[i] != 0.0f", "float64": "x[i] != 0.0",
            "float16": "(x[i] & 0x7FFFu) != 0", "bfloat16": "(x[i] & 0x7FFFu) != 0"}
NONZERO_TYPES = ("float32", "float64", "float16", "bfloat16", "int8", "int16", "int32",
                 "int64", "uint8", "uint16", "uint32", "uint64", "bool")

NONZERO_PARAMS = schema(i32("n", "input elements"), i32("cap", "most indices the output holds"),
                        i32("rank", "input rank"), table("dims", "rank", "input extents"))


@implements("NonZero", dtypes=NONZERO_TYPES)
def lower_nonzero(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    if x.dtype not in NONZERO_TYPES:
        raise graph.error(f"NonZero on {x.dtype} is not supported", op)
    if len(x.shape) > MAX_RANK:
        raise graph.error(f"NonZero of rank {len(x.shape)} (at most {MAX_RANK})", op)
    test = _NONZERO.get(x.dtype, "x[i] != 0")
    name = f"nonzero_{x.dtype}"
    # Two passes: the count first (the output's row stride), then the coordinates.
    body = f"""    const {c_type(x.dtype)} *x = (const {c_type(x.dtype)} *)in_ptrs[0];
    int64_t *y = (int64_t *)out_ptrs[0];
    int64_t *count = (int64_t *)out_ptrs[1];
    int64_t total = 0, k = 0, i;
    int32_t r;
    for (i = 0; i < n; ++i)
        if ({test}) ++total;
    *count = total;
    if (total > cap) return 0; /* the runtime refuses the count: above its cap */
    for (i = 0; i < n; ++i) {{
        int64_t rest = i;
        if (!({test})) continue;
        for (r = rank - 1; r >= 0; --r) {{
            y[(int64_t)r * total + k] = rest % dims[r];
            rest /= dims[r];
        }}
        ++k;
    }}
"""
    kernel = make_kernel(name, body, NONZERO_PARAMS)
    cap = graph.tensors[op.outputs[0]].shape[1]
    params = NONZERO_PARAMS.pack(n=numel(x.shape), cap=_cap_of(graph, cap),
                                 rank=len(x.shape), dims=list(x.shape))
    return [Instr(kernel, [op.inputs[0]], list(op.outputs[:2]), params)]


def _cap_of(graph: Graph, n) -> object:
    """The cap of value symbol `n` as the instruction's param (an expression of the input
    symbols, re-evaluated with the shapes, never of `n` itself)."""
    return cap_of(graph, n)


RANGE_TYPES = RANGE_DTYPES
RANGE_PARAMS = schema(i32("cap", "most elements the output holds"))


@implements("Range", dtypes=RANGE_TYPES)
def lower_range(op: Op, graph: Graph):
    t = graph.tensors[op.inputs[0]].dtype
    if t not in RANGE_TYPES:
        raise graph.error(f"Range on {t} is not supported", op)
    ct = c_type(t)
    # ONNX: n = max(ceil((limit - start) / delta), 0), element i = start + i * delta
    if t in ("float32", "float64"):
        length = f"""    double len = ceil(((double)limit - (double)start) / (double)delta);
    if (!(len > 0)) len = 0; /* NaN and negative: empty */
    if (len > (double)cap) {{ /* written (saturated) for the runtime's refusal */
        *count = len < 9.0e18 ? (int64_t)len : (int64_t)9000000000000000000ll;
        return 0;
    }}
    n = (int64_t)len;"""
    else:
        length = f"""    int64_t d = (int64_t)limit - (int64_t)start;
    if (delta == 0) return -1;
    n = d / (int64_t)delta;
    if (n * (int64_t)delta != d && ((d > 0) == (delta > 0))) ++n; /* ceil */
    if (n < 0) n = 0;
    if (n > cap) {{ *count = n; return 0; }} /* the runtime refuses it */"""
    body = f"""    const {ct} start = *(const {ct} *)in_ptrs[0];
    const {ct} limit = *(const {ct} *)in_ptrs[1];
    const {ct} delta = *(const {ct} *)in_ptrs[2];
    {ct} *y = ({ct} *)out_ptrs[0];
    int64_t *count = (int64_t *)out_ptrs[1];
    int64_t n, i;
{length}
    *count = n;
    for (i = 0; i < n; ++i) y[i] = ({ct})(start + ({ct})i * delta);
"""
    kernel = make_kernel(f"range_{t}", body, RANGE_PARAMS, prelude="#include <math.h>\n")
    n = graph.tensors[op.outputs[0]].shape[0]
    return [Instr(kernel, list(op.inputs[:3]), list(op.outputs[:2]),
                  RANGE_PARAMS.pack(cap=_cap_of(graph, n)))]


NMS_PARAMS = schema(i32("B", "batches"), i32("N", "boxes per batch"), i32("C", "classes"),
                    i32("cap", "most rows the output holds"),
                    i32("center", "center_point_box: boxes are [xc, yc, w, h]"))

# onnxruntime's arithmetic (non_max_suppression_helper.h): corners sorted per axis, IoU in
# float32, a pair with no positive intersection, area or union never suppresses.
_NMS_HELPERS = r"""
static void nms_corners(const float *b, int32_t center, float *c) {
    if (center) {
        c[0] = b[1] - b[3] / 2.0f; c[2] = b[1] + b[3] / 2.0f; /* y */
        c[1] = b[0] - b[2] / 2.0f; c[3] = b[0] + b[2] / 2.0f; /* x */
    } else {
        c[0] = b[0] < b[2] ? b[0] : b[2]; c[2] = b[0] < b[2] ? b[2] : b[0];
        c[1] = b[1] < b[3] ? b[1] : b[3]; c[3] = b[1] < b[3] ? b[3] : b[1];
    }
}

static int nms_suppresses(const float *a, const float *b, int32_t center, float thr) {
    float p[4], q[4], ix, iy, inter, area1, area2, uni;
    nms_corners(a, center, p);
    nms_corners(b, center, q);
    ix = (p[3] < q[3] ? p[3] : q[3]) - (p[1] > q[1] ? p[1] : q[1]);
    iy = (p[2] < q[2] ? p[2] : q[2]) - (p[0] > q[0] ? p[0] : q[0]);
    if (ix <= 0.0f || iy <= 0.0f) return 0;
    inter = ix * iy;
    area1 = (p[2] - p[0]) * (p[3] - p[1]);
    area2 = (q[2] - q[0]) * (q[3] - q[1]);
    uni = area1 + area2 - inter;
    if (area1 <= 0.0f || area2 <= 0.0f || uni <= 0.0f) return 0;
    return inter / uni > thr;
}

/* a before b: higher score first, then lower index (onnxruntime's priority queue order) */
static int nms_before(const float *s, int32_t a, int32_t b) {
    return s[a] > s[b] || (s[a] == s[b] && a < b);
}

static void nms_sift(const float *s, int32_t *h, int32_t root, int32_t n) {
    for (;;) {
        int32_t child = 2 * root + 1, top = root, t;
        /* the root is the candidate that comes last: heap sort leaves `before` order */
        if (child < n && nms_before(s, h[top], h[child])) top = child;
        if (child + 1 < n && nms_before(s, h[top], h[child + 1])) top = child + 1;
        if (top == root) return;
        t = h[root]; h[root] = h[top]; h[top] = t;
        root = top;
    }
}
"""


@implements("NonMaxSuppression", dtypes=("float32",))
def lower_nms(op: Op, graph: Graph):
    boxes, scores = (graph.tensors[n] for n in op.inputs[:2])
    if boxes.dtype != "float32" or scores.dtype != "float32":
        raise graph.error("NonMaxSuppression on float32 boxes and scores only", op)
    for k, want in ((2, "int64"), (3, "float32"), (4, "float32")):
        if k < len(op.inputs) and op.inputs[k] and graph.tensors[op.inputs[k]].dtype != want:
            raise graph.error(f"NonMaxSuppression input {k} must be {want}", op)
    body = """    const float *boxes = (const float *)in_ptrs[0];
    const float *scores = (const float *)in_ptrs[1];
    const int64_t max_out = in_ptrs[2] ? *(const int64_t *)in_ptrs[2] : 0;
    const float iou = in_ptrs[3] ? *(const float *)in_ptrs[3] : 0.0f;
    const int has_thr = in_ptrs[4] != NULL;
    const float thr = has_thr ? *(const float *)in_ptrs[4] : 0.0f;
    int64_t *y = (int64_t *)out_ptrs[0];
    int64_t *count = (int64_t *)out_ptrs[1];
    int32_t *cand = (int32_t *)workspace, *sel = cand + N;
    int64_t rows = 0;
    int32_t b, c, i, j, n_cand, n_sel;
    for (b = 0; b < B; ++b)
        for (c = 0; c < C; ++c) {
            const float *s = scores + ((int64_t)b * C + c) * N;
            const float *bx = boxes + (int64_t)b * N * 4;
            if (max_out <= 0) continue;
            n_cand = 0;
            for (i = 0; i < N; ++i)
                if (!has_thr || s[i] > thr) cand[n_cand++] = i;
            /* heap sort: the candidates in (score desc, index asc) order */
            for (i = n_cand / 2; i-- > 0;) nms_sift(s, cand, i, n_cand);
            for (i = n_cand; i-- > 1;) {
                int32_t t = cand[0]; cand[0] = cand[i]; cand[i] = t;
                nms_sift(s, cand, 0, i);
            }
            n_sel = 0;
            for (i = 0; i < n_cand && n_sel < max_out; ++i) {
                int keep = 1;
                for (j = 0; j < n_sel && keep; ++j)
                    if (nms_suppresses(bx + 4 * (int64_t)cand[i], bx + 4 * (int64_t)sel[j], center, iou))
                        keep = 0;
                if (!keep) continue;
                sel[n_sel++] = cand[i];
                if (rows < cap) {
                    y[3 * rows] = b; y[3 * rows + 1] = c; y[3 * rows + 2] = cand[i];
                }
                ++rows;
            }
        }
    *count = rows; /* above cap: refused by the runtime (nothing written past the output) */
"""
    kernel = make_kernel("nms_f32", body, NMS_PARAMS, (("nms_helpers", _NMS_HELPERS),))
    n = graph.tensors[op.outputs[0]].shape[0]
    ins = list(op.inputs[:5]) + [""] * (5 - len(op.inputs[:5]))
    params = NMS_PARAMS.pack(B=boxes.shape[0], N=boxes.shape[1], C=scores.shape[1],
                             cap=_cap_of(graph, n),
                             center=int(op.attrs.get("center_point_box", 0)))
    return [Instr(kernel, ins, list(op.outputs[:2]), params,
                  workspace_bytes=8 * boxes.shape[1])]


COMPRESS_PARAMS = schema(i32("outer", "elements before the axis"),
                         i32("dim", "input extent of the axis"),
                         i32("inner", "elements after the axis"),
                         i32("len", "condition elements"),
                         i32("cap", "most slices the output holds"))


@implements("Compress")
def lower_compress(op: Op, graph: Graph):
    x, cond = (graph.tensors[n] for n in op.inputs[:2])
    if cond.dtype != "bool":
        raise graph.error(f"Compress condition of {cond.dtype} (bool expected)", op)
    from ...ir import itemsize
    esize = itemsize(x.dtype)
    axis = op.attrs.get("axis")
    if axis is None:
        outer, dim, inner = 1, numel(x.shape), 1
    else:
        axis = int(axis) + (len(x.shape) if int(axis) < 0 else 0)
        outer, dim, inner = numel(x.shape[:axis]), x.shape[axis], numel(x.shape[axis + 1:])
    body = """    const uint8_t *x = (const uint8_t *)in_ptrs[0];
    const uint8_t *cond = (const uint8_t *)in_ptrs[1];
    uint8_t *y = (uint8_t *)out_ptrs[0];
    int64_t *count = (int64_t *)out_ptrs[1];
    int32_t n = len < dim ? len : dim, k = 0, i, o;
    const int64_t row = (int64_t)inner * ESIZE;
    for (i = 0; i < n; ++i) k += cond[i] != 0;
    *count = k;
    if (k > cap) return 0; /* refused by the runtime */
    for (o = 0; o < outer; ++o) {
        int32_t j = 0;
        for (i = 0; i < n; ++i)
            if (cond[i]) {
                memcpy(y + ((int64_t)o * k + j) * row, x + ((int64_t)o * dim + i) * row,
                       (size_t)row);
                ++j;
            }
    }
""".replace("ESIZE", str(esize))
    kernel = make_kernel(f"compress_e{esize}", body, COMPRESS_PARAMS,
                         prelude="#include <string.h>\n")
    n = graph.tensors[op.outputs[0]].shape[axis or 0]
    params = COMPRESS_PARAMS.pack(outer=outer, dim=dim, inner=inner, len=cond.shape[0],
                                  cap=_cap_of(graph, n))
    return [Instr(kernel, list(op.inputs[:2]), list(op.outputs[:2]), params)]
