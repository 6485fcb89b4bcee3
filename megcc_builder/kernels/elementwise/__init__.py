"""Element-wise operations and fused chains of them."""
from . import generic, prelu_generic_f32, simd_f32  # noqa: F401
