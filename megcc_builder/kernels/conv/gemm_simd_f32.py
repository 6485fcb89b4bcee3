"""Vector convolutions (NCHW, float32): packed GEMM (1x1 and im2col) and depthwise direct,
generated for one vector ISA (simd.py: AVX2, NEON, AArch64 NEON).

Each builder returns the instructions for one Conv op; `select.py` decides which one runs
by cost. Parameters follow the portable kernels (conv.py): N, C, H, W, OC, OH, OW, G, PT, PL
then the variant's own (blocking, padded-plane extents).
"""
from __future__ import annotations

import textwrap

import numpy as np

from ..ir import Graph, Op
from . import packed_gemm as g
from .base import Instr, Kernel, c_float, kernel_source
from .conv import activation_code, activation_tag, conv_geometry
from .simd import Simd


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


def _im2col_pack(s: Simd, tag: str, geo) -> tuple:
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
    return (f"{s.name}_im2col_{tag}", src)


def lower_gemm_conv(op: Op, graph: Graph, s: Simd):
    geo = _common(op, graph)
    act = op.attrs.get("activation")
    has_bias, bias_tag = _bias(op)
    residual = bool(op.attrs.get("residual"))  # y = act(conv + bias + r), passes/fuse.py
    bias_tag += "_residual" if residual else ""
    m, sp, k = gemm_shape(geo)
    grp = geo["group"]
    kc, nc, mc = g.blocking(m, sp, k, s)
    pointwise = is_pointwise(geo)
    tag = "k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}".format(**geo)
    w = np.asarray(graph.tensors[op.inputs[1]].data, np.float32).reshape(grp, m, k)
    packed = np.concatenate([g.pack_a(w[i], s.mr) for i in range(grp)])
    wname = graph.unique_name(op.inputs[1] + f"__{s.name}_a{s.mr}")
    graph.add_const(wname, packed)
    setup, act_pass = g.epilogue_setup(act, c_float)
    helpers = []
    tile = f"gemm{s.mr}x{s.nr}"
    if pointwise:
        name = f"conv2d_1x1_{tile}_f32{bias_tag}{activation_tag(act)}_{s.name}"
        pack = f"megcc_{s.name}_pack_b(xg, S, k0, kb, j0, nb, bp);"
    else:
        name = f"conv2d_{tile}_{tag}_f32{bias_tag}{activation_tag(act)}_{s.name}"
        pack = f"megcc_{s.name}_im2col_{tag}(xp, HP, WP, OW, k0, kb, j0, nb, bp);"
        helpers.append(_im2col_pack(s, tag, geo))
    pad_input = "" if pointwise else """
            for (ci = 0; ci < CG; ++ci)
                megcc_pad_plane(xg + (int64_t)ci * H * W, H, W, PT, PL, HP, WP, 0.0f,
                                xp + (int64_t)ci * HP * WP, b > 0 || gi > 0);"""
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
    const float *w = (const float *)in_ptrs[1];  /* {s.mr}-row panels per group (packed_gemm.py) */
    const float *bias = {"(const float *)in_ptrs[2]" if has_bias else "0"};
    const float *res = {"(const float *)in_ptrs[3]" if residual else "0"};
    float *y = (float *)out_ptrs[0];
    float *bp = (float *)workspace;
    const int32_t N = p[0], C = p[1], H = p[2], W = p[3], OC = p[4], OH = p[5], OW = p[6];
    const int32_t G = p[7], PT = p[8], PL = p[9], KC = p[10], NC = p[11], MC = p[12];
    const int32_t HP = p[13], WP = p[14];  /* zero-padded input extents (im2col) */
    const int32_t CG = C / G, OCG = OC / G, K = CG * {geo["kh"] * geo["kw"]}, S = OH * OW;
    /* workspace: the packed B block, then (im2col) one group's zero-padded input */
    float *xp = bp + (int64_t)KC * ((NC + {s.nr - 1}) / {s.nr} * {s.nr});
    int32_t b, gi, j0, k0, ci;
    megcc_{s.name}_epi e;
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
                    megcc_{s.name}_gemm_block(OCG, nb, K, k0, kb, ag, bp, (int64_t)kb * {s.nr}, yg + j0, S, MC, &e);
                }}
            }}{_act_pass(act, "yg", "OCG * S") if act_pass else ""}
        }}
"""
    kernel = Kernel(name, kernel_source(name, body), ("math",) + tuple(helpers), isa=s.isa)
    pads = geo["pads"]
    hp, wp = (0, 0) if pointwise else padded_extents(geo)
    params = [geo["n"], geo["c"], geo["h"], geo["w"], geo["oc"], geo["oh"], geo["ow"], grp,
              pads[0], pads[1], kc, nc, mc, hp, wp]
    inputs = [op.inputs[0], wname, op.inputs[2] if has_bias else ""]
    if residual:
        inputs.append(op.inputs[3])
    ws = (kc * (-(-nc // s.nr) * s.nr) + (geo["c"] // grp) * hp * wp) * 4
    how = ("1x1: input rows packed" if pointwise else
           f"im2col from a zero-padded {hp}x{wp} input copy fused into B packing")
    return [Instr(kernel, inputs, [op.outputs[0]], params, workspace_bytes=ws,
                  note=f"{s.label} {s.mr}x{s.nr} packed GEMM, weights pre-packed, {how} "
                       f"(M={m}, N={sp}, K={k}, groups={grp}, kc={kc}, nc={nc}, mc={mc})")]


# ---------------------------------------------------------------------------------------
# depthwise direct

def depthwise_ok(geo) -> bool:
    return (geo["group"] == geo["c"] and geo["oc"] % geo["c"] == 0 and geo["group"] > 1
            and geo["sw"] in (1, 2))


def plane(geo, vw: int):
    """Padded input plane extents for vw-wide outputs: every vector load of any output row
    (full vectors, or deinterleaving loads of 2*vw floats at stride 2) stays inside."""
    owv = -(-geo["ow"] // vw) * vw
    last = (owv - vw) * geo["sw"] + (geo["kw"] - 1) * geo["dw"] + (vw if geo["sw"] == 1 else 2 * vw)
    pw = max(geo["pads"][1] + geo["w"], last)
    ph = max((geo["oh"] - 1) * geo["sh"] + (geo["kh"] - 1) * geo["dh"] + 1, 1)
    return ph, pw


def window_row(s: Simd, stride: int, start, tap, finish, indent: int) -> str:
    """The loop over one output row (yr, OW outputs, input rows from `row`) of a direct
    window kernel (max pooling): s.row_unroll output vectors per step,
    each with its own accumulator acc<u> (in-order cores overlap their latency chains), then
    single vectors with a partial store at the row's end. start(u): declaration of acc<u>;
    tap(u, x): statements folding the input vector x into it; finish(u): before the store.
    The code is indented by `indent` spaces (its first line by none)."""
    def step(n: int, store: str) -> str:
        srcs = [f"r + {u * s.vw * stride} + kx * DW" if u else "r + kx * DW" for u in range(n)]
        loads = [s.load(p) if stride == 1 else s.even(p) for p in srcs]
        return "\n".join(["{", *(f"    {start(u)}" for u in range(n)),
                          "    for (ky = 0; ky < KH; ++ky) {",
                          "        const float *r = row + (int64_t)ky * DH * PW + ox * SW;",
                          "        for (kx = 0; kx < KW; ++kx) {",
                          *(f"            {tap(u, loads[u])}" for u in range(n)),
                          "        }", "    }",
                          *(f"    {finish(u)}" for u in range(n) if finish(u)),
                          f"    {store}", "}"])
    u, vw = s.row_unroll, s.vw
    lines = ["ox = 0;"]
    if u > 1:
        stores = " ".join(s.store(f"yr + ox + {i * vw}", f"acc{i}") + ";" for i in range(u))
        lines.append(f"for (; ox + {u * vw} <= OW; ox += {u * vw}) " + step(u, stores))
    lines.append(f"for (; ox < OW; ox += {vw}) " + step(1, store_row_tail(s, "acc0")))
    return textwrap.indent("\n".join(lines), " " * indent).lstrip()


def store_row_tail(s: Simd, v: str) -> str:
    """Store vector v at yr + ox, only its OW - ox live lanes when it is the row's last."""
    return (f"if (ox + {s.vw} <= OW) {s.store('yr + ox', v)};\n"
            f"    else {{ float t[{s.vw}]; int32_t q; {s.store('t', v)}; "
            f"for (q = 0; q < OW - ox; ++q) yr[ox + q] = t[q]; }}")


# Output rows a depthwise pass computes together (at most OH): an input row feeds up to KH
# of them, so each vector load serves several FMAs (3x3 stride 1: 4.5 loads per output
# vector instead of 9) and the rows' accumulators are independent chains that hide the FMA
# latency. 4 rows + 9 weights + 1 load fit ARMv7's and AVX2's 16 vector registers (6 rows
# measured slower on AVX2).
DEPTHWISE_ROWS = 4


def _depthwise_rows(s: Simd, rows: int, kh: int, kw: int, sh: int, sw: int, dh: int,
                    dw: int, clamp: bool) -> str:
    """C loop over blocks of `rows` output rows (OH >= rows), unrolled over the taps: every
    input vector is loaded once and multiplied into each output row using it. When OH is not
    a multiple of `rows`, the last block is moved up to end at row OH - 1: it recomputes
    (and stores again, identically) a few rows of the previous block, which costs less than
    narrower passes whose few accumulator chains leave the FMA units waiting.
    Stride 1 reads the padded plane `pl` (PW floats per row), stride 2 its even/odd column
    planes `pe`/`po` (PW2 floats per row)."""
    def load(d: int, kx: int) -> str:
        if sw == 1:
            return s.load(f"in + {d} * PW + {kx * dw}")
        col = kx * dw  # padded column 2*(ox+q) + col: plane col % 2, index ox + q + col // 2
        return s.load(f"in{'o' if col % 2 else 'e'} + {d} * PW2 + {col // 2}")

    taps = {}  # input row offset -> [(output row, ky)]
    for r in range(rows):
        for ky in range(kh):
            taps.setdefault(r * sh + ky * dh, []).append((r, ky))
    code = []
    for d in sorted(taps):
        for kx in range(kw):
            code.append(f"v = {load(d, kx)};{s.keep('v')}")
            code += [f"a{r} = {s.fma(f'a{r}', 'v', f'wv[{ky * kw + kx}]')};"
                     for r, ky in taps[d]]
    if clamp:
        code += [f"a{r} = {s.min('hi', s.max('lo', f'a{r}'))};" for r in range(rows)]
    for r in range(rows):
        code += [f"yr = yc + (int64_t)(oy + {r}) * OW;",
                 store_row_tail(s, f"a{r}").replace("\n    ", " ")]
    ins = ("const float *in = pl + (int64_t)oy * SH * PW + ox;" if sw == 1 else
           "const float *ine = pe + (int64_t)oy * SH * PW2 + ox, "
           "*ino = po + (int64_t)oy * SH * PW2 + ox;")
    accs = ", ".join(f"a{r} = bv" for r in range(rows))
    body = "\n".join(f"                    {c}" for c in code)
    return f"""            for (oy = 0; oy < OH; oy += {rows}) {{
                if (oy > OH - {rows}) oy = OH - {rows};
                for (ox = 0; ox < OW; ox += {s.vw}) {{
                    {ins}
                    {s.vtype} v, {accs};
{body}
                }}
            }}
"""


def lower_depthwise(op: Op, graph: Graph, s: Simd):
    geo = _common(op, graph)
    act = op.attrs.get("activation")
    has_bias, bias_tag = _bias(op)
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("kh", "kw", "sh", "sw", "dh", "dw"))
    tag = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    rows = max(1, min(DEPTHWISE_ROWS, geo["oh"]))
    ph, pw = plane(geo, s.vw)
    name = f"conv2d_depthwise_{tag}_r{rows}_pw{pw}_f32{bias_tag}{activation_tag(act)}_{s.name}"
    clamp, act_pass = g.vector_clamp(act, c_float)
    lo, hi = clamp or ("0.0f", "0.0f")
    if sw == 1:
        planes = "float *pl = (float *)workspace;  /* one zero-padded input plane */"
        fill = f"megcc_{s.name}_pad_plane(xc, H, W, PT, PL, PH, PW, 0.0f, pl, b > 0 || o > 0);"
    else:
        planes = ("const int32_t PW2 = (PW + 1) / 2;  /* its even and odd columns */\n"
                  "    float *pe = (float *)workspace, *po = pe + (int64_t)PH * PW2;")
        fill = f"megcc_{s.name}_split_plane(xc, H, W, PT, PL, PH, PW, 0.0f, pe, po, b > 0 || o > 0);"
    blocks = _depthwise_rows(s, rows, kh, kw, sh, sw, dh, dw, bool(clamp))
    body = f"""    const float *x = (const float *)in_ptrs[0];
    const float *w = (const float *)in_ptrs[1];
    const float *bias = {"(const float *)in_ptrs[2]" if has_bias else "0"};
    float *y = (float *)out_ptrs[0];
    const int32_t N = p[0], C = p[1], H = p[2], W = p[3], OC = p[4], OH = p[5], OW = p[6];
    /* the plane width is a constant of the kernel: each tap's load is then one base
     * register plus an immediate offset (with PW at run time the row offsets of a
     * {rows}-row pass took more registers than x86-64 has, and spilled) */
    const int32_t PT = p[8], PL = p[9], PH = p[10], PW = {pw}, SH = {sh};
    {planes}
    const int32_t M = OC / C;  /* channel multiplier */
    int32_t b, o, r, oy, ox;
    const {s.vtype} lo = {s.set1(lo)}, hi = {s.set1(hi)};
    (void)lo; (void)hi;
    for (b = 0; b < N; ++b)
        for (o = 0; o < OC; ++o) {{
            const float *xc = x + ((int64_t)b * C + o / M) * H * W;
            const float *wk = w + (int64_t)o * {kh * kw};
            float *yc = y + ((int64_t)b * OC + o) * OH * OW, *yr;
            const {s.vtype} bv = {s.set1("bias ? bias[o] : 0.0f")};
            {s.vtype} wv[{kh * kw}];
            for (r = 0; r < {kh * kw}; ++r) wv[r] = {s.dup("wk + r")};
            {fill}
{blocks}{_act_pass(act, "yc", "OH * OW") if act_pass else ""}
        }}
"""
    kernel = Kernel(name, kernel_source(name, body), ("math",), isa=s.isa)
    pads = geo["pads"]
    params = [geo["n"], geo["c"], geo["h"], geo["w"], geo["oc"], geo["oh"], geo["ow"],
              geo["group"], pads[0], pads[1], ph, pw]
    inputs = [op.inputs[0], op.inputs[1], op.inputs[2] if has_bias else ""]
    plane_floats = ph * pw if sw == 1 else 2 * ph * ((pw + 1) // 2)
    return [Instr(kernel, inputs, [op.outputs[0]], params, workspace_bytes=plane_floats * 4,
                  note=f"{s.label} depthwise direct: zero-padded plane {ph}x{pw}"
                       f"{'' if sw == 1 else ' split into even/odd columns'}, {s.vw} outputs "
                       f"per vector, {rows} output rows per pass sharing input loads, weights "
                       f"in registers")]
