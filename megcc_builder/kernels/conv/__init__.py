"""Convolutions. Importing registers them; the order is the cost model's tie-break."""
from . import direct_generic_f32, gemm_simd_f32, winograd_avx2_f32, depthwise_simd_f32  # noqa: F401
from . import pointwise_rows_simd_f32, depthwise_chblock_simd_f32, direct_fewc_simd_f32  # noqa: F401
from . import pointwise_fewoc_simd_f32  # noqa: F401
from . import nchw44_generic_f32, nchw44_neon_f32, transpose_generic_f32  # noqa: F401
from . import deform_generic_f32, direct3d_generic_f32  # noqa: F401
from . import gemm_neon64fp16_f16, depthwise_neon64fp16_f16, direct3x3_neon64fp16_f16  # noqa: F401
from . import nchw88_neon64fp16_f16  # noqa: F401
