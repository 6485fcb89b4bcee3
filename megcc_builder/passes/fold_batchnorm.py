"""Fold inference BatchNormalization into the convolution or linear layer before it.

y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta is again a convolution with
weights scaled per output channel and a new bias, so the BN costs nothing at run time.
The same holds for a Gemm (fully connected layer) followed by a BN over its features.
"""
import numpy as np

from ..ir import Graph, Op


def _bn_scale_shift(bn: Op, graph: Graph):
    vals = [graph.tensors[n] for n in bn.inputs[1:5]]
    if not all(t.is_const for t in vals):
        return None
    gamma, beta, mean, var = (np.asarray(t.data, np.float64) for t in vals)
    scale = gamma / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
    return scale, beta - mean * scale


def _old_bias(graph: Graph, src: Op, channels: int):
    """The layer's existing bias as a vector over output channels (None: not foldable)."""
    if len(src.inputs) < 3 or not src.inputs[2]:
        return np.zeros(channels)
    b = graph.tensors[src.inputs[2]]
    if not b.is_const:
        return None
    data = np.asarray(b.data, np.float64)
    if data.size == 1:
        return np.full(channels, float(data.reshape(-1)[0]))
    if data.size != channels or (data.ndim == 2 and data.shape[0] != 1):
        return None
    return data.reshape(-1)


def _folded_weights(graph: Graph, src: Op, scale: np.ndarray):
    w = graph.tensors[src.inputs[1]]
    if not w.is_const or w.dtype != "float32":
        return None
    data = np.asarray(w.data, np.float64)
    if src.type == "Conv":
        return data * scale.reshape(-1, *[1] * (data.ndim - 1))
    # Gemm: output features are B's rows when transposed, its columns otherwise
    if src.attrs.get("transA", 0) or src.attrs.get("alpha", 1.0) != 1.0 \
            or src.attrs.get("beta", 1.0) != 1.0:
        return None
    return data * (scale.reshape(-1, 1) if src.attrs.get("transB", 0) else scale.reshape(1, -1))


def _fold_into(graph: Graph, src: Op, bn: Op) -> bool:
    ss = _bn_scale_shift(bn, graph)
    if ss is None:
        return False
    scale, shift = ss
    new_w = _folded_weights(graph, src, scale)
    bias = _old_bias(graph, src, scale.size)
    if new_w is None or bias is None:
        return False
    wname = graph.unique_name(src.inputs[1] + "_bnfold")
    bname = graph.unique_name(src.outputs[0] + "_bnfold_bias")
    graph.add_const(wname, new_w.astype(np.float32))
    graph.add_const(bname, (bias * scale + shift).astype(np.float32))
    src.inputs = [src.inputs[0], wname, bname]
    src.outputs = [bn.outputs[0]]  # the layer now produces the BN's output directly
    return True


def fold_batchnorm(graph: Graph) -> Graph:
    producers = graph.producers()
    consumers = graph.consumers()
    removed = set()
    for bn in graph.ops:
        if bn.type != "BatchNormalization" or len([o for o in bn.outputs if o]) != 1:
            continue
        src = producers.get(bn.inputs[0])
        if src is None or src.type not in ("Conv", "Gemm") \
                or len(consumers.get(bn.inputs[0], [])) != 1 or bn.inputs[0] in graph.outputs:
            continue
        if src.type == "Gemm" and len(graph.tensors[bn.inputs[0]].shape) != 2:
            continue
        if _fold_into(graph, src, bn):
            removed.add(id(bn))
    graph.ops = [op for op in graph.ops if id(op) not in removed]
    return graph
