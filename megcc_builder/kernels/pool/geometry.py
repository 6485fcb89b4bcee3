"""The geometry of a 2-D MaxPool/AveragePool as the vector kernel and the cost model see it."""
from __future__ import annotations

from ...codegen.window import plane
from ...ir import Graph, Op
from ...isa import IsaSpec


def pool_geometry(op: Op, graph: Graph):
    """The geometry dict of a 2-D MaxPool/AveragePool the vector kernel handles, else None."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if op.type not in ("MaxPool", "AveragePool") or x.dtype != "float32" or len(x.shape) != 4:
        return None
    if len(op.outputs) > 1 and op.outputs[1]:
        return None
    kh, kw = op.attrs["kernel_shape"]
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
    if sw not in (1, 2):
        return None
    return dict(n=x.shape[0], c=x.shape[1], h=x.shape[2], w=x.shape[3], oc=y.shape[1],
                oh=y.shape[2], ow=y.shape[3], kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw,
                pads=pads, group=1)


def pool_cost(op: Op, graph: Graph, isa: IsaSpec, vector: bool) -> float:
    geo = pool_geometry(op, graph)
    if geo is None:  # not the vector kernel's (int8 codes, other ranks): the scalar loop
        y = graph.tensors[op.outputs[0]]
        taps = 1
        for k in op.attrs.get("kernel_shape", [1]):
            taps *= int(k)
        return float(y.numel) * taps * 2.0
    taps = geo["kh"] * geo["kw"]
    planes = geo["n"] * geo["c"]
    if not vector:
        return planes * geo["oh"] * geo["ow"] * taps * 2.0
    vs = isa.vec("f32").direct
    ph, pw = plane(geo, vs.vw)
    vec = geo["oh"] * -(-geo["ow"] // vs.vw) * taps * (1.5 if geo["sw"] == 1 else 2.5)
    return planes * (vec + ph * pw / 4)
