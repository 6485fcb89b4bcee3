"""Relayout between NCHW and NCHW44 (float32), portable C."""
from __future__ import annotations

from ...codegen.kernel import Instr, View, make_kernel
from ...codegen.params import i32, schema
from ...ir import Graph, Op
from ..registry import implements


# Both directions, portable and NEON (C is a multiple of 4).
RELAYOUT_PARAMS = schema(i32("N", "batch"), i32("C", "channels"),
                         i32("S", "pixels per channel (H * W)"))


def relayout_params(op: Op, graph: Graph):
    """(direction, N, C, H*W) of a Relayout; direction 'to44' or 'from44'."""
    src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    plain = src if op.attrs["to"] == "nchw44" else dst
    n, c = plain.shape[0], plain.shape[1]
    spatial = plain.numel // (n * c) if n * c else 0
    return ("to44" if op.attrs["to"] == "nchw44" else "from44"), n, c, spatial


def relayout_cost(op: Op, graph: Graph, per_element: float) -> float:
    _, n, c, spatial = relayout_params(op, graph)
    return n * c * spatial * per_element


def as_view(op: Op, graph: Graph):
    """One pixel per channel: both layouts are the same bytes, so no code runs."""
    return [View(op.outputs[0], op.inputs[0])] if relayout_params(op, graph)[3] == 1 else None


def nchw44_only(op: Op, graph: Graph, isa=None):
    """These kernels move 4-lane blocks (NCHW88 has its own: relayout_nchw88_f16)."""
    layouts = {graph.tensors[op.inputs[0]].layout, graph.tensors[op.outputs[0]].layout}
    return "an NCHW88 relayout" if "nchw88" in layouts else None


@implements("Relayout", cost=lambda op, graph, isa: relayout_cost(op, graph, 1.0),
            applies=nchw44_only)
def lower_relayout(op: Op, graph: Graph):
    direction, n, c, spatial = relayout_params(op, graph)
    view = as_view(op, graph)
    if view:
        return view
    if direction == "to44":
        name, move = "relayout_nchw_to_nchw44_f32", "y[s * 4 + l] = x[l * S + s];"
    else:
        name, move = "relayout_nchw44_to_nchw_f32", "y[l * S + s] = x[s * 4 + l];"
    body = f"""    int32_t blk, s, l;
    for (blk = 0; blk < N * C / 4; ++blk) {{
        const float *restrict x = (const float *)in_ptrs[0] + (int64_t)blk * S * 4;
        float *restrict y = (float *)out_ptrs[0] + (int64_t)blk * S * 4;
        for (s = 0; s < S; ++s)
            for (l = 0; l < 4; ++l) {move}
    }}
"""
    kernel = make_kernel(name, body, RELAYOUT_PARAMS)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  RELAYOUT_PARAMS.pack(N=n, C=c, S=spatial),
                  note=f"relayout {'NCHW -> NCHW44' if direction == 'to44' else 'NCHW44 -> NCHW'}")]
