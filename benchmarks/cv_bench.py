"""tinycv (generated CV operators) against OpenCV, single-threaded (cv2.setNumThreads(1)):
1920x1080 -> 224x224 resize, 640x480 colour conversions, a warp and a 5x5 blur. Prints
each operator's fastest time (CPU time) and the ratio ours / OpenCV (target on x86: <= 1.5).

    python benchmarks/cv_bench.py [--isa native] [-n 30]

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


REQUEST = (("gaussian_blur_reflect_101", "ui8"), ("gaussian_blur_reflect_101", "f32"),
           ("resize_linear", "f32"), ("resize_linear", "ui8"), ("rgb2bgr", "ui8"),
           ("rgb2gray", "ui8"), ("rgb2yuv", "ui8"), ("warp_affine_constant_linear", "ui8"),
           ("warp_affine_replicate_linear", "ui8"), ("yuv2bgr_nv21", "ui8"))


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
    d = lib
    rows = [
        ("resize_linear ui8 1920x1080->224x224",
         lambda: d.tinycv_resize_linear_ui8(ctypes.byref(mat(hd)), ctypes.byref(mat(out224))),
         lambda: cv2.resize(hd, (224, 224), interpolation=cv2.INTER_LINEAR)),
        ("resize_linear f32 1920x1080->224x224",
         lambda: d.tinycv_resize_linear_f32(ctypes.byref(mat(hdf)), ctypes.byref(mat(out224f))),
         lambda: cv2.resize(hdf, (224, 224), interpolation=cv2.INTER_LINEAR)),
        ("rgb2bgr 640x480", lambda: d.tinycv_cvt_rgb2bgr_ui8(ctypes.byref(mat(vga)),
                                                             ctypes.byref(mat(vga_out))),
         lambda: cv2.cvtColor(vga, cv2.COLOR_RGB2BGR)),
        ("rgb2gray 640x480", lambda: d.tinycv_cvt_rgb2gray_ui8(ctypes.byref(mat(vga)),
                                                               ctypes.byref(mat(gray))),
         lambda: cv2.cvtColor(vga, cv2.COLOR_RGB2GRAY)),
        ("rgb2yuv 640x480", lambda: d.tinycv_cvt_rgb2yuv_ui8(ctypes.byref(mat(vga)),
                                                             ctypes.byref(mat(vga_out))),
         lambda: cv2.cvtColor(vga, cv2.COLOR_RGB2YUV)),
        ("yuv2bgr_nv21 640x480", lambda: d.tinycv_cvt_yuv2bgr_nv21_ui8(
            ctypes.byref(mat(nv21)), ctypes.byref(mat(vga_out))),
         lambda: cv2.cvtColor(nv21, cv2.COLOR_YUV2BGR_NV21)),
        ("warp_affine_constant ui8 640x480", lambda: d.tinycv_warp_affine_constant_linear_ui8(
            ctypes.byref(mat(vga)), ctypes.byref(mat(vga_out)), Mc, ctypes.c_uint8(0)),
         lambda: cv2.warpAffine(vga, M, (640, 480), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)),
        ("gaussian_blur 5x5 ui8 640x480", lambda: d.tinycv_gaussian_blur_reflect_101_ui8(
            ctypes.byref(mat(vga)), ctypes.byref(mat(vga_out)), 5, 5, ctypes.c_double(0),
            ctypes.c_double(0)),
         lambda: cv2.GaussianBlur(vga, (5, 5), 0)),
        ("gaussian_blur 5x5 f32 640x480", lambda: d.tinycv_gaussian_blur_reflect_101_f32(
            ctypes.byref(mat(vgaf)), ctypes.byref(mat(vgaf_out)), 5, 5, ctypes.c_double(0),
            ctypes.c_double(0)),
         lambda: cv2.GaussianBlur(vgaf, (5, 5), 0)),
    ]
    print(f"tinycv at ISA level {resolve(args.isa)} vs OpenCV {cv2.__version__} "
          f"(1 thread), fastest of {args.n} in CPU time")
    print(f"{'operator':40} {'tinycv us':>10} {'opencv us':>10} {'ratio':>7}")
    for name, ours, theirs in rows:
        a, b = best_time(ours, args.n), best_time(theirs, args.n)
        print(f"{name:40} {a * 1e6:10.1f} {b * 1e6:10.1f} {a / b:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
