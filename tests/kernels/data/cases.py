"""Data-movement cases against onnxruntime: Concat, Split, Slice, Transpose, Pad, Gather,
Cast, Expand, Tile, DepthToSpace, SpaceToDepth (exact), views (Reshape, Flatten, Squeeze,
Unsqueeze, Identity: exact) and Resize/Upsample (every opset form, nearest with every
nearest_mode, linear with every coordinate_transformation_mode: within 1e-4).

Moved here from test_kernels_data.py and test_kernels_nn.py (Resize/Upsample); the view
cases are new.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
from onnx import TensorProto
import onnx
from onnx import helper

from kernels.harness import Book, Const, uniform_source

RNG = np.random.default_rng(7)


def rand(*shape, dtype=np.float32):
    if np.dtype(dtype).kind == "f":
        return np.asarray(RNG.standard_normal(shape)).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return RNG.random(shape) < 0.5
    info = np.iinfo(dtype)
    return RNG.integers(max(info.min, -100), min(info.max, 100), shape).astype(dtype)


BOOK = Book("data", exact=True)
case = BOOK.add


for perm in ([1, 0], [0, 2, 1], [2, 0, 1], [1, 2, 0], [0, 3, 1, 2], [3, 1, 0, 2], None):
    rank = len(perm) if perm else 3
    shape = (3, 1, 7, 2)[:rank] if rank != 2 else (7, 3)
    attrs = {"perm": perm} if perm else {}
    case(f"transpose_{perm}", "Transpose", [rand(*shape)], attrs)
case("transpose_int8_4d", "Transpose", [rand(2, 3, 4, 5, dtype=np.int8)], {"perm": [0, 2, 3, 1]})
case("transpose_int64", "Transpose", [rand(3, 7, dtype=np.int64)], {"perm": [1, 0]})
case("transpose_f16", "Transpose", [rand(3, 7, 2, dtype=np.float16)], {"perm": [2, 0, 1]})
case("transpose_bool_6d", "Transpose", [rand(2, 1, 3, 2, 1, 3, dtype=np.bool_)],
     {"perm": [5, 3, 0, 1, 4, 2]})

# Slice, opset >= 10: inputs, negative steps, clamping, negative axes
for name, x, starts, ends, axes, steps in [
    ("basic", rand(5, 7), [1, 2], [4, 6], None, None),
    ("neg_axes", rand(3, 5, 7), [-3], [1000], [-1], None),
    ("step2", rand(7, 7), [0, 1], [7, 7], [0, 1], [2, 3]),
    ("rev", rand(3, 7), [-1], [-1000], [1], [-1]),
    ("rev_step", rand(7, 3, 4), [5, 2], [0, -100], [0, 2], [-2, -3]),
    ("clamp", rand(4, 5), [-100, 2], [100, 1000], [0, 1], [1, 1]),
    ("empty", rand(4, 5), [3], [1], [0], [1]),
    ("int32", rand(2, 9, 3, dtype=np.int32), [1], [8], [1], [3]),
    ("uint8_rev_all", rand(3, 4, dtype=np.uint8), [2, 3], [-5, -5], [0, 1], [-1, -1]),
]:
    ins = [x, Const(np.array(starts, np.int64)), Const(np.array(ends, np.int64))]
    ins.append(None if axes is None else Const(np.array(axes, np.int64)))
    ins.append(None if steps is None else Const(np.array(steps, np.int64)))
    while ins[-1] is None:
        ins.pop()
    case(f"slice_{name}", "Slice", ins)
case("slice_int32_params", "Slice", [rand(6, 5), Const(np.array([1], np.int32)),
                                     Const(np.array([-1], np.int32)),
                                     Const(np.array([0], np.int32)),
                                     Const(np.array([2], np.int32))])
case("slice_opset9", "Slice", [rand(5, 6, 7)], {"starts": [1, -4], "ends": [100, -1],
                                                "axes": [0, 2]}, opset=9)
case("slice_opset9_noaxes", "Slice", [rand(5, 6)], {"starts": [1, 0], "ends": [3, 5]},
     opset=9)

for axis, shapes in [(0, [(1, 3), (3, 3), (7, 3)]), (1, [(2, 1, 4), (2, 3, 4)]),
                     (-1, [(2, 3, 1), (2, 3, 7), (2, 3, 2)]), (2, [(2, 2, 0, 3), (2, 2, 3, 3)])]:
    case(f"concat_axis{axis}", "Concat", [rand(*s) for s in shapes], {"axis": axis})
case("concat_int64_const", "Concat", [rand(3, dtype=np.int64),
                                      Const(np.array([5, 6], np.int64))], {"axis": 0})
case("concat_bool", "Concat", [rand(2, 3, dtype=np.bool_), rand(2, 5, dtype=np.bool_)],
     {"axis": 1})

# Split: attribute (opset < 13), input (13+), equal parts, num_outputs (18)
case("split_attr", "Split", [rand(7, 3)], {"axis": 0, "split": [1, 4, 2]}, opset=11, n_out=3)
case("split_equal_v11", "Split", [rand(2, 9)], {"axis": -1}, opset=11, n_out=3)
case("split_input", "Split", [rand(3, 7, 2), Const(np.array([3, 0, 4], np.int64))],
     {"axis": 1}, opset=13, n_out=3)
case("split_equal_v13", "Split", [rand(6, 2, dtype=np.int32)], {}, opset=13, n_out=2)
case("split_num_outputs", "Split", [rand(2, 7)], {"axis": 1, "num_outputs": 3}, opset=18,
     n_out=3)
case("split_num_outputs_neg", "Split", [rand(5, 3, dtype=np.uint8)],
     {"axis": -2, "num_outputs": 2}, opset=18, n_out=2)

# Pad: opset < 11 attributes; >= 11 inputs; 18 axes; every mode; negative pads
case("pad_v2_constant", "Pad", [rand(3, 4)], {"pads": [1, 0, 2, 3], "value": 1.5}, opset=10)
case("pad_v2_reflect", "Pad", [rand(2, 3, 4)], {"pads": [0, 1, 2, 0, 2, 3],
                                                "mode": "reflect"}, opset=10)
case("pad_v2_edge", "Pad", [rand(3, 5)], {"pads": [2, 2, 1, 0], "mode": "edge"}, opset=10)
for mode in ("constant", "reflect", "edge"):
    for name, x, pads in [("4d_hw", rand(2, 3, 5, 4), [0, 0, 1, 2, 0, 0, 2, 1]),
                          ("neg", rand(3, 7), [-1, 2, 1, -3]),
                          ("1d", rand(7), [3, 2]),
                          ("c_only", rand(1, 3, 2, 2), [0, 2, 0, 0, 0, 1, 0, 0])]:
        case(f"pad_{mode}_{name}", "Pad", [x, Const(np.array(pads, np.int64))], {"mode": mode},
             opset=13)
case("pad_constant_value", "Pad", [rand(2, 3), Const(np.array([1, 1, 1, 1], np.int64)),
                                   Const(np.array(-2.5, np.float32))], opset=13)
case("pad_int8_value", "Pad", [rand(2, 3, dtype=np.int8), Const(np.array([0, 2, 1, 0], np.int64)),
                               Const(np.array(-7, np.int8))], opset=13)
case("pad_int64_edge", "Pad", [rand(4, 3, dtype=np.int64),
                               Const(np.array([2, 1, 0, 3], np.int64))], {"mode": "edge"},
     opset=13)
case("pad_v18_axes", "Pad", [rand(2, 3, 4), Const(np.array([1, 2, 0, 1], np.int64)),
                             Const(np.array(3.0, np.float32)), Const(np.array([-1, 0], np.int64))],
     opset=18)
case("pad_v19_wrap", "Pad", [rand(3, 4), Const(np.array([2, 1, 1, 3], np.int64))],
     {"mode": "wrap"}, opset=19)

# Gather: runtime or constant indices, negative indices, every axis
for axis, x, idx in [(0, rand(5, 3), np.array([4, 0, -1, 2], np.int64)),
                     (1, rand(2, 7, 3), np.array([[0, -7], [6, 3], [1, 1]], np.int64)),
                     (-1, rand(2, 3, 4), np.array(2, np.int64)),
                     (2, rand(2, 3, 4, dtype=np.int64), np.array([-1, -2, 0], np.int32))]:
    case(f"gather_axis{axis}_runtime", "Gather", [x, idx], {"axis": axis})
    case(f"gather_axis{axis}_const", "Gather", [x, Const(idx)], {"axis": axis})
case("gather_scalar_index", "Gather", [rand(4, 3), Const(np.array(-2, np.int64))], {"axis": 0})
case("gather_uint8_2d_idx", "Gather", [rand(6, 5, dtype=np.uint8),
                                       Const(np.array([[5, 0], [1, -6]], np.int64))], {})

# Cast between all supported dtypes
CAST_TYPES = [np.float32, np.float16, np.float64, np.int8, np.int16, np.int32, np.int64,
              np.uint8, np.uint16, np.uint32, np.uint64, np.bool_]


def cast_source(dtype):
    if dtype == np.bool_:
        return rand(3, 5, dtype=np.bool_)
    if np.dtype(dtype).kind == "u":
        return RNG.integers(0, 200, (3, 5)).astype(dtype)
    if np.dtype(dtype).kind == "f":  # in-range integers, halves, small values, zeros
        v = np.array([0.0, -0.0, 1.5, -2.5, 3.25, 100.75, 7.0, 0.1, -0.3, 65.0, 2.0, -1.0,
                      0.5, 12.0, 99.0], np.float64)
        return v.reshape(3, 5).astype(dtype)
    return rand(3, 5, dtype=dtype)


for src in CAST_TYPES:
    for dst in CAST_TYPES:
        if src == dst:
            continue
        x = cast_source(src)
        if np.dtype(src).kind == "f" and np.dtype(dst).kind == "u":
            x = np.abs(x)  # negative float -> unsigned is undefined
        case(f"cast_{np.dtype(src).name}_{np.dtype(dst).name}", "Cast", [x],
             {"to": int(helper.np_dtype_to_tensor_dtype(np.dtype(dst)))})
# negative float -> unsigned: wraps like NumPy through int64 (C's direct conversion is UB;
# the fuzzer's all-family seeds hit it for uint64, issue 17)
for src in (np.float32, np.float64):
    for dst in (np.uint8, np.uint16, np.uint32, np.uint64):
        neg = np.array([-1.84, -3.0, -0.5, 2.5, -200.25, 7.0], src)
        case(f"cast_negative_{np.dtype(src).name}_{np.dtype(dst).name}", "Cast", [neg],
             {"to": int(helper.np_dtype_to_tensor_dtype(np.dtype(dst)))},
             ref=lambda x, dst=dst: [x.astype(np.int64).astype(dst)])
# float -> half rounding (nearest even, subnormals, overflow, inf, nan)
F16_EDGE = np.array([1.0 + 2 ** -11, 1.0 + 3 * 2 ** -11, 2 ** -24, 2 ** -25, 3 * 2 ** -26,
                     2 ** -14 - 2 ** -25, 65504.0, 65520.0, 1e6, -1e-9, np.inf, -np.inf,
                     np.nan, 1e-7, -6.1e-5, 0.33333334], np.float32)
case("cast_f32_f16_rounding", "Cast", [F16_EDGE], {"to": onnx.TensorProto.FLOAT16})
case("cast_f16_f32_all", "Cast", [np.arange(0, 65536, 7, dtype=np.uint16).view(np.float16)],
     {"to": onnx.TensorProto.FLOAT})
case("castlike", "CastLike", [rand(2, 3), Const(np.zeros(1, np.int32))], opset=15)

# The narrow types (opset 25) against onnx's reference (ml_dtypes, numpy_helper): every code
# decoded; encoding from every float16 value, exact ties between neighbouring codes, the
# overflow region and the specials, with and without saturate; float64 sources (through
# float32, as ml_dtypes and onnxruntime convert them)
_NARROW_FLOATS = {"bfloat16": ml_dtypes.bfloat16, "float8e4m3fn": ml_dtypes.float8_e4m3fn,
                  "float8e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
                  "float8e5m2": ml_dtypes.float8_e5m2,
                  "float8e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
                  "float4e2m1": ml_dtypes.float4_e2m1fn,
                  "float8e8m0": ml_dtypes.float8_e8m0fnu}
_NARROW_INTS = {"int4": ml_dtypes.int4, "uint4": ml_dtypes.uint4, "int2": ml_dtypes.int2,
                "uint2": ml_dtypes.uint2}
_ALL_F16 = np.arange(0, 65536, dtype=np.uint16).view(np.float16).astype(np.float32)


def _encode_inputs(t):
    """float32 values that exercise rounding into t: its codes' values and the midpoints
    between neighbours (ties), a little either side of them, every float16, specials."""
    n = 16 if t is ml_dtypes.float4_e2m1fn else (65536 if t is ml_dtypes.bfloat16 else 256)
    codes = np.arange(n, dtype=np.uint16 if n == 65536 else np.uint8).view(t)
    v = np.unique(codes.astype(np.float64)[np.isfinite(codes.astype(np.float64))])
    mids = (v[1:] + v[:-1]) / 2
    top = 2 * v[-1] - v[-2]
    extra = [(v[-1] + top) / 2, top, top * 1.5, 1e30, np.inf, -np.inf, np.nan, -0.0, 1e-30]
    xs = np.concatenate([v, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf),
                         extra, _ALL_F16[::3]])
    xs = np.concatenate([xs, -xs]).astype(np.float32)
    return xs


for _name, _t in _NARROW_FLOATS.items():
    _code = getattr(onnx.TensorProto, _name.upper())
    _n = 16 if _name == "float4e2m1" else 256
    _codes = np.arange(_n, dtype=np.uint8).view(_t) if _name != "bfloat16" else \
        np.arange(0, 65536, 5, dtype=np.uint16).view(_t)
    case(f"cast_{_name}_to_f32_every_code", "Cast", [_codes], {"to": onnx.TensorProto.FLOAT},
         opset=25, ref="onnx")
    case(f"cast_{_name}_to_f16", "Cast", [_codes], {"to": onnx.TensorProto.FLOAT16},
         opset=25, ref="onnx")
    _x = _encode_inputs(_t)
    for _sat in (1, 0):
        if _sat == 0 and _name in ("bfloat16", "float4e2m1"):
            continue  # saturate concerns float8 only
        case(f"cast_f32_to_{_name}_sat{_sat}", "Cast", [_x], {"to": _code, "saturate": _sat},
             opset=25, ref="onnx")
    if _name != "float8e8m0":
        case(f"cast_f64_to_{_name}", "Cast", [np.concatenate(
            [_x.astype(np.float64), _x.astype(np.float64) * (1 + 2.0 ** -30)])],
            {"to": _code}, opset=25, ref="onnx")
    case(f"castlike_f16_to_{_name}", "CastLike",
         [_ALL_F16[::7].astype(np.float16), Const(np.zeros(1, _t))], opset=25, ref="onnx")
for _mode in ("up", "down", "nearest"):
    for _sat in (1, 0):
        case(f"cast_f32_to_float8e8m0_{_mode}_sat{_sat}", "Cast",
             [np.concatenate([_encode_inputs(ml_dtypes.float8_e8m0fnu),
                              np.array([3e38, 1.7e38, 2.0 ** -127, 1.5 * 2.0 ** -127], np.float32)])],
             {"to": onnx.TensorProto.FLOAT8E8M0, "saturate": _sat, "round_mode": _mode},
             opset=25, ref="onnx")
for _name, _t in _NARROW_INTS.items():
    _code = getattr(onnx.TensorProto, _name.upper())
    _vals = np.arange(-20, 21, dtype=np.int32)
    case(f"cast_i32_to_{_name}", "Cast", [_vals], {"to": _code}, opset=25, ref="onnx")
    case(f"cast_f32_to_{_name}", "Cast",
         [np.array([-9.7, -8.5, -3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 7.4, 7.6, 8.5, 15.5,
                    16.5, 100, 1e20, np.nan, np.inf, -np.inf], np.float32)],
         {"to": _code}, opset=25, ref="onnx")
    _all = np.arange(-8, 16).astype(_t)
    for _dst, _dn in ((onnx.TensorProto.FLOAT, "f32"), (onnx.TensorProto.FLOAT16, "f16"),
                      (onnx.TensorProto.INT8, "i8"), (onnx.TensorProto.INT64, "i64")):
        case(f"cast_{_name}_to_{_dn}", "Cast", [_all], {"to": _dst}, opset=25, ref="onnx")
case("cast_bfloat16_to_float8e4m3fn", "Cast",
     [np.arange(0, 65536, 3, dtype=np.uint16).view(ml_dtypes.bfloat16)],
     {"to": onnx.TensorProto.FLOAT8E4M3FN}, opset=25, ref="onnx")
case("cast_int4_to_float8e5m2", "Cast", [np.arange(-8, 8).astype(ml_dtypes.int4)],
     {"to": onnx.TensorProto.FLOAT8E5M2}, opset=25, ref="onnx")

# Expand, Tile, DepthToSpace, SpaceToDepth
for name, x, shape in [("row", rand(1, 5), [3, 5]), ("col_rank_up", rand(3, 1), [2, 3, 4]),
                       ("scalar", rand(), [2, 3]), ("one", rand(1), [2, 3]), ("mixed", rand(2, 1, 3, 1), [4, 2, 5, 3, 7]),
                       ("smaller_shape", rand(2, 3), [3]), ("int16", rand(3, 1, dtype=np.int16),
                                                            [3, 4])]:
    case(f"expand_{name}", "Expand", [x, Const(np.array(shape, np.int64))])
for name, x, reps in [("2d", rand(2, 3), [2, 3]), ("ones", rand(3, 4), [1, 1]),
                      ("3d", rand(2, 1, 3), [1, 4, 2]), ("int64", rand(3, dtype=np.int64), [3])]:
    case(f"tile_{name}", "Tile", [x, Const(np.array(reps, np.int64))])
for mode in ("DCR", "CRD"):
    case(f"depth_to_space_{mode}", "DepthToSpace", [rand(2, 12, 3, 5)],
         {"blocksize": 2, "mode": mode})
case("depth_to_space_b3", "DepthToSpace", [rand(1, 18, 2, 1)],
     {"blocksize": 3})
case("space_to_depth", "SpaceToDepth", [rand(2, 3, 4, 6)], {"blocksize": 2})
case("space_to_depth_b3", "SpaceToDepth", [rand(1, 2, 3, 9)], {"blocksize": 3})


# views: no code runs, the output is the input's bytes
case("reshape", "Reshape", [rand(2, 3, 4), Const(np.array([4, -1], np.int64))], opset=14)
case("flatten_axis2", "Flatten", [rand(2, 3, 5)], {"axis": 2}, opset=13)
case("squeeze", "Squeeze", [rand(3, 1, 7), Const(np.array([1], np.int64))], opset=13)
case("unsqueeze", "Unsqueeze", [rand(3, 7), Const(np.array([0, 2], np.int64))], opset=13)
# BitCast (opset 26; onnxruntime has none): the same bytes under another type, NaN and
# infinity bit patterns included
_special = np.array([np.nan, -np.inf, np.inf, -0.0], np.float32)
case("bitcast_f32_to_i32", "BitCast", [np.concatenate([rand(8), _special]).reshape(3, 4)],
     {"to": TensorProto.INT32}, opset=26, ref=lambda x: [x.view(np.int32)])
case("bitcast_i64_to_f64", "BitCast",
     [np.array([0, 1, -1, 0x7FF0000000000000, 4607182418800017408], np.int64)],
     {"to": TensorProto.DOUBLE}, opset=26, ref=lambda x: [x.view(np.float64)])
case("bitcast_u8_to_i8", "BitCast", [np.arange(0, 255, 17, dtype=np.uint8).reshape(3, 5)],
     {"to": TensorProto.INT8}, opset=26, ref=lambda x: [x.view(np.int8)])


# --- Resize / Upsample (test_kernels_nn.py): arithmetic, so within the float tolerance
_rand_nn = uniform_source(5)



def _resize_case(id_, op, inputs, attrs=None, **kw):
    return BOOK.add(id_, op, inputs, attrs or {}, exact=False, **kw)


rand, case = _rand_nn, _resize_case
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
# cubic (Keys kernel, cubic_coeff_a, exclude_outside) and antialiased downscaling
for coord in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
              "half_pixel_symmetric"):
    case(f"resize_cubic_{coord}", "Resize", [X_UP, None, scales(1, 1, 2.5, 1.5)],
         {"mode": "cubic", "coordinate_transformation_mode": coord}, opset=13)
    case(f"resize_cubic_down_{coord}", "Resize", [X_DOWN, None, None, sizes(1, 2, 4, 5)],
         {"mode": "cubic", "coordinate_transformation_mode": coord}, opset=13)
case("resize_cubic_a05_exclude_outside", "Resize", [X_UP, None, scales(1, 1, 1.7, 2.0)],
     {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1}, opset=13)
case("resize_cubic_down_exclude_outside", "Resize", [X_DOWN, None, scales(1, 1, 0.6, 0.8)],
     {"mode": "cubic", "exclude_outside": 1}, opset=13)
case("resize_cubic_tf_crop_and_resize", "Resize",
     [X_DOWN, Const(np.array([0, 0, 0.2, -0.1, 1, 1, 0.9, 1.3], np.float32)), None,
      sizes(1, 2, 5, 6)],
     {"mode": "cubic", "coordinate_transformation_mode": "tf_crop_and_resize",
      "extrapolation_value": -7.0}, opset=13)
for mode in ("cubic", "linear"):
    case(f"resize_{mode}_antialias_down", "Resize", [X_DOWN, None, None, sizes(1, 2, 3, 4)],
         {"mode": mode, "antialias": 1}, opset=18)
    case(f"resize_{mode}_antialias_down_scales", "Resize", [X_DOWN, None, scales(1, 1, 0.6, 0.35)],
         {"mode": mode, "antialias": 1}, opset=18)
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


# --- GridSample: every mode x padding x align_corners, 2-D and 3-D, points outside the
# border (several reflections deep) included
_rand_gs = uniform_source(23)
for mode in ("nearest", "linear", "cubic"):
    for pad in ("zeros", "border", "reflection"):
        for align in (0, 1):
            BOOK.add(f"grid_sample_{mode}_{pad}_ac{align}", "GridSample",
                     [_rand_gs(2, 3, 5, 7), _rand_gs(2, 4, 6, 2, low=-3.5, high=3.5)],
                     {"mode": mode, "padding_mode": pad, "align_corners": align},
                     opset=20, exact=False)
for mode in ("nearest", "linear"):
    for pad in ("zeros", "border", "reflection"):
        BOOK.add(f"grid_sample_3d_{mode}_{pad}", "GridSample",
                 [_rand_gs(1, 2, 3, 4, 5), _rand_gs(1, 2, 3, 4, 3, low=-1.5, high=1.5)],
                 {"mode": mode, "padding_mode": pad}, opset=20, exact=False, ref="onnx")
for mode in ("bilinear", "bicubic"):  # the opset-16 spellings
    BOOK.add(f"grid_sample_v16_{mode}", "GridSample",
             [_rand_gs(1, 2, 4, 4), _rand_gs(1, 3, 5, 2, low=-1.2, high=1.2)],
             {"mode": mode}, opset=16, exact=False)
BOOK.add("grid_sample_f64", "GridSample",  # onnxruntime has no float64 GridSample
         [_rand_gs(1, 2, 4, 4).astype(np.float64), _rand_gs(1, 3, 5, 2, low=-1.2, high=1.2)],
         {"mode": "linear"}, opset=20, exact=False, tol=1e-6, ref="onnx")

# --- AffineGrid (opset 20): 2-D and 3-D, align_corners
for _align in (0, 1):
    BOOK.add(f"affine_grid_2d_ac{_align}", "AffineGrid",
             [_rand_gs(2, 2, 3), Const(np.array([2, 3, 5, 7], np.int64))],
             {"align_corners": _align}, opset=20, exact=False)
    BOOK.add(f"affine_grid_3d_ac{_align}", "AffineGrid",
             [_rand_gs(2, 3, 4), Const(np.array([2, 1, 3, 4, 5], np.int64))],
             {"align_corners": _align}, opset=20, exact=False)
# an extent of 1: 0 (align_corners=1 is ambiguous: onnx.reference -1, onnxruntime +1,
# PyTorch and we 0, so only align_corners=0 is compared)
BOOK.add("affine_grid_2d_unit", "AffineGrid",
         [_rand_gs(1, 2, 3), Const(np.array([1, 1, 1, 6], np.int64))], {}, opset=20,
         exact=False)

# --- Col2Im (opset 18): overlapping blocks sum; strides, dilations, pads; 3-D (onnx's
# reference: onnxruntime's kernel is 2-D only)
def _col2im(id_, n, c, img, blk, st=None, dl=None, pads=None, ref=None):
    d = len(img)
    st, dl, pads = st or [1] * d, dl or [1] * d, pads or [0] * (2 * d)
    nb = [(img[k] + pads[k] + pads[d + k] - (dl[k] * (blk[k] - 1) + 1)) // st[k] + 1
          for k in range(d)]
    BOOK.add(id_, "Col2Im", [_rand_gs(n, c * int(np.prod(blk)), int(np.prod(nb))),
                             Const(np.array(img, np.int64)), Const(np.array(blk, np.int64))],
             {"strides": st, "dilations": dl, "pads": pads}, opset=18, exact=False, ref=ref)


_col2im("col2im_basic", 1, 2, [5, 5], [2, 2])
_col2im("col2im_strided_padded", 2, 3, [6, 7], [3, 2], st=[2, 1], pads=[1, 0, 2, 1])
_col2im("col2im_dilated", 1, 1, [7, 6], [2, 3], dl=[2, 2], pads=[0, 1, 1, 0])
_col2im("col2im_3d", 1, 2, [3, 4, 5], [2, 2, 3], st=[1, 2, 1], pads=[0, 1, 1, 1, 0, 1],
        ref="onnx")
