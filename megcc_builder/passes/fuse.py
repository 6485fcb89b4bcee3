"""Operator fusion: bias, a residual add and activation into conv/GEMM epilogues,
element-wise chains into one loop. Each fusion saves a full pass over a tensor in memory."""
import numpy as np

from ..ir import Graph, Op
from ..ir.expr import PARAMETRIC, UNARY, is_elementwise, op_expr
from ..ir.opdefs import check as check_opdef
from ..ir.symbolic import same_shape

_LINEAR = ("Conv", "Gemm", "MatMul")
# Unary float ops cheap enough to run in an epilogue.
_EPILOGUE = (UNARY | PARAMETRIC) - {"Not", "Identity"}
# Operators per fused element-wise loop. Bounds the expression's depth, so the recursive
# walks over it here, in codegen and in C compilers (clang nests at most 256 brackets) stay
# shallow whatever the graph; a longer chain becomes several fused loops. Past a few dozen
# operators one more pass over the tensor costs nothing measurable.
MAX_FUSED_OPS = 32


def _single_use(graph: Graph, consumers, name: str) -> bool:
    return len(consumers.get(name, [])) == 1 and name not in graph.outputs


def _per_channel_bias(graph: Graph, src: Op, add: Op):
    """The constant operand of `add` if it is a bias over the channel axis of `src`."""
    out = graph.tensors[src.outputs[0]]
    other = [i for i in add.inputs if i != src.outputs[0]]
    if len(other) != 1 or add.inputs.count(src.outputs[0]) != 1:
        return None
    c = graph.tensors[other[0]]
    if not c.is_const or c.dtype != "float32" or out.dtype != "float32":
        return None
    data = np.asarray(c.data)
    channels = out.shape[1] if src.type == "Conv" else out.shape[-1]
    if data.size != channels or data.ndim > len(out.shape):
        return None
    shape = (1,) * (len(out.shape) - data.ndim) + data.shape
    axis = 1 if src.type == "Conv" else len(out.shape) - 1
    if shape[axis] != channels and channels != 1:
        return None
    return data.reshape(-1)


def _fold_bias(graph: Graph, src: Op, add: Op) -> bool:
    if src.type == "MatMul" and len(graph.tensors[src.inputs[0]].shape) != 2:
        return False
    if src.type == "Gemm" and len(src.inputs) > 2 and src.inputs[2]:
        return False
    bias = _per_channel_bias(graph, src, add)
    if bias is None or _has_activation(src):
        return False
    if src.type == "Conv" and len(src.inputs) > 2 and src.inputs[2]:
        old = graph.tensors[src.inputs[2]]
        if not old.is_const:
            return False
        bias = bias + np.asarray(old.data)
    name = graph.unique_name(add.outputs[0] + "_bias")
    graph.add_const(name, bias.astype(np.float32))
    if src.type == "MatMul":  # a 2-D MatMul plus a bias is a Gemm with C
        src.type, src.attrs = "Gemm", {}
    # a fused residual (input 3) stays: (conv + r) + b = conv + b + r
    src.inputs = list(src.inputs[:2]) + [name] + list(src.inputs[3:])
    src.outputs = [add.outputs[0]]
    return True


def _has_activation(src: Op) -> bool:
    return src.attrs.get("activation") is not None or bool(src.attrs.get("prelu"))


# The Conv input that holds a fused per-channel PReLU slope (after x, w, bias, residual):
# the conv kernels read it as in_ptrs[4] (kernels/conv/geometry.py prelu_slope).
PRELU_SLOPE_INPUT = 4


def _prelu_slope(graph: Graph, src: Op, op: Op):
    """The per-output-channel slope of PRelu(conv, slope) as a float32 vector of OC values
    (a scalar slope broadcast), or None when the slope varies along another axis or is not
    constant."""
    if len(op.inputs) != 2 or op.inputs[0] != src.outputs[0]:
        return None
    out = graph.tensors[src.outputs[0]]
    slope = graph.tensors[op.inputs[1]]
    if (not slope.is_const or slope.dtype != "float32" or out.dtype != "float32"
            or len(out.shape) != 4 or out.layout != "nchw" or not isinstance(out.shape[1], int)):
        return None
    data = np.asarray(slope.data, np.float32)
    channels = out.shape[1]
    if data.size == 1:
        return np.full(channels, data.reshape(-1)[0], np.float32)
    if graph.opset < 7 and data.ndim == 1:
        data = data.reshape(-1, 1, 1)  # PRelu-6: a 1-D slope is per channel
    if data.ndim > 4:
        return None
    shape = (1,) * (4 - data.ndim) + data.shape
    if shape != (1, channels, 1, 1):
        return None
    return data.reshape(-1)


def _fold_prelu(graph: Graph, src: Op, op: Op) -> bool:
    """PRelu(conv, slope) with a per-channel (or scalar) constant slope: the conv's epilogue
    applies it after the bias and a fused residual (y = prelu(conv + bias + r)). 2-D float32
    convs only: the NCHW and NCHW44 conv kernels read the slope (in_ptrs[4] / [3])."""
    if src.type != "Conv" or _has_activation(src):
        return False
    slope = _prelu_slope(graph, src, op)
    if slope is None or len(graph.tensors[src.inputs[0]].shape) != 4:
        return False
    if graph.tensors[src.inputs[1]].dtype not in ("float32", "float16"):
        return False
    name = graph.unique_name(op.outputs[0] + "_prelu_slope")
    graph.add_const(name, slope)
    inputs = list(src.inputs) + [""] * (PRELU_SLOPE_INPUT - len(src.inputs))
    src.inputs = inputs[:PRELU_SLOPE_INPUT] + [name]
    src.attrs["prelu"] = True
    src.outputs = [op.outputs[0]]
    return True


def _fold_activation(graph: Graph, src: Op, act: Op) -> bool:
    if act.type == "PRelu":
        return _fold_prelu(graph, src, act)
    if act.type not in _EPILOGUE or len(act.inputs) != 1 or _has_activation(src):
        return False
    if graph.tensors[act.outputs[0]].dtype != "float32":
        return False
    src.attrs["activation"] = op_expr(act)
    src.outputs = [act.outputs[0]]
    return True


def _scalar_bound(graph: Graph, src: Op, op: Op):
    """Max(x, c) / Min(x, c) with a scalar float constant c: the clip bounds (lo, hi) it is,
    else None. MegEngine writes ReLU6 as Min(Max(x, 0), 6)."""
    if op.type not in ("Max", "Min") or len(op.inputs) != 2:
        return None
    other = [i for i in op.inputs if i != src.outputs[0]]
    if len(other) != 1:
        return None
    c = graph.tensors[other[0]]
    if not c.is_const or c.dtype != "float32" or np.asarray(c.data).size != 1:
        return None
    if not same_shape(graph.tensors[op.outputs[0]].shape, graph.tensors[src.outputs[0]].shape):
        return None
    v = float(np.asarray(c.data).reshape(-1)[0])
    if v != v:
        return None
    return (v, np.inf) if op.type == "Max" else (-np.inf, v)


def _fold_bound(graph: Graph, src: Op, op: Op) -> bool:
    """Fold Max/Min with a scalar into the epilogue as a clip, composing with a clip already
    there when the result is exactly one clip: min(max(x, a), d) = clip(x, a, d), and
    max(min(x, b), c) = clip(x, c, b) when c <= b."""
    bound = _scalar_bound(graph, src, op)
    if bound is None or src.attrs.get("prelu"):
        return False
    lo, hi = bound
    act = src.attrs.get("activation")
    if act is not None:
        if not (act[0] == "clip" and act[1] == ("in", 0)):
            return False
        a, b = float(act[2][1]), float(act[3][1])
        if op.type == "Min" and b == np.inf:
            lo = a
        elif op.type == "Max" and a == -np.inf and lo <= b:
            hi = b
        else:
            return False
    src.attrs["activation"] = ("clip", ("in", 0), ("const", lo), ("const", hi))
    src.outputs = [op.outputs[0]]
    return True


def _position(graph: Graph, op: Op) -> int:
    """Index of `op` itself (list.index/remove compare Ops field by field: slow, and two
    equal ops are not the same op)."""
    return next(i for i, o in enumerate(graph.ops) if o is op)


def _fold_residual(graph: Graph, src: Op, add: Op) -> bool:
    """Add(conv, r) with r a tensor of the conv output's shape: the conv's epilogue adds r
    (after the bias, before the activation). The conv now reads r, so the planner keeps r's
    buffer alive until the conv has run; if r is computed after the conv, the conv moves to
    the Add's place (its inputs exist before it was, its only consumer was the Add)."""
    out = graph.tensors[src.outputs[0]]
    other = [i for i in add.inputs if i != src.outputs[0]]
    if src.type != "Conv" or len(add.inputs) != 2 or len(other) != 1:
        return False
    if (_has_activation(src) or src.attrs.get("residual")
            or int(src.attrs.get("group", 1)) != 1 or len(out.shape) != 4):
        return False
    r = graph.tensors[other[0]]
    if (r.is_const or r.dtype != "float32" or out.dtype != "float32" or not same_shape(r.shape, out.shape)
            or not same_shape(graph.tensors[add.outputs[0]].shape, out.shape)
            or r.layout != "nchw" or out.layout != "nchw"):
        return False
    bias = src.inputs[2] if len(src.inputs) > 2 else ""
    src.inputs = list(src.inputs[:2]) + [bias, other[0]] + list(src.inputs[4:])
    src.attrs["residual"] = True
    src.outputs = [add.outputs[0]]
    del graph.ops[_position(graph, src)]
    graph.ops.insert(_position(graph, add), src)  # the caller removes the Add
    return True


def fuse_bias_and_activation(graph: Graph, residual: bool = True) -> Graph:
    """Fold a following bias Add, activation or clamp into a Conv/Gemm's epilogue, and with
    `residual` a residual Add too. Group-1 conv lowerings read a fused residual (input 3,
    attrs["residual"]): the portable one, the packed-GEMM one of every ISA and the AVX2
    Winograd one. The NCHW44 kernels do not, so a graph headed for that layout keeps the
    separate Add (which then runs in NCHW44 too)."""

    def fold_add(graph: Graph, src: Op, add: Op) -> bool:
        return _fold_bias(graph, src, add) or (residual and _fold_residual(graph, src, add))

    # One scan per round, folding as it goes (a fold used to restart the scan: quadratic in
    # graph size). A fold keeps every remaining tensor's consumer count (the folded op's
    # other inputs are now read by `src`) and only moves the op's output to `src`, so the
    # maps stay right with that one update; rounds repeat until nothing folds.
    changed = True
    while changed:
        changed = False
        producers, consumers = graph.producers(), graph.consumers()
        for op in list(graph.ops):
            if op.type not in ("Add", "Max", "Min", "PRelu", *_EPILOGUE) or not op.inputs:
                continue
            for name in op.inputs:
                src = producers.get(name)
                if src is None or src.type not in _LINEAR or not _single_use(graph, consumers, name):
                    continue
                fold = (fold_add if op.type == "Add" else
                        _fold_bound if op.type in ("Max", "Min") else _fold_activation)
                if fold(graph, src, op):
                    del graph.ops[_position(graph, op)]
                    producers[src.outputs[0]] = src
                    changed = True
                    break
    return graph


def _remap(expr, mapping):
    if expr[0] == "in":
        return ("in", mapping[expr[1]])
    if expr[0] == "const":
        return expr
    return (expr[0],) + tuple(_remap(c, mapping) for c in expr[1:])


def fuse_elementwise_chains(graph: Graph) -> Graph:
    """Inline single-use float32 element-wise producers into their element-wise consumer."""
    producers, consumers = graph.producers(), graph.consumers()
    fused = {}  # output name -> (expr, inputs, chain)
    dead = set()
    for op in graph.ops:
        if not is_elementwise(op) or len(op.outputs) != 1:
            continue
        out = graph.tensors[op.outputs[0]]
        if out.dtype != "float32" or any(graph.tensors[i].dtype != "float32" for i in op.inputs):
            continue
        expr, inputs, chain = op_expr(op), [], [op.type]
        mapping = {}
        for k, name in enumerate(op.inputs):
            src = producers.get(name)
            if (name in fused and src is not None and id(src) not in dead
                    and _single_use(graph, consumers, name)
                    and same_shape(graph.tensors[name].shape, out.shape)
                    and len(fused[name][2]) + len(chain) <= MAX_FUSED_OPS):
                sub_expr, sub_inputs, sub_chain = fused[name]
                sub_map = {}
                for j, sub_name in enumerate(sub_inputs):
                    if sub_name not in inputs:
                        inputs.append(sub_name)
                    sub_map[j] = inputs.index(sub_name)
                mapping[k] = ("expr", _remap(sub_expr, sub_map))
                chain = sub_chain + chain
                dead.add(id(src))
            else:
                if name not in inputs:
                    inputs.append(name)
                mapping[k] = ("in", inputs.index(name))
        expr = _substitute(expr, mapping)
        fused[op.outputs[0]] = (expr, inputs, chain)
        if len(chain) > 1:
            op.type, op.inputs = "FusedElementwise", inputs
            op.attrs = {"expr": expr, "chain": "+".join(chain)}
            check_opdef(graph, op)  # the output keeps the shape its opdef infers
    graph.ops = [op for op in graph.ops if id(op) not in dead]
    return graph


def _substitute(expr, mapping):
    if expr[0] == "in":
        kind, value = mapping[expr[1]]
        return value if kind == "expr" else ("in", value)
    if expr[0] == "const":
        return expr
    return (expr[0],) + tuple(_substitute(c, mapping) for c in expr[1:])
