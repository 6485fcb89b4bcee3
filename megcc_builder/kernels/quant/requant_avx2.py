"""Requantization of 16 int32 accumulators at once on AVX2, bit-identical to requant.py's
scalar epilogue for the bound activations (none, Relu, Clip) in both roundings:

- half_even (onnxruntime): v = float(acc + bias) * mult, clamped, `_mm256_cvtps_epi32`
  (rounds ties to even under the default MXCSR mode: the integers of the scalar
  magic-number rounding, which is exact once clamped to the output range);
- half_away (MegEngine): v = float(acc + bias) * (s_in * s_w) * (1 / s_out), clamped, then
  trunc(v + copysign(0.5, v)) in float32 (`_mm256_cvttps_epi32`): the scalar
  `v += v >= 0 ? 0.5f : -0.5f; (int32_t)v` (at -0.0 both give 0).

The clamp is `max(v, lo)` then `min(v, hi)` with `v` first: a NaN gives the bound, as the
scalar `v > lo ? v : lo`. Clamped values are within the output type, so the saturating
packs only narrow them. Real-valued activations (Sigmoid, HSwish) are not handled here."""
from __future__ import annotations

from .requant import Requant

BOUND_ACTIVATIONS = (None, "", "Relu", "Clip")


def setup(rq: Requant, s_out: str = "so") -> str:
    """C declarations of the broadcast constants the epilogue uses (after rq.setup)."""
    code = ("const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);\n"
            "    const __m256i vyz = _mm256_set1_epi32(yz);\n")
    if rq.rounding == "half_away":
        code += (f"    const __m256 vinv = _mm256_set1_ps(1.0f / {s_out});\n"
                 "    const __m256 vsign = _mm256_set1_ps(-0.0f), vhalf = _mm256_set1_ps(0.5f);\n")
    return code


def codes8(rq: Requant, acc: str, out: str) -> str:
    """C statements: the 8 int32 `acc` (bias added) to the 8 int32 output codes `out`,
    with `vm` (__m256: the multipliers, one per lane or broadcast) in scope."""
    v = f"v_{out}"
    code = f"__m256 {v} = _mm256_mul_ps(_mm256_cvtepi32_ps({acc}), vm);\n"
    if rq.rounding == "half_away":
        code += f"{v} = _mm256_mul_ps({v}, vinv);\n"
    code += f"{v} = _mm256_min_ps(_mm256_max_ps({v}, vlo), vhi);\n"
    if rq.rounding == "half_away":
        code += (f"{v} = _mm256_add_ps({v}, _mm256_or_ps(_mm256_and_ps({v}, vsign), vhalf));\n"
                 f"const __m256i {out} = _mm256_add_epi32(_mm256_cvttps_epi32({v}), vyz);\n")
    else:
        code += f"const __m256i {out} = _mm256_add_epi32(_mm256_cvtps_epi32({v}), vyz);\n"
    return code


def store16(rq: Requant, acc0: str, acc1: str, bias: str, mult: str, dst: str,
            count: str = "16") -> str:
    """C block: 16 accumulators (`acc0` positions 0-7, `acc1` 8-15; `bias` an int32
    expression or "" for none, `mult` the float multiplier: s_in*s_w/s_out, or s_in*s_w
    for half_away) requantized and stored to `dst`; only `count` of them when it is not
    "16" (the tail: through a stack buffer)."""
    lines = ["{", f"const __m256 vm = _mm256_set1_ps({mult});"]
    if bias:
        lines += [f"const __m256i vb = _mm256_set1_epi32({bias});",
                  f"const __m256i s0 = _mm256_add_epi32({acc0}, vb), "
                  f"s1 = _mm256_add_epi32({acc1}, vb);"]
    else:
        lines += [f"const __m256i s0 = {acc0}, s1 = {acc1};"]
    lines += [codes8(rq, "s0", "q0"), codes8(rq, "s1", "q1")]
    pack = "_mm_packus_epi16" if rq.dtype == "uint8" else "_mm_packs_epi16"
    lines += ["/* packs work per 128-bit lane: 0xD8 puts the int16 codes back in order */",
              "const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);",
              f"const __m128i b8 = {pack}(_mm256_castsi256_si128(w16), "
              "_mm256_extracti128_si256(w16, 1));"]
    if count == "16":
        lines.append(f"_mm_storeu_si128((__m128i *)(void *)({dst}), b8);")
    else:
        lines += ["unsigned char tail[16];", "_mm_storeu_si128((__m128i *)(void *)tail, b8);",
                  f"memcpy({dst}, tail, (size_t)({count}));"]
    lines.append("}")
    return "\n".join(lines)
