"""float16 element-wise operations and activations on Armv8.2-A + FP16 (enable_ioc16):
8 halves per vector, in float16 arithmetic (`fadd/fmul/fmax/fmin v.8h`, `fdiv v.8h`).

Covered: single ops and fused chains over float16 tensors whose output collapses to at most
3-D rows (each input walking like the output, or repeating one value per row: a scalar or a
per-channel operand, the broadcasts of a bias or a scale), built from Add, Sub, Mul, Div,
Max, Min, Relu, Neg, Abs, Clip with constant bounds, HardSwish (x * clamp(x + 3, 0, 6) / 6
in float16), HardSigmoid, and Exp / Sigmoid / Tanh, which widen to float32 (`fcvtl`), run
the arm64-neon vector exp of codegen/vmath.py and narrow back: float16 has no range for
their intermediate values. The last L % 8 elements of a row run the same vector code on a
zero-padded copy.
"""
from __future__ import annotations

import hashlib
from typing import Optional, Sequence

from ...codegen.kernel import Instr, Kernel, kernel_source
from ...codegen.vmath import helpers, used
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .f16_clamp import f16_literal
from .generic import (_expr_key, _expr_slug, broadcast_strides, collapse, elementwise_cycles,
                      expression_of)
from .simd_f32 import rows_schema

OP_TYPES = sorted({"Add", "Sub", "Mul", "Div", "Max", "Min", "Relu", "Neg", "Abs", "Clip",
                   "HardSwish", "HardSigmoid", "Exp", "Sigmoid", "Tanh"})
WIDENED = ("Exp", "Sigmoid", "Tanh")  # computed in float32 lanes


def _const(expr) -> Optional[float]:
    return float(expr[1]) if expr[0] == "const" else None


def _c(x: float) -> str:
    return f"vdupq_n_f16({f16_literal(x)})"


def vector_code(expr, in_vars: Sequence[str]) -> Optional[str]:
    """The float16x8_t C expression of an expression tree, None if not covered."""
    kind = expr[0]
    if kind == "in":
        return in_vars[expr[1]]
    if kind == "const":
        return _c(expr[1])
    kids = [vector_code(c, in_vars) for c in expr[1:]]
    if any(k is None for k in kids):
        return None
    binary = {"Add": "vaddq_f16", "Sub": "vsubq_f16", "Mul": "vmulq_f16", "Div": "vdivq_f16",
              "Max": "vmaxq_f16", "Min": "vminq_f16"}
    if len(kids) == 2 and kind in binary:
        return f"{binary[kind]}({kids[0]}, {kids[1]})"
    if len(kids) == 1 and kind == "Identity":
        return kids[0]
    if len(kids) == 1 and kind == "Relu":
        return f"vmaxq_f16({kids[0]}, {_c(0.0)})"
    if len(kids) == 1 and kind in ("Neg", "Abs"):
        return f"v{kind.lower()}q_f16({kids[0]})"
    if len(kids) == 1 and kind in WIDENED:
        return f"megcc_neon64fp16_v{kind.lower()}({kids[0]})"
    if len(kids) == 1 and kind == "HardSwish":
        x = kids[0]
        return (f"vmulq_f16(vmulq_f16({x}, vminq_f16(vmaxq_f16(vaddq_f16({x}, {_c(3.0)}), "
                f"{_c(0.0)}), {_c(6.0)})), {_c(1.0 / 6.0)})")
    if kind == "clip" and len(expr) == 4 and _const(expr[2]) is not None \
            and _const(expr[3]) is not None:
        lo, hi = _const(expr[2]), _const(expr[3])
        if lo != lo or hi != hi:
            return None
        return f"vminq_f16(vmaxq_f16({kids[0]}, {_c(lo)}), {_c(hi)})"
    if kind == "hardsigmoid" and len(expr) == 4 and _const(expr[2]) is not None \
            and _const(expr[3]) is not None:
        a, b = _const(expr[2]), _const(expr[3])
        return (f"vminq_f16(vmaxq_f16(vfmaq_f16({_c(b)}, {kids[0]}, {_c(a)}), {_c(0.0)}), "
                f"{_c(1.0)})")
    return None


def _widened_helpers(f32_math) -> list:
    out = []
    for fn in ("exp", "sigmoid", "tanh"):
        f32 = f32_math.fn(fn)
        out.append((f"megcc_neon64fp16_v{fn}", f"""
static inline float16x8_t megcc_neon64fp16_v{fn}(float16x8_t x) {{  /* in float32 lanes */
    return vcombine_f16(vcvt_f16_f32({f32}(vcvt_f32_f16(vget_low_f16(x)))),
                        vcvt_f16_f32({f32}(vcvt_high_f32_f16(x))));
}}
"""))
    return out


def row_layout(op: Op, graph: Graph):
    """As simd_f32.row_layout, for float16 tensors."""
    names = [i for i in op.inputs if i]
    out = graph.tensors[op.outputs[0]]
    if out.dtype != "float16" or any(graph.tensors[n].dtype != "float16" for n in names):
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


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    layout = row_layout(op, graph)
    if layout is None:
        return "not float16 rows with per-row broadcasts"
    if all(kind == "b" for _, kind in layout[1]):
        return "every input a broadcast"
    if vector_code(expression_of(op), [f"x{k}" for k in range(len(layout[1]))]) is None:
        return "an operation without a float16 vector form"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # twice the float32 vector kernels' lanes
    return elementwise_cycles(op, graph, isa.core.elementwise_vector) / 2 + 8


@implements(*OP_TYPES, "FusedElementwise", dtypes=("float16",), requires="f16.elementwise",
            applies=_applies, cost=_cost, label="NEON fp16 element-wise")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    expr = expression_of(op)
    names = [i for i in op.inputs if i]
    (r1, r0, length), inputs = row_layout(op, graph)
    kinds = "".join(kind for _, kind in inputs)
    vec = vector_code(expr, [f"vld1q_f16(r{k} + i)" if kind == "v" else f"d{k}"
                             for k, kind in enumerate(kinds)])
    tail = vector_code(expr, [f"vld1q_f16(t{k})" if kind == "v" else f"d{k}"
                              for k, kind in enumerate(kinds)])
    base = f"ew_{_expr_slug(expr)}"
    if len(base) > 48:
        base = "ew_fused_" + hashlib.sha1(_expr_key(expr).encode()).hexdigest()[:10]
    name = f"{base}_f16_rows_{kinds}_neon64fp16"
    lines = [f"    const float16_t *a{k} = (const float16_t *)in_ptrs[{k}];"
             for k in range(len(names))]
    lines += ["    float16_t *y = (float16_t *)out_ptrs[0];",
              "    int32_t o1, o0, i, e;",
              "    for (o1 = 0; o1 < R1; ++o1)",
              "    for (o0 = 0; o0 < R0; ++o0) {",
              "        float16_t *yr = y + ((int64_t)o1 * R0 + o0) * L;"]
    for k, kind in enumerate(kinds):
        lines.append(f"        const float16_t *r{k} = a{k} + (int64_t)o1 * s1_{k} "
                     f"+ (int64_t)o0 * s0_{k};")
        if kind == "b":
            lines.append(f"        const float16x8_t d{k} = vld1q_dup_f16(r{k});")
    lines.append(f"        for (i = 0; i + 8 <= L; i += 8) vst1q_f16(yr + i, {vec});")
    tails = [f"float16_t t{k}[8] = {{0}};" for k, kind in enumerate(kinds) if kind == "v"]
    fills = [f"t{k}[e] = r{k}[i + e];" for k, kind in enumerate(kinds) if kind == "v"]
    lines += ["        if (i < L) {",
              f"            float16_t o[8]; {' '.join(tails)}",
              f"            for (e = 0; i + e < L; ++e) {{ {' '.join(fills)} }}",
              f"            vst1q_f16(o, {tail});",
              "            for (e = 0; i + e < L; ++e) yr[i + e] = o[e];",
              "        }",
              "    }"]
    params = rows_schema(len(names))
    source = kernel_source(name, "\n".join(lines), params=params)
    f32_math = isa.vec("f32").math
    wrappers = [w for w in _widened_helpers(f32_math) if w[0] in source]
    support = used(helpers(f32_math), source + "".join(src for _, src in wrappers))
    kernel = Kernel(name, source, ("math",) + support + tuple(wrappers), isa="neon64fp16",
                    params=params)
    params = params.pack(R1=r1, R0=r0, L=length,
                         **{f"s{a}_{k}": st[1 - a] for k, (st, _) in enumerate(inputs)
                            for a in (1, 0)})
    return [Instr(kernel, names, [op.outputs[0]], params,
                  note=f"float16 element-wise: {r1 * r0!r} rows of {length!r}, 8 per vector")]
