"""Kernel library: importing the package registers every op lowering in LOWERINGS."""
from . import (conv, data_movement, elementwise, gemm, logic_index, misc_nn, nn_misc,  # noqa: F401
               pool, reduce, views)
from . import nchw44  # noqa: F401  (NCHW44 layout ops: ConvNCHW44, Relayout, ...)
from .base import LOWERINGS, Instr, Kernel, View  # noqa: F401
