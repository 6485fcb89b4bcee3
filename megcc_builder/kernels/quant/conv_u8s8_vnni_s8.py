"""QLinearConv on AVX512-VNNI: conv_u8s8_avx2_s8's quad GEMM with `vpdpbusd` (256-bit,
AVX512VL) as its reduction step, for every dense / group convolution (1x1, strided, 3x3,
7x7 stems) whose centred weights are int8.

`vpdpbusd` multiplies four u8 activations by four s8 weights and adds the four products to
an int32 lane without intermediate saturation (the non-saturating form), so the int32
accumulator is exact mod 2^32 like the portable kernel's, for any int8 weight: there is no
saturation-free condition as for `vpmaddubsw`. One instruction does 32 multiply-adds where
AVX2 needs vpmaddubsw + vpmaddwd + vpaddd (or vpmaddwd + vpaddd for 16). The packing,
the int8 activation shift by 128 (xor 0x80, the zero point corrected through the weight
column sums) and the requantizing epilogue are the AVX2 kernel's, so outputs are
bit-identical to it and to the portable kernel."""
from __future__ import annotations

from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .conv_generic_s8 import QTYPES
from .conv_u8s8_avx2_s8 import _quads, emit_u8s8, quad_gemm_cost, quad_gemm_refusal

DPBUSD_STEP = "{c} = _mm256_dpbusd_epi32({c}, {b}, av);"


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    why = quad_gemm_refusal(op, graph)
    if why:
        return why
    wq = _quads(graph, op)
    if wq.size and (wq.min() < -128 or wq.max() > 127):
        return "centred weights outside int8 (uint8 weights with a zero point far from 128)"
    return None


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # 32 multiply-adds per vpdpbusd: a 6x16 tile measured ~165 per ns against ~115 for
    # vpmaddubsw + vpmaddwd (conv_u8s8_avx2_s8, costed macs / 48) and ~90 for the int16
    # pairs (conv_gemm_avx2_s8): macs / 64 (48 * 165 / 115 = 69, a little kept for the
    # tile's loads); the packing and the epilogue as in the AVX2 quad kernel
    return quad_gemm_cost(op, graph, 64.0)


@implements("QLinearConv", dtypes=QTYPES, typed_inputs=(0, 3), requires="vnni",
            applies=_applies, cost=cost, label="vnni u8 x s8 quads (vpdpbusd, exact)")
def lower_qlinear_conv_u8s8_vnni(op: Op, graph: Graph):
    return emit_u8s8(op, graph, "vnni", DPBUSD_STEP, "",
                     "AVX512-VNNI u8 x s8 GEMM {MR}x16 (vpdpbusd)")
