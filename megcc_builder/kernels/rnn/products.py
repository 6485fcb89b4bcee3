"""The matrix products of the recurrent kernels, as generated C helpers shared by every
recurrent kernel of a kernels.c: run-time weight packing, the portable product, the packed
GEMM driver of a vector vocabulary (the input projection, large batches) and the
register-tiled GEMV for the per-step product of a small batch."""
from __future__ import annotations

from typing import Tuple

from ...codegen import packed_gemm as g
from ...codegen.vector import Simd

PACK_HELPER = ("megcc_rnn_pack_panels", """
/* W (n rows of K floats, row-major) as W^T in nr-column panels over the full K, columns
 * past n zero (packed_gemm.pack_b of W^T; nr == n: W^T row-major). */
static void megcc_rnn_pack_panels(const float *w, int32_t n, int32_t K, int32_t nr, float *dst) {
    int32_t q, k, c;
    for (q = 0; q * nr < n; ++q)
        for (k = 0; k < K; ++k)
            for (c = 0; c < nr; ++c)
                *dst++ = q * nr + c < n ? w[(int64_t)(q * nr + c) * K + k] : 0.0f;
}
""")

PORTABLE_MM = ("megcc_rnn_mm_c", """
/* C[M, N] = A[M, K] * B[K, N] (+ bias per column, if given); B row-major. */
static void megcc_rnn_mm_c(int32_t M, int32_t N, int32_t K, const float *a, const float *b,
        const float *bias, float *c) {
    int32_t i, j;
    for (i = 0; i < M; ++i)
        for (j = 0; j < N; ++j) c[(int64_t)i * N + j] = bias ? bias[j] : 0.0f;
    megcc_gemm_nn(M, N, K, a, K, 1, b, N, c, N, 1);
}
""")


def simd_mm(s: Simd) -> Tuple[str, str]:
    n, mr, nr = s.name, s.mr, s.nr
    return (f"megcc_{n}_rnn_mm", f"""
/* C[M, N] = A[M, K] * B + bias (per column, padded to {nr}, or none); B: W^T in {nr}-column
 * panels over the full K; ap: room for A packed in {mr}-row panels when M > 1. K blocks and
 * row blocks as packed_gemm.blocking sizes them. */
static void megcc_{n}_rnn_mm(const megcc_parallel *par, int32_t M, int32_t N, int32_t K,
        const float *a, const float *b, const float *bias, float *c, float *ap) {{
    const int32_t nkb = (K + 319) / 320, KC = K > 0 ? (K + nkb - 1) / nkb : 1;
    const int32_t rows = (M + {mr - 1}) / {mr} * {mr};
    int32_t MC = 49152 / KC / {mr} * {mr}, k0;
    const float *apk = a;
    megcc_{n}_epi e;
    if (MC > rows) MC = rows;
    if (MC < {mr}) MC = {mr};
    e.clamp = 0; e.lo = 0.0f; e.hi = 0.0f; e.slope_m = 0;
    e.bias_m = 0;
    e.bias_n = bias;
    if (K == 0) {{
        int32_t i, j;
        for (i = 0; i < M; ++i)
            for (j = 0; j < N; ++j) c[(int64_t)i * N + j] = bias ? bias[j] : 0.0f;
        return;
    }}
    if (M > 1) {{
        megcc_{n}_pack_a(a, K, M, K, ap);
        apk = ap;
    }}
    for (k0 = 0; k0 < K; k0 += KC) {{
        const int32_t kb = K - k0 < KC ? K - k0 : KC;
        e.accumulate = k0 > 0;
        e.finish = k0 + kb >= K;
        megcc_{n}_gemm_block_par(par, M, N, K, k0, kb, apk, b + (int64_t)k0 * {nr}, (int64_t)K * {nr}, c, N, MC, &e);
    }}
}}
""")


def _gemv_tile(s: Simd, rows: int, panels: int) -> str:
    """rows x (panels * NR) of C = A * B over the full K, all in registers: rows * panels *
    NR / VW independent FMA chains (a 1 x NR tile alone has NR / VW: latency-bound)."""
    n, vw, nr, nv = s.name, s.vw, s.nr, s.nv
    acc = [[[f"c{r}_{q}_{v}" for v in range(nv)] for q in range(panels)] for r in range(rows)]
    flat = [a for row in acc for pan in row for a in pan]
    decl = f"    {s.vtype} " + ", ".join(f"{a} = {s.zero}" for a in flat) + ";"
    # a B vector feeding several rows is kept in a register (else GCC folds its load into
    # every FMA using it: twice the loads of a load-bound loop)
    keep = rows > 1
    loads = " ".join(f"{'' if keep else 'const '}{s.vtype} b{q}_{v} = "
                     f"{s.load(f'b{q} + k * {nr} + {v * vw}')};"
                     + (s.keep(f"b{q}_{v}") if keep else "")
                     for q in range(panels) for v in range(nv))
    fmas = "\n".join(
        f"        {{ const {s.vtype} av = {s.dup(f'a + (int64_t){r} * K + k')}; "
        + " ".join(f"{acc[r][q][v]} = {s.fma(acc[r][q][v], 'av', f'b{q}_{v}')};"
                   for q in range(panels) for v in range(nv)) + " }"
        for r in range(rows))
    bptrs = " ".join(f"const float *b{q} = b + (int64_t){q} * K * {nr};" for q in range(panels))
    stores = []
    for r in range(rows):
        for q in range(panels):
            full = " ".join(s.store(f"c + (int64_t){r} * ldc + {q * nr + v * vw}", acc[r][q][v]) + ";"
                            for v in range(nv))
            part = " ".join(s.store(f"t + {v * vw}", acc[r][q][v]) + ";" for v in range(nv))
            stores.append(f"""    if (ncols >= {(q + 1) * nr}) {{ {full} }}
    else if (ncols > {q * nr}) {{
        float t[{nr}];
        int32_t j;
        {part}
        for (j = 0; j < ncols - {q * nr}; ++j) c[(int64_t){r} * ldc + {q * nr} + j] = t[j];
    }}""")
    return f"""
static inline void megcc_{n}_rnn_gemv_{rows}x{panels}(int32_t K, const float *a, const float *b,
        float *c, int32_t ldc, int32_t ncols) {{
{decl}
    {bptrs}
    int32_t k;
    for (k = 0; k < K; ++k) {{
        {loads}
{fmas}
    }}
{chr(10).join(stores)}
}}
"""


# (rows, panels) of the small-batch product's register tiles
GEMV_TILES = ((1, 4), (1, 1), (2, 2), (2, 1), (4, 1))


def simd_gemv(s: Simd) -> Tuple[str, str]:
    """C[M, N] = A[M, K] * B for a small M (the per-step product of a small batch): B
    streams once per group of up to 4 rows, each group in register tiles of GEMV_TILES;
    column panels split over the threads (whole panels: the same sums on any count)."""
    n, nr = s.name, s.nr
    tiles = "".join(_gemv_tile(s, r, p) for r, p in GEMV_TILES)
    return (f"megcc_{n}_rnn_gemv", tiles + f"""
typedef struct {{
    int32_t M, N, K;
    const float *a, *b;
    float *c;
}} megcc_{n}_rnn_gemv_job;

static void megcc_{n}_rnn_gemv_part(void *arg, int32_t begin, int32_t end) {{
    const megcc_{n}_rnn_gemv_job *g = (const megcc_{n}_rnn_gemv_job *)arg;
    const int32_t K = g->K, N = g->N;
    int32_t i = 0;
    while (i < g->M) {{
        const int32_t rows = g->M - i >= 4 ? 4 : g->M - i >= 2 ? 2 : 1;
        const float *a = g->a + (int64_t)i * K;
        float *c = g->c + (int64_t)i * N;
        int32_t q = begin;
        for (; rows == 1 && q + 4 <= end; q += 4)
            megcc_{n}_rnn_gemv_1x4(K, a, g->b + (int64_t)q * K * {nr}, c + q * {nr}, N, N - q * {nr});
        for (; q < end; ++q) {{
            const float *bq = g->b + (int64_t)q * K * {nr};
            float *cq = c + q * {nr};
            const int32_t nc = N - q * {nr};
            if (rows == 4) megcc_{n}_rnn_gemv_4x1(K, a, bq, cq, N, nc);
            else if (rows == 2 && q + 2 <= end) {{ megcc_{n}_rnn_gemv_2x2(K, a, bq, cq, N, nc); ++q; }}
            else if (rows == 2) megcc_{n}_rnn_gemv_2x1(K, a, bq, cq, N, nc);
            else megcc_{n}_rnn_gemv_1x1(K, a, bq, cq, N, nc);
        }}
        i += rows;
    }}
}}

static void megcc_{n}_rnn_gemv(const megcc_parallel *par, int32_t M, int32_t N, int32_t K,
        const float *a, const float *b, float *c) {{
    const int32_t panels = (N + {nr - 1}) / {nr};
    megcc_{n}_rnn_gemv_job g;
    g.M = M; g.N = N; g.K = K; g.a = a; g.b = b; g.c = c;
    if (!par || par->threads < 2 || (int64_t)M * N * K < {g.PARALLEL_MIN_MACS} || panels < 8) {{
        megcc_{n}_rnn_gemv_part(&g, 0, panels);
        return;
    }}
    megcc_parallel_for(par, panels, megcc_{n}_rnn_gemv_part, &g);
}}
""")
