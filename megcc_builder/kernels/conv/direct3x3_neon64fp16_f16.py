"""float16 direct 3x3 convolution (NCHW, stride 1 or 2, one group) on Armv8.2-A + FP16
(enable_ioc16): no im2col. The input channels are copied zero-padded into the workspace
once per image; a register tile of 4 output channels x 16 output positions (8 float16x8_t
accumulators) adds, per input channel and tap, two input vectors (stride 2: the even halves
of `ld2`) times one lane of the 4 packed weights (`fmla v.8h, v.8h, v.h[i]`), so each input
load feeds 4 FMAs. The accumulators start at the bias and add the taps in (input channel,
ky, kx) order, the packed GEMM's order: both give the same float16 result.

On arm64-fp16fml the tile accumulates in float32: 16 float32x4 accumulators (4 channels x
16 positions), `fmlal`/`fmlal2` by lane (vfmlalq_lane_low/high_f16) on the same loads, the
sum rounded to float16 once before the epilogue (the packed GEMM's float32 order too).
"""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32
from ...ir import Graph, Op
from ...isa import IsaSpec
from ...isa.arm import accumulates_f16_in_f32
from ..elementwise.f16_clamp import clamp_code, clamp_tag
from ..registry import implements
from .geometry import conv_head_values, conv_problem, conv_schema
from .gemm_neon64fp16_f16 import f16_conv_rejection

OB = 4  # output channels per tile
PARAMS = conv_schema(i32("HP", "zero-padded input height"), i32("WP", "zero-padded input width"))


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    why = f16_conv_rejection(op, graph)
    if why:
        return why
    geo = conv_problem(op, graph)
    if (geo["kh"], geo["kw"], geo["dh"], geo["dw"]) != (3, 3, 1, 1):
        return "not an undilated 3x3"
    if geo["sh"] != geo["sw"] or geo["sw"] not in (1, 2):
        return "stride other than 1x1 or 2x2"
    if geo["group"] != 1:
        return "grouped"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    geo = conv_problem(op, graph)
    macs = geo["n"] * geo["oc"] * geo["oh"] * geo["ow"] * geo["c"] * 9
    # a load per 4 FMAs (the GEMM reuses a B load for 8), but no im2col
    return macs / (8 * isa.core.fma_per_cycle) * 1.25 + geo["n"] * geo["c"] * geo["h"] * geo["w"] + 100


@implements("Conv", dtypes=("float16",), layout="nchw", requires="f16.direct", applies=_applies,
            cost=_cost, label="NEON fp16 direct 3x3")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    geo = conv_problem(op, graph)
    act = op.attrs.get("activation")
    residual = len(op.inputs) > 3 and bool(op.inputs[3])
    s = geo["sw"]
    oc, c = geo["oc"], geo["c"]
    hp = (geo["oh"] - 1) * s + 3
    wp = (geo["ow"] - 1) * s + 3
    blocks = -(-oc // OB)
    w = np.zeros((blocks * OB, c, 9), np.float16)
    w[:oc] = np.asarray(graph.tensors[op.inputs[1]].data, np.float16).reshape(oc, c, 9)
    packed = np.ascontiguousarray(w.reshape(blocks, OB, c, 9).transpose(0, 2, 3, 1).reshape(-1))
    wname = graph.unique_name(op.inputs[1] + "__f16_d3x3")
    graph.add_const(wname, packed)
    bias = np.zeros(blocks * OB, np.float16)
    if len(op.inputs) > 2 and op.inputs[2]:
        bias[:oc] = np.asarray(graph.tensors[op.inputs[2]].data, np.float16).reshape(-1)
    bname = graph.unique_name(op.outputs[0] + "__f16_d3x3bias")
    graph.add_const(bname, bias)
    fml = accumulates_f16_in_f32(isa)
    load = "vld1q_f16({p})" if s == 1 else "vld2q_f16({p}).val[0]"
    taps = []
    for ky in range(3):
        for kx in range(3):
            t = ky * 3 + kx
            taps.append(f"w4 = vld1_f16(wc + {t * OB}); "
                        f"i0 = {load.format(p=f'r{ky} + {kx}')}; i1 = {load.format(p=f'r{ky} + {kx + 8 * s}')};")
            if fml:  # f{o}{q}: positions 4q..4q+3 in float32
                taps.append(" ".join(
                    f"f{o}{2 * v + h} = vfmlalq_lane_{'high' if h else 'low'}_f16(f{o}{2 * v + h}, i{v}, w4, {o});"
                    for o in range(OB) for v in range(2) for h in range(2)))
            else:
                taps.append(" ".join(f"a{o}{v} = vfmaq_lane_f16(a{o}{v}, i{v}, w4, {o});"
                                     for o in range(OB) for v in range(2)))
    finish = []
    for o in range(OB):
        res = (f"if (rs) {{ const float16_t *rr = rs + (int64_t){o} * OH * OW; "
               f"float16_t t[16] = {{0}}; int32_t e; for (e = 0; e < cols; ++e) t[e] = rr[e]; "
               f"a{o}0 = vaddq_f16(a{o}0, vld1q_f16(t)); a{o}1 = vaddq_f16(a{o}1, vld1q_f16(t + 8)); }}"
               if residual else "")
        finish.append(f"""                    if (oc0 + {o} < OC) {{
                        float16_t *yo = yb + (int64_t)(oc0 + {o}) * OH * OW + (int64_t)oy * OW + ox;
                        {res}
                        {clamp_code(act, f"a{o}0")} {clamp_code(act, f"a{o}1")}
                        if (cols == 16) {{ vst1q_f16(yo, a{o}0); vst1q_f16(yo + 8, a{o}1); }}
                        else {{ float16_t t[16]; int32_t e; vst1q_f16(t, a{o}0); vst1q_f16(t + 8, a{o}1);
                               for (e = 0; e < cols; ++e) yo[e] = t[e]; }}
                    }}""")
    acc_init = " ".join(f"float16x8_t a{o}0 = vdupq_n_f16(bias[oc0 + {o}]), a{o}1 = a{o}0;"
                        for o in range(OB))
    narrow = ""
    if fml:
        acc_init = " ".join(f"float32x4_t f{o}0 = vdupq_n_f32((float32_t)bias[oc0 + {o}]), "
                            f"f{o}1 = f{o}0, f{o}2 = f{o}0, f{o}3 = f{o}0;" for o in range(OB))
        narrow = "\n".join(f"                    float16x8_t a{o}{v} = vcombine_f16(vcvt_f16_f32(f{o}{2 * v}), "
                           f"vcvt_f16_f32(f{o}{2 * v + 1}));" for o in range(OB) for v in range(2)) + "\n"
    name = (f"conv2d_direct3x3_s{s}_oc{OB}x16_f16{'_residual' if residual else ''}{clamp_tag(act)}"
            f"_neon64fp16{'fml' if fml else ''}")
    body = f"""    const float16_t *x = (const float16_t *)in_ptrs[0];
    const float16_t *wt = (const float16_t *)in_ptrs[1];  /* [OC/{OB}][C][3x3][{OB}] */
    const float16_t *bias = (const float16_t *)in_ptrs[2];
    const float16_t *res = {"(const float16_t *)in_ptrs[3]" if residual else "0"};
    float16_t *y = (float16_t *)out_ptrs[0];
    float16_t *xp = (float16_t *)workspace;  /* C zero-padded planes (+64: the last row's over-read) */
    int32_t b, ci, oc0, oy, ox, iy, ix;
    (void)res;
    for (ix = 0; ix < C * HP * WP + 64; ++ix) xp[ix] = (float16_t)0;
    for (b = 0; b < N; ++b) {{
        float16_t *yb = y + (int64_t)b * OC * OH * OW;
        for (ci = 0; ci < C; ++ci) {{
            const float16_t *xc = x + ((int64_t)b * C + ci) * H * W;
            float16_t *pc = xp + (int64_t)ci * HP * WP;
            for (iy = 0; iy < H && iy + PT < HP; ++iy)
                for (ix = 0; ix < W && ix + PL < WP; ++ix)
                    pc[(int64_t)(iy + PT) * WP + ix + PL] = xc[(int64_t)iy * W + ix];
        }}
        for (oc0 = 0; oc0 < OC; oc0 += {OB}) {{
            const float16_t *wb = wt + (int64_t)(oc0 / {OB}) * C * {9 * OB};
            for (oy = 0; oy < OH; ++oy)
                for (ox = 0; ox < OW; ox += 16) {{
                    const int32_t cols = OW - ox < 16 ? OW - ox : 16;
                    const float16_t *rs = res ? res + ((int64_t)b * OC + oc0) * OH * OW + (int64_t)oy * OW + ox : 0;
                    {acc_init}
                    (void)rs;
                    for (ci = 0; ci < C; ++ci) {{
                        const float16_t *r0 = xp + (int64_t)ci * HP * WP + (int64_t)oy * {s} * WP + ox * {s};
                        const float16_t *r1 = r0 + WP, *r2 = r1 + WP;
                        const float16_t *wc = wb + (int64_t)ci * {9 * OB};
                        float16x4_t w4;
                        float16x8_t i0, i1;
                        {chr(10).join("                        " + t for t in taps).strip()}
                    }}
{narrow}{chr(10).join(finish)}
                }}
        }}
    }}
"""
    kernel = make_kernel(name, body, PARAMS, (), isa="neon64fp16fml" if fml else "neon64fp16")
    inputs = [op.inputs[0], wname, bname] + ([op.inputs[3]] if residual else [])
    return [Instr(kernel, inputs, [op.outputs[0]],
                  PARAMS.pack(**conv_head_values(geo), HP=hp, WP=wp),
                  workspace_bytes=(c * hp * wp + 64) * 2,
                  note=f"float16 direct 3x3 stride {s}: {OB} channels x 16 positions per tile, "
                       + ("fmlal/fmlal2 by lane, accumulating in float32" if fml else
                          "fmla by lane, accumulating in float16") + " (no im2col)")]
