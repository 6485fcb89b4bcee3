"""Element types: one table shared by the IR, the model format and the C emitter."""
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
}
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
