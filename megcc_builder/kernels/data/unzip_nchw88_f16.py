"""ChannelUnzipNCHW88 (float16): the even and the odd channels of an NCHW88 tensor, the
channel shuffle and split of a ShuffleNetV2 block (passes/layout_nchw44.py). Output block b
takes input blocks 2b and 2b+1 (16 channels): `uzp1` gathers their even lanes (channels
16b + 0, 2, ..., 14: the even output's 8b .. 8b+7), `uzp2` the odd ones."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, schema
from ...ir import Graph, Op
from ..registry import implements

PARAMS = schema(i32("OCB", "output channel blocks"), i32("S", "pixels per block (H * W)"))


@implements("ChannelUnzipNCHW88", dtypes=("float16",), requires="f16.direct",
            cost=lambda op, graph, isa: graph.tensors[op.inputs[0]].numel / 8 + 20,
            label="NEON fp16 NCHW88 channel unzip (uzp1/uzp2)")
def emit(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    body = """    const float16_t *x = (const float16_t *)in_ptrs[0];
    float16_t *ye = (float16_t *)out_ptrs[0], *yo = (float16_t *)out_ptrs[1];
    int32_t b, s;
    for (b = 0; b < OCB; ++b) {
        const float16_t *x0 = x + (int64_t)2 * b * S * 8, *x1 = x0 + (int64_t)S * 8;
        float16_t *e = ye + (int64_t)b * S * 8, *o = yo + (int64_t)b * S * 8;
        for (s = 0; s < S; ++s) {
            const float16x8_t lo = vld1q_f16(x0 + (int64_t)s * 8), hi = vld1q_f16(x1 + (int64_t)s * 8);
            vst1q_f16(e + (int64_t)s * 8, vuzp1q_f16(lo, hi));
            vst1q_f16(o + (int64_t)s * 8, vuzp2q_f16(lo, hi));
        }
    }
"""
    kernel = make_kernel("channel_unzip_nchw88_f16_neon64fp16", body, PARAMS, (), isa="neon64fp16")
    return [Instr(kernel, [op.inputs[0]], list(op.outputs),
                  PARAMS.pack(OCB=x.shape[1] // 2, S=x.shape[2] * x.shape[3]),
                  note="nchw88 float16 even/odd channels (ShuffleNet shuffle + split), uzp1/uzp2")]
