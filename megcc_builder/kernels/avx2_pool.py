"""AVX2 max pooling (NCHW, float32): 8 outputs per vector over a -inf-padded input plane.

Same plane scheme as the depthwise kernel (avx2_conv.py): each channel is copied once into
a plane padded with -inf, so every window is a run of full vector loads (stride 2 from the
plane's even and odd columns, split once per channel) and max operations. NaN propagates like the portable kernel: a NaN input
anywhere in the window gives NaN.
"""
from __future__ import annotations

from ..ir import Graph, Op
from . import avx2_gemm as g
from .base import Instr, Kernel, kernel_source


def pool_geometry(op: Op, graph: Graph):
    """The geometry dict of a 2-D MaxPool the AVX2 kernel handles, else None."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if op.type != "MaxPool" or x.dtype != "float32" or len(x.shape) != 4:
        return None
    if len(op.outputs) > 1 and op.outputs[1]:
        return None
    kh, kw = op.attrs["kernel_shape"]
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
    if sw not in (1, 2):
        return None
    return dict(n=x.shape[0], c=x.shape[1], h=x.shape[2], w=x.shape[3], oc=y.shape[1],
                oh=y.shape[2], ow=y.shape[3], kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw,
                pads=pads, group=1)


def lower_maxpool(op: Op, graph: Graph):
    from .avx2_conv import _plane

    geo = pool_geometry(op, graph)
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("kh", "kw", "sh", "sw", "dh", "dw"))
    tag = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    name = f"maxpool_{tag}_f32_avx2"
    if sw == 1:
        planes = "float *pl = (float *)workspace;  /* one -inf-padded input plane */"
        fill = "megcc_avx2_pad_plane(xc, H, W, PT, PL, PH, PW, -INFINITY, pl, c > 0);"
        row = "const float *row = pl + (int64_t)oy * SH * PW;"
        load = "_mm256_loadu_ps(row + (int64_t)ky * DH * PW + ox + kx * DW)"
    else:  # even/odd column planes: padded column 2*ox + kx*DW is in plane (kx*DW) % 2
        planes = ("const int32_t PW2 = (PW + 1) / 2;\n"
                  "    float *pe = (float *)workspace, *po = pe + (int64_t)PH * PW2;")
        fill = "megcc_avx2_split_plane(xc, H, W, PT, PL, PH, PW, -INFINITY, pe, po, c > 0);"
        row = "const int64_t row = (int64_t)oy * SH * PW2;"
        load = ("_mm256_loadu_ps(((kx * DW) % 2 ? po : pe) + row + (int64_t)ky * DH * PW2 + ox"
                " + (kx * DW) / 2)")
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const int32_t NC = p[0], H = p[1], W = p[2], OH = p[3], OW = p[4], PT = p[5], PL = p[6];
    const int32_t PH = p[7], PW = p[8];
    {planes}
    const int32_t KH = {kh}, KW = {kw}, SH = {sh}, SW = {sw}, DH = {dh}, DW = {dw};
    int32_t c, oy, ox, ky, kx;
    (void)SW;
    for (c = 0; c < NC; ++c) {{
        float *yc = y + (int64_t)c * OH * OW;
        const float *xc = x + (int64_t)c * H * W;
        {fill}
        for (oy = 0; oy < OH; ++oy) {{
            {row}
            float *yr = yc + (int64_t)oy * OW;
            for (ox = 0; ox < OW; ox += 8) {{
                __m256 v = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
                for (ky = 0; ky < KH; ++ky) {{
                    for (kx = 0; kx < KW; ++kx) {{
                        const __m256 xv = {load};
                        v = _mm256_max_ps(v, xv);
                        nan = _mm256_or_ps(nan, _mm256_cmp_ps(xv, xv, _CMP_UNORD_Q));
                    }}
                }}
                v = _mm256_blendv_ps(v, _mm256_set1_ps(NAN), nan);
                if (ox + 8 <= OW) _mm256_storeu_ps(yr + ox, v);
                else {{ float t[8]; int32_t q; _mm256_storeu_ps(t, v); for (q = 0; q < OW - ox; ++q) yr[ox + q] = t[q]; }}
            }}
        }}
    }}
"""
    kernel = Kernel(name, kernel_source(name, body), ("math",), isa=g.ISA)
    ph, pw = _plane(geo)
    ph = max(ph, 1)
    pads = geo["pads"]
    params = [geo["n"] * geo["c"], geo["h"], geo["w"], geo["oh"], geo["ow"], pads[0], pads[1],
              ph, pw]
    plane_floats = ph * pw if sw == 1 else 2 * ph * ((pw + 1) // 2)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params,
                  workspace_bytes=plane_floats * 4,
                  note=f"AVX2 max pooling over a -inf-padded {ph}x{pw} plane"
                       f"{'' if sw == 1 else ' split into even/odd columns'}, 8 outputs per "
                       f"vector")]
