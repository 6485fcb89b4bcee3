"""AVX2+FMA Winograd convolutions F(4x4, 3x3) and F(2x2, 3x3) (3x3, stride 1, dilation 1,
group 1; NCHW f32).

Each m x m output tile (m = 4 or 2) is computed from an a x a input patch d (a = m + 2) as
Y = A^T [U (.) V] A with V = B^T d B and U = G g G^T per filter g: a^2 multiplies per tile and
channel pair instead of 9 m^2 (36 vs 144, 16 vs 36), so the multiply-adds become a^2 = XI
independent GEMMs (one per position xi of the transformed tile) of OC x IC weights by
IC x tiles inputs. F(4,3) saves more multiplies; F(2,3) has 4x more tiles on small feature
maps (7x7: 16 instead of 4, a full micro-kernel panel) and transformed weights 16/9 of the
direct ones instead of 4x, which is what limits 7x7x512 layers.

- filter transform at compile time: U is stored in the model as XI OC x IC matrices, each
  packed into the 6-row panels of the AVX2 micro-kernel (packed_gemm.pack_a);
- input transform at run time, for a block of TB tiles and KB channels, straight into the
  16-column B panels megcc_avx2_gemm_block reads (vectorised over 8 tiles of a tile row: a
  vertical pass over the zero-padded input rows, then a stride-m deinterleave per row);
- XI GEMMs per block through the existing packed micro-kernel, accumulating over channel
  blocks into an OC-block x TB buffer per xi;
- output transform with the epilogue fused: bias, an optional residual tensor (y = act(conv
  + bias + r), passes/fuse.py) and a clamp, stored with edge tiles cut at OH/OW.

The workspace holds the transformed inputs (XI x KB x TB), the GEMM results (XI x MB x TB)
and the input transform's scratch; it does not grow with the feature map: TB is 16 tiles (one
micro-kernel panel), more while the budget allows, so it is about XI x 64 B x (KB + MB) x
TB / 16 (F(4,3): 1.4 MiB at 512 channels, 300 KiB at 64). Above KB_MAX input channels the K
blocks accumulate and the input transform is redone per output-channel block.

Accuracy: F(4,3)'s rounding error is about 10x the direct convolution's (~1e-6 of the output
scale; ResNet-18 end to end 3e-5 normalised against MegEngine, tolerance 1e-4), F(2,3)'s
about the same as direct. F(6,3) was not added: its 1/90-style transform coefficients lose
about two more decimal digits, too close to the tolerance on ResNet-sized models.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...codegen import packed_gemm as g
from ...codegen.kernel import Instr, c_float, make_kernel
from ...codegen.parallel import (MAX_SCRATCH_PARTS, SCRATCH_ALIGN_FLOATS, parts_with_scratch,
                                 scratch_bytes, scratch_parts, scratch_stride, scratch_tag)
from ...codegen.params import i32
from ...ir import Graph, Op
from ...isa import IsaSpec
from ...isa.x86 import AVX2
from ..cost import gemm_cycles
from ..elementwise.activation import activation_tag
from ...ir.symbolic import at_most, smax, smin
from ..registry import F32, implements
from .geometry import (bias_of, conv_head_values, conv_problem, conv_schema, prelu_slope, prelu_tag,
                       prelu_vector, scalar_activation_pass,
                       vector_conv_rejection)


PARAMS = conv_schema(i32("TB", "tiles per block"), i32("KB", "input channels per block"),
                     i32("MB", "output channels per block"),
                     i32("WB", "width of the input transform's strip"),
                     i32("LS", "width of the staging area"))


# Below this many (output channel, tile) pairs a block's output transform stays on the
# calling thread (about 60 model cycles each: some microseconds in all).
OUTPUT_PARALLEL_MIN = 256

# On threads, layers with at least this many tiles per thread are cut into ranges of tiles
# (one job per layer, a workspace area per thread), fewer keep each block's split.
TILE_PARALLEL_MIN = 12
# A part of the tile-range split runs its range in blocks of at most this many tiles (one
# micro-kernel panel; TB on one thread may be larger for few channels): its workspace area
# is then a constant, MAX_SCRATCH_PARTS of them (or max_threads: scratch_parts) at most
# 4 x tile_area_bound(RANGE_TB) bytes each. Compiled for one thread, there is no such split.
# Blocks do not change what a tile computes (the transforms work tile by tile, the GEMMs
# column by column).
RANGE_TB = 16

WORKSPACE_BUDGET = 512 * 1024  # bytes of transformed inputs + GEMM results per block
# Channels per K block: up to 512, i.e. every layer of ResNet/VGG in one block (the B panel
# of 512 x 16 floats is 32 KiB). Splitting K costs far more than the larger workspace: the
# input transform is redone per output-channel block and the weights are read in strided
# pieces (measured on 14x14x512: 7.2 ms with 128-channel blocks, 4.1 ms unsplit).
KB_MAX = 512
MB_MAX = 96   # output channels per block (multiple of the 6-row micro-tile)


@dataclass(frozen=True)
class Variant:
    """One F(m x m, 3x3): its matrices (float64, for the filter transform and the tests) and
    the C of its transforms for 8 tiles in the lanes of __m256 vectors."""
    tag: str       # "43" / "23": in kernel and helper names (conv2d_winograd_f43_..)
    tile: int      # m
    at: np.ndarray  # A^T (m x a)
    g: np.ndarray   # G (a x 3)
    bt: np.ndarray  # B^T (a x a), coded by hand in bt_macro
    bt_macro: str  # MEGCC_WINO<tag>_BT(e0.., v): v[0..a-1] = B^T e along one axis
    at_macro: str  # MEGCC_WINO<tag>_AT(n0.., o): o[0..m-1] = A^T n along one axis
    # C statements, inside the horizontal pass: from strip row pointer s (8 tiles from s[0]
    # on, m columns apart) set the a vectors c[0..a-1] of column j of the 8 tiles' patches
    deinterleave: str
    # C statements of the output transform's last step: from z[r][q] (output row r, column q
    # of the 8 tiles, tiles in lanes as the deinterleave left them) set row[0..m-1]: the
    # 8 * m consecutive outputs of tile row r
    interleave: str
    # C statement applied to each horizontal-pass result o[j] before it is stored (puts the
    # tiles back in order), or ""
    reorder_in: str = ""
    reorder_out: str = ""  # the same for z[r][q] before the interleave

    @property
    def alpha(self) -> int:
        return self.tile + 2

    @property
    def xi(self) -> int:
        return self.alpha * self.alpha


F43 = Variant(
    tag="43", tile=4,
    at=np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                 [0, 1, -1, 8, -8, 1]], np.float64),
    g=np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64),
    bt=np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                 [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64),
    bt_macro=r"""
/* B^T d along one axis for 8 lanes: v0..v5 from d0..d5 (F(4,3)). */
#define MEGCC_WINO43_BT(e0, e1, e2, e3, e4, e5, v)                                      \
    do {                                                                             \
        const __m256 d0 = (e0), d1 = (e1), d2 = (e2), d3 = (e3), d4 = (e4), d5 = (e5); \
        const __m256 f4_ = _mm256_set1_ps(4.0f), f5_ = _mm256_set1_ps(5.0f);         \
        const __m256 p_ = _mm256_fnmadd_ps(f4_, d2, d4), q_ = _mm256_fnmadd_ps(f4_, d1, d3); \
        const __m256 r_ = _mm256_sub_ps(d4, d2);                                      \
        const __m256 s_ = _mm256_add_ps(_mm256_sub_ps(d3, d1), _mm256_sub_ps(d3, d1)); \
        v[0] = _mm256_fmadd_ps(f4_, d0, _mm256_fnmadd_ps(f5_, d2, d4));               \
        v[1] = _mm256_add_ps(p_, q_);                                                 \
        v[2] = _mm256_sub_ps(p_, q_);                                                 \
        v[3] = _mm256_add_ps(r_, s_);                                                 \
        v[4] = _mm256_sub_ps(r_, s_);                                                 \
        v[5] = _mm256_fmadd_ps(f4_, d1, _mm256_fnmadd_ps(f5_, d3, d5));               \
    } while (0)
""",
    at_macro=r"""
/* A^T m along one axis for 8 lanes: o0..o3 from m0..m5 (F(4,3)). */
#define MEGCC_WINO43_AT(n0, n1, n2, n3, n4, n5, o)                                    \
    do {                                                                             \
        const __m256 m0 = (n0), m1 = (n1), m2 = (n2), m3 = (n3), m4 = (n4), m5 = (n5); \
        const __m256 a_ = _mm256_add_ps(m1, m2), b_ = _mm256_sub_ps(m1, m2);          \
        const __m256 c_ = _mm256_add_ps(m3, m4), d_ = _mm256_sub_ps(m3, m4);          \
        o[0] = _mm256_add_ps(_mm256_add_ps(m0, a_), c_);                              \
        o[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d_, b_);                         \
        o[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), c_, a_);                         \
        o[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d_, b_), m5);      \
    } while (0)
""",
    # 4x4 transposes inside 128-bit lanes: tiles 0,2,4,6 | 1,3,5,7 in the lanes
    deinterleave=r"""
            const __m256 a0 = _mm256_loadu_ps(s), a1 = _mm256_loadu_ps(s + 8);
            const __m256 a2 = _mm256_loadu_ps(s + 16), a3 = _mm256_loadu_ps(s + 24);
            const __m256 b0 = _mm256_loadu_ps(s + 4), b1 = _mm256_loadu_ps(s + 12);
            const __m256 b2 = _mm256_loadu_ps(s + 20), b3 = _mm256_loadu_ps(s + 28);
            const __m256 l01 = _mm256_unpacklo_ps(a0, a1), h01 = _mm256_unpackhi_ps(a0, a1);
            const __m256 l23 = _mm256_unpacklo_ps(a2, a3), h23 = _mm256_unpackhi_ps(a2, a3);
            const __m256 m01 = _mm256_unpacklo_ps(b0, b1), m23 = _mm256_unpacklo_ps(b2, b3);
            c[0] = _mm256_shuffle_ps(l01, l23, 0x44); c[1] = _mm256_shuffle_ps(l01, l23, 0xEE);
            c[2] = _mm256_shuffle_ps(h01, h23, 0x44); c[3] = _mm256_shuffle_ps(h01, h23, 0xEE);
            c[4] = _mm256_shuffle_ps(m01, m23, 0x44); c[5] = _mm256_shuffle_ps(m01, m23, 0xEE);""",
    reorder_in="o[j] = _mm256_permutevar8x32_ps(o[j], _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));",
    reorder_out="z[r][q] = _mm256_permutevar8x32_ps(z[r][q], _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));",
    # tiles 0,2,4,6 | 1,3,5,7 in lanes: a 4x4 transpose per 128-bit lane gives 32 outputs
    interleave=r"""
                                const __m256 l01 = _mm256_unpacklo_ps(z[r][0], z[r][1]);
                                const __m256 h01 = _mm256_unpackhi_ps(z[r][0], z[r][1]);
                                const __m256 l23 = _mm256_unpacklo_ps(z[r][2], z[r][3]);
                                const __m256 h23 = _mm256_unpackhi_ps(z[r][2], z[r][3]);
                                row[0] = _mm256_shuffle_ps(l01, l23, 0x44);
                                row[1] = _mm256_shuffle_ps(l01, l23, 0xEE);
                                row[2] = _mm256_shuffle_ps(h01, h23, 0x44);
                                row[3] = _mm256_shuffle_ps(h01, h23, 0xEE);""")

F23 = Variant(
    tag="23", tile=2,
    at=np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64),
    g=np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]], np.float64),
    bt=np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64),
    bt_macro=r"""
/* B^T d along one axis for 8 lanes: v0..v3 from d0..d3 (F(2,3)). */
#define MEGCC_WINO23_BT(e0, e1, e2, e3, v)                                              \
    do {                                                                             \
        const __m256 d0 = (e0), d1 = (e1), d2 = (e2), d3 = (e3);                     \
        v[0] = _mm256_sub_ps(d0, d2);                                                 \
        v[1] = _mm256_add_ps(d1, d2);                                                 \
        v[2] = _mm256_sub_ps(d2, d1);                                                 \
        v[3] = _mm256_sub_ps(d1, d3);                                                 \
    } while (0)
""",
    at_macro=r"""
/* A^T m along one axis for 8 lanes: o0, o1 from m0..m3 (F(2,3)). */
#define MEGCC_WINO23_AT(n0, n1, n2, n3, o)                                            \
    do {                                                                             \
        const __m256 m0 = (n0), m1 = (n1), m2 = (n2), m3 = (n3);                     \
        o[0] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);                              \
        o[1] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);                              \
    } while (0)
""",
    # stride-2 deinterleaves keep the tiles in order
    deinterleave=r"""
            c[0] = megcc_avx2_even8(s); c[1] = megcc_avx2_even8(s + 1);
            c[2] = megcc_avx2_even8(s + 2); c[3] = megcc_avx2_even8(s + 3);""",
    interleave=r"""
                                const __m256 lo2 = _mm256_unpacklo_ps(z[r][0], z[r][1]);
                                const __m256 hi2 = _mm256_unpackhi_ps(z[r][0], z[r][1]);
                                row[0] = _mm256_permute2f128_ps(lo2, hi2, 0x20);
                                row[1] = _mm256_permute2f128_ps(lo2, hi2, 0x31);""")

VARIANTS = {"f43": F43, "f23": F23}

# F(4,3)'s matrices under their usual names (tests, docs)
AT, G, BT = F43.at, F43.g, F43.bt
TILE, XI = F43.tile, F43.xi


def applicable(geo) -> bool:
    return (geo["kh"] == geo["kw"] == 3 and geo["sh"] == geo["sw"] == 1
            and geo["dh"] == geo["dw"] == 1 and geo["group"] == 1)


def tiles(geo, v: Variant = F43):
    """(tiles per row, tiles per column) of m x m output tiles; edge tiles are cut."""
    return -(-geo["ow"] // v.tile), -(-geo["oh"] // v.tile)


def blocking(geo, v: Variant = F43):
    """(TB tiles, KB input channels, MB output channels) per block, within the budget."""
    tx, ty = tiles(geo, v)
    t = tx * ty
    kb = -(-geo["c"] // -(-geo["c"] // KB_MAX))  # equal blocks of at most KB_MAX
    mb = geo["oc"] if geo["oc"] <= MB_MAX else MB_MAX
    return smin(most_tiles(kb, mb, v), t), kb, mb  # (an expression when the tile count is symbolic)


def most_tiles(kb: int, mb: int, v: Variant = F43) -> int:
    """TB's cap: 16 tiles, more while the budget allows."""
    per16 = v.xi * 4 * 16 * (kb + mb)  # bytes per 16 tiles
    return max(16, WORKSPACE_BUDGET // per16 * 16)


def strip_width(geo, tb: int, v: Variant = F43) -> int:
    """Floats per scratch row: a tile-row segment of up to min(TB, tiles per row) tiles,
    rounded up to vector groups of 8 tiles plus the deinterleave's overhang."""
    tx, _ = tiles(geo, v)
    n = smin(tb, tx)
    return 8 * v.tile * -(-n // 8) + 8


def staging_width(tb: int) -> int:
    """Floats per staging row of the input transform: TB rounded up to the 16-column panels,
    + 8 for the overhang of a partial group of 8 tiles."""
    return -(-tb // 16) * 16 + 8


def workspace_bytes(geo, tb: int, kb: int, mb: int, v: Variant = F43,
                    most: int = MAX_SCRATCH_PARTS) -> int:
    """Transformed inputs, GEMM results (+ 8 floats of overhang), then one scratch area of
    the input transform (strip + staging) per part it may be cut into; for a map of tiles
    enough for two threads' ranges, room for `most` (scratch_parts) areas of all three
    (tile_area), none when compiled for one thread."""
    tpad = -(-tb // 16) * 16
    vs, ms = kb * tpad + 16, mb * tb + 16
    scr = v.alpha * strip_width(geo, tb, v) + v.xi * staging_width(tb)
    shared = 4 * (v.xi * vs + v.xi * ms + 8) + scratch_bytes(most, scr)
    tx, ty = tiles(geo, v)
    # the areas only where the kernel may cut the tiles into ranges (at least
    # TILE_PARALLEL_MIN per part, two parts or more). (smax/at_most: for a run-time tile
    # count an expression of it, the same formula as for a static one, never a guard.)
    # (the areas, or 0 below that tile count: a min of a constant with 0 or more, so no
    # comparison, and a short program: a plan's expressions have at most MAX_EXPR_WORDS)
    areas = 4 * most * tile_area_bound(RANGE_TB, kb, mb, v)
    if most == 1:  # one thread: never cut into tile ranges
        return shared
    return smax(shared, smin(areas, smax(0, geo["n"] * tx * ty - (2 * TILE_PARALLEL_MIN - 1)) * areas))


def tile_area_bound(tb: int, kb: int, mb: int, v: Variant = F43) -> int:
    """At least tile_area's floats for blocks of at most tb tiles (pad = tb rounded up to
    16): transformed
    inputs xi x (kb x pad + 16), GEMM results xi x (mb x TB + 16) + 8, strip alpha x
    (m x pad + 8) (strip_width: 8m x ceil(min(TB, tiles per row) / 8) + 8), staging xi x
    (pad + 8), and two roundings to SCRATCH_ALIGN_FLOATS."""
    pad = -(-tb // 16) * 16
    a = SCRATCH_ALIGN_FLOATS - 1
    return ((v.xi * (kb + mb + 1) + v.alpha * v.tile) * pad
            + v.xi * 40 + 8 + v.alpha * 8 + 2 * a)


def tile_area(xi: int, vs: str, ms: str, scr: str) -> str:
    """C expression: floats of one thread's workspace area in the tile-range split (as
    workspace_bytes): transformed inputs, GEMM results, overhang, a scratch area."""
    a = SCRATCH_ALIGN_FLOATS
    return f"(({xi} * {vs} + {xi} * {ms} + 8 + {scr} + {a - 1}) / {a} * {a})"


def filter_transform(w: np.ndarray, v: Variant = F43) -> np.ndarray:
    """(OC, IC, 3, 3) -> (XI, OC, IC): U[a * i + j] = (G w G^T)[i, j], computed in float64."""
    u = np.einsum("ap,oipq,bq->aboi", v.g, w.astype(np.float64), v.g)
    return u.reshape(v.xi, w.shape[0], w.shape[1]).astype(np.float32)


def packed_filters(w: np.ndarray, v: Variant = F43) -> np.ndarray:
    """The XI transformed OC x IC matrices, each in the micro-kernel's 6-row panels."""
    return np.concatenate([g.pack_a(u, AVX2.mr) for u in filter_transform(w, v)])


# ---------------------------------------------------------------------------------------
# C: shared helpers (input transform) and the kernel (GEMMs + output transform + epilogue)

def _input_source(v: Variant) -> str:
    a, m, t = v.alpha, v.tile, v.tag
    rows = ", ".join(f"d[{r}]" for r in range(a))
    cs = ", ".join(f"c[{j}]" for j in range(a))
    reorder = f"\n                {v.reorder_in}" if v.reorder_in else ""
    return v.bt_macro + f"""
/* The transformed inputs of n consecutive tiles of one tile row of one channel, whose {a}x{a}
 * patches start at input row iy0, column ix0: a vertical pass over the {a} input rows (zero
 * outside the input) into the strip tr ({a} rows of wb floats), then per strip row a
 * stride-{m} deinterleave and the horizontal pass, tiles in lanes. Matrix xi goes to row xi of
 * st (ls floats per row), columns col..col+n-1; a partial group of 8 tiles writes past them,
 * which the next segment overwrites (or the row's slack takes). */
static void megcc_wino{t}_segment(const float *xc, int32_t H, int32_t W, int32_t iy0,
                                 int32_t ix0, int32_t n, float *tr, int32_t wb, float *st,
                                 int32_t ls, int32_t col) {{
    const int32_t width = ({m} * n + 2 + 7) / 8 * 8;
    const float *rows[{a}];
    int32_t r, i, j, gi;
    for (r = 0; r < {a}; ++r)
        rows[r] = iy0 + r >= 0 && iy0 + r < H ? xc + (int64_t)(iy0 + r) * W : 0;
    for (j = 0; j < width; j += 8) {{
        const int32_t x0 = ix0 + j;
        __m256 d[{a}], t[{a}];
        if (x0 >= 0 && x0 + 8 <= W) {{
            for (r = 0; r < {a}; ++r) d[r] = rows[r] ? _mm256_loadu_ps(rows[r] + x0) : _mm256_setzero_ps();
        }} else {{  /* the left/right border: masked loads, zero outside the input */
            const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            const __m256i in = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(-x0), lane),
                                                   _mm256_cmpgt_epi32(_mm256_set1_epi32(W - x0), lane));
            for (r = 0; r < {a}; ++r)
                d[r] = rows[r] ? _mm256_maskload_ps(rows[r] + x0, in) : _mm256_setzero_ps();
        }}
        MEGCC_WINO{t}_BT({rows}, t);
        for (i = 0; i < {a}; ++i) _mm256_storeu_ps(tr + (int64_t)i * wb + j, t[i]);
    }}
    for (i = 0; i < {a}; ++i) {{
        const float *s = tr + (int64_t)i * wb;
        for (gi = 0; gi < n; gi += 8, s += {8 * m}) {{
            __m256 c[{a}], o[{a}];{v.deinterleave}
            MEGCC_WINO{t}_BT({cs}, o);
            for (j = 0; j < {a}; ++j) {{{reorder}
                _mm256_storeu_ps(st + (int64_t)({a} * i + j) * ls + col + gi, o[j]);
            }}
        }}
    }}
}}

/* Input transform of channels c0..c1-1 of a block of kb (x: its first one) for tiles t0..t0+nt-1 of one image into
 * the {v.xi} B operands (matrix xi at v + xi * vs: ceil(nt / 16) panels of kb x 16 floats).
 * Each channel is transformed into the staging rows st ({v.xi} x ls floats, ls >= nt rounded up
 * to 16, + 8), then copied into row k of the panels 16 columns at a time: the panels' padding
 * columns get finite values the micro-kernel computes on and the results never use.
 * scratch: the {a}-row strip ({a} x wb floats), then st. */
static void megcc_wino{t}_input(const float *x, int32_t H, int32_t W, int32_t PT, int32_t PL,
                               int32_t TX, int32_t t0, int32_t nt, int32_t c0, int32_t c1,
                               int32_t kb, float *v, int64_t vs, float *scratch, int32_t wb,
                               int32_t ls) {{
    const int32_t ps = kb * 16, np = (nt + 15) / 16;
    float *st = scratch + {a} * wb;
    int32_t c, t, xi, q;
    for (c = c0; c < c1; ++c) {{
        for (t = t0; t < t0 + nt;) {{
            const int32_t ty = t / TX, tx = t % TX;
            const int32_t n = TX - tx < t0 + nt - t ? TX - tx : t0 + nt - t;
            megcc_wino{t}_segment(x + (int64_t)c * H * W, H, W, {m} * ty - PT, {m} * tx - PL, n,
                                 scratch, wb, st, ls, t - t0);
            t += n;
        }}
        for (xi = 0; xi < {v.xi}; ++xi) {{
            const float *s = st + (int64_t)xi * ls;
            float *d = v + xi * vs + (int64_t)c * 16;
            for (q = 0; q < np; ++q, s += 16, d += ps) {{
                _mm256_storeu_ps(d, _mm256_loadu_ps(s));
                _mm256_storeu_ps(d + 8, _mm256_loadu_ps(s + 8));
            }}
        }}
    }}
}}
"""


def _input_par_source(v: Variant) -> str:
    t = v.tag
    return f"""
/* megcc_wino{t}_input for all kb channels of a block, cut into `parts` ranges of channels
 * (each writes its own rows of the B panels) run on the network's threads; part p uses the
 * scratch area at scratch + p * stride. */
typedef struct {{
    const float *x;
    float *v, *scratch;
    int64_t vs, stride;
    int32_t H, W, PT, PL, TX, t0, nt, kb, wb, ls, parts;
}} megcc_wino{t}_input_job;

static void megcc_wino{t}_input_part(void *arg, int32_t begin, int32_t end) {{
    const megcc_wino{t}_input_job *g = (const megcc_wino{t}_input_job *)arg;
    int32_t p;
    for (p = begin; p < end; ++p)
        megcc_wino{t}_input(g->x, g->H, g->W, g->PT, g->PL, g->TX, g->t0, g->nt,
                           (int32_t)((int64_t)g->kb * p / g->parts),
                           (int32_t)((int64_t)g->kb * (p + 1) / g->parts), g->kb, g->v, g->vs,
                           g->scratch + p * g->stride, g->wb, g->ls);
}}

static void megcc_wino{t}_input_par(const megcc_parallel *par, int32_t parts, const float *x,
        int32_t H, int32_t W, int32_t PT, int32_t PL, int32_t TX, int32_t t0, int32_t nt,
        int32_t kb, float *v, int64_t vs, float *scratch, int64_t stride, int32_t wb,
        int32_t ls) {{
    megcc_wino{t}_input_job g;
    g.x = x; g.v = v; g.scratch = scratch; g.vs = vs; g.stride = stride; g.H = H; g.W = W;
    g.PT = PT; g.PL = PL; g.TX = TX; g.t0 = t0; g.nt = nt; g.kb = kb; g.wb = wb; g.ls = ls;
    g.parts = parts < kb ? parts : kb;
    megcc_parallel_for(par, g.parts, megcc_wino{t}_input_part, &g);
}}
"""


_GEMMS_PAR = r"""
/* The XI independent GEMMs of one block of Winograd tiles (one per position xi of the
 * transformed tile; each writes its own mm + xi * MS), split over the network's threads by
 * xi: each GEMM is computed exactly as on one thread. */
typedef struct {
    int32_t mb, nt, C, k0, kb, OC, TB, MB;
    const float *u, *v;
    float *mm;
    int64_t VS, MS;
    const megcc_avx2_epi *e;
} megcc_wino_gemm_job;

static void megcc_wino_gemm_part(void *arg, int32_t begin, int32_t end) {
    const megcc_wino_gemm_job *g = (const megcc_wino_gemm_job *)arg;
    int32_t xi;
    for (xi = begin; xi < end; ++xi)
        megcc_avx2_gemm_block(g->mb, g->nt, g->C, g->k0, g->kb, g->u + (int64_t)xi * g->OC * g->C,
                              g->v + xi * g->VS, (int64_t)g->kb * 16, g->mm + xi * g->MS, g->TB,
                              g->MB, g->e);
}

static void megcc_wino_gemms_par(const megcc_parallel *par, int32_t n_xi, int32_t mb,
        int32_t nt, int32_t C, int32_t k0, int32_t kb, const float *u, int32_t OC,
        const float *v, int64_t VS, float *mm, int64_t MS, int32_t TB, int32_t MB,
        const megcc_avx2_epi *e) {
    megcc_wino_gemm_job g;
    g.mb = mb; g.nt = nt; g.C = C; g.k0 = k0; g.kb = kb; g.OC = OC; g.TB = TB; g.MB = MB;
    g.u = u; g.v = v; g.mm = mm; g.VS = VS; g.MS = MS; g.e = e;
    if (!par || par->threads < 2 || (int64_t)n_xi * mb * nt * kb < 65536)
        megcc_wino_gemm_part(&g, 0, n_xi);
    else
        megcc_parallel_for(par, n_xi, megcc_wino_gemm_part, &g);
}
"""


def helpers(v: Variant):
    return ((f"megcc_wino{v.tag}_at", v.at_macro), (f"megcc_wino{v.tag}_input", _input_source(v)),
            (f"megcc_wino{v.tag}_input_par", _input_par_source(v)), ("megcc_wino_gemms_par", _GEMMS_PAR))


HELPERS = helpers(F43)


def _epilogue(has_bias: bool, residual, clamp: bool, prelu: bool = False) -> str:
    """C statements finishing 8 outputs `val`: + bias, + residual (`residual`: the C
    expression loading it, or empty), clamp or a per-channel PReLU (slope vector sv)."""
    lines = []
    if has_bias:
        lines.append("val = _mm256_add_ps(val, bv);")
    if residual:
        lines.append(f"val = _mm256_add_ps(val, {residual});")
    if clamp:
        lines.append("val = _mm256_min_ps(hi, _mm256_max_ps(lo, val));")
    if prelu:
        lines.append(f"val = {prelu_vector(AVX2, 'val', 'sv', '_mm256_setzero_ps()')};")
    return " ".join(lines)


def lower_winograd(op: Op, graph: Graph, variant: str = "f43"):
    v = VARIANTS[variant]
    a, m, xi, t = v.alpha, v.tile, v.xi, v.tag
    geo = conv_problem(op, graph)
    act = op.attrs.get("activation")
    has_bias, bias_tag = bias_of(op)
    residual = bool(op.attrs.get("residual"))
    clamp, act_pass = g.vector_clamp(act, c_float)
    lo, hi = clamp or ("0.0f", "0.0f")
    tb, kb, mb = blocking(geo, v)
    wb = strip_width(geo, tb, v)
    slope = prelu_slope(op)  # a fused per-channel PReLU (passes/fuse.py)
    res_tag = ("_residual" if residual else "") + prelu_tag(op)
    most = scratch_parts(graph)  # workspace areas: at most one per thread (max_threads)
    name = f"conv2d_winograd_f{t}_f32{bias_tag}{res_tag}{activation_tag(act)}_avx2{scratch_tag(most)}"
    w = np.asarray(graph.tensors[op.inputs[1]].data, np.float32)
    wname = graph.unique_name(op.inputs[1] + f"__wino{t}_a6")
    graph.add_const(wname, packed_filters(w, v))
    finish_full = _epilogue(has_bias, residual and "_mm256_loadu_ps(rr + 8 * q)", clamp is not None,
                            bool(slope))
    finish_edge = _epilogue(has_bias, residual and "_mm256_loadu_ps(buf)", clamp is not None,
                            bool(slope))
    # bias vector and clamp bounds only where the epilogue uses them
    uses = lambda name: re.search(r"\b" + name + r"\b", finish_full + finish_edge)  # noqa: E731
    bias_decl = "    const float *bias = (const float *)in_ptrs[2];\n" if uses("bv") else ""
    bias_vector = "        const __m256 bv = _mm256_set1_ps(bias ? bias[o] : 0.0f);\n" \
        if uses("bv") else ""
    if slope:
        bias_decl += "    const float *slope = (const float *)in_ptrs[4];\n"
        bias_vector += "        const __m256 sv = _mm256_set1_ps(slope[o]);\n"
    clamp_decl = f"    const __m256 lo = _mm256_set1_ps({lo}), hi = _mm256_set1_ps({hi});\n" \
        if uses("lo") or uses("hi") else ""
    loads = ", ".join(f"_mm256_loadu_ps(mi + {j} * MS)" for j in range(a))
    cols = ", ".join(f"s[q][{i}]" for i in range(a))
    reorder = f"\n                                    {v.reorder_out}" if v.reorder_out else ""
    def block(ind: str, threads: bool) -> str:
        """The input transform, GEMMs and output transform of the tile block (b, t0, nt):
        split over the network's threads (`threads`), or all on the calling one."""
        out = (f"    if (par && par->threads > 1 && (int64_t)mb * nt >= {OUTPUT_PARALLEL_MIN})\n"
               f"        megcc_parallel_for(par, mb, {name}_out, &megcc_out);\n"
               f"    else\n        {name}_out(&megcc_out, 0, mb);") if threads else \
            f"    {name}_out(&megcc_out, 0, mb);"
        txt = f"""for (o0 = 0; o0 < OC; o0 += MB) {{
    const int32_t mb = OC - o0 < MB ? OC - o0 : MB;
    for (k0 = 0; k0 < C; k0 += KB) {{
        const int32_t kb = C - k0 < KB ? C - k0 : KB;
        if (o0 == 0 || C > KB)  /* one channel block: transformed once per tile block */
            {f"megcc_wino{t}_input_par(par, kb * nt >= {OUTPUT_PARALLEL_MIN} ? IP : 1, " if threads else f"megcc_wino{t}_input("}x + ((int64_t)b * C + k0) * H * W,
                H, W, PT, PL, TX, t0, nt, {"kb, v, VS, scr, SCR, WB, LS" if threads else "0, kb, kb, v, VS, scr, WB, LS"});
        e.accumulate = k0 > 0;
        {"megcc_wino_gemms_par(par, " if threads else "megcc_wino_gemms_par(0, "}{xi}, mb, nt, C, k0, kb, u + (int64_t)o0 * C, OC,
                             v, VS, mm, MS, TB, MB, &e);
    }}
    megcc_out.b = b; megcc_out.t0 = t0; megcc_out.nt = nt; megcc_out.o0 = o0;
{out}
}}"""
        return "".join(ind + line if line.strip() else "" for line in txt.splitlines(True))

    head = f"""    const float *x = (const float *)in_ptrs[0];
    const float *u = (const float *)in_ptrs[1];  /* {xi} transformed OC x C matrices, 6-row panels */
{bias_decl}    const float *res = {"(const float *)in_ptrs[3]" if residual else "0"};
    float *y = (float *)out_ptrs[0];
    const int32_t TX = (OW + {m - 1}) / {m}, T = TX * ((OH + {m - 1}) / {m});
    /* matrix strides + 16 floats: accesses 4 KiB apart would share one L1 set */
    const int64_t VS = (int64_t)KB * ((TB + 15) / 16 * 16) + 16, MS = (int64_t)MB * TB + 16;
    /* the input transform's scratch areas (strip {a} x WB, staging {xi} x LS), SCR apart */
    const int64_t SCR = {scratch_stride(f"{a} * WB + {xi} * LS")};
    int32_t b, t0, o0, k0;
    megcc_avx2_epi e;
    {name}_out_job megcc_out;
    megcc_out.y = y; megcc_out.res = res; megcc_out.MS = MS;
    megcc_out.TX = TX; megcc_out.TB = TB; megcc_out.OC = OC; megcc_out.OH = OH; megcc_out.OW = OW;
    megcc_out.bias = {"bias" if uses("bv") else "0"}; megcc_out.slope = {"slope" if slope else "0"};
    e.finish = 0; e.clamp = 0; e.bias_m = 0; e.bias_n = 0; e.lo = 0.0f; e.hi = 0.0f; e.slope_m = 0;
"""
    # On threads, a map of many tiles is cut into ranges of tiles, one per thread, each
    # with a workspace area of its own (transformed inputs, GEMM results, scratch): one
    # parallel job per layer, where splitting every block (input transform by channels,
    # GEMMs by xi, output transform by channels) made three jobs per 16 tiles (39 on
    # 56x56x64, 1.3-1.4x on two threads). Few tiles (14x14 and smaller) keep the block
    # split: their weights are large, and each thread would read all of them.
    def ranged(text: str) -> str:  # the tile-range part's blocks: TBP tiles (RANGE_TB)
        return re.sub(r"(?<![.\w])(TB|WB|LS)\b", r"\1P", text)  # (not megcc_out.TB)

    marker = "    /* matrix strides"
    range_head = head.replace(marker, f"""    /* blocks of at most {RANGE_TB} tiles (RANGE_TB): strip and staging widths as
     * strip_width / staging_width give them for such blocks */
    const int32_t TBP = TB < {RANGE_TB} ? TB : {RANGE_TB};
    const int32_t WBP = {8 * m} * (((TBP < TX ? TBP : TX) + 7) / 8) + 8, LSP = (TBP + 15) / 16 * 16 + 8;
""" + marker, 1)
    assert range_head != head
    range_head = range_head[:range_head.index(marker)] + ranged(range_head[range_head.index(marker):])
    tiles_part = f"""
/* Tiles [N * T * part / parts, N * T * (part + 1) / parts) of the layer, in blocks of at most
 * TBP tiles, with the workspace area of the part: every tile computed as in the one-thread
 * loop (the transforms work tile by tile, the GEMMs column by column). */
static void {name}_tiles(void *arg, int32_t begin, int32_t end) {{
    const megcc_kernel_args *job = (const megcc_kernel_args *)arg;
    void *const *in_ptrs = job->in_ptrs;
    void *const *out_ptrs = job->out_ptrs;
    const int32_t *p = job->p;
    const int32_t parts = job->parts;
@PARAMS@{range_head}    const int64_t AREA = {tile_area(xi, "VS", "MS", "SCR")};
    int32_t part;
    for (part = begin; part < end; ++part) {{
        /* workspace area of the part: transformed inputs ({xi} x VS), GEMM results ({xi} x
         * MS, + 8 floats the last 8-tile load may overhang), the input transform's scratch */
        float *v = (float *)job->workspace + part * AREA, *mm = v + {xi} * VS, *scr = mm + {xi} * MS + 8;
        const int64_t NT = (int64_t)N * T, g1 = NT * (part + 1) / parts;
        int64_t q = NT * part / parts;
        megcc_out.mm = mm;
        /* zeroed once: lanes past the last tile read these (their results are never used) */
        memset(mm + {xi} * MS, 0, sizeof(float) * (size_t)(8 + SCR));
        while (q < g1) {{
            /* a block: at most TBP tiles, within one image and the part's range */
            int32_t nt;
            b = (int32_t)(q / T);
            t0 = (int32_t)(q % T);
            nt = T - t0 < TBP ? T - t0 : TBP;
            if (nt > g1 - q) nt = (int32_t)(g1 - q);
{ranged(block("            ", False))}
            q += nt;
        }}
    }}
}}
"""
    tiles_part = tiles_part.replace("@PARAMS@", PARAMS.unpack(tiles_part + range_head))
    ranges = f"""    if (par && par->threads > 1 && (int64_t)N * T >= {TILE_PARALLEL_MIN} * {parts_with_scratch(most=most)}) {{
        megcc_kernel_args job;
        job.in_ptrs = in_ptrs; job.out_ptrs = out_ptrs; job.workspace = workspace;
        job.p = p;
        job.parts = {parts_with_scratch(most=most)};
        megcc_parallel_for(par, job.parts, {name}_tiles, &job);
    }} else """ if most > 1 else "    "  # one thread: no tile-range split (no areas for it)
    body = f"""{head}{ranges}{{
        /* workspace: transformed inputs ({xi} x VS), GEMM results ({xi} x MS, + 8 floats the
         * last 8-tile load may overhang), the input transform's IP scratch areas */
        float *v = (float *)workspace, *mm = v + {xi} * VS, *scr = mm + {xi} * MS + 8;
        const int32_t IP = {parts_with_scratch("C", most)};
        megcc_out.mm = mm;
        /* zeroed once: lanes past the last tile read these (their results are never used) */
        memset(mm + {xi} * MS, 0, sizeof(float) * (size_t)(8 + IP * SCR));
        for (b = 0; b < N; ++b)
            for (t0 = 0; t0 < T; t0 += TB) {{
                const int32_t nt = T - t0 < TB ? T - t0 : TB;
{block("                ", True)}
            }}
    }}
{scalar_activation_pass(act, "y", "(int64_t)N * OC * OH * OW") if act_pass else ""}
"""
    out_part = f"""
/* The output transform of one block of tiles, for output channels o0 + begin .. o0 + end - 1
 * of it: each channel reads its own rows of the GEMM results and writes its own output
 * plane, so the channels are split over the network's threads. */
typedef struct {{
    float *y;
    const float *res, *bias, *slope, *mm;
    int64_t MS;
    int32_t TX, TB, OC, OH, OW, b, t0, nt, o0;
}} {name}_out_job;

static void {name}_out(void *arg, int32_t begin, int32_t end) {{
    const {name}_out_job *g = (const {name}_out_job *)arg;
    float *y = g->y;
    const float *res = g->res, *mm = g->mm;
    {"const float *bias = g->bias;" if uses("bv") else ""}{"const float *slope = g->slope;" if slope else ""}
    const int64_t MS = g->MS;
    const int32_t TX = g->TX, TB = g->TB, OC = g->OC, OH = g->OH, OW = g->OW, b = g->b,
                  t0 = g->t0, nt = g->nt, o0 = g->o0;
{clamp_decl}    int32_t o, t, gi, r, q;
    for (o = o0 + begin; o < o0 + end; ++o) {{
{bias_vector}        float *yc = y + ((int64_t)b * OC + o) * OH * OW;
        const float *rc = res ? res + ((int64_t)b * OC + o) * OH * OW : 0;
        for (t = t0; t < t0 + nt;) {{
            const int32_t ty = t / TX, tx = t % TX;
            const int32_t n = TX - tx < t0 + nt - t ? TX - tx : t0 + nt - t;
            for (gi = 0; gi < n; gi += 8) {{
                const float *mg = mm + (int64_t)(o - o0) * TB + (t - t0) + gi;
                const int32_t ox = {m} * (tx + gi);
                /* outputs of this row run: {m} per tile, cut at OW */
                const int32_t c2 = OW - ox < {m} * (n - gi) ? OW - ox : ({m} * (n - gi) < {8 * m} ? {m} * (n - gi) : {8 * m});
                __m256 s[{m}][{a}], z[{m}][{m}];
                int32_t i;
                for (i = 0; i < {a}; ++i) {{  /* A^T along the rows of the tiles */
                    __m256 um[{m}];
                    const float *mi = mg + {a} * i * MS;
                    MEGCC_WINO{t}_AT({loads}, um);
                    for (q = 0; q < {m}; ++q) s[q][i] = um[q];
                }}
                for (q = 0; q < {m}; ++q) {{  /* then along column q: rows 0..{m - 1} */
                    __m256 om[{m}];
                    MEGCC_WINO{t}_AT({cols}, om);
                    for (r = 0; r < {m}; ++r) {{
                        z[r][q] = om[r];{reorder}
                    }}
                }}
                for (r = 0; r < {m} && {m} * ty + r < OH; ++r) {{
                    __m256 row[{m}];
                    float *yr = yc + (int64_t)({m} * ty + r) * OW + ox;
                    const float *rr = rc ? rc + (int64_t)({m} * ty + r) * OW + ox : 0;{v.interleave}
                    for (q = 0; q < {m}; ++q) {{
                        __m256 val = row[q];
                        if (8 * q + 8 <= c2) {{
                            {finish_full}
                            _mm256_storeu_ps(yr + 8 * q, val);
                        }} else if (8 * q < c2) {{  /* edge: only c2 - 8q outputs */
                            float buf[8];
                            const int32_t left = c2 - 8 * q;
                            int32_t e2;
                            for (e2 = 0; e2 < 8; ++e2) buf[e2] = rr && e2 < left ? rr[8 * q + e2] : 0.0f;
                            {finish_edge}
                            _mm256_storeu_ps(buf, val);
                            for (e2 = 0; e2 < left; ++e2) yr[8 * q + e2] = buf[e2];
                        }}
                    }}
                }}
            }}
            t += n;
        }}
    }}
}}
"""
    kernel = make_kernel(name, body, PARAMS, ("math",) + helpers(v), isa=AVX2.isa,
                         prelude=out_part + (tiles_part if most > 1 else ""))
    params = PARAMS.pack(**conv_head_values(geo, 1), TB=tb, KB=kb, MB=mb, WB=wb,
                         LS=staging_width(tb))
    inputs = [op.inputs[0], wname, op.inputs[2] if has_bias else ""]
    if residual or slope:
        inputs.append(op.inputs[3] if residual else "")
    if slope:
        inputs.append(slope)
    tx, ty = tiles(geo, v)
    ws = workspace_bytes(geo, tb, kb, mb, v, most)
    return [Instr(kernel, inputs, [op.outputs[0]], params, workspace_bytes=ws,
                  note=f"AVX2 Winograd F({m!r}x{m!r},3x3): {tx!r}x{ty!r} tiles, filters transformed and "
                       f"packed at compile time, {xi} GEMMs (M={geo['oc']!r}, N={tx * ty!r}, "
                       f"K={geo['c']!r}) in blocks of {tb!r} tiles x {kb!r} channels x {mb!r} "
                       "outputs")]


# Winograd, per variant: cycles per (channel, tile) of the input transform and per (output
# channel, tile) of the output transform (these model cycles are the GEMM model's: about two
# of the machine's); bytes per cycle the transformed weight matrices stream at from memory
# (they are read once per block of tiles). Calibrated on the 3x3 layers of ResNet-18/50 and
# VGG-19 (56x56x64 ... 7x7x512, 224x224x64 ... 14x14x512) with `megcc run --profile`.
WINO_INPUT = {"f43": 60.0, "f23": 25.0}
WINO_OUTPUT = {"f43": 65.0, "f23": 25.0}
WINO_STREAM = 1.5
LLC_BYTES = 4 << 20  # weights up to this size are re-read from L3, larger ones from memory


def winograd_cycles(geo, variant: str, isa: IsaSpec) -> float:
    """One image: XI GEMMs per block of tiles (M = OC, N = tiles in the block, K = C) plus
    the transforms (the input one redone per output-channel block when C needs several
    channel blocks) plus streaming the transformed weights (XI/9 x the direct ones): what
    makes small feature maps with many channels (7x7x512: 4 tiles of 4x4) slower with
    F(4,3) than with F(2,3) or even im2col."""
    v = VARIANTS[variant]
    tb, kb, mb = blocking(geo, v)
    tx, ty = tiles(geo, v)
    t, c, oc = tx * ty, geo["c"], geo["oc"]
    full, last = divmod(t, tb)
    blocks = [tb] * full + ([last] if last else [])
    nkb, nmb = -(-c // kb), -(-oc // mb)
    gemm = v.xi * sum(gemm_cycles(oc, n, c, 0.0, 1, isa.vec("f32").gemm, isa.core) + (nkb - 1) * oc * n / 8 * 2 for n in blocks)
    redo = nmb if nkb > 1 else 1
    transforms = t * (c * WINO_INPUT[variant] * redo + oc * WINO_OUTPUT[variant])
    wbytes = v.xi * oc * c * 4
    # in a whole model the weights are cold: they come from memory once, and again for
    # every further block of tiles if they do not stay in the cache
    stream = wbytes / WINO_STREAM * (1 if wbytes <= LLC_BYTES else len(blocks))
    compute = gemm + transforms
    return max(compute, stream) + 0.1 * min(compute, stream)  # mostly overlapped


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    reason = vector_conv_rejection(op, graph)
    if reason:
        return reason
    if graph.tensors[op.inputs[1]].dtype != "float32":  # transforms float32 weights only
        return "float16 weights (enable_compress_fp16)"
    return None if applicable(conv_problem(op, graph)) else "not a 3x3 stride-1 group-1 conv"


def _cost(op: Op, graph: Graph, isa: IsaSpec, variant: str) -> float:
    geo = conv_problem(op, graph)
    return geo["n"] * winograd_cycles(geo, variant, isa)


def _register(variant: str, label: str) -> None:
    @implements("Conv", dtypes=F32, layout="nchw", requires="avx2", applies=_applies,
                cost=lambda op, graph, isa: _cost(op, graph, isa, variant),
                label=f"avx2 Winograd {label}", name=f"conv.winograd_avx2_f32.{variant}")
    def emit(op: Op, graph: Graph, isa: IsaSpec):
        return lower_winograd(op, graph, variant)


_register("f43", "F(4,3)")
_register("f23", "F(2,3)")
