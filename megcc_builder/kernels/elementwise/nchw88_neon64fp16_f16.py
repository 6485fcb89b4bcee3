"""float16 element-wise operations and fused chains in the NCHW88 layout (enable_nchw88) on
Armv8.2-A + FP16. A pixel's 8 channels are one float16x8_t, so an operand is one of: a
tensor walking like the output ('v'), a per-channel constant re-laid out to (1, C/8, 1, 1,
8) (passes/layout_nchw44.relayout_const: one vector per channel block, loaded once per
block, 'c'), or a scalar ('s', broadcast once). The operations and activations (Add, Sub,
Mul, Div, Max, Min, ReLU, Clip / ReLU6, HardSwish, HardSigmoid, and Sigmoid / Exp / Tanh in
float32 lanes) are the NCHW float16 kernel's vector code (neon64fp16_f16.vector_code), so
both layouts give the same float16 result."""
from __future__ import annotations

import hashlib
from typing import List, Optional

from ...codegen.kernel import Instr, Kernel, kernel_source
from ...codegen.params import i32, schema
from ...codegen.vmath import helpers, used
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .generic import _expr_key, _expr_slug, elementwise_cycles, expression_of
from .neon64fp16_f16 import OP_TYPES, _widened_helpers, vector_code

PARAMS = schema(i32("N", "batch"), i32("CB", "channel blocks"), i32("S", "pixels per block"))


def operand_kinds(op: Op, graph: Graph) -> Optional[List[str]]:
    """Per input 'v', 'c' or 's' (module doc), or None if one is none of them."""
    y = graph.tensors[op.outputs[0]]
    if y.layout != "nchw88" or y.dtype != "float16":
        return None
    cb = y.shape[1]
    kinds = []
    for name in (i for i in op.inputs if i):
        t = graph.tensors[name]
        if t.dtype != "float16":
            return None
        if tuple(t.shape) == tuple(y.shape):
            kinds.append("v")
        elif t.numel == 1:
            kinds.append("s")
        elif t.is_const and len(t.shape) == 5 and tuple(t.shape) == (1, cb, 1, 1, 8):
            kinds.append("c")
        else:
            return None
    return kinds


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    kinds = operand_kinds(op, graph)
    if kinds is None:
        return "not NCHW88 float16 with per-channel or scalar broadcasts"
    if "v" not in kinds:
        return "every input a broadcast"
    if vector_code(expression_of(op), [f"x{k}" for k in range(len(kinds))]) is None:
        return "an operation without a float16 vector form"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    return elementwise_cycles(op, graph, isa.core.elementwise_vector) / 2 + 4


@implements(*OP_TYPES, "FusedElementwise", dtypes=("float16",), layout="nchw88",
            requires="f16.elementwise", applies=_applies, cost=_cost,
            label="NEON fp16 NCHW88 element-wise")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    expr = expression_of(op)
    names = [i for i in op.inputs if i]
    kinds = operand_kinds(op, graph)
    vec = vector_code(expr, [f"vld1q_f16(p{k} + (int64_t)s * 8)" if kind == "v" else f"d{k}"
                             for k, kind in enumerate(kinds)])
    base = f"ew_{_expr_slug(expr)}"
    if len(base) > 48:
        base = "ew_fused_" + hashlib.sha1(_expr_key(expr).encode()).hexdigest()[:10]
    name = f"{base}_f16_nchw88_{''.join(kinds)}_neon64fp16"
    lines = [f"    const float16_t *a{k} = (const float16_t *)in_ptrs[{k}];"
             for k in range(len(names))]
    lines += ["    float16_t *y = (float16_t *)out_ptrs[0];",
              "    int32_t b, cb, s;",
              "    for (b = 0; b < N; ++b)",
              "    for (cb = 0; cb < CB; ++cb) {",
              "        float16_t *yb = y + ((int64_t)b * CB + cb) * S * 8;"]
    for k, kind in enumerate(kinds):
        if kind == "v":
            lines.append(f"        const float16_t *p{k} = a{k} + ((int64_t)b * CB + cb) * S * 8;")
        elif kind == "c":
            lines.append(f"        const float16x8_t d{k} = vld1q_f16(a{k} + (int64_t)cb * 8);")
        else:
            lines.append(f"        const float16x8_t d{k} = vld1q_dup_f16(a{k});")
    lines += [f"        for (s = 0; s < S; ++s) vst1q_f16(yb + (int64_t)s * 8, {vec});", "    }"]
    source = kernel_source(name, "\n".join(lines), params=PARAMS)
    f32_math = isa.vec("f32").math
    wrappers = [w for w in _widened_helpers(f32_math) if w[0] in source]
    support = used(helpers(f32_math), source + "".join(src for _, src in wrappers))
    kernel = Kernel(name, source, ("math",) + support + tuple(wrappers), isa="neon64fp16",
                    params=PARAMS)
    y = graph.tensors[op.outputs[0]]
    return [Instr(kernel, names, [op.outputs[0]],
                  PARAMS.pack(N=y.shape[0], CB=y.shape[1], S=y.shape[2] * y.shape[3]),
                  note=f"nchw88 float16 element-wise ({''.join(kinds)}), 8 channels per vector")]
