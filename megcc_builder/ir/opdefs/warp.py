"""WarpPerspective: MegEngine's warp of a float NCHW tensor by a per-sample 3x3 matrix
(F.vision.warp_perspective, and F.vision.interpolate with align_corners=True, which
MegEngine lowers to it). The matrix maps destination (x, y, 1) to source coordinates
(the inverse map), sampled bilinearly with a border mode."""
from __future__ import annotations

from typing import List

from ..graph import Graph, Op, Tensor
from .base import Attr, define

BORDER_MODES = ("replicate", "reflect", "reflect_101", "wrap", "constant")


def _infer(graph: Graph, op: Op) -> List[Tensor]:
    x = graph.tensors[op.inputs[0]]
    n, c = x.shape[0], x.shape[1]
    return [Tensor(op.outputs[0], (n, c, int(op.attrs["out_h"]), int(op.attrs["out_w"])),
                   x.dtype)]


define("WarpPerspective",
       "y[n, c, h, w] = bilinear(x[n, c], M[n] (w, h, 1)), inputs x (N, C, H, W) and M "
       "(N, 3, 3) float32",
       [Attr("out_h", "output height"), Attr("out_w", "output width"),
        Attr("bmode", f"border mode: {', '.join(BORDER_MODES)}", "replicate"),
        Attr("border_val", "value outside the input (bmode constant)", 0.0)],
       _infer)
