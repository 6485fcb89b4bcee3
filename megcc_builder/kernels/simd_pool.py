"""Vector max pooling (NCHW, float32): one vector of outputs at a time over a -inf-padded
input plane, generated for one vector ISA (simd.py).

Same plane scheme as the depthwise kernel (simd_conv.py): each channel is copied once into
a plane padded with -inf, so every window is a run of full vector loads (stride 2 by
deinterleaving) and max operations. NaN propagates like the portable kernel: a NaN input
anywhere in the window gives NaN.
"""
from __future__ import annotations

from ..ir import Graph, Op
from .base import Instr, Kernel, kernel_source
from .simd import Simd
from .simd_conv import plane, window_row


def pool_geometry(op: Op, graph: Graph):
    """The geometry dict of a 2-D MaxPool the vector kernel handles, else None."""
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


def lower_maxpool(op: Op, graph: Graph, s: Simd):
    geo = pool_geometry(op, graph)
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("kh", "kw", "sh", "sw", "dh", "dw"))
    tag = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    name = f"maxpool_{tag}_f32_{s.name}"
    if s.max_keeps_nan:
        extra, track, apply = "", "", ""
    else:  # AVX2 maxps returns its second operand for a NaN: track NaN lanes apart
        extra = ", nan{u} = _mm256_setzero_ps()"
        track = " nan{u} = _mm256_or_ps(nan{u}, _mm256_cmp_ps(xv, xv, _CMP_UNORD_Q));"
        apply = "acc{u} = _mm256_blendv_ps(acc{u}, _mm256_set1_ps(NAN), nan{u});"
    row_loop = window_row(
        s, sw, lambda u: f"{s.vtype} acc{u} = {s.set1('-INFINITY')}" + extra.format(u=u) + ";",
        lambda u, x: (f"{{ const {s.vtype} xv = {x}; acc{u} = {s.max(f'acc{u}', 'xv')};"
                      + track.format(u=u) + " }"),
        lambda u: apply.format(u=u), 12)
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    float *pl = (float *)workspace;  /* one -inf-padded input plane */
    const int32_t NC = p[0], H = p[1], W = p[2], OH = p[3], OW = p[4], PT = p[5], PL = p[6];
    const int32_t PH = p[7], PW = p[8];
    const int32_t KH = {kh}, KW = {kw}, SH = {sh}, SW = {sw}, DH = {dh}, DW = {dw};
    int32_t c, oy, ox, ky, kx;
    (void)SW;
    for (c = 0; c < NC; ++c) {{
        float *yc = y + (int64_t)c * OH * OW;
        megcc_pad_plane(x + (int64_t)c * H * W, H, W, PT, PL, PH, PW, -INFINITY, pl, c > 0);
        for (oy = 0; oy < OH; ++oy) {{
            const float *row = pl + (int64_t)oy * SH * PW;
            float *yr = yc + (int64_t)oy * OW;
            {row_loop}
        }}
    }}
"""
    kernel = Kernel(name, kernel_source(name, body), ("math",), isa=s.isa)
    ph, pw = plane(geo, s.vw)
    pads = geo["pads"]
    params = [geo["n"] * geo["c"], geo["h"], geo["w"], geo["oh"], geo["ow"], pads[0], pads[1],
              ph, pw]
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params, workspace_bytes=ph * pw * 4,
                  note=f"{s.label} max pooling over a -inf-padded {ph}x{pw} plane, {s.vw} "
                       f"outputs per vector")]
