"""NEON (armv7-neon with VFPv4, arm64-neon) NCHW44 kernels: direct convolutions, their
channel-wise and hybrid variants. Tag "neon": AArch64 uses lane-indexed FMA, ARMv7 a broadcast + FMA.

One NCHW44 vector is one pixel's four channels, so:
- dense conv: per output block of 8 pixels and 4 output channels, each input pixel vector
  multiplies the four weight vectors (one per input lane) into the pixel's accumulator;
  variants by geometry: 1x1 (the image as one long row), 3x3 stride 1 / stride 2, and a
  generic direct kernel for any kernel size, stride and dilation (all the same template,
  specialised at compile time);
- channel-wise conv: one FMA per tap per pixel with the tap's weight vector (3x3 and 5x5
  stride 1/2 are the common instances; other sizes use the same template);
- hybrid first conv (NCHW input, IC < 4): the input pixel is a scalar broadcast.
Padding is materialised once per image in the workspace (nchw44.PAD_HELPER).
"""
from __future__ import annotations

from ...codegen.kernel import c_float
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..elementwise.activation import activation_code
from ..registry import F32, implements
from ...codegen.parallel import split_kernel
from .nchw44_common import (BLOCK, CONV44_PARAMS, PAD_HELPER, conv44_body, conv44_geometry,
                            conv44_parts,
                            conv44_instr, conv44_name, input_row, weight_taps)


FMA_LANE_HELPER = ("n44_neon_fma_lane", r"""/* acc + w * x[lane]: lane-indexed FMA on AArch64, broadcast + FMA on ARMv7. */
#if defined(__aarch64__)
#define MEGCC_N44_FMA_LANE(acc, w, x, lane) vfmaq_laneq_f32(acc, w, x, lane)
#else
#define MEGCC_N44_FMA_LANE(acc, w, x, lane) vfmaq_f32(acc, w, vdupq_n_f32(vgetq_lane_f32(x, lane)))
#endif
""")


def _is_relu(act) -> bool:
    return act is not None and act[0] == "Relu" and act[1] == ("in", 0)


def _clip_bounds(act):
    if act is not None and act[0] == "clip" and act[1] == ("in", 0) \
            and act[2][0] == "const" and act[3][0] == "const":
        return float(act[2][1]), float(act[3][1])
    return None


def vector_store(act, ptr: str, vec: str) -> str:
    """C statements storing accumulator `vec` at `ptr` with the fused activation: ReLU and
    constant Clip in vector registers, anything else lane by lane with the scalar code."""
    if act is None:
        return f"vst1q_f32({ptr}, {vec});"
    if _is_relu(act):
        return f"vst1q_f32({ptr}, vmaxq_f32({vec}, vdupq_n_f32(0.0f)));"
    bounds = _clip_bounds(act)
    if bounds is not None:
        lo, hi = (c_float(b) for b in bounds)
        return (f"vst1q_f32({ptr}, vminq_f32(vmaxq_f32({vec}, vdupq_n_f32({lo})), "
                f"vdupq_n_f32({hi})));")
    scalar = activation_code(act, "v")
    return (f"{{ float *yq = {ptr}; int32_t q; vst1q_f32(yq, {vec});\n"
            f"  for (q = 0; q < 4; ++q) {{ const float v = yq[q]; yq[q] = {scalar}; }} }}")


def _neon_block(geo: dict, nb: int) -> str:
    """nb pixels x 4 output channels in nb accumulator vectors."""
    bias = "vld1q_f32(bias + ocb * 4)" if geo["has_bias"] else "vdupq_n_f32(0.0f)"
    if geo["kind"] == "depthwise":
        loop_in, wload = "", "const float32x4_t wv = vld1q_f32(wk);"
        taps = "a[j] = vfmaq_f32(a[j], vld1q_f32(xr + (j * SW + kx * DW) * 4), wv);"
    elif geo["lanes"] == 4:
        loop_in = "for (icb = 0; icb < ICB; ++icb) "
        wload = " ".join(f"const float32x4_t w{i} = vld1q_f32(wk + {4 * i});" for i in range(4))
        taps = ("{ const float32x4_t xv = vld1q_f32(xr + (j * SW + kx * DW) * 4); "
                + " ".join(f"a[j] = MEGCC_N44_FMA_LANE(a[j], w{i}, xv, {i});" for i in range(4))
                + " }")
    else:  # hybrid: one input channel per block, a scalar broadcast per pixel
        loop_in, wload = "for (icb = 0; icb < ICB; ++icb) ", "const float32x4_t w0 = vld1q_f32(wk);"
        taps = "a[j] = vfmaq_f32(a[j], w0, vld1q_dup_f32(xr + j * SW + kx * DW));"
    store = vector_store(geo["act"], "yr + (ox + j) * 4", "a[j]")
    prelu = ""
    if geo["slope"]:  # a fused per-channel PReLU: max(0, v) + slope * min(0, v)
        prelu = ("const float32x4_t sv = vld1q_f32(slope + ocb * 4), zv = vdupq_n_f32(0.0f);\n"
                 "                    for (j = 0; j < {nb}; ++j) a[j] = vfmaq_f32(vmaxq_f32(zv, a[j]), "
                 "sv, vminq_f32(zv, a[j]));\n                    ").replace("{nb}", str(nb))
    return f"""                    float32x4_t a[{nb}];
                    for (j = 0; j < {nb}; ++j) a[j] = {bias};
                    {loop_in}for (ky = 0; ky < KH; ++ky) {{
                        const float *xr = {input_row(geo)};
                        for (kx = 0; kx < KW; ++kx) {{
                            const float *wk = {weight_taps(geo)};
                            {wload}
                            for (j = 0; j < {nb}; ++j) {taps}
                        }}
                    }}
                    {prelu}for (j = 0; j < {nb}; ++j) {store}
"""


def variant(geo: dict) -> str:
    """Which NEON conv the geometry gets (for the note and the tests)."""
    k, s, d = (geo["kh"], geo["kw"]), (geo["sh"], geo["sw"]), (geo["dh"], geo["dw"])
    if geo["kind"] == "hybrid":
        return "hybrid NCHW->NCHW44 direct"
    if geo["kind"] == "depthwise":
        known = k in ((3, 3), (5, 5)) and s in ((1, 1), (2, 2)) and d == (1, 1)
        return (f"channel-wise {k[0]}x{k[1]} s{s[0]} direct" if known
                else "channel-wise generic direct")
    if k == (1, 1) and s == (1, 1):
        return "1x1 direct"
    if k == (3, 3) and s in ((1, 1), (2, 2)) and d == (1, 1):
        return f"3x3 s{s[0]} direct"
    return "generic direct"


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    """One 4-lane FMA per multiply-add of 4 output channels."""
    return conv44_geometry(op, graph)["macs"] / 4 / isa.core.fma_per_cycle


@implements("ConvNCHW44", dtypes=F32, layout="nchw44", requires="neon", cost=cost,
            label="NEON direct")
def lower_conv(op: Op, graph: Graph):
    geo = conv44_geometry(op, graph)
    name = conv44_name(geo, "_neon")
    body = conv44_body(geo, lambda nb: _neon_block(geo, nb), BLOCK)
    kernel = split_kernel(name, body, conv44_parts(geo), CONV44_PARAMS,
                          ("math", PAD_HELPER, FMA_LANE_HELPER), isa="neon")
    return [conv44_instr(op, geo, kernel,
                         f"nchw44 NEON {variant(geo)}, blocks of {BLOCK} pixels, "
                         f"{geo['macs']} MACs")]
