"""Data movement: views, strided copies, concat/split, pad, cast, resize, relayouts."""
from . import copy_generic, relayout_generic_f32, relayout_neon_f32, resize_generic  # noqa: F401
from . import relayout_nchw88_f16, unzip_nchw88_f16  # noqa: F401
from . import affine_grid_generic, col2im_generic, grid_sample_generic, views  # noqa: F401
from . import computed_shape_generic, warp_perspective_generic_f32  # noqa: F401
