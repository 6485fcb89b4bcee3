"""float16 convolutions in the NCHW88 layout (enable_ioc16 + enable_nchw88) on Armv8.2-A +
FP16: ConvNCHW88 (passes/layout_nchw44.layout_nchw88). One NCHW88 vector is one pixel's 8
channels, one float16x8_t, so every multiply-add is an 8-lane fp16 FMA (`fmla v.8h`):

- dense (1x1, 3x3, 5x5, 7x7, any stride and dilation; the kernel size and stride are
  compiled in; grouped convs whose groups are whole blocks, group by group): a register block of 8 output pixels x 8 output channels (8 accumulators);
  per input block and tap, the 8 weight vectors (one per input lane) are loaded once and
  each pixel's input vector multiplies them by lane (`fmla v.8h, v.8h, v.h[i]`, 64 FMAs
  per 8 + 8 loads); a 1x1 stride-1 unpadded conv walks the image as one long row;
- depthwise: one FMA per tap per pixel with the tap's weight vector (`fmla v.8h, v.8h,
  v.8h`);
- hybrid first conv (NCHW float16 input, IC < 8): the input pixel broadcast (`ld1r`) times
  the tap's 8 output-channel weights.
The accumulators start at the bias; the epilogue adds the fused residual (an NCHW88
tensor), then applies ReLU / ReLU6 / Clip / HardSwish in registers (f16_clamp) and stores.
Accumulation is in float16, in the order (input block, ky, kx, input lane) for dense convs
and (input channel, ky, kx) for hybrid ones (tests/kernels/f16_nchw88_reference.py).
Padding is materialised once per image in the workspace (zero borders), so the inner loops
never test bounds. Single-threaded, like the other float16 kernels.
"""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, schema
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..elementwise.f16_clamp import clamp_code, clamp_tag, f16_clamp
from ..registry import implements
from .nchw44_common import pad_helper

L = 8  # channels per NCHW88 block (one float16x8_t)
BLOCK = 8  # output pixels per register block (8 accumulators + 8 weight vectors)
PARAMS = schema(i32("N", "batch"), i32("ICB", "input channel blocks (hybrid: channels)"),
                i32("H", "input height"), i32("W", "input width"),
                i32("OCB", "output channel blocks"), i32("OH", "output height"),
                i32("OW", "output width"), i32("PT", "padding top"), i32("PL", "padding left"),
                i32("Hp", "padded input height"), i32("Wp", "padded input width"))

# acc += w * x[lane], one `fmla v.8h, v.8h, v.h[lane]`. Written as the instruction: given the
# intrinsic, GCC materialises most lane broadcasts as `dup` + vector FMA here (the by-element
# form takes its lane source only from v0-v15, and with 8 pixel vectors, 8 weight vectors
# and 8 accumulators live it gives up), doubling the inner loop; "x" is that register class.
FMA_LANE_HELPER = ("n88_fma_lane_f16", r"""/* acc += w * x[lane] in one by-element fp16 FMA (the lane source in v0-v15). */
#define MEGCC_N88_FMA_LANE(acc, w, x, lane) \
    __asm__("fmla %0.8h, %1.8h, %2.h[" #lane "]" : "+w"(acc) : "w"(w), "x"(x))
""")

PAD_HELPER = pad_helper("float16_t", "n88")  # megcc_n88_pad


def geometry(op: Op, graph: Graph) -> dict:
    """Everything a ConvNCHW88 kernel is specialised on, and its params."""
    kind = op.attrs["kind"]
    x, y, w = (graph.tensors[n] for n in (op.inputs[0], op.outputs[0], op.inputs[1]))
    kh, kw = w.shape[1:3] if kind == "depthwise" else w.shape[2:4]
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pt, pl, _, _ = op.attrs.get("pads", [0, 0, 0, 0])
    lanes = 1 if kind == "hybrid" else L
    n, icb, h, wd = x.shape[:4]
    ocb, oh, ow = y.shape[1:4]
    hp = (oh - 1) * sh + (kh - 1) * dh + 1
    wp = (ow - 1) * sw + (kw - 1) * dw + 1
    padded = pt > 0 or pl > 0 or hp > h or wp > wd
    if kind != "depthwise" and kh == kw == sh == sw == 1 and not padded:
        h, wd, oh, ow, hp, wp = 1, h * wd, 1, oh * ow, 1, h * wd  # one long row
    residual = bool(op.attrs.get("residual")) and len(op.inputs) > 3 and bool(op.inputs[3])
    # a grouped dense conv: each group whole blocks (passes/layout_nchw44.conv_kind)
    groups = 1 if kind == "depthwise" else int(op.attrs.get("group", 1))
    macs = n * ocb * L * oh * ow * kh * kw * (1 if kind == "depthwise" else icb // groups * lanes)
    planes = 1 if kind == "depthwise" else icb
    return dict(kind=kind, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, lanes=lanes, groups=groups,
                has_bias=len(op.inputs) > 2 and bool(op.inputs[2]), residual=residual,
                act=op.attrs.get("activation"), padded=padded, macs=macs,
                params=PARAMS.pack(N=n, ICB=icb, H=h, W=wd, OCB=ocb, OH=oh, OW=ow, PT=pt,
                                   PL=pl, Hp=hp, Wp=wp),
                workspace=planes * hp * wp * lanes * 2 * padded)


def variant(geo: dict) -> str:
    k, s = f"{geo['kh']}x{geo['kw']}", f"s{geo['sh']}"
    if geo["kind"] == "hybrid":
        return f"hybrid NCHW->NCHW88 {k} {s}"
    return f"{'depthwise' if geo['kind'] == 'depthwise' else 'dense'} {k} {s}"


def _block(geo: dict, nb: int) -> str:
    """C computing nb output pixels (from ox) x 8 output channels of block ocb."""
    acc = [f"a{j}" for j in range(nb)]
    bias = "vld1q_f16(bias + (int64_t)ocb * 8)" if geo["has_bias"] else "vdupq_n_f16(0)"
    lines = [f"float16x8_t {', '.join(acc)};", f"{acc[0]} = {bias};"]
    lines += [f"{a} = {acc[0]};" for a in acc[1:]]
    off = lambda j: f"({j} * SW + kx * DW)"  # noqa: E731  the pixel's column in the row
    if geo["kind"] == "depthwise":
        loop_in = ""
        row = "xp + ((int64_t)(oy * SH + ky * DH) * XW + ox * SW) * 8"
        wload = "const float16x8_t wv = vld1q_f16(w + (((int64_t)ocb * KH + ky) * KW + kx) * 8);"
        taps = [f"{a} = vfmaq_f16({a}, vld1q_f16(xr + {off(j)} * 8), wv);"
                for j, a in enumerate(acc)]
    elif geo["kind"] == "dense":  # (input blocks icb0 .. icb0 + ICBG: the group's)
        loop_in = "for (icb = icb0; icb < icb0 + ICBG; ++icb) "
        row = "xs + (((int64_t)icb * XH + oy * SH + ky * DH) * XW + ox * SW) * 8"
        wload = ("const float16_t *wk = w + ((((int64_t)ocb * ICBG + icb - icb0) * KH + ky) * KW + kx) * 64;\n"
                 + " ".join(f"const float16x8_t w{i} = vld1q_f16(wk + {8 * i});" for i in range(L)))
        taps = []
        for j, a in enumerate(acc):
            taps.append(f"{{ const float16x8_t xv = vld1q_f16(xr + {off(j)} * 8); "
                        + " ".join(f"MEGCC_N88_FMA_LANE({a}, w{i}, xv, {i});" for i in range(L))
                        + " }")
    else:  # hybrid: NCHW input, one channel per "block"
        loop_in = "for (icb = 0; icb < ICB; ++icb) "
        row = "xs + ((int64_t)icb * XH + oy * SH + ky * DH) * XW + ox * SW"
        wload = ("const float16x8_t wv = vld1q_f16(w + ((((int64_t)ocb * ICB + icb) * KH + ky) "
                 "* KW + kx) * 8);")
        taps = [f"{a} = vfmaq_f16({a}, wv, vld1q_dup_f16(xr + {off(j)}));"
                for j, a in enumerate(acc)]
    tap_code = "\n                            ".join(taps)
    lines.append(f"""{loop_in}for (ky = 0; ky < KH; ++ky) {{
                        const float16_t *xr = {row};
                        for (kx = 0; kx < KW; ++kx) {{
                            {wload}
                            {tap_code}
                        }}
                    }}""")
    for j, a in enumerate(acc):
        if geo["residual"]:
            lines.append(f"{a} = vaddq_f16({a}, vld1q_f16(rr + (ox + {j}) * 8));")
        act = clamp_code(geo["act"], a)
        if act:
            lines.append(act)
        lines.append(f"vst1q_f16(yr + (ox + {j}) * 8, {a});")
    return "{\n                    " + "\n                    ".join(lines) + "\n                }\n"


def _body(geo: dict) -> str:
    dw = geo["kind"] == "depthwise"
    pad_image = """        if (padded) {
            megcc_n88_pad(xs, scratch, ICB, H, W, L, PT, PL, Hp, Wp);
            xs = (const float16_t *)scratch;
        }
"""
    pad_plane = """            const float16_t *xp = xs + (int64_t)ocb * H * W * 8;
            if (padded) {
                megcc_n88_pad(xp, scratch, 1, H, W, 8, PT, PL, Hp, Wp);
                xp = (const float16_t *)scratch;
            }
"""
    tails = "".join(f"""                if (ox + {t} <= OW) {{
{_block(geo, t)}                    ox += {t};
                }}
""" for t in (BLOCK // 2, BLOCK // 4, BLOCK // 8))
    res = ("                const float16_t *rr = res + (((int64_t)b * OCB + ocb) * OH + oy) * OW * 8;\n"
           if geo["residual"] else "")
    return f"""    const float16_t *x = (const float16_t *)in_ptrs[0];
    const float16_t *w = (const float16_t *)in_ptrs[1];
    const float16_t *bias = (const float16_t *)in_ptrs[2];
    const float16_t *res = (const float16_t *)in_ptrs[3];
    float16_t *y = (float16_t *)out_ptrs[0];
    const int padded = PT > 0 || PL > 0 || Hp > H || Wp > W;
    float16_t *scratch = (float16_t *)workspace;
    const int32_t XH = padded ? Hp : H, XW = padded ? Wp : W;  /* source plane extents */
    enum {{ L = {geo['lanes']}, KH = {geo['kh']}, KW = {geo['kw']}, SH = {geo['sh']}, SW = {geo['sw']},
           DH = {geo['dh']}, DW = {geo['dw']}, G = {geo['groups']} }};
    const int32_t ICBG = ICB / G, OCBG = OCB / G;  /* blocks per group */
    int32_t b;
    (void)bias; (void)res; (void)XH; (void)ICBG; (void)OCBG;
    for (b = 0; b < N; ++b) {{
        const float16_t *xs = x + (int64_t)b * ICB * H * W * L;
        int32_t ocb, oy, ox,{"" if dw else " icb,"} ky, kx;
{"" if dw else pad_image}        for (ocb = 0; ocb < OCB; ++ocb) {{
{pad_plane if dw else ""}            const int32_t icb0 = ocb / OCBG * ICBG;  /* the group's first input block */
            (void)icb0;
            for (oy = 0; oy < OH; ++oy) {{
                float16_t *yr = y + (((int64_t)b * OCB + ocb) * OH + oy) * OW * 8;
{res}                for (ox = 0; ox + {BLOCK} <= OW; ox += {BLOCK})
{_block(geo, BLOCK)}{tails}            }}
        }}
    }}
"""


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    if f16_clamp(op.attrs.get("activation")) is False:
        return "activation other than ReLU / clamp / HardSwish"
    if op.attrs.get("prelu"):
        return "a fused PReLU epilogue"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    """One 8-lane FMA per multiply-add of 8 output channels."""
    return geometry(op, graph)["macs"] / 8 / isa.core.fma_per_cycle + 50


@implements("ConvNCHW88", dtypes=("float16",), layout="nchw88", requires="f16.direct",
            applies=_applies, cost=_cost, label="NEON fp16 NCHW88 direct")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    geo = geometry(op, graph)
    name = (f"conv_nchw88_{geo['kind']}{'_g%d' % geo['groups'] if geo['groups'] > 1 else ''}"
            f"_k{geo['kh']}x{geo['kw']}_s{geo['sh']}x{geo['sw']}"
            f"_d{geo['dh']}x{geo['dw']}_f16{'_bias' if geo['has_bias'] else ''}"
            f"{'_residual' if geo['residual'] else ''}{clamp_tag(geo['act'])}_neon64fp16")
    kernel = make_kernel(name, _body(geo), PARAMS, (PAD_HELPER, FMA_LANE_HELPER),
                         isa="neon64fp16")
    inputs = [op.inputs[0], op.inputs[1], op.inputs[2] if geo["has_bias"] else "",
              op.inputs[3] if geo["residual"] else ""]
    return [Instr(kernel, inputs, [op.outputs[0]], geo["params"],
                  workspace_bytes=geo["workspace"],
                  note=f"nchw88 float16 {variant(geo)}: blocks of {BLOCK} pixels x 8 channels, "
                       f"8-lane fp16 FMA, accumulating in float16, {geo['macs']} MACs")]
