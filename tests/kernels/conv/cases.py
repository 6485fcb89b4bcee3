"""Convolution cases (Conv in NCHW and, with enable_nchw44, NCHW44; ConvTranspose), written
once and run against every conv implementation that applies (test_conv.py).

Moved here from test_kernels_core (portable shapes), test_kernels_isa (the AVX2 tile edges),
test_kernels_neon (the NEON tile edges), test_kernels_winograd (Winograd tile edges),
test_layout_nchw44 (NCHW44 variants) and test_kernels_nn (ConvTranspose, onnxruntime
reference). `expect` records
what the cost model picks for a case on a platform (kernel-name prefix, suffix), checked by
test_conv.py::test_cost_model_choice without a C build.
"""
from __future__ import annotations

import numpy as np

from kernels.common import act_post, act_ref
from kernels.harness import Book, Const, uniform_source
from reference import conv2d

BOOK = Book("conv")
F32 = np.float32


def _rng(seed):
    return np.random.default_rng(seed)


def conv_case(id_, rng, n, c, h, w, oc, k, s, p, d, g, bias, act=None, scaled=False,
              clip=(-0.5, 1.5), nchw44=False, expect=None, opset=13, fp16=False):
    """One Conv (+ activation epilogue). scaled: weights at a trained layer's scale (variance
    1 / fan-in), outputs of order 1 as in a network: Winograd's rounding error grows with
    the partial sums' magnitude (unit weights at K = 333 give outputs of ~18 and F(4,3)
    normalised errors up to 1.7e-4)."""
    x = rng.standard_normal((n, c, h, w)).astype(F32)
    wt = rng.standard_normal((oc, c // g, *k)).astype(F32)
    if scaled:
        wt = wt / F32(np.sqrt(c // g * k[0] * k[1]))
    if fp16:  # weights float16 represents: the float32 reference stays exact
        wt = wt.astype(np.float16).astype(F32)
    inputs = [x, Const(wt)]
    if bias:
        inputs.append(Const(rng.standard_normal(oc).astype(F32)))
    attrs = dict(kernel_shape=list(k), strides=list(s), pads=list(p), dilations=list(d), group=g)

    def ref(x, w, b=None):
        return [act_ref(act, conv2d(x, w, b, s, p, d, g), clip)]
    BOOK.add(id_, "Conv", inputs, attrs, opset=opset, ref=ref, post=act_post(act, clip),
             nchw44=nchw44, expect=expect or {}, compress_fp16=fp16)


# ------------------------------------------------------- portable shapes (test_kernels_core)
CORE = [
    # (N, C, H, W, OC, k, stride, pads(t,l,b,r), dilation, group, bias)
    (1, 3, 7, 7, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),
    (2, 5, 9, 6, 7, (3, 3), (2, 2), (0, 1, 1, 0), (1, 1), 1, False),
    (1, 4, 8, 8, 6, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 2, True),
    (1, 3, 11, 13, 5, (5, 3), (2, 1), (2, 1, 2, 1), (2, 1), 1, True),
    (1, 6, 10, 10, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 6, True),  # depthwise
    (2, 4, 9, 9, 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 4, False),  # depthwise x2
    (1, 7, 5, 5, 7, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 7, True),  # depthwise 5x5
    (1, 3, 1, 1, 2, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True),
    (1, 1, 7, 3, 1, (3, 3), (3, 3), (1, 1, 1, 1), (1, 1), 1, False),
    (1, 6, 6, 6, 9, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 3, True),  # grouped
]
_r = _rng(1234)
for _c in CORE:
    conv_case("core_" + "x".join(map(str, _c[:5])) + f"_g{_c[9]}", _r, *_c)

# 1-D with auto_pad SAME_UPPER
_x, _w = _r.standard_normal((2, 3, 17)).astype(F32), _r.standard_normal((4, 3, 3)).astype(F32)
BOOK.add("core_1d_auto_pad", "Conv", [_x, Const(_w)], {"strides": [2], "auto_pad": "SAME_UPPER"},
         opset=13, ref=lambda x, w: [conv2d(x[:, :, None, :], w[:, :, None, :], None, (1, 2),
                                           (0, 1, 0, 1))[:, :, 0, :]])


# ---------------------------------------------------- AVX2 tile edges (test_kernels_isa)
# Shapes for the vector code's edges: channel counts that leave 1..5-row tails of the 6-row
# micro-tile, spatial sizes that are not multiples of 8 or 16, K above the K-block (320) so
# tiles accumulate over blocks, rows wide enough for the stride-1/stride-2 vector im2col
# paths, padding, dilation, groups, channel multipliers and every epilogue kind. The last
# field: the kernel the cost model picks at x86_64-v3 (None: either is fine).
ISA = [
    # 3 input channels: the few-channel direct kernel (every applicable kernel still runs)
    (1, 3, 7, 7, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "Relu", "conv2d_direct_c3"),
    (2, 5, 9, 6, 7, (3, 3), (2, 2), (0, 1, 1, 0), (1, 1), 1, False, None, "conv2d_gemm6x16"),
    # 3x3 stride 1 with room for 4x4 tiles: Winograd
    (1, 37, 19, 21, 13, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "Clip", "conv2d_winograd_f43"),
    # 3x3 stride 1, K = 576 over two K blocks, one output row: too few tiles for Winograd
    (1, 64, 1, 40, 13, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "Clip", "conv2d_gemm6x16"),
    (1, 19, 41, 45, 11, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, True, "Relu", "conv2d_gemm6x16"),
    (1, 3, 37, 35, 8, (7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1, True, None, "conv2d_gemm6x16"),
    (1, 5, 23, 40, 9, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1, False, "Sigmoid", "conv2d_gemm6x16"),
    (1, 4, 11, 13, 5, (5, 3), (3, 3), (2, 1, 2, 1), (1, 1), 1, True, None, "conv2d_gemm6x16"),
    # (few output channels: the direct 1x1, measured at x86_64-v3 2.3 us against the GEMM's 2.6)
    (1, 40, 9, 11, 17, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True, "Relu", "conv2d_1x1_fewoc"),
    (2, 350, 5, 7, 23, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True, None, "conv2d_1x1_gemm6x16"),
    (1, 33, 10, 9, 29, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1, True, "Relu", "conv2d_gemm6x16"),
    (1, 12, 8, 9, 18, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 3, True, "Relu", "conv2d_1x1_gemm6x16"),
    (1, 6, 6, 6, 9, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 3, True, None, "conv2d_gemm6x16"),
    # one multiply-add: the cost model may keep portable C (None: either is fine)
    (1, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True, None, None),
    # depthwise: 3x3/5x5, stride 1/2, odd widths, channel multiplier 2, dilation
    (1, 7, 13, 19, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 7, True, "Clip", "conv2d_depthwise"),
    (2, 5, 14, 17, 5, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 5, False, "Relu", "conv2d_depthwise"),
    (1, 3, 12, 23, 3, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 3, True, None, "conv2d_depthwise"),
    (1, 4, 15, 21, 4, (5, 5), (2, 2), (2, 2, 2, 2), (1, 1), 4, True, "Sigmoid", "conv2d_depthwise"),
    (1, 3, 9, 10, 6, (3, 3), (1, 1), (0, 1, 2, 0), (2, 1), 3, True, None, "conv2d_depthwise"),
    (1, 8, 9, 7, 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 8, True, "Relu", "conv2d_depthwise"),
    # fewer output rows than the 4-row block, and a 4-row block plus a 1-row remainder
    (1, 6, 3, 11, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 6, True, "Relu", "conv2d_depthwise"),
    (1, 5, 5, 9, 10, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 5, False, "Clip", "conv2d_depthwise"),
    # stride 2 with dilated taps (even/odd column planes) and rows wide enough to vectorise
    (1, 6, 17, 41, 6, (3, 3), (2, 2), (2, 1, 2, 1), (2, 2), 6, True, None, "conv2d_depthwise"),
    # plane copies of short rows: 7 and 5 columns (two overlapping half vectors), 3 and 2
    # (scalar on AVX2); 7 output rows = a 4-row block and one moved up over it
    (1, 6, 7, 7, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 6, True, "Clip", "conv2d_depthwise"),
    (1, 4, 9, 5, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4, False, None, "conv2d_depthwise"),
    (1, 3, 6, 3, 3, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3, True, "Relu", "conv2d_depthwise"),
    # stride 2 from 14 and 10 columns (7 and 5 even/odd pairs: half vectors), from 5 (2 pairs)
    (1, 5, 14, 14, 5, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 5, True, "Relu", "conv2d_depthwise"),
    (1, 3, 11, 10, 3, (3, 3), (2, 2), (0, 1, 1, 0), (1, 1), 3, True, "Clip", "conv2d_depthwise"),
    (1, 2, 5, 5, 2, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 2, True, None, "conv2d_depthwise"),
    # expanding 1x1 with a short K (the tiles run along row panels): M = 38 = 6 * 6 + 2 rows,
    # 13 x 13 = 169 columns (a 9-column edge panel); 7 x 7 = 49 (a 1-column edge panel)
    (1, 16, 13, 13, 38, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True, "Clip", "conv2d_1x1_gemm6x16"),
    # (the direct 1x1 for few output channels: 1.3 us against the GEMM's 1.9, x86_64-v3)
    (1, 24, 7, 7, 29, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, False, "Relu", "conv2d_1x1_fewoc"),
]

# 1x1 on small maps with the output positions as the GEMM's rows (pointwise_rows_simd_f32):
# 3 x 3 = 9 positions (a full and a 3-row panel on AVX2, 8 + 1 on AArch64), OC 37 = 2 * 16
# + 5 and K = 400 (past the ordinary kernel's 320 K block), batch 2 with 5 x 5, a scalar
# activation pass, 6 x 6 (six whole AVX2 panels), one position; the last field: the kernel
# the cost model picks on (avx2, arm64, armv7), None where either is fine.
ROWS = [
    (1, 400, 3, 3, 37, True, "Clip", ("conv2d_1x1_rows_gemm6x16", "conv2d_1x1_rows_gemm8x12",
                                      "conv2d_1x1_rows_gemm6x8")),
    (2, 70, 5, 5, 20, False, "Sigmoid", (None, None, None)),
    (1, 96, 6, 6, 70, True, "Relu", (None, None, None)),
    (1, 64, 1, 1, 50, True, None, (None, None, None)),
]
_r = _rng(3636)
for _c in ROWS:
    _exp = {p: (pre, "_avx2" if p == "avx2" else "_neon64" if p == "arm64" else "_neon")
            for p, pre in zip(("avx2", "arm64", "armv7"), _c[7]) if pre}
    conv_case("rows_" + "x".join(map(str, _c[:5])) + f"_{_c[6]}", _r, *_c[:5], (1, 1), (1, 1),
              (0, 0, 0, 0), (1, 1), 1, _c[5], _c[6], scaled=True, expect=_exp)


def rows_residual_case(id_, rng, n, c, h, w, oc, bias, act, expect):
    """y = act(conv + bias + r) with the residual fused (passes/fuse.py): transposed into
    the positions-as-rows tile before the GEMM accumulates onto it."""
    x = rng.standard_normal((n, c, h, w)).astype(F32)
    wt = (rng.standard_normal((oc, c, 1, 1)) / np.sqrt(c)).astype(F32)
    inputs = [x, Const(wt)] + ([Const(rng.standard_normal(oc).astype(F32))] if bias else [])
    post = (("Add", [rng.standard_normal((n, oc, h, w)).astype(F32)], {}),) + act_post(act)
    BOOK.add(id_, "Conv", inputs, dict(kernel_shape=[1, 1]), opset=13, post=post,
             expect={"avx2": ("conv2d_1x1_rows_gemm6x16", "_residual_avx2")} if expect else {})


rows_residual_case("rows_residual_1x160x3x3x24", _r, 1, 160, 3, 3, 24, True, None, True)
rows_residual_case("rows_residual_relu_2x48x4x5x33", _r, 2, 48, 4, 5, 33, False, "Relu", False)

# 1x1 with few output channels straight from the NCHW input (pointwise_fewoc_simd_f32):
# positions ending in whole 2-vector steps, single vectors and a scalar tail (117, 77, 35),
# several tiles (C 200: 16 or 32 positions per tile; 900 positions), output channels in
# whole blocks of 6 / 8 and a rest (13 = 6 + 6 + 1 = 8 + 5, 32, 8, 16), batch 2, clamps;
# the last field: the kernel the cost model picks on (avx2, arm64, armv7).
FEWOC = [
    (1, 48, 9, 13, 16, True, "Clip", "conv2d_1x1_fewoc"),
    (2, 16, 7, 11, 8, False, "Relu", "conv2d_1x1_fewoc"),
    (1, 200, 5, 7, 13, True, None, None),
    (1, 24, 30, 30, 32, True, "Clip", "conv2d_1x1_fewoc"),
]
_r = _rng(1616)
for _c in FEWOC:
    conv_case("fewoc_" + "x".join(map(str, _c[:5])) + f"_{_c[6]}", _r, *_c[:5], (1, 1), (1, 1),
              (0, 0, 0, 0), (1, 1), 1, _c[5], _c[6], scaled=True,
              expect={p: (_c[7], suf) for p, suf in (("avx2", "_avx2"), ("arm64", "_neon"),
                                                     ("armv7", "_neon"))} if _c[7] else {})


def fewoc_residual_case(id_, rng, n, c, h, w, oc, bias, act, expect):
    """y = act(conv + bias + r), the residual fused (passes/fuse.py) into the few-output-
    channel 1x1's store."""
    x = rng.standard_normal((n, c, h, w)).astype(F32)
    wt = (rng.standard_normal((oc, c, 1, 1)) / np.sqrt(c)).astype(F32)
    inputs = [x, Const(wt)] + ([Const(rng.standard_normal(oc).astype(F32))] if bias else [])
    post = (("Add", [rng.standard_normal((n, oc, h, w)).astype(F32)], {}),) + act_post(act)
    BOOK.add(id_, "Conv", inputs, dict(kernel_shape=[1, 1]), opset=13, post=post,
             expect={"avx2": ("conv2d_1x1_fewoc", "_residual_avx2")} if expect else {})


fewoc_residual_case("fewoc_residual_1x96x20x20x16", _r, 1, 96, 20, 20, 16, True, None, True)
fewoc_residual_case("fewoc_residual_relu_2x40x6x9x10", _r, 2, 40, 6, 9, 10, False, "Relu", False)

# depthwise on small maps with the channels in the vector lanes (depthwise_chblock_simd_f32):
# 3 x 3 and 6 x 6 maps, channels not a multiple of 8 or 4 (a partial last block), stride 2
# with an asymmetric pad, 5x5 taps with dilation, batch 2, a scalar activation pass, a
# global 7x7 ("GDConv", one output pixel); the last field: the kernel the cost model picks
# on avx2 (None: either is fine).
CHBLOCK = [
    (1, 37, 3, 3, 37, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 37, True, "Clip", "conv2d_depthwise_cb8"),
    (2, 21, 6, 6, 21, (3, 3), (2, 2), (0, 0, 1, 1), (1, 1), 21, False, "Relu", "conv2d_depthwise_cb8"),
    (1, 19, 6, 7, 19, (5, 5), (1, 1), (4, 4, 4, 4), (2, 2), 19, True, "Sigmoid", None),
    (1, 24, 7, 7, 24, (7, 7), (1, 1), (0, 0, 0, 0), (1, 1), 24, True, None, None),
    (1, 13, 5, 5, 13, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 13, True, "Relu", None),
]
_r = _rng(8088)
for _c in CHBLOCK:
    conv_case("chblock_" + "x".join(map(str, _c[:5])) + f"_k{_c[5][0]}s{_c[6][0]}_{_c[11]}",
              _r, *_c[:12], scaled=True, expect={"avx2": (_c[12], "_avx2")} if _c[12] else {})

# channels-in-lanes with register block transposes (lane_transpose.py): rows of at least VW
# columns and full channel blocks take the transposes (with the last block moved back to
# the row's end), a partial last block and short rows stay element by element; pixels in
# groups of 4 plus a tail; larger stride-2 maps only the transposing levels take (None: few
# channels, where the cost model keeps the plane kernel; every applicable kernel still runs)
CHBLOCK_T = [
    (1, 20, 10, 13, 20, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 20, True, "Clip", None),
    (1, 16, 23, 21, 16, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 16, True, "Relu", "conv2d_depthwise_cb8"),
    (2, 11, 18, 17, 11, (3, 3), (2, 2), (0, 1, 1, 0), (1, 1), 11, False, None, None),
    (1, 8, 60, 58, 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 8, True, "Clip", None),
    (1, 12, 9, 16, 12, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 12, True, "Sigmoid", None),
]
_r = _rng(8089)
for _c in CHBLOCK_T:
    conv_case("chblockT_" + "x".join(map(str, _c[:5])) + f"_k{_c[5][0]}s{_c[6][0]}_{_c[11]}",
              _r, *_c[:12], scaled=True, expect={"avx2": (_c[12], "_avx2")} if _c[12] else {})

# channels-in-lanes on large maps, transposed in bands of output rows (BAND_BYTES): several
# bands with a partial last one, top and bottom pad rows inside the first and last bands
# (cleared again after a band held input rows), a partial channel block, dilated 5x5 taps
# reading 9 padded rows a band (AVX2 bands: 26 / 48 / 43 rows; NEON 53 / 98 / 65)
CHBLOCK_BANDS = [
    (1, 16, 200, 60, 16, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 16, True, "Clip", "conv2d_depthwise_cb8"),
    (1, 11, 150, 40, 11, (3, 3), (1, 1), (0, 1, 2, 1), (1, 1), 11, False, "Relu", None),
    (1, 8, 130, 30, 8, (5, 5), (2, 2), (4, 4, 4, 4), (2, 2), 8, True, "Sigmoid", None),
]
_r = _rng(8095)
for _c in CHBLOCK_BANDS:
    conv_case("chblockB_" + "x".join(map(str, _c[:5])) + f"_k{_c[5][0]}s{_c[6][0]}_{_c[11]}",
              _r, *_c[:12], scaled=True, expect={"avx2": (_c[12], "_avx2")} if _c[12] else {})

# direct convolution for few input channels (conv.direct_fewc_simd_f32): 1-4 channels,
# stride 1 (padded planes) and 2 (even/odd planes), output rows with whole 2-vector steps,
# single vectors and a partial last vector, output channels in blocks of 4 and a rest
FEWC = [
    (1, 3, 33, 35, 16, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, True, "Clip", "conv2d_direct_c3"),
    (1, 3, 20, 21, 10, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "Relu", "conv2d_direct_c3"),
    (1, 1, 8, 8, 16, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "Relu", "conv2d_direct_c1"),
    (1, 4, 19, 40, 7, (5, 5), (2, 2), (2, 1, 0, 2), (1, 1), 1, False, None, "conv2d_direct_c4"),
    (1, 2, 9, 13, 5, (3, 1), (1, 2), (0, 0, 1, 0), (1, 1), 1, True, None, None),
    (1, 3, 64, 70, 32, (3, 3), (2, 2), (0, 0, 1, 1), (1, 1), 1, True, "Clip", "conv2d_direct_c3"),
]
_r = _rng(8090)
for _c in FEWC:
    conv_case("fewc_" + "x".join(map(str, _c[:5])) + f"_k{_c[5][0]}x{_c[5][1]}s{_c[6][0]}{_c[6][1]}_{_c[11]}",
              _r, *_c[:12], scaled=True, expect={"avx2": (_c[12], "_avx2")} if _c[12] else {})

# the NEON tile edges (test_kernels_neon): same layout
NEON = [
    # OC 15 = 8 + 7 = 6 + 6 + 3; 7 x 9 = 63 columns = 5 * 12 + 3 = 7 * 8 + 7
    (1, 9, 7, 9, 15, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "Clip", "conv2d_gemm"),
    # 1x1, OC 17 = 2 * 8 + 1, 6 x 5 = 30 columns = 2 * 12 + 6 (wide edge; the cost model
    # picks the direct 1x1 for few output channels, the GEMM still runs the case)
    (1, 16, 6, 5, 17, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, False, "Relu", "conv2d_1x1_fewoc"),
    # stride 2 with a right pad, OC 31 = 3 * 8 + 7; output 4 x 3 (one tile, 12 columns)
    (1, 4, 8, 6, 31, (3, 3), (2, 2), (1, 0, 1, 1), (1, 1), 1, True, None, "conv2d_gemm"),
    # K = 360: two K blocks of 180, so the N block (~272 columns) is smaller than the
    # 17 x 17 = 289 outputs: several N blocks, each packed from a row-crossing offset
    (1, 40, 17, 17, 9, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "Relu", "conv2d_gemm"),
]
NEON_TILES = {"arm64": ("8x12", "_neon64"), "armv7": ("6x8", "_neon")}


def neon_expect(prefix):
    """The expected kernel on the NEON targets (the AVX2 table says gemm6x16, and Winograd
    for 3x3 stride-1 layers: an AVX2 kernel, so NEON runs those through im2col); depthwise
    kernels are the shared 4-wide "_neon" ones on both targets."""
    if prefix is None:
        return {}
    if prefix.startswith("conv2d_1x1_fewoc"):  # the shared 4-wide NEON vocabulary
        return {platform: (prefix, "_neon") for platform in NEON_TILES}
    out = {}
    for platform, (tile, suffix) in NEON_TILES.items():
        pre = prefix.replace("conv2d_winograd_f43", "conv2d_gemm")
        pre = pre.replace("gemm6x16", "gemm").replace("gemm", "gemm" + tile, 1)
        out[platform] = (pre, "_neon" if prefix == "conv2d_depthwise"
                         or prefix.startswith("conv2d_direct_c") else suffix)
    return out


_r = _rng(4321)
# where the NEON levels' cost models pick another kernel than AVX2's (not measured on Arm
# hardware: the ratios of the x86-fitted models)
NEON_CHOICE = {(2, 350, 5, 7, 23): "conv2d_1x1_fewoc"}
for _c in ISA:
    _exp = {"avx2": (_c[12], "_avx2")} if _c[12] else {}
    _exp.update(neon_expect(NEON_CHOICE.get(_c[:5], _c[12])))
    conv_case("isa_" + "x".join(map(str, _c[:5])) + f"_k{_c[5][0]}s{_c[6][0]}g{_c[9]}_{_c[11]}",
              _r, *_c[:12], scaled=True, expect=_exp)
_r = _rng(99)
for _c in NEON:
    conv_case("neon_" + "x".join(map(str, _c[:5])) + f"_k{_c[5][0]}s{_c[6][0]}_{_c[11]}",
              _r, *_c[:12], expect=neon_expect(_c[12]))


# --------------------------------------------------- Winograd edges (test_kernels_winograd)
WINOGRAD = [
    # (N, C, H, W, OC, pads (t, l, b, r), bias, act): 3x3 stride 1, four epilogues
    (1, 3, 1, 1, 4, (1, 1, 1, 1), True, "Relu"),      # 1x1 output: one cut tile
    (1, 5, 2, 3, 7, (1, 1, 1, 1), False, None),       # 2x3
    (1, 4, 3, 3, 5, (0, 0, 0, 0), True, "Clip"),      # 1x1 output without padding
    (1, 6, 4, 5, 6, (1, 1, 1, 1), True, "Sigmoid"),   # 4x5: scalar activation pass
    (1, 7, 7, 7, 13, (0, 0, 0, 0), True, "Relu"),     # 5x5
    (1, 8, 6, 8, 11, (1, 0, 0, 1), True, "Relu"),     # asymmetric padding, 5x8
    (2, 10, 9, 9, 19, (1, 1, 1, 1), True, "Relu"),    # batch 2, 9x9
    (1, 9, 8, 9, 1, (1, 1, 1, 1), False, None),       # one output channel
    (1, 4, 9, 45, 5, (1, 1, 1, 1), True, "Clip"),     # 12 (F(4,3)) / 23 tiles per row
    (1, 3, 2, 37, 6, (1, 1, 1, 1), False, None),      # 2 output rows, 37 columns
    (1, 64, 20, 19, 64, (1, 1, 1, 1), True, "Relu"),  # several blocks of 16 tiles
    (1, 150, 18, 17, 100, (1, 1, 1, 1), True, "Relu"),  # 2 OC blocks x several tile blocks
    (1, 520, 5, 6, 100, (1, 1, 1, 1), True, "Relu"),   # 2 K blocks x 2 OC blocks: redone transform
]
_r = _rng(2024)
for _n, _c, _h, _w, _oc, _p, _b, _act in WINOGRAD:
    conv_case(f"wino_{_n}x{_c}x{_h}x{_w}x{_oc}_p{''.join(map(str, _p))}_{_act}", _r,
              _n, _c, _h, _w, _oc, (3, 3), (1, 1), _p, (1, 1), 1, _b, _act, scaled=True,
              clip=(-0.5, 0.75))


# ------------------------------------------------- NCHW44 variants (test_layout_nchw44)
# (N, C, H, W, OC, k(h,w), stride, pads, dilation, group, bias, act, kind, NEON variant);
# compiled with enable_nchw44 (the layout pass's own checks on these cases, relayouts and
# variant notes, stay in test_layout_nchw44.py::test_conv_kernels, which imports this list)
NCHW44 = [
    (1, 4, 5, 7, 8, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True, "Relu", "dense", "1x1 direct"),
    (2, 12, 6, 5, 4, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, False, None, "dense", "1x1 direct"),
    (1, 8, 9, 7, 12, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1, True, "Sigmoid", "dense",
     "generic direct"),
    (1, 12, 9, 11, 20, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "Clip", "dense",
     "3x3 s1 direct"),
    (1, 20, 7, 19, 4, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1, False, "LeakyRelu", "dense",
     "3x3 s1 direct"),
    (1, 4, 10, 9, 8, (3, 3), (1, 1), (0, 1, 2, 0), (1, 1), 1, True, None, "dense",
     "3x3 s1 direct"),
    (1, 8, 13, 21, 4, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, False, "Relu", "dense",
     "3x3 s2 direct"),
    (2, 4, 11, 10, 12, (3, 3), (2, 2), (0, 0, 1, 1), (1, 1), 1, True, "Sigmoid", "dense",
     "3x3 s2 direct"),
    (1, 4, 11, 17, 12, (5, 3), (2, 1), (2, 1, 2, 1), (2, 1), 1, True, "Clip", "dense",
     "generic direct"),
    (1, 8, 13, 19, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 8, True, "Clip", "depthwise",
     "channel-wise 3x3 s1 direct"),
    (2, 12, 14, 17, 12, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 12, False, "Relu", "depthwise",
     "channel-wise 3x3 s2 direct"),
    (1, 4, 12, 23, 4, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 4, True, None, "depthwise",
     "channel-wise 5x5 s1 direct"),
    (1, 20, 15, 21, 20, (5, 5), (2, 2), (2, 2, 2, 2), (1, 1), 20, True, "Sigmoid", "depthwise",
     "channel-wise 5x5 s2 direct"),
    (1, 4, 9, 10, 4, (3, 3), (1, 1), (0, 1, 2, 0), (2, 1), 4, True, "LeakyRelu", "depthwise",
     "channel-wise generic direct"),
    (1, 3, 19, 21, 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, True, "Relu", "hybrid",
     "hybrid NCHW->NCHW44 direct"),
    (1, 1, 9, 10, 4, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1, False, None, "hybrid",
     "hybrid NCHW->NCHW44 direct"),
]


def nchw44_case_id(c):
    return f"{c[12]}_{c[1]}to{c[4]}_{c[2]}x{c[3]}_k{c[5][0]}x{c[5][1]}s{c[6][0]}_{c[11]}"


_r = _rng(44)
for _c in NCHW44:
    conv_case("nchw44_" + nchw44_case_id(_c), _r, *_c[:12], nchw44=True)


# ------------------------------------- float16 weights (enable_compress_fp16, fp16 tests)
# Every NCHW conv implementation reading widened float16 weights: the portable depthwise,
# im2col and 1x1 paths (filters widened 16 output channels at a time: OC 37 = 16 + 16 + 5),
# the packed GEMM (panels widened per K block: row tails of every micro-tile, K over the
# 320 block, several N blocks, groups), the vector depthwise (stride 1 and 2). Winograd
# transforms float32 weights only: its 3x3 stride-1 shape goes to the packed GEMM. Weights
# have >= 32 elements (smaller ones stay float32: passes/compress_fp16.py).
FP16 = [
    # (N, C, H, W, OC, k, stride, pads, dilation, group, bias, act, AVX2 pick)
    (1, 6, 10, 10, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 6, True, "Relu", "conv2d_depthwise"),
    (2, 8, 14, 17, 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 8, False, None, "conv2d_depthwise"),
    (1, 4, 15, 21, 4, (5, 5), (2, 2), (2, 2, 2, 2), (1, 1), 4, True, "Clip", "conv2d_depthwise"),
    (1, 5, 9, 11, 37, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, True, "Relu", "conv2d_gemm6x16_w16"),
    (1, 40, 17, 17, 9, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "Relu", "conv2d_gemm6x16_w16"),
    (2, 350, 5, 7, 23, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True, None,
     "conv2d_1x1_gemm6x16_w16"),
    (1, 16, 13, 13, 38, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True, "Clip",
     "conv2d_1x1_gemm6x16_w16"),
    (1, 12, 8, 9, 18, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 3, True, "Relu",
     "conv2d_1x1_gemm6x16_w16"),
    (1, 6, 6, 6, 9, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 3, True, None, "conv2d_gemm6x16_w16"),
    (1, 3, 37, 35, 8, (7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1, True, "Sigmoid",
     "conv2d_gemm6x16_w16"),
    # Winograd's shape (test_kernels_winograd's F(4,3) case): the packed GEMM instead
    (1, 37, 19, 21, 13, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "Clip",
     "conv2d_gemm6x16_w16"),
]
_r = _rng(1616)
for _c in FP16:
    conv_case("fp16_" + "x".join(map(str, _c[:5])) + f"_k{_c[5][0]}s{_c[6][0]}g{_c[9]}_{_c[11]}",
              _r, *_c[:12], scaled=True, fp16=True, expect={"avx2": (_c[12], "_avx2")})


# ------------------------------------------ fused per-channel PReLU (passes/fuse.py)
# PRelu(conv, slope) with a constant (1, OC, 1, 1)/(OC, 1, 1) or scalar slope runs in the
# conv's epilogue: every NCHW implementation (portable direct/im2col/1x1, packed GEMM 3x3
# and 1x1 with row tails, grouped, the vector depthwise stride 1/2, Winograd, float16
# weights, after a bias and a fused residual) and the NCHW44 ones (dense, channel-wise,
# hybrid). onnxruntime computes the unfused graph; test_fuse_prelu.py checks that no PRelu
# instruction is left.
PRELU = [
    # (N, C, H, W, OC, k, stride, pads, dilation, group, bias, slope shape, nchw44, fp16)
    (1, 3, 11, 13, 16, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, True, "c11", False, False),
    (1, 16, 9, 11, 29, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True, "1c11", False, False),
    (1, 12, 8, 9, 18, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 3, False, "c11", False, False),
    (1, 24, 17, 19, 13, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "c11", False, False),
    (1, 64, 20, 19, 64, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "1c11", False, False),
    (1, 10, 14, 17, 10, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 10, True, "c11", False, False),
    (2, 8, 13, 21, 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 8, False, "c11", False, False),
    (1, 7, 9, 10, 11, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "scalar", False, False),
    (1, 5, 9, 11, 37, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, True, "c11", False, True),
    (1, 6, 10, 10, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 6, True, "c11", False, True),
    (1, 8, 9, 7, 12, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True, "c11", True, False),
    (1, 12, 9, 11, 20, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, False, "1c11", True, False),
    (2, 12, 14, 17, 12, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 12, True, "c11", True, False),
    (1, 3, 19, 21, 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, True, "c11", True, False),
    # a small map: the channels-in-lanes depthwise (depthwise_chblock_simd_f32)
    (1, 11, 4, 4, 11, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 11, True, "c11", False, False),
]


def prelu_case(id_, rng, n, c, h, w, oc, k, s, p, d, g, bias, slope_shape, nchw44, fp16,
               residual=False):
    x = rng.standard_normal((n, c, h, w)).astype(F32)
    wt = (rng.standard_normal((oc, c // g, *k)) / np.sqrt(c // g * k[0] * k[1])).astype(F32)
    if fp16:
        wt = wt.astype(np.float16).astype(F32)
    inputs = [x, Const(wt)] + ([Const(rng.standard_normal(oc).astype(F32))] if bias else [])
    shape = {"c11": (oc, 1, 1), "1c11": (1, oc, 1, 1), "scalar": (1,)}[slope_shape]
    slope = rng.uniform(-0.5, 0.5, shape).astype(F32)  # negative slopes too
    post = ((("Add", [rng.standard_normal((n, oc, h, w)).astype(F32)], {}),) if residual
            else ()) + (("PRelu", [Const(slope)], {}),)
    attrs = dict(kernel_shape=list(k), strides=list(s), pads=list(p), dilations=list(d), group=g)
    BOOK.add(id_, "Conv", inputs, attrs, opset=13, post=post, nchw44=nchw44,
             compress_fp16=fp16)


_r = _rng(7007)
for _c in PRELU:
    prelu_case("prelu_" + "x".join(map(str, _c[:5])) + f"_k{_c[5][0]}s{_c[6][0]}g{_c[9]}"
               f"_{_c[11]}{'_nchw44' if _c[12] else ''}{'_fp16' if _c[13] else ''}", _r, *_c)
# a fused residual, then the PReLU: y = prelu(conv + bias + r)
prelu_case("prelu_residual_1x16x9x9x16_k3", _r, 1, 16, 9, 9, 16, (3, 3), (1, 1), (1, 1, 1, 1),
           (1, 1), 1, True, "c11", False, False, residual=True)


_rand_nn = uniform_source(5)


rand, case = _rand_nn, BOOK.add
# --- ConvTranspose ------------------------------------------------------------------------
# (name, x shape, w shape, attrs)
DECONV = [
    ("k3_s1_p1", (1, 3, 5, 5), (3, 4, 3, 3), {"pads": [1, 1, 1, 1]}),
    ("k3_s2_p1_op1", (2, 3, 4, 5), (3, 2, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1],
                                                  "output_padding": [1, 1]}),
    ("k4_s2_p1", (1, 4, 3, 3), (4, 3, 4, 4), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("k2_s2", (1, 5, 7, 3), (5, 2, 2, 2), {"strides": [2, 2]}),
    ("k1", (2, 3, 3, 4), (3, 5, 1, 1), {}),
    ("groups2", (1, 4, 5, 3), (4, 3, 3, 3), {"group": 2, "strides": [2, 1],
                                             "pads": [0, 1, 1, 0]}),
    ("depthwise", (1, 3, 4, 4), (3, 1, 3, 3), {"group": 3, "strides": [2, 2]}),
    ("dilated", (1, 2, 4, 5), (2, 3, 3, 2), {"dilations": [2, 3], "pads": [1, 0, 2, 1]}),
    ("asym_stride", (1, 2, 3, 4), (2, 2, 3, 5), {"strides": [3, 2], "pads": [1, 2, 0, 1],
                                                 "output_padding": [2, 1]}),
    ("output_shape", (1, 2, 3, 3), (2, 3, 3, 3), {"strides": [2, 2],
                                                  "output_shape": [6, 7]}),
    ("same_upper", (1, 2, 3, 4), (2, 2, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ("same_lower", (1, 2, 3, 4), (2, 2, 4, 3), {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    ("valid", (1, 2, 3, 4), (2, 2, 3, 3), {"strides": [2, 1], "auto_pad": "VALID"}),
    ("1d", (2, 3, 7), (3, 4, 3), {"strides": [2], "pads": [1, 0]}),
    ("1d_groups", (1, 4, 5), (4, 1, 4), {"group": 2, "output_padding": [1],
                                         "strides": [3]}),
]
for name, xs, ws, attrs in DECONV:
    group = attrs.get("group", 1)
    bias = Const(rand(ws[1] * group))
    for opset in (11, 17):
        ins = [rand(*xs), Const(rand(*ws))] + ([bias] if opset == 17 else [])
        case(f"conv_transpose_{name}_v{opset}", "ConvTranspose", ins, attrs, opset=opset)
case("conv_transpose_runtime_weights", "ConvTranspose", [rand(1, 2, 3, 3), rand(2, 3, 3, 3)],
     {"strides": [2, 2]}, opset=17)


# --- 3-D convolution (portable direct), onnxruntime as the oracle: groups, strides,
# dilations, asymmetric padding, no bias, fused activations, residual add
_r = _rng(3333)
for _id, (_n, _c, _d, _h, _w, _oc, _k, _s, _p, _dl, _g, _b, _act) in {
        "basic": (1, 2, 4, 5, 6, 3, (3, 3, 3), (1, 1, 1), (1, 1, 1, 1, 1, 1), (1, 1, 1), 1, True, None),
        "strided_padded": (2, 3, 7, 6, 5, 4, (3, 2, 3), (2, 1, 2), (1, 0, 2, 0, 1, 1), (1, 1, 1), 1, False, None),
        "dilated": (1, 2, 7, 7, 7, 2, (2, 3, 2), (1, 2, 1), (0, 1, 0, 1, 2, 1), (2, 1, 3), 1, True, None),
        "groups": (1, 4, 3, 4, 5, 6, (1, 3, 3), (1, 1, 1), (0, 1, 1, 0, 1, 1), (1, 1, 1), 2, True, "Relu"),
        "depthwise": (1, 3, 4, 4, 4, 3, (3, 3, 3), (1, 1, 1), (1, 1, 1, 1, 1, 1), (1, 1, 1), 3, True, "Sigmoid"),
        "pointwise_clip": (1, 5, 2, 3, 4, 7, (1, 1, 1), (1, 1, 1), (0,) * 6, (1, 1, 1), 1, True, "Clip"),
}.items():
    _inputs = [_r.standard_normal((_n, _c, _d, _h, _w)).astype(F32),
               Const(_r.standard_normal((_oc, _c // _g, *_k)).astype(F32))]
    if _b:
        _inputs.append(Const(_r.standard_normal(_oc).astype(F32)))
    BOOK.add(f"conv3d_{_id}", "Conv", _inputs,
             dict(kernel_shape=list(_k), strides=list(_s), pads=list(_p), dilations=list(_dl),
                  group=_g), opset=13, post=act_post(_act))
_x3 = _r.standard_normal((1, 3, 3, 4, 4)).astype(F32)
BOOK.add("conv3d_residual_add", "Conv",
         [_x3, Const(_r.standard_normal((3, 3, 3, 3, 3)).astype(F32))],
         dict(pads=[1] * 6), opset=13, post=(("Add", [_r.standard_normal((1, 3, 3, 4, 4)).astype(F32)], {}),))


# --- DeformConv (opset 19), onnx's reference as the oracle: offsets of a few pixels (taps
# fall outside the map and between pixels), strides, dilations, padding, groups, offset
# groups, masks, bias
def _deform(id_, n, c, h, w, oc, k, s, p, d, g, og, bias, mask, spread=2.0):
    oh = (h + p[0] + p[2] - (d[0] * (k[0] - 1) + 1)) // s[0] + 1
    ow = (w + p[1] + p[3] - (d[1] * (k[1] - 1) + 1)) // s[1] + 1
    ins = [_r.standard_normal((n, c, h, w)).astype(F32),
           Const(_r.standard_normal((oc, c // g, *k)).astype(F32)),
           (_r.uniform(-spread, spread, (n, og * 2 * k[0] * k[1], oh, ow))).astype(F32)]
    ins.append(Const(_r.standard_normal(oc).astype(F32)) if bias else None)
    if mask:
        ins.append(_r.uniform(0, 1, (n, og * k[0] * k[1], oh, ow)).astype(F32))
    BOOK.add(f"deform_{id_}", "DeformConv", ins,
             dict(kernel_shape=list(k), strides=list(s), pads=list(p), dilations=list(d),
                  group=g, offset_group=og), opset=19, ref="onnx")


_r = _rng(1919)
_deform("basic", 1, 2, 5, 6, 3, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1, 1, False, False)
_deform("padded_strided", 2, 2, 7, 6, 2, (3, 2), (2, 1), (1, 0, 1, 1), (1, 1), 1, 1, True,
        False)
_deform("dilated_masked", 1, 3, 8, 8, 2, (2, 2), (1, 1), (1, 1, 1, 1), (2, 3), 1, 3, True,
        True, spread=4.0)
_deform("groups", 1, 4, 5, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2, 2, False, True)


# ------------------------------------ float16 (enable_ioc16 on arm64-fp16), NumPy float16
# arithmetic in the kernels' order as the reference (bit-exact): packed GEMM tile edges
# (OC % 8, positions % 16), im2col geometries, groups, the depthwise kernel, fused
# ReLU / ReLU6 / residual
def conv_f16_case(id_, rng, n, c, h, w, oc, k, s, p, d, g, bias, act=None, residual=False):
    from kernels.f16_reference import conv_f16

    x = rng.standard_normal((n, c, h, w)).astype(F32)
    wt = (rng.standard_normal((oc, c // g, *k)) / np.sqrt(c // g * k[0] * k[1])).astype(F32)
    inputs = [x, Const(wt)]
    if bias:
        inputs.append(Const(rng.standard_normal(oc).astype(F32)))
    attrs = dict(kernel_shape=list(k), strides=list(s), pads=list(p), dilations=list(d), group=g)
    oh = (h + p[0] + p[2] - (k[0] - 1) * d[0] - 1) // s[0] + 1
    ow = (w + p[1] + p[3] - (k[1] - 1) * d[1] - 1) // s[1] + 1
    post = []
    res = None
    if residual:
        res = rng.standard_normal((n, oc, oh, ow)).astype(F32)
        post.append(("Add", [res], {}))
    if act == "relu":
        post.append(("Relu", [], {}))
    elif act == "clip":
        post.append(("Clip", [Const(np.array(0, F32)), Const(np.array(6, F32))], {}))
    elif act == "hswish":
        post.append(("HardSwish", [], {}))

    def ref(x, w, b=None, *_):
        return conv_f16(x, w, b, s, p, d, g, act, (0.0, 6.0), res)
    BOOK.add(id_, "Conv", inputs, attrs, opset=14, ref=ref, post=tuple(post), ioc16=True,
             exact=True)


_f16 = _rng(1616)
conv_f16_case("f16_1x1_edges", _f16, 1, 19, 7, 9, 21, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True)
conv_f16_case("f16_1x1_relu_batch2", _f16, 2, 32, 4, 8, 16, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True, "relu")
conv_f16_case("f16_1x1_nobias_residual_relu", _f16, 1, 24, 5, 5, 13, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, False, "relu", True)
conv_f16_case("f16_3x3_s1_relu6", _f16, 1, 8, 11, 13, 12, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "clip")
conv_f16_case("f16_3x3_s2", _f16, 1, 5, 12, 15, 9, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, True)
conv_f16_case("f16_7x7_s2_p3_relu", _f16, 1, 3, 20, 18, 10, (7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1, True, "relu")
conv_f16_case("f16_3x3_group2_dilated", _f16, 1, 6, 9, 9, 10, (3, 3), (1, 1), (2, 1, 2, 1), (2, 1), 2, True)
conv_f16_case("f16_3x3_s1_residual", _f16, 1, 16, 6, 6, 16, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, None, True)
conv_f16_case("f16_dw3x3_s1_relu6", _f16, 1, 12, 10, 19, 12, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 12, True, "clip")
conv_f16_case("f16_dw3x3_s2_relu", _f16, 2, 8, 13, 17, 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 8, True, "relu")
conv_f16_case("f16_dw5x5_s1_nobias", _f16, 1, 4, 9, 21, 4, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 4, False)
conv_f16_case("f16_3x3_s1_hswish", _f16, 1, 16, 8, 8, 32, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "hswish")
conv_f16_case("f16_dw3x3_s2_hswish", _f16, 1, 8, 9, 21, 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 8, True, "hswish")
conv_f16_case("f16_dw3x3_s1_residual", _f16, 1, 6, 8, 16, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 6, True, None, True)
# the direct 3x3 kernel's edges: rows longer than its 16-position tile (and tails), OC % 4,
# batches, asymmetric padding
conv_f16_case("f16_3x3_s1_wide_batch2_residual_relu", _f16, 2, 5, 6, 37, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, "relu", True)
conv_f16_case("f16_3x3_s2_wide_asym", _f16, 1, 4, 9, 40, 7, (3, 3), (2, 2), (0, 1, 1, 0), (1, 1), 1, False, "clip")


# ------------------------------- float16 NCHW88 (enable_ioc16 + enable_nchw88 on arm64-fp16)
# ConvNCHW88 against NumPy float16 arithmetic in the kernel's order (bit-exact): dense 1x1 /
# 3x3 / 5x5 / 7x7 at stride 1 and 2, channel counts not multiple of 8 (padded blocks), the
# hybrid first conv (NCHW input, IC < 8), depthwise, pixel tails (OW % 8), fused bias,
# residual, ReLU / ReLU6 / HardSwish
def conv_f16_nchw88_case(id_, rng, n, c, h, w, oc, k, s, p, g, bias, act=None, residual=False,
                         d=(1, 1)):
    from kernels.f16_nchw88_reference import conv_f16_nchw88

    x = rng.standard_normal((n, c, h, w)).astype(F32)
    wt = (rng.standard_normal((oc, c // g, *k)) / np.sqrt(c // g * k[0] * k[1])).astype(F32)
    inputs = [x, Const(wt)]
    if bias:
        inputs.append(Const(rng.standard_normal(oc).astype(F32)))
    attrs = dict(kernel_shape=list(k), strides=list(s), pads=list(p), group=g, dilations=list(d))
    oh = (h + p[0] + p[2] - (k[0] - 1) * d[0] - 1) // s[0] + 1
    ow = (w + p[1] + p[3] - (k[1] - 1) * d[1] - 1) // s[1] + 1
    post, res = [], None
    if residual:
        res = rng.standard_normal((n, oc, oh, ow)).astype(F32)
        post.append(("Add", [res], {}))
    post += {"relu": [("Relu", [], {})], "hswish": [("HardSwish", [], {})],
             "clip": [("Clip", [Const(np.array(0, F32)), Const(np.array(6, F32))], {})]}.get(act, [])

    def ref(x, w, b=None, *_):
        return conv_f16_nchw88(x, w, b, s, p, d, g, act, (0.0, 6.0), res)
    BOOK.add(id_, "Conv", inputs, attrs, opset=14, ref=ref, post=tuple(post), ioc16=True,
             nchw88=True, exact=True)


_n88 = _rng(8888)
conv_f16_nchw88_case("n88_1x1_relu", _n88, 1, 16, 5, 7, 24, (1, 1), (1, 1), (0, 0, 0, 0), 1, True, "relu")
conv_f16_nchw88_case("n88_1x1_pad_channels_residual", _n88, 2, 12, 3, 5, 20, (1, 1), (1, 1), (0, 0, 0, 0), 1, False, None, True)
conv_f16_nchw88_case("n88_1x1_s2", _n88, 1, 8, 9, 10, 8, (1, 1), (2, 2), (0, 0, 0, 0), 1, True)
conv_f16_nchw88_case("n88_3x3_s1_relu6", _n88, 1, 16, 9, 19, 16, (3, 3), (1, 1), (1, 1, 1, 1), 1, True, "clip")
conv_f16_nchw88_case("n88_3x3_s2_residual_relu", _n88, 1, 8, 12, 15, 16, (3, 3), (2, 2), (1, 1, 1, 1), 1, True, "relu", True)
conv_f16_nchw88_case("n88_3x3_s1_pad_channels_hswish", _n88, 1, 12, 7, 11, 10, (3, 3), (1, 1), (1, 0, 1, 2), 1, True, "hswish")
conv_f16_nchw88_case("n88_5x5_s1", _n88, 1, 8, 11, 12, 8, (5, 5), (1, 1), (2, 2, 2, 2), 1, True)
conv_f16_nchw88_case("n88_5x5_s2_relu", _n88, 1, 16, 13, 14, 8, (5, 5), (2, 2), (2, 2, 2, 2), 1, False, "relu")
conv_f16_nchw88_case("n88_7x7_s1", _n88, 1, 8, 10, 10, 8, (7, 7), (1, 1), (3, 3, 3, 3), 1, True)
conv_f16_nchw88_case("n88_7x7_s2_relu", _n88, 1, 8, 16, 17, 16, (7, 7), (2, 2), (3, 3, 3, 3), 1, True, "relu")
conv_f16_nchw88_case("n88_hybrid_3x3_s2_relu", _n88, 1, 3, 16, 21, 16, (3, 3), (2, 2), (1, 1, 1, 1), 1, True, "relu")
conv_f16_nchw88_case("n88_hybrid_7x7_s2_pad_oc", _n88, 2, 3, 14, 14, 12, (7, 7), (2, 2), (3, 3, 3, 3), 1, True)
conv_f16_nchw88_case("n88_dw3x3_s1_relu6", _n88, 1, 16, 9, 13, 16, (3, 3), (1, 1), (1, 1, 1, 1), 16, True, "clip")
conv_f16_nchw88_case("n88_dw3x3_s2_relu", _n88, 1, 8, 11, 17, 8, (3, 3), (2, 2), (1, 1, 1, 1), 8, True, "relu")
conv_f16_nchw88_case("n88_dw5x5_s1_pad_channels", _n88, 1, 12, 9, 10, 12, (5, 5), (1, 1), (2, 2, 2, 2), 12, True)
conv_f16_nchw88_case("n88_dw3x3_s1_residual_hswish", _n88, 1, 8, 6, 9, 8, (3, 3), (1, 1), (1, 1, 1, 1), 8, True, "hswish", True)
conv_f16_nchw88_case("n88_3x3_d2_asym_stride", _n88, 1, 16, 12, 17, 8, (3, 3), (1, 2), (2, 1, 2, 0), 1, True, "relu", d=(2, 2))
conv_f16_nchw88_case("n88_dw3x3_d2_batch2", _n88, 2, 8, 9, 11, 8, (3, 3), (1, 1), (2, 2, 2, 2), 8, False, d=(2, 2))
conv_f16_nchw88_case("n88_grouped2_3x3_relu", _n88, 1, 16, 7, 10, 16, (3, 3), (1, 1), (1, 1, 1, 1), 2, True, "relu")
conv_f16_nchw88_case("n88_grouped3_1x1_residual", _n88, 1, 24, 5, 9, 48, (1, 1), (1, 1), (0, 0, 0, 0), 3, True, None, True)
