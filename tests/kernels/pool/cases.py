"""Pooling cases (MaxPool, AveragePool, global pools), run against every pool
implementation that applies (portable direct loops, the vector plane kernels of every
level).

Moved here from test_kernels_core (test_pool, test_global_pool), test_kernels_isa
(test_maxpool, test_avgpool: stride-2 even/odd column planes, wide rows, dilated taps, ceil
overhang past the pads, NaN propagation) and test_kernels_neon (its max/average pools).
"""
from __future__ import annotations

import numpy as np

from kernels.harness import Book, Const
from reference import pool2d

BOOK = Book("pool")
F32 = np.float32


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(F32)


# what the cost model picks at the vector levels (test_kernels_isa / test_kernels_neon)
VECTOR = {"max": {"avx2": ("maxpool_", "_avx2"), "arm64": ("maxpool_", "_neon"),
                  "armv7": ("maxpool_", "_neon")},
          "avg": {"avx2": ("avgpool_", "_avx2"), "arm64": ("avgpool_", "_neon"),
                  "armv7": ("avgpool_", "_neon")}}


def maxpool(id_, x, k, s, p, ceil, dil, opset=12, expect=None):
    BOOK.add(id_, "MaxPool", [x], dict(kernel_shape=list(k), strides=list(s), pads=list(p),
                                       ceil_mode=ceil, dilations=list(dil)), opset=opset,
             ref=lambda x: [pool2d(x, k, s, p, "max", False, bool(ceil), dil)],
             expect=expect or {})


def avgpool(id_, x, k, s, p, incpad, ceil, dil=(1, 1), opset=19, expect=None):
    attrs = dict(kernel_shape=list(k), strides=list(s), pads=list(p), ceil_mode=ceil,
                 count_include_pad=incpad)
    if dil != (1, 1):
        attrs["dilations"] = list(dil)
    BOOK.add(id_, "AveragePool", [x], attrs, opset=opset,
             ref=lambda x: [pool2d(x, k, s, p, "avg", bool(incpad), bool(ceil), dil)],
             expect=expect or {})


# --------------------------------------------------------------- test_kernels_core
_r = np.random.default_rng(1234)
for _mode, _k, _s, _p, _ceil, _inc, _dil in [
        ("max", (3, 3), (2, 2), (1, 1, 1, 1), 0, 0, (1, 1)),
        ("max", (2, 2), (2, 2), (0, 0, 0, 0), 1, 0, (1, 1)),
        ("max", (3, 2), (1, 2), (0, 1, 1, 0), 0, 0, (2, 1)),
        ("avg", (3, 3), (2, 2), (1, 1, 1, 1), 0, 0, (1, 1)),
        ("avg", (3, 3), (2, 2), (1, 1, 1, 1), 0, 1, (1, 1)),
        ("avg", (2, 2), (2, 2), (0, 0, 0, 0), 1, 0, (1, 1)),
        ("avg", (5, 5), (1, 1), (2, 2, 2, 2), 0, 1, (1, 1))]:
    _id = f"core_{_mode}_k{_k}s{_s}p{_p}c{_ceil}i{_inc}d{_dil}"
    if _mode == "max":
        maxpool(_id, _f32(_r, 2, 3, 9, 8), _k, _s, _p, _ceil, _dil)
    else:
        avgpool(_id, _f32(_r, 2, 3, 9, 8), _k, _s, _p, _inc, _ceil, opset=13)
for _op in ("GlobalAveragePool", "GlobalMaxPool"):
    BOOK.add(f"core_{_op}", _op, [_f32(_r, 2, 5, 7, 3)], opset=13,
             ref=(lambda x: [x.mean((2, 3), keepdims=True)]) if _op == "GlobalAveragePool"
             else (lambda x: [x.max((2, 3), keepdims=True)]))
# the average's 8 partial sums: fewer positions than 8 (tail only), 13 x 13 (21 rows of 8 + 1)
for _shape in ((1, 4, 2, 3), (1, 6, 13, 13)):
    BOOK.add("core_GlobalAveragePool_" + "x".join(map(str, _shape)), "GlobalAveragePool",
             [_f32(np.random.default_rng(77), *_shape)], opset=13,
             ref=lambda x: [x.mean((2, 3), keepdims=True)])

# ------------------------------------------------------------ test_kernels_isa (AVX2)
_r = np.random.default_rng(4321)
for _sh, _k, _s, _p, _ceil, _dil in [
        ((2, 3, 9, 8), (3, 3), (2, 2), (1, 1, 1, 1), 0, (1, 1)),
        ((1, 5, 55, 55), (3, 3), (2, 2), (0, 0, 0, 0), 1, (1, 1)),
        ((1, 4, 13, 21), (2, 2), (2, 2), (0, 0, 0, 0), 1, (1, 1)),
        ((1, 3, 17, 19), (3, 2), (1, 1), (0, 1, 1, 0), 0, (2, 1)),
        ((1, 2, 7, 9), (5, 5), (1, 1), (2, 2, 2, 2), 0, (1, 1)),
        # stride 2 reads even/odd column planes: wide rows (vector split), dilated taps
        ((1, 2, 11, 37), (3, 3), (2, 2), (1, 1, 1, 1), 1, (1, 1)),
        ((1, 3, 20, 23), (3, 3), (2, 2), (1, 2, 1, 0), 0, (2, 2))]:
    _x = _f32(_r, *_sh)
    _x.flat[5] = np.nan  # NaN propagates like the portable kernel
    maxpool(f"isa_max_{_sh}_k{_k}s{_s}p{_p}c{_ceil}d{_dil}", _x, _k, _s, _p, _ceil, _dil,
            opset=13, expect={"avx2": VECTOR["max"]["avx2"]})
for _sh, _k, _s, _p, _inc, _ceil, _dil in [
        ((1, 4, 27, 27), (3, 3), (2, 2), (1, 1, 1, 1), 0, 0, (1, 1)),   # ShuffleNet's shortcut
        ((2, 3, 9, 8), (3, 3), (2, 2), (1, 1, 1, 1), 1, 0, (1, 1)),
        ((1, 5, 14, 14), (2, 2), (2, 2), (0, 0, 0, 0), 0, 0, (1, 1)),   # DenseNet's transition
        ((1, 3, 11, 37), (3, 3), (1, 1), (1, 1, 1, 1), 0, 0, (1, 1)),
        ((1, 2, 12, 20), (3, 3), (2, 2), (1, 1, 1, 1), 1, 1, (1, 1)),  # ceil overhang past pads
        ((1, 2, 13, 21), (3, 3), (2, 2), (1, 0, 1, 2), 1, 1, (1, 1)),
        ((1, 2, 12, 19), (5, 3), (1, 2), (2, 1, 0, 1), 0, 1, (1, 2)),
        ((1, 3, 9, 23), (7, 7), (1, 1), (0, 0, 0, 0), 0, 0, (1, 1))]:
    _x = _f32(_r, *_sh)
    _x.flat[7] = np.nan
    avgpool(f"isa_avg_{_sh}_k{_k}s{_s}p{_p}i{_inc}c{_ceil}d{_dil}", _x, _k, _s, _p, _inc, _ceil,
            _dil, expect={"avx2": VECTOR["avg"]["avx2"]})

# -------------------------------------------------------------- test_kernels_neon
_r = np.random.default_rng(88)
for _sh, _k, _s, _p, _ceil, _dil in [
        ((2, 3, 9, 8), (3, 3), (2, 2), (1, 1, 1, 1), 0, (1, 1)),
        ((1, 5, 27, 27), (3, 3), (2, 2), (0, 0, 0, 0), 1, (1, 1)),
        ((1, 4, 13, 21), (2, 2), (2, 2), (0, 0, 0, 0), 1, (1, 1)),
        ((1, 3, 17, 19), (3, 2), (1, 1), (0, 1, 1, 0), 0, (2, 1)),
        ((1, 2, 7, 9), (5, 5), (1, 1), (2, 2, 2, 2), 0, (1, 1))]:
    _x = _f32(_r, *_sh)
    _x.flat[5] = np.nan
    maxpool(f"neon_max_{_sh}_k{_k}s{_s}p{_p}c{_ceil}d{_dil}", _x, _k, _s, _p, _ceil, _dil,
            opset=13, expect={p: VECTOR["max"][p] for p in ("arm64", "armv7")})
for _sh, _k, _s, _p, _inc, _ceil in [
        ((1, 4, 27, 27), (3, 3), (2, 2), (1, 1, 1, 1), 0, 0),
        ((1, 2, 12, 20), (3, 3), (2, 2), (1, 1, 1, 1), 1, 1),
        ((1, 3, 11, 13), (2, 2), (2, 2), (0, 0, 0, 0), 0, 0),
        ((1, 2, 9, 15), (5, 3), (1, 1), (2, 1, 0, 1), 0, 1)]:
    _x = _f32(_r, *_sh)
    _x.flat[3] = np.nan
    avgpool(f"neon_avg_{_sh}_k{_k}s{_s}p{_p}i{_inc}c{_ceil}", _x, _k, _s, _p, _inc, _ceil,
            opset=13, expect={p: VECTOR["avg"][p] for p in ("arm64", "armv7")})

# 2x2 stride-2 max pooling straight from the input rows (pool.pairs_simd_f32): whole
# vectors, a half vector, single floats; an odd height (floor: last row unused), ceil mode
# on even extents; NaN in a vector lane, a half-vector lane and a scalar tail
PAIRS = {p: ("maxpool_pairs_", s) for p, s in (("avx2", "_avx2"), ("arm64", "_neon"),
                                                ("armv7", "_neon"))}
_r = np.random.default_rng(2222)
for _sh, _ceil, _nans in [((2, 3, 9, 8), 0, (5, 77)), ((1, 2, 6, 40), 0, (3, 36, 70)),
                          ((1, 3, 5, 14), 0, (12, 13, 24)), ((1, 32, 8, 8), 0, ()),
                          ((1, 2, 8, 10), 1, (9,)), ((1, 1, 2, 34), 0, (33,))]:
    _x = _f32(_r, *_sh)
    for _i in _nans:
        _x.flat[_i] = np.nan
    maxpool(f"pairs_max_{_sh}_c{_ceil}", _x, (2, 2), (2, 2), (0, 0, 0, 0), _ceil, (1, 1),
            opset=13, expect=PAIRS)

# ------------------------------------------------------------------ new: Lp pools, unpool
_r = np.random.default_rng(31)
for _p in (1, 2, 3):
    BOOK.add(f"lp_pool_p{_p}", "LpPool", [_f32(_r, 1, 3, 7, 5)],
             dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1], p=_p), opset=18)
    BOOK.add(f"global_lp_pool_p{_p}", "GlobalLpPool", [_f32(_r, 2, 3, 5, 3)], {"p": _p},
             opset=13)
# MaxUnpool: the values and flat indices a 2x2/2 MaxPool of a 1x2x5x7 input produces
_x = _f32(_r, 1, 2, 5, 7)
_v = _x[:, :, :4, :6].reshape(1, 2, 2, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 3, 4)
_arg = _v.argmax(-1)
_rows = np.arange(2)[:, None] * 2 + _arg // 2
_cols = np.arange(3)[None, :] * 2 + _arg % 2
# flat indices into the inferred output (1, 2, 4, 6) (also with output_shape: the onnx
# reference evaluator, like the kernel, places them in the inferred shape, then pads)
_idx = (np.arange(2)[None, :, None, None] * 24 + _rows * 6 + _cols).astype(np.int64)


def _unpool_ref(v, idx, shape=(1, 2, 4, 6)):
    """Zeros with the values at their flat indices (onnxruntime 1.23 leaves the rest of its
    output uninitialised, so it cannot be the oracle here)."""
    y = np.zeros(int(np.prod(shape)), np.float32)
    y[idx.ravel()] = v.ravel()
    return [y.reshape(tuple(shape))]


BOOK.add("max_unpool", "MaxUnpool", [_v.max(-1), _idx], dict(kernel_shape=[2, 2], strides=[2, 2]),
         opset=11, ref=_unpool_ref)
BOOK.add("max_unpool_output_shape", "MaxUnpool",
         [_v.max(-1), _idx, Const(np.array([1, 2, 5, 7], np.int64))],
         dict(kernel_shape=[2, 2], strides=[2, 2]), opset=11,
         ref="onnx")


# --- RoiAlign: avg and max, both coordinate modes, adaptive and fixed sampling, a spatial
# scale, regions partly (and one wholly) outside the map, tiny regions, int64 batch indices
_r = np.random.default_rng(606)
_xr = _f32(_r, 2, 3, 9, 11)
_rois = np.array([[0.5, 1.0, 7.5, 6.0], [-3.0, -2.0, 4.0, 5.0], [2.0, 2.0, 2.2, 2.1],
                  [6.0, 3.0, 30.0, 25.0], [-20.0, -20.0, -15.0, -12.0]], F32)
_bi = np.array([0, 1, 1, 0, 1], np.int64)
for _mode in ("avg", "max"):
    for _coord in ("half_pixel", "output_half_pixel"):
        for _sr in (0, 2):
            BOOK.add(f"roi_align_{_mode}_{_coord}_sr{_sr}", "RoiAlign", [_xr, _rois, _bi],
                     {"mode": _mode, "coordinate_transformation_mode": _coord,
                      "output_height": 3, "output_width": 4, "sampling_ratio": _sr,
                      "spatial_scale": 0.5 if _sr else 1.0}, opset=16)


# --- float16 (enable_ioc16 on arm64-fp16): NumPy float16 arithmetic as the reference.
# Max pooling and window sums are exact; the mean of a plane sums in float32 (its order
# differs from NumPy's), so those are compared within 2e-3 (two float16 ulps at 1)
def _f16_pools():
    from kernels.f16_reference import out32, pool_f16, r16

    r = np.random.default_rng(1600)
    for kind, shape, k, s, p, inc in [
            ("max", (1, 3, 17, 21), (3, 3), (2, 2), (1, 1, 1, 1), 0),
            ("max", (2, 2, 10, 18), (2, 2), (2, 2), (0, 0, 0, 0), 0),
            ("max", (1, 2, 9, 27), (3, 3), (1, 1), (1, 1, 1, 1), 0),
            ("avg", (1, 3, 11, 19), (3, 3), (1, 1), (1, 1, 1, 1), 0),
            ("avg", (1, 2, 13, 20), (3, 3), (2, 2), (1, 1, 1, 1), 1),
            ("avg", (2, 3, 8, 16), (2, 2), (2, 2), (0, 0, 0, 0), 0)]:
        x = _f32(r, *shape)
        if kind == "max":
            x.flat[7] = np.nan  # fmax propagates NaN
        attrs = dict(kernel_shape=list(k), strides=list(s), pads=list(p))
        if kind == "avg":
            attrs["count_include_pad"] = inc
        BOOK.add(f"f16_{kind}_k{k[0]}x{k[1]}_s{s[0]}_p{p[0]}_i{inc}_{shape[3]}",
                 "MaxPool" if kind == "max" else "AveragePool", [x], attrs, opset=13,
                 ref=lambda x, kind=kind, k=k, s=s, p=p, inc=inc: pool_f16(x, kind, k, s, p, bool(inc)),
                 ioc16=True, exact=True)
    x = _f32(r, 2, 19, 5, 7)
    mean = lambda x, axes: [out32(r16(x).mean(axes, keepdims=True))]  # noqa: E731
    BOOK.add("f16_global_avg", "GlobalAveragePool", [x], opset=13,
             ref=lambda x: mean(x, (2, 3)), ioc16=True, tol=2e-3)
    BOOK.add("f16_global_max", "GlobalMaxPool", [x], opset=13,
             ref=lambda x: [out32(r16(x).max((2, 3), keepdims=True))], ioc16=True, exact=True)
    BOOK.add("f16_reduce_mean_last", "ReduceMean", [_f32(r, 1, 6, 3, 37)], {"axes": [3]},
             opset=13, ref=lambda x: mean(x, (3,)), ioc16=True, tol=2e-3)
    BOOK.add("f16_reduce_max_hw", "ReduceMax", [_f32(r, 1, 6, 9, 5)], {"axes": [-2, -1], "keepdims": 0},
             opset=13, ref=lambda x: [out32(r16(x).max((2, 3)))], ioc16=True, exact=True)


_f16_pools()


# --- float16 NCHW88 (enable_ioc16 + enable_nchw88 on arm64-fp16): the pool follows an
# identity 1x1 conv (exact in float16), which starts the NCHW88 region; NumPy float16
# arithmetic as the reference, bit-exact (the global mean: float32 sums in the kernel's
# order, tests/kernels/f16_nchw88_reference.py). 12 channels: a zero-padded last block.
def _f16_nchw88_pools():
    from kernels.f16_nchw88_reference import global_mean_f16_nchw88
    from kernels.f16_reference import out32, pool_f16, r16

    r = np.random.default_rng(1688)

    def identity(c):
        return (("Conv", [Const(np.eye(c, dtype=F32).reshape(c, c, 1, 1))], {}),)

    for kind, shape, k, s, p, inc in [
            ("max", (1, 16, 17, 21), (3, 3), (2, 2), (1, 1, 1, 1), 0),
            ("max", (2, 12, 10, 18), (2, 2), (2, 2), (0, 0, 0, 0), 0),
            ("avg", (1, 8, 11, 19), (3, 3), (1, 1), (1, 1, 1, 1), 0),
            ("avg", (1, 12, 13, 20), (3, 3), (2, 2), (1, 1, 1, 1), 1),
            ("avg", (2, 16, 8, 16), (2, 2), (2, 2), (0, 0, 0, 0), 0)]:
        x = _f32(r, *shape)
        attrs = dict(kernel_shape=list(k), strides=list(s), pads=list(p))
        if kind == "avg":
            attrs["count_include_pad"] = inc
        BOOK.add(f"n88_{kind}_k{k[0]}x{k[1]}_s{s[0]}_p{p[0]}_i{inc}_c{shape[1]}",
                 "MaxPool" if kind == "max" else "AveragePool", [x], attrs, opset=13,
                 ref=lambda x, kind=kind, k=k, s=s, p=p, inc=inc: pool_f16(x, kind, k, s, p, bool(inc)),
                 ioc16=True, nchw88=True, exact=True, pre=identity(shape[1]))
    for c in (16, 12):
        x = _f32(r, 2, c, 5, 7)
        BOOK.add(f"n88_global_avg_c{c}", "GlobalAveragePool", [x], opset=13,
                 ref=global_mean_f16_nchw88, ioc16=True, nchw88=True, exact=True,
                 pre=identity(c))
        BOOK.add(f"n88_global_max_c{c}", "GlobalMaxPool", [x], opset=13,
                 ref=lambda x: [out32(r16(x).max((2, 3), keepdims=True))], ioc16=True,
                 nchw88=True, exact=True, pre=identity(c))


_f16_nchw88_pools()
