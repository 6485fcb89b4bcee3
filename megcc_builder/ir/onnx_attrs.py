"""ONNX NodeProto attributes -> IR attrs (plain Python values).

Used by the ONNX frontend for the model's nodes and by the IR itself for nodes it makes
from ONNX protos (function bodies, the branch of a constant If)."""
from __future__ import annotations

import onnx
from onnx import helper


def _attr_value(attr):
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8", "replace") for v in value]
    return value  # TensorProto values stay protos: the IR keeps ONNX's attribute types


def attrs_of(node: onnx.NodeProto) -> dict:
    """A node's attributes as IR attrs: plain Python values, subgraphs stay protos."""
    attrs = {a.name: _attr_value(a) for a in node.attribute}
    for a in node.attribute:
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            attrs[a.name] = helper.get_attribute_value(a)
    return attrs
