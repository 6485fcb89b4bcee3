"""QLinearAdd / QLinearMul (onnxruntime's formula: no activation, ties to even) with NEON
(ARMv7 with VFPv4 and AArch64: the `neon` level requires fused multiply-add), 16 codes per
step, bit-identical to elementwise_generic_s8's portable kernel. The arithmetic is the AVX2
kernel's (elementwise_avx2_s8), four float lanes at a time:

- Add, both operands running: v = fma(a, rac, fma(b, rbc, fixed)) (`vfmaq_f32`, fused on
  both: one rounding each, as the scalar fmaf); one operand one value per innermost run:
  the portable kernel's fmaf joins it to the constant part once per run, then
  v = fma(other, r, fixed_run) (onnxruntime's order: elementwise_generic_s8.add_fixed_setup);
- Mul: the centred codes (q - z, within +-255) as int16 lanes, their exact int32 product
  (`vmull_s16`), v = float(product) * ratio, then + zc (separate `vmulq_f32` / `vaddq_f32`;
  -std=c99 turns off contraction, so these stay two roundings, as the portable kernel's);
- rounding: compare-and-select clamp to [lo, hi] (NaN -> lo, as the scalar
  `v > lo ? v : lo`; vmaxq would keep the NaN), then the scalar code's magic number
  (v + 1.5 * 2^23, the low mantissa bits are the integer rounded to even): ARMv7 NEON has no
  round-to-nearest conversion (vcvtnq is AArch64 only), and the float addition is the
  scalar code's. The codes are in range, so the saturating narrows (vqmovn) only narrow.

As requant_neon notes, ARMv7 NEON flushes subnormal floats to zero where the scalar VFP
code keeps them; only scales below ~1e-38 could reach that.

The innermost runs and the outer odometer are the AVX2 kernel's (`_loop`, with NEON's
vector statements): both operands contiguous, or one of them one value per run, vectorised;
a run's tail and any other stride pattern run the portable kernel's scalar statements."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...ir.quant import QRANGE
from ...isa import IsaSpec
from ..elementwise.generic import broadcast_strides, collapse
from ..registry import implements
from .elementwise_avx2_s8 import _applies, _loop
from .elementwise_generic_s8 import (QTYPES, _broadcast_params, _check_binary, add_fixed_setup,
                                     add_run_constant, binary_operands)
from .requant import CTYPE, ROUND_EVEN, SHORT

STEP = 16  # codes per vector step: one 16-byte load per operand, four float32x4 quarters


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # per 16 codes: widen (6), convert (4 x 2), 4-8 fma/mul, clamp (4 x 4), round (4 x 2),
    # narrow (3): ~1.3 instructions per code against the portable kernel's ~6
    return 1.3 * graph.tensors[op.outputs[0]].numel + 40.0


def _widen16(ct: str, v: str, half: str) -> str:
    """C expression: the low / high 8 codes of the 16-code vector `v` as int16x8."""
    if ct == "int8_t":
        return f"vmovl_s8(vget_{half}_s8({v}))"
    return f"vreinterpretq_s16_u16(vmovl_u8(vget_{half}_u8({v})))"


def _load16(ct: str, name: str, p: str) -> str:
    """C statements: 16 codes at `p` as two int16x8 `name`0 (first 8) and `name`1."""
    sfx = "s8" if ct == "int8_t" else "u8"
    vt = "int8x16_t" if ct == "int8_t" else "uint8x16_t"
    return (f"const {vt} {name}r = vld1q_{sfx}({p});\n"
            f"                const int16x8_t {name}0 = {_widen16(ct, name + 'r', 'low')}, "
            f"{name}1 = {_widen16(ct, name + 'r', 'high')};")


def _quarter(v16: str, k: int) -> str:
    """C expression: quarter k (4 codes) of the int16x8 pair `v16`0/1 as int32x4."""
    return f"vmovl_s16(vget_{'low' if k % 2 == 0 else 'high'}_s16({v16}{k // 2}))"


def _vector_run(ct: str, kind: str, pattern: str) -> str:
    """C statements: the vector part of one innermost run (j from 0 while j + 16 <= n_in),
    `pattern` "vv" (both contiguous), "sa" (A one value per run), "sb" (B one value)."""
    loads = []
    if pattern != "sa":
        loads.append(_load16(ct, "wa", "a + ia0 + j"))
    if pattern != "sb":
        loads.append(_load16(ct, "wb", "b + ib0 + j"))
    lines = list(loads)
    if kind == "mul":  # centred codes, int16 (|q - z| <= 255)
        if pattern != "sa":
            lines.append("const int16x8_t da0 = vsubq_s16(wa0, vza), da1 = vsubq_s16(wa1, vza);")
        if pattern != "sb":
            lines.append("const int16x8_t db0 = vsubq_s16(wb0, vzb), db1 = vsubq_s16(wb1, vzb);")
    for k in range(4):
        if kind == "add":
            fa = f"vcvtq_f32_s32({_quarter('wa', k)})"
            fb = f"vcvtq_f32_s32({_quarter('wb', k)})"
            # vfmaq_f32(acc, x, y) = acc + x * y, fused
            v = {"vv": f"vfmaq_f32(vfmaq_f32(vfixed, {fb}, vrbc), {fa}, vrac)",
                 "sa": f"vfmaq_f32(vrun, {fb}, vrbc)",
                 "sb": f"vfmaq_f32(vrun, {fa}, vrac)"}[pattern]
        else:
            half = "low" if k % 2 == 0 else "high"
            da = f"vget_{half}_s16(da{k // 2})" if pattern != "sa" else "vda"
            db = f"vget_{half}_s16(db{k // 2})" if pattern != "sb" else "vdb"
            v = f"vaddq_f32(vmulq_f32(vcvtq_f32_s32(vmull_s16({da}, {db})), vratio), vzc)"
        lines.append(f"float32x4_t v{k} = {v};")
        lines.append(f"v{k} = vbslq_f32(vcgtq_f32(v{k}, vlo), v{k}, vlo);")
        lines.append(f"v{k} = vbslq_f32(vcltq_f32(v{k}, vhi), v{k}, vhi);")
        lines.append(f"const int32x4_t q{k} = vsubq_s32(vreinterpretq_s32_f32("
                     f"vaddq_f32(v{k}, vmagic)), vmagic_bits);")
    lines.append("const int16x8_t n0 = vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1));")
    lines.append("const int16x8_t n1 = vcombine_s16(vqmovn_s32(q2), vqmovn_s32(q3));")
    if ct == "uint8_t":
        lines.append("vst1q_u8(y + i0 + j, vcombine_u8(vqmovun_s16(n0), vqmovun_s16(n1)));")
    else:
        lines.append("vst1q_s8(y + i0 + j, vcombine_s8(vqmovn_s16(n0), vqmovn_s16(n1)));")
    body = "\n                ".join(lines)
    return f"""for (; j + {STEP} <= n_in; j += {STEP}) {{
                {body}
            }}"""


def _run_setup(kind: str, pattern: str) -> str:
    """C statements at the start of a run: the per-run constant of a broadcast operand,
    computed by the portable kernel's statements (Add), or its centred value (Mul)."""
    if kind == "add" and pattern in ("sa", "sb"):
        x = "a[ia0]" if pattern == "sa" else "b[ib0]"
        return f"""const float fixed_run = {add_run_constant(pattern, x)};
            const float32x4_t vrun = vdupq_n_f32(fixed_run);"""
    if kind == "mul" and pattern == "sa":
        return "const int16x4_t vda = vdup_n_s16((int16_t)((int32_t)a[ia0] - za));"
    if kind == "mul" and pattern == "sb":
        return "const int16x4_t vdb = vdup_n_s16((int16_t)((int32_t)b[ib0] - zb));"
    return ""


@implements("QLinearAdd", "QLinearMul", dtypes=QTYPES, typed_inputs=(0, 3), requires="neon",
            applies=_applies, cost=cost, label="neon int8 add/mul (16 codes per step)")
def lower_qlinear_binary_neon(op: Op, graph: Graph):
    a, b, c = _check_binary(op, graph)
    dims, (sa, sb) = collapse(list(c.shape), [broadcast_strides(a.shape, c.shape),
                                              broadcast_strides(b.shape, c.shape)])
    rank = len(dims)
    ct = CTYPE[c.dtype]
    lo, hi = QRANGE[c.dtype]
    ins, pos, zp = binary_operands(op, graph, ct)
    kind = "add" if op.type == "QLinearAdd" else "mul"
    if kind == "add":  # the portable kernel's tag: which operand joins the constant part
        tag = "sa" if sa[-1] == 0 else ("sb" if sb[-1] == 0 else "vv")
        setup = add_fixed_setup(tag) + """
    const float32x4_t vrac = vdupq_n_f32(rac), vrbc = vdupq_n_f32(rbc);
    const float32x4_t vfixed = vdupq_n_f32(fixed);
    (void)vrac; (void)vrbc; (void)vfixed;"""
    else:
        tag = "mul"
        setup = """const float ratio = sa * sb / sc;
    const float32x4_t vratio = vdupq_n_f32(ratio), vzc = vdupq_n_f32((float)zc);
    const int16x8_t vza = vdupq_n_s16((int16_t)za), vzb = vdupq_n_s16((int16_t)zb);
    (void)vza; (void)vzb;"""
    body = f"""    const {ct} *a = (const {ct} *)in_ptrs[0];
    const {ct} *b = (const {ct} *)in_ptrs[1];
    {ct} *y = ({ct} *)out_ptrs[0];
    const float sa = *(const float *)in_ptrs[{pos[2]}];
    const float sb = *(const float *)in_ptrs[{pos[4]}];
    const float sc = *(const float *)in_ptrs[{pos[6]}];
    const int32_t za = {zp(3)}, zb = {zp(5)}, zc = {zp(7)};
    const float32x4_t vlo = vdupq_n_f32({lo}.0f), vhi = vdupq_n_f32({hi}.0f);
    const float32x4_t vmagic = vdupq_n_f32(12582912.0f);
    const int32x4_t vmagic_bits = vdupq_n_s32(0x4B400000);
    {setup}
{_loop(rank, ct, kind, tag, _vector_run, _run_setup)}"""
    params = _broadcast_params(rank)
    name = f"qlinear_{kind}_neon_{SHORT[c.dtype]}_{tag}_r{rank}" \
        + "".join("" if k in pos else f"_noz{k}" for k in (3, 5, 7))
    kernel = make_kernel(name, body, params, (ROUND_EVEN,), isa="neon")
    return [Instr(kernel, ins, [op.outputs[0]], params.pack(dims=dims, sta=sa, stb=sb),
                  note="NEON int8 element-wise (onnxruntime's formula)")]
