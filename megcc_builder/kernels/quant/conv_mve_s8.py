"""QLinearConv on Cortex-M Helium (level cortex-m-mve: Cortex-M55/M85): an im2col GEMM on
VMLADAVA, which sums 16 int8 products into a scalar int32.

One output position at a time: its column is built as int8 (uint8 inputs shifted by 128,
padding = the shifted input zero point, K padded with zeros to 16), then four output
channels at a time share each 16-byte column load (megcc_mve_dot4, mcu_s8.py). The weights
are centred at compile time (int8 once centred) and the input zero point returns as the
per-channel constant (zx - shift) * sum(w): the int32 sums equal the portable kernel's, and
its requantization follows (both roundings, every activation)."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .conv_generic_s8 import PARAMS, QTYPES, qlinear_conv_parts
from .mcu_s8 import (MVE_DOT, add_packed, centred_rows, conv_applies, im2col, mve_rows,
                     output_store, wrap_sub_mul)


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    return conv_applies(op, graph)


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # units as conv_dsp_s8.cost: a VMLADAVA (16 MACs) every ~2 cycles on the M55's 64-bit
    # beats, im2col ~2.5 cycles per (position, tap)
    y, w = graph.tensors[op.outputs[0]], graph.tensors[op.inputs[3]]
    group = int(op.attrs.get("group", 1))
    positions = float(np.prod(y.shape)) / max(1, y.shape[1])
    k = float(np.prod(w.shape[1:]))
    return float(np.prod(y.shape)) * k * 0.025 + 0.5 * positions * k * group


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="mve",
            applies=_applies, cost=cost, label="Cortex-M Helium: im2col GEMM on VMLADAVA")
def lower_qlinear_conv_mve(op: Op, graph: Graph):
    pt = qlinear_conv_parts(op, graph)
    geo = pt["geo"]
    rows = centred_rows(graph, op, 3, 5)
    packed, k16 = mve_rows(rows)
    ins = list(pt["ins"])
    ins[1] = add_packed(graph, op.inputs[3], "mve", packed, "int8")
    ins.append(add_packed(graph, op.inputs[3], "mve_sums", rows.sum(axis=1), "int32"))
    xt = pt["xt"]
    shift = 128 if xt == "uint8_t" else 0
    col = im2col(xt, "int8_t", "K16", f"v - {shift}", "xzs")
    body = f"""    const {xt} *x = (const {xt} *)in_ptrs[0];
    const int8_t *wp = (const int8_t *)in_ptrs[1];  /* [OC][K16] centred */
    const int32_t *wsum = (const int32_t *)in_ptrs[{len(ins) - 1}];
{pt["head"]}
    const int32_t xz = {pt["x_zp"]};
    const int32_t xzs = xz - {shift};  /* the zero point in the shifted (int8) domain */
    const int32_t ICG = C / G, OCG = OC / G, P = OH * OW, HW = H * W, K16 = {k16};
    int8_t *col = (int8_t *)workspace;  /* one column [K16] */
    int32_t b, g, pos, r;
    for (b = 0; b < N; ++b)
        for (g = 0; g < G; ++g) {{
            const {xt} *xg = x + ((int64_t)b * C + (int64_t)g * ICG) * HW;
            const int64_t yg = ((int64_t)b * OC + (int64_t)g * OCG) * P;
            const int8_t *wg = wp + (int64_t)g * OCG * K16;
            const int32_t *sg = wsum + g * OCG;
            for (pos = 0; pos < P; ++pos) {{
                {col}
                for (r = 0; r + 3 < OCG; r += 4) {{
                    int32_t acc[4];
                    megcc_mve_dot4(wg + (int64_t)r * K16, K16, col, K16 / 16, acc);
                    {output_store(pt, wrap_sub_mul("acc[0]", "xzs", "sg[r]"), "g * OCG + r", "yg + (int64_t)r * P + pos")}
                    {output_store(pt, wrap_sub_mul("acc[1]", "xzs", "sg[r + 1]"), "g * OCG + r + 1", "yg + (int64_t)(r + 1) * P + pos")}
                    {output_store(pt, wrap_sub_mul("acc[2]", "xzs", "sg[r + 2]"), "g * OCG + r + 2", "yg + (int64_t)(r + 2) * P + pos")}
                    {output_store(pt, wrap_sub_mul("acc[3]", "xzs", "sg[r + 3]"), "g * OCG + r + 3", "yg + (int64_t)(r + 3) * P + pos")}
                }}
                for (; r < OCG; ++r) {{
                    const int32_t s = megcc_mve_dot(wg + (int64_t)r * K16, col, K16 / 16);
                    {output_store(pt, wrap_sub_mul("s", "xzs", "sg[r]"), "g * OCG + r", "yg + (int64_t)r * P + pos")}
                }}
            }}
        }}
"""
    rq = pt["rq"]
    kernel = make_kernel(f"qlinear_conv_vmladav_mve_k{k16}_{pt['variant']}", body, PARAMS,
                         (MVE_DOT,) + tuple(rq.helpers), isa="mve")
    return [Instr(kernel, ins, [op.outputs[0]], PARAMS.pack(**geo), workspace_bytes=k16,
                  note="Cortex-M Helium int8 im2col GEMM (VMLADAVA), 4 channels x 1 position")]
