"""Ops that only reinterpret bytes (reshape-like) become views: no instruction at all."""
from __future__ import annotations

from ...codegen.kernel import Instr, View, make_kernel
from ...codegen.params import i32, schema
from ...ir import Graph, Op, itemsize
from ...ir.value_shapes import computed_shape
from ..registry import implements


# fill_ones_bytes, copy_bytes
NBYTES_PARAMS = schema(i32("nbytes", "bytes to write"))


VIEW_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "BitCast")


@implements(*VIEW_OPS)
def lower_view(op: Op, graph: Graph):
    if op.type == "Reshape" and computed_shape(graph, op):  # not a view: sizes computed
        from .computed_shape_generic import computed_shape_instr

        return [computed_shape_instr(op, graph)]
    if op.type == "Dropout":
        return _lower_dropout(op, graph)
    if op.type == "BitCast":
        _check_bitcast(op, graph)
    return [View(op.outputs[0], op.inputs[0])]


def _check_bitcast(op: Op, graph: Graph) -> None:
    """BitCast reinterprets each element's bytes: a view when both types have one size."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if itemsize(x.dtype) != itemsize(y.dtype) or tuple(x.shape) != tuple(y.shape):
        raise graph.error(f"BitCast from {x.dtype} to {y.dtype}: the element sizes differ "
                          f"({itemsize(x.dtype)} and {itemsize(y.dtype)} bytes)", op)


def _lower_dropout(op: Op, graph: Graph):
    """Inference Dropout: the output is the input and the mask is all true. Training mode
    with a non-zero ratio is random and refused."""
    import numpy as np

    training = bool(op.attrs.get("is_test", 1) == 0) if graph.opset < 7 else False
    if len(op.inputs) > 2 and op.inputs[2]:
        t = graph.tensors[op.inputs[2]]
        if not t.is_const:
            raise graph.needs_value(op, op.inputs[2], "training_mode")
        training = bool(np.asarray(t.data).reshape(-1)[0])
    ratio = float(op.attrs.get("ratio", 0.5))
    if len(op.inputs) > 1 and op.inputs[1]:
        t = graph.tensors[op.inputs[1]]
        if not t.is_const:
            raise graph.needs_value(op, op.inputs[1], "ratio")
        ratio = float(np.asarray(t.data).reshape(-1)[0])
    if training and ratio != 0.0:
        raise graph.error("training-mode Dropout (random masking) is not supported", op)
    items = [View(op.outputs[0], op.inputs[0])]
    if len(op.outputs) > 1 and op.outputs[1]:
        name = "fill_ones_bytes"
        body = """    memset(out_ptrs[0], 1, (size_t)(uint32_t)nbytes);
"""
        items.append(Instr(make_kernel(name, body, NBYTES_PARAMS), [], [op.outputs[1]],
                           NBYTES_PARAMS.pack(nbytes=graph.tensors[op.outputs[1]].nbytes)))
    return items


def copy_instr(src: str, dst: str, graph: Graph) -> Instr:
    """A plain byte copy, for outputs that must own their memory (e.g. a constant output)."""
    name = "copy_bytes"
    body = """    memcpy(out_ptrs[0], in_ptrs[0], (size_t)(uint32_t)nbytes);
"""
    return Instr(make_kernel(name, body, NBYTES_PARAMS), [src], [dst],
                 NBYTES_PARAMS.pack(nbytes=graph.tensors[dst].nbytes))
