"""The graph IR every frontend produces and every pass consumes.

Operators use ONNX names and ONNX (latest-opset) attribute semantics, whatever the
source format was: the MegEngine frontend translates its oprs into this vocabulary, so
nothing downstream of a frontend knows where a model came from.  Inputs that ONNX
passes as tensors but that a kernel needs at compile time (Reshape's shape, Slice's
starts, Clip's bounds, ...) are moved into attributes by the frontend or by constant
folding before lowering.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from .dtypes import DTYPES, itemsize
from .symbolic import Sym


_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(32), 127]}


class CompileError(Exception):
    """A problem the user can cause; printed as one line, never as a traceback."""

    def __init__(self, message: str, source: str = "", node: str = ""):
        self.message = message
        self.source = source
        self.node = node
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ""
        if self.source:
            where += f"{self.source}: "
        if self.node:
            where += f"node '{self.node}': "
        # Names come from the model: a newline in one must not split the one-line error.
        return (where + self.message).translate(_CONTROL_ESCAPES)


def clip(value, limit: int = 60) -> str:
    """A user value for an error message: its first `limit` characters, so a hostile value
    cannot make the one-line error as long as itself (or expensive to build: non-strings
    are described by type and size, never serialised)."""
    if isinstance(value, (list, tuple, dict)):
        return f"a {'object' if isinstance(value, dict) else 'list'} of {len(value)} items"
    text = value if isinstance(value, str) else repr(value) if isinstance(
        value, (int, float, bool, type(None))) else type(value).__name__
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text)} characters)"
    return text


class NeedsValue(CompileError):
    """The compiler needs the value of a non-constant tensor (a shape operand, an axis).

    `tensor` names it; when it is a graph input, a caller that knows the input values
    (the ONNX backend) may compile a plan specialised on that value instead."""

    def __init__(self, message: str, source: str = "", node: str = "", tensor: str = ""):
        self.tensor = tensor
        super().__init__(message, source, node)


@dataclass(frozen=True)
class QuantParams:
    scale: float
    zero_point: int = 0


@dataclass
class Tensor:
    name: str
    shape: Tuple[int, ...]
    dtype: str = "float32"
    data: Optional[np.ndarray] = None  # set for constants (weights, folded values)
    quant: Optional[QuantParams] = None
    layout: str = "nchw"  # nchw (plain row-major), nchw44, nchw88

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise CompileError(f"tensor '{self.name}' has unsupported dtype {self.dtype}")
        # symbolic dimensions (ir/symbolic.py) stay expressions; the rest become ints
        self.shape = tuple(d if isinstance(d, Sym) else int(d) for d in self.shape)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * itemsize(self.dtype)


@dataclass
class Op:
    type: str
    inputs: List[str]  # '' marks an omitted optional input
    outputs: List[str]
    attrs: Dict = field(default_factory=dict)
    name: str = ""

    def __repr__(self):
        return f"{self.type}({', '.join(self.inputs)}) -> {', '.join(self.outputs)}"


class Graph:
    """Tensors by name, ops in a valid topological order, named graph inputs/outputs."""

    def __init__(self, source: str = ""):
        self.source = source  # model path, for error messages
        self.opset = 17  # ONNX opset whose semantics the ops follow
        self.tensors: Dict[str, Tensor] = {}
        self.ops: List[Op] = []
        self.inputs: List[str] = []
        self.outputs: List[str] = []
        self.nchw44 = False  # convolutions will be rewritten to NCHW44 (enable_nchw44)
        # the most threads the compiled model runs on (CompileOptions.max_threads; 0: any):
        # kernels size their per-thread workspace areas for that many
        self.max_threads = 0
        # (node, op type, why) of quantized-model ops left in float (passes/qdq.py)
        self.quant_notes: List[Tuple[str, str, str]] = []
        # (node, op type, why) of integer ops left in float requantization by
        # enable_fixed_point_requant (passes/fixed_requant.py)
        self.fixed_point_notes: List[Tuple[str, str, str]] = []
        # run-time dimensions: symbol name -> (min, max, hint); empty for a static graph
        self.symbols: Dict[str, Tuple[int, int, int]] = {}
        # symbols whose upper bound is the default: the compiler may lower it so that
        # every tensor stays addressable (compiler._check_sizes)
        self.default_bounded: set = set()
        # value symbols (ir/value_shapes.py): name -> (count tensor, element, cap)
        self.value_symbols: Dict[str, Tuple[str, int, object]] = {}
        # value symbols known to equal a static extent (a loop-carried value keeps its
        # shape; ir/control.py): name -> extent. The count is still computed and checked
        # at run time, but the shapes are static.
        self.value_pins: Dict[str, int] = {}
        # value symbols that are computed shape extents (stand at their minimum until
        # defined; what they shape is placed at a byte cap: value_shapes.byte_cap)
        self.shape_symbols: set = set()
        # --value-cap: tensor name (or "default", "range") -> cap (bytes; Range: elements)
        self.value_caps: Dict[str, int] = {}
        # an If branch or a Loop/Scan body (ir/control.py)
        self.is_subgraph = False

    # -- construction -------------------------------------------------
    def add_tensor(self, t: Tensor) -> Tensor:
        self.tensors[t.name] = t
        return t

    def add_const(self, name: str, value: np.ndarray, dtype: Optional[str] = None) -> Tensor:
        value = np.asarray(value, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        from .dtypes import dtype_of_numpy

        dt = dtype or dtype_of_numpy(value.dtype)
        return self.add_tensor(Tensor(name, value.shape, dt, data=value))

    def unique_name(self, base: str) -> str:
        if base not in self.tensors:
            return base
        i = 1
        while f"{base}_{i}" in self.tensors:
            i += 1
        return f"{base}_{i}"

    # -- queries --------------------------------------------------------
    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def producers(self) -> Dict[str, Op]:
        return {o: op for op in self.ops for o in op.outputs if o}

    def consumers(self) -> Dict[str, List[Op]]:
        uses: Dict[str, List[Op]] = {}
        for op in self.ops:
            for i in op.inputs:
                if i:
                    uses.setdefault(i, []).append(op)
        return uses

    def error(self, message: str, op: Optional[Op] = None) -> CompileError:
        if op is not None:
            return CompileError(f"{op.type}: {message}", self.source, op.name or op.outputs[0])
        return CompileError(message, self.source)

    def needs_value(self, op: Op, name: str, what: str) -> NeedsValue:
        """Error for an op whose operand `name` must be known at compile time."""
        return NeedsValue(f"{op.type}: {what} ('{name}') must be a constant: it is only known "
                          "at run time", self.source, op.name or op.outputs[0], name)

    def dump(self) -> str:
        lines = []
        for n in self.inputs:
            t = self.tensors[n]
            lines.append(f"input  {n}: {t.dtype}{list(t.shape)}")
        for op in self.ops:
            outs = ", ".join(f"{o}: {self.tensors[o].dtype}{list(self.tensors[o].shape)}"
                             for o in op.outputs if o)
            attrs = ", ".join(f"{k}={v}" for k, v in sorted(op.attrs.items()))
            lines.append(f"{op.type}({', '.join(op.inputs)}) [{attrs}] -> {outs}")
        for n in self.outputs:
            t = self.tensors[n]
            lines.append(f"output {n}: {t.dtype}{list(t.shape)}")
        return "\n".join(lines)
