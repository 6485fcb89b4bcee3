"""float16 convolutions (NCHW) on Armv8.2-A + FP16 (enable_ioc16): a packed GEMM whose
micro-kernel keeps an 8 x 16 tile of float16 outputs in 16 registers and, per k, multiplies
two 8-lane vectors of B by a lane of an 8-lane A vector (`fmla v.8h, v.8h, v.h[i]`).

- A (the weights, OC/G x K per group, K = C/G * kh * kw) is packed at compile time into
  8-row panels, k-major, zero-padded to 8 rows; the bias (float16, zero-padded) starts the
  accumulators.
- B: a 1x1 convolution (stride 1, no padding) reads the input rows directly (row k of B is
  input channel k); other geometries (3x3, 7x7, strided, padded, dilated) are im2col'd into
  the workspace per block of NC output positions, zero-padded to 16 columns.
- Epilogue on the tile in registers: + residual (passes/fuse.py's y = act(conv + b + r)),
  then ReLU / ReLU6 / Clip.

Accumulation is in float16 (each FMA rounds to 11 significant bits); the error this gives
is measured against float64 and against NumPy float16 arithmetic in tests/test_fp16_ioc16.py
and documented in docs/float16.md. On arm64-fp16fml (FEAT_FHM) it is in float32 instead:
the 8 x 16 tile is computed as two 8 x 8 halves, each in 16 float32x4 accumulators fed by
the widening FMAs `fmlal`/`fmlal2` (vfmlalq_laneq_low/high_f16: the float16 product is
exact in float32, one rounding per step), and rounded to float16 once before the epilogue.
"""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32
from ...ir import Graph, Op
from ...isa import IsaSpec
from ...isa.arm import accumulates_f16_in_f32
from ..elementwise.f16_clamp import clamp_code, clamp_tag, f16_clamp
from ..registry import implements
from .geometry import conv_head_values, conv_problem, conv_schema, is_depthwise

MR, NR = 8, 16  # micro-tile: 8 output channels x 16 output positions (2 vectors)
PARAMS = conv_schema(i32("NC", "output positions per im2col block"))


def f16_conv_rejection(op: Op, graph: Graph, isa=None):
    """None if the float16 conv kernels can take `op`: float16 data, constant float16
    weights and bias, 2-D, resolved padding, an activation they clamp in registers, no
    fused PReLU slope and no NHWC input."""
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    if x.dtype != "float16" or w.dtype != "float16" or not w.is_const:
        return "not float16 data with constant float16 weights"
    if len(x.shape) != 4:
        return f"{len(x.shape) - 2}-D"
    if len(op.inputs) > 2 and op.inputs[2]:
        b = graph.tensors[op.inputs[2]]
        if not b.is_const or b.dtype != "float16":
            return "bias not a float16 constant"
    if len(op.inputs) > 3 and op.inputs[3] and graph.tensors[op.inputs[3]].dtype != "float16":
        return "residual not float16"
    if op.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") and "pads" not in op.attrs:
        return "auto_pad unresolved"
    if f16_clamp(op.attrs.get("activation")) is False:
        return "activation other than ReLU / clamp"
    # float32-kernel features the float16 kernels do not implement
    if op.attrs.get("prelu"):
        return "a fused PReLU epilogue (passes/fuse.py)"
    if op.attrs.get("input_nhwc"):
        return "reads an NHWC input (passes/transposes.py)"
    return None


def pack_weights(w: np.ndarray, group: int) -> np.ndarray:
    """(OC, C/G, kh, kw) -> per group, 8-row panels over K, k-major, zero-padded rows."""
    oc = w.shape[0]
    ocg, k = oc // group, int(np.prod(w.shape[1:]))
    panels = -(-ocg // MR)
    out = np.zeros((group, panels * MR, k), np.float16)
    out[:, :ocg] = w.reshape(group, ocg, k)
    return np.ascontiguousarray(out.reshape(group, panels, MR, k).transpose(0, 1, 3, 2).reshape(-1))


def padded_bias(op: Op, graph: Graph, group: int, ocg: int) -> np.ndarray:
    panels = -(-ocg // MR)
    out = np.zeros((group, panels * MR), np.float16)
    if len(op.inputs) > 2 and op.inputs[2]:
        out[:, :ocg] = np.asarray(graph.tensors[op.inputs[2]].data, np.float16).reshape(group, ocg)
    return out.reshape(-1)


def _epilogue(act, residual: bool) -> str:
    """On the float16 tile c{r}{v}: + residual, the clamp, the stores (edges masked)."""
    clamp = " ".join(clamp_code(act, f"c{r}{v}") for r in range(MR) for v in range(2))
    res = ""
    if residual:
        res = "\n".join(
            f"            if ({r} < rows) {{ const float16_t *rr = rg + (int64_t){r} * S; "
            f"if (full) {{ c{r}0 = vaddq_f16(c{r}0, vld1q_f16(rr)); c{r}1 = vaddq_f16(c{r}1, vld1q_f16(rr + 8)); }} "
            f"else {{ float16_t t[16] = {{0}}; int32_t e; for (e = 0; e < cols; ++e) t[e] = rr[e]; "
            f"c{r}0 = vaddq_f16(c{r}0, vld1q_f16(t)); c{r}1 = vaddq_f16(c{r}1, vld1q_f16(t + 8)); }} }}"
            for r in range(MR))
    stores = "\n".join(
        f"            if ({r} < rows) {{ float16_t *yr = yt + (int64_t){r} * S; "
        f"if (full) {{ vst1q_f16(yr, c{r}0); vst1q_f16(yr + 8, c{r}1); }} "
        f"else {{ float16_t t[16]; int32_t e; vst1q_f16(t, c{r}0); vst1q_f16(t + 8, c{r}1); "
        f"for (e = 0; e < cols; ++e) yr[e] = t[e]; }} }}"
        for r in range(MR))
    return f"""{res}
            {clamp}
{stores}"""


def _micro_kernel(act, residual: bool) -> str:
    acc = [[f"c{r}{v}" for v in range(2)] for r in range(MR)]
    init = "\n".join(f"            {row[0]} = {row[1]} = vdupq_n_f16(bg[{r}]);"
                     for r, row in enumerate(acc))
    fmas = "\n".join("                " + " ".join(
        f"{a} = vfmaq_laneq_f16({a}, b{v}, av, {r});" for v, a in enumerate(row))
        for r, row in enumerate(acc))
    decl = "            float16x8_t " + ", ".join(a for row in acc for a in row) + ";"
    return f"""{decl}
            const float16_t *a = ap, *bk = bt;
            int32_t k;
{init}
            for (k = 0; k < K; ++k, a += {MR}, bk += ldb) {{
                const float16x8_t av = vld1q_f16(a), b0 = vld1q_f16(bk), b1 = vld1q_f16(bk + 8);
{fmas}
            }}
{_epilogue(act, residual)}"""


def _micro_kernel_fml(act, residual: bool) -> str:
    """The tile accumulated in float32 (FMLAL), two 8-column halves, then the float16
    epilogue of `_micro_kernel` on the rounded tile."""
    acc = [[f"f{r}{h}" for h in range(2)] for r in range(MR)]
    decl = "float32x4_t " + ", ".join(a for row in acc for a in row) + ";"
    init = " ".join(f"{row[0]} = {row[1]} = vdupq_n_f32((float32_t)bg[{r}]);"
                    for r, row in enumerate(acc))
    fmas = "\n".join(f"                    f{r}0 = vfmlalq_laneq_low_f16(f{r}0, bv, av, {r}); "
                      f"f{r}1 = vfmlalq_laneq_high_f16(f{r}1, bv, av, {r});" for r in range(MR))
    narrow = " ".join(f"c{r}{{v}} = vcombine_f16(vcvt_f16_f32(f{r}0), vcvt_f16_f32(f{r}1));"
                      for r in range(MR))
    halves = "\n".join(f"""            {{  /* columns {8 * v}..{8 * v + 7} in float32 */
                {decl}
                const float16_t *a = ap, *bk = bt + {8 * v};
                int32_t k;
                {init}
                for (k = 0; k < K; ++k, a += {MR}, bk += ldb) {{
                    const float16x8_t av = vld1q_f16(a), bv = vld1q_f16(bk);
{fmas}
                }}
                {narrow.format(v=v)}
            }}""" for v in range(2))
    decl16 = "            float16x8_t " + ", ".join(f"c{r}{v}" for r in range(MR) for v in range(2)) + ";"
    return f"{decl16}\n{halves}\n{_epilogue(act, residual)}"


def lower_f16_conv(op: Op, graph: Graph, fml: bool = False):
    geo = conv_problem(op, graph)
    act = op.attrs.get("activation")
    residual = len(op.inputs) > 3 and bool(op.inputs[3])
    grp = geo["group"]
    ocg, cg = geo["oc"] // grp, geo["c"] // grp
    k = cg * geo["kh"] * geo["kw"]
    s = geo["oh"] * geo["ow"]
    pointwise = (geo["kh"] == geo["kw"] == 1 and geo["sh"] == geo["sw"] == 1
                 and geo["pads"] == [0, 0, 0, 0])
    w = np.asarray(graph.tensors[op.inputs[1]].data, np.float16)
    wname = graph.unique_name(op.inputs[1] + f"__f16_a{MR}")
    graph.add_const(wname, pack_weights(w, grp))
    bname = graph.unique_name(op.outputs[0] + f"__f16_bias{MR}")
    graph.add_const(bname, padded_bias(op, graph, grp, ocg))
    # im2col block: at most ~128 KiB of float16 B, a multiple of 16 columns
    nc = max(NR, min(-(-s // NR) * NR, (65536 // max(k, 1)) // NR * NR))
    tag = "1x1" if pointwise else "k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}".format(**geo)
    name = (f"conv2d_{tag}_gemm{MR}x{NR}_f16{'_residual' if residual else ''}"
            f"{clamp_tag(act)}_neon64fp16{'fml' if fml else ''}")
    if pointwise:
        fill = f"""                /* 1x1: row k of B is input channel k; the right edge is copied into a
                   zero-padded {NR}-column panel (reading past it would leave the plane) */
                const float16_t *B = xg + j0;
                int32_t ldb_full = S;"""
    else:
        fill = f"""                /* im2col of this block, {NR}-column zero-padded */
                float16_t *B = bw;
                const int32_t ldb_full = (nb + {NR - 1}) / {NR} * {NR};
                int32_t kk = 0, c, ky, kx, t;
                for (c = 0; c < CG; ++c)
                    for (ky = 0; ky < {geo["kh"]}; ++ky)
                        for (kx = 0; kx < {geo["kw"]}; ++kx, ++kk) {{
                            float16_t *d = bw + (int64_t)kk * ldb_full;
                            const float16_t *xc = xg + (int64_t)c * H * W;
                            for (t = 0; t < ldb_full; ++t) {{
                                const int32_t q = j0 + t, oy = q / OW, ox = q % OW;
                                const int32_t iy = oy * {geo["sh"]} - PT + ky * {geo["dh"]};
                                const int32_t ix = ox * {geo["sw"]} - PL + kx * {geo["dw"]};
                                d[t] = (t < nb && iy >= 0 && iy < H && ix >= 0 && ix < W)
                                    ? xc[(int64_t)iy * W + ix] : (float16_t)0;
                            }}
                        }}"""
    tail_copy = """
                    if (!full) {  /* the partial right edge: a zero-padded copy */
                        int32_t q, e;
                        for (q = 0; q < K; ++q)
                            for (e = 0; e < 16; ++e)
                                tail[(int64_t)q * 16 + e] = e < cols ? B[(int64_t)q * ldb_full + jj + e] : (float16_t)0;
                        bt = tail;
                        ldb = 16;
                    }""" if pointwise else ""
    body = f"""    const float16_t *x = (const float16_t *)in_ptrs[0];
    const float16_t *wp = (const float16_t *)in_ptrs[1];  /* {MR}-row panels per group */
    const float16_t *bias = (const float16_t *)in_ptrs[2];  /* zero-padded to {MR} per group */
    const float16_t *res = {"(const float16_t *)in_ptrs[3]" if residual else "0"};
    float16_t *y = (float16_t *)out_ptrs[0];
    float16_t *bw = (float16_t *)workspace;
    float16_t *tail = bw;
    const int32_t CG = C / G, OCG = OC / G, K = CG * {geo["kh"] * geo["kw"]}, S = OH * OW;
    const int32_t P = (OCG + {MR - 1}) / {MR};
    int32_t b, gi, j0, pi, jj;
    (void)res; (void)tail;
    for (b = 0; b < N; ++b)
        for (gi = 0; gi < G; ++gi) {{
            const float16_t *xg = x + ((int64_t)b * C + (int64_t)gi * CG) * H * W;
            for (j0 = 0; j0 < S; j0 += NC) {{
                const int32_t nb = S - j0 < NC ? S - j0 : NC;
{fill}
                for (jj = 0; jj < nb; jj += {NR}) {{
                    const int32_t cols = nb - jj < {NR} ? nb - jj : {NR}, full = cols == {NR};
                    const float16_t *bt = B + jj;
                    int32_t ldb = ldb_full;{tail_copy}
                    for (pi = 0; pi < P; ++pi) {{
                        const float16_t *ap = wp + ((int64_t)gi * P + pi) * K * {MR};
                        const float16_t *bg = bias + ((int64_t)gi * P + pi) * {MR};
                        const int32_t oc0 = gi * OCG + pi * {MR};
                        const int32_t rows = OCG - pi * {MR} < {MR} ? OCG - pi * {MR} : {MR};
                        float16_t *yt = y + ((int64_t)b * OC + oc0) * S + j0 + jj;
                        const float16_t *rg = res ? res + ((int64_t)b * OC + oc0) * S + j0 + jj : 0;
                        (void)rg;
                        {{
{(_micro_kernel_fml if fml else _micro_kernel)(act, residual)}
                        }}
                    }}
                }}
            }}
        }}
"""
    kernel = make_kernel(name, body, PARAMS, (), isa="neon64fp16fml" if fml else "neon64fp16")
    ncp = -(-nc // NR) * NR
    ws = (k * NR if pointwise else k * ncp) * 2
    inputs = [op.inputs[0], wname, bname]
    if residual:
        inputs.append(op.inputs[3])
    how = "1x1: input rows read directly" if pointwise else f"im2col per {nc}-position block"
    return [Instr(kernel, inputs, [op.outputs[0]],
                  PARAMS.pack(**conv_head_values(geo, grp), NC=nc), workspace_bytes=ws,
                  note=f"float16 packed GEMM {MR}x{NR} "
                       + ("(fmlal/fmlal2 by lane), accumulating in float32" if fml else
                          "(fmla v.8h by lane), accumulating in float16")
                       + f", {how} (M={ocg}, N={s}, K={k}, groups={grp})")]


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    why = f16_conv_rejection(op, graph)
    if why is None and is_depthwise(conv_problem(op, graph)):
        return None  # computes it, though the depthwise kernel is cheaper
    return why


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    geo = conv_problem(op, graph)
    k = geo["c"] // geo["group"] * geo["kh"] * geo["kw"]
    s = geo["oh"] * geo["ow"]
    macs = geo["n"] * geo["oc"] * s * max(k, MR)
    pointwise = geo["kh"] == geo["kw"] == 1 and geo["sh"] == geo["sw"] == 1 and not any(geo["pads"])
    im2col = 0 if pointwise else geo["n"] * geo["group"] * k * s * 2.0  # the scalar gather
    return macs / (8 * isa.core.fma_per_cycle) * (1.0 if k > 1 else 2.0) + im2col + 100


@implements("Conv", dtypes=("float16",), layout="nchw", requires="f16.gemm", applies=_applies,
            cost=_cost, label="NEON fp16 packed GEMM 8x16")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    return lower_f16_conv(op, graph, fml=accumulates_f16_in_f32(isa))
