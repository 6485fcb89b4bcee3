"""QLinearConv on Armv8.2-A dot product (`sdot`, level arm64-dot, MegCC's
enable_nchw44_dot): an int8 GEMM in NCHW44-dot style 4x4 blocks.

The reduction runs over (tap, quad of input channels): the weights are stored at compile
time as [panel of 8 output channels][K quad][8][4] int8 (two 4 x 4 blocks per quad), the
activations are packed per block of positions as [K quad][position][4] int8 (the four
channels of one input cell side by side, as NCHW44 keeps them). `vdotq_laneq_s32(acc,
x, w, lane)` then adds, for 4 positions at once, the 4-channel dot product with output
channel `lane` of the weight block: an 8 x 12 tile is 24 accumulators, 3 activation
vectors and 2 weight vectors per quad (29 of the 32 registers), 24 `sdot` per quad.

Exact integers, equal to the portable kernel's accumulator: `sdot` multiplies int8 by
int8, so the weights must be int8 once centred on their zero point (checked on the
constant weights at compile time: symmetric int8 weights, as onnxruntime's per-channel and
MegEngine's qint8 ones are), and uint8 activations are shifted by 128 (`x - 128` is int8);
padding holds the shifted input zero point, and the zero point comes back in as a
per-channel constant: sum((x - zx) * w) = sum((x - o) * w) - (zx - o) * sum(w) with o the
shift (128 or 0) and sum(w) over every tap. Then bias, and the portable requantization per
element (requant.py: both roundings, every activation)."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..conv.geometry import conv_schema
from ..registry import implements
from .conv_generic_s8 import QTYPES, qlinear_conv_parts
from .requant import wrapping_add, wrapping_mul, wrapping_sub
from .weights import centred_weights, is_depthwise, not_constant

PARAMS = conv_schema(i32("KH", "kernel height"), i32("KW", "kernel width"),
                     i32("SH", "stride height"), i32("SW", "stride width"),
                     i32("DH", "dilation height"), i32("DW", "dilation width"),
                     i32("KQ", "reduction length in quads (KH * KW * ICQ)"),
                     i32("ICQ", "channel quads per tap (input channels per group / 4, "
                         "rounded up)"),
                     i32("OCGP", "output channels per group rounded up to MR"),
                     i32("NB", "output positions per packed block (multiple of NR)"))

MR, NR = 8, 12  # tile: 8 output channels (2 weight blocks) x 12 positions (3 vectors)
BLOCK_BYTES = 64 * 1024


def _centred(graph: Graph, op: Op) -> np.ndarray:
    return centred_weights(op, graph)


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    x = graph.tensors[op.inputs[0]]
    if len(x.shape) not in (3, 4):
        return "not 1-D or 2-D"
    if is_depthwise(op, graph):
        return "depthwise (depthwise kernels)"
    why = not_constant(op, graph)
    if why:
        return why
    wc = _centred(graph, op)
    if wc.size and (wc.min() < -128 or wc.max() > 127):
        return "centred weights outside int8 (sdot multiplies int8 by int8)"
    return None


def _geometry_k(graph: Graph, op: Op):
    w = graph.tensors[op.inputs[3]]
    group = int(op.attrs.get("group", 1))
    icg, taps = w.shape[1], int(np.prod(w.shape[2:]))
    icq = (icg + 3) // 4
    return group, icg, taps, icq, taps * icq


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # 16 multiply-adds per sdot, about one sdot per cycle; packing 4 bytes per (position,
    # quad); the scalar requantization ~4 cycles per output
    y, w = graph.tensors[op.outputs[0]], graph.tensors[op.inputs[3]]
    group, _, _, _, kq = _geometry_k(graph, op)
    positions = float(np.prod(y.shape)) / max(1, y.shape[1])
    macs = float(np.prod(y.shape)) * float(np.prod(w.shape[1:]))
    return macs / 16.0 + positions * kq * group + 4.0 * float(np.prod(y.shape))


def _packed_weights(op: Op, graph: Graph):
    """[G][OCGP/MR][KQ][MR][4] int8 centred weights, K ordered (tap, channel quad); and
    the per-channel sums of the centred weights (int32)."""
    group, icg, taps, icq, kq = _geometry_k(graph, op)
    wc = _centred(graph, op)
    oc = wc.shape[0]
    ocg = oc // group
    ocgp = -(-ocg // MR) * MR
    a = np.zeros((group, ocgp, taps, 4 * icq), np.int8)
    a[:, :ocg, :, :icg] = wc.reshape(group, ocg, icg, taps).transpose(0, 1, 3, 2)
    panels = a.reshape(group, ocgp // MR, MR, kq, 4).transpose(0, 1, 3, 2, 4)
    name = graph.unique_name(op.inputs[3] + "__dot_4x4")
    graph.add_const(name, np.ascontiguousarray(panels).reshape(-1), "int8")
    sums = graph.unique_name(op.inputs[3] + "__dot_sums")
    graph.add_const(sums, wc.sum(axis=1).astype(np.int32), "int32")
    return name, sums, ocgp


def _micro_kernel() -> str:
    lines = [f"                    int32x4_t " + ", ".join(f"c{o}{v} = vdupq_n_s32(0)"
                                                        for v in range(NR // 4)) + ";"
             for o in range(MR)]
    lines += ["                    const int8_t *bk = bj, *ak = ap;",
              "                    for (kq = 0; kq < KQ; ++kq, bk += NB * 4, ak += 32) {",
              "                        const int8x16_t x0 = vld1q_s8(bk), x1 = vld1q_s8(bk + 16), "
              "x2 = vld1q_s8(bk + 32);",
              "                        const int8x16_t w0 = vld1q_s8(ak), w1 = vld1q_s8(ak + 16);"]
    for o in range(MR):
        lines.append("                        " + " ".join(
            f"c{o}{v} = vdotq_laneq_s32(c{o}{v}, x{v}, w{o // 4}, {o % 4});"
            for v in range(NR // 4)))
    lines.append("                    }")
    for o in range(MR):
        lines.append("                    " + " ".join(
            f"vst1q_s32(tile[{o}] + {4 * v}, c{o}{v});" for v in range(NR // 4)))
    return "\n".join(lines) + "\n"


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="neon64dot",
            applies=_applies, cost=cost, label="arm64 dot product: 4x4 int8 blocks (sdot)")
def lower_qlinear_conv_dot(op: Op, graph: Graph):
    pt = qlinear_conv_parts(op, graph)
    geo, rq = pt["geo"], pt["rq"]
    group, icg, taps, icq, kq = _geometry_k(graph, op)
    p = geo["OH"] * geo["OW"]
    nb = max(NR, min(1024, BLOCK_BYTES // max(1, 4 * kq)) // NR * NR)
    nb = min(nb, -(-p // NR) * NR)
    ins = list(pt["ins"])
    ins[1], sums, ocgp = _packed_weights(op, graph)
    ins.append(sums)
    xt, yt = pt["xt"], rq.ctype
    shift = 128 if xt == "uint8_t" else 0
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int8_t *a = (const int8_t *)in_ptrs[1];  /* [G][OCGP/8][KQ][8][4] */
    const int32_t *wsum = (const int32_t *)in_ptrs[{len(ins) - 1}];
{pt["head"]}
    const int32_t xz = {pt["x_zp"]};
    const int32_t xzs = xz - {shift};  /* the zero point in the shifted (int8) domain */
    const int32_t ICG = C / G, OCG = OC / G, P = OH * OW, HW = H * W;
    int8_t *bp = (int8_t *)workspace;  /* [KQ][NB][4]: one block of positions */
    int32_t tile[{MR}][{NR}];
    int32_t b, g, p0, j, kq, r, t;
    for (b = 0; b < N; ++b)
        for (g = 0; g < G; ++g) {{
            const {xt} *xg = x + ((int64_t)b * C + (int64_t)g * ICG) * HW;
            {yt} *yg = y + ((int64_t)b * OC + (int64_t)g * OCG) * P;
            const int8_t *ag = a + (int64_t)g * OCGP * KQ * 4;
            for (p0 = 0; p0 < P; p0 += NB) {{
                const int32_t nb = P - p0 < NB ? P - p0 : NB;
                const int32_t nbr = (nb + {NR - 1}) / {NR} * {NR};
                for (kq = 0; kq < KQ; ++kq) {{  /* pack: 4 channels of a cell side by side */
                    const int32_t tap = kq / ICQ, c0 = 4 * (kq - tap * ICQ);
                    const int32_t ky = tap / KW, kx = tap - ky * KW;
                    int8_t *dst = bp + (int64_t)kq * NB * 4;
                    int32_t oy = p0 / OW, ox = p0 - (p0 / OW) * OW;
                    for (j = 0; j < nbr; ++j, dst += 4) {{
                        const int32_t iy = oy * SH - PT + ky * DH, ix = ox * SW - PL + kx * DW;
                        if (j >= nb) {{
                            dst[0] = dst[1] = dst[2] = dst[3] = 0;
                            continue;
                        }}
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) {{
                            dst[0] = dst[1] = dst[2] = dst[3] = (int8_t)xzs;  /* adds 0 */
                        }} else {{
                            const {xt} *cell = xg + (int64_t)c0 * HW + (int64_t)iy * W + ix;
                            for (t = 0; t < 4; ++t)  /* channels past ICG: weight 0 */
                                dst[t] = c0 + t < ICG ?
                                    (int8_t)((int32_t)cell[(int64_t)t * HW] - {shift}) : 0;
                        }}
                        if (++ox == OW) {{
                            ox = 0;
                            ++oy;
                        }}
                    }}
                }}
                for (j = 0; j < nb; j += {NR}) {{
                    const int8_t *bj = bp + (int64_t)j * 4;
                    int32_t o0;
                    for (o0 = 0; o0 < OCG; o0 += {MR}) {{
                        const int8_t *ap = ag + (int64_t)o0 * KQ * 4;
MICRO_KERNEL
                        for (r = 0; r < {MR} && o0 + r < OCG; ++r) {{
                            const int32_t o = g * OCG + o0 + r;
                            {yt} *yo = yg + (int64_t)(o0 + r) * P + p0 + j;
                            {pt["oc_setup"]}
                            const int32_t zc = {wrapping_mul("xzs", "wsum[o]")};
                            for (t = 0; t < {NR} && j + t < nb; ++t) {{
                                const int32_t acc = {wrapping_sub("tile[r][t]", "zc")};  /* = sum (x-zx)(w-zw) */
                                yo[t] = {rq.store(rq.value(wrapping_add("acc", "bo"), "mult", "rs"), "yz")};
                            }}
                        }}
                    }}
                }}
            }}
        }}
""".replace("MICRO_KERNEL", _micro_kernel())
    name = f"qlinear_conv_dot_neon64dot_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, rq.helpers, isa="neon64dot")
    params = PARAMS.pack(**geo, KQ=kq, ICQ=icq, OCGP=ocgp, NB=nb)
    return [Instr(kernel, ins, [op.outputs[0]], params, workspace_bytes=kq * nb * 4 + 64,
                  note=f"arm64 sdot int8 GEMM {MR}x{NR} over (tap, channel quad) 4x4 blocks, "
                       f"blocks of {nb} positions")]
