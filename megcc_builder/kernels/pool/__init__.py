"""Pooling: max, average, Lp, global, NCHW44, unpooling."""
from . import direct_generic_f32, plane_simd_f32, pairs_simd_f32, nchw44_generic_f32, unpool_generic  # noqa: F401
from . import roi_align_generic_f32  # noqa: F401
from . import plane_neon64fp16_f16, global_neon64fp16_f16, nchw88_neon64fp16_f16  # noqa: F401
