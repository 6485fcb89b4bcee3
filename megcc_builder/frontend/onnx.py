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
from ..ir.graph import clip
from ..ir.onnx_attrs import attrs_of  # noqa: F401  (also this module's public name)
from ..ir.onnx_types import from_onnx_elem_type
from .dims import SymbolMaker, SymbolSpec
from .model_file import require_regular_file

MIN_OPSET, MAX_OPSET = 1, onnx.defs.onnx_opset_version()

# onnxruntime's quantized contrib ops (QOperator format, quantize_dynamic): the IR carries
# them under their bare names (ir/opdefs/quant.py)
MICROSOFT_QUANT_OPS = {"QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
                       "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat",
                       "QGemm", "MatMulIntegerToFloat", "QLinearSoftmax",
                       "DynamicQuantizeMatMul", "DynamicQuantizeLSTM"}


def _load_proto(path: str) -> onnx.ModelProto:
    require_regular_file(path)
    try:
        # External data is read per initializer below, where a failure can be named.
        return onnx.load(path, load_external_data=False)
    except Exception as exc:  # protobuf gives no useful type here
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CompileError(f"not a valid ONNX model ({type(exc).__name__}"
                           f"{': ' + clip(reason, 120) if reason else ''})", path) from None


def _external_data_problem(init, base_dir: str) -> str:
    """Why the external data of `init` cannot be read, in the user's terms ("" if the
    reason is not one of the plain ones)."""
    info = {e.key: e.value for e in init.external_data}
    location = info.get("location", "")
    if not location:
        return "its external data names no file"
    where = os.path.join(base_dir, location)
    if not os.path.exists(where):
        return f"external data file '{clip(location)}' does not exist next to the model"
    if not os.path.isfile(where):
        return f"external data '{clip(location)}' is not a regular file"
    return ""


def load_onnx(path_or_model, input_shapes: Optional[Dict[str, Tuple[int, ...]]] = None,
              source: str = "", symbols: Optional[SymbolSpec] = None) -> Graph:
    """input_shapes: dims are ints or symbol names (str); dimensions the model leaves
    open become symbols too (frontend/dims.py), with the bounds and hints of `symbols`."""
    if isinstance(path_or_model, onnx.ModelProto):
        model, source = path_or_model, source or "<onnx model>"
    else:
        source = source or str(path_or_model)
        model = _load_proto(source)
    return graph_from_proto(model, input_shapes or {}, source, symbols)


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
                     source: str, symbols: Optional[SymbolSpec] = None) -> Graph:
    graph = Graph(source)
    maker = SymbolMaker(graph, symbols, source)
    graph.opset = _opset_of(model, source)
    # (abspath: a bare "model.onnx" has dirname "", which is still a directory)
    base_dir = os.path.dirname(os.path.abspath(source)) if os.path.isfile(source) else None
    g = model.graph

    for init in g.initializer:
        external = onnx.external_data_helper.uses_external_data(init)
        if external and not base_dir:
            raise CompileError(f"initializer '{clip(init.name)}' keeps its data in an external "
                               "file, which an in-memory model cannot reach", source)
        if external:
            problem = _external_data_problem(init, base_dir)
            if problem:
                raise CompileError(f"initializer '{clip(init.name)}': {problem}", source)
        try:
            if external:
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
        graph.add_tensor(_input_tensor(vi, input_shapes.get(vi.name), source, maker))
        graph.inputs.append(vi.name)
    maker.check_spec()

    writer: Dict[str, str] = {}   # tensor -> the node that writes it
    for index, node in enumerate(g.node):
        name = node.name or f"{node.op_type}_{index}"
        if node.domain == "com.microsoft" and node.op_type in MICROSOFT_QUANT_OPS:
            pass
        elif node.domain not in ("", "ai.onnx"):
            raise CompileError(f"operator {node.domain}.{node.op_type} is not supported",
                               source, name)
        for out in node.output:
            # SSA: one writer per tensor. Otherwise which value a reader sees depends on
            # order the compiler is free to change (it used to take the last writer).
            if out in writer:
                raise CompileError(f"tensor '{clip(out)}' is written by node "
                                   f"'{clip(writer[out])}' and by node '{clip(name)}' (a graph "
                                   "must assign each tensor once)", source, name)
            if out and out in graph.tensors:
                kind = "a graph input" if out in graph.inputs else "an initializer"
                raise CompileError(f"writes tensor '{clip(out)}', which is {kind}", source, name)
            if out:
                writer[out] = name
        attrs = attrs_of(node)
        from ..ir import Op

        graph.ops.append(Op(node.op_type, list(node.input), list(node.output), attrs, name))

    graph.outputs = [vi.name for vi in g.output]
    if not graph.outputs:
        raise CompileError("model has no outputs", source)
    return graph


def _input_tensor(vi, shape_override, source, maker: SymbolMaker) -> Tensor:
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        raise CompileError(f"input '{vi.name}' is not a tensor (sequences and maps are not "
                           "supported)", source)
    try:
        dtype = from_onnx_elem_type(tt.elem_type)
    except KeyError as exc:
        raise CompileError(f"input '{vi.name}' has unsupported dtype {exc}", source) from None
    if shape_override is not None:
        shape = tuple(maker.symbol(d, k) if isinstance(d, str) else int(d)
                      for k, d in enumerate(shape_override))
        model_dims = list(tt.shape.dim) if tt.HasField("shape") else None
        if model_dims is not None and len(model_dims) != len(shape):
            raise CompileError(f"input '{vi.name}' has rank {len(model_dims)} in the model, "
                               f"but --input-shapes gives {shape}", source)
        return Tensor(vi.name, shape, dtype)
    if not tt.HasField("shape"):
        raise CompileError(f"input '{vi.name}' has no shape in the model; give one with "
                           "--input-shapes", source)
    dims = []
    for k, d in enumerate(tt.shape.dim):
        # dim_param, no value, or the exporters' -1 for "unknown": a run-time dimension
        # (0 is ONNX's zero-sized dimension, which megcc does not compile)
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(d.dim_value)
        elif d.HasField("dim_value") and d.dim_value == 0:
            raise CompileError(f"input '{clip(vi.name)}' has a zero-sized dimension (0 at axis "
                               f"{k}); megcc compiles non-empty static shapes", source)
        elif d.dim_param and d.dim_param != "?":
            dims.append(maker.symbol(d.dim_param, k))
        elif d.HasField("dim_value") and d.dim_value < -1:
            raise CompileError(f"input '{clip(vi.name)}' has a negative dimension "
                               f"({d.dim_value} at axis {k})", source)
        else:
            dims.append(maker.unnamed_symbol(k))
    return Tensor(vi.name, tuple(dims), dtype)
