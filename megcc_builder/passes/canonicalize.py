"""Bring ops into the one form the fusion passes and kernels expect.

Constant operands that only parametrise an op (Clip's bounds) become attributes, and
`auto_pad` becomes explicit `pads`, so later passes compare attributes, not tensors.
A pooling window that covers the whole map is its global pooling (ResNet-50 and the
Inception nets end in a 7x7 AveragePool on a 7x7 map; the global kernels are made for it).
"""
import numpy as np

from ..ir import Graph, Op
from ..ir.symbolic import is_sym

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


_FLOAT_DTYPES = ("float32", "float16", "bfloat16")
_GLOBAL_OF = {"AveragePool": "GlobalAveragePool", "MaxPool": "GlobalMaxPool"}


def _pool_over_whole_map(op: Op, graph: Graph) -> None:
    """AveragePool/MaxPool with a window equal to its (known) map, no padding, no dilation:
    one output per channel whatever the strides or ceil_mode, the mean/max of the map.
    (Runs after passes/qdq.py, so a float pool here is a float op, not part of a
    DequantizeLinear -> pool -> QuantizeLinear island that keeps onnxruntime's QLinear form.)"""
    x = graph.tensors[op.inputs[0]]
    spatial = list(x.shape[2:])
    # (float only: the global kernels are float kernels; int8 pools keep their own)
    if (x.dtype not in _FLOAT_DTYPES or not spatial or any(is_sym(d) for d in spatial)
            or len(op.outputs) > 1 and op.outputs[1]
            or op.attrs.get("storage_order", 0)):
        return
    if (list(op.attrs.get("kernel_shape", [])) != spatial
            or any(op.attrs.get("pads", [0] * 2 * len(spatial)))
            or any(d != 1 for d in op.attrs.get("dilations", [1] * len(spatial)))):
        return
    op.type = _GLOBAL_OF[op.type]
    op.attrs = {}
    op.outputs = op.outputs[:1]


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
        if op.type in _GLOBAL_OF:
            _pool_over_whole_map(op, graph)
        elif op.type == "Clip":
            _clip_bounds(op, graph)
    return graph
