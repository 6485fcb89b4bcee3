"""Bring ops into the one form the fusion passes and kernels expect.

Constant operands that only parametrise an op (Clip's bounds) become attributes, and
`auto_pad` becomes explicit `pads`, so later passes compare attributes, not tensors.
"""
import numpy as np

from ..ir import Graph, Op

_SPATIAL_OPS = ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool")


def _explicit_pads(op: Op, graph: Graph) -> None:
    mode = op.attrs.get("auto_pad", "NOTSET")
    if mode == "NOTSET" or op.type == "ConvTranspose":
        return
    x = graph.tensors[op.inputs[0]]
    spatial = x.shape[2:]
    if op.type == "Conv":
        kernel = graph.tensors[op.inputs[1]].shape[2:]
    else:
        kernel = op.attrs["kernel_shape"]
    strides = op.attrs.get("strides", [1] * len(spatial))
    dil = op.attrs.get("dilations", [1] * len(spatial))
    begin, end = [], []
    for i, size in enumerate(spatial):
        if mode == "VALID":
            begin.append(0)
            end.append(0)
            continue
        out = -(-size // strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - size)
        small = total // 2
        if mode == "SAME_UPPER":
            begin.append(small)
            end.append(total - small)
        else:
            begin.append(total - small)
            end.append(small)
    op.attrs["pads"] = begin + end
    del op.attrs["auto_pad"]


def _clip_bounds(op: Op, graph: Graph) -> None:
    """Constant bounds become attributes; run-time bounds stay inputs (compacted: x, then
    min if given at run time, then max), flagged by `_min_input` / `_max_input`."""
    runtime = []
    for position, key in ((1, "min"), (2, "max")):
        if len(op.inputs) > position and op.inputs[position]:
            t = graph.tensors[op.inputs[position]]
            if not t.is_const:
                op.attrs[f"_{key}_input"] = True
                runtime.append(op.inputs[position])
                continue
            value = np.asarray(t.data).reshape(-1)
            if value.size:
                op.attrs[key] = value[0].item()
    op.inputs = op.inputs[:1] + runtime


def _drop_unused_outputs(op: Op, graph: Graph, used: set) -> None:
    """Optional outputs nobody reads (Dropout's mask, BN's running stats) are not computed."""
    for k in range(1, len(op.outputs)):
        if op.outputs[k] and op.outputs[k] not in used:
            op.outputs[k] = ""


_LEGACY_BROADCAST = ("Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Less",
                     "Greater")


def _legacy_broadcast(op: Op, graph: Graph) -> list:
    """Opsets < 7: `broadcast=1` aligns B with A starting at `axis` (not at the end, as
    NumPy does). Reshaping B to A's rank with ones around makes it NumPy broadcasting;
    returns the Reshape op to run before `op` (none when B is a constant)."""
    if graph.opset >= 7 or not int(op.attrs.get("broadcast", 0)) or len(op.inputs) != 2:
        return []
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    ra, rb = len(a.shape), len(b.shape)
    axis = int(op.attrs.get("axis", ra - rb))
    axis = axis + ra if axis < 0 else axis
    shape = (1,) * axis + tuple(b.shape) + (1,) * (ra - axis - rb)
    if shape == tuple(b.shape):
        return []
    new = graph.unique_name(op.inputs[1] + "_bcast")
    if b.is_const:
        graph.add_const(new, np.asarray(b.data).reshape(shape), b.dtype)
        op.inputs[1] = new
        return []
    shape_name = graph.unique_name(new + "_shape")
    graph.add_const(shape_name, np.array(shape, np.int64))
    from ..ir import Tensor

    graph.add_tensor(Tensor(new, shape, b.dtype))
    reshape = Op("Reshape", [op.inputs[1], shape_name], [new], {}, new)
    op.inputs[1] = new
    return [reshape]


def canonicalize(graph: Graph) -> Graph:
    used = {i for op in graph.ops for i in op.inputs if i} | set(graph.outputs)
    ops = []
    for op in graph.ops:
        if op.type in _LEGACY_BROADCAST:
            ops += _legacy_broadcast(op, graph)
        ops.append(op)
    graph.ops = ops
    for op in graph.ops:
        if op.type in ("Dropout", "BatchNormalization", "MaxPool"):
            _drop_unused_outputs(op, graph, used)
        if op.type in _SPATIAL_OPS:
            _explicit_pads(op, graph)
        elif op.type == "Clip":
            _clip_bounds(op, graph)
    return graph
