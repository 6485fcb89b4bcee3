"""What a kernel is: generated C, and the instructions that call it.

An implementation (kernels/registry.py) turns one IR op (with static shapes) into the
instructions that compute it. Each instruction names a `Kernel` (C source, specialised on
everything that changes the code) and the integer `params` that vary per layer (extents,
strides, float bit patterns). Equal kernel names must mean equal source: the emitter checks
it.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import List, Sequence

from .params import NO_PARAMS, ParamSchema


@dataclass(frozen=True)
class Kernel:
    name: str
    source: str  # the C definition of `static int <name>(KERNEL_ARGS)` (+ static helpers)
    # generated C helpers it needs as (name, source) pairs, each emitted once per kernels.c;
    # the shared ones of helpers.HELPERS are found by use and need not be listed
    helpers: tuple = ()
    # instruction-set extension the source needs ("" = portable C99, "avx2" = AVX2+FMA);
    # kernels.c then checks the compiler targets it (isa.KernelTag)
    isa: str = ""
    # the names, meanings and order of the int32 params its instructions carry (params.py)
    params: ParamSchema = NO_PARAMS

    def __post_init__(self):
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.name):
            raise ValueError(f"bad kernel name {self.name!r}")


@dataclass
class Instr:
    kernel: Kernel
    inputs: List[str]  # tensor names; '' = omitted optional input
    outputs: List[str]
    params: List[int] = field(default_factory=list)
    workspace_bytes: int = 0
    note: str = ""  # why this kernel was chosen, for `megcc inspect`
    # inputs whose buffer the output may take over (element-wise ops: output element i
    # depends only on input element i at the same bytes)
    in_place: List[str] = field(default_factory=list)
    impl: str = ""  # the registered implementation that emitted it (kernels/registry.py)


@dataclass
class View:
    """The output is the input's bytes reinterpreted (reshape-like): no code runs."""

    output: str
    base: str
    byte_offset: int = 0


# par: the network's parallel-for (runtime/include/megcc/parallel.h), NULL on one thread
KERNEL_ARGS = ("void *const *in_ptrs, void *const *out_ptrs, const int32_t *p, "
               "void *workspace, const megcc_parallel *par")


KERNEL_ARG_NAMES = ("in_ptrs", "out_ptrs", "p", "workspace", "par")


def kernel_source(name: str, body: str, prelude: str = "",
                  params: ParamSchema = NO_PARAMS) -> str:
    """Wrap a body into the uniform kernel signature: the params it uses unpacked by name
    at the top (params.py), and only the kernel arguments it does not use silenced."""
    body = _insert_before_first_use(body.rstrip() + "\n", params.unpack(body), params.names)
    unused = [a for a in KERNEL_ARG_NAMES if not re.search(r"\b" + a + r"\b", body)]
    silence = "    " + " ".join(f"(void){a};" for a in unused) + "\n" if unused else ""
    return (f"{prelude}static int {name}({KERNEL_ARGS}) {{\n"
            f"{silence}{body}    return 0;\n}}\n")


def _insert_before_first_use(body: str, decls: str, names: Sequence[str]) -> str:
    """`decls` inserted at the top level of `body`, just before the statement that first
    uses one of `names`: after the operand pointers, where hand-written code declares its
    params (and where the templates did before params.py, so the object code is unchanged).
    Only between two top-level statements: never inside a loop or an if."""
    if not decls:
        return body
    lines = body.splitlines(keepends=True)
    uses = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    depth, safe, prev = 0, 0, ";"
    for i, line in enumerate(lines):
        code = line.split("/*")[0].split("//")[0].strip()
        if depth == 0 and prev[-1:] in (";", "}", "{") and not code.startswith("else"):
            safe = i
        if uses.search(line.split("/*")[0]):
            break
        depth += code.count("{") - code.count("}")
        if code:
            prev = code
    return "".join(lines[:safe]) + decls + "".join(lines[safe:])


def make_kernel(name: str, body: str, params: ParamSchema = NO_PARAMS, helpers: tuple = (),
                isa: str = "", prelude: str = "") -> Kernel:
    """The Kernel of a body whose params are unpacked by `params` (kernel_source)."""
    return Kernel(name, kernel_source(name, body, prelude, params), tuple(helpers), isa, params)


def f32_bits(x: float) -> int:
    """A float32 as a signed int32 param (kernels read it back with megcc_f32_from_bits)."""
    return struct.unpack("<i", struct.pack("<f", float(x)))[0]


def c_float(x: float) -> str:
    """A float literal that round-trips exactly through float32."""
    import numpy as np

    v = float(np.float32(x))
    if v != v:
        return "NAN"
    if v in (float("inf"), float("-inf")):
        return "INFINITY" if v > 0 else "(-INFINITY)"
    return repr(v) + "f"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def strides_of(shape: Sequence[int]) -> List[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


def numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
