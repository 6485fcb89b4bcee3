"""C helper functions shared by kernels.

Each entry is one definition, keyed by the symbol it defines, in dependency order. The
emitter puts a helper into kernels.c only if a kernel (or an emitted helper) uses its
symbol, so no unused static function reaches the compiler (clang warns about those).
"""
from .half import HALF_HELPERS

HELPERS = [
    ("megcc_maxf", r"""
static inline float megcc_maxf(float a, float b) { return a > b ? a : (b != b ? b : (a != a ? a : b)); }
"""),
    ("megcc_minf", r"""
static inline float megcc_minf(float a, float b) { return a < b ? a : (b != b ? b : (a != a ? a : b)); }
"""),
    ("megcc_maxd", r"""
static inline double megcc_maxd(double a, double b) { return a > b ? a : (b != b ? b : (a != a ? a : b)); }
"""),
    ("megcc_mind", r"""
static inline double megcc_mind(double a, double b) { return a < b ? a : (b != b ? b : (a != a ? a : b)); }
"""),
    ("megcc_sigmoidf", r"""
static inline float megcc_sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }
"""),
    ("megcc_softplusf", r"""
static inline float megcc_softplusf(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
"""),
    ("megcc_signf", r"""
static inline float megcc_signf(float x) { return (float)((x > 0.0f) - (x < 0.0f)); }
"""),
    ("megcc_powf", r"""
static inline float megcc_powf(float a, float b) {
    if (b == 2.0f) return a * a;
    if (b == 0.5f) return sqrtf(a);
    return powf(a, b);
}
"""),
    ("megcc_round_half_even", r"""
static inline float megcc_round_half_even(float x) {
    float r = floorf(x + 0.5f);
    if (r - x == 0.5f && fmodf(r, 2.0f) != 0.0f) r -= 1.0f;
    return r;
}
"""),
    ("megcc_div_trunc", r"""
#define megcc_div_trunc(a, b) ((b) == 0 ? 0 : (a) / (b))
"""),
    ("megcc_mod_floor", r"""
#define megcc_mod_floor(a, b) ((b) == 0 ? 0 : ((a) % (b) != 0 && (((a) % (b) < 0) != ((b) < 0)) ? (a) % (b) + (b) : (a) % (b)))
"""),
    ("megcc_div_floor", r"""
#define megcc_div_floor(a, b) ((b) == 0 ? 0 : ((a) - megcc_mod_floor(a, b)) / (b))
"""),
    ("megcc_f32_from_bits", r"""
static inline float megcc_f32_from_bits(int32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
"""),
    ("megcc_gemm_nn", r"""
/* C[M,N] (+)= A[M,K] * B[K,N]; A addressed with strides (sa_m, sa_k) so transposed weights
 * need no copy, B and C row-major with leading dimensions. Four rows of A are processed
 * together and the j loop is unit-stride so the C compiler vectorises it; K and N are
 * blocked so the B panel stays in cache. */
static inline void megcc_gemm_nn(int32_t M, int32_t N, int32_t K, const float *A, int32_t sa_m,
                          int32_t sa_k, const float *B, int32_t ldb, float *C, int32_t ldc,
                          int accumulate) {
    const int32_t NB = 256, KB = 128;
    int32_t i, j, k, j0, k0;
    if (!accumulate)
        for (i = 0; i < M; ++i) memset(C + (int64_t)i * ldc, 0, sizeof(float) * (size_t)N);
    for (j0 = 0; j0 < N; j0 += NB) {
        int32_t jn = N - j0 < NB ? N - j0 : NB;
        for (k0 = 0; k0 < K; k0 += KB) {
            int32_t kn = K - k0 < KB ? K - k0 : KB;
            for (i = 0; i + 3 < M; i += 4) {
                float *c0 = C + (int64_t)i * ldc + j0, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
                for (k = k0; k < k0 + kn; ++k) {
                    const float *a = A + (int64_t)i * sa_m + (int64_t)k * sa_k;
                    const float a0 = a[0], a1 = a[sa_m], a2 = a[2 * sa_m], a3 = a[3 * sa_m];
                    const float *b = B + (int64_t)k * ldb + j0;
                    for (j = 0; j < jn; ++j) {
                        const float bj = b[j];
                        c0[j] += a0 * bj; c1[j] += a1 * bj; c2[j] += a2 * bj; c3[j] += a3 * bj;
                    }
                }
            }
            for (; i < M; ++i) {
                float *c0 = C + (int64_t)i * ldc + j0;
                for (k = k0; k < k0 + kn; ++k) {
                    const float a0 = A[(int64_t)i * sa_m + (int64_t)k * sa_k];
                    const float *b = B + (int64_t)k * ldb + j0;
                    for (j = 0; j < jn; ++j) c0[j] += a0 * b[j];
                }
            }
        }
    }
}
"""),
    ("megcc_gemm_nt", r"""
/* C[M,N] (+)= A[M,K] * B[N,K]^T: dot products along K, the fast form when B is stored
 * transposed (fully-connected weights) and M is small. */
static inline void megcc_gemm_nt(int32_t M, int32_t N, int32_t K, const float *A, int32_t lda,
                          const float *B, int32_t ldb, float *C, int32_t ldc, int accumulate) {
    int32_t i, j, k;
    for (i = 0; i < M; ++i) {
        const float *a = A + (int64_t)i * lda;
        for (j = 0; j < N; ++j) {
            const float *b = B + (int64_t)j * ldb;
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
            for (k = 0; k + 3 < K; k += 4) {
                s0 += a[k] * b[k]; s1 += a[k + 1] * b[k + 1];
                s2 += a[k + 2] * b[k + 2]; s3 += a[k + 3] * b[k + 3];
            }
            for (; k < K; ++k) s0 += a[k] * b[k];
            if (accumulate) C[(int64_t)i * ldc + j] += (s0 + s1) + (s2 + s3);
            else C[(int64_t)i * ldc + j] = (s0 + s1) + (s2 + s3);
        }
    }
}
"""),
    ("megcc_f16_to_f32", r"""
/* IEEE binary16 <-> binary32 in portable C; float -> half rounds to nearest even. */
static inline float megcc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t bits;
    float f;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  /* subnormal: normalise into a binary32 normal */
            exp = 113;
            while (!(mant & 0x400u)) { mant <<= 1; --exp; }
            bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    memcpy(&f, &bits, sizeof f);
    return f;
}
"""),
    ("megcc_f32_to_f16", r"""
static inline uint16_t megcc_f32_to_f16(float f) {
    uint32_t x, mant, half, rem, sign;
    int32_t exp;
    memcpy(&x, &f, sizeof x);
    sign = (x >> 16) & 0x8000u;
    mant = x & 0x7fffffu;
    exp = (int32_t)((x >> 23) & 0xffu);
    if (exp == 255) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0u));
    exp = exp - 127 + 15;
    if (exp >= 31) return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {  /* half subnormal (or zero) */
        uint32_t shift, halfway;
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        shift = (uint32_t)(14 - exp);
        half = mant >> shift;
        rem = mant & ((1u << shift) - 1u);
        halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
        return (uint16_t)(sign | half);
    }
    half = ((uint32_t)exp << 10) | (mant >> 13);
    rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;  /* carry may reach inf */
    return (uint16_t)(sign | half);
}
"""),
    ("megcc_maxd", r"""
static inline double megcc_maxd(double a, double b) { return a > b ? a : (b != b ? b : (a != a ? a : b)); }
"""),
    ("megcc_mind", r"""
static inline double megcc_mind(double a, double b) { return a < b ? a : (b != b ? b : (a != a ? a : b)); }
"""),
    ("megcc_sigmoidd", r"""
static inline double megcc_sigmoidd(double x) { return 1.0 / (1.0 + exp(-x)); }
"""),
    ("megcc_softplusd", r"""
static inline double megcc_softplusd(double x) { return x > 30.0 ? x : log1p(exp(x)); }
"""),
    ("megcc_signd", r"""
static inline double megcc_signd(double x) { return (double)((x > 0.0) - (x < 0.0)); }
"""),
    ("megcc_powd", r"""
static inline double megcc_powd(double a, double b) { return pow(a, b); }
"""),
    ("megcc_round_half_even_d", r"""
static inline double megcc_round_half_even_d(double x) {
    double r = floor(x + 0.5);
    if (r - x == 0.5 && fmod(r, 2.0) != 0.0) r -= 1.0;
    return r;
}
"""),
    ("megcc_powi", r"""
static inline int64_t megcc_powi(int64_t a, int64_t b) {
    int64_t r = 1;
    if (b < 0) return a == 1 ? 1 : (a == -1 ? (b % 2 ? -1 : 1) : 0);
    while (b) { if (b & 1) r *= a; a *= a; b >>= 1; }
    return r;
}
"""),
    ("megcc_div_rem", r"""
#define megcc_div_rem(a, b) ((b) == 0 ? 0 : (a) % (b))
"""),
    ("megcc_d2i_int64", r"""
#define megcc_d2i_int64(v) ((int64_t)(v))
"""),
    ("megcc_d2i_uint64", r"""
#define megcc_d2i_uint64(v) ((uint64_t)(v))
"""),
    ("megcc_d2i_int32", r"""
#define megcc_d2i_int32(v) ((int32_t)(int64_t)(v))
"""),
    ("megcc_d2i_uint32", r"""
#define megcc_d2i_uint32(v) ((uint32_t)(int64_t)(v))
"""),
    ("megcc_d2i_int16", r"""
#define megcc_d2i_int16(v) ((int16_t)(int64_t)(v))
"""),
    ("megcc_d2i_uint16", r"""
#define megcc_d2i_uint16(v) ((uint16_t)(int64_t)(v))
"""),
    ("megcc_d2i_int8", r"""
#define megcc_d2i_int8(v) ((int8_t)(int64_t)(v))
"""),
    ("megcc_d2i_uint8", r"""
#define megcc_d2i_uint8(v) ((uint8_t)(int64_t)(v))
"""),
    ("megcc_mod_floorf", r"""
/* Python/NumPy float modulo: the result takes the sign of the divisor. */
static inline float megcc_mod_floorf(float a, float b) {
    float m = fmodf(a, b);
    if (m != 0.0f) { if ((b < 0.0f) != (m < 0.0f)) m += b; }
    else m = copysignf(0.0f, b);
    return m;
}
"""),
    ("megcc_mod_floord", r"""
static inline double megcc_mod_floord(double a, double b) {
    double m = fmod(a, b);
    if (m != 0.0) { if ((b < 0.0) != (m < 0.0)) m += b; }
    else m = copysign(0.0, b);
    return m;
}
"""),
    ("megcc_shl", r"""
/* Shifts by a negative amount or by the bit width or more give 0 (left) or the sign fill
 * (right), like ONNX's reference; left shifts go through uint64_t (no signed overflow). */
#define megcc_shl(a, b) ((b) < 0 || (b) >= 8 * (int64_t)sizeof(a) ? 0 : (int64_t)((uint64_t)(a) << (b)))
"""),
    ("megcc_shr", r"""
#define megcc_shr(a, b) ((b) < 0 || (b) >= 8 * (int64_t)sizeof(a) ? ((a) < 1 && (a) != 0 ? -1 : 0) : ((a) >> (b)))
"""),
]

# float16 weights (enable_compress_fp16): codegen/half.py
HELPERS += HALF_HELPERS

PRELUDE = """#include <math.h>
#include <stdint.h>
#include <string.h>
#include "megcc/kernel_abi.h"
"""
