"""Kernel library: importing the package registers every op lowering in LOWERINGS."""
from . import conv, data_movement, elementwise, gemm, nn_misc, pool, reduce, views  # noqa: F401
from .base import LOWERINGS, Instr, Kernel, View  # noqa: F401
