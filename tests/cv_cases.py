"""The CV operators' cases, written once and run on every platform by tests/test_cv.py:
each case is a tinycv call on a random or natural image of odd size, with the OpenCV call
that is its oracle. All cases of a platform compile into ONE C program (cases_c_source)
that prints each output in hex; inputs are generated inside the program (xorshift32, which
`image()` reproduces) or cut from one natural photograph embedded in it.

Exactness (checked per case): every ui8 operator is bit-exact with OpenCV 4 (the
arithmetic is OpenCV's own fixed point: resize's 11-bit weights and its vector rounding,
warpAffine's 1/32-pixel table, cvtColor's 14/15/20-bit coefficients, GaussianBlur's 8-bit
error-diffused kernel with exact sums). f32 within 1e-4 relative to max(1, |ref|).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np

NATURAL_SHAPE = (48, 64)  # rows, cols of the embedded photograph (RGB)


@functools.lru_cache(maxsize=None)
def natural_rgb() -> np.ndarray:
    """A real photograph (scikit-learn's bundled china.jpg, so no download), shrunk with
    INTER_AREA: smooth regions, edges and texture, unlike uniform noise."""
    from sklearn.datasets import load_sample_image

    img = load_sample_image("china.jpg")  # RGB, 427 x 640
    return cv2.resize(img, NATURAL_SHAPE[::-1], interpolation=cv2.INTER_AREA)


def _xorshift(seed: int, n: int) -> np.ndarray:
    out = [0] * n
    x = seed
    for i in range(n):  # a few thousand values per case: a plain loop is fast enough
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x
    return np.array(out, np.uint32)


def image(kind, rows: int, cols: int, cn: int, dtype: str) -> np.ndarray:
    """The input a case's program builds: kind = seed (int, random) or "natural"."""
    n = rows * cols * cn
    if kind == "natural":
        nat = natural_rgb()
        assert rows <= nat.shape[0] and cols <= nat.shape[1]
        base = nat[:rows, :cols].astype(np.uint8)
        chans = [base[..., c % 3] for c in range(cn)]  # 1: R, 2: RG, 4: RGBR
        u8 = np.stack(chans, -1)
        if dtype == "f32":
            return u8.astype(np.float32)
        if dtype == "f16":
            return (u8.astype(np.uint16) * 257).reshape(rows, cols, cn)
        return u8
    x = _xorshift(kind, n)
    if dtype == "ui8":
        return (x >> np.uint32(24)).astype(np.uint8).reshape(rows, cols, cn)
    if dtype == "f16":
        return (x >> np.uint32(16)).astype(np.uint16).reshape(rows, cols, cn)
    f = (x >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0) * np.float32(255)
    return f.reshape(rows, cols, cn)


@dataclass
class Case:
    id: str
    fn: str                        # tinycv function name
    dtype: str
    src: Tuple[object, int, int, int]    # (kind, rows, cols, cn)
    dst: Tuple[int, int, int]            # rows, cols, cn
    args: str = ""                 # C arguments after (&src, &dst)
    ref: Optional[Callable[[np.ndarray], np.ndarray]] = None
    refused: bool = False          # invalid arguments: must write nothing
    exact: bool = True             # ui8: bit-exact with OpenCV
    src_dtype: str = ""            # the input's dtype when not `dtype` (the output's)
    doubles: List[float] = field(default_factory=list)  # a `double t[9]` the args may name
    floats: List[float] = field(default_factory=list)   # a `float f[8]` the args may name
    float_data: List[float] = field(default_factory=list)  # a `float fd[]` the args may name
    src_data: Optional[List[float]] = None  # f32 input values instead of a generated image
    dst_dtype: str = ""            # the output's dtype when not `dtype` ("i32": indices)
    workspace: int = 0             # an `int32_t ws[workspace]` the args may name
    out_extra: int = 0             # bytes after dst's in the same buffer (args name `x`)
    # compares the whole output (dst then the extra bytes) instead of expected(): returns
    # a problem or None
    check: Optional[Callable[[np.ndarray, bytes], Optional[str]]] = None

    def input(self) -> np.ndarray:
        kind, rows, cols, cn = self.src
        if self.src_data is not None:
            return np.array(self.src_data, np.float32).reshape(rows, cols, cn)
        return image(kind, rows, cols, cn, self.src_dtype or self.dtype)

    @property
    def out_dtype(self) -> str:
        return self.dst_dtype or self.dtype

    def expected(self) -> np.ndarray:
        out = self.ref(self.input())
        return np.asarray(out).reshape(self.dst)


CASES: List[Case] = []


def add(*args, **kwargs) -> None:
    CASES.append(Case(*args, **kwargs))


def _c3(img):  # cv2 drops a trailing channel axis of 1
    return img if img.ndim == 3 else img[..., None]


SIZES = [(1, 17, 23), (2, 9, 31), (3, 37, 29), (4, 21, 15)]  # (channels, rows, cols)

# --- layout -----------------------------------------------------------------------------
for cn, r, c in SIZES:
    add(f"transpose_c{cn}", "tinycv_transpose_ui8", "ui8", (11 + cn, r, c, cn), (c, r, cn),
        ref=lambda x: _c3(cv2.transpose(x)))
    for cw in (0, 1):
        add(f"rotate_ui8_c{cn}_cw{cw}", "tinycv_rotate_ui8", "ui8", (20 + cn, r, c, cn),
            (c, r, cn), "true" if cw else "false",
            ref=lambda x, cw=cw: _c3(cv2.rotate(x, cv2.ROTATE_90_CLOCKWISE if cw else
                                                 cv2.ROTATE_90_COUNTERCLOCKWISE)))
    for v, h in ((0, 0), (1, 0), (0, 1), (1, 1)):
        code = {(1, 0): 0, (0, 1): 1, (1, 1): -1}.get((v, h))
        add(f"flip_c{cn}_v{v}h{h}", "tinycv_flip_ui8", "ui8", (30 + cn, r, c, cn), (r, c, cn),
            f"{'true' if v else 'false'}, {'true' if h else 'false'}",
            ref=lambda x, code=code: x.copy() if code is None else _c3(cv2.flip(x, code)))
    add(f"roicopy_c{cn}", "tinycv_roi_copy_ui8", "ui8", (40 + cn, r, c, cn),
        (r - 2 * (r // 4) - 1, c - c // 3, cn), f"{r // 4}, {r - r // 4 - 1}, {c // 3}, {c}",
        ref=lambda x, r=r, c=c: x[r // 4:r - r // 4 - 1, c // 3:c])
for cw in (0, 1):
    add(f"rotate_f16_cw{cw}", "tinycv_rotate_f16", "f16", (50, 13, 19, 3), (19, 13, 3),
        "true" if cw else "false",
        ref=lambda x, cw=cw: np.rot90(x, -1 if cw else 1, axes=(0, 1)))
add("transpose_natural", "tinycv_transpose_ui8", "ui8", ("natural", 47, 61, 3), (61, 47, 3),
    ref=lambda x: cv2.transpose(x))

# --- colour -----------------------------------------------------------------------------
for kind, r, c in ((60, 19, 33), ("natural", 47, 61)):
    tag = "natural" if kind == "natural" else "rand"
    add(f"rgb2bgr_{tag}", "tinycv_cvt_rgb2bgr_ui8", "ui8", (kind, r, c, 3), (r, c, 3),
        ref=lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2BGR))
    add(f"rgb2yuv_{tag}", "tinycv_cvt_rgb2yuv_ui8", "ui8", (kind, r, c, 3), (r, c, 3),
        ref=lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2YUV))
    add(f"rgb2gray_{tag}", "tinycv_cvt_rgb2gray_ui8", "ui8", (kind, r, c, 3), (r, c, 1),
        ref=lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2GRAY))
    add(f"gray2rgb_ui8_{tag}", "tinycv_cvt_gray2rgb_ui8", "ui8", (kind, r, c, 1), (r, c, 3),
        ref=lambda x: cv2.cvtColor(x, cv2.COLOR_GRAY2RGB))
    add(f"gray2rgb_f32_{tag}", "tinycv_cvt_gray2rgb_f32", "f32", (kind, r, c, 1), (r, c, 3),
        ref=lambda x: cv2.cvtColor(x, cv2.COLOR_GRAY2RGB))
for kind, r, c in ((61, 30, 34), ("natural", 45, 62), (62, 3, 2)):
    tag = "natural" if kind == "natural" else f"rand{r}x{c}"
    add(f"yuv2bgr_nv21_{tag}", "tinycv_cvt_yuv2bgr_nv21_ui8", "ui8", (kind, r, c, 1),
        (r * 2 // 3, c, 3), ref=lambda x: cv2.cvtColor(x[..., 0], cv2.COLOR_YUV2BGR_NV21))

# --- resize -----------------------------------------------------------------------------
RESIZES = [(17, 23, 9, 31), (37, 29, 61, 13), (21, 15, 21, 15), (40, 60, 20, 30),
           (31, 47, 7, 5), (5, 3, 19, 23), (1, 9, 3, 4), (9, 70, 6, 140)]
for k, (cn, (r, c, dr, dc)) in enumerate(zip([1, 2, 3, 4, 3, 1, 4, 2], RESIZES)):
    for dt in ("ui8", "f32"):
        add(f"resize_{dt}_c{cn}_{r}x{c}to{dr}x{dc}", f"tinycv_resize_linear_{dt}", dt,
            (70 + k, r, c, cn), (dr, dc, cn),
            ref=lambda x, dr=dr, dc=dc: _c3(cv2.resize(x, (dc, dr),
                                                      interpolation=cv2.INTER_LINEAR)))
for dt in ("ui8", "f32"):
    add(f"resize_{dt}_natural", f"tinycv_resize_linear_{dt}", dt, ("natural", 48, 64, 3),
        (29, 37, 3), ref=lambda x: cv2.resize(x, (37, 29), interpolation=cv2.INTER_LINEAR))

# --- warp affine ------------------------------------------------------------------------
def _rot(a, s, tx, ty):
    return [s * np.cos(a), -s * np.sin(a), tx, s * np.sin(a), s * np.cos(a), ty]


WARPS = [(_rot(0.3, 1.1, -3.5, 4.25), 1, 23, 31, 27, 19),
         (_rot(-0.7, 0.8, 10.0, -2.0), 3, 37, 29, 33, 41),
         ([1.0, 0.0, 2.0, 0.0, 1.0, -3.0], 4, 17, 21, 17, 21),
         ([0.5, 0.2, -7.3, -0.1, 1.7, 3.3], 2, 19, 13, 25, 17),
         (_rot(2.0, 1.3, 40.0, 30.0), 3, "natural", 47, 61, 43),
         (_rot(0.1, 0.5, -1.0, 2.0), 1, 13, 60, 5, 140)]
for k, (t, cn, *dims) in enumerate(WARPS):
    if dims[0] == "natural":
        kind, r, c, dr, dc = "natural", dims[1], dims[2], dims[3], dims[1]
    else:
        kind, (r, c, dr, dc) = 80 + k, dims
    M = np.array(t, np.float64).reshape(2, 3)
    add(f"warp_replicate_{k}", "tinycv_warp_affine_replicate_linear_ui8", "ui8",
        (kind, r, c, cn), (dr, dc, cn), "t", doubles=list(t),
        ref=lambda x, M=M, dr=dr, dc=dc: _c3(cv2.warpAffine(
            x, M, (dc, dr), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE)))
    add(f"warp_constant_{k}", "tinycv_warp_affine_constant_linear_ui8", "ui8",
        (kind, r, c, cn), (dr, dc, cn), "t, 77", doubles=list(t),
        ref=lambda x, M=M, dr=dr, dc=dc: _c3(cv2.warpAffine(
            x, M, (dc, dr), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT, borderValue=(77, 77, 77, 77))))

# --- gaussian blur ----------------------------------------------------------------------
BORDERS = {"constant": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE,
           "reflect": cv2.BORDER_REFLECT, "reflect_101": cv2.BORDER_REFLECT_101}
BLURS = [(3, 19, 27, 5, 5, 0.0, 0.0), (1, 23, 17, 3, 7, 1.3, 0.7), (4, 13, 11, 9, 5, 2.0, 0.0),
         (2, 17, 19, 11, 13, 2.5, 3.1), (3, 5, 3, 7, 7, 0.0, 0.0), (1, 9, 70, 15, 1, 0.0, 0.0),
         (3, "natural", 47, 61, 5, 5, 1.1, 0.0),
         # wider than a strip (128 columns): strips inside and at both borders
         (3, 7, 150, 5, 5, 0.0, 0.0), (1, 5, 261, 7, 3, 1.5, 0.0)]
for k, (cn, *dims) in enumerate(BLURS):
    if dims[0] == "natural":
        kind, r, c, kh, kw, sx, sy = dims
    else:
        kind, (r, c, kh, kw, sx, sy) = 90 + k, dims
    for border, code in BORDERS.items():
        for dt in ("ui8", "f32"):
            add(f"blur_{border}_{dt}_{k}", f"tinycv_gaussian_blur_{border}_{dt}", dt,
                (kind, r, c, cn), (r, c, cn), f"{kh}, {kw}, {sx!r}, {sy!r}",
                ref=lambda x, kh=kh, kw=kw, sx=sx, sy=sy, code=code: _c3(cv2.GaussianBlur(
                    x, (kw, kh), sx, sigmaY=sy, borderType=code)))
# ksize 0: derived from sigma
add("blur_auto_ksize_ui8", "tinycv_gaussian_blur_reflect_101_ui8", "ui8", (99, 21, 25, 3),
    (21, 25, 3), "0, 0, 1.4, 0.0",
    ref=lambda x: cv2.GaussianBlur(x, (0, 0), 1.4, borderType=cv2.BORDER_REFLECT_101))

# --- beyond MegCC ------------------------------------------------------------------------
for order, layout in (("bgr", "nv12"), ("rgb", "nv21"), ("rgb", "nv12"), ("bgr", "i420"),
                      ("rgb", "i420")):
    code = getattr(cv2, f"COLOR_YUV2{order.upper()}_{layout.upper()}")
    for kind, r, c in ((63, 30, 34), ("natural", 45, 62)):
        tag = "natural" if kind == "natural" else "rand"
        add(f"yuv2{order}_{layout}_{tag}", f"tinycv_cvt_yuv2{order}_{layout}_ui8", "ui8",
            (kind, r, c, 1), (r * 2 // 3, c, 3),
            ref=lambda x, code=code: cv2.cvtColor(x[..., 0], code))
PERSPECTIVES = [([1.05, 0.1, -3.0, -0.05, 0.95, 2.0, 0.001, -0.0008, 1.0], 3, 37, 29, 33, 41),
                ([0.8, -0.3, 10.5, 0.2, 1.1, -4.25, -0.002, 0.003, 1.1], 1, 23, 61, 50, 45),
                ([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], 4, 17, 21, 17, 21),
                ([0.9, 0.2, 5.0, -0.1, 0.7, 30.0, 0.0015, 0.001, 0.9], 3, "natural", 47, 61, 40)]
for k, (t9, cn, *dims) in enumerate(PERSPECTIVES):
    if dims[0] == "natural":
        kind, r, c, dr, dc = "natural", dims[1], dims[2], dims[3], 70
    else:
        kind, (r, c, dr, dc) = 130 + k, dims
    M = np.array(t9, np.float64).reshape(3, 3)
    for border, bt, args in (("replicate", cv2.BORDER_REPLICATE, "t"),
                             ("constant", cv2.BORDER_CONSTANT, "t, 77")):
        add(f"warp_perspective_{border}_{k}", f"tinycv_warp_perspective_{border}_linear_ui8",
            "ui8", (kind, r, c, cn), (dr, dc, cn), args, doubles=list(t9),
            ref=lambda x, M=M, dr=dr, dc=dc, bt=bt: _c3(cv2.warpPerspective(
                x, M, (dc, dr), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=bt,
                borderValue=(77, 77, 77, 77))))
for k, (cn, (r, c, dr, dc)) in enumerate(zip([1, 3, 4, 2], [(17, 23, 9, 31), (37, 29, 61, 13),
                                                           (40, 60, 20, 30), (5, 3, 19, 23)])):
    for dt in ("ui8", "f32"):
        add(f"resize_nearest_{dt}_c{cn}_{r}x{c}to{dr}x{dc}", f"tinycv_resize_nearest_{dt}", dt,
            (110 + k, r, c, cn), (dr, dc, cn),
            ref=lambda x, dr=dr, dc=dc: _c3(cv2.resize(x, (dc, dr),
                                                      interpolation=cv2.INTER_NEAREST)))
for kind, (r, c, cn) in ((120, (13, 17, 3)), ("natural", (47, 61, 3)), (121, (9, 11, 1)),
                         (122, (7, 9, 4)), (123, (5, 13, 2)), (124, (16, 3, 3))):
    mean, std = [123.675, 116.28, 103.53, 0][:cn], [58.395, 57.12, 57.375, 1][:cn]
    add(f"normalize_c{cn}_{kind}", "tinycv_normalize_ui8", "f32", (kind, r, c, cn), (r, c, cn),
        "f, f + 4", floats=mean + [0] * (4 - cn) + std + [1] * (4 - cn), src_dtype="ui8",
        ref=lambda x, m=mean, s=std: ((x.astype(np.float64) - m) / s).transpose(2, 0, 1))

# --- resize area (OpenCV's three paths: integer blocks, area table, area-style enlarging) ---
AREAS = [(1, 34, 46, 17, 23), (2, 34, 46, 17, 23), (3, 34, 46, 17, 23), (4, 34, 46, 17, 23),
         (3, 39, 42, 13, 14), (1, 36, 30, 12, 10), (4, 24, 36, 8, 6),      # 3x3, 3x5 blocks
         (3, 37, 29, 13, 11), (1, 61, 47, 17, 10), (2, 23, 19, 22, 18),    # area tables
         (3, 9, 7, 23, 31), (1, 5, 11, 12, 12), (4, 30, 8, 11, 20),        # enlarge, mixed
         (1, 200, 150, 7, 9),
         # wide enough for several vector groups: a 2x2 block and a 4-channel area table
         (1, 40, 100, 20, 50), (4, 50, 70, 15, 21)]
for k, (cn, r, c, dr, dc) in enumerate(AREAS):
    for dt in ("ui8", "f32"):
        add(f"resize_area_{dt}_c{cn}_{r}x{c}to{dr}x{dc}", f"tinycv_resize_area_{dt}", dt,
            (190 + k, r, c, cn), (dr, dc, cn),
            ref=lambda x, dr=dr, dc=dc: _c3(cv2.resize(x, (dc, dr), interpolation=cv2.INTER_AREA)))
for dt in ("ui8", "f32"):
    for dr, dc in ((24, 32), (17, 23), (48, 64)):
        add(f"resize_area_{dt}_natural_{dr}x{dc}", f"tinycv_resize_area_{dt}", dt,
            ("natural", 48, 64, 3), (dr, dc, 3),
            ref=lambda x, dr=dr, dc=dc: cv2.resize(x, (dc, dr), interpolation=cv2.INTER_AREA))

# --- boxes: crop-and-resize, letterbox, top-k, NMS, box decoding ---------------------------
for k, (cn, (kind, rr, cc), (br, bc, bh, bw), (dr, dc)) in enumerate(
        [(3, (140, 37, 41), (5, 7, 20, 23), (31, 17)), (1, (141, 23, 29), (0, 0, 23, 29), (11, 13)),
         (4, (142, 19, 33), (18, 32, 1, 1), (3, 4)),
         (3, ("natural", 48, 64), (10, 20, 30, 40), (64, 64)),
         # boxes at the image's last bytes, enlarged: a 4-byte gather of the vector cores
         # must stop short of the end (1 and 3 channels: gathered; 2: scalar ends)
         (1, (143, 30, 40), (21, 31, 9, 9), (20, 45)), (3, (144, 12, 50), (0, 38, 12, 12), (7, 40)),
         (2, (145, 8, 1), (0, 0, 8, 1), (16, 24))]):
    for dt in ("ui8", "f32"):
        add(f"crop_and_resize_{dt}_{k}", f"tinycv_crop_and_resize_linear_{dt}", dt,
            (kind, rr, cc, cn), (dr, dc, cn), f"{br}, {bc}, {bh}, {bw}",
            ref=lambda x, br=br, bc=bc, bh=bh, bw=bw, dr=dr, dc=dc: _c3(cv2.resize(
                np.ascontiguousarray(x[br:br + bh, bc:bc + bw]), (dc, dr),
                interpolation=cv2.INTER_LINEAR)))


def _letterbox(x, dr, dc, pad, dt):
    h, w = x.shape[:2]
    s = min(dc / w, dr / h)
    nw = min(max(int(np.rint(w * s)), 1), dc)
    nh = min(max(int(np.rint(h * s)), 1), dr)
    out = np.full((dr, dc, x.shape[2]), np.clip(np.rint(pad), 0, 255) if dt == "ui8" else pad,
                  x.dtype)
    top, left = (dr - nh) // 2, (dc - nw) // 2
    out[top:top + nh, left:left + nw] = _c3(cv2.resize(x, (nw, nh),
                                                     interpolation=cv2.INTER_LINEAR))
    return out


for k, (cn, (kind, rr, cc), (dr, dc), pad) in enumerate(
        [(3, (150, 37, 61), (32, 32), 114.0), (1, (151, 50, 20), (40, 40), 0.0),
         (3, ("natural", 48, 64), (64, 48), 127.5), (4, (153, 9, 9), (20, 30), 300.0)]):
    for dt in ("ui8", "f32"):
        add(f"letterbox_{dt}_{k}", f"tinycv_letterbox_linear_{dt}", dt, (kind, rr, cc, cn),
            (dr, dc, cn), f"{pad!r}, 0, 0, 0",
            ref=lambda x, dr=dr, dc=dc, pad=pad, dt=dt: _letterbox(x, dr, dc, pad, dt))

_TIES = [0.5, 0.9, 0.1, 0.9, float("nan"), 0.5, -1.0, 0.9, 0.3, 0.0, 0.5, 2.0]
for k, (src, kk, data) in enumerate([((160, 1, 37, 1), 10, None), ((161, 9, 13, 1), 117, None),
                                     ((0, 3, 4, 1), 12, _TIES), ((0, 1, 12, 1), 5, _TIES)]):
    add(f"topk_{k}", "tinycv_topk_f32", "f32", src, (1, kk, 1), dst_dtype="i32", src_data=data,
        ref=lambda x, kk=kk: np.argsort(-np.nan_to_num(x.ravel().astype(np.float64), nan=-np.inf),
                                        kind="stable")[:kk].astype(np.int32))


def _boxes(seed, n, extent):
    rng = np.random.RandomState(seed)
    xy = rng.uniform(0, extent, (n, 2))
    wh = rng.uniform(4, extent / 3, (n, 2))
    return np.concatenate([xy, wh], 1).astype(np.float32), rng.uniform(0, 1, n).astype(np.float32)


def _nms_ref(boxes, scores, st, nt, top_k, cap):
    keep = cv2.dnn.NMSBoxes([tuple(map(float, b)) for b in boxes.reshape(-1, 4)],
                            [float(s) for s in scores], st, nt, top_k=top_k)
    keep = list(np.array(keep).reshape(-1))[:cap]
    return np.array(keep + [-1] * (cap - len(keep)), np.int32)


for k, (n, st, nt, top_k, cap) in enumerate([(40, 0.3, 0.45, 0, 40), (60, 0.0, 0.3, 25, 60),
                                            (30, 0.5, 0.7, 0, 4), (50, 0.2, 0.0, 0, 50),
                                            (1, 0.0, 0.5, 0, 3)]):
    boxes, scores = _boxes(170 + k, n, 100.0)
    if k == 1:
        boxes[5] = boxes[9]  # identical boxes and an equal score: OpenCV's stable order
        scores[5] = scores[9]
    add(f"nms_{k}", "tinycv_nms_f32", "f32", (0, n, 4, 1), (1, cap, 1),
        f"fd, {st!r}f, {nt!r}f, {top_k}, ws", dst_dtype="i32", src_data=list(boxes.ravel()),
        float_data=list(scores), workspace=2 * n,
        ref=lambda x, scores=scores, st=st, nt=nt, top_k=top_k, cap=cap:
            _nms_ref(x, scores, st, nt, top_k, cap))


def _decode_ref(d, anchors, var):
    d = d.reshape(-1, 4).astype(np.float64)
    a = anchors.reshape(-1, 4).astype(np.float64)
    aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    cx = a[:, 0] + 0.5 * aw + d[:, 0] * var[0] * aw
    cy = a[:, 1] + 0.5 * ah + d[:, 1] * var[1] * ah
    w, h = aw * np.exp(d[:, 2] * var[2]), ah * np.exp(d[:, 3] * var[3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


for k, n in enumerate([7, 33]):
    rng = np.random.RandomState(180 + k)
    deltas = rng.normal(0, 1.5, (n, 4)).astype(np.float32)
    a_xy = rng.uniform(0, 300, (n, 2))
    anchors = np.concatenate([a_xy, a_xy + rng.uniform(8, 120, (n, 2))], 1).astype(np.float32)
    var = [0.1, 0.1, 0.2, 0.2]
    add(f"box_decode_{k}", "tinycv_box_decode_f32", "f32", (0, n, 4, 1), (n, 4, 1),
        "fd, fd + " + str(4 * n), src_data=list(deltas.ravel()),
        float_data=list(anchors.ravel()) + var,
        ref=lambda x, anchors=anchors, var=var: _decode_ref(x, anchors, var))


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _yolo_ref(t, gh, gw, stride, anchors, sigmoid):
    """YOLOX (anchors None) / YOLOv5 decoding in float64: boxes xyxy, scores, classes."""
    t = t.reshape(-1, t.shape[1]).astype(np.float64)
    n_a = t.shape[0] // (gh * gw)
    a, cell = np.divmod(np.arange(t.shape[0]), gh * gw)
    gy, gx = np.divmod(cell, gw)
    if anchors is None:
        cx, cy = (t[:, 0] + gx) * stride, (t[:, 1] + gy) * stride
        w, h = np.exp(t[:, 2]) * stride, np.exp(t[:, 3]) * stride
    else:
        p = _sigmoid(t[:, :4])
        anc = np.array(anchors, np.float64).reshape(n_a, 2)[a]
        cx, cy = (2 * p[:, 0] - 0.5 + gx) * stride, (2 * p[:, 1] - 0.5 + gy) * stride
        w, h = (2 * p[:, 2]) ** 2 * anc[:, 0], (2 * p[:, 3]) ** 2 * anc[:, 1]
    conf = _sigmoid(t[:, 4:]) if sigmoid else t[:, 4:]
    cls = np.argmax(conf[:, 1:], 1)  # first of equal maxima
    scores = conf[:, 0] * conf[np.arange(len(cls)), 1 + cls]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1), scores, cls


def _yolo_check(src, raw, gh, gw, stride, anchors, sigmoid):
    n = src.shape[0]
    boxes, scores, cls = _yolo_ref(src, gh, gw, stride, anchors, sigmoid)
    got = np.frombuffer(raw, np.float32, 5 * n)
    got_boxes, got_scores = got[:4 * n].reshape(n, 4), got[4 * n:]
    got_cls = np.frombuffer(raw, np.int32, n, 20 * n)
    for name, ours, ref in (("boxes", got_boxes, boxes), ("scores", got_scores, scores)):
        err = float(np.max(np.abs(ours - ref) / np.maximum(1.0, np.abs(ref))))
        if not err <= 1e-4:
            return f"{name}: error {err:.3g} > 1e-4"
    if not np.array_equal(got_cls, cls):
        return f"classes differ at {np.flatnonzero(got_cls != cls)[:5].tolist()}"
    return None


# anchor-free (YOLOX: 1 anchor, raw xy offsets, log sizes) and anchor-based (YOLOv5's
# anchors of its stride-8 level), logits or probabilities, a tie between two classes
for k, (gh, gw, stride, anchors, nc, sigmoid) in enumerate(
        [(5, 7, 8.0, None, 3, True), (4, 3, 32.0, None, 1, False),
         (3, 5, 8.0, [10.0, 13.0, 16.0, 30.0, 33.0, 23.0], 4, True),
         (2, 6, 16.0, [30.0, 61.0, 62.0, 45.0], 2, False)]):
    n = (1 if anchors is None else len(anchors) // 2) * gh * gw
    rng = np.random.RandomState(190 + k)
    data = rng.normal(0, 1.5, (n, 5 + nc)).astype(np.float32)
    if not sigmoid:
        data[:, 4:] = rng.uniform(0, 1, (n, 1 + nc))
        if anchors is not None:
            data[:, :4] = rng.normal(0, 2, (n, 4))
    if nc > 1:
        data[3, 6] = data[3, 5]  # equal class scores: the lower class wins
    args = (f"{gh}, {gw}, {stride!r}f, {'fd' if anchors else 'NULL'}, "
            f"{'true' if sigmoid else 'false'}, (float*)x, (int32_t*)(x + {4 * n})")
    add(f"yolo_decode_{k}", "tinycv_yolo_decode_f32", "f32", (0, n, 5 + nc, 1), (n, 4, 1), args,
        src_data=list(data.ravel()), float_data=list(anchors or []), out_extra=8 * n,
        check=lambda x, raw, gh=gh, gw=gw, stride=stride, anchors=anchors, sigmoid=sigmoid:
            _yolo_check(x[..., 0], raw, gh, gw, stride, anchors, sigmoid))

# --- refusals: sizes or channels that do not fit; the function must write nothing --------
for fn, dt, src, dst, args in [
        ("tinycv_transpose_ui8", "ui8", (1, 5, 7, 3), (5, 7, 3), ""),
        ("tinycv_roi_copy_ui8", "ui8", (1, 5, 7, 1), (3, 3, 1), "2, 6, 0, 3"),
        ("tinycv_roi_copy_ui8", "ui8", (1, 5, 7, 1), (2, 3, 1), "2, 4, 5, 8"),
        ("tinycv_rotate_ui8", "ui8", (1, 5, 7, 1), (5, 7, 1), "true"),
        ("tinycv_flip_ui8", "ui8", (1, 5, 7, 2), (5, 7, 1), "true, true"),
        ("tinycv_resize_linear_ui8", "ui8", (1, 5, 7, 3), (9, 9, 1), ""),
        ("tinycv_resize_linear_f32", "f32", (1, 5, 7, 5), (9, 9, 5), ""),
        ("tinycv_warp_affine_replicate_linear_ui8", "ui8", (1, 5, 7, 2), (5, 7, 3), "t"),
        ("tinycv_cvt_rgb2bgr_ui8", "ui8", (1, 5, 7, 4), (5, 7, 4), ""),
        ("tinycv_cvt_rgb2gray_ui8", "ui8", (1, 5, 7, 3), (5, 7, 3), ""),
        ("tinycv_cvt_yuv2bgr_nv21_ui8", "ui8", (1, 7, 6, 1), (4, 6, 3), ""),
        ("tinycv_cvt_yuv2bgr_nv21_ui8", "ui8", (1, 6, 5, 1), (4, 5, 3), ""),
        ("tinycv_cvt_gray2rgb_f32", "f32", (1, 5, 7, 1), (5, 6, 3), ""),
        ("tinycv_gaussian_blur_constant_ui8", "ui8", (1, 5, 7, 1), (5, 7, 1), "4, 3, 0.0, 0.0"),
        ("tinycv_gaussian_blur_reflect_f32", "f32", (1, 5, 7, 1), (5, 7, 1),
         "65, 3, 1.0, 1.0"),
        ("tinycv_gaussian_blur_replicate_ui8", "ui8", (1, 5, 7, 1), (5, 7, 1), "0, 0, 0.0, 0.0"),
        ("tinycv_cvt_rgb2yuv_ui8", "ui8", (1, 0, 7, 3), (0, 7, 3), ""),
        ("tinycv_crop_and_resize_linear_ui8", "ui8", (1, 5, 7, 1), (3, 3, 1), "2, 3, 4, 2"),
        ("tinycv_crop_and_resize_linear_f32", "f32", (1, 5, 7, 1), (3, 3, 1), "0, 0, 0, 2"),
        ("tinycv_letterbox_linear_ui8", "ui8", (1, 5, 7, 3), (8, 8, 1), "0.0, 0, 0, 0"),
        ("tinycv_topk_f32", "f32", (1, 1, 5, 1), (1, 6, 1), ""),
        ("tinycv_nms_f32", "f32", (1, 5, 3, 1), (1, 5, 1), "f, 0.5f, 0.5f, 0, ws"),
        ("tinycv_box_decode_f32", "f32", (1, 5, 4, 1), (4, 4, 1), "f, f"),
        ("tinycv_yolo_decode_f32", "f32", (1, 7, 8, 1), (7, 4, 1), "2, 3, 8.0f, NULL, true, 0, 0"),
        ("tinycv_yolo_decode_f32", "f32", (1, 12, 8, 1), (12, 4, 1), "2, 3, 8.0f, NULL, true, 0, 0")]:
    add(f"refuse_{len(CASES)}_{fn[7:]}", fn, dt, src, dst, args, refused=True,
        doubles=[1, 0, 0, 0, 1, 0])


def requested() -> List[Tuple[str, str]]:
    """The (operator, dtype) entries the cases call: the program's CV request."""
    from megcc_builder.ir.opdefs.cv import CV_OPERATORS

    by_symbol = {op.symbol(dt): (op.name, dt) for op in CV_OPERATORS.values()
                 for dt in op.dtypes}
    return sorted({by_symbol[c.fn] for c in CASES})


_ESIZE = {"ui8": 1, "f16": 2, "f32": 4, "i32": 4}


def _c_float(v: float) -> str:
    """A float literal (NaN as 0.0f / 0.0f: C99 has no NaN literal without math.h)."""
    return "(0.0f / 0.0f)" if v != v else repr(float(v)) + "f"


def cases_c_source() -> str:
    """The test program: builds each input, calls the function on a dst surrounded by guard
    bytes, prints `case <id> <hex>` (or `refused <id> <errors> <untouched>`) and `guards ok`
    when nothing was written outside any dst."""
    nat = natural_rgb()
    nat_bytes = ",".join(str(int(v)) for v in nat.ravel())
    lines = [r"""#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tinycv_c.h"

int tinycv_test_errors;
static int guard_failures;
static const unsigned char natural[%d] = {%s};

static void* make_input(long kind, size_t rows, size_t cols, size_t cn, int esize)
{
    size_t n = rows * cols * cn, i;
    unsigned char* p = (unsigned char*)malloc(n * esize + 1);
    unsigned x = (unsigned)kind;
    for (i = 0; i < n; ++i) {
        if (kind < 0) {  /* natural: the photograph's channel (c %% 3) */
            size_t pix = i / cn, c = i %% cn, r = pix / cols, col = pix %% cols;
            unsigned char v = natural[(r * %d + col) * 3 + c %% 3];
            if (esize == 1) p[i] = v;
            else if (esize == 2) ((unsigned short*)p)[i] = (unsigned short)(v * 257);
            else ((float*)p)[i] = (float)v;
            continue;
        }
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        if (esize == 1) p[i] = (unsigned char)(x >> 24);
        else if (esize == 2) ((unsigned short*)p)[i] = (unsigned short)(x >> 16);
        else ((float*)p)[i] = (float)(x >> 8) * (1.0f / 16777216.0f) * 255.0f;
    }
    return p;
}

#define GUARD 64
static unsigned char* make_output(size_t bytes)
{
    unsigned char* p = (unsigned char*)malloc(bytes + 2 * GUARD);
    memset(p, 0xA5, bytes + 2 * GUARD);
    return p + GUARD;
}

static int untouched(const unsigned char* p, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) if (p[i] != 0xA5) return 0;
    return 1;
}

static void finish(const char* id, unsigned char* out, size_t bytes, int refused, int errors)
{
    static const char hex[] = "0123456789abcdef";
    char line[1024];
    size_t i, k = 0;
    if (!untouched(out - GUARD, GUARD) || !untouched(out + bytes, GUARD)) {
        printf("guard broken %%s\n", id);
        ++guard_failures;
    }
    if (refused) {
        printf("refused %%s %%d %%d\n", id, errors, untouched(out, bytes));
    } else {
        printf("case %%s ", id);
        for (i = 0; i < bytes; ++i) {
            line[k++] = hex[out[i] >> 4];
            line[k++] = hex[out[i] & 15];
            if (k == sizeof line) { fwrite(line, 1, k, stdout); k = 0; }
        }
        fwrite(line, 1, k, stdout);
        printf("\n");
    }
    free(out - GUARD);
}

int main(void)
{
""" % (nat.size, nat_bytes, nat.shape[1])]
    for c in CASES:
        kind, rows, cols, cn = c.src
        k = -1 if kind == "natural" else int(kind)
        es = _ESIZE[c.out_dtype]
        src_es = _ESIZE[c.src_dtype or c.dtype]
        dr, dc, dcn = c.dst
        dbytes = dr * dc * dcn * es + c.out_extra
        args = f", {c.args}" if c.args else ""
        doubles = ", ".join(repr(float(v)) for v in c.doubles) or "0"
        floats = ", ".join(repr(float(v)) + "f" for v in c.floats) or "0"
        fdata = ", ".join(_c_float(v) for v in c.float_data) or "0"
        sdata = ", ".join(_c_float(v) for v in (c.src_data or [])) or "0"
        fill = (f"memcpy(s.data = malloc(sizeof sd), sd, sizeof sd);" if c.src_data is not None
                else f"s.data = make_input({k}, {rows}, {cols}, {cn}, {src_es});")
        lines.append(f"""    {{  /* {c.id} */
        const double t[9] = {{{doubles}}};
        const float f[8] = {{{floats}}};
        static const float fd[] = {{{fdata}}};
        static const float sd[] = {{{sdata}}};
        static int32_t ws[{max(1, c.workspace)}];
        TinyMat s = {{{rows}, {cols}, {cn}, 0}}, d = {{{dr}, {dc}, {dcn}, 0}};
        int e0 = tinycv_test_errors;
        unsigned char* x;
        (void)t; (void)f; (void)fd; (void)sd; (void)ws;
        {fill}
        d.data = make_output({dbytes});
        x = (unsigned char*)d.data + {dr * dc * dcn * es};
        (void)x;
        {c.fn}(&s, &d{args});
        finish("{c.id}", (unsigned char*)d.data, {dbytes}, {int(c.refused)}, tinycv_test_errors - e0);
        free(s.data);
    }}
""")
    lines.append('    printf(guard_failures ? "guards broken\\n" : "guards ok\\n");\n'
                 "    return 0;\n}\n")
    return "".join(lines)
