"""Dynamic plans: the part of a compiled plan that is evaluated when input shapes change.

docs/dynamic-shapes.md is the contract; the compiler fills a `DynamicPlan` (symbols, integer
expressions, what each expression sets) and `emit/model_blob.py` serialises it; the runtime
(`runtime/src/dynamic.c`) evaluates it at run time. This module is the Python twin of the
runtime's evaluator and arena placement, so tests and `megcc inspect` can compute exactly
what the device will.

An expression is a short program for a stack machine over signed 64-bit integers, stored as
u32 words in reverse Polish order: `W 2 + 2 //` is (W + 2) // 2. Opcodes below; `CONST`
is followed by one word (an i32 value), `SYM` by one word (a symbol index).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

# opcodes (u32)
CONST, SYM, ADD, SUB, MUL, FLOORDIV, MOD, MIN, MAX, EQ, LE, LT, AND = range(1, 14)
OPCODE_NAMES = {CONST: "const", SYM: "sym", ADD: "+", SUB: "-", MUL: "*", FLOORDIV: "//",
                MOD: "%", MIN: "min", MAX: "max", EQ: "==", LE: "<=", LT: "<", AND: "and"}
BINARY = {ADD, SUB, MUL, FLOORDIV, MOD, MIN, MAX, EQ, LE, LT, AND}

MAX_EXPR_WORDS = 256   # longest expression program the runtime accepts
MAX_STACK = 32         # deepest evaluation stack
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1

Expr = Tuple[int, ...]  # u32 words


class EvalError(ValueError):
    """An expression that cannot be evaluated (overflow, division by a non-positive value,
    malformed program): the runtime's MEGCC_ERR_INVALID_ARG / MEGCC_ERR_CORRUPT."""


def evaluate(expr: Sequence[int], values: Sequence[int]) -> int:
    """Value of one expression for the symbol values `values` (what dynamic.c computes)."""
    stack: List[int] = []
    i = 0
    while i < len(expr):
        op = expr[i]
        if op == CONST:
            if i + 1 >= len(expr):
                raise EvalError("CONST without its value")
            v = expr[i + 1]
            stack.append(v - (1 << 32) if v >= 1 << 31 else v)
            i += 2
        elif op == SYM:
            if i + 1 >= len(expr) or expr[i + 1] >= len(values):
                raise EvalError("SYM names no symbol")
            stack.append(values[expr[i + 1]])
            i += 2
        elif op in BINARY:
            if len(stack) < 2:
                raise EvalError("stack underflow")
            b, a = stack.pop(), stack.pop()
            stack.append(_apply(op, a, b))
            i += 1
        else:
            raise EvalError(f"unknown opcode {op}")
        if len(stack) > MAX_STACK:
            raise EvalError("stack overflow")
    if len(stack) != 1:
        raise EvalError("expression leaves no single value")
    return stack[0]


def _apply(op: int, a: int, b: int) -> int:
    if op in (FLOORDIV, MOD) and b <= 0:
        raise EvalError("division by a value <= 0")
    r = {ADD: lambda: a + b, SUB: lambda: a - b, MUL: lambda: a * b,
         FLOORDIV: lambda: a // b, MOD: lambda: a % b, MIN: lambda: min(a, b),
         MAX: lambda: max(a, b), EQ: lambda: int(a == b), LE: lambda: int(a <= b),
         LT: lambda: int(a < b), AND: lambda: int(bool(a) and bool(b))}[op]()
    if not I64_MIN <= r <= I64_MAX:
        raise EvalError("integer overflow")
    return r


@dataclass(frozen=True)
class Symbol:
    """A dimension that is only known at run time. It is *defined* by one input dimension
    (input `input`, axis `axis`, both indices into the plan's inputs); every other input
    dimension that must equal it is a guard."""
    name: str
    min: int
    max: int
    input: int
    axis: int


VALUE_INPUT = 0xFFFFFFFF  # Symbol.input of a value symbol (defined by an instruction)
VALUE_SIZE = 20          # bytes of a Value record
# Symbol.axis of a value symbol: 0 a count (stands at its cap until defined), VALUE_SHAPE a
# computed shape extent (stands at its min; what it shapes is placed at byte caps)
VALUE_SHAPE = 1


@dataclass(frozen=True)
class Value:
    """What defines a *value symbol* (docs/dynamic-shapes.md, "Value symbols"): element
    `element` (int32 or int64) of tensor `tensor`, written by instruction `instr` (an
    output count, a computed shape). Before that instruction has run the symbol stands at
    its *cap*: the value of expression `bound` (of input symbols only) clamped into the
    symbol's [min, max]; every size and the arena placement use the cap, and the runtime
    refuses a run-time value outside [min, cap]."""
    symbol: int
    instr: int
    tensor: int
    element: int
    bound: int  # expression index


@dataclass(frozen=True)
class Buffer:
    """One arena buffer the runtime places when the shapes are set: its size in bytes, the
    instruction interval it is live over (first = -1 for graph inputs; last = n_instrs for
    graph outputs) and the arena tensors stored in it (several when computed in place)."""
    size: int  # expression index
    first: int
    last: int
    members: Tuple[int, ...]  # tensor indices (arena storage)


@dataclass
class DynamicPlan:
    symbols: List[Symbol] = field(default_factory=list)
    exprs: List[Expr] = field(default_factory=list)  # deduplicated; referenced by index
    dims: List[Tuple[int, int, int]] = field(default_factory=list)      # (tensor, axis, expr)
    view_offsets: List[Tuple[int, int]] = field(default_factory=list)   # (view tensor, expr)
    params: List[Tuple[int, int, int]] = field(default_factory=list)    # (instr, param, expr)
    guards: List[Tuple[int, str]] = field(default_factory=list)         # (expr != 0, message)
    buffers: List[Buffer] = field(default_factory=list)
    values: List[Value] = field(default_factory=list)  # by (instr, symbol)

    def expr_index(self, expr: Expr) -> int:
        """Index of `expr` in the pool, adding it once (deterministic: first-use order)."""
        for i, e in enumerate(self.exprs):
            if e == expr:
                return i
        self.exprs.append(tuple(expr))
        return len(self.exprs) - 1


ARENA_ALIGN = 64


def _align(n: int) -> int:
    return (n + ARENA_ALIGN - 1) // ARENA_ALIGN * ARENA_ALIGN


def place_buffers(sizes: Sequence[int], buffers: Sequence[Buffer]) -> Tuple[List[int], int]:
    """Arena offsets of the buffers and the arena size: the runtime's placement, exactly.

    Greedy by size: buffers sorted by (aligned size descending, first ascending, index
    ascending); each goes at the lowest 64-aligned offset clear of every already placed
    buffer whose live interval [first, last] intersects its own (first fit, scanning the
    placed ones by increasing offset)."""
    aligned = [_align(s) for s in sizes]
    order = sorted(range(len(buffers)), key=lambda i: (-aligned[i], buffers[i].first, i))
    offsets = [0] * len(buffers)
    placed: List[int] = []
    for i in order:
        b = buffers[i]
        clash = sorted((offsets[j], j) for j in placed
                       if buffers[j].first <= b.last and b.first <= buffers[j].last)
        off = 0
        for o, j in clash:
            if off + aligned[i] <= o:
                break
            off = max(off, o + aligned[j])
        offsets[i] = off
        placed.append(i)
    arena = max((offsets[i] + aligned[i] for i in range(len(buffers))), default=0)
    return offsets, arena


def is_value_symbol(s: Symbol) -> bool:
    return s.input == VALUE_INPUT


def bind_symbols(plan: DynamicPlan, input_dims: Sequence[Sequence[int]]) -> List[int]:
    """Symbol values from the plan's input dims (each symbol read at its defining input
    dimension), checked against the symbol's bounds; value symbols at their caps."""
    values = []
    for s in plan.symbols:
        if is_value_symbol(s):
            values.append(0)  # set below, once the input symbols are known
            continue
        v = input_dims[s.input][s.axis]
        if not s.min <= v <= s.max:
            raise EvalError(f"dimension {s.name} = {v} is outside [{s.min}, {s.max}]")
        values.append(v)
    for v in plan.values:
        s = plan.symbols[v.symbol]
        values[v.symbol] = s.min if s.axis == VALUE_SHAPE else \
            min(max(evaluate(plan.exprs[v.bound], values), s.min), s.max)
    return values


def value_caps(plan: DynamicPlan, values: Sequence[int]) -> Dict[int, int]:
    """Value symbol -> its cap (the most its instruction may compute) at these values."""
    out = {}
    for v in plan.values:
        s = plan.symbols[v.symbol]
        out[v.symbol] = min(max(evaluate(plan.exprs[v.bound], values), s.min), s.max)
    return out


def value_symbols_of(expr: Sequence[int], plan: DynamicPlan) -> List[int]:
    """Indices of the value symbols an expression reads (guards reading one are checked
    when the instruction defining it has run, not when the shapes are set)."""
    out, i = [], 0
    while i < len(expr):
        if expr[i] in (CONST, SYM):
            if expr[i] == SYM and is_value_symbol(plan.symbols[expr[i + 1]]):
                out.append(expr[i + 1])
            i += 2
        else:
            i += 1
    return out


def describe(expr: Sequence[int], names: Sequence[str]) -> str:
    """Readable infix form of an expression (`megcc inspect`, manifest, error messages)."""
    stack: List[str] = []
    i = 0
    while i < len(expr):
        op = expr[i]
        if op == CONST:
            v = expr[i + 1]
            stack.append(str(v - (1 << 32) if v >= 1 << 31 else v))
            i += 2
        elif op == SYM:
            stack.append(names[expr[i + 1]])
            i += 2
        else:
            b, a = stack.pop(), stack.pop()
            name = OPCODE_NAMES[op]
            stack.append(f"{name}({a}, {b})" if name in ("min", "max")
                         else f"({a} {name} {b})")
            i += 1
    return stack[0] if len(stack) == 1 else "?"
