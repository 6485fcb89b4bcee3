"""Relayout between NCHW and NCHW44 (float32) with NEON: vst4q to NCHW44, vld4q back."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ..registry import implements
from .relayout_generic_f32 import (RELAYOUT_PARAMS, as_view, nchw44_only, relayout_cost,
                                   relayout_params)


@implements("Relayout", requires="neon", label="NEON vst4/vld4", applies=nchw44_only,
            cost=lambda op, graph, isa: relayout_cost(op, graph, 0.25))
def lower_relayout(op: Op, graph: Graph):
    """4 channel rows <-> interleaved pixels: vst4q (to NCHW44) / vld4q (to NCHW)."""
    view = as_view(op, graph)
    if view:
        return view
    direction, n, c, spatial = relayout_params(op, graph)
    params = RELAYOUT_PARAMS.pack(N=n, C=c, S=spatial)
    if direction == "to44":
        name = "relayout_nchw_to_nchw44_f32_neon"
        vec = ("float32x4x4_t v; v.val[0] = vld1q_f32(x + s); v.val[1] = vld1q_f32(x + S + s);\n"
               "            v.val[2] = vld1q_f32(x + 2 * S + s); v.val[3] = vld1q_f32(x + 3 * S + s);\n"
               "            vst4q_f32(y + s * 4, v);")
        scalar = "for (l = 0; l < 4; ++l) y[s * 4 + l] = x[l * S + s];"
    else:
        name = "relayout_nchw44_to_nchw_f32_neon"
        vec = ("const float32x4x4_t v = vld4q_f32(x + s * 4);\n"
               "            vst1q_f32(y + s, v.val[0]); vst1q_f32(y + S + s, v.val[1]);\n"
               "            vst1q_f32(y + 2 * S + s, v.val[2]); vst1q_f32(y + 3 * S + s, v.val[3]);")
        scalar = "for (l = 0; l < 4; ++l) y[l * S + s] = x[s * 4 + l];"
    body = f"""    int32_t blk, s, l;
    for (blk = 0; blk < N * C / 4; ++blk) {{
        const float *x = (const float *)in_ptrs[0] + (int64_t)blk * S * 4;
        float *y = (float *)out_ptrs[0] + (int64_t)blk * S * 4;
        for (s = 0; s + 4 <= S; s += 4) {{
            {vec}
        }}
        for (; s < S; ++s) {scalar}
    }}
"""
    kernel = make_kernel(name, body, RELAYOUT_PARAMS, isa="neon")
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], list(params),
                  note=f"relayout {'NCHW -> NCHW44' if direction == 'to44' else 'NCHW44 -> NCHW'}"
                       " (NEON vst4/vld4)")]
