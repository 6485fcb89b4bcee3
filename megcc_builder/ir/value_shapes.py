"""Operators whose output shape depends on tensor values (docs/dynamic-shapes.md, "Value
symbols"): NonZero, Range with run-time operands, Compress, NonMaxSuppression, TopK with a
computed K, Slice with computed starts/ends/steps.

Each such output size becomes a *value symbol*: a `Sym` like an input dimension, except
that the instruction computing it defines it at run time, by writing the count into an
extra int64 output (`<output>:count`) that the runtime reads right after the kernel
returned. Until then the symbol stands at its *cap* (the largest value it may take, an
expression of the input symbols or a constant): the arena is placed for the caps, and
every size, view offset and kernel parameter that reads the symbol is recomputed from the
real count after the instruction ran. A count above the cap is refused at run time with
an error naming the symbol (whose name names the node).

`graph.value_symbols` maps each value symbol to (count tensor, element, cap expression);
`dynamic_plan.build` turns them into the DynPlan's Value records.
"""
from __future__ import annotations

import re

import numpy as np

from .graph import Graph, Op, Tensor
from . import symbolic
from .symbolic import Sym

# Range with run-time operands has no size to derive a cap from: at most this many
# elements unless the compile is told otherwise (a larger count is refused at run time).
RANGE_DEFAULT_CAP = 16384
RANGE_CAP_KEY = "range"  # --value-cap range=N: the length cap of every Range
DEFAULT_CAP_KEY = "default"  # --value-cap default=N: bytes of every computed-shape buffer
# Buffers shaped by computed extents take at least this many bytes by default (and at
# least as many as the plan's largest tensor of known size); --value-cap TENSOR=N
SHAPE_BYTE_CAP_FLOOR = 1 << 20
MAX_BYTE_CAP = 0x7FFFFFFF  # the kernels get the cap as an int32 param
SHAPE_HINT = 2
MAX_CAP = 0x7FFFFFFF  # symbol bounds are int32 in the model format

COUNT_SUFFIX = ":count"
# Range dtypes with a run-time-length kernel (kernels/index/count_generic.py); others keep
# needing constant operands
RANGE_DTYPES = ("float32", "float64", "int16", "int32", "int64")


def count_name(op: Op) -> str:
    return op.outputs[0] + COUNT_SUFFIX


def _symbol_name(graph: Graph, op: Op) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", f"{op.type}_{op.name or op.outputs[0]}_count")
    name, k = base, 1
    while name in graph.symbols:
        k += 1
        name = f"{base}{k}"
    return name


def new_value_symbol(graph: Graph, op: Op, cap) -> Sym:
    """A value symbol defined by `op`'s count output (added to the op), at most `cap` (an
    int or a Sym of input symbols)."""
    return new_value_symbols(graph, op, [cap])[0]


def new_value_symbols(graph: Graph, op: Op, caps, shape: bool = False, elements=None,
                      n_counts=None):
    """One value symbol per cap, defined by element k of `op`'s count output (one int64
    per symbol, added to the op's outputs). A symbol the graph pins to a static extent
    (`graph.value_pins`, a loop-carried shape) comes back as that int: its bounds are
    [extent, extent], so the runtime refuses any other count.

    `shape`: a *shape value* (a computed Reshape/Expand/Tile/ConstantOfShape extent): it
    stands at its minimum until its instruction runs, and every buffer whose size reads
    it is placed at a byte cap instead (`byte_cap`), because the product of per-extent
    caps overflows. Its hint is SHAPE_HINT (never 0 or 1, which code testing for empty
    or broadcast axes would take as facts).

    `elements`: the count element of each symbol (default 0, 1, ...), `n_counts` the
    count output's length (default one per symbol)."""
    bounds = {n: (lo, hi) for n, (lo, hi, _) in graph.symbols.items()}
    out = []
    for k, cap in enumerate(caps):
        top = int(symbolic.upper_bound(cap, bounds))
        if isinstance(cap, Sym) and cap.symbols & set(graph.value_symbols):
            cap = top  # caps are of input symbols only: the largest the count can be
        if top > MAX_CAP:
            raise graph.error(f"its output can hold up to {top} elements within the bounds of "
                              "the input dimensions; at most 2^31 - 1: give smaller upper "
                              "bounds", op)
        name = _symbol_name(graph, op)
        pin = graph.value_pins.get(name)
        if pin is not None:
            lo = top = cap = pin
        else:
            lo = 0
        hint = symbolic.hint(cap)
        if shape and pin is None:
            hint = SHAPE_HINT
            graph.shape_symbols.add(name)
        graph.symbols[name] = (lo, top, hint)
        graph.value_symbols[name] = (count_name(op), k if elements is None else elements[k],
                                     cap)
        s = symbolic.current()
        if s is not None:
            s.bounds[name] = (lo, top)
            s.value_symbols.add(name)
        out.append(pin if pin is not None else Sym.symbol(name, hint))
    graph.tensors[count_name(op)] = Tensor(count_name(op),
                                           (len(caps) if n_counts is None else n_counts,),
                                           "int64")
    op.outputs.append(count_name(op))
    return out


def infer_nonzero(graph: Graph, op: Op) -> None:
    x = graph.tensors[op.inputs[0]]
    if not x.shape:
        raise graph.error("NonZero of a scalar is not supported", op)
    numel = 1
    for d in x.shape:
        numel = numel * d
    n = new_value_symbol(graph, op, numel)
    graph.tensors[op.outputs[0]] = Tensor(op.outputs[0], (len(x.shape), n), "int64")


def infer_range(graph: Graph, op: Op) -> None:
    t = graph.tensors[op.inputs[0]]
    for name in op.inputs[:3]:
        if graph.tensors[name].numel != 1:
            raise graph.error(f"Range operand '{name}' is not a scalar", op)
    cap = graph.value_caps.get(op.outputs[0],
                               graph.value_caps.get(RANGE_CAP_KEY, RANGE_DEFAULT_CAP))
    n = new_value_symbol(graph, op, cap)
    graph.tensors[op.outputs[0]] = Tensor(op.outputs[0], (n,), t.dtype)


def infer_nms(graph: Graph, op: Op) -> None:
    """NonMaxSuppression: (n, 3) int64 [batch, class, box] rows; n is at most batches x
    classes x min(max_output_boxes_per_class, boxes) (x boxes when that input is computed)."""
    boxes, scores = (graph.tensors[n] for n in op.inputs[:2])
    if len(boxes.shape) != 3 or len(scores.shape) != 3 or boxes.shape[2] != 4:
        raise graph.error("NonMaxSuppression needs boxes (B, N, 4) and scores (B, C, N)", op)
    b, n = boxes.shape[0], boxes.shape[1]
    c = scores.shape[1]
    per_class = n
    if len(op.inputs) > 2 and op.inputs[2]:
        m = graph.tensors[op.inputs[2]]
        if m.is_const and not is_symbolic(m.data):
            k = int(m.data.reshape(-1)[0]) if m.data.size else 0
            per_class = symbolic.smin(max(k, 0), n)
    else:
        per_class = 0  # ONNX: no max_output_boxes_per_class selects nothing
    cap = b * c * per_class
    rows = new_value_symbol(graph, op, cap)
    graph.tensors[op.outputs[0]] = Tensor(op.outputs[0], (rows, 3), "int64")


def is_symbolic(data) -> bool:
    return getattr(data, "dtype", None) == object


def infer_compress(graph: Graph, op: Op) -> None:
    """Compress: the slices of the input along `axis` (flattened when absent) whose
    condition is true; at most min(len(condition), extent) of them."""
    x, cond = (graph.tensors[n] for n in op.inputs[:2])
    if len(cond.shape) != 1:
        raise graph.error("Compress condition must be 1-D", op)
    axis = op.attrs.get("axis")
    if axis is None:
        extent = 1
        for d in x.shape:
            extent = extent * d
        shape = [extent]
        axis = 0
    else:
        axis = int(axis) + (len(x.shape) if int(axis) < 0 else 0)
        if not 0 <= axis < len(x.shape):
            raise graph.error(f"Compress axis {op.attrs['axis']} out of range", op)
        shape = list(x.shape)
    n = new_value_symbol(graph, op, symbolic.smin(cond.shape[0], shape[axis]))
    shape[axis] = n
    graph.tensors[op.outputs[0]] = Tensor(op.outputs[0], tuple(shape), x.dtype)


def infer_topk(graph: Graph, op: Op) -> None:
    """TopK with a computed K: both outputs have K (at most the axis extent) along axis."""
    x = graph.tensors[op.inputs[0]]
    axis = int(op.attrs.get("axis", -1))
    axis += len(x.shape) if axis < 0 else 0
    if not 0 <= axis < len(x.shape):
        raise graph.error(f"TopK axis {op.attrs.get('axis')} out of range", op)
    if len([o for o in op.outputs if o]) != 2:
        raise graph.error("omitted TopK outputs are not supported", op)
    k = new_value_symbol(graph, op, x.shape[axis])
    shape = list(x.shape)
    shape[axis] = k
    graph.tensors[op.outputs[0]] = Tensor(op.outputs[0], tuple(shape), x.dtype)
    graph.tensors[op.outputs[1]] = Tensor(op.outputs[1], tuple(shape), "int64")


def cap_of(graph: Graph, n):
    """The cap of an output extent that is a value symbol (an expression of the input
    symbols: a kernel param re-evaluated with the shapes, never of `n` itself); a pinned
    (static) extent is its own cap."""
    if not isinstance(n, Sym):
        return n
    return graph.value_symbols[next(iter(n.symbols))][2]


SLICE_RUNTIME_OPERANDS = (1, 2, 4)  # starts, ends, steps: read by the kernel at run time


def runtime_slice(graph: Graph, op: Op) -> bool:
    """A Slice (opset 10+) whose starts, ends or steps are computed: its output extents
    along the sliced axes are value symbols."""
    if op.type != "Slice" or graph.opset < 10 or "starts" in op.attrs:
        return False
    return any(k < len(op.inputs) and op.inputs[k] and not graph.tensors[op.inputs[k]].is_const
               for k in SLICE_RUNTIME_OPERANDS)


def slice_axes(graph: Graph, op: Op):
    """(axes normalised, constant steps or None) of a run-time Slice; refuses what the
    kernel cannot take (computed axes, mismatched operand lengths, repeated axes)."""
    x = graph.tensors[op.inputs[0]]
    rank = len(x.shape)
    starts, ends = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
    for t, what in ((starts, "starts"), (ends, "ends")):
        if len(t.shape) != 1 or t.dtype not in ("int32", "int64"):
            raise graph.error(f"Slice {what} must be a 1-D int32/int64 tensor, not "
                              f"{t.dtype}{list(t.shape)}", op)
    n = starts.shape[0]
    if ends.shape[0] != n or starts.dtype != ends.dtype:
        raise graph.error("Slice starts and ends differ in length or dtype", op)
    axes = list(range(n))
    if len(op.inputs) > 3 and op.inputs[3]:
        at = graph.tensors[op.inputs[3]]
        if not at.is_const:
            raise graph.needs_value(op, op.inputs[3], "input 3 (the axes),")
        axes = [int(a) for a in np.asarray(at.data).reshape(-1)]
    steps = None
    if len(op.inputs) > 4 and op.inputs[4]:
        st = graph.tensors[op.inputs[4]]
        if st.shape != (n,) or st.dtype != starts.dtype:
            raise graph.error("Slice steps must match starts in length and dtype", op)
        if st.is_const:
            steps = [int(v) for v in np.asarray(st.data).reshape(-1)]
            if 0 in steps:
                raise graph.error("Slice step must not be 0", op)
    else:
        steps = [1] * n
    if len(axes) != n:
        raise graph.error(f"Slice has {n} starts and {len(axes)} axes", op)
    norm = []
    for a in axes:
        if not -rank <= a < rank:
            raise graph.error(f"Slice axis {a} is out of range for rank {rank}", op)
        norm.append(a + rank if a < 0 else a)
    if len(set(norm)) != len(norm):
        raise graph.error(f"Slice axes {axes} repeat an axis", op)
    return norm, steps


def infer_slice(graph: Graph, op: Op) -> None:
    """Slice with computed starts/ends/steps: each sliced axis's extent is a value symbol,
    at most the axis extent (divided by the step when that is constant)."""
    x = graph.tensors[op.inputs[0]]
    axes, steps = slice_axes(graph, op)
    caps = []
    for k, a in enumerate(axes):
        d = x.shape[a]
        caps.append(d if steps is None or abs(steps[k]) == 1
                    else (d + abs(steps[k]) - 1) // abs(steps[k]))
    extents = new_value_symbols(graph, op, caps)
    shape = list(x.shape)
    for a, n in zip(axes, extents):
        shape[a] = n
    graph.tensors[op.outputs[0]] = Tensor(op.outputs[0], tuple(shape), x.dtype)


# --- computed shapes: Reshape / Expand / Tile / ConstantOfShape with a computed shape ------

SHAPE_OPERAND = {"Reshape": 1, "Expand": 1, "Tile": 1, "ConstantOfShape": 0}


def computed_shape(graph: Graph, op: Op) -> bool:
    """The op's shape operand (Reshape/Expand shape, Tile repeats, ConstantOfShape input)
    is computed at run time."""
    k = SHAPE_OPERAND.get(op.type)
    if k is None or k >= len(op.inputs) or not op.inputs[k]:
        return False
    return not graph.tensors[op.inputs[k]].is_const


def reads_shape_symbol(graph: Graph, x) -> bool:
    return isinstance(x, Sym) and bool(x.symbols & graph.shape_symbols)


def infer_computed_shape(graph: Graph, op: Op) -> None:
    """Each extent of the output is a shape value symbol, written by the op's kernel into
    its count output (one int64 per output axis) with ONNX's rules applied (Reshape's 0
    and -1, allowzero; Expand's broadcast; Tile's products); an invalid shape is written
    as -1 and refused by the runtime, naming the node."""
    k = SHAPE_OPERAND[op.type]
    shape = graph.tensors[op.inputs[k]]
    if shape.dtype != "int64" or len(shape.shape) != 1 or isinstance(shape.shape[0], Sym):
        raise graph.error(f"the computed shape '{op.inputs[k]}' must be a 1-D int64 tensor of "
                          f"known length, not {shape.dtype}{list(shape.shape)}", op)
    r = int(shape.shape[0])
    if op.type == "ConstantOfShape":
        value = op.attrs.get("value")
        from .dtypes import dtype_of_numpy
        from onnx import numpy_helper

        dtype = "float32" if value is None else \
            dtype_of_numpy(numpy_helper.to_array(value).dtype)
        rank = r
    else:
        x = graph.tensors[op.inputs[0]]
        dtype = x.dtype
        if op.type == "Tile" and r != len(x.shape):
            raise graph.error(f"Tile repeats of length {r} for an input of rank "
                              f"{len(x.shape)}", op)
        rank = max(r, len(x.shape)) if op.type == "Expand" else r
    fixed = {}  # Expand: an input extent other than 1 is the output's (else invalid)
    if op.type == "Expand":
        for k, d in enumerate(x.shape):
            if not isinstance(d, Sym) and d != 1:
                fixed[rank - len(x.shape) + k] = d
    computed = [k for k in range(rank) if k not in fixed]
    syms = new_value_symbols(graph, op, [MAX_CAP] * len(computed), shape=True,
                             elements=computed, n_counts=rank)
    dims = [fixed.get(k) for k in range(rank)]
    for k, s in zip(computed, syms):
        dims[k] = s
    graph.tensors[op.outputs[0]] = Tensor(op.outputs[0], tuple(dims), dtype)


def byte_cap(graph: Graph, name: str) -> int:
    """Bytes placed for a tensor (or workspace) whose size reads a computed shape: the
    user's cap for it (--value-cap NAME=N), else the default: --value-cap default=N, or
    the plan's largest tensor of known size (at the hints), at least
    SHAPE_BYTE_CAP_FLOOR."""
    if name in graph.value_caps:
        return graph.value_caps[name]
    if DEFAULT_CAP_KEY in graph.value_caps:
        return graph.value_caps[DEFAULT_CAP_KEY]
    cached = getattr(graph, "_default_byte_cap", None)
    if cached is None:
        largest = 0
        for t in graph.tensors.values():
            if any(reads_shape_symbol(graph, d) for d in t.shape):
                continue
            largest = max(largest, symbolic.hint(t.nbytes))
        cached = min(max(largest, SHAPE_BYTE_CAP_FLOOR), MAX_BYTE_CAP)
        graph._default_byte_cap = cached
    return cached


def arena_bytes(graph: Graph, name: str, nbytes):
    """What the memory planner reserves: `nbytes`, or the byte cap where it reads a
    computed shape."""
    return byte_cap(graph, name) if reads_shape_symbol(graph, nbytes) else nbytes
