"""Requantization of int32 accumulators four at a time on NEON (ARMv7 and AArch64),
bit-identical to requant.py's scalar epilogue for the bound activations (none, Relu, Clip)
in both roundings:

- half_even (onnxruntime): v = float(acc + bias) * mult, clamped, then the scalar code's
  magic number (v + 1.5 * 2^23, the low mantissa bits are the integer rounded to even):
  the same float additions, so the same integers, and ARMv7 NEON has no
  round-to-nearest conversion (vcvtnq is AArch64 / ARMv8 only);
- half_away (MegEngine): v = float(acc + bias) * (s_in * s_w) * (1 / s_out), clamped, then
  v + copysign(0.5, v) and a truncating conversion (`vcvtq_s32_f32`): the scalar
  `v += v >= 0 ? 0.5f : -0.5f; (int32_t)v` (at -0.0 both give 0).

The clamp is compare-and-select (`v > lo ? v : lo`, then `v < hi ? v : hi`), not
vmaxq/vminq, which return NaN for a NaN operand where the scalar code gives the bound. The
bias is added with `vaddq_s32`, modulo 2^32 as requant.wrapping_add. Clamped values lie in
the output type, so the saturating narrows (vqmovn) only narrow them.

One difference from the scalar code is not reachable with valid scales: ARMv7's NEON
flushes subnormal floats to zero where VFP keeps them; a subnormal product rounds to 0
either way unless a later * (1 / s_out) scales it back above 0.5, i.e. s_out < 1e-38."""
from __future__ import annotations

from typing import List

from .requant import Requant

BOUND_ACTIVATIONS = (None, "", "Relu", "Clip")


def setup(rq: Requant, s_out: str = "so") -> str:
    """C declarations of the broadcast constants the epilogue uses (after rq.setup)."""
    code = ("const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);\n"
            "    const int32x4_t vyz = vdupq_n_s32(yz);\n")
    if rq.rounding == "half_away":
        code += (f"    const float32x4_t vinv = vdupq_n_f32(1.0f / {s_out});\n"
                 "    const float32x4_t vhalf = vdupq_n_f32(0.5f);\n"
                 "    const uint32x4_t vsign = vdupq_n_u32(0x80000000u);\n")
    else:
        code += ("    const float32x4_t vmagic = vdupq_n_f32(12582912.0f);\n"
                 "    const int32x4_t vmagic_bits = vdupq_n_s32(0x4B400000);\n")
    return code


def codes4(rq: Requant, acc: str, out: str) -> str:
    """C statements: the 4 int32 `acc` (bias added) to the 4 int32 output codes `out` (zero
    point added); `vm` is the float multiplier in scope."""
    v = f"v_{out}"
    code = f"float32x4_t {v} = vmulq_f32(vcvtq_f32_s32({acc}), vm);\n"
    if rq.rounding == "half_away":
        code += f"{v} = vmulq_f32({v}, vinv);\n"
    code += (f"{v} = vbslq_f32(vcgtq_f32({v}, vlo), {v}, vlo);\n"
             f"{v} = vbslq_f32(vcltq_f32({v}, vhi), {v}, vhi);\n")
    if rq.rounding == "half_away":
        code += (f"{v} = vaddq_f32({v}, vbslq_f32(vsign, {v}, vhalf));\n"
                 f"const int32x4_t {out} = vaddq_s32(vcvtq_s32_f32({v}), vyz);\n")
    else:
        code += (f"{v} = vaddq_f32({v}, vmagic);\n"
                 f"const int32x4_t {out} = vaddq_s32(vsubq_s32(vreinterpretq_s32_f32({v}), "
                 "vmagic_bits), vyz);\n")
    return code


def store(rq: Requant, accs: List[str], bias: str, mult: str, dst: str, count: str) -> str:
    """C block: the int32x4 accumulators `accs` (4 to 16 values, in order; `bias` an int32
    expression or "" for none, `mult` the float multiplier: s_in*s_w/s_out, or s_in*s_w for
    half_away) requantized and the first `count` codes stored to `dst` (a constant count
    that is the full width compiles to plain stores)."""
    n = len(accs)
    assert 1 <= n <= 4
    lines = ["{", f"const float32x4_t vm = vdupq_n_f32({mult});"]
    if bias:
        lines.append(f"const int32x4_t vb = vdupq_n_s32({bias});")
    for i, a in enumerate(accs):
        # names of their own: an accumulator called s0 must not be shadowed by its sum
        lines.append(f"const int32x4_t rqs{i} = {f'vaddq_s32({a}, vb)' if bias else a};")
        lines.append(codes4(rq, f"rqs{i}", f"q{i}"))
    narrow = "vqmovun_s16" if rq.dtype == "uint8" else "vqmovn_s16"
    ct = "uint8" if rq.dtype == "uint8" else "int8"
    halves = []
    for h in range(0, n, 2):
        second = f"q{h + 1}" if h + 1 < n else f"q{h}"
        halves.append(f"{narrow}(vcombine_s16(vqmovn_s32(q{h}), vqmovn_s32({second})))")
    lines.append(f"{ct}_t codes[16];")
    if len(halves) == 1:
        lines.append(f"vst1_{'u8' if ct == 'uint8' else 's8'}(codes, {halves[0]});")
    else:
        lines.append(f"vst1q_{'u8' if ct == 'uint8' else 's8'}(codes, vcombine_"
                     f"{'u8' if ct == 'uint8' else 's8'}({halves[0]}, {halves[1]}));")
    lines.append(f"memcpy({dst}, codes, (size_t)({count}));")
    lines.append("}")
    return "\n".join(lines)
