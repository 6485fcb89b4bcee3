"""CV operators (tinycv, ir/opdefs/cv.py): one module per implementation, registered like the
model's kernels; megcc_builder/cv/ turns a build's CV request into tinycv.c/tinycv_c.h."""
from . import (boxes_generic, color_avx2_ui8, color_generic, color_neon_ui8, extra_generic,  # noqa: F401
               gaussian_blur_avx2_f32, gaussian_blur_avx2_ui8, gaussian_blur_generic,
               gaussian_blur_neon_f32, gaussian_blur_neon_ui8, layout_generic, normalize_simd_ui8, resize_area_generic,
               resize_area_simd,
               resize_boxes_simd, resize_linear_avx2_f32, resize_linear_avx2_ui8,
               resize_linear_generic, resize_linear_neon_f32, resize_linear_neon_ui8,
               warp_affine_avx2_ui8, warp_affine_generic_ui8, warp_affine_neon_ui8,
               warp_perspective_avx2_ui8, warp_perspective_generic_ui8,
               warp_perspective_neon_ui8)
