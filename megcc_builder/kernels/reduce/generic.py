"""Reductions: Reduce* over any set of axes, ArgMax/ArgMin, Softmax/LogSoftmax/Hardmax.

Reduce* reads the input once, in memory order, and accumulates into the output: every
input position maps to an output offset through strides that are 0 on reduced axes.
After merging neighbouring axes of the same kind, the innermost axis is either reduced
(a scalar accumulation per row) or kept (a unit-stride update the C compiler vectorises),
and that choice and the merged rank are the kernel's specialisation. Softmax-like ops and
ArgMax/ArgMin see the tensor as [outer, axis, inner].
"""
from __future__ import annotations

import re

from ...codegen.kernel import Instr, make_kernel, numel, strides_of
from ...codegen.params import i32, schema, table
from ...ir import Graph, Op, c_type, itemsize
from ...isa import IsaSpec
from ..data.copy_generic import const_input, norm_axis
from ..data.views import copy_instr
from ..elementwise.generic import collapse
from ..registry import implements


# ArgMax/ArgMin and the softmax family (portable and vector) over [outer, axis, inner]
AXIS_PARAMS = schema(i32("outer", "elements before the axis"), i32("red", "axis extent"),
                     i32("inner", "elements after the axis"))


# op -> (init, pre-map of an element v, combine of accumulator a with t, post-map of a).
# `cnt` is the number of reduced elements per output.
FLOAT_REDUCE = {
    "ReduceSum": ("0.0f", "{v}", "{a} + {t}", "{a}"),
    "ReduceMean": ("0.0f", "{v}", "{a} + {t}", "{a} / (float)cnt"),
    "ReduceMax": ("-INFINITY", "{v}", "megcc_maxf({a}, {t})", "{a}"),
    "ReduceMin": ("INFINITY", "{v}", "megcc_minf({a}, {t})", "{a}"),
    "ReduceProd": ("1.0f", "{v}", "{a} * {t}", "{a}"),
    "ReduceL1": ("0.0f", "fabsf({v})", "{a} + {t}", "{a}"),
    "ReduceL2": ("0.0f", "{v} * {v}", "{a} + {t}", "sqrtf({a})"),
    "ReduceSumSquare": ("0.0f", "{v} * {v}", "{a} + {t}", "{a}"),
    "ReduceLogSum": ("0.0f", "{v}", "{a} + {t}", "logf({a})"),
    # two passes: the max m first (into the workspace), then sum exp(v - m)
    "ReduceLogSumExp": ("0.0f", "expf({v} - {m})", "{a} + {t}", "logf({a}) + {m}"),
}
INT_LIMITS = {"int32": ("INT32_MIN", "INT32_MAX"), "int64": ("INT64_MIN", "INT64_MAX")}
# bool: any (max) and all (min); the empty set gives the identity (false, true) like ONNX
BOOL_REDUCE = {"ReduceMax": ("0", "{v}", "({a} | {t})", "{a}"),
               "ReduceMin": ("1", "{v}", "({a} & {t})", "{a}")}
# float32 C spellings -> float64 ones (the same formulas computed in double)
_TO_DOUBLE = [(r"\b(exp|log|sqrt|fabs)f\(", r"\1("), (r"\bmegcc_(max|min)f\(", r"megcc_\1d("),
              (r"\b(\d+\.\d+)f\b", r"\1"), (r"\(float\)", "(double)"), (r"\bfloat\b", "double")]


def as_double(code: str) -> str:
    """A float32 C fragment rewritten to compute in float64."""
    for pat, rep in _TO_DOUBLE:
        code = re.sub(pat, rep, code)
    return code


def int_reduce(op_type: str, dtype: str):
    lo, hi = INT_LIMITS[dtype]
    return {
        "ReduceSum": ("0", "{v}", "{a} + {t}", "{a}"),
        "ReduceMean": ("0", "{v}", "{a} + {t}", "{a} / cnt"),
        "ReduceMax": (lo, "{v}", "({a} > {t} ? {a} : {t})", "{a}"),
        "ReduceMin": (hi, "{v}", "({a} < {t} ? {a} : {t})", "{a}"),
        "ReduceProd": ("1", "{v}", "{a} * {t}", "{a}"),
        "ReduceL1": ("0", "({v} < 0 ? -{v} : {v})", "{a} + {t}", "{a}"),
        "ReduceSumSquare": ("0", "{v} * {v}", "{a} + {t}", "{a}"),
    }.get(op_type)


def reduce_axes(op: Op, graph: Graph, rank: int):
    """The reduced axes (sorted), or None for 'no reduction' (noop_with_empty_axes)."""
    axes_from_input = graph.opset >= 18 or (op.type == "ReduceSum" and graph.opset >= 13)
    if axes_from_input:
        axes = const_input(op, graph, 1, "axes")
        axes = [] if axes is None else axes.reshape(-1).tolist()
    else:
        axes = list(op.attrs.get("axes", []))
    if not axes:
        if int(op.attrs.get("noop_with_empty_axes", 0)):
            return None
        return list(range(rank))
    return sorted({norm_axis(int(a), rank, op, graph) for a in axes})


def _accumulate_loop(rank: int, inner_kept: bool, init: str, pre: str, comb: str,
                     target: str) -> str:
    """C that walks x in order and folds pre(x) into target[] (odometer over outputs)."""
    if inner_kept:
        row = f"""        for (j = 0; j < n; ++j) {{
            const acc_t v = xr[j];
            {target}[o + j] = {comb.format(a=f"{target}[o + j]", t=pre.format(v="v", m=f"m[o + j]"))};
        }}"""
    else:
        row = f"""        acc_t a = {init};
        for (j = 0; j < n; ++j) {{
            const acc_t v = xr[j];
            a = {comb.format(a="a", t=pre.format(v="v", m="m[o]"))};
        }}
        {target}[o] = {comb.format(a=f"{target}[o]", t="a")};"""
    return f"""    for (j = 0; j < n_out; ++j) {target}[j] = {init};
    for (d = 0; d < {rank}; ++d) idx[d] = 0;
    for (r = 0, o = 0; r < rows; ++r) {{
        const acc_t *xr = x + r * n;
{row}
        for (d = {rank - 2}; d >= 0; --d) {{
            o += os[d];
            if (++idx[d] < dims[d]) break;
            o -= (int64_t)dims[d] * os[d];
            idx[d] = 0;
        }}
    }}
"""


@implements("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
        "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp",
        # a scalar pass over the input (the float16 row kernels compete for ReduceMean/Max)
        cost=lambda op, graph, isa: 2.0 * float(graph.tensors[op.inputs[0]].numel) + 20)
def lower_reduce(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    rank = len(x.shape)
    axes = reduce_axes(op, graph, rank)
    if axes is None:
        return [copy_instr(op.inputs[0], op.outputs[0], graph)]
    if x.dtype == "float32":
        spec = FLOAT_REDUCE[op.type]
    elif x.dtype == "float64":
        spec = tuple(as_double(part) for part in FLOAT_REDUCE[op.type])
    elif x.dtype == "bool" and op.type in BOOL_REDUCE:
        spec = BOOL_REDUCE[op.type]
    elif x.dtype in INT_LIMITS and int_reduce(op.type, x.dtype):
        spec = int_reduce(op.type, x.dtype)
    else:
        raise graph.error(f"{op.type} on {x.dtype} is not supported", op)
    init, pre, comb, post = spec
    # Output offset of each input axis: 0 on reduced axes, keepdims strides otherwise.
    kept_shape = [1 if d in axes else n for d, n in enumerate(x.shape)]
    out_strides = [0 if d in axes else s for d, s in enumerate(strides_of(kept_shape))]
    dims, (os_,) = collapse(list(x.shape) or [1], [out_strides or [0]])
    r = len(dims)
    inner_kept = os_[-1] != 0
    cnt = numel([x.shape[a] for a in axes])
    ct = c_type(x.dtype)
    two_pass = op.type == "ReduceLogSumExp"
    name = f"reduce_{op.type[6:].lower()}_{x.dtype}_r{r}_{'kin' if inner_kept else 'rin'}"
    body = f"""    typedef {ct} acc_t;
    const acc_t *x = (const acc_t *)in_ptrs[0];
    acc_t *y = (acc_t *)out_ptrs[0];
{"    acc_t *m = (acc_t *)workspace;  /* per-output max (LogSumExp) */" + chr(10) if two_pass else ""}\
    const int32_t n = dims[{r - 1}];
    int32_t idx[{r}], d, j;
    int64_t rows = 1, r, o;
    for (d = 0; d < {r - 1}; ++d) rows *= dims[d];
"""
    if two_pass:
        mx = "megcc_maxd" if x.dtype == "float64" else "megcc_maxf"
        body += _accumulate_loop(r, inner_kept, "-INFINITY", "{v}", mx + "({a}, {t})", "m")
    body += _accumulate_loop(r, inner_kept, init, pre, comb, "y")
    body += f"""    for (j = 0; j < n_out; ++j) {{
        const acc_t a = y[j];
        y[j] = {post.format(a="a", m="m[j]")};
    }}
"""
    params = schema(table("dims", r, "input extents (merged)"),
                    table("os", r, "output element stride per input axis (0: reduced)"),
                    i32("n_out", "output elements"), i32("cnt", "elements per output"))
    kernel = make_kernel(name, body, params, ("math",))
    params = params.pack(dims=dims, os=os_, n_out=y.numel, cnt=cnt)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params,
                  workspace_bytes=itemsize(x.dtype) * y.numel if two_pass else 0,
                  note=f"axes={axes}, merged to {list(dims)!r}")]


def uses(code: str, name: str) -> bool:
    return re.search(r"\b" + name + r"\b", code) is not None


def outer_axis_inner(shape, axis: int):
    return numel(shape[:axis]), shape[axis], numel(shape[axis + 1:])


@implements("ArgMax", "ArgMin")
def lower_argmax(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    if x.dtype not in ("float32", "int32", "int64"):
        raise graph.error(f"{op.type} on {x.dtype} is not supported", op)
    axis = norm_axis(int(op.attrs.get("axis", 0)), len(x.shape), op, graph)
    outer, red, inner = outer_axis_inner(x.shape, axis)
    last = int(op.attrs.get("select_last_index", 0))
    cmp = (">" if op.type == "ArgMax" else "<") + ("=" if last else "")
    ct = c_type(x.dtype)
    name = f"{op.type.lower()}_{x.dtype}{'_last' if last else ''}"
    # Row by row over the reduced axis, tracking the best value per inner position in
    # the workspace: every read is unit-stride.
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    int64_t *y = (int64_t *)out_ptrs[0];
    {ct} *best = ({ct} *)workspace;
    int32_t o, r, j;
    for (o = 0; o < outer; ++o) {{
        const {ct} *xo = x + (int64_t)o * red * inner;
        int64_t *yo = y + (int64_t)o * inner;
        for (j = 0; j < inner; ++j) {{ best[j] = xo[j]; yo[j] = 0; }}
        for (r = 1; r < red; ++r) {{
            const {ct} *row = xo + (int64_t)r * inner;
            for (j = 0; j < inner; ++j)
                if (row[j] {cmp} best[j]) {{ best[j] = row[j]; yo[j] = r; }}
        }}
    }}
"""
    kernel = make_kernel(name, body, AXIS_PARAMS)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  AXIS_PARAMS.pack(outer=outer, red=red, inner=inner),
                  workspace_bytes=inner * 8, note=f"axis={axis}")]


# Per row of the softmax axis (inner == 1): m = max, then the op-specific passes.
SOFTMAX_LAST = {
    "Softmax": """        for (r = 0; r < red; ++r) { const float e = expf(xr[r] - mx); yr[r] = e; s += e; }
        s = 1.0f / s;
        for (r = 0; r < red; ++r) yr[r] *= s;""",
    "LogSoftmax": """        for (r = 0; r < red; ++r) s += expf(xr[r] - mx);
        s = mx + logf(s);
        for (r = 0; r < red; ++r) yr[r] = xr[r] - s;""",
    "Hardmax": """        for (r = 1; r < red; ++r) if (xr[r] > xr[k]) k = r;
        for (r = 0; r < red; ++r) yr[r] = r == k ? 1.0f : 0.0f;""",
}
# The same over rows of `inner` values, with per-position max m[] and sum s[] (workspace).
SOFTMAX_STRIDED = {
    "Softmax": """        for (r = 0; r < red; ++r)
            for (j = 0; j < inner; ++j) {
                const float e = expf(xo[(int64_t)r * inner + j] - m[j]);
                yo[(int64_t)r * inner + j] = e;
                s[j] += e;
            }
        for (j = 0; j < inner; ++j) s[j] = 1.0f / s[j];
        for (r = 0; r < red; ++r)
            for (j = 0; j < inner; ++j) yo[(int64_t)r * inner + j] *= s[j];""",
    "LogSoftmax": """        for (r = 0; r < red; ++r)
            for (j = 0; j < inner; ++j) s[j] += expf(xo[(int64_t)r * inner + j] - m[j]);
        for (j = 0; j < inner; ++j) s[j] = m[j] + logf(s[j]);
        for (r = 0; r < red; ++r)
            for (j = 0; j < inner; ++j)
                yo[(int64_t)r * inner + j] = xo[(int64_t)r * inner + j] - s[j];""",
    "Hardmax": """        for (j = 0; j < inner; ++j) { m[j] = xo[j]; k[j] = 0; }
        for (r = 1; r < red; ++r)
            for (j = 0; j < inner; ++j)
                if (xo[(int64_t)r * inner + j] > m[j]) { m[j] = xo[(int64_t)r * inner + j]; k[j] = r; }
        for (r = 0; r < red; ++r)
            for (j = 0; j < inner; ++j) yo[(int64_t)r * inner + j] = k[j] == r ? 1.0f : 0.0f;""",
}


def softmax_shape(op: Op, graph: Graph):
    """[outer, axis, inner] of a Softmax-like op."""
    x = graph.tensors[op.inputs[0]]
    rank = len(x.shape)
    if graph.opset < 13:
        # Old semantics: flatten to 2-D at `axis` and normalise each row.
        axis = norm_axis(int(op.attrs.get("axis", 1)), rank, op, graph)
        return numel(x.shape[:axis]), numel(x.shape[axis:]), 1
    axis = norm_axis(int(op.attrs.get("axis", -1)), rank, op, graph)
    return outer_axis_inner(x.shape, axis)


def _softmax_cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    """Per element one exp, a max, a sum and a scale (or subtract)."""
    outer, red, inner = softmax_shape(op, graph)
    cheap, libm = isa.core.elementwise_portable
    return outer * red * inner * (3 * cheap + libm)


@implements("Softmax", "LogSoftmax", "Hardmax", dtypes=("float32", "float64"),
            cost=_softmax_cost)
def lower_softmax(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    outer, red, inner = softmax_shape(op, graph)
    kind = op.type
    # float64 runs the float32 source rewritten to double (as_double)
    typed = as_double if x.dtype == "float64" else (lambda code: code)
    suffix = "f64" if x.dtype == "float64" else "f32"
    head = """    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    int32_t o, r;
"""
    if inner == 1:
        name = f"{kind.lower()}_{suffix}_last"
        passes = SOFTMAX_LAST[kind]
        # the row max and sum (Softmax, LogSoftmax) or the argmax (Hardmax), as used
        row_max = "        float mx = -INFINITY;\n        for (r = 0; r < red; ++r) " \
            "mx = megcc_maxf(mx, xr[r]);\n" if uses(passes, "mx") else ""
        row_sum = "        float s = 0.0f;\n" if uses(passes, "s") else ""
        row_arg = "        int32_t k = 0;\n" if uses(passes, "k") else ""
        body = head + f"""    for (o = 0; o < outer; ++o) {{
        const float *xr = x + (int64_t)o * red;
        float *yr = y + (int64_t)o * red;
{row_max}{row_sum}{row_arg}{passes}
    }}
"""
        workspace = 0
    else:
        name = f"{kind.lower()}_{suffix}_strided"
        body = head + f"""    float *m = (float *)workspace, *s = m + inner;
{"    int32_t *k = (int32_t *)(m + inner);" + chr(10) if uses(SOFTMAX_STRIDED[kind], "k") else ""}\
    int32_t j;
    for (o = 0; o < outer; ++o) {{
        const float *xo = x + (int64_t)o * red * inner;
        float *yo = y + (int64_t)o * red * inner;
        for (j = 0; j < inner; ++j) {{ m[j] = -INFINITY; s[j] = 0.0f; }}
        for (r = 0; r < red; ++r)
            for (j = 0; j < inner; ++j) m[j] = megcc_maxf(m[j], xo[(int64_t)r * inner + j]);
{SOFTMAX_STRIDED[kind]}
    }}
"""
        workspace = 2 * itemsize(x.dtype) * inner
    kernel = make_kernel(name, typed(body), AXIS_PARAMS, ("math",))
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  AXIS_PARAMS.pack(outer=outer, red=red, inner=inner),
                  workspace_bytes=workspace, note=f"[{outer!r}, {red!r}, {inner!r}]")]


# --- vector Softmax / LogSoftmax (AVX2, NEON) over the last axis -----------------------
