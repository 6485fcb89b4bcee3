"""What the portable and NEON NCHW44 convolutions share: geometry, kernel names, the
blocked loop nest they fill with their inner block, the padding helper."""
from __future__ import annotations

import re

from ...codegen.kernel import Instr, Kernel
from ...codegen.params import i32, int_constants, schema
from ...codegen.parallel import (parts_with_scratch, scratch_bytes, scratch_parts, scratch_stride,
                                 scratch_tag)
from ...ir import Graph, Op
from ..elementwise.activation import activation_tag


# Channel blocks of 4 (hybrid: the input in NCHW, one channel per block); kernel size,
# stride and dilation are compiled in.
CONV44_PARAMS = schema(i32("N", "batch"), i32("ICB", "input channel blocks"),
                       i32("H", "input height"), i32("W", "input width"),
                       i32("OCB", "output channel blocks"), i32("OH", "output height"),
                       i32("OW", "output width"), i32("PT", "padding top"),
                       i32("PL", "padding left"), i32("Hp", "padded input height"),
                       i32("Wp", "padded input width"))


def pad_helper(ctype: str = "float", tag: str = "n44") -> tuple:
    """The helper `megcc_<tag>_pad` copying channel-blocked planes of `ctype` into a
    zero-bordered region (NCHW44 float, NCHW88 float16_t)."""
    return (f"{tag}_pad", r"""/* Copy `planes` planes of H x W pixels of L UNITS into a zero-bordered Hp x Wp region
   (PT rows above, PL columns left): the conv windows then never test bounds. */
static void megcc_TAG_pad(const CT *x, CT *xp, int32_t planes, int32_t H, int32_t W,
        int32_t L, int32_t PT, int32_t PL, int32_t Hp, int32_t Wp) {
    const int32_t left = PL < Wp ? PL : Wp;
    const int32_t copy = W < Wp - left ? W : Wp - left;
    int32_t c, r;
    for (c = 0; c < planes; ++c)
        for (r = 0; r < Hp; ++r) {
            CT *row = xp + ((int64_t)c * Hp + r) * Wp * L;
            const int32_t iy = r - PT;
            if (iy < 0 || iy >= H) {
                memset(row, 0, sizeof(CT) * (size_t)Wp * (size_t)L);
                continue;
            }
            memset(row, 0, sizeof(CT) * (size_t)left * (size_t)L);
            memcpy(row + (int64_t)left * L, x + ((int64_t)c * H + iy) * W * L,
                   sizeof(CT) * (size_t)copy * (size_t)L);
            memset(row + (int64_t)(left + copy) * L, 0,
                   sizeof(CT) * (size_t)(Wp - left - copy) * (size_t)L);
        }
}
""".replace("TAG", tag).replace("CT", ctype).replace(
        "UNITS", "floats" if ctype == "float" else "values"))


PAD_HELPER = pad_helper()



def conv44_geometry(op: Op, graph: Graph) -> dict:
    """Everything a ConvNCHW44 kernel is specialised on, and its params."""
    kind = op.attrs["kind"]
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    w = graph.tensors[op.inputs[1]]
    kh, kw = (w.shape[1:3] if kind == "depthwise" else w.shape[2:4])
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pt, pl, pb, pr = op.attrs.get("pads", [0, 0, 0, 0])
    lanes = 1 if kind == "hybrid" else 4
    n, icb = x.shape[0], x.shape[1]  # hybrid: NCHW input, one-lane blocks
    h, wd = x.shape[2], x.shape[3]
    ocb, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    hp = (oh - 1) * sh + (kh - 1) * dh + 1
    wp = (ow - 1) * sw + (kw - 1) * dw + 1
    padded = pt > 0 or pl > 0 or hp > h or wp > wd
    if kind != "depthwise" and kh == kw == sh == sw == 1 and not padded:
        # 1x1 stride 1: the image is one row of H*W pixels (longer vector blocks)
        h, wd, oh, ow, hp, wp = 1, h * wd, 1, oh * ow, 1, h * wd
    has_bias = len(op.inputs) > 2 and bool(op.inputs[2])
    act = op.attrs.get("activation")
    macs = n * ocb * 4 * oh * ow * kh * kw * (1 if kind == "depthwise" else icb * lanes)
    # the most parts the kernel makes (each has its own padded copy in the workspace)
    static = isinstance(ocb, int) and isinstance(macs, int)
    most = scratch_parts(graph)  # at most one per thread (max_threads)
    parts = min(most, ocb) if static and macs >= PARALLEL_MIN_MACS else 1
    slope = op.inputs[3] if op.attrs.get("prelu") else ""  # a fused per-channel PReLU
    return dict(kind=kind, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, lanes=lanes,
                has_bias=has_bias, act=act, padded=padded, slope=slope,
                params=CONV44_PARAMS.pack(N=n, ICB=icb, H=h, W=wd, OCB=ocb, OH=oh, OW=ow,
                                          PT=pt, PL=pl, Hp=hp, Wp=wp),
                workspace=scratch_bytes(parts, (1 if kind == "depthwise" else icb) * hp * wp * lanes) * padded,
                parts=parts, most=most, macs=macs, static=static)


def conv44_name(geo: dict, suffix: str = "") -> str:
    return (f"conv_nchw44_{geo['kind']}_k{geo['kh']}x{geo['kw']}_s{geo['sh']}x{geo['sw']}"
            f"_d{geo['dh']}x{geo['dw']}_f32{'_bias' if geo['has_bias'] else ''}"
            f"{'_prelu' if geo['slope'] else ''}{activation_tag(geo['act'])}"
            f"{scratch_tag(geo['most']) if geo['static'] else '_1part'}{suffix}")


def conv44_body(geo: dict, block, nb: int) -> str:
    """The loop nest every NCHW44 conv kernel shares: per image (zero-padded into the
    workspace when needed), output channel block `ocb` and output row `oy`, output pixels
    in blocks of `nb` (the rest in blocks of nb/2, nb/4, ..., 1); block(k) is the C that
    computes and stores `k` pixels from `ox` on, reading the source image `xs` (plane
    extents XH x XW)."""
    bias = "const float *bias = (const float *)in_ptrs[2];" if geo["has_bias"] else ""
    if geo["slope"]:
        bias += "\n    const float *slope = (const float *)in_ptrs[3];"
    # A channel-wise conv reads only its own channel block: it pads one plane at a time
    # (a small workspace); a dense conv reads every input block for each output block.
    dw = geo["kind"] == "depthwise"
    # Parts (split_kernel): ranges of output channel blocks, each with its own padded copy
    # in the workspace (a dense conv's part pads the whole image: a copy much cheaper than
    # the part's multiply-adds).
    pad_image = """        if (padded) {
            megcc_n44_pad(xs, scratch, ICB, H, W, L, PT, PL, Hp, Wp);
            xs = (const float *)scratch;
        }
"""
    pad_plane = """            const float *xp = xs + (int64_t)ocb * H * W * 4;
            if (padded) {
                megcc_n44_pad(xp, scratch, 1, H, W, 4, PT, PL, Hp, Wp);
                xp = (const float *)scratch;
            }
"""
    # the row's last OW % nb pixels: halving blocks (7 = 4 + 2 + 1), not one at a time
    tails = "".join(f"""                if (ox + {t} <= OW) {{
{block(t)}                    ox += {t};
                }}
""" for t in (nb // 2, nb // 4, nb // 8) if t)
    loops = f"""    for (b = 0; b < N; ++b) {{
        const float *xs = x + (int64_t)b * ICB * H * W * L;
        int32_t ocb, oy, ox,{"" if dw else " icb,"} ky, kx, j;
{"" if dw else pad_image}        for (ocb = ocb0; ocb < ocb1; ++ocb) {{
{pad_plane if dw else ""}            for (oy = 0; oy < OH; ++oy) {{
                float *yr = y + (((int64_t)b * OCB + ocb) * OH + oy) * OW * 4;
                for (ox = 0; ox + {nb} <= OW; ox += {nb}) {{
{block(nb)}                }}
{tails}
            }}
        }}
    }}
"""
    # the source plane extents, and the geometry constants, that the loops use
    extents = "".join(f"    const int32_t {v} = padded ? {p} : {u};  /* source plane {what} */\n"
                      for v, p, u, what in (("XH", "Hp", "H", "height"), ("XW", "Wp", "W", "width"))
                      if re.search(r"\b" + v + r"\b", loops))
    constants = int_constants(loops, L=geo["lanes"], KH=geo["kh"], KW=geo["kw"], SH=geo["sh"],
                              SW=geo["sw"], DH=geo["dh"], DW=geo["dw"])
    area = "(int64_t)Hp * Wp * 4" if dw else f"(int64_t)ICB * Hp * Wp * {geo['lanes']}"  # a part's copy
    return f"""    const float *x = (const float *)in_ptrs[0];
    const float *w = (const float *)in_ptrs[1];
    float *y = (float *)out_ptrs[0];
    {bias}
    const int padded = PT > 0 || PL > 0 || Hp > H || Wp > W;
    float *scratch = padded ? (float *)workspace + part * {scratch_stride(area)} : 0;
    const int32_t ocb0 = (int32_t)((int64_t)OCB * part / parts),
                  ocb1 = (int32_t)((int64_t)OCB * (part + 1) / parts);
{extents}{constants}    int32_t b;
{loops}"""


# Below this many multiply-adds an NCHW44 conv runs on the calling thread.
PARALLEL_MIN_MACS = 1 << 17


def conv44_parts(geo: dict) -> str:
    """C expression: the kernel's parts (ranges of output channel blocks, a padded copy
    each), or "1" for a conv too small to pay for waking the pool."""
    if not geo["static"] or geo["most"] == 1:  # the workspace holds one padded copy: one part
        return "1"
    k = geo["kh"] * geo["kw"]
    taps = f"(int64_t){k}" if geo["kind"] == "depthwise" else f"(int64_t){k * geo['lanes']} * ICB"
    macs = f"(int64_t)N * OCB * 4 * OH * OW * {taps}"
    return f"({macs} >= {PARALLEL_MIN_MACS} ? {parts_with_scratch('OCB', geo['most'])} : 1)"


def input_row(geo: dict) -> str:
    """The source row of kernel row `ky` for output pixel `ox` (input block `icb`;
    channel-wise convs read the plane `xp` of their own block)."""
    if geo["kind"] == "depthwise":
        return "xp + ((int64_t)(oy * SH + ky * DH) * XW + ox * SW) * 4"
    return "xs + (((int64_t)icb * XH + oy * SH + ky * DH) * XW + ox * SW) * L"


def weight_taps(geo: dict) -> str:
    """The weights of tap (ky, kx) for output block `ocb` (and input block `icb`)."""
    if geo["kind"] == "depthwise":
        return "w + (((int64_t)ocb * KH + ky) * KW + kx) * 4"
    return "w + ((((int64_t)ocb * ICB + icb) * KH + ky) * KW + kx) * L * 4"


# Output pixels per register block: 8 accumulator vectors (+ 4 weight vectors fit ARMv7's
# 16 vector registers).
BLOCK = 8


def conv44_instr(op: Op, geo: dict, kernel: Kernel, note: str) -> Instr:
    inputs = [op.inputs[0], op.inputs[1], op.inputs[2] if geo["has_bias"] else ""]
    if geo["slope"]:
        inputs.append(geo["slope"])
    return Instr(kernel, inputs, [op.outputs[0]], geo["params"], workspace_bytes=geo["workspace"],
                 note=note)
