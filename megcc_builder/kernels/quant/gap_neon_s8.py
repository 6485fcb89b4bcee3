"""QLinearGlobalAveragePool on int8 / uint8 with NEON (ARMv7 and AArch64): the plane's
exact int32 sum by pairwise widening adds, 16 codes a step into 16-bit lanes
(`vpadalq_u8` / `vpadalq_s8`; at most 128 steps, so a lane stays within 16 bits:
128 * 2 * 255 < 65536, 128 * 2 * -128 = -32768), each block folded into 32-bit lanes
(`vpadalq_u16` / `vpadalq_s16`), an 8-code step (`vpaddl` + `vaddw`), a scalar tail. The
requantization of the sum is the portable kernel's (pool_generic_s8), so the result is
bit-exact with it (onnxruntime's MLAS, or MegEngine's rounding)."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .pool_generic_s8 import QTYPES, global_avgpool_cost, lower_global_avgpool
from .requant import refuses_fixed


def plane_sum_neon(signed: bool) -> str:
    """C statements: `int32_t sum` of the S codes at x (i counts the codes)."""
    t, ty = ("s", "") if signed else ("u", "u")
    return f"""        {ty}int32x4_t acc = vdupq_n_{t}32(0);
        int32_t sum;
        for (i = 0; i + 16 <= S;) {{
            const int32_t end = S - i > 16 * 128 ? i + 16 * 128 : S;  /* 16-bit lanes */
            {ty}int16x8_t a16 = vdupq_n_{t}16(0);
            for (; i + 16 <= end; i += 16) a16 = vpadalq_{t}8(a16, vld1q_{t}8(x + i));
            acc = vpadalq_{t}16(acc, a16);
        }}
        if (i + 8 <= S) {{
            acc = vaddw_{t}16(acc, vpaddl_{t}8(vld1_{t}8(x + i)));
            i += 8;
        }}
        sum = (int32_t)((uint32_t)vgetq_lane_{t}32(acc, 0) + (uint32_t)vgetq_lane_{t}32(acc, 1)
                        + (uint32_t)vgetq_lane_{t}32(acc, 2) + (uint32_t)vgetq_lane_{t}32(acc, 3));
        for (; i < S; ++i) sum += (int32_t)x[i];
"""


@implements("QLinearGlobalAveragePool", dtypes=QTYPES, requires="neon",
            applies=lambda op, graph, isa: refuses_fixed(op),
            cost=global_avgpool_cost(1.0 / 12.0),
            label="neon int8 global average pool (vpadal sums)")
def lower_qlinear_global_avgpool_neon(op: Op, graph: Graph):
    signed = graph.tensors[op.inputs[0]].dtype == "int8"
    return lower_global_avgpool(op, graph, "qlinear_global_avgpool_neon",
                                plane_sum_neon(signed), "NEON int8 global average pool",
                                isa="neon")
