"""GridSample: each output point reads the input at a location the grid gives (N-D).

ONNX semantics (onnx.reference's GridSample, itself PyTorch's grid_sampler): the grid holds
normalised coordinates in [-1, 1], innermost first (x, y[, z]); they are mapped to input
coordinates (align_corners: -1/1 are the centres of the corner pixels, else their outer
edges), rounded half-to-even for `nearest`, moved inside by the padding mode when they lie
outside the border (border: clamped, reflection: mirrored), then interpolated with 1
(nearest), 2 (linear) or 4 (cubic, Keys a = -0.75) taps per axis, each tap read through the
padding mode again (zeros: 0 outside). One exception, cubic with border padding: like
PyTorch and onnxruntime, the coordinate itself is not clamped, only each tap (ONNX's
reference clamps both; for reflection the two agree, the Keys kernel being symmetric). The
spatial rank, mode, padding and align_corners
are the kernel's specialisation; the extents arrive in params.
"""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel, numel
from ...codegen.params import i32, schema, table
from ...ir import Graph, Op, c_type
from ..registry import implements

MODES = {"bilinear": "linear", "bicubic": "cubic", "linear": "linear", "cubic": "cubic",
         "nearest": "nearest"}
PADDINGS = ("zeros", "border", "reflection")
TAPS = {"nearest": 1, "linear": 2, "cubic": 4}



def params_schema(d: int):
    return schema(i32("N", "batch"), i32("C", "channels"), i32("P", "output points per plane"),
                  table("L", d, "input extents, outermost spatial axis first"))

# Mirror x into [lo, hi] by repeated reflection at the nearer border (float, like ONNX).
REFLECT = ("megcc_gs_reflect", r"""
static float megcc_gs_reflect(float x, float lo, float hi) {
    const float rng = hi - lo;
    float dx, r;
    int32_t n;
    if (x >= lo && x <= hi) return x;
    if (!(rng > 0.0f)) return lo;
    dx = x < lo ? lo - x : x - hi;
    n = (int32_t)(dx / rng);
    r = dx - (float)n * rng;
    if (x < lo) return n % 2 == 0 ? lo + r : hi - r;
    return n % 2 == 0 ? hi - r : lo + r;
}
""")

# Per axis: the tap positions i0 + k and their weights for a coordinate v (t = v - floor v).
WEIGHTS = {
    "nearest": "            i0 = (int32_t)v; w[d][0] = 1.0f;\n",
    "linear": """            i0 = (int32_t)floorf(v); t = v - (float)i0;
            w[d][0] = 1.0f - t; w[d][1] = t;
""",
    "cubic": """            i0 = (int32_t)floorf(v) - 1; t = v - floorf(v);
            w[d][0] = ((A * (t + 1.0f) - 5.0f * A) * (t + 1.0f) + 8.0f * A) * (t + 1.0f) - 4.0f * A;
            w[d][1] = ((A + 2.0f) * t - (A + 3.0f)) * t * t + 1.0f;
            w[d][2] = ((A + 2.0f) * (1.0f - t) - (A + 3.0f)) * (1.0f - t) * (1.0f - t) + 1.0f;
            w[d][3] = ((A * (2.0f - t) - 5.0f * A) * (2.0f - t) + 8.0f * A) * (2.0f - t) - 4.0f * A;
""",
}

# Where a tap at integer position i of an axis of extent n reads (-1: a zero).
TAP_INDEX = {
    "zeros": "(i >= 0 && i < n) ? i : -1",
    "border": "i < 0 ? 0 : (i >= n ? n - 1 : i)",
    "reflection": "(int32_t)megcc_gs_reflect((float)i, lo, hi)",
}


def _attrs(op: Op, graph: Graph):
    mode = op.attrs.get("mode", "linear" if graph.opset >= 20 else "bilinear")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pad = op.attrs.get("padding_mode", "zeros")
    pad = pad.decode() if isinstance(pad, bytes) else pad
    if mode not in MODES:
        raise graph.error(f"mode '{mode}' is not supported (linear, nearest, cubic are)", op)
    if pad not in PADDINGS:
        raise graph.error(f"padding_mode '{pad}' is not supported", op)
    return MODES[mode], pad, bool(int(op.attrs.get("align_corners", 0)))


@implements("GridSample", dtypes=("float32", "float64"), typed_inputs=(0, 1))
def emit(op: Op, graph: Graph):
    x, grid, y = (graph.tensors[n] for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    mode, pad, align = _attrs(op, graph)
    d = len(x.shape) - 2
    if d < 1 or grid.shape[-1] != d or len(grid.shape) != d + 2:
        raise graph.error(f"grid of shape {list(grid.shape)} does not match an input of "
                          f"rank {len(x.shape)}", op)
    k = TAPS[mode]
    xt, gt = c_type(x.dtype), c_type(grid.dtype)
    name = (f"grid_sample_{mode}_{pad}{'_ac' if align else ''}_d{d}_"
            f"{x.dtype}_{grid.dtype}")
    # coordinates are float32 whatever the grid's type (as ONNX's reference keeps them)
    denorm = ("(g + 1.0f) / 2.0f * (float)(n - 1)" if align else
              "((g + 1.0f) * (float)n - 1.0f) / 2.0f")
    lo, hi = ("0.0f", "(float)(n - 1)") if align else ("-0.5f", "(float)n - 0.5f")
    # zeros: far-away (or NaN) coordinates pulled in to where every tap still reads a zero,
    # so the integer conversions below stay defined
    outside = {"zeros": "            if (!(v >= -8.0f)) v = -8.0f;\n"
                        "            if (v > (float)n + 8.0f) v = (float)n + 8.0f;\n",
               "border": "            if (v < lo || v > hi) v = v < 0.0f ? 0.0f : "
                         "(v > (float)(n - 1) ? (float)(n - 1) : v);\n" if mode != "cubic" else
                         "            if (!(v >= -8.0f)) v = -8.0f;\n"
                         "            if (v > (float)n + 8.0f) v = (float)n + 8.0f;\n",
               "reflection": "            if (v < lo || v > hi) v = megcc_gs_reflect(v, lo, hi);\n"}[pad]
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const {gt} *grid = (const {gt} *)in_ptrs[1];
    {xt} *y = ({xt} *)out_ptrs[0];
    const float A = -0.75f;
    int32_t b, c, q, d, k;
    int64_t plane = 1;
    for (d = 0; d < {d}; ++d) plane *= L[d];
    for (b = 0; b < N; ++b)
        for (q = 0; q < P; ++q) {{
            const {gt} *gp = grid + ((int64_t)b * P + q) * {d};
            int32_t idx[{d}][{k}], tap[{d}];
            float w[{d}][{k}];
            int64_t off;
            for (d = 0; d < {d}; ++d) {{  /* the grid lists the innermost axis first */
            const float g = (float)gp[{d - 1} - d];
            const int32_t n = L[d];
            const float lo = {lo}, hi = {hi};
            float v = {denorm}, t;
            int32_t i0;
            (void)t; (void)lo; (void)hi; (void)A;
{"            v = nearbyintf(v);" + chr(10) if mode == "nearest" else ""}{outside}{WEIGHTS[mode]}\
            for (k = 0; k < {k}; ++k) {{
                const int32_t i = i0 + k;
                idx[d][k] = {TAP_INDEX[pad]};
            }}
            }}
            for (c = 0; c < C; ++c) {{
                const {xt} *xc = x + ((int64_t)b * C + c) * plane;
                double acc = 0.0;
                for (d = 0; d < {d}; ++d) tap[d] = 0;
                for (;;) {{
                    float wt = 1.0f;
                    int inside = 1;
                    off = 0;
                    for (d = 0; d < {d}; ++d) {{
                        const int32_t i = idx[d][tap[d]];
                        if (i < 0) {{ inside = 0; break; }}
                        off = off * L[d] + i;
                        wt *= w[d][tap[d]];
                    }}
                    if (inside) acc += (double)wt * (double)xc[off];
                    for (d = {d - 1}; d >= 0; --d) {{
                        if (++tap[d] < {k}) break;
                        tap[d] = 0;
                    }}
                    if (d < 0) break;
                }}
                y[((int64_t)b * C + c) * P + q] = ({xt})acc;
            }}
        }}
"""
    params = params_schema(d)
    kernel = make_kernel(name, body, params, ("math", REFLECT) if pad == "reflection"
                         else ("math",))
    params = params.pack(N=x.shape[0], C=x.shape[1], P=numel(y.shape[2:]), L=list(x.shape[2:]))
    return [Instr(kernel, [op.inputs[0], op.inputs[1]], [op.outputs[0]], params,
                  note=f"{mode}, padding {pad}, align_corners={int(align)}")]
