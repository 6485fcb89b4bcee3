"""CV operators (MegCC's `tinycv_c.h`): image pre-/post-processing functions generated beside
a model's kernels, only those a build asks for (config `cv` section, `--cv`).

Each operator is one C function per element type, `tinycv_<c_name>_<dtype>`, taking
`(const TinyMat *src, const TinyMat *dst, <args>)`. A `TinyMat` is `{rows, cols, channels,
data}`: interleaved channels, no row padding. An operator is also an op type
(`TinyCV.<name>`) so that its implementations are registered and chosen through the kernel
registry like any model kernel (kernels/cv/).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

from ..graph import Graph, Op, Tensor
from .base import define

# MegCC's dtype suffixes and the IR dtypes they are
CV_DTYPES = {"ui8": "uint8", "f32": "float32", "f16": "float16"}
C_TYPES = {"ui8": "uint8_t", "f32": "float", "f16": "uint16_t"}  # f16: moved as raw bits


@dataclass(frozen=True)
class CvOperator:
    name: str                           # the config's name: "resize_linear"
    c_name: str                         # the function's: tinycv_<c_name>_<dtype>
    dtypes: Tuple[str, ...]             # MegCC suffixes ("ui8", "f32", "f16")
    args: Tuple[Tuple[str, str], ...]   # C (type, name) after (src, dst)
    doc: str

    @property
    def op_type(self) -> str:
        return f"TinyCV.{self.name}"

    def symbol(self, dtype: str) -> str:
        return f"tinycv_{self.c_name}_{dtype}"

    def prototype(self, dtype: str) -> str:
        args = "".join(f", {t} {n}" for t, n in self.args)
        return f"void {self.symbol(dtype)}(const TinyMat* src, const TinyMat* dst{args})"


_BLUR_ARGS = (("int", "kernel_h"), ("int", "kernel_w"), ("double", "sigma_x"),
              ("double", "sigma_y"))
_BLUR_DOC = ("OpenCV's GaussianBlur (kernel from getGaussianKernel; ui8 uses OpenCV's "
             "bit-exact fixed-point path), border {}")

CV_OPERATORS: Dict[str, CvOperator] = {op.name: op for op in [
    CvOperator("transpose", "transpose", ("ui8",), (), "dst(i, j) = src(j, i)"),
    CvOperator("roicopy", "roi_copy", ("ui8",),
               (("size_t", "row_from"), ("size_t", "row_to"), ("size_t", "col_from"),
                ("size_t", "col_to")), "dst = src[row_from:row_to, col_from:col_to]"),
    CvOperator("rotate", "rotate", ("ui8", "f16"), (("bool", "clockwise"),),
               "90 degrees, cv2.ROTATE_90_CLOCKWISE if clockwise else COUNTERCLOCKWISE"),
    CvOperator("flip", "flip", ("ui8",), (("bool", "vertical"), ("bool", "horizontal")),
               "cv2.flip: vertical flips the rows, horizontal the columns"),
    CvOperator("resize_linear", "resize_linear", ("ui8", "f32"), (),
               "cv2.resize INTER_LINEAR to dst's size (OpenCV's fixed point for ui8)"),
    CvOperator("warp_affine_replicate_linear", "warp_affine_replicate_linear", ("ui8",),
               (("const double*", "trans"),),
               "cv2.warpAffine(WARP_INVERSE_MAP, INTER_LINEAR, BORDER_REPLICATE): trans "
               "(2x3) maps dst to src coordinates"),
    CvOperator("warp_affine_constant_linear", "warp_affine_constant_linear", ("ui8",),
               (("const double*", "trans"), ("uint8_t", "board")),
               "cv2.warpAffine(WARP_INVERSE_MAP, INTER_LINEAR, BORDER_CONSTANT=board)"),
    CvOperator("rgb2bgr", "cvt_rgb2bgr", ("ui8",), (), "cv2.COLOR_RGB2BGR"),
    CvOperator("yuv2bgr_nv21", "cvt_yuv2bgr_nv21", ("ui8",), (),
               "cv2.COLOR_YUV2BGR_NV21 (BT.601 limited range, OpenCV's fixed point); src is "
               "(rows * 3 / 2) x cols x 1"),
    CvOperator("rgb2yuv", "cvt_rgb2yuv", ("ui8",), (), "cv2.COLOR_RGB2YUV"),
    CvOperator("rgb2gray", "cvt_rgb2gray", ("ui8",), (), "cv2.COLOR_RGB2GRAY"),
    CvOperator("gray2rgb", "cvt_gray2rgb", ("ui8", "f32"), (), "cv2.COLOR_GRAY2RGB"),
    # beyond MegCC: the other YUV 4:2:0 layouts, nearest-neighbour resize, normalisation
    *(CvOperator(f"yuv2{order}_{layout}", f"cvt_yuv2{order}_{layout}", ("ui8",), (),
                 f"cv2.COLOR_YUV2{order.upper()}_{layout.upper()} (BT.601 limited range, "
                 "OpenCV's fixed point); src is (rows * 3 / 2) x cols x 1")
      for order, layout in (("bgr", "nv12"), ("rgb", "nv21"), ("rgb", "nv12"), ("bgr", "i420"),
                            ("rgb", "i420"))),
    CvOperator("warp_perspective_replicate_linear", "warp_perspective_replicate_linear",
               ("ui8",), (("const double*", "trans"),),
               "cv2.warpPerspective(WARP_INVERSE_MAP, INTER_LINEAR, BORDER_REPLICATE): trans "
               "(3x3) maps dst to src coordinates"),
    CvOperator("warp_perspective_constant_linear", "warp_perspective_constant_linear",
               ("ui8",), (("const double*", "trans"), ("uint8_t", "board")),
               "cv2.warpPerspective(WARP_INVERSE_MAP, INTER_LINEAR, BORDER_CONSTANT=board)"),
    CvOperator("resize_nearest", "resize_nearest", ("ui8", "f32"), (),
               "cv2.resize INTER_NEAREST to dst's size"),
    CvOperator("normalize", "normalize", ("ui8",),
               (("const float*", "mean"), ("const float*", "std")),
               "dst (float, planar CHW: channel c at data + c * rows * cols) = "
               "(src - mean[c]) / std[c] from an interleaved ui8 image"),
    CvOperator("resize_area", "resize_area", ("ui8", "f32"), (),
               "cv2.resize INTER_AREA to dst's size (OpenCV's block average for integer "
               "shrink factors, its area table otherwise, its linear-style enlargement)"),
    CvOperator("crop_and_resize", "crop_and_resize_linear", ("ui8", "f32"),
               (("size_t", "row"), ("size_t", "col"), ("size_t", "rows"), ("size_t", "cols")),
               "cv2.resize(src[row:row + rows, col:col + cols], dst's size, INTER_LINEAR): a "
               "box of src (inside it) resized to dst, without a copy of the box"),
    CvOperator("letterbox", "letterbox_linear", ("ui8", "f32"),
               (("double", "pad"), ("float*", "scale"), ("int*", "left"), ("int*", "top")),
               "src resized keeping its aspect ratio (scale = min(dst.cols / src.cols, "
               "dst.rows / src.rows), new size cvRound(src size * scale) clamped to [1, dst "
               "size], cv2.resize INTER_LINEAR) and centred (left = (dst.cols - new cols) / 2, "
               "top likewise, integer division) on a dst filled with pad (ui8: "
               "saturate_cast<uchar>(pad)); scale, left and top are written when not NULL, "
               "to map boxes back"),
    CvOperator("topk", "topk", ("f32",), (),
               "dst (int32_t, rows x cols = k <= src elements) = indices of the k largest "
               "values of src (any shape, one channel), largest first, ties lower index "
               "first, NaN smallest: numpy argsort(-x, kind='stable')[:k]"),
    CvOperator("nms", "nms", ("f32",),
               (("const float*", "scores"), ("float", "score_threshold"),
                ("float", "nms_threshold"), ("int", "top_k"), ("int32_t*", "workspace")),
               "cv2.dnn.NMSBoxes(boxes, scores, score_threshold, nms_threshold, eta=1, top_k) "
               "on src = N x 4 x 1 boxes (x, y, width, height): dst (int32_t, rows x cols = "
               "capacity) gets the kept indices in OpenCV's order, then -1; workspace holds "
               "2 N int32_t"),
    CvOperator("box_decode", "box_decode", ("f32",),
               (("const float*", "anchors"), ("const float*", "variances")),
               "SSD box decoding: src = N x 4 x 1 offsets (dx, dy, dw, dh) against anchors "
               "(N x 4: x1, y1, x2, y2) and variances[4] into dst = N x 4 x 1 boxes (x1, y1, "
               "x2, y2): centre + d * variance * anchor size, size * exp(d * variance)"),
    CvOperator("yolo_decode", "yolo_decode", ("f32",),
               (("int", "grid_h"), ("int", "grid_w"), ("float", "stride"),
                ("const float*", "anchors"), ("bool", "sigmoid"), ("float*", "scores"),
                ("int32_t*", "classes")),
               "YOLO box decoding of one output level: src = A * grid_h * grid_w rows (anchor, "
               "grid row, grid column order) x (5 + classes) x 1: (tx, ty, tw, th, objectness, "
               "class scores...). anchors == NULL (anchor-free, YOLOX; A = 1): centre = (t + "
               "grid cell) * stride, size = exp(t) * stride. anchors = A (w, h) pairs in pixels "
               "(anchor-based, YOLOv5): with p = sigmoid(t), centre = (2 p - 0.5 + cell) * "
               "stride, size = (2 p)^2 * anchor. dst = rows x 4 x 1 boxes (x1, y1, x2, y2); "
               "scores[i] (when not NULL) = objectness * the best class score, classes[i] (when "
               "not NULL) its class (lowest index on ties); sigmoid: objectness and class "
               "scores are logits (sigmoid applied) rather than probabilities"),
    CvOperator("gaussian_blur_constant", "gaussian_blur_constant", ("ui8", "f32"), _BLUR_ARGS,
               _BLUR_DOC.format("BORDER_CONSTANT (0)")),
    CvOperator("gaussian_blur_replicate", "gaussian_blur_replicate", ("ui8", "f32"),
               _BLUR_ARGS, _BLUR_DOC.format("BORDER_REPLICATE")),
    CvOperator("gaussian_blur_reflect", "gaussian_blur_reflect", ("ui8", "f32"), _BLUR_ARGS,
               _BLUR_DOC.format("BORDER_REFLECT")),
    CvOperator("gaussian_blur_reflect_101", "gaussian_blur_reflect_101", ("ui8", "f32"),
               _BLUR_ARGS, _BLUR_DOC.format("BORDER_REFLECT_101")),
]}


def _infer_image(graph: Graph, op: Op) -> List[Tensor]:
    """The shapes of images are run-time TinyMat fields: the op only carries the type."""
    src = graph.tensors[op.inputs[0]]
    return [Tensor(op.outputs[0], src.shape, src.dtype)]


for _op in CV_OPERATORS.values():
    define(_op.op_type, _op.doc, [], _infer_image)
