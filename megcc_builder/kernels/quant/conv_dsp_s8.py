"""QLinearConv on the Cortex-M DSP extension (level cortex-m-dsp: Cortex-M4/M7/M33, and the
M55): an im2col GEMM on SMLAD, the way CMSIS-NN's s8 convolution works (our code).

Two output positions at a time: their columns are built as int16 values centred on the
input zero point (padding contributes 0), then every pair of output channels is computed
against both columns by megcc_dsp_dot2x2 (mcu_s8.py): the int8 weights, centred at compile
time and stored in [k0 k2 k1 k3] groups, widened with SXTB16, two multiply-adds per SMLAD.
Dense, grouped, strided, dilated, padded, 1-D and 1x1 convolutions; the int32 sums equal the
portable kernel's and its requantization follows (both roundings, every activation)."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .conv_generic_s8 import PARAMS, QTYPES, qlinear_conv_parts
from .mcu_s8 import (DSP_DOT, add_packed, centred_rows, conv_applies, dsp_rows, im2col,
                     output_store)


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    return conv_applies(op, graph)


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # in units of the portable kernel's multiply-add (portable_cost: one per MAC; on a
    # Cortex-M its bounds checks and scalar loads take ~5 cycles): an SMLAD pair with its
    # loads ~1.5 cycles for 2 MACs, im2col ~2.5 cycles per (position, tap); the
    # requantization is the same code in both and left out, as portable_cost does
    y, w = graph.tensors[op.outputs[0]], graph.tensors[op.inputs[3]]
    group = int(op.attrs.get("group", 1))
    positions = float(np.prod(y.shape)) / max(1, y.shape[1])
    k = float(np.prod(w.shape[1:]))
    return float(np.prod(y.shape)) * k * 0.15 + 0.5 * positions * k * group


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="dsp",
            applies=_applies, cost=cost, label="Cortex-M DSP: im2col GEMM on SMLAD")
def lower_qlinear_conv_dsp(op: Op, graph: Graph):
    pt = qlinear_conv_parts(op, graph)
    geo = pt["geo"]
    packed, k4 = dsp_rows(centred_rows(graph, op, 3, 5))
    ins = list(pt["ins"])
    ins[1] = add_packed(graph, op.inputs[3], "smlad", packed, "int8")
    xt = pt["xt"]
    col = im2col(xt, "int16_t", "K4", "v - xz", "0")
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int8_t *wp = (const int8_t *)in_ptrs[1];  /* [OC][K4] centred, k0 k2 k1 k3 */
{pt["head"]}
    const int32_t xz = {pt["x_zp"]};
    const int32_t ICG = C / G, OCG = OC / G, P = OH * OW, HW = H * W, K4 = {k4};
    int16_t *cols = (int16_t *)workspace;  /* two columns [2][K4] */
    int32_t b, g, p0, j, r;
    for (b = 0; b < N; ++b)
        for (g = 0; g < G; ++g) {{
            const {xt} *xg = x + ((int64_t)b * C + (int64_t)g * ICG) * HW;
            const int64_t yg = ((int64_t)b * OC + (int64_t)g * OCG) * P;
            const int8_t *wg = wp + (int64_t)g * OCG * K4;
            for (p0 = 0; p0 < P; p0 += 2) {{
                const int32_t np = P - p0 < 2 ? P - p0 : 2;
                for (j = 0; j < np; ++j) {{
                    int16_t *col = cols + j * K4;
                    const int32_t pos = p0 + j;
                    {col}
                }}
                for (r = 0; r + 1 < OCG && np == 2; r += 2) {{
                    int32_t acc[4];
                    megcc_dsp_dot2x2(wg + (int64_t)r * K4, wg + (int64_t)(r + 1) * K4, cols,
                                     cols + K4, K4 / 4, acc);
                    {output_store(pt, "acc[0]", "g * OCG + r", "yg + (int64_t)r * P + p0")}
                    {output_store(pt, "acc[1]", "g * OCG + r", "yg + (int64_t)r * P + p0 + 1")}
                    {output_store(pt, "acc[2]", "g * OCG + r + 1", "yg + (int64_t)(r + 1) * P + p0")}
                    {output_store(pt, "acc[3]", "g * OCG + r + 1", "yg + (int64_t)(r + 1) * P + p0 + 1")}
                }}
                for (; r < OCG; ++r)  /* the last channel of an odd count, the last position */
                    for (j = 0; j < np; ++j) {{
                        const int32_t s = megcc_dsp_dot(wg + (int64_t)r * K4, cols + j * K4,
                                                        K4 / 4, 0);
                        {output_store(pt, "s", "g * OCG + r", "yg + (int64_t)r * P + p0 + j")}
                    }}
            }}
        }}
"""
    rq = pt["rq"]
    kernel = make_kernel(f"qlinear_conv_smlad_dsp_k{k4}_{pt['variant']}", body, PARAMS,
                         (DSP_DOT,) + tuple(rq.helpers), isa="dsp")
    return [Instr(kernel, ins, [op.outputs[0]], PARAMS.pack(**geo), workspace_bytes=4 * k4,
                  note="Cortex-M DSP int8 im2col GEMM (SMLAD), 2 channels x 2 positions")]
