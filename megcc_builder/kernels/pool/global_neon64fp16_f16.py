"""float16 global pooling and trailing-axes mean/max on Armv8.2-A + FP16 (enable_ioc16):
GlobalAveragePool, GlobalMaxPool, and ReduceMean / ReduceMax over the last axes (what
MegEngine's adaptive pooling and mean become). Each row (a channel plane) is read 8 halves
at a time. Means widen to float32 (`fcvtl`) and accumulate there: a float16 running sum of
a large plane would lose the small values (documented in docs/float16.md); maxima stay in
float16 (`fmax`, exact)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, schema
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements

PARAMS = schema(i32("R", "rows (outer elements)"), i32("L", "elements reduced per row"))


def _axes(op: Op, graph: Graph):
    rank = len(graph.tensors[op.inputs[0]].shape)
    if op.type.startswith("Global"):
        return list(range(2, rank))
    axes = op.attrs.get("axes")
    if axes is None and len(op.inputs) > 1 and op.inputs[1]:
        t = graph.tensors[op.inputs[1]]
        if not t.is_const:
            return None
        axes = [int(a) for a in np.asarray(t.data).reshape(-1)]
    if axes is None:
        return list(range(rank))
    return sorted(a % rank for a in axes)


def split(op: Op, graph: Graph):
    """(rows, row length) if the reduced axes are the trailing ones, else None."""
    shape = graph.tensors[op.inputs[0]].shape
    axes = _axes(op, graph)
    if not axes or axes != list(range(axes[0], len(shape))):
        return None
    return int(np.prod(shape[:axes[0]], dtype=np.int64)), int(np.prod(shape[axes[0]:], dtype=np.int64))


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    x = graph.tensors[op.inputs[0]]
    if x.dtype != "float16":
        return "not float16"
    if op.attrs.get("noop_with_empty_axes", 0):
        return "noop_with_empty_axes"
    s = split(op, graph)
    if s is None or s[1] == 0:
        return "reduced axes not the trailing ones"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    r, n = split(op, graph)
    return r * n / 8 + 20


def _lower(op: Op, graph: Graph, is_max: bool):
    rows, length = split(op, graph)
    if is_max:
        name = "reduce_rows_max_f16_neon64fp16"
        loop = """        float16x8_t m = vdupq_n_f16(xr[0]);
        float16_t s;
        for (i = 0; i + 8 <= L; i += 8) m = vmaxq_f16(m, vld1q_f16(xr + i));
        s = vmaxvq_f16(m);
        for (; i < L; ++i) s = (xr[i] != xr[i] || xr[i] > s) ? xr[i] : s;
        y[r] = s;"""
        note = "float16 row maximum, 8-lane fmax"
    else:
        name = "reduce_rows_mean_f16_f32acc_neon64fp16"
        loop = """        float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0);
        float s;
        for (i = 0; i + 8 <= L; i += 8) {
            const float16x8_t v = vld1q_f16(xr + i);
            a0 = vaddq_f32(a0, vcvt_f32_f16(vget_low_f16(v)));
            a1 = vaddq_f32(a1, vcvt_high_f32_f16(v));
        }
        s = vaddvq_f32(vaddq_f32(a0, a1));
        for (; i < L; ++i) s += (float)xr[i];
        y[r] = (float16_t)(s / (float)L);"""
        note = "float16 row mean, widened to float32 (fcvtl) and summed there"
    body = f"""    const float16_t *x = (const float16_t *)in_ptrs[0];
    float16_t *y = (float16_t *)out_ptrs[0];
    int32_t r, i;
    for (r = 0; r < R; ++r) {{
        const float16_t *xr = x + (int64_t)r * L;
{loop}
    }}
"""
    kernel = make_kernel(name, body, PARAMS, (), isa="neon64fp16")
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], PARAMS.pack(R=rows, L=length),
                  note=f"{note} ({rows} rows of {length})")]


@implements("GlobalAveragePool", "ReduceMean", dtypes=("float16",), requires="f16.direct",
            applies=_applies, cost=_cost, label="NEON fp16 row mean (float32 sums)",
            name="pool.global_neon64fp16_f16.mean")
def emit_mean(op: Op, graph: Graph, isa: IsaSpec):
    return _lower(op, graph, False)


@implements("GlobalMaxPool", "ReduceMax", dtypes=("float16",), requires="f16.direct",
            applies=_applies, cost=_cost, label="NEON fp16 row max",
            name="pool.global_neon64fp16_f16.max")
def emit_max(op: Op, graph: Graph, isa: IsaSpec):
    return _lower(op, graph, True)
