"""The element-wise arithmetic of the gate math, spelled once and rendered either as scalar
C (one float per step) or through a vector vocabulary (VW floats per step, codegen/vmath.py
for sigmoid/tanh/exp/softplus).

A gate-math body is written as a list of statements over named values; `run(n, body)` makes
the loop over j = 0 .. n-1: for a vector vocabulary whole vectors first, then the last
n % VW elements with the scalar spelling (the same formulas, libm's functions).
"""
from __future__ import annotations

from typing import Callable, List, Optional

from ...codegen.kernel import c_float
from ...codegen.vector import VecOps
from .problem import Activation


class Scalar:
    vtype = "float"

    def c(self, x: float) -> str:
        return c_float(x)

    def load(self, base: str) -> str:
        return f"({base})[j]"

    def store(self, base: str, val: str) -> str:
        return f"({base})[j] = {val};"

    def add(self, a, b):
        return f"({a} + {b})"

    def sub(self, a, b):
        return f"({a} - {b})"

    def mul(self, a, b):
        return f"({a} * {b})"

    def fma(self, a, b, c):  # a * b + c
        return f"({a} * {b} + {c})"

    def clamp(self, x, lo, hi):
        return f"({x} < {lo} ? {lo} : ({x} > {hi} ? {hi} : {x}))"

    def act(self, a: Activation, x: str) -> str:
        """`x` must be a name (some activations use it twice)."""
        al, be = c_float(a.alpha), c_float(a.beta)
        return {
            "Sigmoid": f"megcc_sigmoidf({x})",
            "Tanh": f"tanhf({x})",
            "Relu": f"({x} > 0.0f ? {x} : 0.0f)",
            "Affine": f"({al} * {x} + {be})",
            "LeakyRelu": f"({x} >= 0.0f ? {x} : {al} * {x})",
            "ThresholdedRelu": f"({x} > {al} ? {x} : 0.0f)",
            "ScaledTanh": f"({al} * tanhf({be} * {x}))",
            "HardSigmoid": f"fminf(fmaxf({al} * {x} + {be}, 0.0f), 1.0f)",
            "Elu": f"({x} >= 0.0f ? {x} : {al} * (expf({x}) - 1.0f))",
            "Softsign": f"({x} / (1.0f + fabsf({x})))",
            "Softplus": f"megcc_softplusf({x})",
        }[a.name]


class Vector:
    def __init__(self, v: VecOps):
        self.v = v
        self.vtype = v.vtype
        self.vw = v.simd.vw

    def c(self, x: float) -> str:
        return self.v.c(c_float(x))

    def load(self, base: str) -> str:
        return self.v.simd.load(f"({base}) + j")

    def store(self, base: str, val: str) -> str:
        return self.v.simd.store(f"({base}) + j", val) + ";"

    def add(self, a, b):
        return self.v.add(a, b)

    def sub(self, a, b):
        return self.v.sub(a, b)

    def mul(self, a, b):
        return self.v.mul(a, b)

    def fma(self, a, b, c):
        return self.v.fma(a, b, c)

    def clamp(self, x, lo, hi):
        return self.v.clamp(x, lo, hi)

    def act(self, a: Activation, x: str) -> str:
        v = self.v
        zero, one = v.c("0.0f"), v.c("1.0f")
        al, be = self.c(a.alpha), self.c(a.beta)
        if a.name == "Sigmoid":
            return f"{v.fn('sigmoid')}({x})"
        if a.name == "Tanh":
            return f"{v.fn('tanh')}({x})"
        if a.name == "Relu":
            return v.relu(x)
        if a.name == "Affine":
            return v.fma(x, al, be)
        if a.name == "LeakyRelu":
            return v.select(v.ge(x, zero), x, v.mul(x, al))
        if a.name == "ThresholdedRelu":
            return v.select(v.gt(x, al), x, zero)
        if a.name == "ScaledTanh":
            return v.mul(al, f"{v.fn('tanh')}({v.mul(x, be)})")
        if a.name == "HardSigmoid":
            return v.clamp(v.fma(x, al, be), zero, one)
        if a.name == "Elu":
            return v.select(v.ge(x, zero), x, v.mul(al, v.sub(f"{v.fn('exp')}({x})", one)))
        if a.name == "Softsign":
            return v.div(x, v.add(one, v.abs(x)))
        if a.name == "Softplus":
            return f"megcc_{v.name}_vsoftplus({x})"
        raise KeyError(a.name)


Body = Callable[[object], List[str]]


def run(n: str, body: Body, vec: Optional[Vector], indent: str = "        ") -> str:
    """C for `body` over j in [0, n): vectors first when there is a vocabulary."""
    def block(lanes) -> str:
        return "".join(f"{indent}    {line}\n" for line in body(lanes))

    out = f"{indent}j = 0;\n"
    if vec is not None:
        out += f"{indent}for (; j + {vec.vw} <= {n}; j += {vec.vw}) {{\n{block(vec)}{indent}}}\n"
    out += f"{indent}for (; j < {n}; ++j) {{\n{block(Scalar())}{indent}}}\n"
    return out
