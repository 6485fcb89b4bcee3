"""Index-driven ops: GatherElements, ScatterElements, GatherND, ScatterND, OneHot, CumSum,
TopK, Trilu, ReverseSequence.

Indices are runtime values (int32 or int64): negative ones count from the end of their
axis and out-of-range ones make the kernel fail (return -1) instead of touching memory
outside a tensor. Pure moves are specialised on the element size only; ops that combine
values (scatter reductions, CumSum, TopK) on the dtype. Shapes arrive in params, so one
kernel serves every rank up to MAX_RANK.
"""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel, numel, strides_of
from ...codegen.params import i32, i64, schema, table
from ...ir import Graph, Op, c_type, itemsize
from ..data.copy_generic import F16_HELPERS, UINT_OF_SIZE, const_input, norm_axis
from ..registry import implements
from ...ir.value_shapes import cap_of


MAX_RANK = 8
INDEX_TYPES = ("int32", "int64")
# dtypes whose values the combining kernels understand; float16 goes through float32.
VALUE_TYPES = ("float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8",
               "uint16", "uint32", "uint64", "bool")


def _check_index(op: Op, graph: Graph, name: str, what: str = "indices") -> str:
    dt = graph.tensors[name].dtype
    if dt not in INDEX_TYPES:
        raise graph.error(f"{what} of dtype {dt} are not supported (int32, int64 are)", op)
    return dt


def _check_rank(op: Op, graph: Graph, rank: int) -> None:
    if rank > MAX_RANK:
        raise graph.error(f"rank {rank} is above the supported {MAX_RANK}", op)


def load_expr(dtype: str, v: str) -> str:
    """C expression reading element `v` of dtype as the kernel's arithmetic type."""
    return f"megcc_f16_to_f32({v})" if dtype == "float16" else v


def store_expr(dtype: str, v: str) -> str:
    return f"megcc_f32_to_f16({v})" if dtype == "float16" else f"({c_type(dtype)})({v})"


def arith_type(dtype: str) -> str:
    return "float" if dtype == "float16" else c_type(dtype)


def value_helpers(dtype: str) -> tuple:
    return ("math", F16_HELPERS) if dtype == "float16" else ("math",)


# --- GatherElements / ScatterElements ----------------------------------------------------

# Walks the index tensor in order; `off` is the data offset of the current position with
# the axis coordinate left out (its stride is zeroed in `ws`), so each element costs O(1).
_ELEMENTS_HEAD = (i32("rank", "rank of the indices (and data)"), i32("axis", "the indexed axis"),
                  i32("axis_n", "data extent along the axis"),
                  table("dims", "rank", "extents of the indices"),
                  table("ws", "rank", "data element strides, 0 along the axis"),
                  i64("axis_stride", "data element stride of the axis"))
GATHER_ELEMENTS_PARAMS = schema(*_ELEMENTS_HEAD)
SCATTER_ELEMENTS_PARAMS = schema(*_ELEMENTS_HEAD, i32("nbytes", "bytes of the data (copied)"))
_ELEMENTS_WALK = """    int32_t idx[{max_rank}] = {{0}}, d;
    int64_t n = 1, i, off = 0;
    for (d = 0; d < rank; ++d) n *= dims[d];
    for (i = 0; i < n; ++i) {{
        int64_t k = (int64_t)ind[i];
        if (k < 0) k += axis_n;
        if (k < 0 || k >= axis_n) return -1;
{action}
        for (d = rank - 1; d >= 0; --d) {{
            off += ws[d];
            if (++idx[d] < dims[d]) break;
            off -= (int64_t)dims[d] * ws[d];
            idx[d] = 0;
        }}
    }}
"""


def _elements_params(data_shape, ind_shape, axis: int) -> dict:
    st = strides_of(data_shape)
    walk = [0 if d == axis else s for d, s in enumerate(st)]
    return dict(rank=len(ind_shape), axis=axis, axis_n=data_shape[axis], dims=ind_shape,
                ws=walk, axis_stride=st[axis])


@implements("GatherElements")
def lower_gather_elements(op: Op, graph: Graph):
    x, ind = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    it = _check_index(op, graph, op.inputs[1])
    rank = len(x.shape)
    _check_rank(op, graph, rank)
    if len(ind.shape) != rank:
        raise graph.error(f"indices have rank {len(ind.shape)}, data rank {rank}", op)
    axis = norm_axis(int(op.attrs.get("axis", 0)), rank, op, graph)
    esize = itemsize(x.dtype)
    ct = UINT_OF_SIZE[esize]
    name = f"gather_elements_e{esize}_{it}"
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    const {c_type(it)} *ind = (const {c_type(it)} *)in_ptrs[1];
    {ct} *y = ({ct} *)out_ptrs[0];
""" + _ELEMENTS_WALK.format(max_rank=MAX_RANK,
                            action="        y[i] = x[off + k * axis_stride];")
    kernel = make_kernel(name, body, GATHER_ELEMENTS_PARAMS)
    return [Instr(kernel, [op.inputs[0], op.inputs[1]], [op.outputs[0]],
                  GATHER_ELEMENTS_PARAMS.pack(**_elements_params(x.shape, ind.shape, axis)),
                  note=f"axis={axis}")]


REDUCTIONS = {
    "none": "{u}",
    "add": "{a} + {u}",
    "mul": "{a} * {u}",
    "max": "({a} > {u} ? {a} : {u})",
    "min": "({a} < {u} ? {a} : {u})",
}


def _combine(op: Op, graph: Graph, dtype: str, target: str, update: str) -> str:
    """C statement storing `update` into `target` with the op's reduction."""
    reduction = op.attrs.get("reduction", "none")
    if reduction not in REDUCTIONS:
        raise graph.error(f"reduction '{reduction}' is not supported", op)
    if reduction == "none":
        return f"{target} = {update};"
    if dtype == "bool":
        logic = {"add": "{a} || {u}", "mul": "{a} && {u}", "max": "{a} || {u}",
                 "min": "{a} && {u}"}[reduction]
        return f"{target} = (uint8_t)({logic.format(a=target, u=update)});"
    a = load_expr(dtype, target)
    u = load_expr(dtype, update)
    return f"{target} = {store_expr(dtype, REDUCTIONS[reduction].format(a=a, u=u))};"


@implements("ScatterElements", "Scatter")
def lower_scatter_elements(op: Op, graph: Graph):
    x, ind, upd = (graph.tensors[n] for n in op.inputs[:3])
    it = _check_index(op, graph, op.inputs[1])
    rank = len(x.shape)
    _check_rank(op, graph, rank)
    if x.dtype not in VALUE_TYPES:
        raise graph.error(f"{op.type} on {x.dtype} is not supported", op)
    axis = norm_axis(int(op.attrs.get("axis", 0)), rank, op, graph)
    reduction = op.attrs.get("reduction", "none")
    if reduction == "none":
        dt_tag, ct = f"e{itemsize(x.dtype)}", UINT_OF_SIZE[itemsize(x.dtype)]
    else:
        dt_tag, ct = x.dtype, c_type(x.dtype)
    name = f"scatter_elements_{reduction}_{dt_tag}_{it}"
    action = "        " + _combine(op, graph, x.dtype if reduction != "none" else "",
                                   "y[off + k * axis_stride]", "u[i]")
    body = f"""    const {ct} *u = (const {ct} *)in_ptrs[2];
    const {c_type(it)} *ind = (const {c_type(it)} *)in_ptrs[1];
    {ct} *y = ({ct} *)out_ptrs[0];
    if (y != (const {ct} *)in_ptrs[0]) memcpy(y, in_ptrs[0], (size_t)(uint32_t)nbytes);
""" + _ELEMENTS_WALK.format(max_rank=MAX_RANK, action=action)
    kernel = make_kernel(name, body, SCATTER_ELEMENTS_PARAMS,
                         value_helpers(x.dtype) if reduction != "none" else ())
    params = SCATTER_ELEMENTS_PARAMS.pack(**_elements_params(x.shape, ind.shape, axis),
                                          nbytes=x.nbytes)
    return [Instr(kernel, list(op.inputs[:3]), [op.outputs[0]], params,
                  note=f"axis={axis}, reduction={reduction}")]


# --- GatherND / ScatterND -----------------------------------------------------------------

_ND_TUPLE = """        int64_t src = 0;
        int32_t j;
        for (j = 0; j < k; ++j) {{
            int64_t v = (int64_t)ind[(b * per_batch + t) * k + j];
            const int32_t dn = tuple_dims[j];
            if (v < 0) v += dn;
            if (v < 0 || v >= dn) return -1;
            src = src * dn + v;
        }}
"""


_ND_HEAD = (i32("n_batch", "batches (batch_dims)"), i32("per_batch", "index tuples per batch"),
            i32("k", "tuple length"), i32("block_n", "elements per selected block"),
            i32("batch_stride", "data elements per batch"),
            table("tuple_dims", "k", "data extents the tuples index"))
GATHER_ND_PARAMS = schema(*_ND_HEAD, i32("esize", "bytes per element"))
SCATTER_ND_PARAMS = schema(*_ND_HEAD, i32("nbytes", "bytes of the data (copied)"))


def _nd_params(data_shape, b: int, k: int, n_batch: int, per_batch: int) -> dict:
    return dict(n_batch=n_batch, per_batch=per_batch, k=k, block_n=numel(data_shape[b + k:]),
                batch_stride=numel(data_shape[b:]), tuple_dims=data_shape[b:b + k])


@implements("GatherND")
def lower_gather_nd(op: Op, graph: Graph):
    x, ind = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    it = _check_index(op, graph, op.inputs[1])
    b = int(op.attrs.get("batch_dims", 0))
    k = ind.shape[-1]
    n_batch = numel(x.shape[:b])
    per_batch = numel(ind.shape[b:-1])
    esize = itemsize(x.dtype)
    name = f"gather_nd_{it}"
    # Each index tuple selects one contiguous block of the data (block elements).
    body = f"""    const uint8_t *x = (const uint8_t *)in_ptrs[0];
    const {c_type(it)} *ind = (const {c_type(it)} *)in_ptrs[1];
    uint8_t *y = (uint8_t *)out_ptrs[0];
    const int64_t block = (int64_t)block_n * esize;
    int32_t b, t;
    for (b = 0; b < n_batch; ++b)
        for (t = 0; t < per_batch; ++t) {{
{_ND_TUPLE.format()}            memcpy(y, x + ((int64_t)b * batch_stride + src * block_n) * esize, (size_t)block);
            y += block;
        }}
"""
    kernel = make_kernel(name, body, GATHER_ND_PARAMS)
    params = GATHER_ND_PARAMS.pack(**_nd_params(x.shape, b, k, n_batch, per_batch),
                                   esize=esize)
    return [Instr(kernel, [op.inputs[0], op.inputs[1]], [op.outputs[0]], params,
                  note=f"batch_dims={b}, tuples of {k!r}")]


@implements("ScatterND")
def lower_scatter_nd(op: Op, graph: Graph):
    x, ind = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    it = _check_index(op, graph, op.inputs[1])
    if x.dtype not in VALUE_TYPES:
        raise graph.error(f"ScatterND on {x.dtype} is not supported", op)
    k = ind.shape[-1]
    per_batch = numel(ind.shape[:-1])
    reduction = op.attrs.get("reduction", "none")
    if reduction == "none":
        dt_tag, ct = f"e{itemsize(x.dtype)}", UINT_OF_SIZE[itemsize(x.dtype)]
    else:
        dt_tag, ct = x.dtype, c_type(x.dtype)
    name = f"scatter_nd_{reduction}_{dt_tag}_{it}"
    combine = _combine(op, graph, x.dtype if reduction != "none" else "", "yb[e]", "ub[e]")
    body = f"""    const {ct} *u = (const {ct} *)in_ptrs[2];
    const {c_type(it)} *ind = (const {c_type(it)} *)in_ptrs[1];
    {ct} *y = ({ct} *)out_ptrs[0];
    const int64_t block = block_n;
    const int32_t b = 0;
    int32_t t;
    if (y != (const {ct} *)in_ptrs[0]) memcpy(y, in_ptrs[0], (size_t)(uint32_t)nbytes);
    for (t = 0; t < per_batch; ++t) {{
{_ND_TUPLE.format()}        {{
            {ct} *yb = y + src * block;
            const {ct} *ub = u + (int64_t)t * block;
            int64_t e;
            for (e = 0; e < block; ++e) {combine}
        }}
    }}
"""
    kernel = make_kernel(name, body, SCATTER_ND_PARAMS,
                         value_helpers(x.dtype) if reduction != "none" else ())
    params = SCATTER_ND_PARAMS.pack(**_nd_params(x.shape, 0, k, 1, per_batch), nbytes=x.nbytes)
    return [Instr(kernel, list(op.inputs[:3]), [op.outputs[0]], params,
                  note=f"tuples of {k!r}, reduction={reduction}")]


# --- OneHot, CumSum, TopK, Trilu, ReverseSequence ------------------------------------------

ONE_HOT_PARAMS = schema(i32("outer", "index elements before the axis"),
                        i32("depth", "classes (the new axis)"),
                        i32("inner", "index elements after the axis"))
CUMSUM_PARAMS = schema(i32("outer", "elements before the axis"), i32("red", "axis extent"),
                       i32("inner", "elements after the axis"))
TOPK_RT_PARAMS = schema(i32("outer", "elements before the axis"), i32("n", "axis extent"),
                        i32("inner", "elements after the axis"),
                        i32("cap", "largest K the outputs hold (the axis extent)"))
TOPK_PARAMS = schema(i32("outer", "elements before the axis"), i32("n", "axis extent"),
                     i32("inner", "elements after the axis"), i32("k", "values kept"))
TRILU_PARAMS = schema(i32("mats", "matrices"), i32("rows", "rows per matrix"),
                      i32("cols", "columns per matrix"),
                      i32("k", "diagonal offset (clamped to the matrix)"))
REVERSE_SEQUENCE_PARAMS = schema(i32("B", "batch extent"), i32("T", "time extent"),
                                 i32("bs", "batch stride in blocks"),
                                 i32("ts", "time stride in blocks"),
                                 i32("blk", "bytes per (batch, time) block"))

@implements("OneHot")
def lower_one_hot(op: Op, graph: Graph):
    ind, vals, y = (graph.tensors[n] for n in (op.inputs[0], op.inputs[2], op.outputs[0]))
    depth = const_input(op, graph, 1, "OneHot depth")
    depth = int(np.asarray(depth).reshape(-1)[0])
    axis = norm_axis(int(op.attrs.get("axis", -1)), len(y.shape), op, graph)
    outer, inner = numel(y.shape[:axis]), numel(y.shape[axis + 1:])
    esize = itemsize(vals.dtype)
    ct = UINT_OF_SIZE[esize]
    if ind.dtype == "float16":
        read = "megcc_f16_to_f32(ind[(int64_t)o * inner + j])"
    else:
        read = "ind[(int64_t)o * inner + j]"
    it = c_type(ind.dtype)
    name = f"one_hot_{ind.dtype}_e{esize}"
    # Float indices are truncated towards zero like the reference implementation.
    body = f"""    const {it} *ind = (const {it} *)in_ptrs[0];
    const {ct} *vals = (const {ct} *)in_ptrs[1];
    {ct} *y = ({ct} *)out_ptrs[0];
    int32_t o, d, j;
    for (o = 0; o < outer; ++o)
        for (j = 0; j < inner; ++j) {{
            int64_t k = (int64_t)({read});
            if (k < 0) k += depth;
            for (d = 0; d < depth; ++d)
                y[((int64_t)o * depth + d) * inner + j] = vals[d == k];
        }}
"""
    helpers = (F16_HELPERS,) if ind.dtype == "float16" else ()
    kernel = make_kernel(name, body, ONE_HOT_PARAMS, helpers)
    return [Instr(kernel, [op.inputs[0], op.inputs[2]], [op.outputs[0]],
                  ONE_HOT_PARAMS.pack(outer=outer, depth=depth, inner=inner), note=f"axis={axis}, depth={depth!r}")]


# --- CumSum, CumProd ---------------------------------------------------------------------------

@implements("CumSum", "CumProd")
def lower_cumsum(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    if x.dtype not in VALUE_TYPES or x.dtype == "bool":
        raise graph.error(f"{op.type} on {x.dtype} is not supported", op)
    axis_v = const_input(op, graph, 1, f"{op.type} axis")
    axis = norm_axis(int(np.asarray(axis_v).reshape(-1)[0]), len(x.shape), op, graph)
    outer, red, inner = numel(x.shape[:axis]), x.shape[axis], numel(x.shape[axis + 1:])
    exclusive, reverse = int(op.attrs.get("exclusive", 0)), int(op.attrs.get("reverse", 0))
    ct, at = c_type(x.dtype), arith_type(x.dtype)
    # integers accumulate in the unsigned type of their width: the sum wraps (two's
    # complement, as onnxruntime's) instead of overflowing a signed int (UB; the fuzzer
    # found it with arbitrary int32 inputs)
    acc_t = ("double" if x.dtype in ("float32", "float16") else at if x.dtype.startswith("float")
             else "uint64_t" if x.dtype in ("int64", "uint64") else "uint32_t")
    tag = ("_excl" if exclusive else "") + ("_rev" if reverse else "")
    name = f"{op.type.lower()}_{x.dtype}{tag}"
    r_loop = "for (r = red - 1; r >= 0; --r)" if reverse else "for (r = 0; r < red; ++r)"
    fold, init = ("+=", 0) if op.type == "CumSum" else ("*=", 1)
    step = (f"{{ y[q] = {store_expr(x.dtype, 's')}; s {fold} {load_expr(x.dtype, 'x[q]')}; }}"
            if exclusive else
            f"{{ s {fold} {load_expr(x.dtype, 'x[q]')}; y[q] = {store_expr(x.dtype, 's')}; }}")
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    int32_t o, r, j;
    for (o = 0; o < outer; ++o)
        for (j = 0; j < inner; ++j) {{
            {acc_t} s = {init};
            {r_loop} {{
                const int64_t q = ((int64_t)o * red + r) * inner + j;
                {step}
            }}
        }}
"""
    kernel = make_kernel(name, body, CUMSUM_PARAMS, value_helpers(x.dtype))
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  CUMSUM_PARAMS.pack(outer=outer, red=red, inner=inner),
                  note=f"axis={axis}")]


# --- TopK --------------------------------------------------------------------------------------

@implements("TopK")
def lower_topk(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    if x.dtype not in VALUE_TYPES or x.dtype == "bool":
        raise graph.error(f"TopK on {x.dtype} is not supported", op)
    rank = len(x.shape)
    runtime_k = graph.opset >= 10 and not graph.tensors[op.inputs[1]].is_const
    if graph.opset < 10:
        k = int(op.attrs["k"])
    elif runtime_k:  # a computed K: the kernel reads it, its count is a value symbol
        k = graph.tensors[op.outputs[0]].shape[norm_axis(int(op.attrs.get("axis", -1)),
                                                         len(x.shape), op, graph)]
    else:
        k = int(np.asarray(const_input(op, graph, 1, "TopK K")).reshape(-1)[0])
    axis = norm_axis(int(op.attrs.get("axis", -1)), rank, op, graph)
    largest, want_sorted = int(op.attrs.get("largest", 1)), int(op.attrs.get("sorted", 1))
    outer, n, inner = numel(x.shape[:axis]), x.shape[axis], numel(x.shape[axis + 1:])
    ct, at = c_type(x.dtype), arith_type(x.dtype)
    # Ties keep the lower index first (the merge is stable and takes from the right run
    # only when strictly better); NaN sorts above every number, like NumPy's sort.
    if at in ("float", "double"):
        gt = "(({0}) != ({0}) ? ({1}) == ({1}) : ({0}) > ({1}))"
    else:
        gt = "(({0}) > ({1}))"
    better = gt.format("a", "b") if largest else gt.format("b", "a")
    name = f"topk_{x.dtype}_{'largest' if largest else 'smallest'}"
    # Stable merge sort of (value, index) pairs per row in the workspace; the first k win.
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *yv = ({ct} *)out_ptrs[0];
    int64_t *yi = (int64_t *)out_ptrs[1];
    int32_t *ord = (int32_t *)workspace, *tmp = ord + n;
    {at} *val = ({at} *)(tmp + n + (n & 1));
    int32_t o, j, r, w, lo, mid, hi, i1, i2, q;
    for (o = 0; o < outer; ++o)
        for (j = 0; j < inner; ++j) {{
            const int64_t base = (int64_t)o * n * inner + j;
            for (r = 0; r < n; ++r) {{ ord[r] = r; val[r] = {load_expr(x.dtype, 'x[base + (int64_t)r * inner]')}; }}
            for (w = 1; w < n; w *= 2) {{
                for (lo = 0; lo < n; lo += 2 * w) {{
                    mid = lo + w < n ? lo + w : n;
                    hi = lo + 2 * w < n ? lo + 2 * w : n;
                    i1 = lo; i2 = mid; q = lo;
                    while (i1 < mid && i2 < hi) {{
                        const {at} a = val[ord[i2]], b = val[ord[i1]];
                        if ({better}) tmp[q++] = ord[i2++]; else tmp[q++] = ord[i1++];
                    }}
                    while (i1 < mid) tmp[q++] = ord[i1++];
                    while (i2 < hi) tmp[q++] = ord[i2++];
                }}
                for (r = 0; r < n; ++r) ord[r] = tmp[r];
            }}
            for (r = 0; r < k; ++r) {{
                const int64_t out = ((int64_t)o * k + r) * inner + j;
                yi[out] = ord[r];
                yv[out] = x[base + (int64_t)ord[r] * inner];
            }}
        }}
"""
    ws = 4 * (2 * n + (n & 1)) + 8 * n
    outs = list(op.outputs)
    if any(not o for o in outs):
        raise graph.error("omitted TopK outputs are not supported", op)
    _ = want_sorted  # the output is always sorted, which 'sorted=0' permits
    if runtime_k:
        kt = graph.tensors[op.inputs[1]].dtype
        if kt != "int64":
            raise graph.error(f"TopK K of {kt} (int64 expected)", op)
        # K read at run time; the count output (ir/value_shapes.py) defines the output
        # extent; a K above the axis is written as the count and refused by the runtime
        body = """    int32_t k;
    {
        const int64_t kk = *(const int64_t *)in_ptrs[1];
        *(int64_t *)out_ptrs[2] = kk;
        if (kk < 0) return -1;
        if (kk > cap) return 0;
        k = (int32_t)kk;
    }
""" + body
        kernel = make_kernel(name + "_rtk", body, TOPK_RT_PARAMS, value_helpers(x.dtype))
        cap = cap_of(graph, k)
        params = TOPK_RT_PARAMS.pack(outer=outer, n=n, inner=inner, cap=cap)
        return [Instr(kernel, [op.inputs[0], op.inputs[1]], outs, params, workspace_bytes=ws,
                      note=f"axis={axis}, k computed")]
    kernel = make_kernel(name, body, TOPK_PARAMS, value_helpers(x.dtype))
    params = TOPK_PARAMS.pack(outer=outer, n=n, inner=inner, k=k)
    return [Instr(kernel, [op.inputs[0]], outs, params, workspace_bytes=ws,
                  note=f"axis={axis}, k={k!r}")]


# --- Trilu ---------------------------------------------------------------------------------------

@implements("Trilu")
def lower_trilu(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    kv = const_input(op, graph, 1, "Trilu k")
    k = 0 if kv is None else int(np.asarray(kv).reshape(-1)[0])
    upper = int(op.attrs.get("upper", 1))
    rows, cols = x.shape[-2], x.shape[-1]
    esize = itemsize(x.dtype)
    ct = UINT_OF_SIZE[esize]
    keep = "c - r >= k" if upper else "c - r <= k"
    name = f"trilu_{'upper' if upper else 'lower'}_e{esize}"
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    int32_t m, r, c;
    for (m = 0; m < mats; ++m)
        for (r = 0; r < rows; ++r)
            for (c = 0; c < cols; ++c, ++x, ++y)
                *y = ({keep}) ? *x : 0;
"""
    kernel = make_kernel(name, body, TRILU_PARAMS)
    k = max(min(k, cols + 1), -rows - 1)  # beyond these every element is kept or zeroed
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  TRILU_PARAMS.pack(mats=numel(x.shape[:-2]), rows=rows, cols=cols, k=k),
                  note=f"k={k!r}")]


# --- ReverseSequence ---------------------------------------------------------------------------

@implements("ReverseSequence")
def lower_reverse_sequence(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    it = _check_index(op, graph, op.inputs[1], "sequence_lens")
    if len(x.shape) < 2:
        raise graph.error("input must have rank >= 2", op)
    b_axis = int(op.attrs.get("batch_axis", 1))
    t_axis = int(op.attrs.get("time_axis", 0))
    if {b_axis, t_axis} != {0, 1}:
        raise graph.error("batch_axis and time_axis must be 0 and 1", op)
    st = strides_of(x.shape)
    inner = numel(x.shape[2:])
    esize = itemsize(x.dtype)
    name = f"reverse_sequence_{it}"
    body = f"""    const uint8_t *x = (const uint8_t *)in_ptrs[0];
    const {c_type(it)} *lens = (const {c_type(it)} *)in_ptrs[1];
    uint8_t *y = (uint8_t *)out_ptrs[0];
    int32_t b, t;
    for (b = 0; b < B; ++b) {{
        const int64_t len = (int64_t)lens[b];
        if (len < 0 || len > T) return -1;
        for (t = 0; t < T; ++t) {{
            const int64_t src = t < len ? len - 1 - t : t;
            memcpy(y + ((int64_t)b * bs + (int64_t)t * ts) * blk,
                   x + ((int64_t)b * bs + src * ts) * blk, (size_t)blk);
        }}
    }}
"""
    kernel = make_kernel(name, body, REVERSE_SEQUENCE_PARAMS)
    params = REVERSE_SEQUENCE_PARAMS.pack(B=x.shape[b_axis], T=x.shape[t_axis],
                                          bs=st[b_axis] // inner, ts=st[t_axis] // inner,
                                          blk=inner * esize)
    return [Instr(kernel, [op.inputs[0], op.inputs[1]], [op.outputs[0]], params,
                  note=f"batch_axis={b_axis}, time_axis={t_axis}")]
