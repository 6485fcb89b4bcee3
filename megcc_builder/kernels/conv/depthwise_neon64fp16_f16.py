"""float16 depthwise convolution (NCHW, one filter per channel) on Armv8.2-A + FP16
(enable_ioc16): each channel's plane is copied zero-padded into the workspace, then every
output row is computed 8 positions at a time, one 8-lane fp16 FMA (`fmla v.8h`) per filter
tap, starting from the bias and accumulating in float16. Stride 1 loads 8 neighbours,
stride 2 the even halves of 16 (`ld2`); the right edge (OW % 8) runs the same taps on a
scalar float16 accumulator.
"""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..elementwise.f16_clamp import clamp_code, clamp_tag
from ..registry import implements
from .geometry import conv_head_values, conv_problem, conv_schema, is_depthwise
from .gemm_neon64fp16_f16 import f16_conv_rejection

PARAMS = conv_schema(i32("HP", "zero-padded plane height"), i32("WP", "zero-padded plane width"))


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    why = f16_conv_rejection(op, graph)
    if why:
        return why
    geo = conv_problem(op, graph)
    if not is_depthwise(geo) or geo["oc"] != geo["c"]:
        return "not depthwise (one filter per channel)"
    if geo["sw"] not in (1, 2):
        return f"horizontal stride {geo['sw']} (1 and 2 are vectorised)"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    geo = conv_problem(op, graph)
    return geo["n"] * geo["oc"] * geo["oh"] * geo["ow"] * geo["kh"] * geo["kw"] / 8 + 50


def _scalar_act(act, v: str) -> str:
    """The vector activation on a broadcast of the scalar `v` (the same float16 steps)."""
    code = clamp_code(act, "t")
    return f"{{ float16x8_t t = vdupq_n_f16({v}); {code} {v} = vgetq_lane_f16(t, 0); }}" if code else ""


@implements("Conv", dtypes=("float16",), layout="nchw", requires="f16.direct", applies=_applies,
            cost=_cost, label="NEON fp16 depthwise direct")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    geo = conv_problem(op, graph)
    act = op.attrs.get("activation")
    residual = len(op.inputs) > 3 and bool(op.inputs[3])
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("kh", "kw", "sh", "sw", "dh", "dw"))
    hp = (geo["oh"] - 1) * sh + (kh - 1) * dh + 1
    wp = (geo["ow"] - 1) * sw + (kw - 1) * dw + 1
    c = geo["c"]
    w = np.asarray(graph.tensors[op.inputs[1]].data, np.float16).reshape(c, kh * kw)
    wname = graph.unique_name(op.inputs[1] + "__f16_dw")
    graph.add_const(wname, np.ascontiguousarray(w.reshape(-1)))
    bias = np.zeros(c, np.float16)
    if len(op.inputs) > 2 and op.inputs[2]:
        bias[:] = np.asarray(graph.tensors[op.inputs[2]].data, np.float16).reshape(-1)
    bname = graph.unique_name(op.outputs[0] + "__f16_dwbias")
    graph.add_const(bname, bias)
    load = "vld1q_f16({p})" if sw == 1 else "vld2q_f16({p}).val[0]"
    taps, staps = [], []
    for ky in range(kh):
        for kx in range(kw):
            t = ky * kw + kx
            off = f"{ky * dh} * WP + {kx * dw}"
            taps.append(f"acc = vfmaq_f16(acc, {load.format(p=f'r + {off} + ox * {sw}')}, vdupq_n_f16(wc[{t}]));")
            staps.append(f"s = vfmah_f16(s, r[{off} + ox * {sw}], wc[{t}]);")
    res_v = ("acc = vaddq_f16(acc, vld1q_f16(rr + ox));" if residual else "")
    res_s = ("s = vaddh_f16(s, rr[ox]);" if residual else "")
    name = (f"conv2d_dw_k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}_f16{'_residual' if residual else ''}"
            f"{clamp_tag(act)}_neon64fp16")
    body = f"""    const float16_t *x = (const float16_t *)in_ptrs[0];
    const float16_t *wt = (const float16_t *)in_ptrs[1];  /* {kh}x{kw} taps per channel */
    const float16_t *bias = (const float16_t *)in_ptrs[2];
    const float16_t *res = {"(const float16_t *)in_ptrs[3]" if residual else "0"};
    float16_t *y = (float16_t *)out_ptrs[0];
    float16_t *xp = (float16_t *)workspace;  /* the zero-padded plane (+16 halves: ld2 reads past) */
    int32_t b, ch, oy, ox, iy, ix;
    (void)res;
    for (ix = 0; ix < HP * WP + 16; ++ix) xp[ix] = (float16_t)0;
    for (b = 0; b < N; ++b)
        for (ch = 0; ch < C; ++ch) {{
            const float16_t *xc = x + ((int64_t)b * C + ch) * H * W;
            const float16_t *wc = wt + (int64_t)ch * {kh * kw};
            float16_t *yc = y + ((int64_t)b * C + ch) * OH * OW;
            for (iy = 0; iy < H && iy + PT < HP; ++iy)
                for (ix = 0; ix < W && ix + PL < WP; ++ix)
                    xp[(int64_t)(iy + PT) * WP + ix + PL] = xc[(int64_t)iy * W + ix];
            for (oy = 0; oy < OH; ++oy) {{
                const float16_t *r = xp + (int64_t)oy * {sh} * WP;
                const float16_t *rr = res ? res + ((int64_t)b * C + ch) * OH * OW + (int64_t)oy * OW : 0;
                float16_t *yr = yc + (int64_t)oy * OW;
                (void)rr;
                for (ox = 0; ox + 8 <= OW; ox += 8) {{
                    float16x8_t acc = vdupq_n_f16(bias[ch]);
                    {" ".join(taps)}
                    {res_v}
                    {clamp_code(act, "acc")}
                    vst1q_f16(yr + ox, acc);
                }}
                for (; ox < OW; ++ox) {{
                    float16_t s = bias[ch];
                    {" ".join(staps)}
                    {res_s}
                    {_scalar_act(act, "s")}
                    yr[ox] = s;
                }}
            }}
        }}
"""
    kernel = make_kernel(name, body, PARAMS, (), isa="neon64fp16")
    inputs = [op.inputs[0], wname, bname] + ([op.inputs[3]] if residual else [])
    return [Instr(kernel, inputs, [op.outputs[0]],
                  PARAMS.pack(**conv_head_values(geo), HP=hp, WP=wp),
                  workspace_bytes=(hp * wp + 16) * 2,
                  note=f"float16 depthwise {kh}x{kw} stride {sh}x{sw}: 8-lane fp16 FMA per tap, "
                       f"accumulating in float16, zero-padded {hp}x{wp} plane")]
