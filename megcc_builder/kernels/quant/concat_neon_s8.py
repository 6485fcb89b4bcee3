"""QLinearConcat with NEON (ARMv7 and AArch64), the AVX2 kernel's arithmetic (concat_avx2_s8)
16 codes per step: an input with the output's scale and zero point is copied; another is
requantized to the portable kernel's table entries bit for bit:

- by one multiplication (pattern letter "m") when `exact_multiplier` found, at compile
  time, a float32 r with clamp(float(q - xz) * r) rounded ties to even equal to the table's
  code for all 256 input codes (`vmulq_f32`);
- else ("t") by the table's arithmetic x = xs * float(q - xz), v = x / ys: `vdivq_f32` on
  AArch64 (correctly rounded, as the scalar division); ARMv7 NEON has no division, so
  there such a block runs the portable kernel's scalar statements.

Rounding as requant_neon: compare-and-select clamp to [lo - yz, hi - yz], the magic number
(ARMv7 has no vcvtnq), + yz; the codes are in range, so the saturating narrows only narrow.
A block's tail uses the scalar statements."""
from __future__ import annotations

from ...codegen.kernel import Instr, f32_bits, make_kernel
from ...codegen.params import i64, schema, table
from ...ir import Graph, Op
from ...ir.quant import QRANGE
from ...isa import IsaSpec
from ..registry import implements
from .concat_avx2_s8 import exact_multiplier, parts_geometry
from .elementwise_generic_s8 import QTYPES, concat_inputs
from .requant import CTYPE, ROUND_EVEN, SHORT


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # 4 lanes: widen, convert, multiply, clamp, round, narrow ~0.8 instructions per code
    # (the division, or ARMv7's scalar fallback, costs more, but the portable table look-up
    # is 1.5 per code and copies are the same memcpy)
    y_dtype, ys, yz, parts = concat_inputs(op, graph)
    total = 40.0
    for x, same, xs, xz in parts:
        t = graph.tensors[x]
        if same:
            total += 0.05 * t.numel
        elif isa.has("neon64") or \
                exact_multiplier(t.dtype, xs, xz, y_dtype, ys, yz) is not None:
            total += 0.8 * t.numel
        else:  # ARMv7 "t": the scalar division, dearer than the portable table look-up
            total += 3.0 * t.numel
    return total


def _vector_loop(j: int, xt: str, yt: str, divide: bool) -> str:
    """C loop: 16 codes of block j per step into y (r or xs, xz in scope)."""
    sfx = "s8" if xt == "int8_t" else "u8"
    vt = "int8x16_t" if xt == "int8_t" else "uint8x16_t"
    if xt == "int8_t":
        widen = lambda h: f"vmovl_s8(vget_{h}_s8(xr))"  # noqa: E731
    else:
        widen = lambda h: f"vreinterpretq_s16_u16(vmovl_u8(vget_{h}_u8(xr)))"  # noqa: E731
    lines = [f"const {vt} xr = vld1q_{sfx}(x + i);",
             f"const int16x8_t w0 = vsubq_s16({widen('low')}, vxz), "
             f"w1 = vsubq_s16({widen('high')}, vxz);"]
    for k in range(4):
        d = f"vcvtq_f32_s32(vmovl_s16(vget_{'low' if k % 2 == 0 else 'high'}_s16(w{k // 2})))"
        v = f"vdivq_f32(vmulq_f32(vxs, {d}), vys)" if divide else f"vmulq_f32(vr, {d})"
        lines += [f"float32x4_t v{k} = {v};",
                  f"v{k} = vbslq_f32(vcgtq_f32(v{k}, vlo), v{k}, vlo);",
                  f"v{k} = vbslq_f32(vcltq_f32(v{k}, vhi), v{k}, vhi);",
                  f"const int32x4_t q{k} = vaddq_s32(vsubq_s32(vreinterpretq_s32_f32("
                  f"vaddq_f32(v{k}, vmagic)), vmagic_bits), vyz);"]
    lines += ["const int16x8_t n0 = vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1));",
              "const int16x8_t n1 = vcombine_s16(vqmovn_s32(q2), vqmovn_s32(q3));"]
    if yt == "uint8_t":
        lines.append("vst1q_u8(y + i, vcombine_u8(vqmovun_s16(n0), vqmovun_s16(n1)));")
    else:
        lines.append("vst1q_s8(y + i, vcombine_s8(vqmovn_s16(n0), vqmovn_s16(n1)));")
    body = "\n                ".join(lines)
    return f"""for (i = 0; i + 16 <= blk[{j}]; i += 16) {{
                {body}
            }}"""


def _mul_block(j: int, xt: str, yt: str, k: int) -> str:
    """C block: block j requantized into y by one multiplication (qp[2k..2k+1]: r bits,
    xz); exact_multiplier proved it gives the table's code for every input code."""
    return f"""        {{
            const {xt} *x = (const {xt} *)in_ptrs[{j}] + (int64_t)o * blk[{j}];
            float r;
            const int32_t xz = qp[{2 * k + 1}];
            memcpy(&r, &qp[{2 * k}], sizeof r);
            {{
            const float32x4_t vr = vdupq_n_f32(r);
            const int16x8_t vxz = vdupq_n_s16((int16_t)xz);
            {_vector_loop(j, xt, yt, False)}
            }}
            for (; i < blk[{j}]; ++i)
                y[i] = ({yt})(megcc_qround_even((float)((int32_t)x[i] - xz) * r, lo, hi) + yz);
        }}"""


def _requant_block(j: int, xt: str, yt: str, k: int) -> str:
    """C block: block j requantized into y by the table's arithmetic (qp[2k..2k+1]: xs
    bits, xz); vectorised where NEON divides (AArch64)."""
    return f"""        {{
            const {xt} *x = (const {xt} *)in_ptrs[{j}] + (int64_t)o * blk[{j}];
            float xs;
            const int32_t xz = qp[{2 * k + 1}];
            memcpy(&xs, &qp[{2 * k}], sizeof xs);
            i = 0;
#if defined(__aarch64__)
            {{
            const float32x4_t vxs = vdupq_n_f32(xs);
            const int16x8_t vxz = vdupq_n_s16((int16_t)xz);
            {_vector_loop(j, xt, yt, True)}
            }}
#endif
            for (; i < blk[{j}]; ++i) {{
                const float xv = xs * (float)((int32_t)x[i] - xz);
                const float v = xv / ys;
                y[i] = ({yt})(megcc_qround_even(v, lo, hi) + yz);
            }}
        }}"""


@implements("QLinearConcat", dtypes=QTYPES, typed_inputs=(1,), requires="neon", cost=cost,
            label="neon int8 concat (requantization 16 codes per step)")
def lower_qlinear_concat_neon(op: Op, graph: Graph):
    y_dtype, ys, yz, parts = concat_inputs(op, graph)
    axis_outer, blocks = parts_geometry(op, graph, parts)
    yt = CTYPE[y_dtype]
    lo, hi = QRANGE[y_dtype]
    lines, qp, pattern = [], [], ""
    for j, (name, same, xs, xz) in enumerate(parts):
        xt = CTYPE[graph.tensors[name].dtype]
        if same:
            lines.append(f"        memcpy(y, (const uint8_t *)in_ptrs[{j}] + (int64_t)o * blk[{j}], "
                         f"(size_t)blk[{j}]);")
            pattern += "c"
        else:
            x_dtype = graph.tensors[name].dtype
            r = exact_multiplier(x_dtype, xs, xz, y_dtype, ys, yz)
            block = _requant_block if r is None else _mul_block
            lines.append(block(j, xt, yt, len(qp) // 2))
            qp += [f32_bits(xs if r is None else float(r)), xz]
            pattern += ("t" if r is None else "m") + SHORT[x_dtype][0]
        lines.append(f"        y += blk[{j}];")
    body = f"""    {yt} *y = ({yt} *)out_ptrs[0];
    int64_t o;
    int32_t i;
    float ys;
    const int32_t yz = qp[{len(qp)}];
    memcpy(&ys, &qp[{len(qp) + 1}], sizeof ys);
    const float lo = (float)({lo} - yz), hi = (float)({hi} - yz);
    const float32x4_t vys = vdupq_n_f32(ys), vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
    const float32x4_t vmagic = vdupq_n_f32(12582912.0f);
    const int32x4_t vmagic_bits = vdupq_n_s32(0x4B400000), vyz = vdupq_n_s32(yz);
    (void)vys; (void)vlo; (void)vhi; (void)vyz; (void)vmagic; (void)vmagic_bits;
    (void)lo; (void)hi;
    for (o = 0; o < OUTER; ++o) {{
        i = 0;
{chr(10).join(lines)}
    }}
"""
    params = schema(i64("OUTER", "blocks before the axis"),
                    table("blk", len(parts), "elements per block of each input"),
                    table("qp", len(qp) + 2, "requantized inputs' (X_scale bits, X_zp), "
                          "then Y_zp, Y_scale bits"))
    kernel = make_kernel(f"qlinear_concat_neon_{SHORT[y_dtype]}_{pattern}", body, params,
                         (ROUND_EVEN,), isa="neon")
    return [Instr(kernel, [p[0] for p in parts], [op.outputs[0]],
                  params.pack(OUTER=axis_outer, blk=blocks, qp=qp + [yz, f32_bits(ys)]),
                  note="NEON int8 concatenation")]
