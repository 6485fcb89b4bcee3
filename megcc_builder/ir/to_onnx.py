"""Graph IR -> ONNX ModelProto (opset 17).

The IR already speaks ONNX (op names, attribute semantics, tensor inputs), so
export is a direct transcription: constants become initializers, every other
tensor gets a value_info with the shape and dtype the IR claims.  Running the
result in onnxruntime is an oracle for a frontend that is independent of our own
kernels, and onnxruntime's shape checks catch IR shapes that are wrong.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .dtypes import numpy_dtype

OPSET = 17

_ELEM_TYPE = {
    "float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16,
    "float64": TensorProto.DOUBLE, "int8": TensorProto.INT8, "uint8": TensorProto.UINT8,
    "int16": TensorProto.INT16, "uint16": TensorProto.UINT16, "int32": TensorProto.INT32,
    "uint32": TensorProto.UINT32, "int64": TensorProto.INT64, "uint64": TensorProto.UINT64,
    "bool": TensorProto.BOOL,
}


def elem_type(dtype: str) -> int:
    if dtype not in _ELEM_TYPE:
        raise ValueError(f"dtype {dtype} has no ONNX equivalent (quantized tensors need "
                         "QuantizeLinear/DequantizeLinear, which this exporter does not emit)")
    return _ELEM_TYPE[dtype]


def graph_to_onnx(graph, name: str = "megcc_graph") -> onnx.ModelProto:
    """Export `graph` (megcc_builder.ir.Graph) as a checked ONNX model."""
    used = {i for op in graph.ops for i in op.inputs if i} | set(graph.outputs)
    initializers = [_initializer(t) for n, t in graph.tensors.items()
                    if t.is_const and n in used]
    nodes = [_node(op, i) for i, op in enumerate(graph.ops)]
    inputs = [_value_info(graph.tensors[n]) for n in graph.inputs]
    outputs = [_value_info(graph.tensors[n]) for n in graph.outputs]
    boundary = set(graph.inputs) | set(graph.outputs)
    produced = {o for op in graph.ops for o in op.outputs if o}
    value_info = [_value_info(graph.tensors[n]) for n in sorted(produced - boundary)]
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers,
                          value_info=value_info)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="megcc-builder")
    model.ir_version = 8  # opset 17 era; accepted by every onnxruntime >= 1.13
    onnx.checker.check_model(model)
    return model


def _initializer(t) -> TensorProto:
    data = np.asarray(t.data).astype(numpy_dtype(t.dtype), copy=False).reshape(t.shape)
    elem_type(t.dtype)  # reject quantized constants with a clear message
    return numpy_helper.from_array(data, t.name)


def _value_info(t) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(t.name, elem_type(t.dtype), list(t.shape))


def _node(op, index: int) -> onnx.NodeProto:
    attrs = {k: _attr_value(v) for k, v in op.attrs.items() if v is not None}
    return helper.make_node(op.type, op.inputs, op.outputs,
                            name=op.name and f"{op.name}#{index}" or f"node{index}", **attrs)


def _attr_value(v):
    """IR attributes are plain Python values; ONNX wants ints/floats/strings/lists/tensors."""
    if isinstance(v, np.ndarray):
        return numpy_helper.from_array(v)
    if isinstance(v, (np.integer, bool)):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, tuple):
        return [_attr_value(x) for x in v]
    if isinstance(v, list):
        return [_attr_value(x) for x in v]
    return v
