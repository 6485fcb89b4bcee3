"""ConvTranspose (float32, NCHW), portable C."""
from __future__ import annotations

from typing import List

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, schema
from ...ir import Graph, Op
from ..norm.generic_f32 import present
from ..registry import F32, implements


PARAMS = schema(i32("N", "batch"), i32("C", "input channels"), i32("H", "input height"),
                i32("W", "input width"), i32("M", "output channels"),
                i32("OH", "output height"), i32("OW", "output width"), i32("G", "groups"),
                i32("PT", "output rows cropped at the top (pads begin)"),
                i32("PL", "output columns cropped at the left"))


def _deconv_begin_pads(op: Op, full: List[int], out: List[int]) -> List[int]:
    """Leading pads per spatial axis; `full` is the output extent with zero padding."""
    mode = op.attrs.get("auto_pad", "NOTSET")
    if "output_shape" in op.attrs or mode in ("SAME_UPPER", "SAME_LOWER"):
        begins = []
        for f, o in zip(full, out):
            total = f - o
            begins.append(total // 2 if mode == "SAME_UPPER" else total - total // 2)
        return begins
    if mode == "VALID":
        return [0] * len(full)
    pads = op.attrs.get("pads", [0] * (2 * len(full)))
    return list(pads[:len(full)])


@implements("ConvTranspose", dtypes=F32)
def lower_conv_transpose(op: Op, graph: Graph):
    x, w, y = (graph.tensors[n] for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if len(x.shape) not in (3, 4):
        raise graph.error(f"{len(x.shape) - 2}-D ConvTranspose is not supported (1-D and 2-D "
                          "are)", op)
    nsp = len(x.shape) - 2
    ks = list(w.shape[2:])
    st = list(op.attrs.get("strides", [1] * nsp))
    dl = list(op.attrs.get("dilations", [1] * nsp))
    op_pad = list(op.attrs.get("output_padding", [0] * nsp))
    full = [s * (i - 1) + p + (k - 1) * d + 1
            for s, i, p, k, d in zip(st, x.shape[2:], op_pad, ks, dl)]
    begin = _deconv_begin_pads(op, full, list(y.shape[2:]))
    if nsp == 1:  # a 1-D layer is a 2-D one with height 1
        ks, st, dl, begin = [1] + ks, [1] + st, [1] + dl, [0] + begin
    (kh, kw), (sh, sw), (dh, dw) = ks, st, dl
    h, wd = (1, x.shape[2]) if nsp == 1 else x.shape[2:]
    oh, ow = (1, y.shape[2]) if nsp == 1 else y.shape[2:]
    group = int(op.attrs.get("group", 1))
    n, c, m = x.shape[0], x.shape[1], y.shape[1]
    mg = m // group
    has_bias = present(op.inputs, 2)
    geo = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    name = f"conv_transpose2d_{geo}_f32{'_bias' if has_bias else ''}"
    # Per image and group: cols[Mg*KH*KW, H*W] = W_g^T x X_g (a GEMM reading W transposed
    # through strides), then col2im scatters the columns into the output.
    body = f"""    const float *x = (const float *)in_ptrs[0], *w = (const float *)in_ptrs[1];
    {"const float *bias = (const float *)in_ptrs[2];" if has_bias else ""}
    float *y = (float *)out_ptrs[0], *cols = (float *)workspace;
    const int32_t CG = C / G, MG = M / G, KK = MG * {kh * kw}, S = H * W;
    int32_t b, g, mo, ky, kx, iy, ix, s;
    for (b = 0; b < N; ++b)
        for (g = 0; g < G; ++g) {{
            const float *xg = x + ((int64_t)b * C + (int64_t)g * CG) * S;
            float *yg = y + ((int64_t)b * M + (int64_t)g * MG) * OH * OW;
            megcc_gemm_nn(KK, S, CG, w + (int64_t)g * CG * KK, 1, KK, xg, S, cols, S, 0);
            for (mo = 0; mo < MG; ++mo) {{
                float *ym = yg + (int64_t)mo * OH * OW;
                const float bv = {"bias[g * MG + mo]" if has_bias else "0.0f"};
                for (s = 0; s < OH * OW; ++s) ym[s] = bv;
                for (ky = 0; ky < {kh}; ++ky)
                    for (kx = 0; kx < {kw}; ++kx) {{
                        const float *col = cols + ((int64_t)(mo * {kh} + ky) * {kw} + kx) * S;
                        for (iy = 0; iy < H; ++iy) {{
                            const int32_t oy = iy * {sh} - PT + ky * {dh};
                            if (oy < 0 || oy >= OH) continue;
                            for (ix = 0; ix < W; ++ix) {{
                                const int32_t ox = ix * {sw} - PL + kx * {dw};
                                if (ox >= 0 && ox < OW) ym[(int64_t)oy * OW + ox] += col[iy * W + ix];
                            }}
                        }}
                    }}
            }}
        }}
"""
    kernel = make_kernel(name, body, PARAMS, ("math", "gemm"))
    params = PARAMS.pack(N=n, C=c, H=h, W=wd, M=m, OH=oh, OW=ow, G=group, PT=begin[0],
                         PL=begin[1])
    inputs = list(op.inputs[:3 if has_bias else 2])
    return [Instr(kernel, inputs, [op.outputs[0]], params,
                  workspace_bytes=4 * mg * kh * kw * h * wd,
                  note=f"gemm (M={mg * kh * kw!r}, N={h * wd!r}, K={c // group!r}) + col2im")]
