"""ONNX model file -> Graph IR.

The IR already speaks ONNX, so this is mostly bookkeeping: initializers become constants,
graph inputs get their static shapes (from the caller or the model), attributes become
plain Python values. Semantics stay those of the model's opset (`graph.opset`).
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

import onnx
from onnx import numpy_helper

from ..ir import CompileError, Graph, Tensor
from ..ir.onnx_attrs import attrs_of  # noqa: F401  (also this module's public name)
from ..ir.onnx_types import from_onnx_elem_type

MIN_OPSET, MAX_OPSET = 1, onnx.defs.onnx_opset_version()

# onnxruntime's quantized contrib ops (QOperator format, quantize_dynamic): the IR carries
# them under their bare names (ir/opdefs/quant.py)
MICROSOFT_QUANT_OPS = {"QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
                       "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat",
                       "QGemm", "MatMulIntegerToFloat"}


def _load_proto(path: str) -> onnx.ModelProto:
    if not os.path.isfile(path):
        raise CompileError("no such model file", path)
    try:
        return onnx.load(path)
    except Exception as exc:  # protobuf gives no useful type here
        raise CompileError(f"not a valid ONNX model ({type(exc).__name__})", path) from None


def load_onnx(path_or_model, input_shapes: Optional[Dict[str, Tuple[int, ...]]] = None,
              source: str = "") -> Graph:
    if isinstance(path_or_model, onnx.ModelProto):
        model, source = path_or_model, source or "<onnx model>"
    else:
        source = source or str(path_or_model)
        model = _load_proto(source)
    return graph_from_proto(model, input_shapes or {}, source)


def _opset_of(model: onnx.ModelProto, source: str) -> int:
    opset = None
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            opset = imp.version
    if opset is None:
        raise CompileError("model imports no default-domain opset", source)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise CompileError(f"opset {opset} is not supported (supported: {MIN_OPSET} to "
                           f"{MAX_OPSET})", source)
    return opset


def graph_from_proto(model: onnx.ModelProto, input_shapes: Dict[str, Tuple[int, ...]],
                     source: str) -> Graph:
    graph = Graph(source)
    graph.opset = _opset_of(model, source)
    base_dir = os.path.dirname(source) if os.path.isfile(source) else None
    g = model.graph

    for init in g.initializer:
        try:
            if base_dir and onnx.external_data_helper.uses_external_data(init):
                onnx.external_data_helper.load_external_data_for_tensor(init, base_dir)
            value = numpy_helper.to_array(init)
            dtype = from_onnx_elem_type(init.data_type)
        except KeyError as exc:
            raise CompileError(f"initializer '{init.name}' has unsupported dtype {exc}",
                               source) from None
        except Exception as exc:
            raise CompileError(f"initializer '{init.name}' cannot be read: {exc}", source) \
                from None
        graph.add_const(init.name, value, dtype)

    unknown = set(input_shapes) - {vi.name for vi in g.input}
    if unknown:
        raise CompileError(f"--input-shapes names '{sorted(unknown)[0]}', which is not an "
                           f"input of the model (inputs: "
                           f"{', '.join(vi.name for vi in g.input if vi.name not in graph.tensors)})",
                           source)
    for vi in g.input:
        if vi.name in graph.tensors:
            continue  # an initializer listed as input (old exporters): a constant
        graph.add_tensor(_input_tensor(vi, input_shapes.get(vi.name), source))
        graph.inputs.append(vi.name)

    for index, node in enumerate(g.node):
        if node.domain == "com.microsoft" and node.op_type in MICROSOFT_QUANT_OPS:
            pass
        elif node.domain not in ("", "ai.onnx"):
            raise CompileError(f"operator {node.domain}.{node.op_type} is not supported",
                               source, node.name or node.output[0])
        attrs = attrs_of(node)
        from ..ir import Op

        graph.ops.append(Op(node.op_type, list(node.input), list(node.output), attrs,
                            node.name or f"{node.op_type}_{index}"))

    graph.outputs = [vi.name for vi in g.output]
    if not graph.outputs:
        raise CompileError("model has no outputs", source)
    return graph


def _input_tensor(vi, shape_override, source) -> Tensor:
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        raise CompileError(f"input '{vi.name}' is not a tensor (sequences and maps are not "
                           "supported)", source)
    try:
        dtype = from_onnx_elem_type(tt.elem_type)
    except KeyError as exc:
        raise CompileError(f"input '{vi.name}' has unsupported dtype {exc}", source) from None
    if shape_override is not None:
        shape = tuple(int(d) for d in shape_override)
        model_dims = list(tt.shape.dim) if tt.HasField("shape") else None
        if model_dims is not None and len(model_dims) != len(shape):
            raise CompileError(f"input '{vi.name}' has rank {len(model_dims)} in the model, "
                               f"but --input-shapes gives {shape}", source)
        return Tensor(vi.name, shape, dtype)
    if not tt.HasField("shape"):
        raise CompileError(f"input '{vi.name}' has no shape in the model; give one with "
                           "--input-shapes", source)
    dims = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value") or d.dim_value <= 0:
            raise CompileError(f"input '{vi.name}' has a dynamic dimension "
                               f"'{d.dim_param or '?'}'; give its shape with --input-shapes",
                               source)
        dims.append(d.dim_value)
    return Tensor(vi.name, tuple(dims), dtype)
