"""The x86-64 levels: the SSE2 baseline, x86-64-v3 (AVX2 + FMA), x86-64-v4 (AVX-512) and
x86_64-vnni (AVX-512 + VNNI).

- x86_64: portable C, which the C compiler vectorises for SSE2 itself;
- x86_64-v3: AVX2+FMA kernels (`*_avx2`): 16 ymm registers, a 6x16 GEMM tile (12
  accumulators, A broadcast per row);
- x86_64-v4: accepted on AVX-512 machines; uses the AVX2+FMA kernels (a subset of v4): there
  are no 512-bit kernels yet;
- x86_64-vnni: x86-64-v4 plus AVX512-VNNI (Cascade Lake and later Xeons, AMD Zen 4 and
  later EPYC/Ryzen): every kernel of x86_64-v4, and int8 kernels on `vpdpbusd` (`*_vnni`:
  four u8 x s8 products summed into an int32 lane with no intermediate saturation, so exact
  for full-range int8 weights, unlike AVX2's `vpmaddubsw`), used at 256 bits (AVX512VL) so
  the AVX2 kernels' 6x16 tile shape carries over.
"""
from __future__ import annotations

from ..codegen.vector import Simd, VecOps
from .description import Core, IsaSpec, KernelTag, VectorSet


AVX2_TAG = KernelTag("avx2", "defined(__AVX2__) && defined(__FMA__)",
                     "-mavx2 -mfma (or -march=x86-64-v3)", "immintrin.h")

# int8 kernels on vpdpbusd: 256-bit forms need AVX512VL, byte masks AVX512BW
VNNI_TAG = KernelTag("vnni", "defined(__AVX512VNNI__) && defined(__AVX512VL__) "
                     "&& defined(__AVX512BW__)",
                     "-march=x86-64-v4 -mavx512vnni", "immintrin.h")

AVX2 = Simd("avx2", "avx2", "AVX2", 8, "__m256", 6, 16, False, "_mm256_setzero_ps()",
            "_mm256_loadu_ps({p})", "_mm256_storeu_ps({p}, {v})", "_mm256_set1_ps({x})",
            "_mm256_broadcast_ss({p})", "_mm256_fmadd_ps({a}, {b}, {c})",
            "_mm256_add_ps({a}, {b})", "_mm256_max_ps({a}, {b})", "_mm256_min_ps({a}, {b})",
            "megcc_avx2_even8({p})", False, _mul="_mm256_mul_ps({a}, {b})",
            _odd="megcc_avx2_odd8({p})", _keep="megcc_avx2_keep({v});", _hload="_mm_loadu_ps({p})",
            _hstore="_mm_storeu_ps({p}, {v})",
            _heven="_mm_shuffle_ps(_mm_loadu_ps({p}), _mm_loadu_ps({p} + 4), 0x88)",
            _hodd="_mm_shuffle_ps(_mm_loadu_ps({p}), _mm_loadu_ps({p} + 4), 0xDD)")

AVX2_MATH = VecOps(AVX2, "__m256i", "_mm256_fmadd_ps({a}, {b}, {c})", "_mm256_sub_ps({a}, {b})",
               "_mm256_div_ps({a}, {b})", "_mm256_castps_si256({0})", "_mm256_castsi256_ps({0})",
               "_mm256_add_epi32({0}, {1})", "_mm256_sub_epi32({0}, {1})",
               "_mm256_set1_epi32({0})", "_mm256_srai_epi32({0}, 1)",
               "_mm256_slli_epi32({0}, 23)",
               # max_ps/min_ps return their second operand when one is NaN
               "_mm256_min_ps({2}, _mm256_max_ps({1}, {0}))",
               "_mm256_andnot_ps(_mm256_set1_ps(-0.0f), {0})",
               "_mm256_xor_ps({0}, _mm256_set1_ps(-0.0f))",
               "_mm256_cmp_ps({0}, {1}, _CMP_LT_OQ)", "_mm256_cmp_ps({0}, {1}, _CMP_GE_OQ)",
               "_mm256_cmp_ps({0}, {1}, _CMP_GT_OQ)", "_mm256_blendv_ps({2}, {1}, {0})",
               "_mm256_or_ps({0}, _mm256_and_ps({1}, _mm256_set1_ps(-0.0f)))",
               "megcc_avx2_vmax({0}, {1})", "megcc_avx2_vmin({0}, {1})",
               "_mm256_max_ps(_mm256_setzero_ps(), {0})",
               _mant="_mm256_or_ps(_mm256_and_ps({0}, _mm256_castsi256_ps("
                     "_mm256_set1_epi32(0x807fffff))), _mm256_set1_ps(0.5f))",
               _expo="_mm256_srli_epi32(_mm256_castps_si256({0}), 23)",
               _i2f="_mm256_cvtepi32_ps({0})", _eq="_mm256_cmp_ps({0}, {1}, _CMP_EQ_OQ)",
               mtype="__m256")


# Two 256-bit FMA pipes, of which the micro-kernel was measured to sustain about one FMA per
# cycle once loads and broadcasts are counted. Element-wise: from `megcc run --profile` over
# 1x256x56x56 (glibc expf ~11 cycles per element, tanhf ~55, the vector kernels ~1.6 for one
# exp: memory-bound); the libm figure is the cheap end, so that a single exp decides. Equal
# cheap-op costs: the compiler vectorises the portable loops itself, and the vector kernel's
# per-row overhead leaves them portable.
X86_CORE = Core(portable_conv=0.45, portable_depthwise=1.0, portable_fc=0.5,
                fma_per_cycle=1.0, min_k_step=4.0, stream_bytes=8.0,
                elementwise_portable=(0.15, 12.0), elementwise_vector=(0.15, 1.5))

AVX2_F32 = VectorSet(gemm=AVX2, direct=AVX2, elementwise=AVX2, math=AVX2_MATH)

X86_64 = IsaSpec("x86_64", "x86-64 baseline (SSE2): portable C, vectorised by the C compiler",
                 "x86_64", frozenset({"sse2"}))
X86_64_V3 = IsaSpec("x86_64-v3", "AVX2 + FMA kernels (*_avx2)", "x86_64",
                    frozenset({"sse2", "avx", "avx2", "fma"}), ("-march=x86-64-v3",),
                    (AVX2_TAG,), {"f32": AVX2_F32}, X86_CORE)
X86_64_V4 = IsaSpec("x86_64-v4", "AVX-512 machines: the AVX2 + FMA kernels (no 512-bit ones yet)",
                    "x86_64", X86_64_V3.features | {"avx512f", "avx512bw", "avx512dq", "avx512vl"},
                    ("-march=x86-64-v4",), (AVX2_TAG,), {"f32": AVX2_F32}, X86_CORE)
X86_64_VNNI = IsaSpec("x86_64-vnni",
                      "AVX-512 + VNNI: x86_64-v4's kernels and int8 ones on vpdpbusd (*_vnni)",
                      "x86_64", X86_64_V4.features | {"avx512_vnni"},
                      ("-march=x86-64-v4", "-mavx512vnni"), (AVX2_TAG, VNNI_TAG),
                      {"f32": AVX2_F32}, X86_CORE)
