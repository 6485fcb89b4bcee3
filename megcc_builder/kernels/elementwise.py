"""Element-wise kernels: one generated loop per (expression, dtypes, broadcast pattern).

Every unary/binary ONNX op, and every chain of them that the fusion pass merges, is an
`Elementwise` expression tree over the op's inputs. Broadcast strides are computed at
compile time and adjacent dimensions that move together are merged, so most layers
become a flat loop the C compiler vectorises; the rest get a nested loop whose rank is
part of the kernel name and whose extents/strides arrive in params.
"""
from __future__ import annotations

import hashlib
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..ir import Graph, Op, c_type
from .base import Instr, Kernel, c_float, kernel_source, lowers, numel

# Expression trees: ("in", k) | ("const", value) | (opname, child, ...)
# The C templates below use {0}, {1}, {2} for the children's C expressions.
FLOAT_OPS: Dict[str, str] = {
    "Add": "({0} + {1})", "Sub": "({0} - {1})", "Mul": "({0} * {1})", "Div": "({0} / {1})",
    "Pow": "megcc_powf({0}, {1})", "Max": "megcc_maxf({0}, {1})", "Min": "megcc_minf({0}, {1})",
    "Relu": "megcc_maxf({0}, 0.0f)", "Neg": "(-{0})", "Abs": "fabsf({0})",
    "Sigmoid": "megcc_sigmoidf({0})", "Tanh": "tanhf({0})", "Exp": "expf({0})",
    "Log": "logf({0})", "Sqrt": "sqrtf({0})", "Erf": "erff({0})", "Floor": "floorf({0})",
    "Ceil": "ceilf({0})", "Reciprocal": "(1.0f / {0})", "Sin": "sinf({0})", "Cos": "cosf({0})",
    "Tan": "tanf({0})", "Asin": "asinf({0})", "Acos": "acosf({0})", "Atan": "atanf({0})",
    "Sinh": "sinhf({0})", "Cosh": "coshf({0})", "Asinh": "asinhf({0})", "Acosh": "acoshf({0})",
    "Atanh": "atanhf({0})", "Round": "megcc_round_half_even({0})", "Sign": "megcc_signf({0})",
    "Softplus": "megcc_softplusf({0})", "Softsign": "({0} / (1.0f + fabsf({0})))",
    "Mod": "fmodf({0}, {1})", "FloorDiv": "floorf({0} / {1})",
    "Where": "({0} ? {1} : {2})", "Mish": "({0} * tanhf(megcc_softplusf({0})))",
    "HardSwish": "({0} * megcc_minf(megcc_maxf({0} + 3.0f, 0.0f), 6.0f) / 6.0f)",
    "Identity": "{0}",
}
INT_OPS: Dict[str, str] = {
    "Add": "({0} + {1})", "Sub": "({0} - {1})", "Mul": "({0} * {1})",
    "Div": "megcc_div_trunc({0}, {1})", "Max": "({0} > {1} ? {0} : {1})",
    "Min": "({0} < {1} ? {0} : {1})", "Neg": "(-{0})", "Abs": "({0} < 0 ? -{0} : {0})",
    "Relu": "({0} > 0 ? {0} : 0)", "Sign": "(({0} > 0) - ({0} < 0))",
    "Mod": "megcc_mod_floor({0}, {1})", "FloorDiv": "megcc_div_floor({0}, {1})",
    "Where": "({0} ? {1} : {2})", "Identity": "{0}",
}
COMPARE_OPS = {"Equal": "({0} == {1})", "Less": "({0} < {1})", "Greater": "({0} > {1})",
               "LessOrEqual": "({0} <= {1})", "GreaterOrEqual": "({0} >= {1})"}
BOOL_OPS = {"And": "({0} && {1})", "Or": "({0} || {1})", "Xor": "(!{0} != !{1})",
            "Not": "(!{0})"}

UNARY = {"Relu", "Neg", "Abs", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Erf", "Floor", "Ceil",
         "Reciprocal", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh",
         "Acosh", "Atanh", "Round", "Sign", "Softplus", "Softsign", "Mish", "HardSwish", "Not",
         "Identity"}
BINARY = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mod", "FloorDiv", "And", "Or",
          "Xor", *COMPARE_OPS}
FLOAT_TYPES = ("float32",)
INT_TYPES = ("int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64")

# Ops whose attributes become constants in the expression.
PARAMETRIC = {"LeakyRelu", "Elu", "Selu", "Celu", "ThresholdedRelu", "HardSigmoid", "Clip",
              "Gelu", "Shrink"}


def expr_inputs(expr) -> List[int]:
    if expr[0] == "in":
        return [expr[1]]
    if expr[0] == "const":
        return []
    return sorted({i for child in expr[1:] for i in expr_inputs(child)})


def _parametric_expr(op: Op, x) -> tuple:
    a = op.attrs
    if op.type == "LeakyRelu":
        return ("leaky", x, ("const", a.get("alpha", 0.01)))
    if op.type == "Elu":
        return ("elu", x, ("const", a.get("alpha", 1.0)))
    if op.type == "Celu":
        return ("celu", x, ("const", a.get("alpha", 1.0)))
    if op.type == "Selu":
        return ("selu", x, ("const", a.get("alpha", 1.67326319217681884765625)),
                ("const", a.get("gamma", 1.05070102214813232421875)))
    if op.type == "ThresholdedRelu":
        return ("thresholded", x, ("const", a.get("alpha", 1.0)))
    if op.type == "HardSigmoid":
        return ("hardsigmoid", x, ("const", a.get("alpha", 0.2)), ("const", a.get("beta", 0.5)))
    if op.type == "Gelu":
        return ("gelu_tanh" if a.get("approximate", "none") == "tanh" else "gelu", x)
    if op.type == "Shrink":
        return ("shrink", x, ("const", a.get("lambd", 0.5)), ("const", a.get("bias", 0.0)))
    if op.type == "Clip":  # bounds are folded into attrs by canonicalisation
        return ("clip", x, ("const", a.get("min", -np.inf)), ("const", a.get("max", np.inf)))
    raise KeyError(op.type)


PARAMETRIC_C = {
    "leaky": "({0} >= 0.0f ? {0} : {0} * {1})",
    "elu": "({0} >= 0.0f ? {0} : {1} * (expf({0}) - 1.0f))",
    "celu": "(megcc_maxf(0.0f, {0}) + megcc_minf(0.0f, {1} * (expf({0} / {1}) - 1.0f)))",
    "selu": "({2} * ({0} > 0.0f ? {0} : {1} * (expf({0}) - 1.0f)))",
    "thresholded": "({0} > {1} ? {0} : 0.0f)",
    "hardsigmoid": "megcc_maxf(0.0f, megcc_minf(1.0f, {1} * {0} + {2}))",
    "gelu": "(0.5f * {0} * (1.0f + erff({0} * 0.70710678118654752f)))",
    "gelu_tanh": "(0.5f * {0} * (1.0f + tanhf(0.7978845608028654f * ({0} + 0.044715f * {0} * {0} * {0}))))",
    "shrink": "({0} < -{1} ? {0} + {2} : ({0} > {1} ? {0} - {2} : 0.0f))",
    "clip": "megcc_minf(megcc_maxf({0}, {1}), {2})",
}


def op_expr(op: Op) -> tuple:
    """The expression tree of a single element-wise IR op over its inputs 0..n-1."""
    if op.type in PARAMETRIC:
        return _parametric_expr(op, ("in", 0))
    if op.type in ("Sum", "Mean", "Max", "Min") and len(op.inputs) != 2:
        expr = ("in", 0)
        name = "Add" if op.type in ("Sum", "Mean") else op.type
        for k in range(1, len(op.inputs)):
            expr = (name, expr, ("in", k))
        if op.type == "Mean":
            expr = ("Div", expr, ("const", float(len(op.inputs))))
        return expr
    if op.type == "Sum":
        return ("Add", ("in", 0), ("in", 1))
    if op.type == "Mean":
        return ("Div", ("Add", ("in", 0), ("in", 1)), ("const", 2.0))
    if op.type == "Where":
        return ("Where", ("in", 0), ("in", 1), ("in", 2))
    return (op.type,) + tuple(("in", k) for k in range(len(op.inputs)))


def is_elementwise(op: Op) -> bool:
    if op.type in ("Sum", "Mean", "Max", "Min", "Where"):
        return True
    return op.type in UNARY or op.type in BINARY or op.type in PARAMETRIC \
        or op.type in COMPARE_OPS or op.type in BOOL_OPS


def _category(dtype: str) -> str:
    if dtype in FLOAT_TYPES:
        return "float"
    if dtype == "bool":
        return "bool"
    if dtype in INT_TYPES:
        return "int"
    return "other"


def render(expr, in_vars: Sequence[str], in_dtypes: Sequence[str]) -> Tuple[str, str]:
    """C expression and its value category ('float', 'int', 'bool') for a tree."""
    kind = expr[0]
    if kind == "in":
        return in_vars[expr[1]], _category(in_dtypes[expr[1]])
    if kind == "const":
        return c_float(expr[1]), "float"
    children = [render(c, in_vars, in_dtypes) for c in expr[1:]]
    codes = [c for c, _ in children]
    cats = [k for _, k in children]
    if kind in COMPARE_OPS:
        return COMPARE_OPS[kind].format(*codes), "bool"
    if kind in BOOL_OPS:
        return BOOL_OPS[kind].format(*codes), "bool"
    if kind == "Where":
        return FLOAT_OPS["Where"].format(*codes), cats[1]
    if kind in PARAMETRIC_C:
        return PARAMETRIC_C[kind].format(*codes), "float"
    value_cats = set(cats)
    if value_cats <= {"int", "bool"} and kind in INT_OPS:
        return INT_OPS[kind].format(*codes), "int"
    if kind in FLOAT_OPS and value_cats <= {"float"}:
        return FLOAT_OPS[kind].format(*codes), "float"
    raise KeyError(f"{kind} on {'/'.join(sorted(value_cats))}")


def _expr_slug(expr) -> str:
    kind = expr[0]
    if kind == "in":
        return f"x{expr[1]}"
    if kind == "const":  # the value is part of the code, so it is part of the name
        text = repr(float(np.float32(expr[1]))).replace("-", "m").replace(".", "p")
        return "c" + text.replace("+", "").lower()
    return kind.lower() + "_" + "_".join(_expr_slug(c) for c in expr[1:])


def _expr_key(expr) -> str:
    return repr(expr)


# --- broadcasting ---------------------------------------------------------------------

def broadcast_strides(in_shape: Sequence[int], out_shape: Sequence[int]) -> List[int]:
    """Element strides of an input read at each output position (0 where broadcast)."""
    pad = len(out_shape) - len(in_shape)
    shape = [1] * pad + list(in_shape)
    strides, acc = [0] * len(out_shape), 1
    for d in range(len(out_shape) - 1, -1, -1):
        strides[d] = 0 if shape[d] == 1 and out_shape[d] != 1 else acc
        acc *= shape[d]
    return strides


def collapse(out_shape: Sequence[int], all_strides: List[List[int]]):
    """Merge neighbouring dimensions that every operand walks contiguously together."""
    dims = [d for d in out_shape]
    strides = [list(s) for s in all_strides]
    keep = [i for i, d in enumerate(dims) if d != 1]  # size-1 dims carry no information
    dims = [dims[i] for i in keep] or [1]
    strides = [[s[i] for i in keep] or [0] for s in strides]
    i = len(dims) - 1
    while i > 0:
        if all(s[i - 1] == s[i] * dims[i] for s in strides):
            for s in strides:
                s[i - 1] = s[i]
                del s[i]
            dims[i - 1] *= dims[i]
            del dims[i]
        i -= 1
    return dims, strides


def elementwise_instr(expr, in_names: List[str], out_name: str, graph: Graph,
                      note: str = "") -> Instr:
    out = graph.tensors[out_name]
    in_dtypes = [graph.tensors[n].dtype for n in in_names]
    dims, strides = collapse(out.shape, [broadcast_strides(graph.tensors[n].shape, out.shape)
                                         for n in in_names])
    rank = len(dims)
    # Per input: 'v' walks like the output, 's' is one scalar, 'b' is broadcast otherwise.
    total = numel(dims)
    kinds = []
    for s in strides:
        if all(x == 0 for x in s):
            kinds.append("s")
        elif rank == 1 and s[0] == 1:
            kinds.append("v")
        else:
            kinds.append("b")
    flat = all(k in "vs" for k in kinds)

    ctypes = [c_type(d) for d in in_dtypes]
    out_ct = c_type(out.dtype)
    if flat:
        in_vars = [f"a{k}[i]" if kind == "v" else f"s{k}" for k, kind in enumerate(kinds)]
    else:
        in_vars = [f"a{k}[o{k}]" for k in range(len(in_names))]
    try:
        code, cat = render(expr, in_vars, in_dtypes)
    except KeyError as exc:
        raise graph.error(f"element-wise {exc.args[0]} is not supported", None) from None
    if cat == "bool":
        code = f"(uint8_t)({code})"
    elif out.dtype in FLOAT_TYPES:
        code = f"(float)({code})"
    else:
        code = f"({out_ct})({code})"

    shape_tag = "flat_" + "".join(kinds) if flat else f"nd{rank}"
    dtype_tag = "_".join(dict.fromkeys(in_dtypes + [out.dtype]))
    base = f"ew_{_expr_slug(expr)}"
    if len(base) > 48:
        base = "ew_fused_" + hashlib.sha1(_expr_key(expr).encode()).hexdigest()[:10]
    name = f"{base}_{dtype_tag}_{shape_tag}"

    lines = [f"    const {ct} *a{k} = (const {ct} *)in_ptrs[{k}];" for k, ct in enumerate(ctypes)]
    lines.append(f"    {out_ct} *y = ({out_ct} *)out_ptrs[0];")
    if flat:
        lines += [f"    const {ctypes[k]} s{k} = a{k}[0];" for k, kind in enumerate(kinds)
                  if kind == "s"]
        lines += ["    int32_t i, n = p[0];", f"    for (i = 0; i < n; ++i) y[i] = {code};"]
        params = [total]
    else:
        # p = dims[rank], then strides[rank] for each input
        lines.append(f"    int32_t idx[{rank}] = {{0}};")
        lines.append("    int32_t d, i = 0, n = 1;")
        offs = ", ".join(f"o{k} = 0" for k in range(len(in_names)))
        lines.append(f"    int64_t {offs};")
        lines.append(f"    for (d = 0; d < {rank}; ++d) n *= p[d];")
        inner = rank - 1
        lines.append(f"    while (i < n) {{")
        lines.append(f"        int32_t j, m = p[{inner}];")
        lines.append(f"        for (j = 0; j < m; ++j, ++i) {{")
        lines.append(f"            y[i] = {code};")
        for k in range(len(in_names)):
            lines.append(f"            o{k} += p[{rank + k * rank + inner}];")
        lines.append("        }")
        for k in range(len(in_names)):
            lines.append(f"        o{k} -= (int64_t)m * p[{rank + k * rank + inner}];")
        lines.append(f"        for (d = {inner - 1}; d >= 0; --d) {{")
        for k in range(len(in_names)):
            lines.append(f"            o{k} += p[{rank} + {k * rank} + d];")
        lines.append("            if (++idx[d] < p[d]) break;")
        lines.append("            idx[d] = 0;")
        for k in range(len(in_names)):
            lines.append(f"            o{k} -= (int64_t)p[d] * p[{rank} + {k * rank} + d];")
        lines.append("        }")
        lines.append("    }")
        params = list(dims) + [x for s in strides for x in s]
    kernel = Kernel(name, kernel_source(name, "\n".join(lines)), ("math",))
    return Instr(kernel, list(in_names), [out_name], params, note=note)


@lowers(*sorted(UNARY | BINARY | PARAMETRIC | set(COMPARE_OPS) | set(BOOL_OPS)
                | {"Sum", "Mean", "Where"}))
def lower_elementwise(op: Op, graph: Graph):
    return [elementwise_instr(op_expr(op), list(op.inputs), op.outputs[0], graph)]


@lowers("FusedElementwise")
def lower_fused(op: Op, graph: Graph):
    return [elementwise_instr(op.attrs["expr"], list(op.inputs), op.outputs[0], graph,
                              note=f"fused: {op.attrs.get('chain', '')}")]
