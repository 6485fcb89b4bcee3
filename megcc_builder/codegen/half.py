"""float16 (IEEE binary16) weights read by float32 kernels (`enable_compress_fp16`).

Every half is exactly a float, so widening is exact: a kernel that widens its fp16
weights computes bit for bit what it computes on those weights stored as float32.

- `megcc_widen_f16`: n halves into floats, 8 at a time with F16C (`vcvtph2ps`, part of
  x86-64-v3), 4 at a time with NEON (`fcvtl` on AArch64; `vcvt.f32.f16` on ARMv7 when the
  FPU has the half-precision extension, as neon-vfpv4 does), and for the rest and
  elsewhere the portable `megcc_f16_to_f32` of helpers.py (integer arithmetic: exact, no
  dependence on the FPU's flush-to-zero mode).
  Kernels call it on the block of weights they are about to use (a packed GEMM panel
  block, a depthwise filter, a few GEMM rows), into their workspace or the stack.
"""
from __future__ import annotations

HALF_HELPERS = [
    ("megcc_widen_f16", r"""
/* n halves -> floats (exact), vectorised where the level converts halves in hardware. */
#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#define MEGCC_WIDEN_F16_STEP 8
#define MEGCC_WIDEN_F16(h, f) _mm256_storeu_ps((f), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h))))
#elif defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#define MEGCC_WIDEN_F16_STEP 4
#define MEGCC_WIDEN_F16(h, f) vst1q_f32((f), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h))))
#elif defined(__ARM_NEON) && defined(__ARM_NEON_FP) && (__ARM_NEON_FP & 2) && defined(__GNUC__)
/* ARMv7 NEON with the half-precision extension (-mfpu=neon-vfpv4/neon-fp16): GCC declares
 * vcvt_f32_f16 only with -mfp16-format=ieee, so the instruction is written directly */
#include <arm_neon.h>
#define MEGCC_WIDEN_F16_STEP 4
#define MEGCC_WIDEN_F16(h, f) do { float32x4_t megcc_w_; \
    __asm__("vcvt.f32.f16 %q0, %P1" : "=w"(megcc_w_) : "w"(vld1_u16(h))); \
    vst1q_f32((f), megcc_w_); } while (0)
#endif
static void megcc_widen_f16(const uint16_t *h, float *f, int64_t n) {
    int64_t i = 0;
#ifdef MEGCC_WIDEN_F16_STEP
    for (; i + MEGCC_WIDEN_F16_STEP <= n; i += MEGCC_WIDEN_F16_STEP) MEGCC_WIDEN_F16(h + i, f + i);
#endif
    for (; i < n; ++i) f[i] = megcc_f16_to_f32(h[i]);
}
"""),
]


def weight_pointer(name: str, index: int, fp16: bool) -> str:
    """The C declaration of a kernel's weight operand: `const float *name` or, for fp16
    weights, `const uint16_t *name` (IEEE half bits, widened with megcc_widen_f16)."""
    ctype = "uint16_t" if fp16 else "float"
    return f"const {ctype} *{name} = (const {ctype} *)in_ptrs[{index}];"
