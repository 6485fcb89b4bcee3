"""Ops that only reinterpret bytes (reshape-like) become views: no instruction at all."""
from __future__ import annotations

from ..ir import Graph, Op
from .base import Instr, Kernel, View, kernel_source, lowers

VIEW_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout")


@lowers(*VIEW_OPS)
def lower_view(op: Op, graph: Graph):
    if len(op.outputs) > 1 and op.outputs[1]:
        raise graph.error("the mask output of Dropout is not supported", op)
    return [View(op.outputs[0], op.inputs[0])]


def copy_instr(src: str, dst: str, graph: Graph) -> Instr:
    """A plain byte copy, for outputs that must own their memory (e.g. a constant output)."""
    name = "copy_bytes"
    body = """    memcpy(out_ptrs[0], in_ptrs[0], (size_t)(uint32_t)p[0]);
"""
    return Instr(Kernel(name, kernel_source(name, body)), [src], [dst],
                 [graph.tensors[dst].nbytes])
