"""Mapping between our dtype names and ONNX element types."""
from onnx import TensorProto

_TO_ONNX = {
    "float32": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
    "float64": TensorProto.DOUBLE,
    "int64": TensorProto.INT64,
    "int32": TensorProto.INT32,
    "int16": TensorProto.INT16,
    "int8": TensorProto.INT8,
    "uint8": TensorProto.UINT8,
    "uint16": TensorProto.UINT16,
    "uint32": TensorProto.UINT32,
    "uint64": TensorProto.UINT64,
    "bool": TensorProto.BOOL,
    "bfloat16": TensorProto.BFLOAT16,
    "float8e4m3fn": TensorProto.FLOAT8E4M3FN,
    "float8e4m3fnuz": TensorProto.FLOAT8E4M3FNUZ,
    "float8e5m2": TensorProto.FLOAT8E5M2,
    "float8e5m2fnuz": TensorProto.FLOAT8E5M2FNUZ,
    "float8e8m0": TensorProto.FLOAT8E8M0,
    "float4e2m1": TensorProto.FLOAT4E2M1,
    "int4": TensorProto.INT4,
    "uint4": TensorProto.UINT4,
    "int2": TensorProto.INT2,
    "uint2": TensorProto.UINT2,
    # quantized tensors travel as their storage type in ONNX
    "qint8": TensorProto.INT8,
    "quint8": TensorProto.UINT8,
    "qint32": TensorProto.INT32,
}
_FROM_ONNX = {v: k for k, v in _TO_ONNX.items() if not k.startswith("q")}


def to_onnx_elem_type(dtype: str) -> int:
    return _TO_ONNX[dtype]


def from_onnx_elem_type(elem_type: int) -> str:
    try:
        return _FROM_ONNX[elem_type]
    except KeyError:
        pass
    try:
        name = TensorProto.DataType.Name(elem_type)
    except ValueError:  # not an ONNX type at all (a corrupt file)
        name = f"code {elem_type}"
    raise KeyError(name)
