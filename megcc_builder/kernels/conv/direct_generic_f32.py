"""Convolution kernels (float32, NCHW): depthwise direct, 1x1 as GEMM, im2col + GEMM.

Kernel size, stride and dilation are compile-time constants in the code (they shape the
loops); batch, channels, spatial extents and padding arrive in params so one kernel serves
every layer with the same geometry. Bias and a fused activation are applied in the epilogue
while the output is still in cache.
"""
from __future__ import annotations

from ...codegen.half import weight_pointer
from ...codegen.kernel import Instr, make_kernel
from ...codegen.parallel import range_parts, split_kernel
from ...codegen.params import i32, int_constants
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..elementwise.activation import activation_code, activation_tag
from ..registry import F32, implements
from .geometry import (conv_geometry, conv_problem, conv_schema, is_depthwise, prelu_scalar,
                       prelu_slope, prelu_tag)
from ...ir.symbolic import smax, smin


# compressed (float16) filters are widened this many output channels at a time
WIDEN_ROWS = 16

DIRECT_PARAMS = conv_schema()
GEMM_PARAMS = conv_schema(i32("NBLK", "output positions per im2col block"))


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    """Multiply-adds at the rate the auto-vectorised portable loops reach (im2col + GEMM
    loops; the scalar depthwise loop)."""
    if _is_3d(op, graph):
        return 1.0  # (the only implementation of a 3-D Conv)
    geo = conv_problem(op, graph)
    macs = geo["n"] * geo["oc"] * geo["oh"] * geo["ow"] * (geo["c"] // geo["group"]) \
        * geo["kh"] * geo["kw"]
    return macs * (isa.core.portable_depthwise if is_depthwise(geo) else isa.core.portable_conv)


def _is_3d(op: Op, graph: Graph) -> bool:
    return len(graph.tensors[op.inputs[0]].shape) == 5


# The one portable Conv implementation (tests/test_registry.py): 3-D convolutions are
# emitted by direct3d_generic_f32.py's kernel from here.
@implements("Conv", dtypes=F32, layout="nchw", cost=cost)
def lower_conv(op: Op, graph: Graph):
    if _is_3d(op, graph):
        from .direct3d_generic_f32 import emit_3d

        return emit_3d(op, graph)
    x = graph.tensors[op.inputs[0]]
    w = graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    if x.dtype != "float32" or w.dtype not in ("float32", "float16"):
        raise graph.error(f"Conv on {x.dtype} is not supported (float32 is)", op)
    f16 = w.dtype == "float16"  # compressed weights (passes/compress_fp16.py), widened here
    w16 = "_w16" if f16 else ""
    if op.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") and "pads" not in op.attrs:
        raise graph.error("auto_pad must be resolved before lowering", op)
    one_d, (kh, kw), (sh, sw), (dh, dw), pads = conv_geometry(op, graph)
    group = int(op.attrs.get("group", 1))
    nhwc = bool(op.attrs.get("input_nhwc"))  # x is (N, H, W, C): passes/transposes.py
    n, c = x.shape[0], x.shape[3 if nhwc else 1]
    # ONNX shape inference does not check channels: a mismatch would make the kernel read
    # past the weights, so refuse it here (e.g. an --input-shapes with the wrong C).
    if group < 1 or c % group or w.shape[1] * group != c or y.shape[1] % group:
        raise graph.error(f"input has {c} channels but the weights expect "
                          f"{w.shape[1]} x group {group}", op)
    h, wd = (1, x.shape[2]) if one_d else (x.shape[1:3] if nhwc else x.shape[2:])
    oc = y.shape[1]
    oh, ow = (1, y.shape[2]) if one_d else y.shape[2:]
    has_bias = len(op.inputs) > 2 and bool(op.inputs[2])
    residual = bool(op.attrs.get("residual"))  # y = act(conv + bias + r), passes/fuse.py
    act = op.attrs.get("activation")
    epi = activation_code(act, "v")
    slope = prelu_slope(op)  # a fused per-channel PReLU (passes/fuse.py)
    if slope:
        epi = prelu_scalar("v", "slope[o]")
    bias_tag = ("_bias" if has_bias else "") + ("_residual" if residual else "") + prelu_tag(op)
    geo = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}" + ("_nhwc" if nhwc else "")
    params = dict(N=n, C=c, H=h, W=wd, OC=oc, OH=oh, OW=ow, G=group, PT=pads[0], PL=pads[1])
    geometry = dict(KH=kh, KW=kw, SH=sh, SW=sw, DH=dh, DW=dw)  # compiled in
    inputs = [op.inputs[0], op.inputs[1], op.inputs[2] if has_bias else ""]
    if residual or slope:
        inputs.append(op.inputs[3] if residual else "")
    if slope:
        inputs.append(slope)
    bias_line = "const float *bias = (const float *)in_ptrs[2];" if has_bias else ""
    bias_val = "bias[o]" if has_bias else "0.0f"
    head = f"""    const float *x = (const float *)in_ptrs[0];
    {weight_pointer("w", 1, f16)}
    float *y = (float *)out_ptrs[0];
    {bias_line}
    {"const float *slope = (const float *)in_ptrs[4];" if slope else ""}
"""
    if group == c and oc % c == 0 and group > 1 and not nhwc:
        if residual:  # fuse.py only fuses group-1 convolutions
            raise graph.error("a fused residual needs a group-1 convolution", op)
        name = f"conv2d_depthwise_{geo}{w16}_f32{bias_tag}{activation_tag(act)}"
        filt = (f"float wk[{kh * kw}];\n            megcc_widen_f16(w + (int64_t)o * {kh * kw}, wk, {kh * kw});"
                if f16 else f"const float *wk = w + (int64_t)o * {kh * kw};")
        # parts (split_kernel): ranges of output channels, each computed as on one thread
        body = head + f"""    const int32_t M = OC / C;  /* channel multiplier */
    const int32_t o0 = (int32_t)((int64_t)OC * part / parts),
                  o1 = (int32_t)((int64_t)OC * (part + 1) / parts);
    int32_t b, o, oy, ox, ky, kx;
    for (b = 0; b < N; ++b)
        for (o = o0; o < o1; ++o) {{
            const float *xc = x + ((int64_t)b * C + o / M) * H * W;
            {filt}
            float *yc = y + ((int64_t)b * OC + o) * OH * OW;
            for (oy = 0; oy < OH; ++oy) {{
                const int32_t iy0 = oy * SH - PT;
                for (ox = 0; ox < OW; ++ox) {{
                    const int32_t ix0 = ox * SW - PL;
                    float v = {bias_val};
                    if (iy0 >= 0 && iy0 + (KH - 1) * DH < H && ix0 >= 0 && ix0 + (KW - 1) * DW < W) {{
                        const float *xp = xc + (int64_t)iy0 * W + ix0;
                        for (ky = 0; ky < KH; ++ky)
                            for (kx = 0; kx < KW; ++kx)
                                v += xp[ky * DH * W + kx * DW] * wk[ky * KW + kx];
                    }} else {{
                        for (ky = 0; ky < KH; ++ky) {{
                            const int32_t iy = iy0 + ky * DH;
                            if (iy < 0 || iy >= H) continue;
                            for (kx = 0; kx < KW; ++kx) {{
                                const int32_t ix = ix0 + kx * DW;
                                if (ix >= 0 && ix < W) v += xc[(int64_t)iy * W + ix] * wk[ky * KW + kx];
                            }}
                        }}
                    }}
                    yc[oy * OW + ox] = {epi};
                }}
            }}
        }}
"""
        kernel = split_kernel(name, int_constants(body, **geometry) + body,
                              range_parts(f"(int64_t)N * OC * OH * OW * {kh * kw}"),
                              DIRECT_PARAMS, ("math",))
        return [Instr(kernel, inputs, [op.outputs[0]], DIRECT_PARAMS.pack(**params),
                      note="depthwise: direct loop, one output channel at a time")]

    # (an NHWC input always goes through im2col, which transposes it into the panel)
    pointwise = kh == kw == 1 and sh == sw == 1 and pads == [0, 0, 0, 0] and not nhwc
    cg, ocg = c // group, oc // group
    kdim = cg * kh * kw
    spatial = oh * ow
    if pointwise:
        name = f"conv2d_1x1_gemm{w16}_f32{bias_tag}{activation_tag(act)}"
        block = spatial
        workspace = 0
        note = "1x1 stride 1: the input already is the GEMM operand"
        panel = "const float *cols = xg + s0; const int32_t ldb = S;"
    else:
        name = f"conv2d_im2col_{geo}{w16}_f32{bias_tag}{activation_tag(act)}"
        # im2col one block of output positions at a time: the panel stays in cache and the
        # workspace stays small (about 256 KiB) whatever the layer size.
        # (smin/smax: a symbolic plane size keeps the block an expression, not a guard)
        block = smax(16, smin(spatial, (64 * 1024) // kdim // 16 * 16 or 16))
        block = smin(block, spatial)
        workspace = kdim * block * 4
        note = f"im2col in blocks of {block!r} output positions, then blocked GEMM"
        panel = (f"float *cols = (float *)workspace; const int32_t ldb = nb;\n"
                 f"                megcc_im2col_{geo}(xg, cols, CG, H, W, OW, PT, PL, s0, nb{', C' if nhwc else ''});")
    # NCHW: pixel (iy, ix) of channel c at x[c * H * W + iy * W + ix]; NHWC (the image's
    # channel group starting at x): x[(iy * W + ix) * CS + c]
    plane, pixel = (("(int64_t)c", "(int64_t)(iy * W + ix) * CS") if nhwc else
                    ("(int64_t)c * H * W", "(int64_t)iy * W + ix"))
    im2col = "" if pointwise else f"""static inline void megcc_im2col_{geo}(const float *x, float *cols, int32_t C,
        int32_t H, int32_t W, int32_t OW, int32_t PT, int32_t PL, int32_t s0, int32_t nb{', int32_t CS' if nhwc else ''}) {{
    int32_t c, ky, kx, s;
    for (c = 0; c < C; ++c)
        for (ky = 0; ky < {kh}; ++ky)
            for (kx = 0; kx < {kw}; ++kx) {{
                float *r = cols + (((int64_t)c * {kh} + ky) * {kw} + kx) * nb;
                const float *xc = x + {plane};
                int32_t oy = s0 / OW, ox = s0 % OW;
                for (s = 0; s < nb; ++s) {{
                    const int32_t iy = oy * {sh} - PT + ky * {dh};
                    const int32_t ix = ox * {sw} - PL + kx * {dw};
                    r[s] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? xc[{pixel}] : 0.0f;
                    if (++ox == OW) {{ ox = 0; ++oy; }}
                }}
            }}
}}
"""
    params["NBLK"] = block
    gemm = "megcc_gemm_nn(OCG, nb, K, w + (int64_t)g * OCG * K, K, 1, cols, ldb, yg + s0, S, 0);"
    wdecl = ""
    if f16:  # WIDEN_ROWS filters at a time widened into the workspace (after the im2col block)
        wdecl = (f"    float *wf = (float *)workspace{'' if pointwise else ' + (int64_t)K * NBLK'};\n"
                 "    int32_t o0;\n")
        gemm = f"""for (o0 = 0; o0 < OCG; o0 += {WIDEN_ROWS}) {{
                    const int32_t ro = OCG - o0 < {WIDEN_ROWS} ? OCG - o0 : {WIDEN_ROWS};
                    megcc_widen_f16(w + ((int64_t)g * OCG + o0) * K, wf, (int64_t)ro * K);
                    megcc_gemm_nn(ro, nb, K, wf, K, 1, cols, ldb, yg + (int64_t)o0 * S + s0, S, 0);
                }}"""
        workspace += min(ocg, WIDEN_ROWS) * kdim * 4
    res_line = ("\n                const float *ro = (const float *)in_ptrs[3] + ((int64_t)b * OC + o) * S;"
                if residual else "")
    res_add = " + ro[s]" if residual else ""
    body = head + f"""    const int32_t CG = C / G, OCG = OC / G, K = CG * KH * KW, S = OH * OW;
{wdecl}    int32_t b, g, o, s, s0;
    for (b = 0; b < N; ++b)
        for (g = 0; g < G; ++g) {{
            const float *xg = x + {"(int64_t)b * H * W * C + (int64_t)g * CG" if nhwc else "((int64_t)b * C + (int64_t)g * CG) * H * W"};
            float *yg = y + ((int64_t)b * OC + (int64_t)g * OCG) * S;
            for (s0 = 0; s0 < S; s0 += NBLK) {{
                const int32_t nb = S - s0 < NBLK ? S - s0 : NBLK;
                {panel}
                {gemm}
            }}
            for (o = g * OCG; o < (g + 1) * OCG; ++o) {{
                float *yo = y + ((int64_t)b * OC + o) * S;
                const float bo = {bias_val};{res_line}
                for (s = 0; s < S; ++s) {{
                    const float v = yo[s] + bo{res_add};
                    yo[s] = {epi};
                }}
            }}
        }}
"""
    helpers = ("math", "gemm") + ((() if pointwise else ((f"im2col_{geo}", im2col),)))
    kernel = make_kernel(name, int_constants(body, **geometry) + body, GEMM_PARAMS, helpers)
    return [Instr(kernel, inputs, [op.outputs[0]], GEMM_PARAMS.pack(**params),
                  workspace_bytes=workspace,
                  note=note + f" (M={ocg!r}, N={spatial!r}, K={kdim!r}, groups={group})")]

