"""AVX2+FMA packed GEMM: the register-blocked micro-kernel every x86-64-v3 conv/FC uses.

Layouts (BLIS-style, chosen so the micro-kernel reads both operands sequentially):

- A (M x K, the weights of a conv, or the activations of a fully-connected layer) is cut
  into panels of 6 rows over the *full* K; panel p starts at A + 6*p*K and stores, for each
  k, its rows contiguously (k-major, `mr` floats per k). The last panel has M % 6 rows and
  stride M % 6, so nothing is padded. Conv weights are packed like this at compile time and
  stored packed in the model.
- B (K x N) is cut into panels of 16 columns, k-major, zero-padded to 16 columns. Conv
  inputs are packed (im2col fused into the packing) per K-block at run time into the
  workspace; fully-connected weights are packed over the full K at compile time.

The micro-kernel keeps a 6x16 tile of C in 12 ymm accumulators (+2 for B, 1 broadcast of
A): per k it does 12 FMAs for 2 vector loads and 6 broadcasts. The bias (per row or per
column) and a clamp (ReLU, ReLU6, Clip) are applied to the tile on the last K block while
it is still in registers; other activations run as a scalar pass afterwards.
"""
from __future__ import annotations

import numpy as np

MR, NR = 6, 16
ISA = "avx2"


def _ukr8(mr: int) -> str:
    """A 6x8 tile for right-edge panels with at most 8 live columns (7x7 feature maps:
    N = 49 = 3 * 16 + 1): half the wasted FMAs of a 16-wide tile."""
    decl = ", ".join(f"c{r} = _mm256_setzero_ps()" for r in range(mr))
    fmas = "\n".join(f"        c{r} = _mm256_fmadd_ps(_mm256_broadcast_ss(a + {r}), b0, c{r});"
                     for r in range(mr))
    part = "\n".join(f"    _mm256_storeu_ps(t + {16 * r}, c{r}); "
                     f"_mm256_storeu_ps(t + {16 * r + 8}, z);" for r in range(mr))
    return f"""
static inline void megcc_avx2_ukr_{mr}x8(int32_t kc, const float *a, const float *b, float *c,
                                       int32_t ldc, int32_t nr, const megcc_avx2_epi *e) {{
    __m256 {decl};
    const __m256 z = _mm256_setzero_ps();
    float t[{16 * mr}];
    int32_t k, r;
    for (k = 0; k < kc; ++k) {{
        const __m256 b0 = _mm256_loadu_ps(b);
{fmas}
        a += {mr};
        b += 16;
    }}
{part}
    for (r = 0; r < {mr}; ++r) megcc_avx2_put_part(c + (int64_t)r * ldc, t + 16 * r, nr, e, r);
}}
"""


def _ukr(mr: int) -> str:
    acc = [f"c{r}{h}" for r in range(mr) for h in range(2)]
    decl = ", ".join(f"{a} = _mm256_setzero_ps()" for a in acc)
    fmas = "\n".join(
        f"        av = _mm256_broadcast_ss(a + {r}); c{r}0 = _mm256_fmadd_ps(av, b0, c{r}0); "
        f"c{r}1 = _mm256_fmadd_ps(av, b1, c{r}1);" for r in range(mr))
    full = "\n".join(f"        megcc_avx2_put(c + (int64_t){r} * ldc, c{r}0, c{r}1, e, {r});"
                     for r in range(mr))
    part = "\n".join(f"        _mm256_storeu_ps(t + {16 * r}, c{r}0); "
                     f"_mm256_storeu_ps(t + {16 * r + 8}, c{r}1);" for r in range(mr))
    return f"""
static inline void megcc_avx2_ukr_{mr}x16(int32_t kc, const float *a, const float *b, float *c,
                                        int32_t ldc, int32_t nr, const megcc_avx2_epi *e) {{
    __m256 {decl};
    __m256 av;
    int32_t k, r;
    for (k = 0; k < kc; ++k) {{
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
{fmas}
        a += {mr};
        b += 16;
    }}
    (void)av;
    if (nr == 16) {{
{full}
    }} else {{
        float t[{16 * mr}];
{part}
        for (r = 0; r < {mr}; ++r) megcc_avx2_put_part(c + (int64_t)r * ldc, t + 16 * r, nr, e, r);
    }}
}}
"""


_EPI = r"""
/* What happens to a finished micro-tile: accumulate onto C (a later K block), and on the
 * last K block add the bias (per row = output channel, or per column) and clamp. */
typedef struct {
    int32_t accumulate, finish, clamp;
    const float *bias_m, *bias_n;
    float lo, hi;
} megcc_avx2_epi;
"""

_PUT = r"""
static inline void megcc_avx2_put(float *c, __m256 v0, __m256 v1, const megcc_avx2_epi *e,
                                  int32_t r) {
    if (e->accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(c));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(c + 8));
    }
    if (e->finish) {
        if (e->bias_m) {
            const __m256 bm = _mm256_broadcast_ss(e->bias_m + r);
            v0 = _mm256_add_ps(v0, bm);
            v1 = _mm256_add_ps(v1, bm);
        }
        if (e->bias_n) {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(e->bias_n));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(e->bias_n + 8));
        }
        if (e->clamp) {  /* max(lo, v) keeps a NaN v (maxps returns its 2nd operand) */
            const __m256 lo = _mm256_set1_ps(e->lo), hi = _mm256_set1_ps(e->hi);
            v0 = _mm256_min_ps(hi, _mm256_max_ps(lo, v0));
            v1 = _mm256_min_ps(hi, _mm256_max_ps(lo, v1));
        }
    }
    _mm256_storeu_ps(c, v0);
    _mm256_storeu_ps(c + 8, v1);
}
"""

_PUT_PART = r"""
/* The same for a tile narrower than 16 columns (right edge of C): staged through a buffer so
 * no byte past column nr is read or written. bias_n is padded to 16 columns by the compiler. */
static inline void megcc_avx2_put_part(float *c, const float *t, int32_t nr,
                                       const megcc_avx2_epi *e, int32_t r) {
    float buf[16];
    int32_t j;
    for (j = 0; j < 16; ++j) buf[j] = j < nr && e->accumulate ? c[j] : 0.0f;
    {
        megcc_avx2_epi e2 = *e;
        e2.accumulate = 1;
        megcc_avx2_put(buf, _mm256_loadu_ps(t), _mm256_loadu_ps(t + 8), &e2, r);
    }
    for (j = 0; j < nr; ++j) c[j] = buf[j];
}
"""

_EDGE8 = r"""
/* The 6x8 edge tiles, kept out of line: inlined into megcc_avx2_gemm_block they make GCC
 * stop inlining the 6x16 kernel there (measured: the main loop lost a third of its speed). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void megcc_avx2_edge8(int32_t mr, int32_t kc, const float *ap, const float *bp, float *cp,
                             int32_t ldc, int32_t nr, const megcc_avx2_epi *e) {
    switch (mr) {
    case 6: megcc_avx2_ukr_6x8(kc, ap, bp, cp, ldc, nr, e); break;
    case 5: megcc_avx2_ukr_5x8(kc, ap, bp, cp, ldc, nr, e); break;
    case 4: megcc_avx2_ukr_4x8(kc, ap, bp, cp, ldc, nr, e); break;
    case 3: megcc_avx2_ukr_3x8(kc, ap, bp, cp, ldc, nr, e); break;
    case 2: megcc_avx2_ukr_2x8(kc, ap, bp, cp, ldc, nr, e); break;
    default: megcc_avx2_ukr_1x8(kc, ap, bp, cp, ldc, nr, e); break;
    }
}
"""

_BLOCK = r"""
/* C[M, N] (+)= A[M, k0:k0+kc] * B[k0:k0+kc, N] for one K block.
 * A: 6-row panels over the full K (see avx2_gemm.py); B: 16-column panels, panel q at
 * B + q * b_ps, already positioned at this K block. Rows are taken in blocks of mc (a
 * multiple of 6) so the A block stays in L2 while each B panel (in L1) is reused across it. */
static void megcc_avx2_gemm_block(int32_t M, int32_t N, int32_t K, int32_t k0, int32_t kc,
                                  const float *A, const float *B, int64_t b_ps, float *C,
                                  int32_t ldc, int32_t mc, const megcc_avx2_epi *e0) {
    int32_t i0, i, j;
    megcc_avx2_epi e = *e0;
    for (i0 = 0; i0 < M; i0 += mc) {
        const int32_t i1 = M - i0 < mc ? M : i0 + mc;
        for (j = 0; j < N; j += 16) {
            const float *bp = B + (int64_t)(j / 16) * b_ps;
            const int32_t nr = N - j < 16 ? N - j : 16;
            e.bias_n = e0->bias_n ? e0->bias_n + j : 0;
            for (i = i0; i < i1; i += 6) {
                const int32_t mr = M - i < 6 ? M - i : 6;
                const float *ap = A + (int64_t)i * K + (int64_t)k0 * mr;
                float *cp = C + (int64_t)i * ldc + j;
                e.bias_m = e0->bias_m ? e0->bias_m + i : 0;
                if (nr <= 8) {
                    megcc_avx2_edge8(mr, kc, ap, bp, cp, ldc, nr, &e);
                    continue;
                }
                switch (mr) {
                case 6: megcc_avx2_ukr_6x16(kc, ap, bp, cp, ldc, nr, &e); break;
                case 5: megcc_avx2_ukr_5x16(kc, ap, bp, cp, ldc, nr, &e); break;
                case 4: megcc_avx2_ukr_4x16(kc, ap, bp, cp, ldc, nr, &e); break;
                case 3: megcc_avx2_ukr_3x16(kc, ap, bp, cp, ldc, nr, &e); break;
                case 2: megcc_avx2_ukr_2x16(kc, ap, bp, cp, ldc, nr, &e); break;
                default: megcc_avx2_ukr_1x16(kc, ap, bp, cp, ldc, nr, &e); break;
                }
            }
        }
    }
}
"""

_PACK_B = r"""
/* Pack rows k0..k0+kc, columns j0..j0+nc of a row-major B (leading dimension ldb) into
 * 16-column panels (the 1x1-convolution input, or any runtime B). */
static void megcc_avx2_pack_b(const float *b, int32_t ldb, int32_t k0, int32_t kc, int32_t j0,
                              int32_t nc, float *bp) {
    int32_t jp, k, t;
    for (jp = 0; jp < nc; jp += 16) {
        float *d = bp + (int64_t)(jp / 16) * kc * 16;
        const float *s = b + (int64_t)k0 * ldb + j0 + jp;
        const int32_t n = nc - jp < 16 ? nc - jp : 16;
        if (n == 16) {
            for (k = 0; k < kc; ++k, d += 16, s += ldb) {
                _mm256_storeu_ps(d, _mm256_loadu_ps(s));
                _mm256_storeu_ps(d + 8, _mm256_loadu_ps(s + 8));
            }
        } else {
            for (k = 0; k < kc; ++k, d += 16, s += ldb)
                for (t = 0; t < 16; ++t) d[t] = t < n ? s[t] : 0.0f;
        }
    }
}
"""

_PACK_A = r"""
/* Pack a row-major A (M x K, leading dimension lda) into the 6-row panel layout. */
static void megcc_avx2_pack_a(const float *a, int32_t lda, int32_t M, int32_t K, float *ap) {
    int32_t i, k, r;
    for (i = 0; i < M; i += 6) {
        const int32_t mr = M - i < 6 ? M - i : 6;
        for (k = 0; k < K; ++k)
            for (r = 0; r < mr; ++r) *ap++ = a[(int64_t)(i + r) * lda + k];
    }
}
"""

_EVEN8 = r"""
/* The 8 even-indexed floats of p[0..15] (stride-2 access). */
static inline __m256 megcc_avx2_even8(const float *p) {
    const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    const __m256 e = _mm256_shuffle_ps(a, b, 0x88); /* a0 a2 b0 b2 | a4 a6 b4 b6 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8));
}
"""

_PAD_PLANE = r"""
/* Copy one H x W input plane into a PH x PW plane at (PT, PL), filling the rest with `fill`
 * (0 for convolution, -inf for max pooling): the direct kernels then load full vectors
 * with no bounds checks. With `borders_done`, the plane already holds this geometry's
 * fill (a previous channel): only the interior rows are copied. The copy is inlined vector
 * code, since rows are short (7..112 floats) and a memcpy call per row costs as much as the
 * copy. */
static inline void megcc_avx2_pad_plane(const float *x, int32_t H, int32_t W, int32_t PT,
                                        int32_t PL, int32_t PH, int32_t PW, float fill,
                                        float *pl, int32_t borders_done) {
    const int32_t left = PL < PW ? PL : PW, ncopy = W < PW - left ? W : PW - left;
    int32_t r, j;
    for (r = 0; r < PH; ++r) {
        float *d = pl + (int64_t)r * PW;
        const float *s = x + (int64_t)(r - PT) * W;
        const int32_t iy = r - PT;
        if (iy < 0 || iy >= H || ncopy <= 0) {
            if (!borders_done)
                for (j = 0; j < PW; ++j) d[j] = fill;
            continue;
        }
        if (!borders_done) {
            for (j = 0; j < left; ++j) d[j] = fill;
            for (j = left + ncopy; j < PW; ++j) d[j] = fill;
        }
        d += left;
        for (j = 0; j + 8 <= ncopy; j += 8) _mm256_storeu_ps(d + j, _mm256_loadu_ps(s + j));
        for (; j < ncopy; ++j) d[j] = s[j];
    }
}
"""

_STORE_UPTO = r"""
/* The first min(n, 8) lanes of v to y (the last vector of a row may be partial). */
static inline void megcc_avx2_store_upto(float *y, __m256 v, int32_t n) {
    if (n >= 8) {
        _mm256_storeu_ps(y, v);
    } else {
        float t[8];
        int32_t q;
        _mm256_storeu_ps(t, v);
        for (q = 0; q < n; ++q) y[q] = t[q];
    }
}
"""

_SPLIT_PLANE = r"""
/* Stride-2 direct kernels: the padded plane of megcc_avx2_pad_plane split into its even
 * and odd columns (pe[r][i] = padded[r][2i], po[r][i] = padded[r][2i+1], PW2 = (PW+1)/2
 * floats per row), so a stride-2 tap is one plain vector load instead of two loads and two
 * shuffles, and the shuffling happens once per input element instead of once per tap. */
static inline void megcc_avx2_split_plane(const float *x, int32_t H, int32_t W, int32_t PT,
                                          int32_t PL, int32_t PH, int32_t PW, float fill,
                                          float *pe, float *po, int32_t borders_done) {
    const int32_t PW2 = (PW + 1) / 2;
    int32_t r, i, j;
    for (r = 0; r < PH; ++r) {
        float *de = pe + (int64_t)r * PW2, *dd = po + (int64_t)r * PW2;
        const int32_t iy = r - PT;
        const float *s = x + (int64_t)iy * W;
        if (iy < 0 || iy >= H) {
            if (!borders_done)
                for (i = 0; i < PW2; ++i) de[i] = dd[i] = fill;
            continue;
        }
        /* source column of padded column j is j - PL */
        for (i = 0; i < PW2 && 2 * i - PL < 0; ++i) {
            j = 2 * i - PL;
            de[i] = fill;
            dd[i] = j + 1 >= 0 && j + 1 < W ? s[j + 1] : fill;
        }
        for (; i + 8 <= PW2 && 2 * i - PL + 16 <= W; i += 8) {
            const __m256 a = _mm256_loadu_ps(s + 2 * i - PL), b = _mm256_loadu_ps(s + 2 * i - PL + 8);
            const __m256 e = _mm256_shuffle_ps(a, b, 0x88), o = _mm256_shuffle_ps(a, b, 0xDD);
            _mm256_storeu_ps(de + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
            _mm256_storeu_ps(dd + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8)));
        }
        for (; i < PW2; ++i) {
            j = 2 * i - PL;
            de[i] = j >= 0 && j < W ? s[j] : fill;
            dd[i] = j + 1 >= 0 && j + 1 < W ? s[j + 1] : fill;
        }
    }
}
"""

# Shared helpers in dependency order, keyed by the symbol they define: kernels.c gets one
# exactly when some emitted code uses it (helpers.py), so no unused function is compiled.
HELPERS = ([("megcc_avx2_epi", _EPI), ("megcc_avx2_put", _PUT),
            ("megcc_avx2_put_part", _PUT_PART)]
           + [(f"megcc_avx2_ukr_{mr}x16", _ukr(mr)) for mr in range(1, MR + 1)]
           + [(f"megcc_avx2_ukr_{mr}x8", _ukr8(mr)) for mr in range(1, MR + 1)]
           + [("megcc_avx2_edge8", _EDGE8), ("megcc_avx2_gemm_block", _BLOCK), ("megcc_avx2_pack_b", _PACK_B),
              ("megcc_avx2_pack_a", _PACK_A), ("megcc_avx2_even8", _EVEN8),
              ("megcc_avx2_pad_plane", _PAD_PLANE), ("megcc_avx2_store_upto", _STORE_UPTO),
              ("megcc_avx2_split_plane", _SPLIT_PLANE)])


def pack_a(w: np.ndarray) -> np.ndarray:
    """(M, K) row-major -> the 6-row panel layout of the micro-kernel (same element count)."""
    m, k = w.shape
    full = m - m % MR
    parts = [w[:full].reshape(-1, MR, k).transpose(0, 2, 1).reshape(-1)]
    if m % MR:
        parts.append(w[full:].T.reshape(-1))
    return np.ascontiguousarray(np.concatenate(parts)).astype(np.float32)


def pack_b(b: np.ndarray) -> np.ndarray:
    """(K, N) row-major -> 16-column panels over the full K, zero-padded to a multiple of 16."""
    k, n = b.shape
    npad = -(-n // NR) * NR
    padded = np.zeros((k, npad), np.float32)
    padded[:, :n] = b
    return np.ascontiguousarray(padded.reshape(k, npad // NR, NR).transpose(1, 0, 2).reshape(-1))


def blocking(m: int, n: int, k: int):
    """(kc, nc, mc): the K block (B panel of 16 x kc floats stays in L1), the N block and the
    M block (B block kc x nc and A block mc x kc each about 192 KiB, so both fit in L2)."""
    nblocks = -(-k // 320)
    kc = -(-k // nblocks)
    budget = 192 * 1024 // 4 // kc
    nc = max(NR, min(-(-n // NR) * NR, budget // NR * NR))
    mc = max(MR, min(-(-m // MR) * MR, budget // MR * MR))
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
    """(C statements setting e.clamp/lo/hi of a megcc_avx2_epi, scalar pass needed)."""
    clamp, scalar = vector_clamp(act, c_float)
    if clamp is None:
        return "e.clamp = 0; e.lo = 0.0f; e.hi = 0.0f;", scalar
    return f"e.clamp = 1; e.lo = {clamp[0]}; e.hi = {clamp[1]};", scalar
