"""tinycv (generated CV operators) against OpenCV, single-threaded (cv2.setNumThreads(1)):
1920x1080 -> 224x224 resize (linear, area), 640x480 colour conversions, warps and a 5x5
blur, crop-and-resize, letterbox, normalisation and post-processing (NMS, top-k). Prints
each operator's fastest time (CPU time) and the ratio ours / OpenCV (target on x86: <= 1.5).

    python benchmarks/cv_bench.py [--isa native] [-n 30] [-k resize]

The OpenCV side is the call a user would write for the same result: crop_and_resize is
cv2.resize of the box (a view), letterbox cv2.resize + cv2.copyMakeBorder, normalize
cv2.dnn.blobFromImageWithParams (per-channel mean and 1/std, NCHW float), nms
cv2.dnn.NMSBoxes, topk cv2.sortIdx (OpenCV's way to rank scores; it sorts them all).

tinycv.c is generated for the ISA level, built as a shared library with the level's flags
and called through ctypes (the call overhead, ~1 us, is included and negligible here).
"""
from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from megcc_builder.cv import generate  # noqa: E402
from megcc_builder.isa import resolve, spec  # noqa: E402


class TinyMat(ctypes.Structure):
    _fields_ = [("rows", ctypes.c_size_t), ("cols", ctypes.c_size_t),
                ("channels", ctypes.c_size_t), ("data", ctypes.c_void_p)]


def mat(a: np.ndarray) -> TinyMat:
    rows, cols = a.shape[:2]
    return TinyMat(rows, cols, a.shape[2] if a.ndim == 3 else 1, a.ctypes.data)


_REFS = {}


def ref(a: np.ndarray):
    """A pointer to a's TinyMat, built once (keeps the timed call to the C function)."""
    if id(a) not in _REFS:
        m = mat(a)
        _REFS[id(a)] = (a, m, ctypes.byref(m))
    return _REFS[id(a)][2]


REQUEST = (("crop_and_resize", "ui8"), ("gaussian_blur_reflect_101", "f32"),
           ("gaussian_blur_reflect_101", "ui8"), ("letterbox", "ui8"), ("nms", "f32"),
           ("normalize", "ui8"), ("resize_area", "f32"), ("resize_area", "ui8"),
           ("resize_linear", "f32"), ("resize_linear", "ui8"), ("rgb2bgr", "ui8"),
           ("rgb2gray", "ui8"), ("rgb2yuv", "ui8"), ("topk", "f32"),
           ("warp_affine_constant_linear", "ui8"), ("warp_affine_replicate_linear", "ui8"),
           ("warp_perspective_constant_linear", "ui8"), ("yuv2bgr_nv21", "ui8"))


def build(isa: str) -> ctypes.CDLL:
    level = resolve(isa)
    d = tempfile.mkdtemp(prefix="tinycv-bench-")
    for name, text in generate(REQUEST, level).items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    lib = os.path.join(d, "libtinycv.so")
    subprocess.run(["gcc", "-std=c99", "-O2", "-fPIC", "-shared", "-DNDEBUG",
                    *spec(level).cflags, "-I", d, os.path.join(d, "tinycv.c"), "-lm", "-o",
                    lib], check=True)
    return ctypes.CDLL(lib)


def best_time(fn, n: int) -> float:
    """The fastest of n calls in process CPU time: on a shared machine, waiting for a core
    is not counted (both sides run single-threaded, so CPU time is their time)."""
    fn()
    times = []
    for _ in range(n):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return float(min(times))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isa", default="native")
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("-k", default="", help="only the operators whose row contains this")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    lib = build(args.isa)
    rng = np.random.default_rng(0)
    hd = rng.integers(0, 256, (1080, 1920, 3), np.uint8)
    hd = cv2.GaussianBlur(hd, (7, 7), 0)  # image-like rather than noise (same cost)
    vga = np.ascontiguousarray(hd[:480, :640])
    vgaf = vga.astype(np.float32)
    nv21 = rng.integers(0, 256, (720, 640), np.uint8)
    out224 = np.empty((224, 224, 3), np.uint8)
    out224f = np.empty((224, 224, 3), np.float32)
    hdf = hd.astype(np.float32)
    vga_out = np.empty_like(vga)
    vgaf_out = np.empty_like(vgaf)
    gray = np.empty((480, 640), np.uint8)
    M = np.array([[0.9, -0.2, 30.0], [0.25, 0.95, -12.0]])
    Mc = (ctypes.c_double * 6)(*M.ravel())
    P = np.array([[0.9, -0.2, 30.0], [0.25, 0.95, -12.0], [0.0002, -0.0001, 1.0]])
    Pc = (ctypes.c_double * 9)(*P.ravel())
    half = np.empty((540, 960, 3), np.uint8)
    lb = np.empty((640, 640, 3), np.uint8)
    img224 = np.ascontiguousarray(hd[:224, :224])
    chw = np.empty((224, 224, 3), np.float32)  # planar: the TinyMat only gives the size
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    mean_c, std_c = (ctypes.c_float * 3)(*mean), (ctypes.c_float * 3)(*std)
    blob_params = cv2.dnn.Image2BlobParams(scalefactor=tuple(1 / v for v in std) + (1,),
                                           size=(224, 224), mean=mean + (0,))
    xy = rng.uniform(0, 600, (1000, 2))
    boxes = np.concatenate([xy, rng.uniform(10, 200, (1000, 2))], 1).astype(np.float32)
    boxes = boxes.reshape(1000, 4, 1)
    scores = rng.uniform(0, 1, 1000).astype(np.float32)
    box_list = [tuple(map(float, b)) for b in boxes.reshape(-1, 4)]
    score_list = [float(v) for v in scores]
    keep = np.empty((1, 1000), np.int32)
    ws = np.empty(2000, np.int32)
    scores_p = scores.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    ws_p = ws.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))
    cls_scores = rng.uniform(0, 1, (1, 8400)).astype(np.float32)
    top = np.empty((1, 100), np.int32)
    d = lib
    rows = [
        ("resize_linear ui8 1920x1080->224x224",
         lambda: d.tinycv_resize_linear_ui8(ref(hd), ref(out224)),
         lambda: cv2.resize(hd, (224, 224), interpolation=cv2.INTER_LINEAR)),
        ("resize_linear f32 1920x1080->224x224",
         lambda: d.tinycv_resize_linear_f32(ref(hdf), ref(out224f)),
         lambda: cv2.resize(hdf, (224, 224), interpolation=cv2.INTER_LINEAR)),
        ("rgb2bgr 640x480", lambda: d.tinycv_cvt_rgb2bgr_ui8(ref(vga),
                                                             ref(vga_out)),
         lambda: cv2.cvtColor(vga, cv2.COLOR_RGB2BGR)),
        ("rgb2gray 640x480", lambda: d.tinycv_cvt_rgb2gray_ui8(ref(vga),
                                                               ref(gray)),
         lambda: cv2.cvtColor(vga, cv2.COLOR_RGB2GRAY)),
        ("rgb2yuv 640x480", lambda: d.tinycv_cvt_rgb2yuv_ui8(ref(vga),
                                                             ref(vga_out)),
         lambda: cv2.cvtColor(vga, cv2.COLOR_RGB2YUV)),
        ("yuv2bgr_nv21 640x480", lambda: d.tinycv_cvt_yuv2bgr_nv21_ui8(
            ref(nv21), ref(vga_out)),
         lambda: cv2.cvtColor(nv21, cv2.COLOR_YUV2BGR_NV21)),
        ("warp_affine_constant ui8 640x480", lambda: d.tinycv_warp_affine_constant_linear_ui8(
            ref(vga), ref(vga_out), Mc, ctypes.c_uint8(0)),
         lambda: cv2.warpAffine(vga, M, (640, 480), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)),
        ("gaussian_blur 5x5 ui8 640x480", lambda: d.tinycv_gaussian_blur_reflect_101_ui8(
            ref(vga), ref(vga_out), 5, 5, ctypes.c_double(0),
            ctypes.c_double(0)),
         lambda: cv2.GaussianBlur(vga, (5, 5), 0)),
        ("gaussian_blur 5x5 f32 640x480", lambda: d.tinycv_gaussian_blur_reflect_101_f32(
            ref(vgaf), ref(vgaf_out), 5, 5, ctypes.c_double(0),
            ctypes.c_double(0)),
         lambda: cv2.GaussianBlur(vgaf, (5, 5), 0)),
        ("resize_area ui8 1920x1080->224x224", lambda: d.tinycv_resize_area_ui8(
            ref(hd), ref(out224)),
         lambda: cv2.resize(hd, (224, 224), interpolation=cv2.INTER_AREA)),
        ("resize_area ui8 1920x1080->960x540 (2x2)", lambda: d.tinycv_resize_area_ui8(
            ref(hd), ref(half)),
         lambda: cv2.resize(hd, (960, 540), interpolation=cv2.INTER_AREA)),
        ("resize_area f32 1920x1080->224x224", lambda: d.tinycv_resize_area_f32(
            ref(hdf), ref(out224f)),
         lambda: cv2.resize(hdf, (224, 224), interpolation=cv2.INTER_AREA)),
        ("crop_and_resize ui8 800x600 box->224x224", lambda: d.tinycv_crop_and_resize_linear_ui8(
            ref(hd), ref(out224), ctypes.c_size_t(200),
            ctypes.c_size_t(500), ctypes.c_size_t(600), ctypes.c_size_t(800)),
         lambda: cv2.resize(hd[200:800, 500:1300], (224, 224), interpolation=cv2.INTER_LINEAR)),
        ("letterbox ui8 1920x1080->640x640", lambda: d.tinycv_letterbox_linear_ui8(
            ref(hd), ref(lb), ctypes.c_double(114), None, None, None),
         lambda: cv2.copyMakeBorder(cv2.resize(hd, (640, 360), interpolation=cv2.INTER_LINEAR),
                                    140, 140, 0, 0, cv2.BORDER_CONSTANT, value=(114, 114, 114))),
        ("warp_perspective_constant ui8 640x480", lambda: d.tinycv_warp_perspective_constant_linear_ui8(
            ref(vga), ref(vga_out), Pc, ctypes.c_uint8(0)),
         lambda: cv2.warpPerspective(vga, P, (640, 480),
                                     flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)),
        ("normalize ui8->f32 CHW 224x224x3", lambda: d.tinycv_normalize_ui8(
            ref(img224), ref(chw), mean_c, std_c),
         lambda: cv2.dnn.blobFromImageWithParams(img224, blob_params)),
        ("nms f32 1000 boxes", lambda: d.tinycv_nms_f32(
            ref(boxes), ref(keep), scores_p, ctypes.c_float(0.3),
            ctypes.c_float(0.45), 0, ws_p),
         lambda: cv2.dnn.NMSBoxes(box_list, score_list, 0.3, 0.45)),
        ("topk f32 k=100 of 8400", lambda: d.tinycv_topk_f32(
            ref(cls_scores), ref(top)),
         lambda: cv2.sortIdx(cls_scores.reshape(1, -1), cv2.SORT_EVERY_ROW | cv2.SORT_DESCENDING)),
    ]
    rows = [r for r in rows if args.k in r[0]]
    print(f"tinycv at ISA level {resolve(args.isa)} vs OpenCV {cv2.__version__} "
          f"(1 thread), fastest of {args.n} in CPU time")
    print(f"{'operator':40} {'tinycv us':>10} {'opencv us':>10} {'ratio':>7}")
    for name, ours, theirs in rows:
        a, b = best_time(ours, args.n), best_time(theirs, args.n)
        print(f"{name:40} {a * 1e6:10.1f} {b * 1e6:10.1f} {a / b:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
