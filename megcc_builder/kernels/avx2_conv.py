"""AVX2+FMA convolutions (NCHW, float32): packed GEMM (1x1 and im2col) and depthwise direct.

Each builder returns the instructions for one Conv op; `select.py` decides which one runs
by cost. Parameters follow the portable kernels (conv.py): N, C, H, W, OC, OH, OW, G, PT, PL
then the variant's own (blocking, padded-plane extents).
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Op
from . import avx2_gemm as g
from .base import Instr, Kernel, c_float, kernel_source
from .conv import activation_code, activation_tag, conv_geometry


def _common(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    y = graph.tensors[op.outputs[0]]
    one_d, (kh, kw), (sh, sw), (dh, dw), pads = conv_geometry(op, graph)
    n, c = x.shape[0], x.shape[1]
    h, wd = (1, x.shape[2]) if one_d else x.shape[2:]
    oh, ow = (1, y.shape[2]) if one_d else y.shape[2:]
    geo = dict(n=n, c=c, h=h, w=wd, oc=y.shape[1], oh=oh, ow=ow, kh=kh, kw=kw, sh=sh, sw=sw,
               dh=dh, dw=dw, pads=pads, group=int(op.attrs.get("group", 1)))
    return geo


def applicable(op: Op, graph: Graph) -> bool:
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    if x.dtype != "float32" or w.dtype != "float32" or not w.is_const:
        return False
    if len(x.shape) not in (3, 4):
        return False
    if len(op.inputs) > 2 and op.inputs[2] and not graph.tensors[op.inputs[2]].is_const:
        return False
    return op.attrs.get("auto_pad", "NOTSET") in ("NOTSET", "VALID") or "pads" in op.attrs


def _bias(op: Op):
    has_bias = len(op.inputs) > 2 and bool(op.inputs[2])
    return has_bias, ("_bias" if has_bias else "")


def _act_pass(act, rows: str, count: str) -> str:
    """Scalar pass for activations the vector epilogue does not cover (sigmoid, ...)."""
    return f"""
            {{ float *yo = {rows}; int64_t q;
              for (q = 0; q < (int64_t){count}; ++q) {{ const float v = yo[q]; yo[q] = {activation_code(act, "v")}; }} }}"""


# ---------------------------------------------------------------------------------------
# packed GEMM convolution

def gemm_shape(geo):
    cg, ocg = geo["c"] // geo["group"], geo["oc"] // geo["group"]
    return ocg, geo["oh"] * geo["ow"], cg * geo["kh"] * geo["kw"]


def is_pointwise(geo) -> bool:
    return (geo["kh"] == geo["kw"] == 1 and geo["sh"] == geo["sw"] == 1
            and geo["pads"] == [0, 0, 0, 0])


def padded_extents(geo):
    """(Hp, Wp): the zero-padded input region the kernel windows read."""
    hp = (geo["oh"] - 1) * geo["sh"] + (geo["kh"] - 1) * geo["dh"] + 1
    wp = (geo["ow"] - 1) * geo["sw"] + (geo["kw"] - 1) * geo["dw"] + 1
    return hp, wp


def _im2col_pack(tag: str, geo) -> tuple:
    """Fused im2col + B packing for one geometry, reading a zero-padded copy of the input
    (so no bounds checks): a 16-position panel inside one output row is two vector loads
    (stride 1) or two deinterleaves (stride 2); a panel spanning rows is a gather through
    16 precomputed offsets. Panels are written k-major, sequentially."""
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("kh", "kw", "sh", "sw", "dh", "dw"))
    if sw == 1:
        fast = ("_mm256_storeu_ps(d, _mm256_loadu_ps(s)); "
                "_mm256_storeu_ps(d + 8, _mm256_loadu_ps(s + 8));")
        span = 16
    elif sw == 2:
        fast = ("_mm256_storeu_ps(d, megcc_avx2_even8(s)); "
                "_mm256_storeu_ps(d + 8, megcc_avx2_even8(s + 16));")
        span = 32
    else:
        fast = "for (t = 0; t < 16; ++t) d[t] = s[t * " + str(sw) + "];"
        span = 15 * sw + 1
    src = f"""static void megcc_avx2_im2col_{tag}(const float *xp, int32_t Hp, int32_t Wp, int32_t OW,
        int32_t k0, int32_t kc, int32_t j0, int32_t nc, float *bp) {{
    int32_t jp, kk, t;
    for (jp = 0; jp < nc; jp += 16) {{
        float *d = bp + (int64_t)(jp / 16) * kc * 16;
        const int32_t s0 = j0 + jp, n = nc - jp < 16 ? nc - jp : 16;
        const int32_t ox = s0 % OW;
        int32_t off[16], c = k0 / {kh * kw}, ky = k0 % {kh * kw} / {kw}, kx = k0 % {kw};
        const int one_row = n == 16 && ox + 15 < OW;
        for (t = 0; t < n; ++t) off[t] = (s0 + t) / OW * {sh} * Wp + (s0 + t) % OW * {sw};
        for (kk = 0; kk < kc; ++kk, d += 16) {{
            const float *base = xp + (int64_t)c * Hp * Wp + ky * {dh} * Wp + kx * {dw};
            if (one_row && ox * {sw} + kx * {dw} + {span} <= Wp) {{
                const float *s = base + off[0];
                {fast}
            }} else {{
                for (t = 0; t < n; ++t) d[t] = base[off[t]];
                for (; t < 16; ++t) d[t] = 0.0f;
            }}
            if (++kx == {kw}) {{ kx = 0; if (++ky == {kh}) {{ ky = 0; ++c; }} }}
        }}
    }}
}}
"""
    return (f"avx2_im2col_{tag}", src)


def lower_gemm_conv(op: Op, graph: Graph):
    geo = _common(op, graph)
    act = op.attrs.get("activation")
    has_bias, bias_tag = _bias(op)
    residual = bool(op.attrs.get("residual"))  # y = act(conv + bias + r), passes/fuse.py
    bias_tag += "_residual" if residual else ""
    m, s, k = gemm_shape(geo)
    grp = geo["group"]
    kc, nc, mc = g.blocking(m, s, k)
    pointwise = is_pointwise(geo)
    tag = "k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}".format(**geo)
    w = np.asarray(graph.tensors[op.inputs[1]].data, np.float32).reshape(grp, m, k)
    packed = np.concatenate([g.pack_a(w[i]) for i in range(grp)])
    wname = graph.unique_name(op.inputs[1] + "__avx2_a6")
    graph.add_const(wname, packed)
    setup, act_pass = g.epilogue_setup(act, c_float)
    helpers = []
    if pointwise:
        name = f"conv2d_1x1_gemm6x16_f32{bias_tag}{activation_tag(act)}_avx2"
        pack = "megcc_avx2_pack_b(xg, S, k0, kb, j0, nb, bp);"
    else:
        name = f"conv2d_gemm6x16_{tag}_f32{bias_tag}{activation_tag(act)}_avx2"
        pack = f"megcc_avx2_im2col_{tag}(xp, HP, WP, OW, k0, kb, j0, nb, bp);"
        helpers.append(_im2col_pack(tag, geo))
    pad_input = "" if pointwise else """
            for (ci = 0; ci < CG; ++ci)
                megcc_avx2_pad_plane(xg + (int64_t)ci * H * W, H, W, PT, PL, HP, WP, 0.0f,
                                     xp + (int64_t)ci * HP * WP);"""
    # a fused residual starts the output block as r, which the GEMM then accumulates onto
    # (while this block of r is still in cache); the bias and clamp follow on the last K block
    copy_residual = """
                if (res) {
                    int32_t oc;
                    for (oc = 0; oc < OCG; ++oc)
                        memcpy(yg + (int64_t)oc * S + j0,
                               res + ((int64_t)b * OC + (int64_t)gi * OCG + oc) * S + j0,
                               sizeof(float) * (size_t)nb);
                }""" if residual else ""
    body = f"""    const float *x = (const float *)in_ptrs[0];
    const float *w = (const float *)in_ptrs[1];  /* 6-row panels per group (avx2_gemm.py) */
    const float *bias = {"(const float *)in_ptrs[2]" if has_bias else "0"};
    const float *res = {"(const float *)in_ptrs[3]" if residual else "0"};
    float *y = (float *)out_ptrs[0];
    float *bp = (float *)workspace;
    const int32_t N = p[0], C = p[1], H = p[2], W = p[3], OC = p[4], OH = p[5], OW = p[6];
    const int32_t G = p[7], PT = p[8], PL = p[9], KC = p[10], NC = p[11], MC = p[12];
    const int32_t HP = p[13], WP = p[14];  /* zero-padded input extents (im2col) */
    const int32_t CG = C / G, OCG = OC / G, K = CG * {geo["kh"] * geo["kw"]}, S = OH * OW;
    /* workspace: the packed B block, then (im2col) one group's zero-padded input */
    float *xp = bp + (int64_t)KC * ((NC + 15) / 16 * 16);
    int32_t b, gi, j0, k0, ci;
    megcc_avx2_epi e;
    (void)PT; (void)PL; (void)HP; (void)WP; (void)xp; (void)ci;
    {setup}
    for (b = 0; b < N; ++b)
        for (gi = 0; gi < G; ++gi) {{
            const float *xg = x + ((int64_t)b * C + (int64_t)gi * CG) * H * W;
            const float *ag = w + (int64_t)gi * OCG * K;
            float *yg = y + ((int64_t)b * OC + (int64_t)gi * OCG) * S;
            e.bias_n = 0;
            e.bias_m = bias ? bias + (int64_t)gi * OCG : 0;{pad_input}
            for (j0 = 0; j0 < S; j0 += NC) {{
                const int32_t nb = S - j0 < NC ? S - j0 : NC;{copy_residual}
                for (k0 = 0; k0 < K; k0 += KC) {{
                    const int32_t kb = K - k0 < KC ? K - k0 : KC;
                    {pack}
                    e.accumulate = k0 > 0 || res;
                    e.finish = k0 + kb >= K;
                    megcc_avx2_gemm_block(OCG, nb, K, k0, kb, ag, bp, (int64_t)kb * 16, yg + j0, S, MC, &e);
                }}
            }}{_act_pass(act, "yg", "OCG * S") if act_pass else ""}
        }}
"""
    kernel = Kernel(name, kernel_source(name, body), ("math",) + tuple(helpers), isa=g.ISA)
    pads = geo["pads"]
    hp, wp = (0, 0) if pointwise else padded_extents(geo)
    params = [geo["n"], geo["c"], geo["h"], geo["w"], geo["oc"], geo["oh"], geo["ow"], grp,
              pads[0], pads[1], kc, nc, mc, hp, wp]
    inputs = [op.inputs[0], wname, op.inputs[2] if has_bias else ""]
    if residual:
        inputs.append(op.inputs[3])
    ws = (kc * (-(-nc // 16) * 16) + (geo["c"] // grp) * hp * wp) * 4
    how = ("1x1: input rows packed" if pointwise else
           f"im2col from a zero-padded {hp}x{wp} input copy fused into B packing")
    return [Instr(kernel, inputs, [op.outputs[0]], params, workspace_bytes=ws,
                  note=f"AVX2 6x16 packed GEMM, weights pre-packed, {how} (M={m}, N={s}, "
                       f"K={k}, groups={grp}, kc={kc}, nc={nc}, mc={mc})")]


# ---------------------------------------------------------------------------------------
# depthwise direct

def depthwise_ok(geo) -> bool:
    return (geo["group"] == geo["c"] and geo["oc"] % geo["c"] == 0 and geo["group"] > 1
            and geo["sw"] in (1, 2))


def _plane(geo):
    """Padded input plane extents: every vector load of any output row stays inside."""
    ow8 = -(-geo["ow"] // 8) * 8
    last = (ow8 - 8) * geo["sw"] + (geo["kw"] - 1) * geo["dw"] + (8 if geo["sw"] == 1 else 16)
    pw = max(geo["pads"][1] + geo["w"], last)
    ph = max((geo["oh"] - 1) * geo["sh"] + (geo["kh"] - 1) * geo["dh"] + 1, 1)
    return ph, pw


def lower_depthwise(op: Op, graph: Graph):
    geo = _common(op, graph)
    act = op.attrs.get("activation")
    has_bias, bias_tag = _bias(op)
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("kh", "kw", "sh", "sw", "dh", "dw"))
    tag = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    name = f"conv2d_depthwise_{tag}_f32{bias_tag}{activation_tag(act)}_avx2"
    clamp, act_pass = g.vector_clamp(act, c_float)
    load = "_mm256_loadu_ps(r + kx * DW)" if sw == 1 else "megcc_avx2_even8(r + kx * DW)"
    lo, hi = clamp or ("0.0f", "0.0f")
    clamp = "acc = _mm256_min_ps(hi, _mm256_max_ps(lo, acc));" if clamp else ""
    body = f"""    const float *x = (const float *)in_ptrs[0];
    const float *w = (const float *)in_ptrs[1];
    const float *bias = {"(const float *)in_ptrs[2]" if has_bias else "0"};
    float *y = (float *)out_ptrs[0];
    float *pl = (float *)workspace;  /* one zero-padded input plane */
    const int32_t N = p[0], C = p[1], H = p[2], W = p[3], OC = p[4], OH = p[5], OW = p[6];
    const int32_t PT = p[8], PL = p[9], PH = p[10], PW = p[11];
    const int32_t KH = {kh}, KW = {kw}, SH = {sh}, SW = {sw}, DH = {dh}, DW = {dw};
    const int32_t M = OC / C;  /* channel multiplier */
    int32_t b, o, r, oy, ox, ky, kx;
    const __m256 lo = _mm256_set1_ps({lo}), hi = _mm256_set1_ps({hi});
    (void)lo; (void)hi; (void)SW;
    for (b = 0; b < N; ++b)
        for (o = 0; o < OC; ++o) {{
            const float *xc = x + ((int64_t)b * C + o / M) * H * W;
            const float *wk = w + (int64_t)o * {kh * kw};
            float *yc = y + ((int64_t)b * OC + o) * OH * OW;
            const __m256 bv = _mm256_set1_ps(bias ? bias[o] : 0.0f);
            __m256 wv[{kh * kw}];
            for (r = 0; r < {kh * kw}; ++r) wv[r] = _mm256_broadcast_ss(wk + r);
            megcc_avx2_pad_plane(xc, H, W, PT, PL, PH, PW, 0.0f, pl);
            for (oy = 0; oy < OH; ++oy) {{
                const float *row = pl + (int64_t)oy * SH * PW;
                float *yr = yc + (int64_t)oy * OW;
                for (ox = 0; ox < OW; ox += 8) {{
                    __m256 acc = bv;
                    for (ky = 0; ky < KH; ++ky) {{
                        const float *r = row + (int64_t)ky * DH * PW + ox * SW;
                        for (kx = 0; kx < KW; ++kx) acc = _mm256_fmadd_ps({load}, wv[ky * KW + kx], acc);
                    }}
                    {clamp}
                    if (ox + 8 <= OW) _mm256_storeu_ps(yr + ox, acc);
                    else {{ float t[8]; int32_t q; _mm256_storeu_ps(t, acc); for (q = 0; q < OW - ox; ++q) yr[ox + q] = t[q]; }}
                }}
            }}{_act_pass(act, "yc", "OH * OW") if act_pass else ""}
        }}
"""
    kernel = Kernel(name, kernel_source(name, body), ("math",), isa=g.ISA)
    ph, pw = _plane(geo)
    pads = geo["pads"]
    params = [geo["n"], geo["c"], geo["h"], geo["w"], geo["oc"], geo["oh"], geo["ow"],
              geo["group"], pads[0], pads[1], ph, pw]
    inputs = [op.inputs[0], op.inputs[1], op.inputs[2] if has_bias else ""]
    return [Instr(kernel, inputs, [op.outputs[0]], params, workspace_bytes=ph * pw * 4,
                  note=f"AVX2 depthwise direct: zero-padded plane {ph}x{pw}, 8 outputs per "
                       f"vector, weights in registers")]
