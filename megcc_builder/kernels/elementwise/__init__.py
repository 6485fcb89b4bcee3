"""Element-wise operations and fused chains of them."""
from . import generic, prelu_generic_f32, simd_f32, neon64fp16_f16, nchw88_neon64fp16_f16  # noqa: F401
