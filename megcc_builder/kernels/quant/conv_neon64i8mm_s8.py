"""QLinearConv on Armv8.6-A int8 matrix multiply (`smmla`, level arm64-i8mm): an int8 GEMM
whose instruction multiplies a 2 x 8 block of weights by an 8 x 2 block of activations
into a 2 x 2 int32 block (`vmmlaq_s32`, 32 multiply-adds; `sdot` does 16).

The reduction runs over (tap, octet of input channels): the weights are stored at compile
time as [panel of 8 output channels][K octet][4 pairs of channels][2][8] int8, the
activations are packed per block of positions as [K octet][position][8] int8 (the eight
channels of one input cell side by side), so one 16-byte load is the 8 x 2 block of two
neighbouring positions. An 8 x 8 tile is 16 accumulators (2 x 2 blocks), 4 weight and 4
activation vectors per octet (24 of the 32 registers), 16 `smmla` per octet.

Exactness and the operands are conv_neon64dot_s8's: the centred weights must fit int8
(checked at compile time), uint8 activations are shifted by 128, padding holds the shifted
zero point, and the zero point returns as a per-channel constant (x_zp - shift) * sum(w),
folded with the bias into one int32 (modulo 2^32, as the accumulators). The tile's rows are
regrouped from the 2 x 2 blocks (vget_low / vget_high) and requantized in registers
(requant_neon: both roundings, bound activations)."""
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
from .conv_neon64dot_s8 import _applies as _dot_applies
from .requant import wrapping_mul, wrapping_sub
from .weights import centred_weights

PARAMS = conv_schema(i32("KH", "kernel height"), i32("KW", "kernel width"),
                     i32("SH", "stride height"), i32("SW", "stride width"),
                     i32("DH", "dilation height"), i32("DW", "dilation width"),
                     i32("KO", "reduction length in octets (KH * KW * ICO)"),
                     i32("ICO", "channel octets per tap (input channels per group / 8, "
                         "rounded up)"),
                     i32("OCGP", "output channels per group rounded up to MR"),
                     i32("NB", "output positions per packed block (multiple of NR)"))

MR, NR = 8, 8  # tile: 4 pairs of output channels x 4 pairs of positions
BLOCK_BYTES = 64 * 1024


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    if op.attrs.get("requant") == "fixed":
        return "fixed-point requantization (the portable epilogue's)"
    why = _dot_applies(op, graph, isa)
    if why:
        return why
    if op.attrs.get("activation") not in requant_neon.BOUND_ACTIVATIONS:
        return "real-valued activation"
    return None


def _geometry_k(graph: Graph, op: Op):
    w = graph.tensors[op.inputs[3]]
    group = int(op.attrs.get("group", 1))
    icg, taps = w.shape[1], int(np.prod(w.shape[2:]))
    ico = (icg + 7) // 8
    return group, icg, taps, ico, taps * ico


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # 32 multiply-adds per smmla, about one per cycle; packing 8 bytes per (position,
    # octet); the requantization in registers ~1.5 cycles per output
    # (multiply-adds counted on the padded operands: octets of channels, 8-row panels, so
    # that sdot's quads win where few input channels waste most of an octet)
    y = graph.tensors[op.outputs[0]]
    group, _, taps, ico, ko = _geometry_k(graph, op)
    positions = float(np.prod(y.shape)) / max(1, y.shape[1])
    ocgp = -(-(y.shape[1] // group) // MR) * MR
    macs = positions * group * ocgp * taps * 8.0 * ico
    return macs / 32.0 + 2.0 * positions * ko * group + 1.5 * float(np.prod(y.shape))


def _packed_weights(op: Op, graph: Graph):
    """[G][OCGP/MR][KO][MR/2][2][8] int8 centred weights, K ordered (tap, channel octet);
    and the per-channel sums of the centred weights (int32)."""
    group, icg, taps, ico, ko = _geometry_k(graph, op)
    wc = centred_weights(op, graph)
    oc = wc.shape[0]
    ocg = oc // group
    ocgp = -(-ocg // MR) * MR
    a = np.zeros((group, ocgp, taps, 8 * ico), np.int8)
    a[:, :ocg, :, :icg] = wc.reshape(group, ocg, icg, taps).transpose(0, 1, 3, 2)
    panels = a.reshape(group, ocgp // MR, MR, ko, 8).transpose(0, 1, 3, 2, 4)
    name = graph.unique_name(op.inputs[3] + "__i8mm_2x8")
    graph.add_const(name, np.ascontiguousarray(panels).reshape(-1), "int8")
    sums = graph.unique_name(op.inputs[3] + "__i8mm_sums")
    graph.add_const(sums, wc.sum(axis=1).astype(np.int32), "int32")
    return name, sums, ocgp


def _micro_kernel() -> str:
    ind = " " * 20
    lines = [f"{ind}int32x4_t " + ", ".join(f"c{i}{j} = vdupq_n_s32(0)" for j in range(4)) + ";"
             for i in range(4)]
    lines += [f"{ind}const int8_t *bk = bj, *ak = ap;",
              f"{ind}for (ko = 0; ko < KO; ++ko, bk += NB * 8, ak += 64) {{",
              f"{ind}    const int8x16_t x0 = vld1q_s8(bk), x1 = vld1q_s8(bk + 16), "
              "x2 = vld1q_s8(bk + 32), x3 = vld1q_s8(bk + 48);",
              f"{ind}    const int8x16_t w0 = vld1q_s8(ak), w1 = vld1q_s8(ak + 16), "
              "w2 = vld1q_s8(ak + 32), w3 = vld1q_s8(ak + 48);"]
    for i in range(4):
        lines.append(f"{ind}    " + " ".join(f"c{i}{j} = vmmlaq_s32(c{i}{j}, w{i}, x{j});"
                                             for j in range(4)))
    lines.append(f"{ind}}}")
    return "\n".join(lines) + "\n"


def _epilogue(rq, oc_setup: str) -> str:
    """Per output channel row: its 8 positions regrouped from the 2 x 2 blocks (row 2i is
    the low half of c_i_j, row 2i + 1 the high half), requantized and stored."""
    ind = " " * 20
    mult = "rs" if rq.uses_real_scale else "mult"
    out = []
    for r in range(MR):
        i, half = r // 2, "low" if r % 2 == 0 else "high"
        accs = [f"vcombine_s32(vget_{half}_s32(c{i}{j}), vget_{half}_s32(c{i}{j + 1}))"
                for j in (0, 2)]
        bias = "kc"
        full = requant_neon.store(rq, accs, bias, mult, "yo", str(NR))
        part = requant_neon.store(rq, accs, bias, mult, "yo", "nb - j")
        out.append(f"""{ind}if (o0 + {r} < OCG) {{
{ind}    const int32_t o = g * OCG + o0 + {r};
{ind}    (void)o;  /* unused when scales and bias are per tensor */
{ind}    {rq.ctype} *yo = yg + (int64_t)(o0 + {r}) * P + p0 + j;
{ind}    {oc_setup}
{ind}    const int32_t kc = {wrapping_sub("bo", wrapping_mul("xzs", "wsum[o]"))};
{ind}    if (j + {NR} <= nb) {full}
{ind}    else {part}
{ind}}}""")
    return "\n".join(out) + "\n"


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="neon64i8mm",
            applies=_applies, cost=cost,
            label="arm64 i8mm: 2x8 by 8x2 int8 blocks (smmla), requantized in registers")
def lower_qlinear_conv_i8mm(op: Op, graph: Graph):
    pt = qlinear_conv_parts(op, graph)
    geo, rq = pt["geo"], pt["rq"]
    group, icg, taps, ico, ko = _geometry_k(graph, op)
    p = geo["OH"] * geo["OW"]
    nb = max(NR, min(1024, BLOCK_BYTES // max(1, 8 * ko)) // NR * NR)
    nb = min(nb, -(-p // NR) * NR)
    ins = list(pt["ins"])
    ins[1], sums, ocgp = _packed_weights(op, graph)
    ins.append(sums)
    xt, yt = pt["xt"], rq.ctype
    shift = 128 if xt == "uint8_t" else 0
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int8_t *a = (const int8_t *)in_ptrs[1];  /* [G][OCGP/8][KO][4][2][8] */
    const int32_t *wsum = (const int32_t *)in_ptrs[{len(ins) - 1}];
{pt["head"]}
    {requant_neon.setup(rq)}
    const int32_t xz = {pt["x_zp"]};
    const int32_t xzs = xz - {shift};  /* the zero point in the shifted (int8) domain */
    const int32_t ICG = C / G, OCG = OC / G, P = OH * OW, HW = H * W;
    int8_t *bp = (int8_t *)workspace;  /* [KO][NB][8]: one block of positions */
    int32_t b, g, p0, j, ko, t;
    for (b = 0; b < N; ++b)
        for (g = 0; g < G; ++g) {{
            const {xt} *xg = x + ((int64_t)b * C + (int64_t)g * ICG) * HW;
            {yt} *yg = y + ((int64_t)b * OC + (int64_t)g * OCG) * P;
            const int8_t *ag = a + (int64_t)g * OCGP * KO * 8;
            for (p0 = 0; p0 < P; p0 += NB) {{
                const int32_t nb = P - p0 < NB ? P - p0 : NB;
                const int32_t nbr = (nb + {NR - 1}) / {NR} * {NR};
                for (ko = 0; ko < KO; ++ko) {{  /* pack: 8 channels of a cell side by side */
                    const int32_t tap = ko / ICO, c0 = 8 * (ko - tap * ICO);
                    const int32_t ky = tap / KW, kx = tap - ky * KW;
                    const int32_t nc = ICG - c0 < 8 ? ICG - c0 : 8;
                    int8_t *dst = bp + (int64_t)ko * NB * 8;
                    int32_t oy = p0 / OW, ox = p0 - (p0 / OW) * OW;
                    for (j = 0; j < nbr; ++j, dst += 8) {{
                        const int32_t iy = oy * SH - PT + ky * DH, ix = ox * SW - PL + kx * DW;
                        if (j >= nb) {{
                            memset(dst, 0, 8);
                            continue;
                        }}
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) {{
                            memset(dst, (int8_t)xzs, 8);  /* adds 0 */
                        }} else {{
                            const {xt} *cell = xg + (int64_t)c0 * HW + (int64_t)iy * W + ix;
                            for (t = 0; t < nc; ++t)
                                dst[t] = (int8_t)((int32_t)cell[(int64_t)t * HW] - {shift});
                            for (; t < 8; ++t) dst[t] = 0;  /* channels past ICG: weight 0 */
                        }}
                        if (++ox == OW) {{
                            ox = 0;
                            ++oy;
                        }}
                    }}
                }}
                for (j = 0; j < nb; j += {NR}) {{
                    const int8_t *bj = bp + (int64_t)j * 8;
                    int32_t o0;
                    for (o0 = 0; o0 < OCG; o0 += {MR}) {{
                        const int8_t *ap = ag + (int64_t)o0 * KO * 8;
MICRO_KERNEL
EPILOGUE
                    }}
                }}
            }}
        }}
""".replace("MICRO_KERNEL", _micro_kernel()).replace("EPILOGUE", _epilogue(rq, pt["oc_setup"]))
    name = f"qlinear_conv_i8mm_neon64i8mm_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, isa="neon64i8mm")
    params = PARAMS.pack(**geo, KO=ko, ICO=ico, OCGP=ocgp, NB=nb)
    return [Instr(kernel, ins, [op.outputs[0]], params, workspace_bytes=ko * nb * 8 + 64,
                  note=f"arm64 smmla int8 GEMM {MR}x{NR} over (tap, channel octet) 2x8 blocks, "
                       f"blocks of {nb} positions, requantized in registers")]
