"""QLinearConv on AVX2 for a network's first layer: few input channels (at most 4, e.g. RGB),
any kernel size, stride 2 vectorised (others scalar), on conv_gemm_avx2_s8's 6x16
`vpmaddwd` tile and register epilogue (same exact int32 accumulators: bit-identical).

What differs is the reduction order. conv_gemm_avx2_s8 pairs two input *channels* per int16
pair: with 3 channels a quarter of the pairs is padding, and every (tap, pair) step of the
packing checks the window's edges. Here a pair is two horizontally adjacent *taps* of one
channel (kx, kx + 1; an odd kernel width pads the last pair with a zero weight), and the
input is first copied into a plane padded with its zero point, so no window check remains:
for stride 2 the pairs of 16 consecutive output positions are exactly 32 consecutive input
bytes, widened to int16 and centred (two loads and stores). ResNet's 7x7 stem: 84 pairs per
position instead of 98; SqueezeNet's 3x3: 18 either way, but packed without scalar work."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..conv.geometry import conv_schema
from ..registry import implements
from . import conv_gemm_avx2_s8 as gemm
from . import requant_avx2
from .conv_generic_s8 import QTYPES, qlinear_conv_parts
from .weights import centred_weights, not_constant

PARAMS = conv_schema(i32("KH", "kernel height"), i32("KW", "kernel width"),
                     i32("SH", "stride height"), i32("SW", "stride width"),
                     i32("DH", "dilation height"), i32("DW", "dilation width"),
                     i32("KWP", "horizontal tap pairs (kernel width / 2, rounded up)"),
                     i32("K2", "reduction length in int16 pairs (C * KH * KWP)"),
                     i32("PHD", "padded plane rows"), i32("PWD", "padded plane row stride"),
                     i32("OCGP", "output channels rounded up to MR"),
                     i32("NB", "output positions per packed block (multiple of 16)"))

MR = gemm.MR
MAX_CHANNELS = 4


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    if op.attrs.get("requant") == "fixed":
        return "fixed-point requantization (the portable epilogue's)"
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[3]]
    if len(x.shape) != 4:
        return "not 2-D"
    if int(op.attrs.get("group", 1)) != 1:
        return "grouped"
    if x.shape[1] > MAX_CHANNELS:
        return f"more than {MAX_CHANNELS} input channels (conv_gemm_avx2_s8 pairs channels)"
    if list(op.attrs.get("dilations", [1, 1])) != [1, 1]:
        return "dilated"
    why = not_constant(op, graph)
    if why:
        return why
    if op.attrs.get("activation") not in requant_avx2.BOUND_ACTIVATIONS:
        return "real-valued activation"
    return None


def _k(op: Op, graph: Graph):
    w = graph.tensors[op.inputs[3]]
    c, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    kwp = (kw + 1) // 2
    return c, kh, kw, kwp, c * kh * kwp


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # conv_gemm_avx2_s8's terms (the same multiply-adds: both pad to whole pairs), its
    # packing at ~1/8 per (position, pair) for stride 2 (two vector loads and stores per 16
    # pairs) or 1 otherwise (scalar), and the plane copy
    y = graph.tensors[op.outputs[0]]
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[3]]
    _, _, _, _, k2 = _k(op, graph)
    macs = float(np.prod(y.shape)) * float(np.prod(w.shape[1:]))
    positions = float(np.prod(y.shape)) / max(1, y.shape[1])
    sw = list(op.attrs.get("strides", [1, 1]))[1]
    per = 0.125 if sw == 2 else 1.0
    return (macs / 24.0 + per * positions * k2 + 1.0 * float(np.prod(y.shape))
            + 0.1 * float(np.prod(x.shape)))


def _packed_weights(op: Op, graph: Graph, oc: int) -> str:
    """[OCP/MR][K2][MR][2] int16, K ordered (channel, ky, kx pair)."""
    c, kh, kw, kwp, k2 = _k(op, graph)
    wc = centred_weights(op, graph).reshape(oc, c, kh, kw)
    ocp = -(-oc // MR) * MR
    a = np.zeros((ocp, c, kh, 2 * kwp), np.int16)
    a[:oc, :, :, :kw] = wc
    panels = a.reshape(ocp // MR, MR, k2, 2).transpose(0, 2, 1, 3)
    name = graph.unique_name(op.inputs[3] + "__avx2_stem_pairs")
    graph.add_const(name, np.ascontiguousarray(panels).reshape(-1), "int16")
    return name


def _pack(xt: str) -> str:
    widen = "_mm256_cvtepu8_epi16" if xt == "uint8_t" else "_mm256_cvtepi8_epi16"
    return f"""            for (kk = 0; kk < K2; ++kk) {{
                const int32_t c = kk / (KH * KWP), r2 = kk - c * (KH * KWP);
                const int32_t ky = r2 / KWP, kx = 2 * (r2 - ky * KWP);
                int16_t *dst = bp + (int64_t)kk * NBS * 2;
                int32_t jj = 0;
                while (jj < nb) {{  /* one output row segment at a time */
                    const int32_t pp = p0 + jj, oy = pp / OW, ox = pp - oy * OW;
                    const int32_t seg = OW - ox < nb - jj ? OW - ox : nb - jj;
                    /* the plane is padded: every window position is inside it */
                    const {xt} *s = plane + ((int64_t)c * PHD + oy * SH + ky) * PWD + ox * SW + kx;
                    int16_t *d = dst + 2 * jj;
                    int32_t t = 0;
                    if (SW == 2) {{  /* 16 positions: 32 consecutive bytes are their pairs */
                        for (; t < seg; t += 16) {{
                            const __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * t));
                            const __m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * t + 16));
                            _mm256_storeu_si256((__m256i *)(void *)(d + 2 * t), _mm256_sub_epi16({widen}(lo), vxz));
                            _mm256_storeu_si256((__m256i *)(void *)(d + 2 * t + 16), _mm256_sub_epi16({widen}(hi), vxz));
                        }}
                    }} else {{
                        for (; t < seg; ++t) {{
                            d[2 * t] = (int16_t)((int32_t)s[(int64_t)t * SW] - xz);
                            d[2 * t + 1] = (int16_t)((int32_t)s[(int64_t)t * SW + 1] - xz);
                        }}
                    }}
                    jj += seg;  /* a vector run past seg wrote pairs the next segment rewrites */
                }}
            }}
"""


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="avx2",
            applies=_applies, cost=cost,
            label="avx2 few-channel stem: horizontal tap pairs on a padded plane (vpmaddwd)")
def lower_qlinear_conv_stem_avx2(op: Op, graph: Graph):
    pt = qlinear_conv_parts(op, graph)
    geo, rq = pt["geo"], pt["rq"]
    oc = geo["OC"]
    c, kh, kw, kwp, k2 = _k(op, graph)
    ocgp = -(-oc // MR) * MR
    p = geo["OH"] * geo["OW"]
    phd = (geo["OH"] - 1) * geo["SH"] + kh
    # a row holds every window and the vector run's overshoot (up to 32 bytes past a
    # segment's end); the plane's end gets 64 bytes of slack
    pwd = (geo["OW"] - 1) * geo["SW"] + 2 * kwp + 32
    nb = max(16, min(1024, gemm.BLOCK_BYTES // max(1, 4 * k2)) // 16 * 16)
    nb = min(nb, -(-p // 16) * 16)
    ins = list(pt["ins"])
    ins[1] = _packed_weights(op, graph, oc)
    xt, yt = pt["xt"], rq.ctype
    has_bias = "bias" in pt["head"]
    plane_bytes = c * phd * pwd + 64
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int16_t *a = (const int16_t *)in_ptrs[1];  /* MR-row panels of pairs */
{pt["head"]}
    {requant_avx2.setup(rq)}
    const int32_t xz = {pt["x_zp"]};
    const __m256i vxz = _mm256_set1_epi16((int16_t)xz);
    const int32_t OCG = OC, P = OH * OW;
    const int32_t NBS = NB + 16;  /* see conv_gemm_avx2_s8 */
    int16_t *bp = (int16_t *)(void *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    float *mults = (float *)(void *)(bp + (int64_t)K2 * NBS * 2);
    {xt} *plane = ({xt} *)(void *)(mults + OC);  /* [C][PHD][PWD] padded with xz */
    int32_t b, g = 0, p0, j, kk, o0;
    for (o0 = 0; o0 < OC; ++o0) {{  /* onnxruntime: x_scale * w_scale[o] / y_scale */
        const float wsc = ws[{"o0" if pt["ws_pc"] else "0"}];
        mults[o0] = xs * wsc{"" if rq.uses_real_scale else " / so"};
    }}
    for (b = 0; b < N; ++b) {{
        {yt} *yg = y + (int64_t)b * OC * P;
        const int16_t *ag = a;
        int32_t ch, iy;
        memset(plane, (int)(uint8_t)xz, (size_t)C * PHD * PWD + 64);
        for (ch = 0; ch < C; ++ch)
            for (iy = 0; iy < H; ++iy) {{
                const int32_t py = iy + PT;
                int32_t x0 = 0, px = PL, len = W;
                if (py >= PHD) break;
                if (px < 0) {{ x0 = -px; px = 0; len -= x0; }}
                if (px + len > PWD - 32) len = PWD - 32 - px;
                if (len > 0)
                    memcpy(plane + ((int64_t)ch * PHD + py) * PWD + px,
                           x + (((int64_t)b * C + ch) * H + iy) * W + x0, (size_t)len);
            }}
        for (p0 = 0; p0 < P; p0 += NB) {{
            const int32_t nb = P - p0 < NB ? P - p0 : NB;
PACK
            for (j = 0; j < nb; j += 16) {{
                const int16_t *bj = bp + (int64_t)j * 2;
                for (o0 = 0; o0 < OCG; o0 += {MR}) {{
                    const int16_t *ap = ag + (int64_t)o0 * K2 * 2;
MICRO_KERNEL
EPILOGUE
                }}
            }}
        }}
    }}
    (void)g;
""".replace("PACK", _pack(xt)).replace("MICRO_KERNEL", gemm._micro_kernel()) \
        .replace("EPILOGUE", gemm._epilogue(rq, has_bias))
    name = f"qlinear_conv_stem_avx2_{pt['variant']}"
    kernel = make_kernel(name, body, PARAMS, isa="avx2")
    params = PARAMS.pack(**geo, KWP=kwp, K2=k2, PHD=phd, PWD=pwd, OCGP=ocgp, NB=nb)
    ws = k2 * (nb + 16) * 4 + 4 * oc + plane_bytes + 128
    return [Instr(kernel, ins, [op.outputs[0]], params, workspace_bytes=ws,
                  note=f"AVX2 stem GEMM {MR}x16 (vpmaddwd) over (channel, row, tap pair), "
                       f"blocks of {nb} positions")]
