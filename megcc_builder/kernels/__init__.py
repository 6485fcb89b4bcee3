"""Kernel library: importing the package registers every op lowering in LOWERINGS."""
from . import (conv, data_movement, elementwise, gemm, logic_index, nn_misc, pool,  # noqa: F401
               reduce, views)
from .base import LOWERINGS, Instr, Kernel, View  # noqa: F401
