"""Operators whose output shape depends on tensor values (docs/dynamic-shapes.md, "Value
symbols"): NonZero, and Range with run-time operands.

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

from .graph import Graph, Op, Tensor
from . import symbolic
from .symbolic import Sym

# Range with run-time operands has no size to derive a cap from: at most this many
# elements unless the compile is told otherwise (a larger count is refused at run time).
RANGE_DEFAULT_CAP = 16384
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
    bounds = {n: (lo, hi) for n, (lo, hi, _) in graph.symbols.items()}
    top = int(symbolic.upper_bound(cap, bounds))
    if top > MAX_CAP:
        raise graph.error(f"its output can hold up to {top} elements within the bounds of the "
                          "input dimensions; at most 2^31 - 1: give smaller upper bounds", op)
    name = _symbol_name(graph, op)
    hint = symbolic.hint(cap)
    graph.symbols[name] = (0, top, hint)
    graph.value_symbols[name] = (count_name(op), 0, cap)
    s = symbolic.current()
    if s is not None:
        s.bounds[name] = (0, top)
    graph.tensors[count_name(op)] = Tensor(count_name(op), (1,), "int64")
    op.outputs.append(count_name(op))
    return Sym.symbol(name, hint)


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
    n = new_value_symbol(graph, op, RANGE_DEFAULT_CAP)
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
