"""Matrix products: ONNX Gemm and MatMul (with NumPy batch broadcasting), float32."""
from __future__ import annotations

import itertools

from ...codegen.half import weight_pointer
from ...codegen.kernel import Instr, f32_bits, make_kernel, numel
from ...codegen.params import f32, i32, schema, table
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..elementwise.activation import activation_code, activation_tag
from ..elementwise.generic import broadcast_strides
from ..registry import F32, implements
from .problem import fc_cost
from ...ir.symbolic import Sym, broadcast_shapes


GEMM_PARAMS = schema(i32("M", "rows of Y"), i32("N", "columns of Y"), i32("K", "reduction"),
                     i32("csm", "C element stride along M (0: broadcast)"),
                     i32("csn", "C element stride along N (0: broadcast)"),
                     f32("alpha", "scale of A*B"), f32("beta", "scale of C"))
MATMUL_PARAMS = schema(i32("NB", "batch (broadcast) products"), i32("M", "rows of Y"),
                       i32("N", "columns of Y"), i32("K", "reduction"),
                       table("off_a", "NB", "A element offset per product"),
                       table("off_b", "NB", "B element offset per product"))


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    """Asked only where the vector FC applies too, so the problem is an FC's."""
    return fc_cost(op, graph, isa, lambda m, n, k: m * n * k * isa.core.portable_fc)


@implements("Gemm", dtypes=F32, cost=_cost)
def lower_gemm(op: Op, graph: Graph):
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    trans_a, trans_b = int(op.attrs.get("transA", 0)), int(op.attrs.get("transB", 0))
    f16 = _compressed(a, b) and not trans_a  # passes/compress_fp16.py
    if a.dtype != "float32" or (b.dtype != "float32" and not f16):
        raise graph.error(f"Gemm on {a.dtype} is not supported (float32 is)", op)
    alpha, beta = float(op.attrs.get("alpha", 1.0)), float(op.attrs.get("beta", 1.0))
    m, n = y.shape
    k = a.shape[0] if trans_a else a.shape[1]
    has_c = len(op.inputs) > 2 and bool(op.inputs[2]) and beta != 0.0
    act = op.attrs.get("activation")
    if has_c:
        c = graph.tensors[op.inputs[2]]
        csm, csn = broadcast_strides(c.shape, (m, n))
    else:
        csm = csn = 0
    params = GEMM_PARAMS.pack(M=m, N=n, K=k, csm=csm, csn=csn, alpha=f32_bits(alpha),
                              beta=f32_bits(beta))
    if f16:
        variant, core, workspace = _widening_core(bool(trans_b), m, n, k)
    elif trans_b and not trans_a:
        variant, core = "nt", "megcc_gemm_nt(M, N, K, a, K, b, K, y, N, 0);"
        workspace = 0
    elif not trans_b:
        # A's strides are in the code, so transA is part of the name
        variant = "tn" if trans_a else "nn"
        sa = "1, M" if trans_a else "K, 1"
        core = f"megcc_gemm_nn(M, N, K, a, {sa}, b, N, y, N, 0);"
        workspace = 0
    else:  # both transposed: lay B out as (K, N) first
        variant = "tt"
        core = """{ float *bt = (float *)workspace; int32_t i, j;
        for (i = 0; i < N; ++i) for (j = 0; j < K; ++j) bt[(int64_t)j * N + i] = b[(int64_t)i * K + j];
        megcc_gemm_nn(M, N, K, a, 1, M, bt, N, y, N, 0); }"""
        workspace = n * k * 4
    c_line = "const float *cb = (const float *)in_ptrs[2];" if has_c else ""
    c_term = " + beta * cb[(int64_t)i * csm + (int64_t)j * csn]" if has_c else ""
    name = f"gemm_{variant}_f32{'_c' if has_c else ''}{activation_tag(act)}"
    body = f"""    const float *a = (const float *)in_ptrs[0];
    {weight_pointer("b", 1, f16)}
    float *y = (float *)out_ptrs[0];
    {c_line}
    int32_t i, j;
    {core}
    for (i = 0; i < M; ++i)
        for (j = 0; j < N; ++j) {{
            const float v = alpha * y[(int64_t)i * N + j]{c_term};
            y[(int64_t)i * N + j] = {activation_code(act, "v")};
        }}
"""
    kernel = make_kernel(name, body, GEMM_PARAMS, ("math", "f32_bits", "gemm"))
    inputs = [op.inputs[0], op.inputs[1]] + ([op.inputs[2]] if has_c else [])
    return [Instr(kernel, inputs, [op.outputs[0]], params, workspace_bytes=workspace,
                  note=f"gemm_{variant} (M={m!r}, N={n!r}, K={k!r})")]


def _compressed(a, b) -> bool:
    """B holds float16 weights of a float32 product (passes/compress_fp16.py)."""
    return a.dtype == "float32" and b.dtype == "float16" and b.is_const and len(b.shape) == 2


# float16 B is widened into the workspace about this many floats (64 KiB) at a time
WIDEN_FLOATS = 16384


def _widen_rows(count: int, length: int) -> int:
    """Rows of `length` floats widened at a time, at most `count` (the C code computes the
    same from its params: R = max(1, WIDEN_FLOATS / length))."""
    return max(1, min(count, WIDEN_FLOATS // length if length else count))


def _widening_core(trans_b: bool, m: int, n: int, k: int):
    """(variant, C, workspace bytes) of Y = A * B with a float16 B widened block by block:
    rows of B (K x N: a K block, products accumulated) or, transposed (N x K), rows of B^T
    (a block of output columns). Per output element the sums run in the float32 order."""
    if trans_b:
        core = f"""{{ float *bw = (float *)workspace; int32_t j0;
        const int32_t R = K > 0 && {WIDEN_FLOATS} / K > 1 ? {WIDEN_FLOATS} / K : 1;
        for (j0 = 0; j0 < N; j0 += R) {{
            const int32_t nb = N - j0 < R ? N - j0 : R;
            megcc_widen_f16(b + (int64_t)j0 * K, bw, (int64_t)nb * K);
            megcc_gemm_nt(M, nb, K, a, K, bw, K, y + j0, N, 0);
        }} }}"""
        return "nt_w16", core, _widen_rows(n, k) * k * 4
    return "nn_w16", _widening_nn("a", "y"), _widen_rows(k, n) * n * 4


def _widening_nn(a: str, y: str) -> str:
    """Y (M x N) = A (M x K, row-major) * B (K x N, float16), K blocks of B widened."""
    return f"""{{ float *bw = (float *)workspace; int32_t k0;
        const int32_t R = N > 0 && {WIDEN_FLOATS} / N > 1 ? {WIDEN_FLOATS} / N : 1;
        if (K == 0) megcc_gemm_nn(M, N, 0, {a}, K, 1, bw, N, {y}, N, 0);
        for (k0 = 0; k0 < K; k0 += R) {{
            const int32_t kb = K - k0 < R ? K - k0 : R;
            megcc_widen_f16(b + (int64_t)k0 * N, bw, (int64_t)kb * N);
            megcc_gemm_nn(M, N, kb, {a} + k0, K, 1, bw, N, {y}, N, k0 > 0);
        }} }}"""


def _matmul_applies(op: Op, graph: Graph, isa: IsaSpec):
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    if b.dtype == "float32" or _compressed(a, b):
        return None
    return f"on {a.dtype}/{b.dtype} (computes float32)"


@implements("MatMul", dtypes=F32, cost=_cost, applies=_matmul_applies)
def lower_matmul(op: Op, graph: Graph):
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    f16 = _compressed(a, b)
    if f16:
        return _lower_matmul_w16(op, graph)
    if {a.dtype, b.dtype} != {"float32"}:
        raise graph.error(f"MatMul on {a.dtype}/{b.dtype} is not supported (float32 is)", op)
    ashape, bshape = list(a.shape), list(b.shape)
    if len(ashape) == 1:
        ashape = [1] + ashape
    if len(bshape) == 1:
        bshape = bshape + [1]
    m, k = ashape[-2:]
    n = bshape[-1]
    if any(isinstance(d, Sym) for d in ashape[:-2] + bshape[:-2]):
        return _lower_matmul_strided(op, graph, ashape, bshape, m, n, k)
    batch = [max(x, y) for x, y in itertools.zip_longest(ashape[-3::-1], bshape[-3::-1],
                                                          fillvalue=1)][::-1]
    sa = broadcast_strides(ashape[:-2], batch) if batch else []
    sb = broadcast_strides(bshape[:-2], batch) if batch else []
    offsets_a, offsets_b = [], []
    for idx in itertools.product(*[range(d) for d in batch]):
        offsets_a.append(sum(i * s for i, s in zip(idx, sa)) * m * k)
        offsets_b.append(sum(i * s for i, s in zip(idx, sb)) * k * n)
    nb = max(1, numel(batch))
    if not batch:
        offsets_a, offsets_b = [0], [0]
    act = graph_act = op.attrs.get("activation")
    name = f"matmul_f32{activation_tag(act)}"
    epilogue = "" if graph_act is None else f"""
        for (j = 0; j < M * N; ++j) {{ const float v = yb[j]; yb[j] = {activation_code(act, "v")}; }}"""
    body = f"""    const float *a = (const float *)in_ptrs[0];
    const float *b = (const float *)in_ptrs[1];
    float *y = (float *)out_ptrs[0];
    int32_t i{", j" if epilogue else ""};
    for (i = 0; i < NB; ++i) {{
        float *yb = y + (int64_t)i * M * N;
        megcc_gemm_nn(M, N, K, a + off_a[i], K, 1, b + off_b[i], N, yb, N, 0);{epilogue}
    }}
"""
    kernel = make_kernel(name, body, MATMUL_PARAMS, ("math", "gemm"))
    return [Instr(kernel, list(op.inputs[:2]), [op.outputs[0]],
                  MATMUL_PARAMS.pack(NB=nb, M=m, N=n, K=k, off_a=offsets_a, off_b=offsets_b),
                  note=f"batched gemm_nn x{nb!r} (M={m!r}, N={n!r}, K={k!r})")]


def _strided_params(rank: int):
    return schema(i32("NB", "batch (broadcast) products"), i32("M", "rows of Y"),
                  i32("N", "columns of Y"), i32("K", "reduction"),
                  table("dims", rank, "batch extents"),
                  table("sa", rank, "A element stride per batch axis (0: broadcast)"),
                  table("sb", rank, "B element stride per batch axis (0: broadcast)"))


def _lower_matmul_strided(op: Op, graph: Graph, ashape, bshape, m, n, k):
    """A batch whose extent is only known at run time: the offsets of each product come
    from per-axis strides instead of a table with one entry per product."""
    batch = list(broadcast_shapes(ashape[:-2], bshape[:-2]))
    rank = len(batch)
    sa = [st * m * k for st in broadcast_strides(ashape[:-2], batch)]
    sb = [st * k * n for st in broadcast_strides(bshape[:-2], batch)]
    act = op.attrs.get("activation")
    name = f"matmul_f32_bstrided{rank}{activation_tag(act)}"
    epilogue = "" if act is None else f"""
        for (j = 0; j < M * N; ++j) {{ const float v = yb[j]; yb[j] = {activation_code(act, "v")}; }}"""
    params = _strided_params(rank)
    body = f"""    const float *a = (const float *)in_ptrs[0];
    const float *b = (const float *)in_ptrs[1];
    float *y = (float *)out_ptrs[0];
    int32_t i, d{", j" if epilogue else ""};
    for (i = 0; i < NB; ++i) {{
        float *yb = y + (int64_t)i * M * N;
        int64_t oa = 0, ob = 0;
        int32_t rest = i;
        for (d = {rank} - 1; d >= 0; --d) {{
            const int32_t idx = rest % dims[d];
            rest /= dims[d];
            oa += (int64_t)idx * sa[d];
            ob += (int64_t)idx * sb[d];
        }}
        megcc_gemm_nn(M, N, K, a + oa, K, 1, b + ob, N, yb, N, 0);{epilogue}
    }}
"""
    kernel = make_kernel(name, body, params, ("math", "gemm"))
    return [Instr(kernel, list(op.inputs[:2]), [op.outputs[0]],
                  params.pack(NB=numel(batch), M=m, N=n, K=k, dims=batch, sa=sa, sb=sb),
                  note=f"batched gemm_nn, run-time batch (M={m!r}, N={n!r}, K={k!r})")]


def _lower_matmul_w16(op: Op, graph: Graph):
    """MatMul of a float32 A (any batch dimensions: they fold into M, since B is one 2-D
    matrix) by a float16 B: each K block of B widened once for all rows."""
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    k, n = b.shape
    m = numel(a.shape) // k if k else numel(a.shape[:-1])
    act = op.attrs.get("activation")
    epilogue = "" if act is None else f"""
    {{ int64_t q; for (q = 0; q < (int64_t)M * N; ++q) {{ const float v = y[q]; y[q] = {activation_code(act, "v")}; }} }}"""
    body = f"""    const float *a = (const float *)in_ptrs[0];
    {weight_pointer("b", 1, True)}
    float *y = (float *)out_ptrs[0];
    {_widening_nn("a", "y")}{epilogue}
"""
    kernel = make_kernel(f"matmul_w16_f32{activation_tag(act)}", body, W16_PARAMS,
                         ("math", "gemm"))
    return [Instr(kernel, list(op.inputs[:2]), [op.outputs[0]], W16_PARAMS.pack(M=m, N=n, K=k),
                  workspace_bytes=_widen_rows(k, n) * n * 4,
                  note=f"gemm_nn, float16 B widened in K blocks (M={m!r}, N={n!r}, K={k!r})")]


W16_PARAMS = schema(i32("M", "rows of Y (A's batch dimensions folded in)"),
                    i32("N", "columns of Y"), i32("K", "reduction"))
