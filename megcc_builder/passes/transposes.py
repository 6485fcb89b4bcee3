"""Transpose elimination: compose back-to-back Transposes (inverse pairs become a free
Identity view) and move Transposes below element-wise ops and Concats so that they meet
their inverse.

Layout conversions produce such chains: a MegEngine model dumped in NCHW44 format arrives
as NCHW ops each wrapped in a relayout in and out (frontend/mge.py), and the relayout out of
one conv meets the relayout in of the next, possibly across the element-wise ops between
them (a residual Add, a ReLU). A Transpose copies every element; an Identity is a view.
"""
from __future__ import annotations

from typing import List, Optional

from ..ir import Graph, Op, Tensor
from ..ir.expr import is_elementwise
from ..ir.symbolic import same_shape


def _perm(op: Op, rank: int) -> List[int]:
    perm = op.attrs.get("perm")
    return list(perm) if perm is not None else list(range(rank))[::-1]


def _compose(graph: Graph, op: Op, producers) -> bool:
    """Transpose(Transpose(x, p1), p2) -> Transpose(x, p1[p2]), or Identity(x)."""
    src = producers.get(op.inputs[0])
    if src is None or src.type != "Transpose":
        return False
    rank = len(graph.tensors[op.inputs[0]].shape)
    p1, p2 = _perm(src, rank), _perm(op, rank)
    perm = [p1[i] for i in p2]
    op.inputs = [src.inputs[0]]
    if perm == list(range(rank)):
        op.type, op.attrs = "Identity", {}
    else:
        op.attrs = {"perm": perm}
    return True


def _sink(graph: Graph, op: Op, producers) -> Optional[Op]:
    """Ew(Transpose(a, p), Transpose(b, p), constant...) -> Transpose(Ew(a, b, ...), p), and
    Concat(Transpose(a, p), ..., axis) -> Transpose(Concat(a, ..., p[axis]), p): the new
    Transpose after the op (returned), which may then cancel with a later one. Constant
    operands are transposed at compile time (broadcasting commutes with permuting axes)."""
    concat = op.type == "Concat"
    if not (is_elementwise(op) or concat) or len(op.outputs) != 1:
        return None
    out = graph.tensors[op.outputs[0]]
    rank = len(out.shape)
    perm, pre, consts = None, [], []
    for i, name in enumerate(op.inputs):
        t = graph.tensors[name] if name else None
        if t is None or (t.is_const and t.numel == 1):
            pre.append(name)  # omitted optional input, or a scalar: broadcasts anywhere
            continue
        if t.is_const and not concat and len(t.shape) <= rank:
            pre.append(name)
            consts.append(i)  # permuted below, once the permutation is known
            continue
        src = producers.get(name)
        if src is None or src.type != "Transpose" or len(t.shape) != rank:
            return None
        if not concat and not same_shape(t.shape, out.shape):
            return None  # a broadcast run-time operand: leave it
        p = _perm(src, rank)
        if perm is not None and p != perm:
            return None
        perm = p
        pre.append(src.inputs[0])
    if perm is None:
        return None
    inverse = [perm.index(i) for i in range(rank)]
    for i in consts:
        value = graph.tensors[pre[i]].data
        value = value.reshape((1,) * (rank - value.ndim) + value.shape).transpose(inverse)
        pre[i] = graph.unique_name(pre[i] + "_untransposed")
        graph.add_const(pre[i], value.copy(), graph.tensors[op.inputs[i]].dtype)
    moved = graph.unique_name(op.outputs[0] + "_untransposed")
    graph.add_tensor(Tensor(moved, tuple(out.shape[i] for i in inverse), out.dtype,
                            quant=out.quant))
    after = Op("Transpose", [moved], [op.outputs[0]], {"perm": perm}, name=op.name)
    if concat:
        axis = int(op.attrs.get("axis", 0))
        op.attrs = {**op.attrs, "axis": perm[axis + rank if axis < 0 else axis]}
    op.inputs, op.outputs = pre, [moved]
    return after


def eliminate_transposes(graph: Graph) -> Graph:
    """Rewrite one op at a time (producers change with every rewrite) until none applies."""
    while True:
        producers = graph.producers()
        for i, op in enumerate(graph.ops):
            if op.type == "Transpose" and op.inputs and _compose(graph, op, producers):
                break
            after = _sink(graph, op, producers) if op.type != "Transpose" else None
            if after is not None:
                graph.ops.insert(i + 1, after)
                break
        else:
            return graph


NHWC_TO_NCHW = [0, 3, 1, 2]


def fold_nhwc_input_into_conv(graph: Graph) -> Graph:
    """Conv(Transpose(x, perm=[0, 3, 1, 2])) with x an (N, H, W, C) float32 tensor of static
    shape: the conv reads x in NHWC itself (attrs["input_nhwc"]; the portable im2col and the
    packed-GEMM im2col/padding copy take the layout change into the copy they make anyway),
    so the model's NHWC input costs no transpose pass. The Transpose stays for its other
    consumers, if any."""
    producers, consumers = graph.producers(), graph.consumers()
    for op in graph.ops:
        if op.type != "Conv" or op.attrs.get("input_nhwc"):
            continue
        src = producers.get(op.inputs[0])
        if src is None or src.type != "Transpose" or _perm(src, 4) != NHWC_TO_NCHW:
            continue
        x = graph.tensors[src.inputs[0]]
        if (len(x.shape) != 4 or x.dtype != "float32" or x.layout != "nchw" or x.is_const
                or not all(isinstance(d, int) for d in x.shape)):
            continue
        w = graph.tensors[op.inputs[1]]
        if not w.is_const or len(w.shape) != 4:
            continue
        op.inputs = [src.inputs[0]] + list(op.inputs[1:])
        op.attrs["input_nhwc"] = True
    return graph
