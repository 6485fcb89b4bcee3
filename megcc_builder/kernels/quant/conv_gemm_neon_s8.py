"""QLinearConv on NEON (ARMv7 and AArch64, the `vmlal` baseline) as a packed int16 GEMM
with the requantization in registers, bit-identical to the portable kernel.

Both operands are centred on their zero points and widened to int16 (|x - zx|, |w - zw| <=
255), and `vmlal_lane_s16` multiplies four int16 activations by one int16 weight lane into
int32 lanes: exact, the accumulators are the portable kernel's whatever the weights (full
range, uint8 with a zero point). The dot-product kernels need int8 operands; this one is
the fallback for every Arm level.

- K runs over (input channel, tap), the order of the weight tensor, so the weights are
  only centred, widened and cut into MR-row panels at compile time ([K][MRP] int16, the
  panel's rows of one k in one vector load);
- the activations are packed once per block of NB output positions ([K][NB] int16, zero in
  the padding and past the block): stride 1 rows are 8-byte loads widened (`vmovl`) and
  centred, 1x1 stride-1 convolutions copy channel planes (no im2col);
- each NR-column strip of the block meets every output-channel panel while it is in L1:
  MR x NR accumulators, per k one activation vector and MR lane multiply-adds per 4
  columns;
- the tile is requantized in registers (requant_neon) and stored per row.

Two tiles, one per register file: `neon` (ARMv7's 16 q registers and AArch64) 6 x 8 = 12
accumulators; `neon64` (AArch64's 32) 8 x 12 = 24 accumulators. Dense and grouped 1-D /
2-D convolutions (depthwise ones go to the depthwise kernels), constant weights and weight
zero points, activations that are bounds (none, Relu, Clip)."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..conv.geometry import conv_schema
from ..registry import implements
from . import requant_neon
from .conv_generic_s8 import QTYPES, qlinear_conv_parts
from .weights import centred_weights, is_depthwise, not_constant

PARAMS = conv_schema(i32("KH", "kernel height"), i32("KW", "kernel width"),
                     i32("SH", "stride height"), i32("SW", "stride width"),
                     i32("DH", "dilation height"), i32("DW", "dilation width"),
                     i32("K", "reduction length (input channels per group * taps)"),
                     i32("OCGP", "output channels per group rounded up to MR"),
                     i32("NB", "output positions per packed block (multiple of NR)"))

MRP = 8  # int16 weights per k in a panel: one q register (MR <= 8)
BLOCK_BYTES = 48 * 1024  # packed activations per block: most of a 64 KB L1 / half an L2


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    if op.attrs.get("requant") == "fixed":
        return "fixed-point requantization (the portable epilogue's)"
    x = graph.tensors[op.inputs[0]]
    if len(x.shape) not in (3, 4):
        return "not 1-D or 2-D"
    if is_depthwise(op, graph):
        return "depthwise (depthwise kernels)"
    why = not_constant(op, graph)
    if why:
        return why
    if op.attrs.get("activation") not in requant_neon.BOUND_ACTIVATIONS:
        return "real-valued activation"
    return None


def _packed_weights(op: Op, graph: Graph, mr: int, suffix: str):
    """[G][OCGP/MR][K][MRP] int16 centred weights; (constant name, OCGP)."""
    wc = centred_weights(op, graph)
    oc, k = wc.shape
    group = int(op.attrs.get("group", 1))
    ocg = oc // group
    ocgp = -(-ocg // mr) * mr
    rows = np.zeros((group, ocgp, k), np.int16)
    rows[:, :ocg] = wc.reshape(group, ocg, k)
    a = np.zeros((group, ocgp // mr, k, MRP), np.int16)
    a[..., :mr] = rows.reshape(group, ocgp // mr, mr, k).transpose(0, 1, 3, 2)
    name = graph.unique_name(op.inputs[3] + f"__{suffix}_panels")
    graph.add_const(name, a.reshape(-1), "int16")
    return name, ocgp


def _widen8(xt: str, addr: str) -> str:
    """C expression: 8 input codes at `addr` as int16, centred (vxz in scope)."""
    v = (f"vreinterpretq_s16_u16(vmovl_u8(vld1_u8({addr})))" if xt == "uint8_t" else
         f"vmovl_s8(vld1_s8({addr}))")
    return f"vsubq_s16({v}, vxz)"


def _pack(xt: str) -> str:
    """C: the block's activations as [K][NB] int16, centred, 0 in the padding and past the
    block's last position."""
    return f"""                for (kk = 0; kk < K; ++kk) {{
                    const int32_t c = kk / TAPS, tap = kk - c * TAPS;
                    const int32_t ky = tap / KW, kx = tap - ky * KW;
                    const {xt} *src = xg + (int64_t)c * HW;
                    int16_t *dst = bp + (int64_t)kk * NB;
                    int32_t jj = 0, t;
                    if (plain) {{  /* 1x1, stride 1, no padding: a run of the channel plane */
                        for (t = 0; t + 8 <= nb; t += 8)
                            vst1q_s16(dst + t, {_widen8(xt, "src + p0 + t")});
                        for (; t < nb; ++t) dst[t] = (int16_t)((int32_t)src[p0 + t] - xz);
                        jj = nb;
                    }}
                    while (jj < nb) {{  /* one output row segment at a time */
                        const int32_t pp = p0 + jj, oy = pp / OW, ox = pp - oy * OW;
                        const int32_t seg = OW - ox < nb - jj ? OW - ox : nb - jj;
                        const int32_t iy = oy * SH - PT + ky * DH;
                        const int32_t ix0 = ox * SW - PL + kx * DW;
                        int16_t *d = dst + jj;
                        int32_t t_lo, t_hi;
                        if (iy < 0 || iy >= H || ix0 + (seg - 1) * SW < 0 || ix0 >= W) {{
                            t_lo = t_hi = seg;
                        }} else {{
                            t_lo = ix0 >= 0 ? 0 : (-ix0 + SW - 1) / SW;
                            t_hi = (W - 1 - ix0) / SW + 1;
                            t_hi = t_hi < seg ? t_hi : seg;
                            t_lo = t_lo < t_hi ? t_lo : t_hi;
                        }}
                        for (t = 0; t < t_lo; ++t) d[t] = 0;
                        if (t_hi > t_lo) {{
                            const {xt} *row = src + (int64_t)iy * W + ix0;  /* ix0 may be < 0 */
                            t = t_lo;
                            if (SW == 1)
                                for (; t + 8 <= t_hi; t += 8)
                                    vst1q_s16(d + t, {_widen8(xt, "row + t")});
                            for (; t < t_hi; ++t)
                                d[t] = (int16_t)((int32_t)row[(int64_t)t * SW] - xz);
                        }}
                        for (t = t_hi < t_lo ? t_lo : t_hi; t < seg; ++t) d[t] = 0;
                        jj += seg;
                    }}
                    for (t = nb; t < nbr; ++t) dst[t] = 0;
                }}
"""


def _micro_kernel(mr: int, nr: int) -> str:
    """The MR x NR tile over K: per k, NR/4 activation halves and MR weight lanes."""
    nv = nr // 4
    ind = " " * 20
    lines = [f"{ind}int32x4_t " + ", ".join(f"c{r}_{v} = vdupq_n_s32(0)" for v in range(nv)) + ";"
             for r in range(mr)]
    lines += [f"{ind}const int16_t *bk = bj, *ak = ap;",
              f"{ind}for (kk = 0; kk < K; ++kk, bk += NB, ak += {MRP}) {{",
              f"{ind}    const int16x8_t av = vld1q_s16(ak);",
              f"{ind}    const int16x4_t a0 = vget_low_s16(av), a1 = vget_high_s16(av);"]
    for v in range(0, nv, 2):
        if v + 1 < nv:
            lines.append(f"{ind}    const int16x8_t bv{v} = vld1q_s16(bk + {4 * v});")
            lines.append(f"{ind}    const int16x4_t b{v} = vget_low_s16(bv{v}), "
                         f"b{v + 1} = vget_high_s16(bv{v});")
        else:
            lines.append(f"{ind}    const int16x4_t b{v} = vld1_s16(bk + {4 * v});")
    for r in range(mr):
        lines.append(f"{ind}    " + " ".join(
            f"c{r}_{v} = vmlal_lane_s16(c{r}_{v}, b{v}, a{r // 4}, {r % 4});"
            for v in range(nv)))
    lines.append(f"{ind}}}")
    return "\n".join(lines) + "\n"


def _epilogue(rq, mr: int, nr: int) -> str:
    ind = " " * 20
    out = []
    mult = "rs" if rq.uses_real_scale else "mult"
    for r in range(mr):
        accs = [f"c{r}_{v}" for v in range(nr // 4)]
        full = requant_neon.store(rq, accs, "bo", mult, "yo", str(nr))
        part = requant_neon.store(rq, accs, "bo", mult, "yo", "nb - j")
        out.append(f"""{ind}if (o0 + {r} < OCG) {{
{ind}    const int32_t o = g * OCG + o0 + {r};
{ind}    (void)o;  /* unused when scales and bias are per tensor */
{ind}    {rq.ctype} *yo = yg + (int64_t)(o0 + {r}) * P + p0 + j;
{ind}    OC_SETUP
{ind}    if (j + {nr} <= nb) {full}
{ind}    else {part}
{ind}}}""")
    return "\n".join(out) + "\n"


def cost_of(per_cycle: float, mr: int):
    """The estimate for a tile that sustains `per_cycle` vmlal (4 multiply-adds each) per
    cycle, counting the multiply-adds of the padded MR-row panels; plus packing (~0.5 cycle
    per int16 written) and the requantization (~1.5 cycles per output). Not scaled by the
    core's FMA rate: the portable kernel's estimate (1 cycle per multiply-add) is not."""
    def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
        y, w = graph.tensors[op.outputs[0]], graph.tensors[op.inputs[3]]
        group = int(op.attrs.get("group", 1))
        k = float(np.prod(w.shape[1:]))
        positions = float(np.prod(y.shape)) / max(1, y.shape[1])
        ocgp = -(-(y.shape[1] // group) // mr) * mr
        macs = positions * group * ocgp * k
        return (macs / (4.0 * per_cycle) + 0.5 * positions * k * group
                + 1.5 * float(np.prod(y.shape)))
    return cost


def emit(op: Op, graph: Graph, mr: int, nr: int, tag: str):
    pt = qlinear_conv_parts(op, graph)
    geo, rq = pt["geo"], pt["rq"]
    w = graph.tensors[op.inputs[3]]
    taps = int(np.prod(w.shape[2:]))
    k = w.shape[1] * taps
    p = geo["OH"] * geo["OW"]
    nb = max(nr, min(1024, BLOCK_BYTES // max(1, 2 * k)) // nr * nr)
    nb = min(nb, -(-p // nr) * nr)
    ins = list(pt["ins"])
    ins[1], ocgp = _packed_weights(op, graph, mr, tag)
    xt, yt = pt["xt"], rq.ctype
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int16_t *a = (const int16_t *)in_ptrs[1];  /* [G][OCGP/{mr}][K][{MRP}] */
{pt["head"]}
    {requant_neon.setup(rq)}
    const int32_t xz = {pt["x_zp"]};
    const int16x8_t vxz = vdupq_n_s16((int16_t)xz);
    const int32_t ICG = C / G, OCG = OC / G, P = OH * OW, HW = H * W, TAPS = KH * KW;
    const int plain = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0 &&
                      OH == H && OW == W;
    int16_t *bp = (int16_t *)(void *)(((uintptr_t)workspace + 15) & ~(uintptr_t)15);
    int32_t b, g, p0, j, kk, o0;
    for (b = 0; b < N; ++b)
        for (g = 0; g < G; ++g) {{
            const {xt} *xg = x + ((int64_t)b * C + (int64_t)g * ICG) * HW;
            {yt} *yg = y + ((int64_t)b * OC + (int64_t)g * OCG) * P;
            const int16_t *ag = a + (int64_t)g * (OCGP / {mr}) * K * {MRP};
            for (p0 = 0; p0 < P; p0 += NB) {{
                const int32_t nb = P - p0 < NB ? P - p0 : NB;
                const int32_t nbr = (nb + {nr - 1}) / {nr} * {nr};
PACK
                for (j = 0; j < nb; j += {nr}) {{
                    const int16_t *bj = bp + j;
                    for (o0 = 0; o0 < OCG; o0 += {mr}) {{
                    const int16_t *ap = ag + (int64_t)(o0 / {mr}) * K * {MRP};
MICRO_KERNEL
EPILOGUE
                    }}
                }}
            }}
        }}
""".replace("PACK", _pack(xt)).replace("MICRO_KERNEL", _micro_kernel(mr, nr)) \
        .replace("EPILOGUE", _epilogue(rq, mr, nr)) \
        .replace("OC_SETUP", pt["oc_setup"])
    name = f"qlinear_conv_gemm_{tag}_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, isa=tag)
    params = PARAMS.pack(**geo, K=k, OCGP=ocgp, NB=nb)
    return [Instr(kernel, ins, [op.outputs[0]], params, workspace_bytes=k * nb * 2 + 16,
                  note=f"NEON int16 GEMM {mr}x{nr} (vmlal_lane_s16) over (channel, tap), "
                       f"blocks of {nb} positions, requantized in registers")]


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="neon",
            applies=_applies, cost=cost_of(1.0, 6),
            label="neon int16 GEMM 6x8 (vmlal_lane_s16), requantized in registers")
def lower_qlinear_conv_gemm_neon(op: Op, graph: Graph):
    return emit(op, graph, 6, 8, "neon")


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="neon64",
            applies=_applies, cost=cost_of(1.15, 8),
            label="AArch64 int16 GEMM 8x12 (vmlal_lane_s16), requantized in registers")
def lower_qlinear_conv_gemm_neon64(op: Op, graph: Graph):
    return emit(op, graph, 8, 12, "neon64")
