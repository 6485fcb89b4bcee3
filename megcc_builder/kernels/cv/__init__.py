"""CV operators (tinycv, ir/opdefs/cv.py): one module per implementation, registered like the
model's kernels; megcc_builder/cv/ turns a build's CV request into tinycv.c/tinycv_c.h."""
from . import (color_generic, gaussian_blur_generic, layout_generic,  # noqa: F401
               resize_linear_generic, warp_affine_generic_ui8)
