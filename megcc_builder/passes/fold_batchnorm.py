"""Fold inference BatchNormalization into the convolution or linear layer before it.

y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta is again a convolution with
weights scaled per output channel and a new bias, so the BN costs nothing at run time.
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


def fold_batchnorm(graph: Graph) -> Graph:
    producers = graph.producers()
    consumers = graph.consumers()
    removed = set()
    for bn in graph.ops:
        if bn.type != "BatchNormalization" or len([o for o in bn.outputs if o]) != 1:
            continue
        src = producers.get(bn.inputs[0])
        if src is None or src.type != "Conv" or len(consumers.get(bn.inputs[0], [])) != 1 \
                or bn.inputs[0] in graph.outputs:
            continue
        w = graph.tensors[src.inputs[1]]
        if not w.is_const or w.dtype != "float32":
            continue
        ss = _bn_scale_shift(bn, graph)
        if ss is None:
            continue
        scale, shift = ss
        bias = np.zeros(w.shape[0])
        if len(src.inputs) > 2 and src.inputs[2]:
            b = graph.tensors[src.inputs[2]]
            if not b.is_const:
                continue
            bias = np.asarray(b.data, np.float64)
        new_w = (np.asarray(w.data, np.float64) * scale.reshape(-1, *[1] * (w.data.ndim - 1)))
        new_b = bias * scale + shift
        wname = graph.unique_name(src.inputs[1] + "_bnfold")
        bname = graph.unique_name(src.outputs[0] + "_bnfold_bias")
        graph.add_const(wname, new_w.astype(np.float32))
        graph.add_const(bname, new_b.astype(np.float32))
        src.inputs = [src.inputs[0], wname, bname]
        # the conv now produces the BN's output directly
        graph.tensors[bn.outputs[0]].shape = graph.tensors[src.outputs[0]].shape
        src.outputs = [bn.outputs[0]]
        removed.add(id(bn))
    graph.ops = [op for op in graph.ops if id(op) not in removed]
    return graph
