"""NN-layer kernels against onnxruntime: BatchNormalization, InstanceNormalization,
LayerNormalization, LRN, PRelu, ConvTranspose (1-D/2-D, groups, strides, dilations, pads,
output_padding, output_shape, auto_pad) and Resize/Upsample (every opset form, nearest with
every nearest_mode, linear with every coordinate_transformation_mode).

The cases of one (op, opset) group compile into one model (one gcc build); each case is
still its own test. Floats: |ours - ref| / max(1, |ref|) <= 1e-4.
"""
from __future__ import annotations

import numpy as np
import pytest

from batched_cases import Case, CaseBook, Const, build_model
from megcc_builder.host import run_onnx
from megcc_builder.ir import CompileError

RNG = np.random.default_rng(5)


def rand(*shape, dtype=np.float32, low=-3.0, high=3.0):
    if np.dtype(dtype).kind == "f":
        return np.asarray(RNG.uniform(low, high, shape)).astype(dtype)
    return RNG.integers(int(low), int(high) + 1, shape).astype(dtype)


BOOK = CaseBook(exact=False)
CASES = BOOK.cases
case = BOOK.add



# --- normalisations -----------------------------------------------------------------------
for opset in (9, 15):
    for shape in [(2, 3, 4, 5), (3, 4), (1, 7, 3)]:
        c = shape[1]
        stats = [Const(rand(c)), Const(rand(c)), Const(rand(c)), Const(rand(c, low=0.1, high=2))]
        case(f"batchnorm_v{opset}_{shape}", "BatchNormalization", [rand(*shape)] + stats,
             {"epsilon": 1e-3}, opset=opset)
case("batchnorm_runtime_stats", "BatchNormalization",
     [rand(2, 3, 5), rand(3), rand(3), rand(3), rand(3, low=0.1, high=2)], opset=15)

for shape in [(2, 3, 5, 4), (1, 4, 7), (3, 1, 1, 9)]:
    case(f"instancenorm_{shape}", "InstanceNormalization",
         [rand(*shape, low=-5, high=9), Const(rand(shape[1])), Const(rand(shape[1]))],
         {"epsilon": 1e-4})

for axis, shape in [(-1, (2, 3, 7)), (1, (2, 3, 7)), (0, (3, 5)), (-2, (1, 4, 3, 2)),
                    (2, (2, 1, 7, 5))]:
    norm = shape[axis:]
    x = rand(*shape, low=-4, high=7)
    case(f"layernorm_axis{axis}_{shape}", "LayerNormalization",
         [x, Const(rand(*norm)), Const(rand(*norm))], {"axis": axis, "epsilon": 1e-3})
    case(f"layernorm_axis{axis}_nobias", "LayerNormalization", [x, Const(rand(*norm))],
         {"axis": axis})
case("layernorm_stats_outputs", "LayerNormalization",
     [rand(3, 7), Const(rand(7)), Const(rand(7))], {}, n_out=3)
case("layernorm_runtime_scale", "LayerNormalization", [rand(3, 7), rand(7), rand(7)], {})



def lrn_ref(size, alpha=1e-4, beta=0.75, bias=1.0):
    """ONNX LRN: window [c - floor((size-1)/2), c + ceil((size-1)/2)] over channels."""
    def ref(x):
        sq = np.zeros(x.shape, np.float64)
        for c in range(x.shape[1]):
            lo, hi = max(0, c - (size - 1) // 2), min(x.shape[1] - 1, c + size // 2)
            sq[:, c] = (x[:, lo:hi + 1].astype(np.float64) ** 2).sum(axis=1)
        return [(x / (bias + alpha / size * sq) ** beta).astype(np.float32)]
    return ref


for size in (1, 2, 3, 4, 5):  # onnxruntime only implements odd sizes
    case(f"lrn_size{size}", "LRN", [rand(2, 7, 3, 4)],
         {"size": size, "alpha": 0.02, "beta": 0.6, "bias": 1.5}, opset=13,
         ref=lrn_ref(size, 0.02, 0.6, 1.5))
case("lrn_3d", "LRN", [rand(1, 3, 5)], {"size": 3}, opset=13, ref=lrn_ref(3))
case("lrn_defaults_ort", "LRN", [rand(1, 3, 5, 2)], {"size": 3}, opset=13)
case("lrn_size5_ort", "LRN", [rand(2, 7, 3, 4)], {"size": 5, "alpha": 0.1, "beta": 0.5},
     opset=13)

for name, x, slope in [("per_channel", rand(2, 3, 4, 5), rand(3, 1, 1)),
                       ("scalar", rand(2, 3, 4), rand(1)),
                       ("last_axis", rand(3, 7), rand(7)),
                       ("full", rand(2, 5), rand(2, 5))]:
    case(f"prelu_{name}", "PRelu", [x, Const(slope)], opset=16)
case("prelu_runtime_slope", "PRelu", [rand(2, 3, 2), rand(3, 1)], opset=16)

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

# --- Resize / Upsample --------------------------------------------------------------------
COORD_MODES = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
               "tf_half_pixel_for_nn"]
NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
EMPTY = Const(np.zeros(0, np.float32))


def scales(*s):
    return Const(np.array(s, np.float32))


def sizes(*s):
    return Const(np.array(s, np.int64))


X_UP, X_DOWN = rand(2, 3, 4, 5), rand(1, 2, 7, 9)
for opset in (11, 13):
    roi = EMPTY if opset == 11 else None
    for coord in COORD_MODES:
        for nm in NEAREST_MODES:
            case(f"resize_nearest_{coord}_{nm}_v{opset}", "Resize",
                 [X_UP, roi, scales(1, 1, 2.5, 1.5)],
                 {"mode": "nearest", "coordinate_transformation_mode": coord,
                  "nearest_mode": nm}, opset=opset)
            case(f"resize_nearest_down_{coord}_{nm}_v{opset}", "Resize",
                 [X_DOWN, roi, EMPTY, sizes(1, 2, 3, 5)],
                 {"mode": "nearest", "coordinate_transformation_mode": coord,
                  "nearest_mode": nm}, opset=opset)
        if coord == "tf_half_pixel_for_nn":
            continue  # defined for nearest only
        case(f"resize_linear_{coord}_v{opset}", "Resize", [X_UP, roi, scales(1, 1, 2.0, 1.7)],
             {"mode": "linear", "coordinate_transformation_mode": coord}, opset=opset)
        case(f"resize_linear_down_{coord}_v{opset}", "Resize",
             [X_DOWN, roi, EMPTY, sizes(1, 2, 4, 1)],
             {"mode": "linear", "coordinate_transformation_mode": coord}, opset=opset)
    for mode in ("nearest", "linear"):
        case(f"resize_{mode}_tf_crop_and_resize_v{opset}", "Resize",
             [X_DOWN, Const(np.array([0, 0, 0.2, -0.1, 1, 1, 0.9, 1.3], np.float32)), EMPTY,
              sizes(1, 2, 5, 6)],
             {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize",
              "extrapolation_value": -7.0}, opset=opset)
    case(f"resize_nearest_int8_v{opset}", "Resize",
         [rand(1, 2, 3, 3, dtype=np.int8, low=-100, high=100), roi, scales(1, 1, 2, 3)],
         {"mode": "nearest"}, opset=opset)
case("resize_defaults_v13", "Resize", [X_UP, None, scales(1, 1, 0.6, 2.2)], opset=13)
case("resize_v10_nearest", "Resize", [X_UP, scales(1, 1, 2.0, 3.0)], {"mode": "nearest"},
     opset=10)
case("resize_v10_nearest_down", "Resize", [X_DOWN, scales(1, 1, 0.5, 0.7)],
     {"mode": "nearest"}, opset=10)
case("resize_v10_linear", "Resize", [X_UP, scales(1, 1, 1.5, 2.0)], {"mode": "linear"},
     opset=10)


def half_pixel_ref(out_hw, scale_hw, mode):
    """NumPy Resize over H and W, half_pixel coordinates with the given scales (for the
    opset-18 'axes' forms, which onnxruntime 1.23 and the onnx reference both reject)."""
    def axis_weights(n_in, n_out, scale):
        c = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) / np.float32(scale) - 0.5
        w = np.zeros((n_out, n_in), np.float64)
        if mode == "nearest":  # round_prefer_floor, clamped
            i = np.where(c == np.floor(c) + 0.5, np.floor(c), np.floor(c + 0.5))
            w[np.arange(n_out), np.clip(i, 0, n_in - 1).astype(int)] = 1
            return w
        c = np.clip(c, 0, n_in - 1)
        i0 = np.floor(c).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        np.add.at(w, (np.arange(n_out), i0), 1 - (c - i0))
        np.add.at(w, (np.arange(n_out), i1), c - i0)
        return w

    def ref(x, *_):
        wy = axis_weights(x.shape[2], out_hw[0], scale_hw[0])
        wx = axis_weights(x.shape[3], out_hw[1], scale_hw[1])
        return [np.einsum("yh,nchw,xw->ncyx", wy, x.astype(np.float64), wx).astype(np.float32)]
    return ref


# X_DOWN is 7x9: not_larger to 5x5 scales both by 5/9 -> 4x5; not_smaller to 4x4 by 4/7 -> 4x5
case("resize_v18_axes_not_larger", "Resize", [X_DOWN, None, None, sizes(5, 5)],
     {"mode": "linear", "axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"}, opset=18,
     ref=half_pixel_ref((4, 5), (np.float32(5) / np.float32(9),) * 2, "linear"))
case("resize_v18_axes_not_smaller", "Resize", [X_DOWN, None, None, sizes(4, 4)],
     {"mode": "nearest", "axes": [-2, -1], "keep_aspect_ratio_policy": "not_smaller"},
     opset=18, ref=half_pixel_ref((4, 5), (np.float32(4) / np.float32(7),) * 2, "nearest"))
case("resize_v18_scales_axes", "Resize", [X_UP, None, scales(1.5)],
     {"mode": "linear", "axes": [3]}, opset=18, ref=half_pixel_ref((4, 7), (1.0, 1.5), "linear"))
case("resize_v19_half_pixel_symmetric", "Resize", [X_DOWN, None, scales(1, 1, 0.6, 1.7)],
     {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"}, opset=19)
case("resize_v19_half_pixel_symmetric_nn", "Resize", [X_UP, None, scales(1, 1, 1.6, 2.5)],
     {"mode": "nearest", "coordinate_transformation_mode": "half_pixel_symmetric"}, opset=19)
case("upsample_v9_nearest", "Upsample", [X_UP, scales(1, 1, 2, 3)], {"mode": "nearest"},
     opset=9)
case("upsample_v9_linear", "Upsample", [X_UP, scales(1, 1, 2, 1.5)], {"mode": "linear"},
     opset=9)
case("upsample_v7_attr", "Upsample", [X_UP], {"mode": "nearest", "scales": [1.0, 1.0, 3.0, 2.0]},
     opset=7)
case("upsample_v7_linear", "Upsample", [X_UP], {"mode": "linear", "scales": [1.0, 1.0, 2.0, 2.0]},
     opset=7)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_nn(case):
    BOOK.check(case)


def test_cubic_resize_is_refused_clearly():
    x = rand(1, 1, 3, 3)
    model = build_model([Case("cubic", "Resize", [x, None, scales(1, 1, 2, 2)],
                              {"mode": "cubic"}, opset=13)])
    with pytest.raises(CompileError, match="cubic interpolation is not supported"):
        run_onnx(model, {"c0_in0": x})


def test_batchnorm_training_mode_is_refused():
    x = rand(2, 3, 4)
    stats = [Const(np.ones(3, np.float32)) for _ in range(4)]
    model = build_model([Case("bn", "BatchNormalization", [x] + stats,
                              {"training_mode": 1}, opset=15, n_out=3)])
    with pytest.raises(CompileError, match="training mode"):
        run_onnx(model, {"c0_in0": x})
