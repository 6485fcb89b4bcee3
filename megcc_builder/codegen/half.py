"""float16 (IEEE binary16) weights read by float32 kernels (`enable_compress_fp16`).

Every half is exactly a float, so widening is exact: a kernel that widens its fp16
weights computes bit for bit what it computes on those weights stored as float32.

- `megcc_f16_to_f32`: one half, portable C99 integer arithmetic (no half type, no FPU
  mode dependence: subnormal halves are normalised by shifting, not by a float multiply
  that flush-to-zero would break);
- `megcc_widen_f16`: n halves into floats, 8 at a time with F16C (`vcvtph2ps`, part of
  x86-64-v3), 4 at a time with NEON (`fcvtl` on AArch64; `vcvt.f32.f16` on ARMv7 when the
  FPU has the half-precision extension, as neon-vfpv4 does), the scalar conversion for the
  rest and elsewhere.
  Kernels call it on the block of weights they are about to use (a packed GEMM panel
  block, a depthwise filter, a few GEMM rows), into their workspace or the stack.
"""
from __future__ import annotations

HALF_HELPERS = [
    ("megcc_f16_to_f32", r"""
/* One IEEE half (bits) -> float, exactly. */
static inline float megcc_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
    float f;
    if (e == 0x1fu) {
        bits = sign | 0x7f800000u | (m << 13);          /* inf, NaN (payload kept) */
    } else if (e != 0) {
        bits = sign | ((e + 112u) << 23) | (m << 13);   /* normal: rebias 15 -> 127 */
    } else if (m == 0) {
        bits = sign;                                    /* +-0 */
    } else {                                            /* subnormal: m * 2^-24 */
        e = 113u;
        while (!(m & 0x400u)) { m <<= 1; --e; }
        bits = sign | (e << 23) | ((m & 0x3ffu) << 13);
    }
    memcpy(&f, &bits, sizeof f);
    return f;
}
"""),
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


def weight_pointer(name: str, index: int, fp16: bool, what: str = "weights") -> str:
    """The C declaration of a kernel's weight operand: `const float *name` or, for fp16
    weights, `const uint16_t *name` (IEEE half bits, widened with megcc_widen_f16)."""
    ctype = "uint16_t" if fp16 else "float"
    return f"const {ctype} *{name} = (const {ctype} *)in_ptrs[{index}];"
