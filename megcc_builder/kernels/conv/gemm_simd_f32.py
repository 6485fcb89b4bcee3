"""Vector convolutions (NCHW, float32): packed GEMM (1x1 and im2col) and depthwise direct,
generated for one vector vocabulary (the level's f32 `gemm` one: AVX2, NEON, AArch64 NEON).

Each builder returns the instructions for one Conv op; the registry decides which one
runs by cost. Parameters follow the portable kernels (conv.py): N, C, H, W, OC, OH, OW, G, PT, PL
then the variant's own (blocking, padded-plane extents).
"""
from __future__ import annotations

import numpy as np

from ...codegen import packed_gemm as g
from ...codegen.kernel import Instr, c_float, make_kernel
from ...codegen.params import i32
from ...codegen.vector import Simd
from ...ir import Graph, Op
from ...ir.symbolic import at_most, smax, smin
from ...isa import IsaSpec
from ..cost import PACKED_CONV_CALL, gemm_cycles
from ..elementwise.activation import activation_tag
from ..registry import F32, implements
from .geometry import (bias_of, conv_head_values, conv_problem, conv_schema, prelu_slope, prelu_tag,
                       scalar_activation_pass, vector_conv_rejection)


PARAMS = conv_schema(i32("KC", "reduction block (cache blocking)"),
                     i32("NC", "output positions per packed B block"),
                     i32("MC", "output channels per block"),
                     i32("HP", "zero-padded input height (im2col; 0 for 1x1)"),
                     i32("WP", "zero-padded input width (im2col; 0 for 1x1)"),
                     i32("BF", "floats of the workspace's packed-B area (the padded input follows)"))


# ---------------------------------------------------------------------------------------
# packed GEMM convolution

# Products with at most this many output positions (8 panels of 16: 7x7 and smaller maps),
# or at most WHOLE_B_MANY_K_COLUMNS (14x14) and several K blocks, get room to pack B whole:
# on threads they are cut by rows (packed_gemm.py). Cut by columns, the first have too few
# panels to share evenly; the others made each thread stream all of A (2 MiB and more on
# ResNet-50's 14x14 layers, more than L2) once per unit of columns.
WHOLE_B_MAX_COLUMNS = 128
WHOLE_B_MANY_K_COLUMNS = 256
# On threads, the packed-B area holds at least this many panels (of the K block), so up to
# this many units of columns each pack their own (packed_gemm.panel_pack_gemm_units_par).
MIN_SLOTS = 16

def threaded_b_floats(sp, k, kc, s: Simd):
    """Floats of the packed-B area of a float32 conv (the BF param): one K block of NC
    columns; on threads (packed_gemm.py) at least MIN_SLOTS panels of the K block (one per
    unit of columns: fewer units than panels made units of one and two panels), and for a
    product with few columns B packed whole (every K block; the kernel checks at run time
    that it fits, else it cuts by columns).

    With run-time extents this is an expression of them, the same formula as for static
    ones (a dynamic plan evaluates to what a static compile gives) and never a comparison
    (which would become a shape guard refusing other sizes); it is written around one
    subexpression, the padded column count P, because a plan's expressions are short
    programs (emit/model_blob.py MAX_EXPR_WORDS)."""
    nr = s.nr
    p = -(-sp // nr) * nr
    # what blocking() makes NC (at least NR, at most its budget) and the MIN_SLOTS panels
    cap = smax(g.most_columns(kc, s), MIN_SLOTS * nr)
    units = kc * smax(nr, smin(p, cap))
    # B whole only up to `most` columns (then P <= lp): whole * P, kept bounded by lp
    most = WHOLE_B_MAX_COLUMNS + (WHOLE_B_MANY_K_COLUMNS - WHOLE_B_MAX_COLUMNS) * (1 - at_most(k, kc))
    lp = -(-most // nr) * nr
    # k x P where P <= lp, else 0 (a min with 0 or k x lp or more: no product of two
    # expressions, which would multiply out)
    whole = smin(k * p, smax(0, lp + 1 - p) * (k * lp))
    return smax(units, whole)


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


def _im2col_pack(s: Simd, tag: str, geo) -> list:
    """Fused im2col + B packing for one geometry, reading a zero-padded copy of the input
    (so no bounds checks): an NR-position panel inside one output row is NR/VW vector loads
    (stride 1) or deinterleaving loads (stride 2); a panel spanning rows is a gather through
    NR precomputed offsets. Panels are written k-major, sequentially."""
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("kh", "kw", "sh", "sw", "dh", "dw"))
    nr, vw = s.nr, s.vw
    if sw == 1:
        fast = " ".join(s.store(f"d + {i * vw}", s.load(f"s + {i * vw}")) + ";"
                        for i in range(s.nv))
        span = nr
    elif sw == 2:
        fast = " ".join(s.store(f"d + {i * vw}", s.even(f"s + {2 * i * vw}")) + ";"
                        for i in range(s.nv))
        span = 2 * nr
    else:
        fast = f"for (t = 0; t < {nr}; ++t) d[t] = s[t * {sw}];"
        span = (nr - 1) * sw + 1
    src = f"""static void megcc_{s.name}_im2col_{tag}(const float *xp, int32_t Hp, int32_t Wp, int32_t OW,
        int32_t k0, int32_t kc, int32_t j0, int32_t nc, float *bp) {{
    int32_t jp, kk, t;
    for (jp = 0; jp < nc; jp += {nr}) {{
        float *d = bp + (int64_t)(jp / {nr}) * kc * {nr};
        const int32_t s0 = j0 + jp, n = nc - jp < {nr} ? nc - jp : {nr};
        const int32_t ox = s0 % OW;
        int32_t off[{nr}], c = k0 / {kh * kw}, ky = k0 % {kh * kw} / {kw}, kx = k0 % {kw};
        const int one_row = n == {nr} && ox + {nr - 1} < OW;
        for (t = 0; t < n; ++t) off[t] = (s0 + t) / OW * {sh} * Wp + (s0 + t) % OW * {sw};
        for (kk = 0; kk < kc; ++kk, d += {nr}) {{
            const float *base = xp + (int64_t)c * Hp * Wp + ky * {dh} * Wp + kx * {dw};
            if (one_row && ox * {sw} + kx * {dw} + {span} <= Wp) {{
                const float *s = base + off[0];
                {fast}
            }} else {{
                for (t = 0; t < n; ++t) d[t] = base[off[t]];
                for (; t < {nr}; ++t) d[t] = 0.0f;
            }}
            if (++kx == {kw}) {{ kx = 0; if (++ky == {kh}) {{ ky = 0; ++c; }} }}
        }}
    }}
}}
"""
    args = (("const float *", "xp"), ("int32_t", "Hp"), ("int32_t", "Wp"), ("int32_t", "OW"),
            ("int32_t", "k0"), ("int32_t", "kc"), ("int32_t", "j0"), ("int32_t", "nc"),
            ("float *", "bp"))
    fn = f"megcc_{s.name}_im2col_{tag}"
    return [(f"{s.name}_im2col_{tag}", src + g.panel_pack_par(fn, args, nr)),
            (f"{s.name}_im2col_{tag}_gemm_par", g.panel_pack_gemm_par(fn, args, s)
             + g.panel_pack_gemm_units_par(fn, args, s) + g.panel_pack_all_par(fn, args, s))]


def lower_gemm_conv(op: Op, graph: Graph, s: Simd):
    geo = conv_problem(op, graph)
    act = op.attrs.get("activation")
    has_bias, bias_tag = bias_of(op)
    residual = bool(op.attrs.get("residual"))  # y = act(conv + bias + r), passes/fuse.py
    bias_tag += "_residual" if residual else ""
    slope = prelu_slope(op)  # a fused per-channel PReLU: the epilogue's clamp mode 2
    bias_tag += prelu_tag(op)
    m, sp, k = gemm_shape(geo)
    grp = geo["group"]
    kc, nc, mc = g.blocking(m, sp, k, s)
    pointwise = is_pointwise(geo)
    nhwc = bool(op.attrs.get("input_nhwc"))  # x is (N, H, W, C): passes/transposes.py
    tag = "k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}".format(**geo)
    # float16 weights (passes/compress_fp16.py) stay float16 in the panels; each K block of
    # a group's panels is widened into the workspace just before the micro-kernels use it
    f16 = graph.tensors[op.inputs[1]].dtype == "float16"
    wdt = np.float16 if f16 else np.float32
    w = np.asarray(graph.tensors[op.inputs[1]].data, wdt).reshape(grp, m, k)
    packed = np.concatenate([g.pack_a(w[i], s.mr, wdt) for i in range(grp)])
    wname = graph.unique_name(op.inputs[1] + f"__{s.name}_a{s.mr}")
    graph.add_const(wname, packed)
    setup, act_pass = g.epilogue_setup(act, c_float)
    if slope:
        setup += " e.clamp = 2;"
    helpers = []
    tile = f"gemm{s.mr}x{s.nr}" + ("_w16" if f16 else "")
    if pointwise:
        name = f"conv2d_1x1_{tile}_f32{bias_tag}{activation_tag(act)}_{s.name}"
        pack = f"megcc_{s.name}_pack_b_gemm_par(par, xg, S, k0, kb, j0, nb, bp,"
        pack_only = f"megcc_{s.name}_pack_b_par(par, xg, S, k0, kb, j0, nb, bp)"
        units = f"megcc_{s.name}_pack_b_units_par(par, xg, S, 0, S, bp,"
        pack_all = f"megcc_{s.name}_pack_b_all_par(par, xg, S, 0, S, bp, K, KC)"
    else:
        name = f"conv2d_{tile}_{tag}{'_nhwc' if nhwc else ''}_f32{bias_tag}{activation_tag(act)}_{s.name}"
        pack = f"megcc_{s.name}_im2col_{tag}_gemm_par(par, xp, HP, WP, OW, k0, kb, j0, nb, bp,"
        pack_only = f"megcc_{s.name}_im2col_{tag}_par(par, xp, HP, WP, OW, k0, kb, j0, nb, bp)"
        units = f"megcc_{s.name}_im2col_{tag}_units_par(par, xp, HP, WP, OW, 0, S, bp,"
        pack_all = f"megcc_{s.name}_im2col_{tag}_all_par(par, xp, HP, WP, OW, 0, S, bp, K, KC)"
        # the packing (and, for float32 weights, packing fused with the GEMM: float16
        # weights are widened between the two)
        helpers += _im2col_pack(s, tag, geo)[:1 if f16 else 2]
    pad_input = "" if pointwise else """
            megcc_pad_planes_par(par, xg, CG, H, W, PT, PL, HP, WP, xp, b > 0 || gi > 0);"""
    if not pointwise and not nhwc:
        helpers.append(PAD_PLANES_PAR)
    if nhwc:  # the padded planes are the NHWC image's channels, transposed while copied
        pad_input = """
            megcc_pad_nhwc(xg, C, CG, H, W, PT, PL, HP, WP, xp);"""
        helpers.append(NHWC_PAD_HELPER)
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
    padded_input = "" if pointwise else """\
    float *xp = bp + BF;
"""
    a_block, widen = "ag, bp", ""
    if f16:  # the widened K block of the group's panels: after B (and the padded input)
        padded_input += (f"    float *aw = bp + BF{'' if pointwise else ' + (int64_t)(C / G) * HP * WP'};"
                         "\n    int32_t i;\n")
        a_block = "aw, bp"
        widen = f"""
                    for (i = 0; i < OCG; i += {s.mr}) {{  /* panel i: mr rows x kb, contiguous */
                        const int32_t mr = OCG - i < {s.mr} ? OCG - i : {s.mr};
                        megcc_widen_f16(ag + (int64_t)i * K + (int64_t)k0 * mr, aw + (int64_t)i * kb, (int64_t)kb * mr);
                    }}"""
    if f16:  # the A block is widened per K block: pack, widen, then the GEMM on them
        step = f"""{pack_only};{widen}
                    megcc_{s.name}_gemm_block_par(par, OCG, nb, kb, 0, kb, {a_block}, (int64_t)kb * {s.nr}, yg + j0, S, MC, &e);"""
    else:  # packing and GEMM in one parallel job per K block (packed_gemm.py)
        step = f"""/* pack this K block of B into bp, then the GEMM block on it */
                    {pack}
                        OCG, K, ag, yg + j0, S, MC, &e);"""
    threaded = "" if f16 else f"""
            if (par && par->threads > 1) {{
                /* on threads: one job by units of columns over every K block, or, for few
                 * columns, B packed whole and one job by rows (packed_gemm.py) */
                const int32_t panels = (S + {s.nr - 1}) / {s.nr};
                const float *rg = res ? res + ((int64_t)b * OC + (int64_t)gi * OCG) * S : 0;
                if ((panels < 4 * par->threads || K > KC) && (int64_t)K * panels * {s.nr} <= BF) {{
                    {pack_all};
                    megcc_{s.name}_gemm_rows_par(par, OCG, S, K, KC, ag, bp, yg, S, MC, rg, S, &e);
                }} else {{
                    {units} OCG, K, KC, (int32_t)(BF / ((int64_t)KC * {s.nr})), ag, yg, S, MC, rg, S, &e);
                }}
            }} else {{"""
    body = f"""    const float *x = (const float *)in_ptrs[0];
    const {"uint16_t" if f16 else "float"} *w = (const {"uint16_t" if f16 else "float"} *)in_ptrs[1];  /* {s.mr}-row panels per group (packed_gemm.py){", float16" if f16 else ""} */
    const float *bias = {"(const float *)in_ptrs[2]" if has_bias else "0"};
    const float *res = {"(const float *)in_ptrs[3]" if residual else "0"};
    {"const float *slope = (const float *)in_ptrs[4];" if slope else ""}
    float *y = (float *)out_ptrs[0];
    float *bp = (float *)workspace;
    const int32_t CG = C / G, OCG = OC / G, K = CG * {geo["kh"] * geo["kw"]}, S = OH * OW;
    /* workspace: the packed B block, then (im2col) one group's zero-padded input */
{padded_input}    int32_t b, gi, j0, k0;
    megcc_{s.name}_epi e;
    {setup}
    for (b = 0; b < N; ++b)
        for (gi = 0; gi < G; ++gi) {{
            const float *xg = x + {"(int64_t)b * H * W * C + (int64_t)gi * CG" if nhwc else "((int64_t)b * C + (int64_t)gi * CG) * H * W"};
            const {"uint16_t" if f16 else "float"} *ag = w + (int64_t)gi * OCG * K;
            float *yg = y + ((int64_t)b * OC + (int64_t)gi * OCG) * S;
            e.bias_n = 0;
            e.bias_m = bias ? bias + (int64_t)gi * OCG : 0;{"e.slope_m = slope + (int64_t)gi * OCG;" if slope else ""}{pad_input}{threaded}
            for (j0 = 0; j0 < S; j0 += NC) {{
                const int32_t nb = S - j0 < NC ? S - j0 : NC;{copy_residual}
                for (k0 = 0; k0 < K; k0 += KC) {{
                    const int32_t kb = K - k0 < KC ? K - k0 : KC;
                    e.accumulate = k0 > 0 || res;
                    e.finish = k0 + kb >= K;
                    {step}
                }}
            }}{"}" if threaded else ""}{scalar_activation_pass(act, "yg", "OCG * S") if act_pass else ""}
        }}
"""
    kernel = make_kernel(name, body, PARAMS, ("math",) + tuple(helpers), isa=s.isa)
    hp, wp = (0, 0) if pointwise else padded_extents(geo)
    # the packed-B area: one K block of NC columns; on threads (packed_gemm.py), at least
    # MIN_SLOTS panels (one per unit of columns: fewer units than panels made units of one
    # and two panels), and for a product with few columns B packed whole (every K block)
    bf = kc * (-(-nc // s.nr) * s.nr)
    if not f16 and graph.max_threads != 1:  # (compiled for one thread: one K block; on
        bf = threaded_b_floats(sp, k, kc, s)  # threads anyway, the kernel cuts by units)
    params = PARAMS.pack(**conv_head_values(geo, grp), KC=kc, NC=nc, MC=mc, HP=hp, WP=wp, BF=bf)
    inputs = [op.inputs[0], wname, op.inputs[2] if has_bias else ""]
    if residual or slope:
        inputs.append(op.inputs[3] if residual else "")
    if slope:
        inputs.append(slope)
    ws = (bf + (geo["c"] // grp) * hp * wp + (m * kc if f16 else 0)) * 4
    how = ("1x1: input rows packed" if pointwise else
           f"im2col from a zero-padded {hp!r}x{wp!r} input copy fused into B packing")
    return [Instr(kernel, inputs, [op.outputs[0]], params, workspace_bytes=ws,
                  note=f"{s.label} {s.mr}x{s.nr} packed GEMM, weights pre-packed"
                       f"{' as float16, widened per K block' if f16 else ''}, {how} "
                       f"(M={m!r}, N={sp!r}, K={k!r}, groups={grp}, kc={kc!r}, nc={nc!r}, mc={mc!r})")]


PAD_PLANES_PAR = ("pad_planes_par", r"""/* The zero-padded copy of `planes` input channels (megcc_pad_plane each) on the
   network's threads, by ranges of channels (each plane is written by one thread only). */
typedef struct {
    const float *x;
    float *xp;
    int32_t H, W, PT, PL, HP, WP, borders_set;
} megcc_pad_planes_job;

static void megcc_pad_planes_part(void *arg, int32_t begin, int32_t end) {
    const megcc_pad_planes_job *j = (const megcc_pad_planes_job *)arg;
    int32_t c;
    for (c = begin; c < end; ++c)
        megcc_pad_plane(j->x + (int64_t)c * j->H * j->W, j->H, j->W, j->PT, j->PL, j->HP, j->WP,
                        0.0f, j->xp + (int64_t)c * j->HP * j->WP, j->borders_set);
}

static void megcc_pad_planes_par(const megcc_parallel *par, const float *x, int32_t planes,
        int32_t H, int32_t W, int32_t PT, int32_t PL, int32_t HP, int32_t WP, float *xp,
        int32_t borders_set) {
    megcc_pad_planes_job j;
    j.x = x; j.xp = xp; j.H = H; j.W = W; j.PT = PT; j.PL = PL; j.HP = HP; j.WP = WP;
    j.borders_set = borders_set;
    /* a copy is memory-bound: below some hundred kilobytes one thread does it faster */
    if (!par || par->threads < 2 || (int64_t)planes * HP * WP < 65536 || planes < 2) {
        megcc_pad_planes_part(&j, 0, planes);
        return;
    }
    megcc_parallel_for(par, planes, megcc_pad_planes_part, &j);
}
""")


NHWC_PAD_HELPER = ("pad_nhwc", r"""/* The CG channels from x (a pixel's channels CS floats apart: an NHWC image) as CG
   zero-bordered HP x WP planes (PT rows above, PL columns left; cut at HP x WP): the im2col
   packing's padded input, and the NHWC -> NCHW transpose, in one copy. */
static void megcc_pad_nhwc(const float *x, int32_t CS, int32_t CG, int32_t H, int32_t W,
        int32_t PT, int32_t PL, int32_t HP, int32_t WP, float *xp) {
    int32_t iy, ix, c;
    memset(xp, 0, sizeof(float) * (size_t)CG * (size_t)HP * (size_t)WP);
    for (iy = 0; iy < H && iy + PT < HP; ++iy)
        for (ix = 0; ix < W && ix + PL < WP; ++ix) {
            const float *px = x + ((int64_t)iy * W + ix) * CS;
            float *d = xp + (int64_t)(iy + PT) * WP + ix + PL;
            for (c = 0; c < CG; ++c) d[(int64_t)c * HP * WP] = px[c];
        }
}
""")


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    """vector_conv_rejection, and an NHWC input only where im2col copies it (not 1x1)."""
    reason = vector_conv_rejection(op, graph, nhwc_ok=True)
    if reason is None and op.attrs.get("input_nhwc") and is_pointwise(conv_problem(op, graph)):
        return "1x1 convolution of an NHWC input (no im2col copy to transpose in)"
    return reason


# ---------------------------------------------------------------------------------------
# depthwise direct


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    geo = conv_problem(op, graph)
    m, s, k = gemm_shape(geo)
    if is_pointwise(geo):
        pack = 0.15
    elif geo["sw"] == 1:
        pack = 0.3
    else:
        pack = 0.8
    return geo["n"] * (gemm_cycles(m, s, k, pack, geo["group"], isa.vec("f32").gemm, isa.core)
                       + PACKED_CONV_CALL)


def _label(isa: IsaSpec) -> str:
    gs = isa.vec("f32").gemm
    return f"{gs.name} packed GEMM {gs.mr}x{gs.nr}"


@implements("Conv", dtypes=F32, layout="nchw", requires="f32.gemm",
            applies=_applies,
            cost=_cost, label=_label)
def emit(op: Op, graph: Graph, isa: IsaSpec):
    return lower_gemm_conv(op, graph, isa.vec("f32").gemm)
