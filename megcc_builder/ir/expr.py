"""The element-wise expression language: which ops are element-wise, and each such op as
an expression tree over its inputs.

An expression tree is ("in", k) (input k of the op), ("const", value), or
(kind, child, ...) where kind is an op type (Add, Relu, ...) or one of the parametric
kinds below (leaky, clip, ...) whose constants are children. The fusion pass composes
trees into one (FusedElementwise, a conv's activation epilogue); the backends render them
(kernels/elementwise/generic.py renders C). Nothing here knows about C.
"""
from __future__ import annotations

from typing import List

import numpy as np

from .graph import Op

UNARY = {"Relu", "Neg", "Abs", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Erf", "Floor", "Ceil",
         "Reciprocal", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh",
         "Acosh", "Atanh", "Round", "Sign", "Softplus", "Softsign", "Mish", "HardSwish", "Not",
         "Identity"}
# Comparisons (bool results) and logical ops (bool operands).
COMPARE = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"}
LOGICAL = {"And", "Or", "Xor", "Not"}
# FloorDiv is no ONNX op: an expression kind the backends render (floor of a quotient).
BINARY = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mod", "FloorDiv", "And", "Or",
          "Xor", *COMPARE}
# Element-wise ops that are never fused into float epilogues (integer or predicate ops).
OTHER_ELEMENTWISE = {"IsNaN", "IsInf", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
                     "BitwiseNot"}

# Ops whose attributes become constants in the expression.
PARAMETRIC = {"LeakyRelu", "Elu", "Selu", "Celu", "ThresholdedRelu", "HardSigmoid", "Clip",
              "Gelu", "Shrink", "Swish"}

# Variadic ops (Sum, Mean, Max, Min take any number of inputs) and the ternary Where.
VARIADIC = {"Sum", "Mean", "Max", "Min", "Where"}


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
    if op.type == "Swish":
        return ("swish", x, ("const", a.get("alpha", 1.0)))
    if op.type == "Clip":
        # Constant bounds are folded into attrs by canonicalisation; run-time bounds stay
        # inputs (1 = min, 2 = max, in that order among the op's inputs).
        k = 1
        bounds = []
        for key, default in (("min", -np.inf), ("max", np.inf)):
            if a.get(f"_{key}_input"):
                bounds.append(("in", k))
                k += 1
            else:
                value = a.get(key, default)
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    from .graph import CompileError  # a corrupt file (fuzzer finding)

                    raise CompileError(f"attribute '{key}' of Clip must be a number, not "
                                       f"{type(value).__name__}", node=op.name)
                bounds.append(("const", value))
        return ("clip", x, *bounds)
    raise KeyError(op.type)


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
    if op.type == "Mod" and int(op.attrs.get("fmod", 0)):
        return ("Fmod", ("in", 0), ("in", 1))
    if op.type == "IsInf":
        pos, neg = int(op.attrs.get("detect_positive", 1)), int(op.attrs.get("detect_negative", 1))
        kind = {(1, 1): "both", (1, 0): "pos", (0, 1): "neg", (0, 0): "none"}[(pos, neg)]
        return (f"isinf_{kind}", ("in", 0))
    if op.type == "BitShift":
        d = op.attrs.get("direction", "LEFT")
        return ("BitShiftLeft" if d == "LEFT" else "BitShiftRight", ("in", 0), ("in", 1))
    return (op.type,) + tuple(("in", k) for k in range(len(op.inputs)))


def is_elementwise(op: Op) -> bool:
    return op.type in VARIADIC or op.type in UNARY or op.type in BINARY \
        or op.type in PARAMETRIC or op.type in COMPARE or op.type in LOGICAL \
        or op.type in OTHER_ELEMENTWISE
