"""Element types: one table shared by the IR, the model format and the C emitter.

The narrow ONNX types (bfloat16, the float8 family, float4, the 4- and 2-bit integers) are
storage types: one element per byte (bfloat16: two), never packed, NumPy values from
ml_dtypes (the types onnx itself uses). Kernels convert them to float32 at the edges."""
import ml_dtypes
import numpy as np

# name -> (numpy dtype, C type, code in the model file)
_TABLE = {
    "float32": (np.float32, "float", 1),
    "float16": (np.float16, "uint16_t", 2),
    "int32": (np.int32, "int32_t", 3),
    "int16": (np.int16, "int16_t", 4),
    "int8": (np.int8, "int8_t", 5),
    "uint8": (np.uint8, "uint8_t", 6),
    "int64": (np.int64, "int64_t", 7),
    "bool": (np.bool_, "uint8_t", 8),
    "qint8": (np.int8, "int8_t", 9),      # quantized: value = scale * (q - zero_point)
    "quint8": (np.uint8, "uint8_t", 10),
    "qint32": (np.int32, "int32_t", 11),
    "float64": (np.float64, "double", 12),
    "uint16": (np.uint16, "uint16_t", 13),
    "uint32": (np.uint32, "uint32_t", 14),
    "uint64": (np.uint64, "uint64_t", 15),
    "bfloat16": (ml_dtypes.bfloat16, "uint16_t", 16),
    "float8e4m3fn": (ml_dtypes.float8_e4m3fn, "uint8_t", 17),
    "float8e4m3fnuz": (ml_dtypes.float8_e4m3fnuz, "uint8_t", 18),
    "float8e5m2": (ml_dtypes.float8_e5m2, "uint8_t", 19),
    "float8e5m2fnuz": (ml_dtypes.float8_e5m2fnuz, "uint8_t", 20),
    "float8e8m0": (ml_dtypes.float8_e8m0fnu, "uint8_t", 21),
    "float4e2m1": (ml_dtypes.float4_e2m1fn, "uint8_t", 22),
    "int4": (ml_dtypes.int4, "int8_t", 23),
    "uint4": (ml_dtypes.uint4, "uint8_t", 24),
    "int2": (ml_dtypes.int2, "int8_t", 25),
    "uint2": (ml_dtypes.uint2, "uint8_t", 26),
}
# the storage types of the narrow floats (their C type holds the bit pattern)
NARROW_FLOATS = ("bfloat16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz",
                 "float8e8m0", "float4e2m1")
NARROW_INTS = ("int4", "uint4", "int2", "uint2")
DTYPES = tuple(_TABLE)


def itemsize(dtype: str) -> int:
    return np.dtype(_TABLE[dtype][0]).itemsize


def numpy_dtype(dtype: str):
    return np.dtype(_TABLE[dtype][0])


def c_type(dtype: str) -> str:
    return _TABLE[dtype][1]


def dtype_code(dtype: str) -> int:
    return _TABLE[dtype][2]


def dtype_from_code(code: int) -> str:
    for name, (_, _, c) in _TABLE.items():
        if c == code:
            return name
    raise KeyError(code)


def dtype_of_numpy(np_dtype) -> str:
    np_dtype = np.dtype(np_dtype)
    for name, (nd, _, _) in _TABLE.items():
        if np.dtype(nd) == np_dtype and not name.startswith("q"):
            return name
    raise KeyError(f"no megcc dtype for numpy {np_dtype}")
