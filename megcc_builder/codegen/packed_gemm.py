"""Packed GEMM with register-blocked micro-kernels, generated per vector vocabulary
(vector.py; each level's own are in isa/).

Layouts (BLIS-style, chosen so the micro-kernel reads both operands sequentially), with the
micro-tile MR x NR of the flavour (AVX2 6x16, ARMv7 NEON 6x8, AArch64 NEON 8x12):

- A (M x K, the weights of a conv, or the activations of a fully-connected layer) is cut
  into panels of MR rows over the *full* K; panel p starts at A + MR*p*K and stores, for
  each k, its rows contiguously (k-major, `mr` floats per k). The last panel has M % MR
  rows and stride M % MR, so nothing is padded. Conv weights are packed like this at
  compile time and stored packed in the model.
- B (K x N) is cut into panels of NR columns, k-major, zero-padded to NR columns. Conv
  inputs are packed (im2col fused into the packing) per K-block at run time into the
  workspace; fully-connected weights are packed over the full K at compile time.

The micro-kernel keeps an MR x NR tile of C in MR * NR / VW vector accumulators; per k it
loads NR / VW vectors of B and multiplies them by each A element, either broadcast (AVX2,
ARMv7) or taken from a lane of A vectors (AArch64 `fmla v.4s, v.4s, v.s[i]`). Right-edge
panels at most one vector wide run a 1-vector tile instead. The bias (per row or per
column) and a clamp (ReLU, ReLU6, Clip) are applied to the tile on the last K block while
it is still in registers; other activations run as a scalar pass afterwards.
"""
from __future__ import annotations

import textwrap
from typing import List, Optional, Tuple

import numpy as np

from ..ir.symbolic import smax, smin

from .vector import Simd


def _ukr(s: Simd, mr: int, nv: int) -> str:
    """The mr x (nv * VW) micro-kernel. nv == s.nv: the full-width tile, which stores
    through megcc_<s>_put when all columns are live; nv == 1: the narrow right-edge tile."""
    n, vw, nr = s.name, s.vw, s.nr
    acc = [[f"c{r}{v}" for v in range(nv)] for r in range(mr)]
    decl = "\n".join(f"    {s.vtype} " + ", ".join(f"{a} = {s.zero}" for a in row) + ";"
                     for row in acc)
    bload = ", ".join(f"b{v} = {s.load(f'b + {v * vw}')}" for v in range(nv))
    lane = s.lane_fma and mr == s.mr
    if lane:  # mr == MR: the panel has MR floats per k, so whole A vectors can be loaded
        adecl = ""
        aload = ("        const " + s.vtype + " " + ", ".join(
            f"a{q} = {s.load(f'a + {q * vw}')}" for q in range(mr // vw)) + ";\n")
        fmas = "\n".join("        " + " ".join(
            f"{a} = {s.fma_lane(a, f'b{v}', f'a{r // vw}', r % vw)};" for v, a in enumerate(row))
            for r, row in enumerate(acc))
    else:
        adecl = f"    {s.vtype} av;\n"
        aload = ""
        fmas = "\n".join(f"        av = {s.dup(f'a + {r}')}; " + " ".join(
            f"{a} = {s.fma(a, 'av', f'b{v}')};" for v, a in enumerate(row))
            for r, row in enumerate(acc))
    stage = "\n".join("        " + " ".join(
        s.store(f"t + {nr * r + v * vw}", acc[r][v] if v < nv else "z") + ";"
        for v in range(s.nv)) for r in range(mr))
    put_part = (f"        for (r = 0; r < {mr}; ++r) "
                f"megcc_{n}_put_part(c + (int64_t)r * ldc, t + {nr} * r, nr, e, r);")
    if nv == s.nv:
        full = "\n".join(f"        megcc_{n}_put(c + (int64_t){r} * ldc, {', '.join(row)}, e, {r});"
                         for r, row in enumerate(acc))
        finish = f"""    if (nr == {nr}) {{
{full}
    }} else {{
        float t[{nr * mr}];
{stage}
{put_part}
    }}"""
    else:
        finish = f"""    {{
        const {s.vtype} z = {s.zero};
        float t[{nr * mr}];
{stage}
{put_part}
    }}"""
    return f"""
static inline void megcc_{n}_ukr_{mr}x{nv * vw}(int32_t kc, const float *a, const float *b, float *c,
        int32_t ldc, int32_t nr, const megcc_{n}_epi *e) {{
{decl}
{adecl}    int32_t k, r;
    for (k = 0; k < kc; ++k) {{
        const {s.vtype} {bload};
{aload}{fmas}
        a += {mr};
        b += {nr};
    }}
{finish}
}}
"""


def _epi(s: Simd) -> str:
    return f"""
/* What happens to a finished micro-tile: accumulate onto C (a later K block), and on the
 * last K block add the bias (per row = output channel, or per column) and clamp (clamp 1:
 * to [lo, hi]; clamp 2: a PReLU with one slope per row, slope_m, read only then). */
typedef struct {{
    int32_t accumulate, finish, clamp;
    const float *bias_m, *bias_n;
    float lo, hi;
    const float *slope_m;
}} megcc_{s.name}_epi;
"""


def _put(s: Simd) -> str:
    vs = [f"v{v}" for v in range(s.nv)]

    def each(fmt):
        return " ".join(fmt.format(v=v, o=i * s.vw) for i, v in enumerate(vs))

    return f"""
static inline void megcc_{s.name}_put(float *c, {', '.join(f'{s.vtype} {v}' for v in vs)},
        const megcc_{s.name}_epi *e, int32_t r) {{
    if (e->accumulate) {{
        {each("{v} = " + s.add("{v}", s.load("c + {o}")) + ";")}
    }}
    if (e->finish) {{
        if (e->bias_m) {{
            const {s.vtype} bm = {s.dup("e->bias_m + r")};
            {each("{v} = " + s.add("{v}", "bm") + ";")}
        }}
        if (e->bias_n) {{
            {each("{v} = " + s.add("{v}", s.load("e->bias_n + {o}")) + ";")}
        }}
        if (e->clamp == 1) {{  /* max(lo, v) keeps a NaN v */
            const {s.vtype} lo = {s.set1("e->lo")}, hi = {s.set1("e->hi")};
            {each("{v} = " + s.min("hi", s.max("lo", "{v}")) + ";")}
        }} else if (e->clamp == 2) {{  /* PReLU: max(0, v) + slope * min(0, v) */
            const {s.vtype} sm = {s.dup("e->slope_m + r")}, z = {s.zero};
            {each("{v} = " + s.fma(s.max("z", "{v}"), "sm", s.min("z", "{v}")) + ";")}
        }}
    }}
    {each(s.store("c + {o}", "{v}") + ";")}
}}
"""


def _put_part(s: Simd) -> str:
    loads = ", ".join(s.load(f"t + {i * s.vw}") for i in range(s.nv))
    return f"""
/* The same for a tile narrower than {s.nr} columns (right edge of C): staged through a buffer
 * so no byte past column nr is read or written. bias_n is padded to {s.nr} columns. */
static inline void megcc_{s.name}_put_part(float *c, const float *t, int32_t nr,
        const megcc_{s.name}_epi *e, int32_t r) {{
    float buf[{s.nr}];
    int32_t j;
    for (j = 0; j < {s.nr}; ++j) buf[j] = j < nr && e->accumulate ? c[j] : 0.0f;
    {{
        megcc_{s.name}_epi e2 = *e;
        e2.accumulate = 1;
        megcc_{s.name}_put(buf, {loads}, &e2, r);
    }}
    for (j = 0; j < nr; ++j) c[j] = buf[j];
}}
"""


def _switch(s: Simd, width: int, indent: str, epi: str) -> str:
    call = f"(kc, ap, bp, cp, ldc, nr, {epi}); break;"
    cases = [f"{indent}case {mr}: megcc_{s.name}_ukr_{mr}x{width}{call}" for mr in range(s.mr, 1, -1)]
    cases.append(f"{indent}default: megcc_{s.name}_ukr_1x{width}{call}")
    return "\n".join(cases)


def _edge(s: Simd) -> str:
    return f"""
/* The {s.mr}x{s.vw} edge tiles, kept out of line: inlined into the block loop they made GCC
 * stop inlining the full tile there (measured with AVX2: the main loop lost a third). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void megcc_{s.name}_edge(int32_t mr, int32_t kc, const float *ap, const float *bp,
        float *cp, int32_t ldc, int32_t nr, const megcc_{s.name}_epi *e) {{
    switch (mr) {{
{_switch(s, s.vw, "    ", "e")}
    }}
}}
"""


# K blocks up to this long run row-panel-major (see _block)
SHORT_K = 48


def _block(s: Simd) -> str:
    n, mr, nr = s.name, s.mr, s.nr

    def tile(ind: str) -> str:  # the micro-tile at rows i, columns j
        body = f"""{{
    const float *bp = B + (int64_t)(j / {nr}) * b_ps;
    const int32_t nr = N - j < {nr} ? N - j : {nr};
    const int32_t mr = M - i < {mr} ? M - i : {mr};
    const float *ap = A + (int64_t)i * K + (int64_t)k0 * mr;
    float *cp = C + (int64_t)i * ldc + j;
    e.bias_n = e0->bias_n ? e0->bias_n + j : 0;
    e.bias_m = e0->bias_m ? e0->bias_m + i : 0;
    if (e0->clamp == 2) e.slope_m = e0->slope_m + i;
    if (nr <= {s.vw}) {{
        megcc_{n}_edge(mr, kc, ap, bp, cp, ldc, nr, &e);
        continue;
    }}
    switch (mr) {{
{_switch(s, nr, "    ", "&e")}
    }}
}}"""
        return textwrap.indent(body, ind).lstrip()

    return f"""
/* C[M, N] (+)= A[M, k0:k0+kc] * B[k0:k0+kc, N] for one K block.
 * A: {mr}-row panels over the full K (packed_gemm.py); B: {nr}-column panels, panel q at
 * B + q * b_ps, already positioned at this K block. Rows are taken in blocks of mc (a
 * multiple of {mr}) so the A block stays in L2 while each B panel (in L1) is reused across it.
 * A short K block (expanding 1x1 convolutions, K = 16..32) makes each tile little work and
 * its stores dominate: then the tiles run along a row panel, so C is written in {mr}
 * sequential streams instead of one per row of the block. */
static void megcc_{n}_gemm_block(int32_t M, int32_t N, int32_t K, int32_t k0, int32_t kc,
        const float *A, const float *B, int64_t b_ps, float *C, int32_t ldc, int32_t mc,
        const megcc_{n}_epi *e0) {{
    int32_t i0, i, j;
    megcc_{n}_epi e = *e0;
    for (i0 = 0; i0 < M; i0 += mc) {{
        const int32_t i1 = M - i0 < mc ? M : i0 + mc;
        if (kc <= {SHORT_K}) {{
            for (i = i0; i < i1; i += {mr})
                for (j = 0; j < N; j += {nr}) {tile("                ")}
        }} else {{
            for (j = 0; j < N; j += {nr})
                for (i = i0; i < i1; i += {mr}) {tile("                ")}
        }}
    }}
}}
"""


# Below this many multiply-adds a GEMM block runs on the calling thread: waking the pool's
# workers costs some microseconds, more than the share of work they would take.
PARALLEL_MIN_MACS = 1 << 16


def _block_par(s: Simd) -> str:
    n, mr, nr = s.name, s.mr, s.nr
    return f"""
/* megcc_{n}_gemm_block on the network's threads: the tiles are cut by row panels ({mr} rows)
 * when there are enough of them, else by column panels ({nr} columns). Every tile is computed
 * exactly as in one call (same K order, same epilogue), so the result does not depend on
 * the split. */
typedef struct {{
    int32_t M, N, K, k0, kc, ldc, mc, by_rows;
    const float *A, *B;
    int64_t b_ps;
    float *C;
    const megcc_{n}_epi *e;
}} megcc_{n}_gemm_job;

static void megcc_{n}_gemm_part(void *arg, int32_t begin, int32_t end) {{
    const megcc_{n}_gemm_job *g = (const megcc_{n}_gemm_job *)arg;
    megcc_{n}_epi e = *g->e;
    if (g->by_rows) {{
        const int32_t i0 = begin * {mr}, i1 = end * {mr} < g->M ? end * {mr} : g->M;
        if (e.bias_m) e.bias_m += i0;
        if (e.clamp == 2) e.slope_m += i0;
        megcc_{n}_gemm_block(i1 - i0, g->N, g->K, g->k0, g->kc, g->A + (int64_t)i0 * g->K,
                             g->B, g->b_ps, g->C + (int64_t)i0 * g->ldc, g->ldc, g->mc, &e);
    }} else {{
        const int32_t j0 = begin * {nr}, j1 = end * {nr} < g->N ? end * {nr} : g->N;
        if (e.bias_n) e.bias_n += j0;
        megcc_{n}_gemm_block(g->M, j1 - j0, g->K, g->k0, g->kc, g->A,
                             g->B + (int64_t)begin * g->b_ps, g->b_ps, g->C + j0, g->ldc, g->mc,
                             &e);
    }}
}}

static void megcc_{n}_gemm_block_par(const megcc_parallel *par, int32_t M, int32_t N,
        int32_t K, int32_t k0, int32_t kc, const float *A, const float *B, int64_t b_ps,
        float *C, int32_t ldc, int32_t mc, const megcc_{n}_epi *e) {{
    const int32_t row_panels = (M + {mr - 1}) / {mr}, col_panels = (N + {nr - 1}) / {nr};
    megcc_{n}_gemm_job g;
    if (!par || par->threads < 2 || (int64_t)M * N * kc < {PARALLEL_MIN_MACS}) {{
        megcc_{n}_gemm_block(M, N, K, k0, kc, A, B, b_ps, C, ldc, mc, e);
        return;
    }}
    g.M = M; g.N = N; g.K = K; g.k0 = k0; g.kc = kc; g.ldc = ldc; g.mc = mc;
    g.A = A; g.B = B; g.b_ps = b_ps; g.C = C; g.e = e;
    g.by_rows = row_panels >= 2 * par->threads || row_panels >= col_panels;
    megcc_parallel_for(par, g.by_rows ? row_panels : col_panels, megcc_{n}_gemm_part, &g);
}}
"""


# Below this many packed floats a packing runs on the calling thread.
PARALLEL_MIN_PACK = 1 << 14


def panel_pack_par(fn: str, args, nr: int) -> str:
    """<fn>_par(par, args...): the B packing `fn` (which writes NR-column panels of columns
    j0 .. j0+nc, kc rows each, to bp) on the network's threads, cut by panels. A pure copy,
    so the bytes are the same for every split. args: (C type, name) of fn's parameters,
    which must include int32_t kc, j0, nc and float *bp."""
    fields = "\n".join(f"    {t} {a};" for t, a in args)
    call = ", ".join(
        {"j0": "g->j0 + j", "nc": "(end * " + str(nr) + " < g->nc ? end * " + str(nr)
                                  + " : g->nc) - j",
         "bp": "g->bp + (int64_t)begin * g->kc * " + str(nr)}.get(a, f"g->{a}")
        for _, a in args)
    params = ", ".join(f"{t} {a}" for t, a in args)
    sets = " ".join(f"g.{a} = {a};" for _, a in args)
    return f"""
typedef struct {{
{fields}
}} {fn}_job;

static void {fn}_part(void *arg, int32_t begin, int32_t end) {{
    const {fn}_job *g = (const {fn}_job *)arg;
    const int32_t j = begin * {nr};
    {fn}({call});
}}

static void {fn}_par(const megcc_parallel *par, {params}) {{
    {fn}_job g;
    if (!par || par->threads < 2 || (int64_t)kc * nc < {PARALLEL_MIN_PACK}) {{
        {fn}({", ".join(a for _, a in args)});
        return;
    }}
    {sets}
    megcc_parallel_for(par, (nc + {nr - 1}) / {nr}, {fn}_part, &g);
}}
"""


def panel_pack_gemm_par(fn: str, args, s: Simd) -> str:
    """<fn>_gemm_par(par, pack args..., M, K, A, C, ldc, mc, e): pack one K block of B with
    `fn` into bp, then C (+)= A * B for it (megcc_<s>_gemm_block). With enough column panels
    each thread packs its own panels and multiplies them by all of A, one parallel job per K
    block and no wait between packing and multiplying; otherwise the packing and the GEMM
    are split in turn (<fn>_par, megcc_<s>_gemm_block_par). Every tile is computed exactly
    as on one thread either way."""
    n, nr = s.name, s.nr
    fields = "\n".join(f"    {t} {a};" for t, a in args)
    call = ", ".join({"j0": "g->j0 + j", "nc": "nc", "bp": "bp"}.get(a, f"g->{a}")
                     for _, a in args)
    params = ", ".join(f"{t} {a}" for t, a in args)
    names = ", ".join(a for _, a in args)
    sets = " ".join(f"g.{a} = {a};" for _, a in args)
    return f"""
typedef struct {{
{fields}
    int32_t M, K, ldc, mc;
    const float *A;
    float *C;
    const megcc_{n}_epi *e;
}} {fn}_gemm_job;

static void {fn}_gemm_part(void *arg, int32_t begin, int32_t end) {{
    const {fn}_gemm_job *g = (const {fn}_gemm_job *)arg;
    const int32_t j = begin * {nr}, nc = (end * {nr} < g->nc ? end * {nr} : g->nc) - j;
    float *bp = g->bp + (int64_t)begin * g->kc * {nr};
    megcc_{n}_epi e = *g->e;
    if (e.bias_n) e.bias_n += j;
    {fn}({call});
    megcc_{n}_gemm_block(g->M, nc, g->K, g->k0, g->kc, g->A, bp, (int64_t)g->kc * {nr},
                         g->C + j, g->ldc, g->mc, &e);
}}

static void {fn}_gemm_par(const megcc_parallel *par, {params}, int32_t M, int32_t K,
        const float *A, float *C, int32_t ldc, int32_t mc, const megcc_{n}_epi *e) {{
    const int32_t col_panels = (nc + {nr - 1}) / {nr};
    {fn}_gemm_job g;
    if (par && par->threads > 1 && col_panels >= 2 * par->threads &&
        (int64_t)M * nc * kc >= {PARALLEL_MIN_MACS}) {{
        {sets}
        g.M = M; g.K = K; g.ldc = ldc; g.mc = mc; g.A = A; g.C = C; g.e = e;
        megcc_parallel_for(par, col_panels, {fn}_gemm_part, &g);
        return;
    }}
    {fn}_par(par, {names});
    megcc_{n}_gemm_block_par(par, M, nc, K, k0, kc, A, bp, (int64_t)kc * {nr}, C, ldc, mc, e);
}}
"""


def panel_pack_gemm_units_par(fn: str, args, s: Simd) -> str:
    """<fn>_units_par(par, pack args but k0/kc, M, K, KC, slots, A, C, ldc, mc, R, ldr, e):
    the whole product C (+)= A * B, every K block, for columns j0 .. j0+nc, in ONE parallel
    job. bp has room for `slots` packed panels of KC x NR; the columns' panels are cut into
    at most that many units of about equal size, each with `sw` slots of its own (1; 4 for a
    short K, whose blocks run row-panel-major over several panels), so no unit waits for
    another's packing. A unit copies its columns of the residual R (if any) into C, then
    per K block packs its panels, sw at a time, and multiplies them by the A block (which
    stays in L2 across the unit's panels). One job per product instead of one per block of
    columns and K block (a 1x1 conv on 56x56 with K = 256: 17 jobs). Every tile is computed
    exactly as in the one-thread loop (same K blocks in the same order, same epilogue)."""
    n, nr = s.name, s.nr
    fields = "\n".join(f"    {t} {a};" for t, a in args if a not in ("k0", "kc"))
    call = ", ".join({"j0": "g->j0 + jj", "nc": "w", "bp": "slot", "k0": "k0", "kc": "kb"}.get(
        a, f"g->{a}") for _, a in args)
    params = ", ".join(f"{t} {a}" for t, a in args if a not in ("k0", "kc"))
    sets = " ".join(f"g.{a} = {a};" for _, a in args if a not in ("k0", "kc"))
    return f"""
typedef struct {{
{fields}
    int32_t M, K, KC, ldc, mc, units, sw;
    const float *A, *R;
    int64_t ldr;
    float *C;
    const megcc_{n}_epi *e;
}} {fn}_units_job;

static void {fn}_units_part(void *arg, int32_t begin, int32_t end) {{
    const {fn}_units_job *g = (const {fn}_units_job *)arg;
    const int32_t panels = (g->nc + {nr - 1}) / {nr};
    int32_t u, k0, r, jj;
    for (u = begin; u < end; ++u) {{
        const int32_t j = (int32_t)((int64_t)panels * u / g->units) * {nr};
        const int32_t j1 = (int32_t)((int64_t)panels * (u + 1) / g->units) * {nr} < g->nc
                           ? (int32_t)((int64_t)panels * (u + 1) / g->units) * {nr} : g->nc;
        float *slot = g->bp + (int64_t)u * g->sw * g->KC * {nr};
        megcc_{n}_epi e = *g->e;
        if (g->R)
            for (r = 0; r < g->M; ++r)
                memcpy(g->C + (int64_t)r * g->ldc + j, g->R + (int64_t)r * g->ldr + j,
                       sizeof(float) * (size_t)(j1 - j));
        for (k0 = 0; k0 < g->K; k0 += g->KC) {{
            const int32_t kb = g->K - k0 < g->KC ? g->K - k0 : g->KC;
            e.accumulate = k0 > 0 || g->R;
            e.finish = k0 + kb >= g->K;
            for (jj = j; jj < j1; jj += g->sw * {nr}) {{
                const int32_t w = j1 - jj < g->sw * {nr} ? j1 - jj : g->sw * {nr};
                e.bias_n = g->e->bias_n ? g->e->bias_n + jj : 0;
                {fn}({call});
                megcc_{n}_gemm_block(g->M, w, g->K, k0, kb, g->A, slot, (int64_t)kb * {nr},
                                     g->C + jj, g->ldc, g->mc, &e);
            }}
        }}
    }}
}}

static void {fn}_units_par(const megcc_parallel *par, {params}, int32_t M, int32_t K,
        int32_t KC, int32_t slots, const float *A, float *C, int32_t ldc, int32_t mc,
        const float *R, int64_t ldr, const megcc_{n}_epi *e) {{
    const int32_t panels = (nc + {nr - 1}) / {nr};
    {fn}_units_job g;
    {sets}
    g.M = M; g.K = K; g.KC = KC; g.ldc = ldc; g.mc = mc; g.A = A; g.R = R; g.ldr = ldr;
    g.C = C; g.e = e;
    /* slots per unit: several panels per GEMM call for short K blocks (run row-panel-major
     * over them), while that leaves at least 16 units (or one per panel) */
    g.sw = KC <= {SHORT_K} ? 4 : KC <= 128 ? 2 : 1;
    while (g.sw > 1 && slots / g.sw < (panels < 16 ? panels : 16)) g.sw /= 2;
    g.units = (panels + g.sw - 1) / g.sw < slots / g.sw ? (panels + g.sw - 1) / g.sw : slots / g.sw;
    if (!par || par->threads < 2 || (int64_t)M * nc * K < {PARALLEL_MIN_MACS})
        {fn}_units_part(&g, 0, g.units);
    else
        megcc_parallel_for(par, g.units, {fn}_units_part, &g);
}}
"""


def panel_pack_all_par(fn: str, args, s: Simd) -> str:
    """<fn>_all_par(par, pack args but k0/kc..., K, KC): every K block of columns j0 ..
    j0+nc packed with `fn`, block after block (the block at k0 starts at bp + k0 * the
    padded width, its panels kc * NR floats apart), on the network's threads by panels. A
    pure copy: the same bytes for every split."""
    n, nr = s.name, s.nr
    fields = "\n".join(f"    {t} {a};" for t, a in args if a not in ("k0", "kc"))
    call = ", ".join({"j0": "g->j0 + j", "nc": "nc", "k0": "k0", "kc": "kb",
                      "bp": "g->bp + (int64_t)k0 * npad + (int64_t)begin * kb * " + str(nr)}.get(
        a, f"g->{a}") for _, a in args)
    params = ", ".join(f"{t} {a}" for t, a in args if a not in ("k0", "kc"))
    sets = " ".join(f"g.{a} = {a};" for _, a in args if a not in ("k0", "kc"))
    return f"""
typedef struct {{
{fields}
    int32_t K, KC;
}} {fn}_all_job;

static void {fn}_all_part(void *arg, int32_t begin, int32_t end) {{
    const {fn}_all_job *g = (const {fn}_all_job *)arg;
    const int32_t j = begin * {nr}, nc = (end * {nr} < g->nc ? end * {nr} : g->nc) - j;
    const int64_t npad = (int64_t)(g->nc + {nr - 1}) / {nr} * {nr};
    int32_t k0;
    for (k0 = 0; k0 < g->K; k0 += g->KC) {{
        const int32_t kb = g->K - k0 < g->KC ? g->K - k0 : g->KC;
        {fn}({call});
    }}
}}

static void {fn}_all_par(const megcc_parallel *par, {params}, int32_t K, int32_t KC) {{
    {fn}_all_job g;
    {sets}
    g.K = K; g.KC = KC;
    if (!par || par->threads < 2 || (int64_t)K * nc < {PARALLEL_MIN_PACK})
        {fn}_all_part(&g, 0, (nc + {nr - 1}) / {nr});
    else
        megcc_parallel_for(par, (nc + {nr - 1}) / {nr}, {fn}_all_part, &g);
}}
"""


def _gemm_rows_kloop_par(s: Simd) -> str:
    n, mr, nr = s.name, s.mr, s.nr
    return f"""
/* C (+)= A * B over every K block, B packed whole (megcc_..._all_par: the K block at k0
 * at B + k0 * the padded width), in ONE parallel job cut by {mr}-row panels: each part
 * copies its rows of the residual R (if any), then runs every K block on its rows. For
 * products with few columns (7x7 maps): cut by columns, four panels, one of them a single
 * column, split two ways 2 : 1.06; by rows, each thread also reads only its half of A. Every
 * tile is computed exactly as in the one-thread loop. */
typedef struct {{
    int32_t M, N, K, KC, ldc, mc;
    const float *A, *B, *R;
    int64_t ldr;
    float *C;
    const megcc_{n}_epi *e;
}} megcc_{n}_gemm_rows_job;

static void megcc_{n}_gemm_rows_part(void *arg, int32_t begin, int32_t end) {{
    const megcc_{n}_gemm_rows_job *g = (const megcc_{n}_gemm_rows_job *)arg;
    const int32_t i0 = begin * {mr}, i1 = end * {mr} < g->M ? end * {mr} : g->M;
    const int64_t npad = (int64_t)(g->N + {nr - 1}) / {nr} * {nr};
    megcc_{n}_epi e = *g->e;
    int32_t k0, r;
    if (e.bias_m) e.bias_m += i0;
    if (e.clamp == 2) e.slope_m += i0;
    if (g->R)
        for (r = i0; r < i1; ++r)
            memcpy(g->C + (int64_t)r * g->ldc, g->R + (int64_t)r * g->ldr,
                   sizeof(float) * (size_t)g->N);
    for (k0 = 0; k0 < g->K; k0 += g->KC) {{
        const int32_t kb = g->K - k0 < g->KC ? g->K - k0 : g->KC;
        e.accumulate = k0 > 0 || g->R;
        e.finish = k0 + kb >= g->K;
        megcc_{n}_gemm_block(i1 - i0, g->N, g->K, k0, kb, g->A + (int64_t)i0 * g->K,
                             g->B + (int64_t)k0 * npad, (int64_t)kb * {nr},
                             g->C + (int64_t)i0 * g->ldc, g->ldc, g->mc, &e);
    }}
}}

static void megcc_{n}_gemm_rows_par(const megcc_parallel *par, int32_t M, int32_t N,
        int32_t K, int32_t KC, const float *A, const float *B, float *C, int32_t ldc,
        int32_t mc, const float *R, int64_t ldr, const megcc_{n}_epi *e) {{
    megcc_{n}_gemm_rows_job g;
    g.M = M; g.N = N; g.K = K; g.KC = KC; g.ldc = ldc; g.mc = mc; g.A = A; g.B = B;
    g.R = R; g.ldr = ldr; g.C = C; g.e = e;
    if (!par || par->threads < 2 || (int64_t)M * N * K < {PARALLEL_MIN_MACS})
        megcc_{n}_gemm_rows_part(&g, 0, (M + {mr - 1}) / {mr});
    else
        megcc_parallel_for(par, (M + {mr - 1}) / {mr}, megcc_{n}_gemm_rows_part, &g);
}}
"""


def _pack_b(s: Simd) -> str:
    copy = " ".join(s.store(f"d + {i * s.vw}", s.load(f"s + {i * s.vw}")) + ";"
                    for i in range(s.nv))
    return f"""
/* Pack rows k0..k0+kc, columns j0..j0+nc of a row-major B (leading dimension ldb) into
 * {s.nr}-column panels (the 1x1-convolution input, or any runtime B). */
static void megcc_{s.name}_pack_b(const float *b, int32_t ldb, int32_t k0, int32_t kc,
        int32_t j0, int32_t nc, float *bp) {{
    int32_t jp, k, t;
    for (jp = 0; jp < nc; jp += {s.nr}) {{
        float *d = bp + (int64_t)(jp / {s.nr}) * kc * {s.nr};
        const float *s = b + (int64_t)k0 * ldb + j0 + jp;
        const int32_t n = nc - jp < {s.nr} ? nc - jp : {s.nr};
        if (n == {s.nr}) {{
            for (k = 0; k < kc; ++k, d += {s.nr}, s += ldb) {{ {copy} }}
        }} else {{
            for (k = 0; k < kc; ++k, d += {s.nr}, s += ldb)
                for (t = 0; t < {s.nr}; ++t) d[t] = t < n ? s[t] : 0.0f;
        }}
    }}
}}
"""


PACK_B_ARGS = (("const float *", "b"), ("int32_t", "ldb"), ("int32_t", "k0"), ("int32_t", "kc"),
               ("int32_t", "j0"), ("int32_t", "nc"), ("float *", "bp"))


def _pack_a(s: Simd) -> str:
    return f"""
/* Pack a row-major A (M x K, leading dimension lda) into the {s.mr}-row panel layout. */
static void megcc_{s.name}_pack_a(const float *a, int32_t lda, int32_t M, int32_t K, float *ap) {{
    int32_t i, k, r;
    for (i = 0; i < M; i += {s.mr}) {{
        const int32_t mr = M - i < {s.mr} ? M - i : {s.mr};
        for (k = 0; k < K; ++k)
            for (r = 0; r < mr; ++r) *ap++ = a[(int64_t)(i + r) * lda + k];
    }}
}}
"""


_AVX2_EVEN8 = r"""
/* The 8 even-indexed floats of p[0..15] (stride-2 access). */
static inline __m256 megcc_avx2_even8(const float *p) {
    const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    const __m256 e = _mm256_shuffle_ps(a, b, 0x88); /* a0 a2 b0 b2 | a4 a6 b4 b6 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8));
}
"""

_AVX2_ODD8 = r"""
/* The 8 odd-indexed floats of p[0..15]. */
static inline __m256 megcc_avx2_odd8(const float *p) {
    const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    const __m256 o = _mm256_shuffle_ps(a, b, 0xDD); /* a1 a3 b1 b3 | a5 a7 b5 b7 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8));
}
"""

_AVX2_KEEP = r"""
/* Keep a loaded vector in a register: GCC otherwise folds the load into every FMA using
 * it (one memory operand per use), which doubled the loads of the depthwise kernels, whose
 * tap loads each feed up to KH FMAs and which are load-bound (3x3 stride 1: 20 % faster
 * with the vector kept). An empty asm that claims to modify v; no instruction. */
#if defined(__GNUC__)
#define megcc_avx2_keep(v) __asm__("" : "+x"(v))
#else
#define megcc_avx2_keep(v) ((void)0)
#endif
"""


def _vector_runs(s: Simd, n: str, full, half, scalar: str, ind: str) -> str:
    """C for a run of `n` elements j = 0 .. n-1 that may be done in any order and more than
    once: whole vectors (full(): the statement for VW elements from j), the last one moved
    back to end at n; a run shorter than a vector takes two overlapping half vectors
    (half()); one shorter than that, the scalar statement `scalar` per j."""
    hw = s.vw // 2
    return (f"if ({n} >= {s.vw}) {{\n"
            f"{ind}    for (j = 0; j + {s.vw} < {n}; j += {s.vw}) {full()}\n"
            f"{ind}    j = {n} - {s.vw}; {full()}\n"
            f"{ind}}} else if ({n} >= {hw}) {{\n"
            f"{ind}    j = 0; {half()}\n"
            f"{ind}    j = {n} - {hw}; {half()}\n"
            f"{ind}}} else {{\n"
            f"{ind}    for (j = 0; j < {n}; ++j) {scalar}\n"
            f"{ind}}}")


def _pad_plane(s: Optional[Simd] = None) -> str:
    """megcc_pad_plane (portable: the compiler vectorises the row copy, with a scalar
    remainder) or megcc_<s>_pad_plane, whose row copy is whole vectors with the last one
    overlapping the previous (no scalar remainder: on 14x14 and 28x28 maps the remainder
    made the copy a large part of a depthwise layer)."""
    name = f"megcc_{s.name}_pad_plane" if s else "megcc_pad_plane"
    copy = "for (j = 0; j < ncopy; ++j) d[left + j] = s[j];"
    if s:
        copy = _vector_runs(s, "ncopy", lambda: s.store("d + left + j", s.load("s + j")) + ";",
                            lambda: s.hstore("d + left + j", s.hload("s + j")) + ";",
                            "d[left + j] = s[j];", " " * 8)
    return f"""
/* Copy one H x W input plane into a PH x PW plane at (PT, PL), filling the rest with `fill`
 * (0 for convolution, -inf for max pooling): the direct vector kernels then load full
 * vectors with no bounds checks. With `borders_done` the plane already holds this
 * geometry's fill (from a previous channel) and only the interior rows are copied. Rows
 * are short (7..112 floats): a loop, not a memcpy call per row. */
static inline void {name}(const float *x, int32_t H, int32_t W, int32_t PT,
        int32_t PL, int32_t PH, int32_t PW, float fill, float *pl, int32_t borders_done) {{
    const int32_t left = PL < PW ? PL : PW, ncopy = W < PW - left ? W : PW - left;
    int32_t r, j;
    for (r = 0; r < PH; ++r) {{
        float *restrict d = pl + (int64_t)r * PW;
        const float *restrict s = x + (int64_t)(r - PT) * W;
        const int32_t iy = r - PT;
        if (iy < 0 || iy >= H || ncopy <= 0) {{
            if (!borders_done)
                for (j = 0; j < PW; ++j) d[j] = fill;
            continue;
        }}
        if (!borders_done) {{
            for (j = 0; j < left; ++j) d[j] = fill;
            for (j = left + ncopy; j < PW; ++j) d[j] = fill;
        }}
        {copy}
    }}
}}
"""


def _split_plane(s: Simd) -> str:
    """Stride-2 direct kernels (depthwise): the padded plane of megcc_pad_plane split into
    its even and odd columns. The interior of a row is deinterleaved VW outputs at a time
    (on small maps with few taps this copy, not the FMAs, is much of a layer's time)."""
    split = _vector_runs(
        s, "mid - i",
        lambda: (f"{{ {s.store('de + i + j', s.even('src + 2 * j'))}; "
                 f"{s.store('dd + i + j', s.odd('src + 2 * j'))}; }}"),
        lambda: (f"{{ {s.hstore('de + i + j', s.heven('src + 2 * j'))}; "
                 f"{s.hstore('dd + i + j', s.hodd('src + 2 * j'))}; }}"),
        "{ de[i + j] = src[2 * j]; dd[i + j] = src[2 * j + 1]; }", " " * 12)
    return f"""
/* Stride-2 direct kernels: the padded plane of megcc_pad_plane split into its even and odd
 * columns (pe[r][i] = padded[r][2i], po[r][i] = padded[r][2i+1], PW2 = (PW+1)/2 floats per
 * row), so a stride-2 tap is one plain vector load, and columns are deinterleaved once per
 * input element instead of once per tap. */
static inline void megcc_{s.name}_split_plane(const float *x, int32_t H, int32_t W, int32_t PT,
        int32_t PL, int32_t PH, int32_t PW, float fill, float *pe, float *po, int32_t borders_done) {{
    const int32_t PW2 = (PW + 1) / 2;
    int32_t r, i, j;
    for (r = 0; r < PH; ++r) {{
        float *restrict de = pe + (int64_t)r * PW2, *restrict dd = po + (int64_t)r * PW2;
        const int32_t iy = r - PT;
        const float *restrict s = x + (int64_t)iy * W;
        if (iy < 0 || iy >= H) {{
            if (!borders_done)
                for (i = 0; i < PW2; ++i) de[i] = dd[i] = fill;
            continue;
        }}
        /* padded column j holds source column j - PL; the middle run needs no checks */
        for (i = 0; i < PW2 && 2 * i - PL < 0; ++i) {{
            j = 2 * i - PL;
            de[i] = fill;
            dd[i] = j + 1 >= 0 && j + 1 < W ? s[j + 1] : fill;
        }}
        {{
            /* source columns 2 * i - PL .. 2 * mid - PL - 1, all inside the row: whole
             * vectors (2 * {s.vw} floats read per step) */
            const int32_t mid = (W + PL) / 2 < PW2 ? (W + PL) / 2 : PW2;
            const float *restrict src = s + 2 * i - PL;
            {split}
            i = mid > i ? mid : i;
        }}
        for (; i < PW2 && 2 * i - PL < W; ++i) {{
            j = 2 * i - PL;
            de[i] = j >= 0 ? s[j] : fill;
            dd[i] = j + 1 >= 0 && j + 1 < W ? s[j + 1] : fill;
        }}
        if (!borders_done)  /* the right padding, past the source row */
            for (; i < PW2; ++i) de[i] = dd[i] = fill;
    }}
}}
"""


def helpers_of(s: Simd) -> List[Tuple[str, str]]:
    """The GEMM helpers of one flavour, in dependency order, keyed by the symbol they define."""
    n = s.name
    out = [(f"megcc_{n}_epi", _epi(s)), (f"megcc_{n}_put", _put(s)),
           (f"megcc_{n}_put_part", _put_part(s))]
    out += [(f"megcc_{n}_ukr_{mr}x{s.nr}", _ukr(s, mr, s.nv)) for mr in range(1, s.mr + 1)]
    out += [(f"megcc_{n}_ukr_{mr}x{s.vw}", _ukr(s, mr, 1)) for mr in range(1, s.mr + 1)]
    out += [(f"megcc_{n}_edge", _edge(s)), (f"megcc_{n}_gemm_block", _block(s)),
            (f"megcc_{n}_gemm_block_par", _block_par(s)),
            (f"megcc_{n}_pack_b", _pack_b(s)),
            (f"megcc_{n}_pack_b_par", panel_pack_par(f"megcc_{n}_pack_b", PACK_B_ARGS, s.nr)),
            (f"megcc_{n}_pack_b_gemm_par",
             panel_pack_gemm_par(f"megcc_{n}_pack_b", PACK_B_ARGS, s)),
            (f"megcc_{n}_pack_b_units_par",
             panel_pack_gemm_units_par(f"megcc_{n}_pack_b", PACK_B_ARGS, s)),
            (f"megcc_{n}_pack_b_all_par", panel_pack_all_par(f"megcc_{n}_pack_b", PACK_B_ARGS, s)),
            (f"megcc_{n}_gemm_rows_par", _gemm_rows_kloop_par(s)),
            (f"megcc_{n}_pack_a", _pack_a(s)),
            (f"megcc_{n}_pad_plane", _pad_plane(s)), (f"megcc_{n}_split_plane", _split_plane(s))]
    return out


def shared_helpers(vocabularies: List[Simd]) -> List[Tuple[str, str]]:
    """The helpers of the vector kernels for every given vocabulary, found by use
    (codegen/helpers.py): kernels.c gets one exactly when some emitted code uses it, so no
    unused function is compiled."""
    out = [("megcc_pad_plane", _pad_plane()), ("megcc_avx2_even8", _AVX2_EVEN8),
           ("megcc_avx2_odd8", _AVX2_ODD8), ("megcc_avx2_keep", _AVX2_KEEP)]
    for s in vocabularies:
        out += helpers_of(s)
    return out


# ---------------------------------------------------------------------------------------
# compile-time side: packing constant operands, blocking, epilogue set-up

def pack_a(w: np.ndarray, mr: int, dtype=np.float32) -> np.ndarray:
    """(M, K) row-major -> the mr-row panel layout of the micro-kernel (same element count);
    dtype float16 for compressed weights (the panels are widened block by block)."""
    m, k = w.shape
    full = m - m % mr
    parts = [w[:full].reshape(-1, mr, k).transpose(0, 2, 1).reshape(-1)]
    if m % mr:
        parts.append(w[full:].T.reshape(-1))
    return np.ascontiguousarray(np.concatenate(parts)).astype(dtype)


def pack_b(b: np.ndarray, nr: int, dtype=np.float32) -> np.ndarray:
    """(K, N) row-major -> nr-column panels over the full K, zero-padded to a multiple of nr."""
    k, n = b.shape
    npad = -(-n // nr) * nr
    padded = np.zeros((k, npad), dtype)
    padded[:, :n] = b
    return np.ascontiguousarray(padded.reshape(k, npad // nr, nr).transpose(1, 0, 2).reshape(-1))


def most_columns(kc: int, s: Simd) -> int:
    """The most columns of a packed B block of kc rows (NC's cap in blocking)."""
    return 192 * 1024 // 4 // kc // s.nr * s.nr


def blocking(m: int, n: int, k: int, s: Simd):
    """(kc, nc, mc): the K block (a B panel of NR x kc floats stays in L1), the N block and
    the M block (B block kc x nc and A block mc x kc each about 192 KiB, so both fit in L2)."""
    nblocks = -(-k // 320)
    kc = -(-k // nblocks)
    budget = 192 * 1024 // 4 // kc
    # (smax/smin: an extent only known at run time keeps the block an expression)
    nc = smax(s.nr, smin(-(-n // s.nr) * s.nr, most_columns(kc, s)))
    mc = smax(s.mr, smin(-(-m // s.mr) * s.mr, budget // s.mr * s.mr))
    return kc, nc, mc


def vector_clamp(act, c_float):
    """How a fused activation runs: ((lo, hi) C literals of a vector clamp, or None,
    whether a scalar activation pass is needed afterwards)."""
    if act is None:
        return None, False
    if act == ("Relu", ("in", 0)):
        return ("0.0f", "INFINITY"), False
    if (act[0] == "clip" and act[1] == ("in", 0) and act[2][0] == "const"
            and act[3][0] == "const"):
        lo, hi = float(act[2][1]), float(act[3][1])
        if lo == lo and hi == hi:  # NaN bounds keep the portable semantics (scalar pass)
            return (c_float(lo), c_float(hi)), False
    return None, True


def epilogue_setup(act, c_float):
    """(C statements setting e.clamp/lo/hi of a megcc_<simd>_epi, scalar pass needed)."""
    clamp, scalar = vector_clamp(act, c_float)
    if clamp is None:
        return "e.clamp = 0; e.lo = 0.0f; e.hi = 0.0f; e.slope_m = 0;", scalar
    return f"e.clamp = 1; e.lo = {clamp[0]}; e.hi = {clamp[1]}; e.slope_m = 0;", scalar
