"""Matrix products: Gemm, MatMul, fully-connected layers."""
from . import gemm_generic_f32, fc_simd_f32, fc_neon64fp16_f16, einsum_generic  # noqa: F401
from . import det_generic  # noqa: F401
