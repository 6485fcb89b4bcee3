"""Shape inference and value folding for tensors whose dimensions are symbolic.

ONNX's inference (ir/infer.py) only knows integers, so for an op that reads a tensor with
a symbolic dimension (ir/symbolic.py) the output dimensions come from the rules below,
written with ordinary integer arithmetic on `Sym`s (so every comparison a rule makes is
guarded). infer.py still runs ONNX's inference on the hint shapes, for the output dtypes
and as a cross-check of each rule.

Shape arithmetic in exported models (`Shape -> Gather -> Concat -> Reshape`) is folded with
the values as numpy object arrays of ints and Syms (`fold_values`).

An op without a rule returns None: infer.py then specialises its inputs (the plan is only
valid at the hint, and the compiler refuses to keep the dimension dynamic, naming the op).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .graph import Graph, Op
from .symbolic import Sym, broadcast_shapes, floordiv, known, smax, smin

Shape = tuple

UNARY = {"Relu", "Sigmoid", "Tanh", "Clip", "Cast", "CastLike", "HardSigmoid", "HardSwish",
         "Sqrt", "Exp", "Log", "Abs", "Neg", "Erf", "Softmax", "LogSoftmax", "Identity",
         "LeakyRelu", "Elu", "Selu", "Softplus", "Softsign", "Floor", "Ceil", "Round",
         "Reciprocal", "Not", "Sign", "Sin", "Cos", "Tan", "Gelu", "Mish", "Dropout",
         "BatchNormalization", "InstanceNormalization", "LayerNormalization", "LRN",
         "ThresholdedRelu", "Celu", "Hardmax", "IsNaN", "IsInf", "Shrink", "Swish",
         "QuantizeLinear", "DequantizeLinear", "Asin", "Acos", "Atan", "Sinh", "Cosh",
         "Asinh", "Acosh", "Atanh", "Trilu", "CumSum", "BitwiseNot",
         "MeanVarianceNormalization", "LpNormalization", "ScatterElements", "ScatterND"}
BROADCAST = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Equal", "Less",
             "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Where", "PRelu",
             "Mod", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor"}
REDUCE = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
          "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}


def is_symbolic_value(data) -> bool:
    return isinstance(data, np.ndarray) and data.dtype == object


def has_symbolic_inputs(graph: Graph, op: Op) -> bool:
    for name in op.inputs:
        if not name:
            continue
        t = graph.tensors[name]
        if any(isinstance(d, Sym) for d in t.shape) or is_symbolic_value(t.data):
            return True
    return False


def plain_value(value: np.ndarray) -> np.ndarray:
    """An object array without Syms left becomes an int64 array."""
    if is_symbolic_value(value) and not any(isinstance(v, Sym) for v in value.reshape(-1)):
        return np.array(value.tolist(), dtype=np.int64).reshape(value.shape)
    return value


def _values(graph: Graph, op: Op, k: int) -> Optional[list]:
    """Input k's values as a flat list of ints/Syms (None: absent or not a constant)."""
    if k >= len(op.inputs) or not op.inputs[k]:
        return None
    t = graph.tensors[op.inputs[k]]
    if t.data is None:
        raise _NoRule()
    return [v if isinstance(v, Sym) else _num(v) for v in np.asarray(t.data).reshape(-1)]


def _num(v):
    f = float(v)
    return int(f) if f == int(f) else f


class _NoRule(Exception):
    pass


def _shape(graph: Graph, name: str) -> Shape:
    return tuple(graph.tensors[name].shape)


def broadcast(*shapes: Shape) -> Shape:
    try:
        return broadcast_shapes(*shapes)
    except ValueError:
        raise _NoRule() from None


def _window_out(i, k: int, s: int, d: int, pb: int, pe: int, ceil: bool = False):
    ek = (k - 1) * d + 1
    if i + pb + pe - ek < 0:  # guarded: the window fits in the padded input (ONNX's
        raise _NoRule()       # inference truncates, not floors, when it does not)
    if ceil:
        o = floordiv(i + pb + pe - ek + s - 1, s) + 1
        # ONNX: the last window must start inside the input or its left padding
        if (o - 1) * s >= i + pb:
            o = o - 1
        return o
    return floordiv(i + pb + pe - ek, s) + 1


def _conv_like(graph: Graph, op: Op, transposed: bool = False) -> List[Shape]:
    x = _shape(graph, op.inputs[0])
    nsp = len(x) - 2
    attrs = op.attrs
    if op.type in ("Conv", "ConvTranspose", "QLinearConv", "ConvInteger"):
        w = _shape(graph, op.inputs[3 if op.type == "QLinearConv" else 1])
        ks = list(attrs.get("kernel_shape", w[2:]))
    else:
        ks = list(attrs["kernel_shape"])
    st = list(attrs.get("strides", [1] * nsp))
    dl = list(attrs.get("dilations", [1] * nsp))
    pads = list(attrs.get("pads", [0] * 2 * nsp))
    auto = attrs.get("auto_pad", "NOTSET")
    if isinstance(auto, bytes):
        auto = auto.decode()
    out = []
    for a in range(nsp):
        i = x[2 + a]
        if transposed:
            if "output_shape" in attrs:
                out.append(int(list(attrs["output_shape"])[-nsp + a]))
                continue
            op_pad = list(attrs.get("output_padding", [0] * nsp))[a]
            if auto in ("SAME_UPPER", "SAME_LOWER"):
                out.append(i * st[a])
            else:
                out.append(st[a] * (i - 1) + op_pad + (ks[a] - 1) * dl[a] + 1
                           - pads[a] - pads[a + nsp])
            continue
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out.append(floordiv(i + st[a] - 1, st[a]))
        elif auto == "VALID":
            out.append(floordiv(i - (ks[a] - 1) * dl[a] - 1, st[a]) + 1)
        else:
            out.append(_window_out(i, ks[a], st[a], dl[a], pads[a], pads[a + nsp],
                                   bool(attrs.get("ceil_mode", 0))))
    if op.type in ("Conv", "QLinearConv", "ConvInteger"):
        w = _shape(graph, op.inputs[3 if op.type == "QLinearConv" else 1])
        return [(x[0], w[0], *out)]
    if transposed:
        w = _shape(graph, op.inputs[1])
        return [(x[0], w[1] * int(attrs.get("group", 1)), *out)]
    return [(x[0], x[1], *out)]


def _matmul(a: Shape, b: Shape) -> Shape:
    a1, b1 = len(a) == 1, len(b) == 1
    if a1:
        a = (1,) + tuple(a)
    if b1:
        b = tuple(b) + (1,)
    if a[-1] != b[-2]:
        raise _NoRule()
    batch = broadcast(a[:-2], b[:-2])
    out = batch + (a[-2], b[-1])
    if a1:
        out = out[:-2] + out[-1:]
    if b1:
        out = out[:-1]
    return tuple(out)


def _prod(dims) -> object:
    n = 1
    for d in dims:
        n = n * d
    return n


def _axes(graph: Graph, op: Op, k: int, rank: int) -> Optional[List[int]]:
    if "axes" in op.attrs:
        axes = list(op.attrs["axes"])
    else:
        v = _values(graph, op, k)
        if v is None:
            return None
        axes = [int(a) for a in v]
    return [a + rank if a < 0 else a for a in axes]


def _reshape(graph: Graph, op: Op) -> List[Shape]:
    x = _shape(graph, op.inputs[0])
    target = _values(graph, op, 1)
    if target is None:
        raise _NoRule()
    allowzero = int(op.attrs.get("allowzero", 0))
    out, unknown = [], -1
    for k, v in enumerate(target):
        if not isinstance(v, Sym) and v == 0 and not allowzero:
            out.append(x[k])
        elif not isinstance(v, Sym) and v == -1:
            unknown = k
            out.append(None)
        else:
            out.append(v)
    if unknown >= 0:
        known = _prod(d for d in out if d is not None)
        total = _prod(x)
        if total % known != 0:  # guarded: the element count must divide exactly
            raise _NoRule()
        out[unknown] = floordiv(total, known)
    elif _prod(out) != _prod(x):  # guarded: a reshape keeps the element count
        raise _NoRule()
    return [tuple(out)]


def slice_range(start, end, step: int, d):
    """(first index, count) of ONNX's Slice along an axis of extent d (Python's clamping),
    as expressions when d (or start/end) is symbolic."""
    if step > 0:
        start = smax(start + d, 0) if _neg(start) else smin(start, d)
        end = smax(end + d, 0) if _neg(end) else smin(end, d)
        return start, smax(floordiv(end - start + step - 1, step), 0)
    start = smax(start + d, -1) if _neg(start) else smin(start, d - 1)
    end = smax(end + d, -1) if _neg(end) else smin(end, d - 1)
    return start, smax(floordiv(start - end - step - 1, -step), 0)


def _slice_dim(d, start, end, step):
    return slice_range(start, end, step, d)[1]


def _neg(v) -> bool:
    return v < 0  # a guard when v is symbolic


def _slice(graph: Graph, op: Op) -> List[Shape]:
    x = list(_shape(graph, op.inputs[0]))
    if graph.opset < 10 or "starts" in op.attrs:
        starts, ends = list(op.attrs["starts"]), list(op.attrs["ends"])
        axes = list(op.attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = _values(graph, op, 1), _values(graph, op, 2)
        axes = _values(graph, op, 3) or list(range(len(starts)))
        steps = _values(graph, op, 4) or [1] * len(starts)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = int(a)
        a = a + len(x) if a < 0 else a
        x[a] = _slice_dim(x[a], s, e, int(st))
    return [tuple(x)]


def _resize(graph: Graph, op: Op) -> List[Shape]:
    x = _shape(graph, op.inputs[0])
    if op.type == "Upsample" or graph.opset < 11:
        scales = list(op.attrs["scales"]) if "scales" in op.attrs else _values(graph, op, 1)
        sizes = None
    else:
        scales = _values(graph, op, 2)
        sizes = _values(graph, op, 3)
    if sizes:
        if "axes" in op.attrs:
            raise _NoRule()
        return [tuple(sizes)]
    if not scales or len(scales) != len(x):
        raise _NoRule()
    out = []
    for d, s in zip(x, scales):
        s = float(s)
        if s == int(s):
            out.append(d * int(s))
        elif 1 / s == int(1 / s):
            out.append(floordiv(d, int(1 / s)))
        else:
            raise _NoRule()
    return [tuple(out)]


def _reduce(graph: Graph, op: Op) -> List[Shape]:
    x = _shape(graph, op.inputs[0])
    axes = _axes(graph, op, 1, len(x))
    keep = int(op.attrs.get("keepdims", 1))
    if axes is None or axes == []:
        if int(op.attrs.get("noop_with_empty_axes", 0)) and axes == []:
            return [x]
        axes = list(range(len(x)))
    out = []
    for a, d in enumerate(x):
        if a in axes:
            if keep:
                out.append(1)
        else:
            out.append(d)
    return [tuple(out)]


def _concat(graph: Graph, op: Op) -> List[Shape]:
    shapes = [_shape(graph, n) for n in op.inputs if n]
    rank = len(shapes[0])
    axis = int(op.attrs["axis"])
    axis = axis + rank if axis < 0 else axis
    out = list(shapes[0])
    out[axis] = sum((s[axis] for s in shapes[1:]), shapes[0][axis])
    for s in shapes[1:]:
        for a in range(rank):
            if a != axis and s[a] != out[a]:
                raise _NoRule()
    return [tuple(out)]


def _split(graph: Graph, op: Op) -> List[Shape]:
    x = list(_shape(graph, op.inputs[0]))
    axis = int(op.attrs.get("axis", 0))
    axis = axis + len(x) if axis < 0 else axis
    n = len([o for o in op.outputs])
    parts = list(op.attrs["split"]) if "split" in op.attrs else _values(graph, op, 1)
    if not parts:
        n = int(op.attrs.get("num_outputs", n))
        if x[axis] % n != 0:
            raise _NoRule()
        parts = [floordiv(x[axis], n)] * n
    outs = []
    for p in parts:
        s = list(x)
        s[axis] = p
        outs.append(tuple(s))
    return outs


def _squeeze(graph: Graph, op: Op) -> List[Shape]:
    x = _shape(graph, op.inputs[0])
    axes = _axes(graph, op, 1, len(x))
    if axes is None:
        axes = [a for a, d in enumerate(x) if d == 1]
    return [tuple(d for a, d in enumerate(x) if a not in axes)]


def _unsqueeze(graph: Graph, op: Op) -> List[Shape]:
    x = list(_shape(graph, op.inputs[0]))
    rank = len(x) + len(list(op.attrs.get("axes", [])) or _values(graph, op, 1) or [])
    axes = sorted(_axes(graph, op, 1, rank) or [])
    for a in axes:
        x.insert(a, 1)
    return [tuple(x)]


def _gather(graph: Graph, op: Op) -> List[Shape]:
    x = _shape(graph, op.inputs[0])
    ind = _shape(graph, op.inputs[1])
    axis = int(op.attrs.get("axis", 0))
    axis = axis + len(x) if axis < 0 else axis
    return [tuple(x[:axis]) + tuple(ind) + tuple(x[axis + 1:])]


def _pad(graph: Graph, op: Op) -> List[Shape]:
    x = _shape(graph, op.inputs[0])
    pads = list(op.attrs["pads"]) if "pads" in op.attrs else _values(graph, op, 1)
    axes = _values(graph, op, 3) if len(op.inputs) > 3 else None
    if pads is None:
        raise _NoRule()
    axes = [int(a) + len(x) if int(a) < 0 else int(a) for a in axes] if axes \
        else list(range(len(x)))
    out = list(x)
    n = len(axes)
    for k, a in enumerate(axes):
        out[a] = x[a] + pads[k] + pads[k + n]
    return [tuple(out)]


def _flatten(graph: Graph, op: Op) -> List[Shape]:
    x = _shape(graph, op.inputs[0])
    axis = int(op.attrs.get("axis", 1))
    axis = axis + len(x) if axis < 0 else axis
    return [(_prod(x[:axis]), _prod(x[axis:]))]


def _transpose(graph: Graph, op: Op) -> List[Shape]:
    x = _shape(graph, op.inputs[0])
    perm = list(op.attrs.get("perm", range(len(x) - 1, -1, -1)))
    return [tuple(x[int(p)] for p in perm)]


def _gemm(graph: Graph, op: Op) -> List[Shape]:
    a, b = _shape(graph, op.inputs[0]), _shape(graph, op.inputs[1])
    ta, tb = int(op.attrs.get("transA", 0)), int(op.attrs.get("transB", 0))
    m, k = (a[1], a[0]) if ta else (a[0], a[1])
    k2, n = (b[1], b[0]) if tb else (b[0], b[1])
    if k != k2:
        raise _NoRule()
    return [(m, n)]


def _expand(graph: Graph, op: Op) -> List[Shape]:
    target = _values(graph, op, 1)
    if target is None:
        raise _NoRule()
    return [broadcast(_shape(graph, op.inputs[0]), tuple(target))]


def _tile(graph: Graph, op: Op) -> List[Shape]:
    reps = _values(graph, op, 1)
    if reps is None:
        raise _NoRule()
    return [tuple(d * r for d, r in zip(_shape(graph, op.inputs[0]), reps))]


def _unary(graph: Graph, op: Op) -> List[Shape]:
    x = _shape(graph, op.inputs[0])
    outs = [o for o in op.outputs if o]
    if len(outs) > 1 and op.type != "Dropout":
        raise _NoRule()
    return [x] * len(outs)


def _global_pool(graph: Graph, op: Op) -> List[Shape]:
    x = _shape(graph, op.inputs[0])
    return [tuple(x[:2]) + (1,) * (len(x) - 2)]


def _argreduce(graph: Graph, op: Op) -> List[Shape]:
    x = list(_shape(graph, op.inputs[0]))
    axis = int(op.attrs.get("axis", 0))
    axis = axis + len(x) if axis < 0 else axis
    if int(op.attrs.get("keepdims", 1)):
        x[axis] = 1
    else:
        del x[axis]
    return [tuple(x)]


def _topk(graph: Graph, op: Op) -> List[Shape]:
    x = list(_shape(graph, op.inputs[0]))
    k = _values(graph, op, 1)
    if k is None or len(k) != 1:
        raise _NoRule()
    axis = int(op.attrs.get("axis", -1))
    axis = axis + len(x) if axis < 0 else axis
    if k[0] > x[axis]:  # guarded: k fits the axis
        raise _NoRule()
    x[axis] = k[0]
    return [tuple(x), tuple(x)]


def _depth_to_space(graph: Graph, op: Op) -> List[Shape]:
    n, c, h, w = _shape(graph, op.inputs[0])
    b = int(op.attrs["blocksize"])
    if op.type == "DepthToSpace":
        if c % (b * b) != 0:
            raise _NoRule()
        return [(n, floordiv(c, b * b), h * b, w * b)]
    if h % b != 0 or w % b != 0:  # guarded: the blocks tile the plane
        raise _NoRule()
    return [(n, c * b * b, floordiv(h, b), floordiv(w, b))]


def _gather_elements(graph: Graph, op: Op) -> List[Shape]:
    x, ind = _shape(graph, op.inputs[0]), _shape(graph, op.inputs[1])
    if len(x) != len(ind):
        raise _NoRule()
    return [ind]


def _one_hot(graph: Graph, op: Op) -> List[Shape]:
    ind = list(_shape(graph, op.inputs[0]))
    depth = _values(graph, op, 1)
    if depth is None or len(depth) != 1 or isinstance(depth[0], Sym):
        raise _NoRule()
    axis = int(op.attrs.get("axis", -1))
    axis = axis + len(ind) + 1 if axis < 0 else axis
    ind.insert(axis, int(depth[0]))
    return [tuple(ind)]


def _gather_nd(graph: Graph, op: Op) -> List[Shape]:
    x, ind = _shape(graph, op.inputs[0]), _shape(graph, op.inputs[1])
    b = int(op.attrs.get("batch_dims", 0))
    last = ind[-1]
    if isinstance(last, Sym):
        raise _NoRule()
    return [tuple(ind[:-1]) + tuple(x[b + int(last):])]


def _recurrent(graph: Graph, op: Op) -> List[Shape]:
    """LSTM / GRU / RNN: Y, Y_h (and LSTM's Y_c), for both layouts."""
    x = _shape(graph, op.inputs[0])
    w = _shape(graph, op.inputs[1])
    layout = int(op.attrs.get("layout", 0))
    seq, batch = (x[1], x[0]) if layout else (x[0], x[1])
    dirs, hidden = w[0], int(op.attrs["hidden_size"])
    y = (batch, seq, dirs, hidden) if layout else (seq, dirs, batch, hidden)
    state = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
    outs = []
    for k, name in enumerate(op.outputs):
        if name:
            outs.append(y if k == 0 else state)
    return outs


def _einsum(graph: Graph, op: Op) -> List[Shape]:
    """Explicit or implicit output, no ellipsis: each letter's extent from the operands
    (equal extents of one letter are guarded)."""
    eq = op.attrs["equation"]
    eq = eq.decode() if isinstance(eq, bytes) else eq
    eq = eq.replace(" ", "")
    if "..." in eq:
        raise _NoRule()
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len([n for n in op.inputs if n]):
        raise _NoRule()
    extent: Dict[str, object] = {}
    for term, name in zip(terms, op.inputs):
        shape = _shape(graph, name)
        if len(term) != len(shape):
            raise _NoRule()
        for letter, d in zip(term, shape):
            if letter in extent and not known(d, 1) and not known(extent[letter], 1):
                if d != extent[letter]:
                    raise _NoRule()
            if letter not in extent or known(extent[letter], 1):
                extent[letter] = d
    if not _:
        counts = {c: lhs.count(c) for c in set(lhs.replace(",", ""))}
        rhs = "".join(sorted(c for c, k in counts.items() if k == 1))
    return [tuple(extent[c] for c in rhs)]


RULES: Dict[str, Callable[[Graph, Op], List[Shape]]] = {
    "Conv": _conv_like, "QLinearConv": _conv_like, "ConvInteger": _conv_like,
    "ConvTranspose": lambda g, o: _conv_like(g, o, True),
    "MaxPool": _conv_like, "AveragePool": _conv_like, "LpPool": _conv_like,
    "GlobalAveragePool": _global_pool, "GlobalMaxPool": _global_pool,
    "GlobalLpPool": _global_pool,
    "MatMul": lambda g, o: [_matmul(_shape(g, o.inputs[0]), _shape(g, o.inputs[1]))],
    "Gemm": _gemm, "Reshape": _reshape, "Flatten": _flatten, "Transpose": _transpose,
    "Concat": _concat, "Split": _split, "Slice": _slice, "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze, "Resize": _resize, "Upsample": _resize, "Pad": _pad,
    "Gather": _gather, "Expand": _expand, "Tile": _tile, "ArgMax": _argreduce,
    "ArgMin": _argreduce, "TopK": _topk, "DepthToSpace": _depth_to_space,
    "SpaceToDepth": _depth_to_space, "GatherElements": _gather_elements, "OneHot": _one_hot,
    "GatherND": _gather_nd, "Einsum": _einsum, "LSTM": _recurrent, "GRU": _recurrent, "RNN": _recurrent,
    "DynamicQuantizeLSTM": _recurrent,
}
for _t in UNARY:
    RULES[_t] = _unary
for _t in BROADCAST:
    RULES[_t] = lambda g, o: [broadcast(*[_shape(g, n) for n in o.inputs if n])]
for _t in REDUCE:
    RULES[_t] = _reduce


def symbolic_shapes(graph: Graph, op: Op) -> Optional[List[Shape]]:
    """Output shapes (one per non-empty output), or None when no rule applies."""
    rule = RULES.get(op.type)
    if rule is None:
        return None
    try:
        return rule(graph, op)
    except (_NoRule, KeyError, IndexError, TypeError):
        return None


# --- value folding ---------------------------------------------------------------------

def _to_obj(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == object:
        return a
    if a.dtype.kind in "iub":
        return np.array(a.tolist(), dtype=object).reshape(a.shape)
    raise _NoRule()


def _trunc_div(a, b):
    if b == 0:
        raise _NoRule()
    if a >= 0 and b > 0:
        return floordiv(a, b)
    raise _NoRule()


def _size_mod(a, b):
    if b <= 0 or a < 0:  # guarded on symbolic operands
        raise _NoRule()
    return a % b


def _fold_gather(op, vals):
    axis = int(op.attrs.get("axis", 0))
    data, idx = vals[0], np.asarray(vals[1]).astype(np.int64)
    return np.take(data, idx, axis=axis)


def _fold_slice(op, vals, opset):
    data = vals[0]
    if opset < 10 or "starts" in op.attrs:
        starts, ends = list(op.attrs["starts"]), list(op.attrs["ends"])
        axes = list(op.attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = list(vals[1].reshape(-1)), list(vals[2].reshape(-1))
        axes = list(vals[3].reshape(-1)) if len(vals) > 3 and vals[3] is not None \
            else list(range(len(starts)))
        steps = list(vals[4].reshape(-1)) if len(vals) > 4 and vals[4] is not None \
            else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        if any(isinstance(v, Sym) for v in (s, e, a, st)):
            raise _NoRule()
        a = int(a)
        index[a] = slice(int(s), int(e), int(st))
    return data[tuple(index)]


def _fold_reduce_prod(op, vals, opset):
    data = vals[0]
    axes = list(op.attrs["axes"]) if "axes" in op.attrs else \
        (list(vals[1].reshape(-1)) if len(vals) > 1 and vals[1] is not None else None)
    keep = bool(int(op.attrs.get("keepdims", 1)))
    axes = tuple(int(a) for a in axes) if axes else None
    return np.prod(data, axis=axes, keepdims=keep)


def fold_values(graph: Graph, op: Op) -> Optional[List[np.ndarray]]:
    """Values of an op whose inputs are all constants, some holding Syms (object arrays);
    None when the op is not shape arithmetic this module folds."""
    vals = []
    for n in op.inputs:
        vals.append(_to_obj_safe(graph.tensors[n].data) if n else None)
    try:
        t = op.type
        if t == "Gather":
            out = _fold_gather(op, vals)
        elif t == "Slice":
            out = _fold_slice(op, vals, graph.opset)
        elif t == "Concat":
            out = np.concatenate([v.reshape(v.shape or (1,)) if v.ndim == 0 else v
                                  for v in vals if v is not None], axis=int(op.attrs["axis"]))
        elif t == "Unsqueeze":
            axes = list(op.attrs["axes"]) if "axes" in op.attrs else list(vals[1].reshape(-1))
            out = vals[0]
            rank = out.ndim + len(axes)
            for a in sorted(int(a) + rank if int(a) < 0 else int(a) for a in axes):
                out = np.expand_dims(out, a)
        elif t == "Squeeze":
            axes = list(op.attrs["axes"]) if "axes" in op.attrs else \
                (list(vals[1].reshape(-1)) if len(vals) > 1 and vals[1] is not None else None)
            out = np.squeeze(vals[0], axis=tuple(int(a) for a in axes) if axes else None)
        elif t in ("Cast", "Identity"):
            if t == "Cast" and int(op.attrs["to"]) not in (6, 7):  # int32, int64 only
                raise _NoRule()
            out = vals[0]
        elif t == "Reshape":
            out = vals[0].reshape([int(v) for v in vals[1].reshape(-1)])
        elif t in ("Add", "Sub", "Mul"):
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[t]
            out = f(vals[0], vals[1])
        elif t == "Div":
            a, b = np.broadcast_arrays(vals[0], vals[1])
            out = np.array([_trunc_div(x, y) for x, y in zip(a.reshape(-1), b.reshape(-1))],
                           dtype=object).reshape(a.shape)
        elif t == "Size":  # of a value holding Syms: its own shape is static
            out = np.array(vals[0].size, dtype=object)
        elif t == "Shape":
            start, end = op.attrs.get("start", 0), op.attrs.get("end", vals[0].ndim)
            out = np.array(list(vals[0].shape)[start:end], dtype=object)
        elif t == "Mod":
            # sizes are positive: Python's modulus (fmod=0) and C's (fmod=1) agree
            a, b = np.broadcast_arrays(vals[0], vals[1])
            out = np.array([_size_mod(x, y) for x, y in zip(a.reshape(-1), b.reshape(-1))],
                           dtype=object).reshape(a.shape)
        elif t == "ReduceProd":
            out = _fold_reduce_prod(op, vals, graph.opset)
        elif t == "Equal":
            a, b = np.broadcast_arrays(vals[0], vals[1])
            return [np.array([x == y for x, y in zip(a.reshape(-1), b.reshape(-1))],
                             dtype=bool).reshape(a.shape)]
        else:
            return None
    except (_NoRule, ValueError, IndexError, TypeError):
        return None
    return [plain_value(np.asarray(out, dtype=object))]


def _to_obj_safe(data):
    try:
        return _to_obj(data)
    except _NoRule:
        return np.asarray(data)


def specialise_value(data: np.ndarray) -> np.ndarray:
    """An object array as int64, each Sym specialised (guarded) on its hint."""
    return np.array([int(v) for v in data.reshape(-1)], dtype=np.int64).reshape(data.shape)


def shape_value(dims: Sequence) -> np.ndarray:
    return plain_value(np.array(list(dims), dtype=object))
