"""Reductions, arg-max/min, softmax."""
from . import generic, softmax_simd_f32, softmax_neon64fp16_f16  # noqa: F401
