"""Relayout between NCHW and NCHW88 (float16, enable_nchw88), at the edges of an NCHW88
region. Channels past C in the last block are written as zeros (the blocked kernels read
whole blocks) and dropped on the way back (the Relayout's `channels`). One pixel per
channel and a batch of one (after a global pool): both layouts hold the logical values in
the same order, so the relayout is a view."""
from __future__ import annotations

from ...codegen.kernel import Instr, View, make_kernel
from ...codegen.params import i32, schema
from ...ir import Graph, Op
from ..registry import implements

PARAMS = schema(i32("N", "batch"), i32("C", "logical channels"),
                i32("S", "pixels per channel (H * W)"))


def _sides(op: Op, graph: Graph):
    """(direction 'to88' or 'from88', N, C, H*W) of an NCHW88 Relayout."""
    src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    plain = src if op.attrs["to"] == "nchw88" else dst
    n, c = plain.shape[0], plain.shape[1]
    spatial = plain.numel // (n * c) if n * c else 0
    return ("to88" if op.attrs["to"] == "nchw88" else "from88"), n, c, spatial


def _applies(op: Op, graph: Graph, isa):
    layouts = {graph.tensors[op.inputs[0]].layout, graph.tensors[op.outputs[0]].layout}
    return None if "nchw88" in layouts else "not an NCHW88 relayout"


@implements("Relayout", dtypes=("float16",), requires="f16.direct", applies=_applies,
            cost=lambda op, graph, isa: _sides(op, graph)[1] * _sides(op, graph)[2]
            * _sides(op, graph)[3] * 0.5, label="NCHW88 float16 relayout")
def lower_relayout(op: Op, graph: Graph):
    direction, n, c, spatial = _sides(op, graph)
    if spatial == 1 and (n == 1 or c % 8 == 0):
        return [View(op.outputs[0], op.inputs[0])]
    if direction == "to88":
        name = "relayout_nchw_to_nchw88_f16_neon64fp16"
        inner = """            for (s = 0; s < S; ++s) {
                float16_t v[8];
                for (l = 0; l < 8; ++l) v[l] = l < lanes ? xc[(int64_t)l * S + s] : (float16_t)0;
                vst1q_f16(yb + (int64_t)s * 8, vld1q_f16(v));
            }"""
        ptrs = """            const float16_t *xc = x + ((int64_t)b * C + cb * 8) * S;
            float16_t *yb = y + ((int64_t)b * CB + cb) * S * 8;"""
    else:
        name = "relayout_nchw88_to_nchw_f16_neon64fp16"
        inner = """            for (s = 0; s < S; ++s) {
                float16_t v[8];
                vst1q_f16(v, vld1q_f16(xb + (int64_t)s * 8));
                for (l = 0; l < lanes; ++l) yc[(int64_t)l * S + s] = v[l];
            }"""
        ptrs = """            const float16_t *xb = x + ((int64_t)b * CB + cb) * S * 8;
            float16_t *yc = y + ((int64_t)b * C + cb * 8) * S;"""
    body = f"""    const float16_t *x = (const float16_t *)in_ptrs[0];
    float16_t *y = (float16_t *)out_ptrs[0];
    const int32_t CB = (C + 7) / 8;
    int32_t b, cb, s, l;
    for (b = 0; b < N; ++b)
        for (cb = 0; cb < CB; ++cb) {{
            const int32_t lanes = C - cb * 8 < 8 ? C - cb * 8 : 8;
{ptrs}
{inner}
        }}
"""
    kernel = make_kernel(name, body, PARAMS, (), isa="neon64fp16")
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], PARAMS.pack(N=n, C=c, S=spatial),
                  note=f"relayout {'NCHW -> NCHW88' if direction == 'to88' else 'NCHW88 -> NCHW'}"
                       " (float16)")]
