"""Reductions, arg-max/min, softmax."""
from . import generic, softmax_simd_f32  # noqa: F401
