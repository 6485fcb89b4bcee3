"""float16 2-D max and average pooling (NCHW) on Armv8.2-A + FP16 (enable_ioc16): each plane
is copied into the workspace padded with -inf (max) or 0 (average), then every output row is
computed 8 positions at a time with 8-lane fp16 `fmax` / `fadd` per window tap (stride 2:
the even halves of `ld2`); the right edge (OW % 8) runs the same taps in scalar float16.
Averages divide the float16 window sum by the tap count of each position (padding excluded
unless count_include_pad)."""
from __future__ import annotations

from typing import Optional

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, schema
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements

PARAMS = schema(i32("NC", "planes (batch x channels)"), i32("H", "input height"),
                i32("W", "input width"), i32("OH", "output height"), i32("OW", "output width"),
                i32("PT", "padding top"), i32("PL", "padding left"), i32("PB", "padding bottom"),
                i32("PR", "padding right"), i32("HP", "padded plane height"),
                i32("WP", "padded plane width"))


def geometry(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
    return dict(n=x.shape[0], c=x.shape[1], h=x.shape[2], w=x.shape[3], oh=y.shape[2],
                ow=y.shape[3], kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, pads=pads)


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    x = graph.tensors[op.inputs[0]]
    if x.dtype != "float16" or len(x.shape) != 4 or len(op.attrs.get("kernel_shape", ())) != 2:
        return "not a 2-D float16 pooling"
    if len(op.outputs) > 1 and op.outputs[1]:
        return "indices output"
    if op.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return "auto_pad unresolved"
    if op.attrs.get("strides", [1, 1])[1] not in (1, 2):
        return "horizontal stride other than 1 or 2"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    g = geometry(op, graph)
    return g["n"] * g["c"] * g["oh"] * g["ow"] * g["kh"] * g["kw"] / 8 + 50


def _lower(op: Op, graph: Graph, is_max: bool):
    g = geometry(op, graph)
    kh, kw, sh, sw, dh, dw = (g[k] for k in ("kh", "kw", "sh", "sw", "dh", "dw"))
    pt, pl, pb, pr = g["pads"]
    hp = (g["oh"] - 1) * sh + (kh - 1) * dh + 1
    wp = (g["ow"] - 1) * sw + (kw - 1) * dw + 1
    load = "vld1q_f16({p})" if sw == 1 else "vld2q_f16({p}).val[0]"
    vop, sop = ("vmaxq_f16", "megcc_f16_max") if is_max else ("vaddq_f16", "vaddh_f16")
    vt, st = [], []
    for ky in range(kh):
        for kx in range(kw):
            off = f"{ky * dh} * WP + {kx * dw}"
            vt.append(f"acc = {vop}(acc, {load.format(p=f'r + {off} + ox * {sw}')});")
            st.append(f"s = {sop}(s, r[{off} + ox * {sw}]);")
    include_pad = bool(op.attrs.get("count_include_pad", 0))
    lo_y, hi_y, lo_x, hi_x = ("-PT", "H + PB", "-PL", "W + PR") if include_pad else ("0", "H", "0", "W")
    count = f"""static inline int32_t megcc_f16_pool_taps(int32_t o, int32_t s, int32_t p, int32_t k,
        int32_t d, int32_t lo, int32_t hi) {{
    int32_t t, n = 0;
    for (t = 0; t < k; ++t) {{ const int32_t i = o * s - p + t * d; n += i >= lo && i < hi; }}
    return n;
}}
"""
    helper = ("megcc_f16_pool_taps", count) if not is_max else (
        "megcc_f16_max", "static inline float16_t megcc_f16_max(float16_t a, float16_t b) {\n"
        "    return a != a ? a : (b != b || b > a) ? b : a;  /* NaN propagates, as fmax */\n}\n")
    if is_max:
        finish_v, finish_s = "vst1q_f16(yr + ox, acc);", "yr[ox] = s;"
        init_v, init_s = "vdupq_n_f16(pad)", "pad"
    else:
        finish_v = ("{ float16_t t[8]; int32_t e; vst1q_f16(t, acc); for (e = 0; e < 8; ++e) "
                    f"yr[ox + e] = (float16_t)((float)t[e] / (float)(ny * megcc_f16_pool_taps(ox + e, {sw}, PL, {kw}, {dw}, {lo_x}, {hi_x}))); }}")
        finish_s = (f"yr[ox] = (float16_t)((float)s / (float)(ny * megcc_f16_pool_taps(ox, {sw}, PL, {kw}, {dw}, {lo_x}, {hi_x})));")
        init_v, init_s = "vdupq_n_f16(0)", "(float16_t)0"
    ny = "" if is_max else f"const int32_t ny = megcc_f16_pool_taps(oy, {sh}, PT, {kh}, {dh}, {lo_y}, {hi_y});"
    kind = "max" if is_max else "avg" + ("_incpad" if include_pad else "")
    name = f"pool_{kind}_k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}_f16_neon64fp16"
    body = f"""    const float16_t *x = (const float16_t *)in_ptrs[0];
    float16_t *y = (float16_t *)out_ptrs[0];
    float16_t *xp = (float16_t *)workspace;  /* the padded plane (+16 halves: ld2 reads past) */
    const uint16_t pad_bits = {"0xFC00u" if is_max else "0u"};  /* -inf / +0 */
    float16_t pad;
    int32_t q, oy, ox, iy, ix;
    memcpy(&pad, &pad_bits, sizeof pad);
    for (ix = 0; ix < HP * WP + 16; ++ix) xp[ix] = pad;
    (void)PB; (void)PR;
    for (q = 0; q < NC; ++q) {{
        const float16_t *xc = x + (int64_t)q * H * W;
        float16_t *yc = y + (int64_t)q * OH * OW;
        for (iy = 0; iy < H && iy + PT < HP; ++iy)
            for (ix = 0; ix < W && ix + PL < WP; ++ix)
                xp[(int64_t)(iy + PT) * WP + ix + PL] = xc[(int64_t)iy * W + ix];
        for (oy = 0; oy < OH; ++oy) {{
            const float16_t *r = xp + (int64_t)oy * {sh} * WP;
            float16_t *yr = yc + (int64_t)oy * OW;
            {ny}
            for (ox = 0; ox + 8 <= OW; ox += 8) {{
                float16x8_t acc = {init_v};
                {" ".join(vt)}
                {finish_v}
            }}
            for (; ox < OW; ++ox) {{
                float16_t s = {init_s};
                {" ".join(st)}
                {finish_s}
            }}
        }}
    }}
"""
    kernel = make_kernel(name, body, PARAMS, (helper,), isa="neon64fp16")
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  PARAMS.pack(NC=g["n"] * g["c"], H=g["h"], W=g["w"], OH=g["oh"], OW=g["ow"],
                              PT=pt, PL=pl, PB=pb, PR=pr, HP=hp, WP=wp),
                  workspace_bytes=(hp * wp + 16) * 2,
                  note=f"float16 {kind} pooling {kh}x{kw} stride {sh}x{sw}: 8 outputs per "
                       f"fp16 vector over a padded {hp}x{wp} plane")]


@implements("MaxPool", dtypes=("float16",), requires="f16.direct", applies=_applies, cost=_cost,
            label="NEON fp16 plane max", name="pool.plane_neon64fp16_f16.max")
def emit_max(op: Op, graph: Graph, isa: IsaSpec):
    return _lower(op, graph, True)


@implements("AveragePool", dtypes=("float16",), requires="f16.direct", applies=_applies,
            cost=_cost, label="NEON fp16 plane average", name="pool.plane_neon64fp16_f16.average")
def emit_average(op: Op, graph: Graph, isa: IsaSpec):
    return _lower(op, graph, False)
