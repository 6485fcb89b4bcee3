from .graph import CompileError, Graph, NeedsValue, Op, QuantParams, Tensor  # noqa: F401
from .dtypes import DTYPES, c_type, itemsize, numpy_dtype  # noqa: F401
