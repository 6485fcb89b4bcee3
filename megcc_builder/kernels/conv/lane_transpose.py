"""C for a VW x VW block transpose of floats in registers, per vector vocabulary: the
channels-in-lanes kernels (depthwise_chblock_simd_f32.py) move VW channel planes into a
pixel-major buffer and back. Done one float at a time this copy cost more than the FMAs on
10 x 10 maps (480 channels: 50 us in MobileNet-SSD, of which ~30 us copies); a register
transpose moves VW x VW floats with 2 * VW vector loads/stores and ~3 * VW shuffles.

`block_transpose(s, src, src_stride, dst, dst_stride)` is one C statement block reading
rows src + i * src_stride (i < VW, VW floats each) and storing column j at
dst + j * dst_stride; None for a vocabulary without one (callers copy element-wise)."""
from __future__ import annotations

from typing import Optional

from ...codegen.vector import Simd


def _avx2(src: str, ss: str, dst: str, ds: str) -> str:
    loads = " ".join(f"const __m256 r{i} = _mm256_loadu_ps({src} + {i} * (int64_t)({ss}));"
                     for i in range(8))
    # unpack pairs of rows, then pairs of pairs, then swap 128-bit halves across quads
    t = " ".join(f"const __m256 t{2 * i} = _mm256_unpacklo_ps(r{2 * i}, r{2 * i + 1}), "
                 f"t{2 * i + 1} = _mm256_unpackhi_ps(r{2 * i}, r{2 * i + 1});" for i in range(4))
    u = " ".join(f"const __m256 u{4 * q + 0} = _mm256_shuffle_ps(t{4 * q}, t{4 * q + 2}, 0x44), "
                 f"u{4 * q + 1} = _mm256_shuffle_ps(t{4 * q}, t{4 * q + 2}, 0xEE), "
                 f"u{4 * q + 2} = _mm256_shuffle_ps(t{4 * q + 1}, t{4 * q + 3}, 0x44), "
                 f"u{4 * q + 3} = _mm256_shuffle_ps(t{4 * q + 1}, t{4 * q + 3}, 0xEE);"
                 for q in range(2))
    stores = " ".join(
        f"_mm256_storeu_ps({dst} + {j} * (int64_t)({ds}), "
        f"_mm256_permute2f128_ps(u{j % 4}, u{4 + j % 4}, {'0x20' if j < 4 else '0x31'}));"
        for j in range(8))
    return f"{{ {loads}\n  {t}\n  {u}\n  {stores} }}"


def _neon(src: str, ss: str, dst: str, ds: str) -> str:
    loads = " ".join(f"const float32x4_t r{i} = vld1q_f32({src} + {i} * (int64_t)({ss}));"
                     for i in range(4))
    t = ("const float32x4x2_t t01 = vtrnq_f32(r0, r1), t23 = vtrnq_f32(r2, r3);")
    parts = [("low", 0), ("low", 1), ("high", 0), ("high", 1)]
    stores = " ".join(
        f"vst1q_f32({dst} + {j} * (int64_t)({ds}), vcombine_f32(vget_{h}_f32(t01.val[{v}]), "
        f"vget_{h}_f32(t23.val[{v}])));" for j, (h, v) in enumerate(parts))
    return f"{{ {loads}\n  {t}\n  {stores} }}"


def block_transpose(s: Simd, src: str, src_stride: str, dst: str,
                    dst_stride: str) -> Optional[str]:
    if s.name == "avx2":
        return _avx2(src, src_stride, dst, dst_stride)
    if s.name in ("neon", "neon64") and s.vw == 4 and s.vtype == "float32x4_t":
        return _neon(src, src_stride, dst, dst_stride)
    return None
