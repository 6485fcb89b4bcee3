"""Depthwise direct convolution (NCHW, float32) for one vector vocabulary (target: the
level's f32 `direct` vectors): each channel's input copied once into a padded plane, then
DEPTHWISE_ROWS output rows per pass share the input loads."""
from __future__ import annotations

from typing import Optional

from ...codegen import packed_gemm as g
from ...codegen.half import weight_pointer
from ...codegen.kernel import Instr, c_float
from ...codegen.parallel import (parts_with_scratch, scratch_bytes, scratch_parts,
                                 scratch_stride, scratch_tag, split_kernel)
from ...codegen.params import i32
from ...codegen.vector import Simd
from ...codegen.window import plane, store_row_tail
from ...ir import Graph, Op
from ...ir.symbolic import Sym
from ...isa import IsaSpec
from ..elementwise.activation import activation_tag
from ..registry import F32, implements
from .geometry import (bias_of, conv_head_values, conv_problem, conv_schema, is_depthwise,
                       prelu_slope, prelu_tag, prelu_vector, scalar_activation_pass,
                       vector_conv_rejection)


PARAMS = conv_schema(i32("PH", "padded plane height"),
                     i32("PWP", "padded plane width (also compiled in as PW)"))


def depthwise_ok(geo) -> bool:
    return is_depthwise(geo) and geo["sw"] in (1, 2)


# Output rows a depthwise pass computes together (at most OH): an input row feeds up to KH
# of them, so each vector load serves several FMAs (3x3 stride 1: 4.5 loads per output
# vector instead of 9) and the rows' accumulators are independent chains that hide the FMA
# latency. 4 rows + 9 weights + 1 load fit ARMv7's and AVX2's 16 vector registers (6 rows
# measured slower on AVX2).
DEPTHWISE_ROWS = 4


def _depthwise_rows(s: Simd, rows: int, kh: int, kw: int, sh: int, sw: int, dh: int,
                    dw: int, clamp: bool, prelu: bool = False) -> str:
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
    if prelu:  # the channel's slope sv, zero zv (lower_depthwise)
        code += [f"a{r} = {prelu_vector(s, f'a{r}', 'sv', 'zv')};" for r in range(rows)]
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
    geo = conv_problem(op, graph)
    act = op.attrs.get("activation")
    has_bias, bias_tag = bias_of(op)
    slope = prelu_slope(op)  # a fused per-channel PReLU (passes/fuse.py)
    bias_tag += prelu_tag(op)
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("kh", "kw", "sh", "sw", "dh", "dw"))
    tag = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    # rows are unrolled into the code; with a run-time OH the kernel also has a one-row
    # pass for planes of fewer rows (the block loop needs OH >= rows)
    oh_rt = isinstance(geo["oh"], Sym)
    rows = DEPTHWISE_ROWS if oh_rt else max(1, min(DEPTHWISE_ROWS, geo["oh"]))
    ph, pw = plane(geo, s.vw)
    f16 = graph.tensors[op.inputs[1]].dtype == "float16"  # passes/compress_fp16.py
    # A width only known at run time reads the plane width from the params (a register
    # more per row pass than the compiled-in constant, far cheaper than the GEMM fallback)
    runtime_pw = isinstance(pw, Sym)
    name = (f"conv2d_depthwise_{tag}_r{rows}{'_ohrt' if oh_rt else ''}"
            f"_pw{'rt' if runtime_pw else pw}"
            f"{'_w16' if f16 else ''}_f32{bias_tag}{activation_tag(act)}_{s.name}")
    most = scratch_parts(graph)  # planes: at most one per thread (max_threads)
    name += scratch_tag(most)
    clamp, act_pass = g.vector_clamp(act, c_float)
    lo, hi = clamp or ("0.0f", "0.0f")
    # one part per range of channels, each with its own plane in the workspace
    if sw == 1:
        planes = ("/* this part's zero-padded input plane */\n"
                  f"    float *pl = (float *)workspace + part * {scratch_stride('PH * PW')};")
        fill = f"megcc_{s.name}_pad_plane(xc, H, W, PT, PL, PH, PW, 0.0f, pl, b > 0 || o > o0);"
    else:
        planes = ("const int32_t PW2 = (PW + 1) / 2;  /* its even and odd columns */\n"
                  f"    float *pe = (float *)workspace + part * {scratch_stride('2 * PH * PW2')}, "
                  "*po = pe + (int64_t)PH * PW2;")
        fill = (f"megcc_{s.name}_split_plane(xc, H, W, PT, PL, PH, PW, 0.0f, pe, po, "
                "b > 0 || o > o0);")
    # float16 filters: one channel's taps widened on the stack, then broadcast as before
    widen = (f"\n            float wk[{kh * kw}];\n"
             f"            megcc_widen_f16(wh, wk, {kh * kw});") if f16 else ""
    blocks = _depthwise_rows(s, rows, kh, kw, sh, sw, dh, dw, bool(clamp), bool(slope))
    if oh_rt:
        blocks = (f"            if (OH >= {rows}) {{\n{blocks}            }} else {{\n"
                  f"{_depthwise_rows(s, 1, kh, kw, sh, sw, dh, dw, bool(clamp), bool(slope))}"
                  "            }\n")
    body = f"""    const float *x = (const float *)in_ptrs[0];
    {weight_pointer("w", 1, f16)}
    const float *bias = {"(const float *)in_ptrs[2]" if has_bias else "0"};
    {"const float *slope = (const float *)in_ptrs[4];" if slope else ""}
    float *y = (float *)out_ptrs[0];
    /* the plane width is a constant of the kernel: each tap's load is then one base
     * register plus an immediate offset (with PW at run time the row offsets of a
     * {rows}-row pass took more registers than x86-64 has, and spilled) */
    const int32_t PW = {"PWP" if runtime_pw else pw}, SH = {sh};
    {planes}
    const int32_t M = OC / C;  /* channel multiplier */
    const int32_t o0 = (int32_t)((int64_t)OC * part / parts),
                  o1 = (int32_t)((int64_t)OC * (part + 1) / parts);
    int32_t b, o, r, oy, ox;
{f"    const {s.vtype} lo = {s.set1(lo)}, hi = {s.set1(hi)};{chr(10)}" if clamp else ""}\
    for (b = 0; b < N; ++b)
        for (o = o0; o < o1; ++o) {{
            const float *xc = x + ((int64_t)b * C + o / M) * H * W;
            {"const uint16_t *wh" if f16 else "const float *wk"} = w + (int64_t)o * {kh * kw};
            float *yc = y + ((int64_t)b * OC + o) * OH * OW, *yr;
            const {s.vtype} bv = {s.set1("bias ? bias[o] : 0.0f")};{f"{chr(10)}            const {s.vtype} sv = {s.set1('slope[o]')}, zv = {s.zero};" if slope else ""}
            {s.vtype} wv[{kh * kw}];{widen}
            for (r = 0; r < {kh * kw}; ++r) wv[r] = {s.dup("wk + r")};
            {fill}
{blocks}{scalar_activation_pass(act, "yc", "OH * OW") if act_pass else ""}
        }}
"""
    kernel = split_kernel(name, body, parts_with_scratch("OC", most), PARAMS, ("math",), isa=s.isa)
    params = PARAMS.pack(**conv_head_values(geo), PH=ph, PWP=pw)
    inputs = [op.inputs[0], op.inputs[1], op.inputs[2] if has_bias else ""]
    if slope:
        inputs += ["", slope]
    plane_floats = ph * pw if sw == 1 else 2 * ph * ((pw + 1) // 2)
    parts = min(most, geo["oc"])  # the most parts: one plane each
    return [Instr(kernel, inputs, [op.outputs[0]], params,
                  workspace_bytes=scratch_bytes(parts, plane_floats),
                  note=f"{s.label} depthwise direct: zero-padded plane {ph!r}x{pw!r}"
                       f"{'' if sw == 1 else ' split into even/odd columns'}, {s.vw} outputs "
                       f"per vector, {rows} output rows per pass sharing input loads, weights "
                       f"in registers")]


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    reason = vector_conv_rejection(op, graph)
    if reason:
        return reason
    return None if depthwise_ok(conv_problem(op, graph)) else "not a depthwise conv of stride 1 or 2"


# What a channel costs beyond its taps and plane: broadcasting its weights, the row-block
# loops and the partial stores of short rows. It decides small maps (3 x 3 .. 6 x 6), where
# the channels-in-lanes kernel (depthwise_chblock_simd_f32.py) is 2-3x faster: measured in
# process (AVX2, MobileNetV2-96's layers: 960 channels of 3 x 3, 28 us here, ~100 cycles a
# channel for 81 multiply-adds).
DEPTHWISE_CHANNEL_CALL = 20.0


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    """One vector FMA + one load per tap per output vector, plus building the padded plane."""
    geo, vs, core = conv_problem(op, graph), isa.vec("f32").direct, isa.core
    ph, pw = plane(geo, vs.vw)
    vec = geo["oh"] * -(-geo["ow"] // vs.vw)
    per_tap = (1.0 if geo["sw"] == 1 else 1.6) / core.fma_per_cycle
    return geo["n"] * geo["oc"] * (vec * geo["kh"] * geo["kw"] * per_tap + ph * pw / vs.vw
                                   + DEPTHWISE_CHANNEL_CALL)


@implements("Conv", dtypes=F32, layout="nchw", requires="f32.direct", applies=_applies,
            cost=_cost, label=lambda isa: f"{isa.vec('f32').direct.name} depthwise direct")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    return lower_depthwise(op, graph, isa.vec("f32").direct)
