"""Quantized (int8 / uint8) kernels: quantize / dequantize, integer convolution and matrix
products, QLinear element-wise ops, pooling, concatenation and look-up tables, bit-exact
with onnxruntime's MLAS (ties-to-even) or MegEngine (ties-away) per the op's `rounding`."""
from . import conv_generic_s8, elementwise_generic_s8, matmul_generic_s8  # noqa: F401
from . import pool_generic_s8, quantize_generic_s8, conv_avx2_s8, matmul_avx2_s8  # noqa: F401
from . import conv_gemm_avx2_s8  # noqa: F401
from . import dwconv_avx2_s8  # noqa: F401
from . import conv_neon64dot_s8  # noqa: F401
from . import pool_avx2_s8  # noqa: F401
from . import pool_vnni_s8  # noqa: F401
from . import matmul_neon64dot_s8  # noqa: F401
from . import conv_u8s8_avx2_s8  # noqa: F401
from . import winograd_avx2_s8  # noqa: F401
from . import winograd_f43_avx2_s8  # noqa: F401
from . import conv_stem_avx2_s8  # noqa: F401
from . import matmul_gemv_avx2_s8  # noqa: F401
from . import conv_dsp_s8, conv_mve_s8  # noqa: F401
from . import dwconv_dsp_s8, dwconv_mve_s8  # noqa: F401
from . import matmul_dsp_s8, matmul_mve_s8  # noqa: F401
from . import conv_gemm_neon_s8  # noqa: F401
from . import conv_neon64i8mm_s8  # noqa: F401
from . import dwconv_neon_s8  # noqa: F401
from . import matmul_gemm_neon_s8  # noqa: F401
from . import pool_neon_s8  # noqa: F401
from . import conv_u8s8_vnni_s8  # noqa: F401
from . import matmul_vnni_s8  # noqa: F401
from . import elementwise_avx2_s8  # noqa: F401
from . import concat_avx2_s8  # noqa: F401
from . import softmax_generic_s8  # noqa: F401
from . import lstm_dynamic_generic_s8  # noqa: F401
from . import gap_avx2_s8, gap_neon_s8  # noqa: F401
from . import elementwise_neon_s8  # noqa: F401
from . import concat_neon_s8  # noqa: F401
