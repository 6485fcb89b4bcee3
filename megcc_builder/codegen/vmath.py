"""Vector transcendental functions (exp, sigmoid, tanh) for AVX2 and NEON, as generated C.

One generator, spelled per ISA through `VecOps` (a few more intrinsics than simd.Simd has:
integer lanes, compares, selects). The helpers are static inline C functions named
megcc_<simd name>_v<fn> (megcc_avx2_vexp, megcc_neon_vexp, megcc_neon64_vexp), emitted once
per kernels.c by the kernels that list them (Kernel.helpers).

exp(x): Cody-Waite range reduction x = n*ln2 + r, |r| <= ln2/2, with n = round(x*log2(e))
found by the 1.5*2^23 trick (the FMA result's low mantissa bits *are* n, so no rounding or
conversion instruction is needed: ARMv7 NEON has neither), ln2 split in a part exact in
n*ln2_hi and a correction; exp(r) by Cephes' degree-6 minimax polynomial (1 + r + r^2 P(r));
then the scale 2^n applied as two factors 2^(n/2) and 2^(n - n/2), each a normal float, so
results down to the denormals round once (like expf) and n = 128 overflows to +inf by itself.
x is first clamped to [-104, 89] (exp is 0 below, +inf above; NaN passes the clamp, and NaN
arithmetic then gives NaN). ARMv7 NEON flushes denormals to zero: there results below
2^-126 are 0 (an absolute error under 1.2e-38).

softplus(x) = log1p(exp(x)) through a vector log (Cephes logf) of w = 1 + exp(x), corrected
by exp(x) / (w - 1); x itself above 20 like the portable megcc_softplusf.
sigmoid(x) = 1 / (1 + exp(-x)) (saturates to 0 and 1 through exp's inf / 0).
tanh(x): for |x| < 0.625 Cephes' odd polynomial x + x^3 P(x^2) (no cancellation near 0),
else sign(x) * (1 - 2 / (exp(2|x|) + 1)), which saturates to +-1 as exp overflows.
Division: AVX2 and AArch64 divide; ARMv7 NEON has no vector division, so the reciprocal
estimate refined by two Newton steps (about 1 ulp) multiplies.

Accuracy against float64 numpy over 2M+1 points of [-100, 100], normal-range results
(tests/test_kernels_vmath.py checks these bounds and prints the maxima with -s):
exp 1.23 ulp (all ISAs), sigmoid 3.05 ulp (ARMv7: 4.09, Newton reciprocal), tanh 1.23 ulp
(ARMv7: 1.71), softplus 2.99 ulp (ARMv7: 4.06); infinities, zeros and NaN where the float32
result has them; results in the denormal range within one denormal ulp (0 on ARMv7).
"""
from __future__ import annotations

from typing import List, Tuple

from .vector import VecOps


# Cephes expf / tanhf coefficients
EXP_POLY = ("1.9875691500E-4f", "1.3981999507E-3f", "8.3334519073E-3f", "4.1665795894E-2f",
            "1.6666665459E-1f", "5.0000001201E-1f")
LOG_POLY = ("7.0376836292E-2f", "-1.1514610310E-1f", "1.1676998740E-1f", "-1.2420140846E-1f",
            "1.4249322787E-1f", "-1.6668057665E-1f", "2.0000714765E-1f", "-2.4999993993E-1f",
            "3.3333331174E-1f")
TANH_POLY = ("-5.70498872745E-3f", "2.06390887954E-2f", "-5.37397155531E-2f",
             "1.33314422036E-1f", "-3.33332819422E-1f")


def _horner(v: VecOps, coeffs, x: str) -> List[str]:
    lines = [f"    p = {v.c(coeffs[0])};"]
    lines += [f"    p = {v.fma('p', x, v.c(c))};" for c in coeffs[1:]]
    return lines


def helpers(v: VecOps) -> List[Tuple[str, str]]:
    """(name, C source) of the vector exp, sigmoid, tanh (and their support) of an ISA."""
    V, n = v.vtype, v.name
    out = []
    if n == "avx2":
        # NaN-propagating max/min like megcc_maxf/megcc_minf (max_ps alone returns its second
        # operand when either is NaN)
        for f, op in (("vmax", "max"), ("vmin", "min")):
            out.append((f"megcc_avx2_{f}", f"""
static inline __m256 megcc_avx2_{f}(__m256 a, __m256 b) {{
    return _mm256_blendv_ps(_mm256_{op}_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}}
"""))
    if not v._div:
        out.append((f"megcc_{n}_vdiv", f"""
/* a / b without a vector divide: reciprocal estimate (8 bits) + two Newton steps */
static inline {V} megcc_{n}_vdiv({V} a, {V} b) {{
    {V} r = vrecpeq_f32(b);
    r = vmulq_f32(r, vrecpsq_f32(b, r));
    r = vmulq_f32(r, vrecpsq_f32(b, r));
    return vmulq_f32(a, r);
}}
"""))
    def pow2(k: str) -> str:  # 2^k as a float, for k in [-126, 127]
        return v.as_f(v.shl23(v.add_i(k, v.set1_i("127"))))

    magic = v.c("12582912.0f")  # 1.5 * 2^23: adding it rounds to an integer in the low bits
    exp = [f"static inline {V} {v.fn('exp')}({V} x) {{",
           f"    {V} t, k, r, p;",
           f"    {v.itype} m, m1;",
           f"    x = {v.clamp('x', v.c('-104.0f'), v.c('89.0f'))};",
           f"    t = {v.fma('x', v.c('1.44269504088896341f'), magic)};",
           f"    k = {v.sub('t', magic)};  /* n = round(x / ln2), as a float */",
           f"    m = {v.sub_i(v.as_i('t'), v.set1_i('0x4b400000'))};  /* ... and as an int */",
           f"    r = {v.fma('k', v.c('-0.693359375f'), 'x')};  /* exact: n * ln2_hi has 9 bits */",
           f"    r = {v.fma('k', v.c('2.12194440e-4f'), 'r')};"]
    exp += _horner(v, EXP_POLY, "r")
    exp += [f"    p = {v.fma('p', v.mul('r', 'r'), v.add('r', v.c('1.0f')))};",
            f"    m1 = {v.srai1('m')};  /* 2^n = 2^m1 * 2^(n - m1), both normal */",
            f"    p = {v.mul('p', pow2('m1'))};",
            f"    return {v.mul('p', pow2(v.sub_i('m', 'm1')))};",
            "}"]
    out.append((v.fn("exp"), "\n" + "\n".join(exp) + "\n"))
    one = v.c("1.0f")
    out.append((v.fn("sigmoid"), f"""
static inline {V} {v.fn('sigmoid')}({V} x) {{
    return {v.div(one, v.add(one, v.fn('exp') + '(' + v.neg('x') + ')'))};
}}
"""))
    tanh = [f"static inline {V} {v.fn('tanh')}({V} x) {{",
            f"    const {V} a = {v.abs('x')}, z = {v.mul('x', 'x')};",
            f"    {V} p, big;",
            "    /* |x| >= 0.625: 1 - 2 / (exp(2|x|) + 1), saturating to 1 */",
            f"    big = {v.fn('exp')}({v.add('a', 'a')});",
            f"    big = {v.sub(one, v.div(v.c('2.0f'), v.add('big', one)))};",
            "    /* |x| < 0.625: x + x^3 P(x^2) */"]
    tanh += _horner(v, TANH_POLY, "z")
    tanh += [f"    p = {v.fma(v.mul('p', 'z'), 'x', 'x')};",
             f"    return {v.select(v.lt('a', v.c('0.625f')), 'p', v.copysign('big', 'x'))};",
             "}"]
    out.append((v.fn("tanh"), "\n" + "\n".join(tanh) + "\n"))
    # log(w) for w in [1, 2^31) (Cephes logf): w = 2^k m, m in [sqrt(1/2), sqrt(2)),
    # log(1 + f) = f - f^2/2 + f^3 P(f), k ln2 added in two parts (Cody-Waite)
    log = [f"static inline {V} megcc_{n}_vlogw({V} w) {{",
           f"    {V} m = {v.mant('w')}, k, f, z, p;",
           f"    const {v.mtype} lo = {v.lt('m', v.c('0.707106781186547524f'))};  /* use 2m */",
           f"    k = {v.i2f(v.sub_i(v.expo('w'), v.set1_i('126')))};",
           f"    k = {v.sub('k', v.select('lo', one, v.c('0.0f')))};",
           f"    f = {v.sub(v.select('lo', v.add('m', 'm'), 'm'), one)};",
           f"    z = {v.mul('f', 'f')};"]
    log += _horner(v, LOG_POLY, "f")
    log += [f"    p = {v.mul(v.mul('p', 'f'), 'z')};",
            f"    p = {v.fma('k', v.c('-2.12194440e-4f'), 'p')};",
            f"    p = {v.fma('z', v.c('-0.5f'), 'p')};",
            f"    return {v.fma('k', v.c('0.693359375f'), v.add('f', 'p'))};",
            "}"]
    out.append((f"megcc_{n}_vlogw", "\n" + "\n".join(log) + "\n"))
    # softplus(x) = log1p(e^x) as log(w) * e / (w - 1), w = 1 + e^x (w - 1 is exact, and
    # the quotient corrects log(w) for the rounding of w: accurate even for tiny e^x);
    # x > 20 is x, as the portable megcc_softplusf
    out.append((f"megcc_{n}_vsoftplus", f"""
static inline {V} megcc_{n}_vsoftplus({V} x) {{
    const {V} e = {v.fn('exp')}(x), w = {v.add(one, 'e')}, d = {v.sub('w', one)};
    const {V} l = {v.select(v.eq('d', v.c('0.0f')), 'e',
                             v.div(v.mul(f'megcc_{n}_vlogw(w)', 'e'), 'd'))};
    return {v.select(v.gt('x', v.c('20.0f')), 'x', 'l')};
}}
"""))
    out.append((f"megcc_{n}_vmish", f"""
/* mish(x) = x tanh(log(1 + e)) = x * m / (m + 2), m = e (e + 2), e = exp(x) (x <= 20) */
static inline {V} megcc_{n}_vmish({V} x, {V} e) {{
    const {V} m = {v.mul('e', v.add('e', v.c('2.0f')))};
    return {v.mul('x', v.div('m', v.add('m', v.c('2.0f'))))};
}}
"""))
    return out


def used(pairs: List[Tuple[str, str]], source: str) -> Tuple[Tuple[str, str], ...]:
    """The helpers among `pairs` that `source` calls, directly or through later ones (each
    helper may call only earlier ones); clang warns about unused static inline functions."""
    import re

    keep = set()
    for name, src in reversed(pairs):
        if re.search(r"\b" + name + r"\b", source):
            keep.add(name)
            source += src
    return tuple(p for p in pairs if p[0] in keep)


# Horizontal reductions of a vector to one float: AArch64 has them as instructions, AVX2
# and ARMv7 fold halves with the lane-wise operation.
_HORIZONTAL = {  # kind: (AVX2 op, AArch64 instruction, ARMv7 halves fold, ARMv7 pair fold)
    "sum": ("add", "vaddvq_f32", "vadd_f32", "vpadd_f32"),
    "max": ("max", "vmaxvq_f32", "vpmax_f32", "vpmax_f32"),
}


def _horizontal(v: VecOps, kind: str, x: str) -> str:
    if v.name == "neon64":
        return f"{_HORIZONTAL[kind][1]}({x})"
    return f"megcc_{v.name}_h{kind}({x})"


def _horizontal_helpers(v: VecOps, kind: str) -> List[Tuple[str, str]]:
    op, _, halves, pairs = _HORIZONTAL[kind]
    if v.name == "avx2":
        return [(f"megcc_avx2_h{kind}", f"""
static inline float megcc_avx2_h{kind}(__m256 x) {{
    __m128 s = _mm_{op}_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_{op}_ps(s, _mm_movehl_ps(s, s));
    s = _mm_{op}_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}}
""")]
    if v.name == "neon":
        return [(f"megcc_neon_h{kind}", f"""
static inline float megcc_neon_h{kind}(float32x4_t x) {{
    const float32x2_t s = {halves}(vget_low_f32(x), vget_high_f32(x));
    return vget_lane_f32({pairs}(s, s), 0);
}}
""")]
    return []


def hsum(v: VecOps, x: str) -> str:
    """C expression: the float sum of a vector's lanes."""
    return _horizontal(v, "sum", x)


def hsum_helpers(v: VecOps) -> List[Tuple[str, str]]:
    return _horizontal_helpers(v, "sum")


def hmax(v: VecOps, x: str) -> str:
    """C expression: the largest of a vector's lanes."""
    return _horizontal(v, "max", x)


def hmax_helpers(v: VecOps) -> List[Tuple[str, str]]:
    return _horizontal_helpers(v, "max")
