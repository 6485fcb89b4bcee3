"""Multi-op patterns the NCHW88 layout pass (passes/layout_nchw44.py) computes as one op
inside the region instead of leaving the region for them (each would cost a relayout out
and one back): MegEngine's ShuffleNetV2 channel shuffle + split, and its spatial mean taken
one axis at a time. Each matcher gets the op the walk is at, the graph's consumers and the
tensors already in the region (a container of names); it returns the ops the pattern covers and its ends, or
None."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import Graph, Op


def match_unzip(graph: Graph, op: Op, consumers, region) -> Optional[tuple]:
    """NCHW88: (ops, x, even, odd) if `op` starts ShuffleNetV2's channel shuffle and
    split of an NCHW88 tensor x (1, C, H, W), C % 16 == 0: Reshape to (C/2, 2, H*W),
    Transpose [1, 0, 2], Reshape to (2, 1, C/2, H, W), Gather 0 / Gather 1 on axis 0
    (each optionally Squeezed), i.e. the even and the odd channels; else None."""
    if op.type != "Reshape" or op.inputs[0] not in region:
        return None
    x = graph.tensors[op.inputs[0]]
    if len(x.shape) != 4 or x.shape[0] != 1 or x.shape[1] % 16:
        return None
    c, h, w = x.shape[1:]

    def only_consumer(name, op_type):
        use = consumers.get(name, [])
        ok = len(use) == 1 and use[0].type == op_type and name not in graph.outputs
        return use[0] if ok else None

    def shape(name):
        return tuple(graph.tensors[name].shape)

    if shape(op.outputs[0]) != (c // 2, 2, h * w):
        return None
    t = only_consumer(op.outputs[0], "Transpose")
    if t is None or list(t.attrs.get("perm", [])) != [1, 0, 2]:
        return None
    r2 = only_consumer(t.outputs[0], "Reshape")
    if r2 is None or shape(r2.outputs[0]) != (2, 1, c // 2, h, w):
        return None
    gathers = consumers.get(r2.outputs[0], [])
    if len(gathers) != 2 or r2.outputs[0] in graph.outputs:
        return None
    chain, halves = [op, t, r2], {}
    for gop in gathers:
        idx = graph.tensors.get(gop.inputs[1]) if len(gop.inputs) > 1 else None
        if (gop.type != "Gather" or int(gop.attrs.get("axis", 0)) != 0 or idx is None
                or not idx.is_const or np.asarray(idx.data).size != 1):
            return None
        k, out = int(np.asarray(idx.data).reshape(-1)[0]), gop.outputs[0]
        chain.append(gop)
        if shape(out) != (1, c // 2, h, w):  # a 1-D index: Squeeze axis 0 follows
            sq = only_consumer(out, "Squeeze")
            if sq is None or shape(sq.outputs[0]) != (1, c // 2, h, w):
                return None
            chain.append(sq)
            out = sq.outputs[0]
        halves[k] = out
    if sorted(halves) != [0, 1]:
        return None
    return chain, op.inputs[0], halves[0], halves[1]


def match_spatial_mean(graph: Graph, op: Op, consumers, region) -> Optional[tuple]:
    """NCHW88: (ops, x, result) if `op` starts a spatial mean taken one axis at a time
    (MegEngine's: ReduceMean over W, Squeeze, ReduceMean over H, Squeeze) of an NCHW88
    tensor x (N, C, H, W), ending in `result` (N, C): the mean over H*W (a mean of
    equal-length row means is the plane's mean); else None."""
    if op.type != "ReduceMean" or op.inputs[0] not in region:
        return None
    x = graph.tensors[op.inputs[0]]
    if len(x.shape) != 4:
        return None
    n, c, h, w = x.shape
    chain, cur, spatial = [], op, [h, w]  # the spatial extents not reduced yet
    while cur is not None and len(chain) < 6:
        shape = tuple(graph.tensors[cur.outputs[0]].shape)
        if shape[:2] != (n, c) or len(cur.outputs) != 1:
            return None
        if cur.type == "ReduceMean":
            axes = cur.attrs.get("axes")
            if axes is None and len(cur.inputs) > 1 and cur.inputs[1] \
                    and graph.tensors[cur.inputs[1]].is_const:
                axes = np.asarray(graph.tensors[cur.inputs[1]].data).reshape(-1).tolist()
            rank = len(graph.tensors[cur.inputs[0]].shape)
            if axes is None or len(axes) != 1 or int(axes[0]) % rank < 2:
                return None
            spatial.pop(int(axes[0]) % rank - 2)
        elif cur.type != "Squeeze" or any(d != 1 for d in graph.tensors[cur.inputs[0]].shape[
                len(shape):]):
            return None  # (a Squeeze of trailing 1s only)
        chain.append(cur)
        if not spatial and shape == (n, c):
            return chain, op.inputs[0], cur.outputs[0]
        use = consumers.get(cur.outputs[0], [])
        cur = use[0] if len(use) == 1 and cur.outputs[0] not in graph.outputs else None
        if cur is not None and cur.type not in ("ReduceMean", "Squeeze"):
            return None
    return None
