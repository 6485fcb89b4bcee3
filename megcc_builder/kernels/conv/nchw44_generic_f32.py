"""NCHW44 kernels in portable C (float32), and the lowerings of the NCHW44 IR ops.

Tensors are (N, C/4, H, W, 4) (passes/layout_nchw44.py). Every loop over the 4 channel
lanes is innermost with a constant trip count and restrict pointers, so compilers turn it
into one vector operation on any SIMD target. On NEON levels the conv and relayout lowerings
hand over to nchw44_neon.py.

Conv params: N, ICB, H, W, OCB, OH, OW, PT, PL, Hp, Wp where ICB counts input blocks of L
lanes (L = 4; L = 1 for the hybrid conv reading NCHW) and (Hp, Wp) is the zero-padded
input region the windows read. When any padding is needed the kernel first copies one
image into the workspace with zero borders (megcc_n44_pad), so the inner loops never test
bounds.
"""
from __future__ import annotations

from ..ir import Graph, Op
from ..isa import has_neon
from .base import Instr, Kernel, View, kernel_source, lowers
from .conv import activation_code, activation_tag

PAD_HELPER = ("n44_pad", r"""/* Copy `planes` planes of H x W pixels of L floats into a zero-bordered Hp x Wp region
   (PT rows above, PL columns left): the conv windows then never test bounds. */
static void megcc_n44_pad(const float *x, float *xp, int32_t planes, int32_t H, int32_t W,
        int32_t L, int32_t PT, int32_t PL, int32_t Hp, int32_t Wp) {
    const int32_t left = PL < Wp ? PL : Wp;
    const int32_t copy = W < Wp - left ? W : Wp - left;
    int32_t c, r;
    for (c = 0; c < planes; ++c)
        for (r = 0; r < Hp; ++r) {
            float *row = xp + ((int64_t)c * Hp + r) * Wp * L;
            const int32_t iy = r - PT;
            if (iy < 0 || iy >= H) {
                memset(row, 0, sizeof(float) * (size_t)Wp * (size_t)L);
                continue;
            }
            memset(row, 0, sizeof(float) * (size_t)left * (size_t)L);
            memcpy(row + (int64_t)left * L, x + ((int64_t)c * H + iy) * W * L,
                   sizeof(float) * (size_t)copy * (size_t)L);
            memset(row + (int64_t)(left + copy) * L, 0,
                   sizeof(float) * (size_t)(Wp - left - copy) * (size_t)L);
        }
}
""")


# --- geometry shared by the portable and NEON conv kernels ------------------------------

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
    return dict(kind=kind, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, lanes=lanes,
                has_bias=has_bias, act=act, padded=padded,
                params=[n, icb, h, wd, ocb, oh, ow, pt, pl, hp, wp],
                workspace=(1 if kind == "depthwise" else icb) * hp * wp * lanes * 4 * padded,
                macs=n * ocb * 4 * oh * ow * kh * kw * (1 if kind == "depthwise" else icb * lanes))


def conv44_name(geo: dict, suffix: str = "") -> str:
    return (f"conv_nchw44_{geo['kind']}_k{geo['kh']}x{geo['kw']}_s{geo['sh']}x{geo['sw']}"
            f"_d{geo['dh']}x{geo['dw']}_f32{'_bias' if geo['has_bias'] else ''}"
            f"{activation_tag(geo['act'])}{suffix}")


def conv44_body(geo: dict, block, nb: int) -> str:
    """The loop nest every NCHW44 conv kernel shares: per image (zero-padded into the
    workspace when needed), output channel block `ocb` and output row `oy`, output pixels
    in blocks of `nb` (the rest in blocks of nb/2, nb/4, ..., 1); block(k) is the C that
    computes and stores `k` pixels from `ox` on, reading the source image `xs` (plane
    extents XH x XW)."""
    bias = "const float *bias = (const float *)in_ptrs[2];" if geo["has_bias"] else ""
    # A channel-wise conv reads only its own channel block: it pads one plane at a time
    # (a small workspace); a dense conv reads every input block for each output block.
    dw = geo["kind"] == "depthwise"
    pad_image = """        if (padded) {
            megcc_n44_pad(xs, (float *)workspace, ICB, H, W, L, PT, PL, Hp, Wp);
            xs = (const float *)workspace;
        }
"""
    pad_plane = """            const float *xp = xs + (int64_t)ocb * H * W * 4;
            if (padded) {
                megcc_n44_pad(xp, (float *)workspace, 1, H, W, 4, PT, PL, Hp, Wp);
                xp = (const float *)workspace;
            }
"""
    # the row's last OW % nb pixels: halving blocks (7 = 4 + 2 + 1), not one at a time
    tails = "".join(f"""                if (ox + {t} <= OW) {{
{block(t)}                    ox += {t};
                }}
""" for t in (nb // 2, nb // 4, nb // 8) if t)
    return f"""    const float *x = (const float *)in_ptrs[0];
    const float *w = (const float *)in_ptrs[1];
    float *y = (float *)out_ptrs[0];
    {bias}
    const int32_t N = p[0], ICB = p[1], H = p[2], W = p[3], OCB = p[4], OH = p[5], OW = p[6];
    const int32_t PT = p[7], PL = p[8], Hp = p[9], Wp = p[10];
    const int padded = PT > 0 || PL > 0 || Hp > H || Wp > W;
    const int32_t XH = padded ? Hp : H, XW = padded ? Wp : W;  /* source plane extents */
    const int32_t L = {geo['lanes']}, KH = {geo['kh']}, KW = {geo['kw']};
    const int32_t SH = {geo['sh']}, SW = {geo['sw']}, DH = {geo['dh']}, DW = {geo['dw']};
    int32_t b;
    (void)KH; (void)KW; (void)XH;
    for (b = 0; b < N; ++b) {{
        const float *xs = x + (int64_t)b * ICB * H * W * L;
        int32_t ocb, oy, ox, icb, ky, kx, j;
        (void)icb;
{"" if dw else pad_image}        for (ocb = 0; ocb < OCB; ++ocb) {{
{pad_plane if dw else ""}            for (oy = 0; oy < OH; ++oy) {{
                float *yr = y + (((int64_t)b * OCB + ocb) * OH + oy) * OW * 4;
                for (ox = 0; ox + {nb} <= OW; ox += {nb}) {{
{block(nb)}                }}
{tails}
            }}
        }}
    }}
"""


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


# --- portable C --------------------------------------------------------------------------

def _portable_block(geo: dict, nb: int) -> str:
    """nb pixels x 4 output channels in a float[nb][4] the compiler keeps in vector
    registers (every loop has a constant trip count; the lane loop is innermost)."""
    bias = "bias[ocb * 4 + l]" if geo["has_bias"] else "0.0f"
    epi = activation_code(geo["act"], "v")
    if geo["kind"] == "depthwise":
        taps = """for (j = 0; j < NB; ++j)
                                for (l = 0; l < 4; ++l) acc[j][l] += xr[(j * SW + kx * DW) * 4 + l] * wk[l];"""
        loop_in = ""
    else:
        taps = """for (j = 0; j < NB; ++j)
                                for (ic = 0; ic < L; ++ic) {
                                    const float xv = xr[(j * SW + kx * DW) * L + ic];
                                    for (l = 0; l < 4; ++l) acc[j][l] += xv * wk[ic * 4 + l];
                                }"""
        loop_in = "for (icb = 0; icb < ICB; ++icb) "
    if geo["kind"] == "hybrid":
        # a pixel count the compiler does not see as constant keeps it vectorising the lane
        # loop (with a constant one it vectorises across pixels, with shuffles: 2x slower)
        taps = taps.replace("j < NB", "j < nbr")
    return f"""                    enum {{ NB = {nb} }};
                    float acc[NB][4];
                    const int32_t nbr = OW - ox < NB ? OW - ox : NB;
                    int32_t ic, l;
                    (void)ic; (void)nbr;
                    for (j = 0; j < NB; ++j)
                        for (l = 0; l < 4; ++l) acc[j][l] = {bias};
                    {loop_in}for (ky = 0; ky < KH; ++ky) {{
                        const float *restrict xr = {input_row(geo)};
                        for (kx = 0; kx < KW; ++kx) {{
                            const float *restrict wk = {weight_taps(geo)};
                            {taps}
                        }}
                    }}
                    for (j = 0; j < NB; ++j)
                        for (l = 0; l < 4; ++l) {{
                            const float v = acc[j][l];
                            yr[(ox + j) * 4 + l] = {epi};
                        }}
"""


# Output pixels per register block: 8 accumulator vectors (+ 4 weight vectors fit ARMv7's
# 16 vector registers).
BLOCK = 8


def conv44_instr(op: Op, geo: dict, kernel: Kernel, note: str) -> Instr:
    return Instr(kernel, [op.inputs[0], op.inputs[1], op.inputs[2] if geo["has_bias"] else ""],
                 [op.outputs[0]], list(geo["params"]), workspace_bytes=geo["workspace"],
                 note=note)


@lowers("ConvNCHW44")
def lower_conv_nchw44(op: Op, graph: Graph):
    geo = conv44_geometry(op, graph)
    if has_neon(graph.isa):
        from . import nchw44_neon

        return nchw44_neon.lower_conv(op, graph, geo)
    name = conv44_name(geo)
    body = conv44_body(geo, lambda nb: _portable_block(geo, nb), BLOCK)
    kernel = Kernel(name, kernel_source(name, body), ("math", PAD_HELPER))
    return [conv44_instr(op, geo, kernel, f"nchw44 {geo['kind']} direct, portable C "
                                          f"(4-lane vectorisable loops), {geo['macs']} MACs")]


# --- relayout ----------------------------------------------------------------------------

def relayout_params(op: Op, graph: Graph):
    """(direction, N, C, H*W) of a Relayout; direction 'to44' or 'from44'."""
    src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    plain = src if op.attrs["to"] == "nchw44" else dst
    n, c = plain.shape[0], plain.shape[1]
    spatial = plain.numel // (n * c) if n * c else 0
    return ("to44" if op.attrs["to"] == "nchw44" else "from44"), n, c, spatial


@lowers("Relayout")
def lower_relayout(op: Op, graph: Graph):
    direction, n, c, spatial = relayout_params(op, graph)
    if spatial == 1:  # one pixel per channel: both layouts are the same bytes
        return [View(op.outputs[0], op.inputs[0])]
    if has_neon(graph.isa):
        from . import nchw44_neon

        return nchw44_neon.lower_relayout(op, graph, direction, [n, c, spatial])
    if direction == "to44":
        name, move = "relayout_nchw_to_nchw44_f32", "y[s * 4 + l] = x[l * S + s];"
    else:
        name, move = "relayout_nchw44_to_nchw_f32", "y[l * S + s] = x[s * 4 + l];"
    body = f"""    const int32_t N = p[0], C = p[1], S = p[2];
    int32_t blk, s, l;
    for (blk = 0; blk < N * C / 4; ++blk) {{
        const float *restrict x = (const float *)in_ptrs[0] + (int64_t)blk * S * 4;
        float *restrict y = (float *)out_ptrs[0] + (int64_t)blk * S * 4;
        for (s = 0; s < S; ++s)
            for (l = 0; l < 4; ++l) {move}
    }}
"""
    kernel = Kernel(name, kernel_source(name, body))
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], [n, c, spatial],
                  note=f"relayout {'NCHW -> NCHW44' if direction == 'to44' else 'NCHW44 -> NCHW'}")]


# --- pooling -----------------------------------------------------------------------------

@lowers("PoolNCHW44")
def lower_pool_nchw44(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
    is_max = op.attrs["mode"] == "MaxPool"
    include_pad = int(op.attrs.get("count_include_pad", 0))
    geo = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    if is_max:
        name = f"maxpool_nchw44_{geo}_f32"
        init, acc, fin = "-INFINITY", "v[l] = xv[l] > v[l] || xv[l] != xv[l] ? xv[l] : v[l];", "v[l]"
    else:
        name = f"avgpool_nchw44_{geo}_f32{'_incpad' if include_pad else ''}"
        init, acc = "0.0f", "v[l] += xv[l];"
        # as pool.py: count_include_pad counts padded cells inside the padded input only
        fin = "v[l] / (float)cnt_pad" if include_pad else "v[l] / (float)(cnt > 0 ? cnt : 1)"
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const int32_t NC = p[0], H = p[1], W = p[2], OH = p[3], OW = p[4], PT = p[5], PL = p[6];
    const int32_t HP = H + PT + p[7], WP = W + PL + p[8];  /* padded extents */
    int32_t c, oy, ox, ky, kx, l;
    for (c = 0; c < NC; ++c) {{
        const float *xc = x + (int64_t)c * H * W * 4;
        float *yc = y + (int64_t)c * OH * OW * 4;
        for (oy = 0; oy < OH; ++oy)
            for (ox = 0; ox < OW; ++ox) {{
                float v[4];
                int32_t cnt = 0, cnt_pad = 0;
                for (l = 0; l < 4; ++l) v[l] = {init};
                for (ky = 0; ky < {kh}; ++ky) {{
                    const int32_t iy = oy * {sh} - PT + ky * {dh};
                    if (iy + PT >= HP) break;
                    for (kx = 0; kx < {kw}; ++kx) {{
                        const int32_t ix = ox * {sw} - PL + kx * {dw};
                        if (ix + PL >= WP) break;
                        ++cnt_pad;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        {{
                            const float *restrict xv = xc + ((int64_t)iy * W + ix) * 4;
                            for (l = 0; l < 4; ++l) {acc}
                        }}
                        ++cnt;
                    }}
                }}
                (void)cnt; (void)cnt_pad;
                for (l = 0; l < 4; ++l) yc[(oy * OW + ox) * 4 + l] = {fin};
            }}
    }}
"""
    kernel = Kernel(name, kernel_source(name, body), ())
    params = [x.shape[0] * x.shape[1], x.shape[2], x.shape[3], y.shape[2], y.shape[3], *pads]
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params, note="nchw44 pooling")]


@lowers("GlobalPoolNCHW44")
def lower_global_pool_nchw44(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    is_max = op.attrs["mode"] == "GlobalMaxPool"
    name = "global_maxpool_nchw44_f32" if is_max else "global_avgpool_nchw44_f32"
    step = ("v[l] = xv[l] > v[l] || xv[l] != xv[l] ? xv[l] : v[l];" if is_max
            else "v[l] += xv[l];")
    fin = "v[l]" if is_max else "v[l] / (float)S"
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const int32_t NC = p[0], S = p[1];
    int32_t c, i, l;
    for (c = 0; c < NC; ++c, x += (int64_t)S * 4) {{
        float v[4];
        for (l = 0; l < 4; ++l) v[l] = {"-INFINITY" if is_max else "0.0f"};
        for (i = 0; i < S; ++i) {{
            const float *restrict xv = x + (int64_t)i * 4;
            for (l = 0; l < 4; ++l) {step}
        }}
        for (l = 0; l < 4; ++l) y[c * 4 + l] = {fin};
    }}
"""
    kernel = Kernel(name, kernel_source(name, body), ())
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  [x.shape[0] * x.shape[1], x.shape[2] * x.shape[3]], note="nchw44 global pooling")]
