"""Indexing cases against onnxruntime (new: no kernel test covered this family before):
GatherElements, ScatterElements, GatherND, ScatterND, OneHot, CumSum, TopK, Trilu,
ReverseSequence; odd sizes, negative axes and indices. Exact (they move values; the float
CumSum cases are within the float tolerance)."""
from __future__ import annotations

import numpy as np

from kernels.harness import Book, Const

RNG = np.random.default_rng(11)
BOOK = Book("index", exact=True)
case = BOOK.add
I64 = np.int64


def rand(*shape, dtype=np.float32):
    if np.dtype(dtype).kind == "f":
        return RNG.standard_normal(shape).astype(dtype)
    return RNG.integers(-50, 50, shape).astype(dtype)


# GatherElements / ScatterElements
for axis, shape, ishape in [(0, (3, 7), (2, 7)), (1, (3, 7), (3, 4)), (-1, (2, 3, 5), (2, 3, 1))]:
    n = shape[axis]
    idx = RNG.integers(-n, n, ishape).astype(I64)
    case(f"gather_elements_axis{axis}", "GatherElements", [rand(*shape), idx], {"axis": axis},
         opset=13)
    # scatter: distinct target positions along the axis (duplicates are unordered)
    uniq = np.stack([RNG.permutation(n)[:ishape[axis]] for _ in range(int(np.prod(ishape))
                                                                        // ishape[axis])])
    uniq = np.moveaxis(uniq.reshape(*[d for k, d in enumerate(ishape) if k != axis % len(shape)],
                                    ishape[axis]), -1, axis % len(shape)).astype(I64)
    case(f"scatter_elements_axis{axis}", "ScatterElements",
         [rand(*shape), uniq, rand(*ishape)], {"axis": axis}, opset=13)
case("gather_elements_int32", "GatherElements",
     [rand(3, 3, dtype=np.int32), Const(np.array([[2, 0, 1], [1, 1, 1]], I64))], {"axis": 0},
     opset=13)

# GatherND / ScatterND
case("gather_nd_full", "GatherND", [rand(3, 4, 5), np.array([[0, 1, 2], [2, 3, 4]], I64)],
     opset=13)
case("gather_nd_slices", "GatherND", [rand(3, 4, 5), np.array([[1], [-1], [0]], I64)], opset=13)
case("gather_nd_batch", "GatherND", [rand(2, 3, 7), np.array([[[1, 6]], [[2, 0]]], I64)],
     {"batch_dims": 1}, opset=13)
case("scatter_nd_rows", "ScatterND", [rand(5, 3), np.array([[4], [0]], I64), rand(2, 3)],
     opset=13)
case("scatter_nd_elems", "ScatterND",
     [rand(3, 7), np.array([[0, 6], [2, 1], [1, 3]], I64), rand(3)], opset=13)

# OneHot
for axis in (-1, 0, 1):
    case(f"one_hot_axis{axis}", "OneHot",
         [np.array([[0, 3, -1], [6, 2, 1]], I64), Const(np.array(7, I64)),
          Const(np.array([-1.5, 2.0], np.float32))], {"axis": axis}, opset=11)

# CumSum: integers exact; floats within the tolerance
for axis in (0, 1, -1):
    for exclusive in (0, 1):
        for reverse in (0, 1):
            case(f"cumsum_int32_a{axis}_e{exclusive}_r{reverse}", "CumSum",
                 [rand(3, 7, dtype=np.int32), Const(np.array(axis, I64))],
                 {"exclusive": exclusive, "reverse": reverse}, opset=14)
# sums past the int32 range wrap (two's complement, as onnxruntime's), no signed overflow
case("cumsum_int32_wraps", "CumSum",
     [np.array([[2 ** 31 - 1, 5, -7], [-2 ** 31, -1, 3]], np.int32), Const(np.array(1, I64))],
     opset=14)
case("cumsum_f32", "CumSum", [rand(2, 3, 7), Const(np.array(2, I64))], opset=14, exact=False)
case("cumsum_f32_rev", "CumSum", [rand(7, 3), Const(np.array(0, np.int32))], {"reverse": 1},
     opset=14, exact=False)
# CumProd (opset 26; onnxruntime has no kernel: onnx's reference evaluator)
for axis in (0, -1):
    for exclusive in (0, 1):
        for reverse in (0, 1):
            case(f"cumprod_int32_a{axis}_e{exclusive}_r{reverse}", "CumProd",
                 [RNG.integers(-3, 4, (3, 5)).astype(np.int32), Const(np.array(axis, I64))],
                 {"exclusive": exclusive, "reverse": reverse}, opset=26, ref="onnx")
case("cumprod_f32", "CumProd", [rand(2, 3, 7), Const(np.array(2, I64))], opset=26,
     exact=False, ref="onnx")
case("cumprod_f64_rev_excl", "CumProd", [rand(7, 3).astype(np.float64),
                                         Const(np.array(0, np.int32))],
     {"reverse": 1, "exclusive": 1}, opset=26, exact=False, ref="onnx")

# TopK: distinct random values (ties order by index, both engines agree there too)
for k, axis, largest in [(3, -1, 1), (1, 0, 1), (7, 1, 0), (2, 1, 0)]:
    case(f"topk_k{k}_axis{axis}_l{largest}", "TopK", [rand(3, 7, 5), Const(np.array([k], I64))],
         {"axis": axis, "largest": largest}, opset=11, n_out=2)

# Trilu
for upper in (0, 1):
    for kk in (-2, 0, 3):
        case(f"trilu_u{upper}_k{kk}", "Trilu", [rand(2, 5, 7), Const(np.array(kk, I64))],
             {"upper": upper}, opset=14)
case("trilu_default", "Trilu", [rand(7, 3)], opset=14)

# ReverseSequence
case("reverse_sequence_batch0", "ReverseSequence",
     [rand(4, 3, 5), np.array([4, 1, 3], I64)], {"batch_axis": 1, "time_axis": 0}, opset=10)
case("reverse_sequence_batch1", "ReverseSequence",
     [rand(3, 7), np.array([7, 1, 2], I64)], {"batch_axis": 0, "time_axis": 1}, opset=10)

# TensorScatter (opset 24, KV-cache updates; onnx's reference): linear and circular (wrapping
# past the end), the default axis -2 and axis 1, int32 indices, float16 data, no indices
_cache = rand(2, 3, 6, 4)
case("tensor_scatter_linear", "TensorScatter",
     [_cache, rand(2, 3, 2, 4), np.array([1, 4], I64)], opset=24, ref="onnx")
case("tensor_scatter_circular", "TensorScatter",
     [_cache, rand(2, 3, 3, 4), np.array([5, 2], I64)], {"mode": "circular"}, opset=24,
     ref="onnx")
case("tensor_scatter_axis1_i32", "TensorScatter",
     [rand(2, 5, 3), rand(2, 2, 3), np.array([0, 3], np.int32)], {"axis": 1}, opset=24,
     ref="onnx")
case("tensor_scatter_f16_no_indices", "TensorScatter",
     [rand(1, 4, 3).astype(np.float16), rand(1, 2, 3).astype(np.float16)], {"axis": 1},
     opset=24, ref="onnx")
