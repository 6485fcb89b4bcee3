"""Expanding ONNX function ops into their definition.

Many ONNX operators (Attention, LayerNormalization, NegativeLogLikelihoodLoss, Range,
Celu, ...) are *functions*: the schema carries a body made of simpler operators, possibly
generated for the node's attributes and input types (context-dependent functions). When
no kernel lowers such an op, the compiler replaces the node by that body, so each of its
operators is inferred, folded, fused and lowered like any other.
"""
from __future__ import annotations

from typing import List, Optional

import onnx
from onnx import helper

from .graph import Graph, Op
from .onnx_attrs import attrs_of
from .onnx_types import to_onnx_elem_type


def _schema(op: Op, opset: int):
    domain = op.attrs.get("_domain", "")
    try:
        return onnx.defs.get_schema(op.type, opset, domain)
    except Exception:  # unknown op or not defined at this opset
        return None


def _node_proto(op: Op) -> onnx.NodeProto:
    attrs = {k: v for k, v in op.attrs.items() if not k.startswith("_")}
    return helper.make_node(op.type, op.inputs, op.outputs, name=op.name,
                            domain=op.attrs.get("_domain", ""), **attrs)


def _function_body(graph: Graph, op: Op, schema, node: onnx.NodeProto):
    """The FunctionProto for this node at the graph's opset, or None."""
    versions = [v for v in schema.function_opset_versions if v <= graph.opset]
    if versions:
        fp = onnx.FunctionProto()
        fp.ParseFromString(schema.get_function_with_opset_version(max(versions)))
        return fp
    versions = [v for v in schema.context_dependent_function_opset_versions
                if v <= graph.opset]
    if versions:
        types = []
        for name in op.inputs:
            if not name:
                types.append(onnx.TypeProto().SerializeToString())
                continue
            t = graph.tensors[name]
            types.append(helper.make_tensor_type_proto(to_onnx_elem_type(t.dtype),
                                                       list(t.shape)).SerializeToString())
        data = schema.get_context_dependent_function_with_opset_version(
            max(versions), node.SerializeToString(), types)
        if not data:
            return None
        fp = onnx.FunctionProto()
        fp.ParseFromString(data)
        return fp
    return None


def expand_function(graph: Graph, op: Op) -> Optional[List[Op]]:
    """The ops of `op`'s function body (names made unique), or None if it has none."""
    schema = _schema(op, graph.opset)
    if schema is None or not (schema.has_function or schema.has_context_dependent_function):
        return None
    node = _node_proto(op)
    for attr_name, attr in schema.attributes.items():  # defaults the body may refer to
        if attr_name not in op.attrs and attr.default_value.name:
            node.attribute.extend([attr.default_value])
    try:
        body = _function_body(graph, op, schema, node)
    except Exception as exc:  # the generator rejects what the schema rejects
        raise graph.error(f"cannot expand the function: {str(exc).strip()[:200]}", op) \
            from None
    if body is None or not len(body.node):
        return None
    from onnx.backend.test.case.node import function_expand_helper

    prefix = (op.name or op.outputs[0]) + "__"
    nodes = function_expand_helper(node, body, prefix)
    ops = []
    for k, n in enumerate(nodes):
        if n.domain not in ("", "ai.onnx"):
            return None
        ops.append(Op(n.op_type, list(n.input), list(n.output), attrs_of(n),
                      n.name or f"{prefix}{n.op_type}_{k}"))
    return ops
