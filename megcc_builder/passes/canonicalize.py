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
    for position, key in ((1, "min"), (2, "max")):
        if len(op.inputs) > position and op.inputs[position]:
            t = graph.tensors[op.inputs[position]]
            if not t.is_const:
                raise graph.error(f"Clip {key} must be a constant", op)
            op.attrs[key] = float(np.asarray(t.data).reshape(-1)[0])
    op.inputs = op.inputs[:1]


def _drop_unused_outputs(op: Op, graph: Graph, used: set) -> None:
    """Optional outputs nobody reads (Dropout's mask, BN's running stats) are not computed."""
    for k in range(1, len(op.outputs)):
        if op.outputs[k] and op.outputs[k] not in used:
            op.outputs[k] = ""


def canonicalize(graph: Graph) -> Graph:
    used = {i for op in graph.ops for i in op.inputs if i} | set(graph.outputs)
    for op in graph.ops:
        if op.type in ("Dropout", "BatchNormalization", "MaxPool"):
            _drop_unused_outputs(op, graph, used)
        if op.type in _SPATIAL_OPS:
            _explicit_pads(op, graph)
        elif op.type == "Clip":
            _clip_bounds(op, graph)
    return graph
