"""NCHW44 convolution in portable C (float32).

Tensors are (N, C/4, H, W, 4) (passes/layout_nchw44.py). Every loop over the 4 channel
lanes is innermost with a constant trip count and restrict pointers, so compilers turn it
into one vector operation on any SIMD target. NEON levels have their own kernels
(nchw44_neon_f32.py), chosen by cost.

Conv params: N, ICB, H, W, OCB, OH, OW, PT, PL, Hp, Wp where ICB counts input blocks of L
lanes (L = 4; L = 1 for the hybrid conv reading NCHW) and (Hp, Wp) is the zero-padded
input region the windows read. When any padding is needed the kernel first copies one
image into the workspace with zero borders (megcc_n44_pad), so the inner loops never test
bounds.
"""
from __future__ import annotations

from ...ir import Graph, Op
from ...isa import IsaSpec
from ..elementwise.activation import activation_code
from ..registry import F32, implements
from ...codegen.parallel import split_kernel
from .nchw44_common import (BLOCK, CONV44_PARAMS, PAD_HELPER, conv44_body, conv44_geometry,
                            conv44_parts,
                            conv44_instr, conv44_name, input_row, weight_taps)


# --- portable C --------------------------------------------------------------------------

def _portable_block(geo: dict, nb: int) -> str:
    """nb pixels x 4 output channels in a float[nb][4] the compiler keeps in vector
    registers (every loop has a constant trip count; the lane loop is innermost)."""
    bias = "bias[ocb * 4 + l]" if geo["has_bias"] else "0.0f"
    epi = activation_code(geo["act"], "v")
    if geo["slope"]:  # a fused per-channel PReLU: lane l is channel ocb * 4 + l
        epi = "(v >= 0.0f ? v : v * slope[ocb * 4 + l])"
    if geo["kind"] == "depthwise":
        taps = """for (j = 0; j < NB; ++j)
                                for (l = 0; l < 4; ++l) acc[j][l] += xr[(j * SW + kx * DW) * 4 + l] * wk[l];"""
        loop_in = ""
    else:
        taps = """for (j = 0; j < NB; ++j)
                                for (ic = 0; ic < L; ++ic) {
                                    const float xv = xr[(j * SW + kx * DW) * L + ic];
                                    for (l = 0; l < 4; ++l) acc[j][l] += xv * wk[ic * 4 + l];
                                }"""
        loop_in = "for (icb = 0; icb < ICB; ++icb) "
    if geo["kind"] == "hybrid":
        # a pixel count the compiler does not see as constant keeps it vectorising the lane
        # loop (with a constant one it vectorises across pixels, with shuffles: 2x slower)
        taps = taps.replace("j < NB", "j < nbr")
    # pixels left in the row (hybrid's loop bound)
    nbr = "                    const int32_t nbr = OW - ox < NB ? OW - ox : NB;\n" \
        if "nbr" in taps else ""
    return f"""                    enum {{ NB = {nb} }};
                    float acc[NB][4];
{nbr}                    int32_t {"l" if geo["kind"] == "depthwise" else "ic, l"};
                    for (j = 0; j < NB; ++j)
                        for (l = 0; l < 4; ++l) acc[j][l] = {bias};
                    {loop_in}for (ky = 0; ky < KH; ++ky) {{
                        const float *restrict xr = {input_row(geo)};
                        for (kx = 0; kx < KW; ++kx) {{
                            const float *restrict wk = {weight_taps(geo)};
                            {taps}
                        }}
                    }}
                    for (j = 0; j < NB; ++j)
                        for (l = 0; l < 4; ++l) {{
                            const float v = acc[j][l];
                            yr[(ox + j) * 4 + l] = {epi};
                        }}
"""


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    return conv44_geometry(op, graph)["macs"] * isa.core.portable_conv


@implements("ConvNCHW44", dtypes=F32, layout="nchw44", cost=cost)
def lower_conv_nchw44(op: Op, graph: Graph):
    geo = conv44_geometry(op, graph)
    name = conv44_name(geo)
    body = conv44_body(geo, lambda nb: _portable_block(geo, nb), BLOCK)
    kernel = split_kernel(name, body, conv44_parts(geo), CONV44_PARAMS, ("math", PAD_HELPER))
    return [conv44_instr(op, geo, kernel, f"nchw44 {geo['kind']} direct, portable C "
                                          f"(4-lane vectorisable loops), {geo['macs']} MACs")]


# --- relayout ----------------------------------------------------------------------------

# --- pooling -----------------------------------------------------------------------------
