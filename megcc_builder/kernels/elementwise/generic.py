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

from ...codegen.kernel import Instr, c_float, make_kernel, numel
from ...codegen.parallel import range_parts, split_kernel
from ...codegen.params import i32, schema, table
from ...ir import Graph, Op, c_type
from ...ir.expr import BINARY, OTHER_ELEMENTWISE, PARAMETRIC, UNARY, op_expr
from ...isa import IsaSpec
from ..registry import implements
from ...ir.symbolic import known, same


# Expression trees (ir/expr.py): ("in", k) | ("const", value) | (opname, child, ...)
# The C templates below use {0}, {1}, {2} for the children's C expressions. Value
# categories: 'float' (float32 arithmetic; float16 inputs are widened to it), 'double'
# (float64), 'int' (every integer type, C's promotions), 'bool'.
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
    "Mod": "megcc_mod_floorf({0}, {1})", "Fmod": "fmodf({0}, {1})", "FloorDiv": "floorf({0} / {1})",
    "Where": "({0} ? {1} : {2})", "Mish": "({0} * tanhf(megcc_softplusf({0})))",
    "HardSwish": "({0} * megcc_minf(megcc_maxf({0} + 3.0f, 0.0f), 6.0f) / 6.0f)",
    "Identity": "{0}",
}
INT_OPS: Dict[str, str] = {
    "Add": "({0} + {1})", "Sub": "({0} - {1})", "Mul": "({0} * {1})",
    "Div": "megcc_div_trunc({0}, {1})", "Max": "({0} > {1} ? {0} : {1})",
    "Min": "({0} < {1} ? {0} : {1})", "Neg": "(-{0})", "Abs": "({0} < 0 ? -{0} : {0})",
    "Relu": "({0} > 0 ? {0} : 0)", "Sign": "(({0} > 0) - ({0} < 0))",
    "Mod": "megcc_mod_floor({0}, {1})", "Fmod": "megcc_div_rem({0}, {1})",
    "FloorDiv": "megcc_div_floor({0}, {1})", "Pow": "megcc_powi({0}, {1})",
    "Where": "({0} ? {1} : {2})", "Identity": "{0}",
    "BitShiftLeft": "megcc_shl({0}, {1})", "BitShiftRight": "megcc_shr({0}, {1})",
    "BitwiseAnd": "({0} & {1})", "BitwiseOr": "({0} | {1})", "BitwiseXor": "({0} ^ {1})",
    "BitwiseNot": "(~{0})",
}
COMPARE_OPS = {"Equal": "({0} == {1})", "Less": "({0} < {1})", "Greater": "({0} > {1})",
               "LessOrEqual": "({0} <= {1})", "GreaterOrEqual": "({0} >= {1})"}
BOOL_OPS = {"And": "({0} && {1})", "Or": "({0} || {1})", "Xor": "(!{0} != !{1})",
            "Not": "(!{0})"}
# Float predicates (bool results).
FLOAT_TESTS = {"IsNaN": "({0} != {0})", "isinf_both": "({0} == INFINITY || {0} == -INFINITY)",
               "isinf_pos": "({0} == INFINITY)", "isinf_neg": "({0} == -INFINITY)",
               "isinf_none": "0"}

FLOAT_TYPES = ("float32", "float16", "float64")
INT_TYPES = ("int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64")

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
    "swish": "({0} * megcc_sigmoidf({1} * {0}))",
}
INT_PARAMETRIC_C = {
    "clip": "({0} < {1} ? {1} : ({0} > {2} ? {2} : {0}))",
    "shrink": "({0} < -{1} ? {0} + {2} : ({0} > {1} ? {0} - {2} : 0))",
}

_LIBM = ("fabs|exp|log|sqrt|erf|floor|ceil|sin|cos|tan|asin|acos|atan|sinh|cosh|tanh|asinh|"
         "acosh|atanh|fmod|pow|log1p")


def to_double(template: str) -> str:
    """The float32 C template as float64: libm without the f suffix, double helpers."""
    import re

    t = re.sub(r"\b(" + _LIBM + r")f\(", r"\1(", template)
    t = re.sub(r"\bmegcc_(maxf|minf|sigmoidf|softplusf|signf|powf|mod_floorf)\(",
               lambda m: f"megcc_{m.group(1)[:-1]}d(", t)
    t = t.replace("megcc_round_half_even(", "megcc_round_half_even_d(")
    return re.sub(r"(\d\.\d*)f\b", r"\1", t)


def _category(dtype: str) -> str:
    if dtype in ("float32", "float16"):
        return "float"
    if dtype == "float64":
        return "double"
    if dtype == "bool":
        return "bool"
    if dtype in INT_TYPES:
        return "int"
    return "other"


def _int_const(value) -> str:
    """A constant in integer context: an integer literal when integral, else a double."""
    v = float(value)
    if v != v:
        return "NAN"
    if v in (float("inf"), float("-inf")):
        return "INFINITY" if v > 0 else "(-INFINITY)"
    if v.is_integer() and abs(v) < 2 ** 62:
        return f"INT64_C({int(v)})"
    return repr(v)


def render(expr, in_vars: Sequence[str], in_dtypes: Sequence[str]) -> Tuple[str, str]:
    """C expression and its value category ('float', 'double', 'int', 'bool') for a tree."""
    kind = expr[0]
    if kind == "in":
        var, dt = in_vars[expr[1]], in_dtypes[expr[1]]
        if dt == "float16":
            return f"megcc_f16_to_f32({var})", "float"
        return var, _category(dt)
    if kind == "const":
        return c_float(expr[1]), "const"
    children = [render(c, in_vars, in_dtypes) for c in expr[1:]]
    cats = [k for _, k in children]
    value_cats = {c for c in cats if c != "const"}
    if kind in ("clip", "shrink") and value_cats <= {"int"} and cats[0] == "int":
        codes = [code if cat != "const" else _int_const(c[1])
                 for (code, cat), c in zip(children, expr[1:])]
        if kind == "clip":
            x, lo, hi = codes
            if lo == "(-INFINITY)":
                lo = x
            if hi == "INFINITY":
                hi = x
            return INT_PARAMETRIC_C["clip"].format(x, lo, hi), "int"
        return INT_PARAMETRIC_C[kind].format(*codes), "int"
    codes = [c for c, _ in children]
    if "double" in value_cats:
        work = "double"
    elif "float" in value_cats:
        work = "float"
    elif value_cats <= {"int", "bool"} and value_cats:
        work = "int"
    else:
        work = "float"
    if kind in COMPARE_OPS:
        return COMPARE_OPS[kind].format(*codes), "bool"
    if kind in BOOL_OPS:
        return BOOL_OPS[kind].format(*codes), "bool"
    if kind in FLOAT_TESTS:
        if work == "int":
            return "0", "bool"  # integers are never NaN or infinite
        return FLOAT_TESTS[kind].format(*codes), "bool"
    if kind == "Where":
        out_cats = {cats[1], cats[2]} - {"const"}
        return FLOAT_OPS["Where"].format(*codes), (out_cats.pop() if len(out_cats) == 1
                                                   else work)
    if kind == "Pow" and cats[0] == "int" and work != "int":
        # integer base, float exponent: computed in double, the output keeps the base type
        return f"pow((double){codes[0]}, (double){codes[1]})", "double"
    if kind in PARAMETRIC_C:
        if work == "int":
            raise KeyError(f"{kind} on int")
        t = PARAMETRIC_C[kind]
        return (to_double(t) if work == "double" else t).format(*codes), work
    if work == "int" and kind in INT_OPS:
        return INT_OPS[kind].format(*codes), "int"
    if work in ("float", "double") and kind in FLOAT_OPS:
        t = FLOAT_OPS[kind]
        return (to_double(t) if work == "double" else t).format(*codes), work
    raise KeyError(f"{kind} on {'/'.join(sorted(value_cats)) or 'constants'}")


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
        # 0 wherever the input extent is 1 (whatever the output's: an extent-1 output walks
        # index 0 only), so a symbolic output extent gives the strides a static one does
        strides[d] = 0 if known(shape[d], 1) else acc
        acc *= shape[d]
    return strides


def collapse(out_shape: Sequence[int], all_strides: List[List[int]]):
    """Merge neighbouring dimensions that every operand walks contiguously together."""
    dims = [d for d in out_shape]
    strides = [list(s) for s in all_strides]
    keep = [i for i, d in enumerate(dims) if not known(d, 1)]  # size-1 dims carry nothing
    dims = [dims[i] for i in keep] or [1]
    strides = [[s[i] for i in keep] or [0] for s in strides]
    i = len(dims) - 1
    while i > 0:
        if all(same(s[i - 1], s[i] * dims[i]) for s in strides):  # for every shape
            for s in strides:
                s[i - 1] = s[i]
                del s[i]
            dims[i - 1] *= dims[i]
            del dims[i]
        i -= 1
    return dims, strides


def elementwise_instr(expr, in_names: List[str], out_name: str, graph: Graph,
                      note: str = "", op: Op = None) -> Instr:
    out = graph.tensors[out_name]
    in_dtypes = [graph.tensors[n].dtype for n in in_names]
    dims, strides = collapse(out.shape, [broadcast_strides(graph.tensors[n].shape, out.shape)
                                         for n in in_names])
    rank = len(dims)
    # Per input: 'v' walks like the output, 's' is one scalar, 'b' is broadcast otherwise.
    total = numel(dims)
    kinds = []
    for s in strides:
        if all(known(x, 0) for x in s):
            kinds.append("s")
        elif rank == 1 and known(s[0], 1):
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
    for dt in in_dtypes + [out.dtype]:
        if _category(dt) == "other":
            raise graph.error(f"element-wise {expr[0]} on {dt} is not supported", op)
    try:
        code, cat = render(expr, in_vars, in_dtypes)
    except KeyError as exc:
        raise graph.error(f"element-wise {exc.args[0]} is not supported", op) from None
    if out.dtype == "bool":
        code = f"(uint8_t)(({code}) != 0)" if cat != "bool" else f"(uint8_t)({code})"
    elif out.dtype == "float16":
        code = f"megcc_f32_to_f16((float)({code}))"
    elif cat == "double" and out.dtype in INT_TYPES:
        code = f"megcc_d2i_{out.dtype}({code})"
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
    if flat:  # element ranges on the network's threads (each element computed alike)
        lines += [f"    const {ctypes[k]} s{k} = a{k}[0];" for k, kind in enumerate(kinds)
                  if kind == "s"]
        lines += ["    const int32_t i0 = (int32_t)((int64_t)n * part / parts),",
                  "                  i1 = (int32_t)((int64_t)n * (part + 1) / parts);",
                  "    int32_t i;", f"    for (i = i0; i < i1; ++i) y[i] = {code};"]
        schema_ = schema(i32("n", "elements"))
        params = schema_.pack(n=total)
        kernel = split_kernel(name, "\n".join(lines), range_parts("n"), schema_, ("math",))
        return Instr(kernel, list(in_names), [out_name], params, note=note)
    else:
        schema_ = schema(table("dims", rank, "output extents (merged)"),
                         *[table(f"st{k}", rank, f"input {k} element strides (0: broadcast)")
                           for k in range(len(in_names))])
        lines.append(f"    int32_t idx[{rank}] = {{0}};")
        lines.append("    int32_t d, i = 0, n = 1;")
        offs = ", ".join(f"o{k} = 0" for k in range(len(in_names)))
        lines.append(f"    int64_t {offs};")
        lines.append(f"    for (d = 0; d < {rank}; ++d) n *= dims[d];")
        inner = rank - 1
        lines.append(f"    while (i < n) {{")
        lines.append(f"        int32_t j, m = dims[{inner}];")
        lines.append(f"        for (j = 0; j < m; ++j, ++i) {{")
        lines.append(f"            y[i] = {code};")
        for k in range(len(in_names)):
            lines.append(f"            o{k} += st{k}[{inner}];")
        lines.append("        }")
        for k in range(len(in_names)):
            lines.append(f"        o{k} -= (int64_t)m * st{k}[{inner}];")
        lines.append(f"        for (d = {inner - 1}; d >= 0; --d) {{")
        for k in range(len(in_names)):
            lines.append(f"            o{k} += st{k}[d];")
        lines.append("            if (++idx[d] < dims[d]) break;")
        lines.append("            idx[d] = 0;")
        for k in range(len(in_names)):
            lines.append(f"            o{k} -= (int64_t)dims[d] * st{k}[d];")
        lines.append("        }")
        lines.append("    }")
        params = schema_.pack(dims=dims, **{f"st{k}": st for k, st in enumerate(strides)})
    kernel = make_kernel(name, "\n".join(lines), schema_, ("math",))
    return Instr(kernel, list(in_names), [out_name], params, note=note)


# (Identity is in the expression language for fused chains, but alone it is a view:
# data/views.py)
@implements(*sorted((UNARY | BINARY | PARAMETRIC | set(COMPARE_OPS) | set(BOOL_OPS)
                     | OTHER_ELEMENTWISE | {"Sum", "Mean", "Where"}) - {"Identity"}),
            cost=lambda op, graph, isa: portable_cost(op, graph, isa))
def lower_elementwise(op: Op, graph: Graph):
    return [elementwise_instr(op_expr(op), [i for i in op.inputs if i], op.outputs[0], graph,
                              op=op)]


@implements("FusedElementwise", cost=lambda op, graph, isa: portable_cost(op, graph, isa))
def lower_fused(op: Op, graph: Graph):
    return [elementwise_instr(op.attrs["expr"], list(op.inputs), op.outputs[0], graph,
                              note=f"fused: {op.attrs.get('chain', '')}", op=op)]


# --- the cost model's measure of an expression (registry.lower) ---------------------------

# the expression kinds that call libm in the portable code (what the vector code saves)
TRANSCENDENTAL = {"Exp", "Sigmoid", "Tanh", "Softplus", "swish", "elu", "selu", "Mish",
                  "gelu_tanh"}


def expression_of(op: Op):
    return op.attrs["expr"] if op.type == "FusedElementwise" else op_expr(op)


def op_count(expr, transcendental: bool = False) -> int:
    """Operations per element (the cost model's measure of an expression); with
    transcendental=True only the libm-calling ones (TRANSCENDENTAL)."""
    if expr[0] in ("in", "const"):
        return 0
    own = 1 if not transcendental or expr[0] in TRANSCENDENTAL else 0
    return own + sum(op_count(c, transcendental) for c in expr[1:])


def elementwise_cycles(op: Op, graph: Graph, per_element) -> float:
    """Cycles of an element-wise op given (cheap op, libm call) cycles per element."""
    expr = expression_of(op)
    heavy = op_count(expr, transcendental=True)
    cheap = max(1, op_count(expr)) - heavy
    return graph.tensors[op.outputs[0]].numel * (cheap * per_element[0] + heavy * per_element[1])


def portable_cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    return elementwise_cycles(op, graph, isa.core.elementwise_portable)
