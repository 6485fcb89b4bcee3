"""MaxPool on int8 / uint8 codes with NEON (ARMv7 and AArch64): pool_sep_s8's separable
form (the window rows' maximum into a padded row buffer, then the maximum of kw cells of it
per output), 16 codes per instruction (`vmaxq_u8` / `vmaxq_s8`), 8 (`vmax_u8`) for rows
narrower than 16. Stride 2 takes the even bytes of twice as many buffer cells (`vld2`).
Other strides: scalar horizontal pass. The maximum of the codes is the codes of the maximum
(dequantization is monotonic): exact, as the portable kernel."""
from __future__ import annotations

from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .pool_generic_s8 import QTYPES, maxpool_s8_applies
from .pool_sep_s8 import ByteVectors, VectorWidth, lower_separable_maxpool


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    return None if maxpool_s8_applies(op, graph) else "not a 2-D int8/uint8 MaxPool"


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    return (float(x.numel) * kh * y.shape[2] / max(1, x.shape[2]) + float(y.numel) * kw) / 8.0


@implements("MaxPool", dtypes=QTYPES, requires="neon", applies=_applies, cost=cost,
            label="neon int8 max pool (separable, 16/8 codes per vmax)")
def lower_maxpool_s8_neon(op: Op, graph: Graph):
    sfx = "s8" if graph.tensors[op.inputs[0]].dtype == "int8" else "u8"
    return lower_separable_maxpool(op, graph, ByteVectors("neon", (
        VectorWidth(16, f"vmaxq_{sfx}", lambda p: f"vld1q_{sfx}({p})",
                    lambda p, v: f"vst1q_{sfx}({p}, {v});", lambda p: f"vld2q_{sfx}({p}).val[0]"),
        VectorWidth(8, f"vmax_{sfx}", lambda p: f"vld1_{sfx}({p})",
                    lambda p, v: f"vst1_{sfx}({p}, {v});", lambda p: f"vld2_{sfx}({p}).val[0]")),
        note="NEON int8 max pool (separable)"))
