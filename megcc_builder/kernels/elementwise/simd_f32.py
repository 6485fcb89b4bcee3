"""Vector element-wise kernels: float32 rows (flat, or per channel), one vector per step.

ARMv7 NEON: everything covered below. GCC does not auto-vectorise float arithmetic for
ARMv7 NEON (its vector unit flushes denormals, so only -ffast-math lets the compiler use
it), so the portable loops of elementwise.py run one scalar VFP operation per element there.

AVX2 and AArch64 NEON: the compiler vectorises the portable loops itself, except where they
call libm (expf, tanhf: Exp, Sigmoid, Tanh, Swish/SiLU, Elu, Selu, Mish, GELU's tanh form),
which stays one call per element; the vector exp/sigmoid/tanh of codegen/vmath.py replace those
calls (the cost model takes these kernels only for expressions containing them).

Covered: float32 expressions (single ops or fused chains) over an output that collapses to
rows, where each input either walks like the output (possibly the same row every time) or
repeats one value per row (a scalar, or a per-channel value over H*W), built from Add,
Sub, Mul, Div (not on ARMv7: no vector divide), Max, Min, Relu, Neg, Abs, Clip with constant
bounds, LeakyRelu, Exp, Sigmoid, Tanh, Softplus, Swish, Elu, Selu, Mish and the tanh form of
Gelu.
Max/min return NaN when an operand is NaN, like megcc_maxf/megcc_minf of the portable code.
Anything else keeps the portable kernel. The last L % VW elements of a row run the portable
scalar expression.
"""
from __future__ import annotations

import hashlib
from typing import Optional, Sequence

from ...codegen.kernel import Instr, Kernel, c_float, kernel_source
from ...codegen.params import i32, schema
from ...codegen.vector import Simd, VecOps
from ...codegen.vmath import helpers, used
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .generic import (TRANSCENDENTAL, _expr_key, _expr_slug, broadcast_strides, collapse,
                      elementwise_cycles, expression_of, render)


# the IR op types whose (single-op) expressions this module may vectorise
# (not Identity: a view, which costs nothing)
OP_TYPES = sorted({"Add", "Sub", "Mul", "Div", "Max", "Min", "Relu", "Neg", "Abs",
                   "Clip", "LeakyRelu", "Sum", "Exp", "Sigmoid", "Tanh", "Swish", "Elu",
                   "Selu", "Mish", "Gelu", "Softplus"})


def _const(expr) -> Optional[float]:
    return float(expr[1]) if expr[0] == "const" else None


def vector_code(expr, in_vars: Sequence[str], v: VecOps) -> Optional[str]:
    """The vector C expression of an expression tree for the ISA of `v`, None if not covered."""
    kind = expr[0]
    if kind == "in":
        return in_vars[expr[1]]
    if kind == "const":
        return v.c(c_float(expr[1]))
    kids = [vector_code(c, in_vars, v) for c in expr[1:]]
    if any(k is None for k in kids):
        return None
    zero, one = v.c("0.0f"), v.c("1.0f")
    if len(kids) == 2 and kind in ("Add", "Sub", "Mul", "Max", "Min"):
        return getattr(v, kind.lower())(*kids)
    if kind == "Div" and len(kids) == 2:
        return v.div(*kids) if v._div else None  # the Newton reciprocal is not exact
    if len(kids) == 1 and kind in ("Relu", "Neg", "Abs", "Identity"):
        return kids[0] if kind == "Identity" else getattr(v, kind.lower())(kids[0])
    if len(kids) == 1 and kind in ("Exp", "Sigmoid", "Tanh", "Softplus"):
        return f"{v.fn(kind.lower())}({kids[0]})"
    x = kids[0]
    if kind == "clip" and _const(expr[2]) is not None and _const(expr[3]) is not None:
        lo, hi = _const(expr[2]), _const(expr[3])
        if lo != lo or hi != hi:
            return None  # NaN bounds: the portable semantics
        return v.clamp(x, kids[1], kids[2])
    if kind == "leaky" and _const(expr[2]) is not None:
        # x >= 0 ? x : x * alpha (NaN compares false: NaN * alpha, as portable)
        return v.select(v.ge(x, zero), x, v.mul(x, kids[1]))
    if kind == "swish" and _const(expr[2]) is not None:
        return v.mul(x, f"{v.fn('sigmoid')}({v.mul(kids[1], x)})")
    if kind == "elu" and _const(expr[2]) is not None:
        return v.select(v.ge(x, zero), x, v.mul(kids[1], v.sub(f"{v.fn('exp')}({x})", one)))
    if kind == "selu" and _const(expr[2]) is not None and _const(expr[3]) is not None:
        neg = v.mul(kids[1], v.sub(f"{v.fn('exp')}({x})", one))
        return v.mul(kids[2], v.select(v.gt(x, zero), x, neg))
    if kind == "gelu_tanh":
        inner = v.mul(v.c("0.7978845608028654f"),
                      v.fma(v.mul(v.c("0.044715f"), v.mul(x, x)), x, x))
        return v.mul(v.mul(v.c("0.5f"), x), v.add(one, f"{v.fn('tanh')}({inner})"))
    if kind == "Mish":
        # x * tanh(log(1 + e^x)) = x * n / (n + 2) with n = e^x (e^x + 2): one exp; above 20
        # the portable softplus is x itself and tanh(x) rounds to 1, so mish is x
        e = f"{v.fn('exp')}({x})"
        return v.select(v.gt(x, v.c("20.0f")), x, f"megcc_{v.name}_vmish({x}, {e})")
    return None


def has_transcendental(expr) -> bool:
    if expr[0] in ("in", "const"):
        return False
    return expr[0] in TRANSCENDENTAL or any(has_transcendental(c) for c in expr[1:])


def row_layout(op: Op, graph: Graph):
    """((R1, R0, L), per input ((row strides s1, s0), 'v' or 'b')) if every tensor is float32
    and the output, collapsed to at most 3-D, is R1 x R0 rows of L in which each input either
    walks like the output ('v') or repeats one value ('b': a scalar, or one value per row
    such as a per-channel bias over H*W, batched or not); else None."""
    names = [i for i in op.inputs if i]
    out = graph.tensors[op.outputs[0]]
    if out.dtype != "float32" or any(graph.tensors[n].dtype != "float32" for n in names):
        return None
    dims, strides = collapse(out.shape, [broadcast_strides(graph.tensors[n].shape, out.shape)
                                         for n in names])
    if len(dims) > 3:
        return None
    pad = 3 - len(dims)
    dims, strides = [1] * pad + dims, [[0] * pad + st for st in strides]
    if any(st[2] not in (0, 1) for st in strides):
        return None
    return tuple(dims), [((st[0], st[1]), "v" if st[2] else "b") for st in strides]


def applicable(op: Op, graph: Graph, s: Simd, v: VecOps) -> bool:
    layout = row_layout(op, graph)
    if layout is None or all(kind == "b" for _, kind in layout[1]):
        return False
    return vector_code(expression_of(op), [f"x{k}" for k in range(len(layout[1]))],
                       v) is not None


def rows_schema(n_inputs: int):
    """R1 x R0 rows of L floats; each input's row start is o1 * s1_k + o0 * s0_k."""
    per_input = [i32(f"s{a}_{k}", f"input {k} element stride per {'R1' if a else 'R0'} row")
                 for k in range(n_inputs) for a in (1, 0)]
    return schema(i32("R1", "outer rows"), i32("R0", "inner rows"),
                  i32("L", "floats per row"), *per_input)


def lower_elementwise(op: Op, graph: Graph, s: Simd, v: VecOps):
    expr = expression_of(op)
    names = [i for i in op.inputs if i]
    (r1, r0, length), inputs = row_layout(op, graph)
    kinds = "".join(kind for _, kind in inputs)
    vec = vector_code(expr, [s.load(f"r{k} + i") if kind == "v" else f"d{k}"
                             for k, kind in enumerate(kinds)], v)
    scalar, _ = render(expr, [f"r{k}[i]" if kind == "v" else f"r{k}[0]"
                              for k, kind in enumerate(kinds)], ["float32"] * len(names))
    base = f"ew_{_expr_slug(expr)}"
    if len(base) > 48:
        base = "ew_fused_" + hashlib.sha1(_expr_key(expr).encode()).hexdigest()[:10]
    name = f"{base}_f32_rows_{kinds}_{s.name}"
    lines = [f"    const float *a{k} = (const float *)in_ptrs[{k}];" for k in range(len(names))]
    lines += ["    float *y = (float *)out_ptrs[0];",
              "    int32_t o1, o0, i;",
              "    for (o1 = 0; o1 < R1; ++o1)",
              "    for (o0 = 0; o0 < R0; ++o0) {",
              "        float *yr = y + ((int64_t)o1 * R0 + o0) * L;"]
    for k, kind in enumerate(kinds):
        lines.append(f"        const float *r{k} = a{k} + (int64_t)o1 * s1_{k} "
                     f"+ (int64_t)o0 * s0_{k};")
        if kind == "b":
            lines.append(f"        const {s.vtype} d{k} = {s.dup(f'r{k}')};")
    lines += [f"        for (i = 0; i + {s.vw} <= L; i += {s.vw}) {s.store('yr + i', vec)};",
              f"        for (; i < L; ++i) yr[i] = (float)({scalar});",
              "    }"]
    params = rows_schema(len(names))
    source = kernel_source(name, "\n".join(lines), params=params)
    kernel = Kernel(name, source, ("math",) + used(helpers(v), source), isa=s.isa,
                    params=params)
    params = params.pack(R1=r1, R0=r0, L=length,
                         **{f"s{a}_{k}": st[1 - a] for k, (st, _) in enumerate(inputs)
                            for a in (1, 0)})
    return [Instr(kernel, names, [op.outputs[0]], params,
                  note=f"{s.label} element-wise: {r1 * r0!r} rows of {length!r}, {s.vw} per vector")]


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    if isa.core is None or isa.core.elementwise_vector is None:
        return "no vector cost figures for this level"
    vs = isa.vec("f32")
    if not applicable(op, graph, vs.elementwise, vs.math):
        return "not float32 rows of vectorisable operations"
    return None


@implements(*OP_TYPES, "FusedElementwise", requires="f32.elementwise", applies=_applies,
            cost=lambda op, graph, isa: elementwise_cycles(op, graph, isa.core.elementwise_vector) + 8,
            label=lambda isa: f"{isa.vec('f32').elementwise.name} element-wise")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    vs = isa.vec("f32")
    return lower_elementwise(op, graph, vs.elementwise, vs.math)
