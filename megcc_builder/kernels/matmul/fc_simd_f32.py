"""Vector fully-connected layers: Gemm (and 2-D-weight MatMul) with a constant B, through
the packed GEMM of one vector vocabulary (codegen/packed_gemm.py).

Y[M, N] = A[M, K] * B[K, N] (+ bias per column). B (the weights) is packed at compile time
into the micro-kernel's NR-column panels (alpha folded in), the per-column bias (beta * C)
padded to NR columns; A (activations) is packed into MR-row panels at run time (nothing to
do when M == 1: one row already is that layout).
"""
from __future__ import annotations

import numpy as np

from ...codegen import packed_gemm as g
from ...codegen.half import weight_pointer
from ...codegen.kernel import Instr, c_float, make_kernel
from ...codegen.params import i32, schema
from ...codegen.vector import Simd
from ...ir import Graph, Op
from ...ir.symbolic import known  # (a run-time M takes the general, packing path)
from ...isa import IsaSpec
from ..cost import gemm_cycles
from ..elementwise.activation import activation_code, activation_tag
from ..registry import F32, implements
from .problem import fc_cost, fc_problem


FC_PARAMS = schema(i32("M", "rows of Y"), i32("N", "columns of Y"), i32("K", "reduction"),
                   i32("KC", "reduction block (cache blocking)"),
                   i32("MC", "row block (cache blocking)"))

# float16 weights: the panels of NCW columns x one K block are widened into the workspace
# (NCW * KC floats, about 192 KiB, as packed_gemm.blocking sizes a B block for L2)
WIDEN_BUDGET = 192 * 1024 // 4


def _widened_columns(kc: int, s: Simd) -> int:
    """NCW: the columns widened at a time (the C code computes the same from KC)."""
    return max(s.nr, WIDEN_BUDGET // kc // s.nr * s.nr)


def _widening_loop(s: Simd) -> str:
    """The product over column blocks of NCW, each K block of their float16 panels widened
    first; per output element the K blocks add in the same order as the float32 loop."""
    nr = s.nr
    return f"""float *bw = (float *)workspace + (M == 1 ? 0 : (int64_t)M * K);
    int32_t ncw = {WIDEN_BUDGET} / KC / {nr} * {nr}, j0, q;
    if (ncw < {nr}) ncw = {nr};
    for (j0 = 0; j0 < N; j0 += ncw) {{
        const int32_t nb = N - j0 < ncw ? N - j0 : ncw;
        e.bias_n = bias ? bias + j0 : 0;
        for (k0 = 0; k0 < K; k0 += KC) {{
            const int32_t kb = K - k0 < KC ? K - k0 : KC;
            for (q = 0; q < (nb + {nr - 1}) / {nr}; ++q)  /* panel j0/{nr} + q, rows k0..k0+kb */
                megcc_widen_f16(bp + ((int64_t)(j0 / {nr} + q) * K + k0) * {nr},
                                bw + (int64_t)q * kb * {nr}, (int64_t)kb * {nr});
            e.accumulate = k0 > 0;
            e.finish = k0 + kb >= K;
            megcc_{s.name}_gemm_block_par(par, M, nb, K, k0, kb, apk, bw, (int64_t)kb * {nr}, y + j0, N, MC, &e);
        }}
    }}"""


# column panels a one-row product runs together (see _gemv_m1)
GEMV_PANELS = 4


def _gemv_m1(s: Simd):
    """megcc_<s>_fc_gemv: y[0, N] = a[0, K] * B for one row. The 1 x NR micro-tile has NV
    accumulator chains, each FMA waiting for the previous one (1280 x 1000: 87 us, the FMA
    latency times K times the panels); here GEMV_PANELS panels (separate weight streams)
    run together, so GEMV_PANELS x NV chains are in flight. Every output element still
    sums its K products in order from zero and gets the same epilogue, so the result is
    bitwise that of the block loop, which serves the remaining panels and several threads."""
    n, nr, vw, nv, p = s.name, s.nr, s.vw, s.nv, GEMV_PANELS
    accs = [[f"c{i}{v}" for v in range(nv)] for i in range(p)]
    decl = "\n".join(f"        {s.vtype} " + ", ".join(f"{a} = {s.zero}" for a in row) + ";"
                     for row in accs)
    fmas = "\n".join("            " + " ".join(
        f"{a} = {s.fma(a, 'av', s.load(f'b{i} + {v * vw}'))};" for v, a in enumerate(row))
        + f" b{i} += {nr};" for i, row in enumerate(accs))
    puts = "\n".join(f"        ep.bias_n = e->bias_n ? e->bias_n + j + {i * nr} : 0;\n"
                      f"        megcc_{n}_put(y + j + {i * nr}, {', '.join(row)}, &ep, 0);"
                      for i, row in enumerate(accs))
    bdecl = ", ".join(f"*b{i} = bp + (int64_t)(j / {nr} + {i}) * K * {nr}" for i in range(p))
    return (f"{n}_fc_gemv", f"""
static void megcc_{n}_fc_gemv(int32_t N, int32_t K, const float *a, const float *bp, float *y,
        const megcc_{n}_epi *e) {{
    megcc_{n}_epi ep = *e;
    int32_t j, k;
    ep.accumulate = 0;
    ep.finish = 1;
    for (j = 0; j + {p * nr} <= N; j += {p * nr}) {{
        const float {bdecl};
{decl}
        for (k = 0; k < K; ++k) {{
            const {s.vtype} av = {s.dup("a + k")};
{fmas}
        }}
{puts}
    }}
    if (j < N) {{
        ep.bias_n = e->bias_n ? e->bias_n + j : 0;
        megcc_{n}_gemm_block(1, N - j, K, 0, K, a, bp + (int64_t)(j / {nr}) * K * {nr},
                             (int64_t)K * {nr}, y + j, N, {s.mr}, &ep);
    }}
}}
""")


def lower_fc(op: Op, graph: Graph, s: Simd):
    m, n, k, bmat, bias = fc_problem(op, graph)
    act = op.attrs.get("activation")
    kc, _, mc = g.blocking(m, n, k, s)
    if known(m, 1):  # one row: no K blocks (each weight panel is then one sequential read)
        kc = k
    f16 = graph.tensors[op.inputs[1]].dtype == "float16"  # passes/compress_fp16.py
    bname = graph.unique_name(op.inputs[1] + f"__{s.name}_b{s.nr}")
    graph.add_const(bname, g.pack_b(np.ascontiguousarray(bmat), s.nr,
                                    np.float16 if f16 else np.float32))
    inputs = [op.inputs[0], bname]
    if bias is not None:
        padded = np.zeros(-(-n // s.nr) * s.nr, np.float32)
        padded[:n] = bias
        cname = graph.unique_name(op.outputs[0] + f"__{s.name}_bias{s.nr}")
        graph.add_const(cname, padded)
        inputs.append(cname)
    setup, act_pass = g.epilogue_setup(act, c_float)
    if known(m, 1) and not f16:  # one row: the GEMV (one thread) or the block loop
        helpers = (_gemv_m1(s),)
        loop = f"""if (!par || par->threads < 2) {{
        megcc_{s.name}_fc_gemv(N, K, apk, bp, y, &e);
    }} else {{
        e.accumulate = 0;
        e.finish = 1;
        megcc_{s.name}_gemm_block_par(par, 1, N, K, 0, K, apk, bp, (int64_t)K * {s.nr}, y, N, MC, &e);
    }}"""
        k0_decl = ""
    else:
        helpers = ()
        k0_decl = "int32_t k0;"
    loop = loop if known(m, 1) and not f16 else _widening_loop(s) if f16 else f"""for (k0 = 0; k0 < K; k0 += KC) {{
        const int32_t kb = K - k0 < KC ? K - k0 : KC;
        e.accumulate = k0 > 0;
        e.finish = k0 + kb >= K;
        megcc_{s.name}_gemm_block_par(par, M, N, K, k0, kb, apk, bp + (int64_t)k0 * {s.nr}, (int64_t)K * {s.nr}, y, N, MC, &e);
    }}"""
    pack = "apk = a;" if known(m, 1) else f"megcc_{s.name}_pack_a(a, K, M, K, ap); apk = ap;"
    post = "" if not act_pass else f"""
    {{ int64_t q; for (q = 0; q < (int64_t)M * N; ++q) {{ const float v = y[q]; y[q] = {activation_code(act, "v")}; }} }}"""
    name = f"fc_gemm{s.mr}x{s.nr}{'_w16' if f16 else ''}_f32{'_bias' if bias is not None else ''}{activation_tag(act)}" \
           f"{'_m1' if known(m, 1) else ''}_{s.name}"
    body = f"""    const float *a = (const float *)in_ptrs[0];
    {weight_pointer("bp", 1, f16)}  /* {s.nr}-column panels (packed_gemm.py) */
    const float *bias = {"(const float *)in_ptrs[2]" if bias is not None else "0"};
    float *y = (float *)out_ptrs[0];
    {"" if known(m, 1) else "float *ap = (float *)workspace;  /* A packed in row panels */"}
    const float *apk;
    {k0_decl}
    megcc_{s.name}_epi e;
    {setup}
    e.bias_m = 0;
    e.bias_n = bias;
    {pack}
    {loop}{post}
"""
    ws = 0 if known(m, 1) else m * k * 4
    if f16:
        ws += kc * min(_widened_columns(kc, s), -(-n // s.nr) * s.nr) * 4
    kernel = make_kernel(name, body, FC_PARAMS, ("math",) + helpers, isa=s.isa)
    return [Instr(kernel, inputs, [op.outputs[0]], FC_PARAMS.pack(M=m, N=n, K=k, KC=kc, MC=mc),
                  workspace_bytes=ws,
                  note=f"{s.label} {s.mr}x{s.nr} packed GEMM, weights pre-packed in {s.nr}-column panels "
                       f"{'(float16, widened per block of columns and K) ' if f16 else ''}"
                       f"(M={m!r}, N={n!r}, K={k!r}, kc={kc!r})")]


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    gs = isa.vec("f32").gemm
    return fc_cost(op, graph, isa, lambda m, n, k: gemm_cycles(
        m, n, k, 0.0 if known(m, 1) else 0.5, 1, gs, isa.core))


def _label(isa: IsaSpec) -> str:
    gs = isa.vec("f32").gemm
    return f"{gs.name} packed GEMM {gs.mr}x{gs.nr}"


@implements("Gemm", "MatMul", dtypes=F32, requires="f32.gemm", cost=_cost, label=_label,
            applies=lambda op, graph, isa: None if fc_problem(op, graph) is not None
            else "weights not a constant 2-D matrix")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    return lower_fc(op, graph, isa.vec("f32").gemm)
