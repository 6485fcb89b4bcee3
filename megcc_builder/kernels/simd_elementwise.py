"""NEON element-wise kernels: float32 rows (flat, or per channel), four elements per vector.

Why only NEON: GCC does not auto-vectorise float arithmetic for ARMv7 NEON (its vector unit
flushes denormals, so only -ffast-math lets the compiler use it), so the portable loops of
elementwise.py run one scalar VFP operation per element there. On x86 and AArch64 the C
compiler vectorises those loops itself.

Covered: float32 expressions (single ops or fused chains) over an output that collapses to
rows, where each input either walks like the output (possibly the same row every time) or
repeats one value per row (a scalar, or a per-channel value over H*W), built from Add,
Sub, Mul, Max, Min, Relu, Neg, Abs, Clip with constant bounds and LeakyRelu. The NEON max/min return NaN when an operand is
NaN, like megcc_maxf/megcc_minf of the portable code. Anything else keeps the portable
kernel. The last L % 4 elements of a row run the portable scalar expression.
"""
from __future__ import annotations

import hashlib
from typing import Optional, Sequence

from ..ir import Graph, Op
from .base import Instr, Kernel, c_float, kernel_source
from .elementwise import _expr_key, _expr_slug, broadcast_strides, collapse, op_expr, render
from .simd import Simd

_BINARY = {"Add": "vaddq_f32({0}, {1})", "Sub": "vsubq_f32({0}, {1})",
           "Mul": "vmulq_f32({0}, {1})", "Max": "vmaxq_f32({0}, {1})",
           "Min": "vminq_f32({0}, {1})"}
_UNARY = {"Relu": "vmaxq_f32({0}, vdupq_n_f32(0.0f))", "Neg": "vnegq_f32({0})",
          "Abs": "vabsq_f32({0})", "Identity": "{0}"}
# the IR op types whose (single-op) expressions this module may vectorise
OP_TYPES = sorted(set(_BINARY) | set(_UNARY) | {"Clip", "LeakyRelu", "Sum"})


def vector_code(expr, in_vars: Sequence[str]) -> Optional[str]:
    """The NEON expression (float32x4_t) of an expression tree, None if not covered."""
    kind = expr[0]
    if kind == "in":
        return in_vars[expr[1]]
    if kind == "const":
        return f"vdupq_n_f32({c_float(expr[1])})"
    kids = [vector_code(c, in_vars) for c in expr[1:]]
    if any(k is None for k in kids):
        return None
    if kind in _BINARY and len(kids) == 2:
        return _BINARY[kind].format(*kids)
    if kind in _UNARY and len(kids) == 1:
        return _UNARY[kind].format(*kids)
    if kind == "clip" and expr[2][0] == "const" and expr[3][0] == "const":
        lo, hi = float(expr[2][1]), float(expr[3][1])
        if lo != lo or hi != hi:
            return None  # NaN bounds: the portable semantics
        return f"vminq_f32(vmaxq_f32({kids[0]}, {kids[1]}), {kids[2]})"
    if kind == "leaky" and expr[2][0] == "const":
        x = kids[0]  # x >= 0 ? x : x * alpha (NaN compares false: NaN * alpha, as portable)
        return f"vbslq_f32(vcgeq_f32({x}, vdupq_n_f32(0.0f)), {x}, vmulq_f32({x}, {kids[1]}))"
    return None


def expression_of(op: Op):
    return op.attrs["expr"] if op.type == "FusedElementwise" else op_expr(op)


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


def applicable(op: Op, graph: Graph) -> bool:
    layout = row_layout(op, graph)
    if layout is None or all(kind == "b" for _, kind in layout[1]):
        return False
    return vector_code(expression_of(op), [f"x{k}" for k in range(len(layout[1]))]) is not None


def lower_elementwise(op: Op, graph: Graph, s: Simd):
    expr = expression_of(op)
    names = [i for i in op.inputs if i]
    (r1, r0, length), inputs = row_layout(op, graph)
    kinds = "".join(kind for _, kind in inputs)
    vec = vector_code(expr, [s.load(f"r{k} + i") if kind == "v" else f"d{k}"
                             for k, kind in enumerate(kinds)])
    scalar, _ = render(expr, [f"r{k}[i]" if kind == "v" else f"r{k}[0]"
                              for k, kind in enumerate(kinds)], ["float32"] * len(names))
    base = f"ew_{_expr_slug(expr)}"
    if len(base) > 48:
        base = "ew_fused_" + hashlib.sha1(_expr_key(expr).encode()).hexdigest()[:10]
    name = f"{base}_f32_rows_{kinds}_{s.name}"
    lines = [f"    const float *a{k} = (const float *)in_ptrs[{k}];" for k in range(len(names))]
    lines += ["    float *y = (float *)out_ptrs[0];",
              "    const int32_t R1 = p[0], R0 = p[1], L = p[2];  /* R1 x R0 rows of L */",
              "    int32_t o1, o0, i;",
              "    for (o1 = 0; o1 < R1; ++o1)",
              "    for (o0 = 0; o0 < R0; ++o0) {",
              "        float *yr = y + ((int64_t)o1 * R0 + o0) * L;"]
    for k, kind in enumerate(kinds):
        lines.append(f"        const float *r{k} = a{k} + (int64_t)o1 * p[{3 + 2 * k}] "
                     f"+ (int64_t)o0 * p[{4 + 2 * k}];")
        if kind == "b":
            lines.append(f"        const {s.vtype} d{k} = {s.dup(f'r{k}')};")
    lines += [f"        for (i = 0; i + {s.vw} <= L; i += {s.vw}) {s.store('yr + i', vec)};",
              f"        for (; i < L; ++i) yr[i] = (float)({scalar});",
              "    }"]
    kernel = Kernel(name, kernel_source(name, "\n".join(lines)), ("math",), isa=s.isa)
    params = [r1, r0, length] + [x for st, _ in inputs for x in st]
    return [Instr(kernel, names, [op.outputs[0]], params,
                  note=f"{s.label} element-wise: {r1 * r0} rows of {length}, {s.vw} per vector")]


def op_count(expr) -> int:
    """Operations per element (the cost model's measure of an expression)."""
    if expr[0] in ("in", "const"):
        return 0
    return 1 + sum(op_count(c) for c in expr[1:])
