"""Reduction kernels against onnxruntime (or NumPy where onnxruntime lacks a kernel):
Reduce* (axes as attribute and as input, keepdims, noop_with_empty_axes), ArgMax/ArgMin,
Softmax/LogSoftmax/Hardmax in both the opset < 13 and the opset >= 13 semantics.

The cases of one (op, opset) group compile into one model (one gcc build); each case is
still its own test. Floats: |ours - ref| / max(1, |ref|) <= 1e-4; integers exact.
"""
from __future__ import annotations

import numpy as np

from kernels.harness import Book, Const

RNG = np.random.default_rng(11)


def rand(*shape, dtype=np.float32, low=-3.0, high=3.0):
    if np.dtype(dtype).kind == "f":
        return np.asarray(RNG.uniform(low, high, shape)).astype(dtype)
    return RNG.integers(int(low), int(high) + 1, shape).astype(dtype)


BOOK = Book("reduce", exact=False)
CASES = BOOK.cases


def case(id_, op, *args, **kwargs):
    # all Reduce* ops of one opset share a model
    return BOOK.add(id_, op, *args, **kwargs)


# --- Reduce* ------------------------------------------------------------------------------
REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
              "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]
AXES = [None, [1], [-1], [0, 2], [1, 2], [0, -1], [0, 1, 2]]


def reduce_input(op, shape):
    if op == "ReduceLogSum":
        return rand(*shape, low=0.1, high=2.0)  # log of a positive sum
    if op == "ReduceProd":
        return rand(*shape, low=0.6, high=1.5)
    if op == "ReduceLogSumExp":
        return rand(*shape, low=-40.0, high=150.0)  # overflows expf without the max shift
    return rand(*shape)


def add_reduce(op, opset, axes, keepdims, shape, tag=""):
    x = reduce_input(op, shape)
    axes_as_input = opset >= 18 or (op == "ReduceSum" and opset >= 13)
    attrs = {"keepdims": keepdims}
    ins = [x]
    if axes is not None:
        if axes_as_input:
            ins.append(Const(np.array(axes, np.int64)))
        else:
            attrs["axes"] = axes
    case(f"{op}_v{opset}_axes{axes}_k{keepdims}{tag}", op, ins, attrs, opset=opset)


for op in REDUCE_OPS:
    for opset in (13, 18):
        for k, axes in enumerate(AXES):
            add_reduce(op, opset, axes, (k + opset) % 2, (3, 7, 5))
    add_reduce(op, 13, [1], 1, (2, 1, 7, 3), "_4d")
    add_reduce(op, 18, [0, 3], 0, (3, 1, 2, 7), "_4d")
    add_reduce(op, 18, [0], 0, (7,), "_1d")
add_reduce("ReduceSum", 11, [0, 2], 1, (3, 7, 5), "_attr")
add_reduce("ReduceMean", 11, [-2], 0, (3, 7, 5), "_attr")
add_reduce("ReduceMax", 18, [0], 1, (1,), "_size1")
add_reduce("ReduceMean", 18, [0], 0, (1000,), "_long")
add_reduce("ReduceSum", 18, [1, 3], 1, (2, 3, 4, 5, 3), "_5d")
# noop_with_empty_axes: no axes means identity; without it, reduce everything
for op in ("ReduceSum", "ReduceMax"):
    # onnxruntime 1.23 rejects an omitted axes input with noop_with_empty_axes: NumPy ref
    case(f"{op}_noop_empty_axes", op, [rand(3, 4)], {"noop_with_empty_axes": 1}, opset=18,
         ref=lambda x: [x])
    case(f"{op}_empty_axes_all", op, [rand(3, 4), Const(np.zeros(0, np.int64))],
         {"keepdims": 0}, opset=18)
# integer reductions (NumPy reference: onnxruntime lacks several int kernels)
for dt in (np.int32, np.int64):
    x = rand(3, 4, 5, dtype=dt, low=-3, high=3)
    name = np.dtype(dt).name
    case(f"ReduceSum_{name}", "ReduceSum", [x, Const(np.array([1], np.int64))], {},
         opset=18, ref=lambda x, a: [x.sum(axis=1, keepdims=True, dtype=x.dtype)])
    case(f"ReduceMax_{name}", "ReduceMax", [x, Const(np.array([0, 2], np.int64))],
         {"keepdims": 0}, opset=18, ref=lambda x, a: [x.max(axis=(0, 2))])
    case(f"ReduceMin_{name}", "ReduceMin", [x, Const(np.array([-1], np.int64))],
         {"keepdims": 0}, opset=18, ref=lambda x, a: [x.min(axis=-1)])
    case(f"ReduceProd_{name}", "ReduceProd", [x, Const(np.array([2], np.int64))],
         {"keepdims": 1}, opset=18, ref=lambda x, a: [x.prod(axis=2, keepdims=True, dtype=x.dtype)])

# --- ArgMax / ArgMin ----------------------------------------------------------------------
for op in ("ArgMax", "ArgMin"):
    ties = RNG.integers(0, 3, (3, 5, 4)).astype(np.float32)  # many equal values
    for axis in (0, 1, -1):
        for keepdims in (0, 1):
            for last in (0, 1):
                case(f"{op}_axis{axis}_k{keepdims}_last{last}", op, [ties],
                     {"axis": axis, "keepdims": keepdims, "select_last_index": last},
                     opset=13)
    case(f"{op}_default", op, [rand(7, 3)], {}, opset=13)
    case(f"{op}_1d", op, [rand(7)], {"keepdims": 0}, opset=13)
    xi = RNG.integers(-5, 5, (4, 6)).astype(np.int32)
    case(f"{op}_int32", op, [xi], {"axis": 1}, opset=13)

# --- Softmax family ---------------------------------------------------------------------
for op in ("Softmax", "LogSoftmax", "Hardmax"):
    big = rand(2, 3, 7, 5, low=-100, high=200)  # overflows expf without the max shift
    for axis in (0, 1, 2, -1, None):
        attrs = {} if axis is None else {"axis": axis}
        case(f"{op}_v11_axis{axis}", op, [big], attrs, opset=11)  # coerce to 2-D
        case(f"{op}_v13_axis{axis}", op, [big], attrs, opset=13)  # single axis
    case(f"{op}_v13_1d", op, [rand(7)], {}, opset=13)
    case(f"{op}_v13_size1_axis", op, [rand(3, 1, 4)], {"axis": 1}, opset=13)
    ties = RNG.integers(0, 2, (3, 4, 5)).astype(np.float32)
    case(f"{op}_v13_ties_axis1", op, [ties], {"axis": 1}, opset=13)
    case(f"{op}_v13_ties_last", op, [ties], {}, opset=13)

# --- float64 (the float32 formulas in double) and bool (any/all) --------------------------
for op in REDUCE_OPS:
    x64 = reduce_input(op, (3, 7, 5)).astype(np.float64)
    case(f"{op}_float64_axes1", op, [x64, Const(np.array([1], np.int64))], {"keepdims": 1},
         opset=18, tol=1e-12)
    case(f"{op}_float64_all", op, [x64], {"keepdims": 0}, opset=18, tol=1e-12)
for op in ("Softmax", "LogSoftmax", "Hardmax"):
    big64 = rand(2, 3, 7, 5, low=-100, high=200).astype(np.float64)
    ref = "onnx" if op == "Hardmax" else None  # onnxruntime has no float64 Hardmax
    case(f"{op}_float64_last", op, [big64], {}, opset=13, tol=1e-12, ref=ref)
    case(f"{op}_float64_axis1", op, [big64], {"axis": 1}, opset=13, tol=1e-12, ref=ref)
for op, fold in (("ReduceMax", np.any), ("ReduceMin", np.all)):
    xb = RNG.integers(0, 2, (3, 4, 5)).astype(bool)
    xb[1] = not (op == "ReduceMax")  # one slice constant so both outcomes occur
    case(f"{op}_bool_axes02", op, [xb, Const(np.array([0, 2], np.int64))], {"keepdims": 0},
         opset=18, ref=lambda x, a, fold=fold: [fold(x, axis=(0, 2))])
    case(f"{op}_bool_axis1", op, [xb, Const(np.array([1], np.int64))], {"keepdims": 1},
         opset=18, ref=lambda x, a, fold=fold: [fold(x, axis=1, keepdims=True)])


# --- float16 Softmax (enable_ioc16 on arm64-fp16): the float16 rounding of the exact
# softmax of the float16-rounded input, within two float16 ulps (the kernel sums in float32)
def _f16_softmax():
    from kernels.f16_reference import out32, r16

    def ref(x, axis):
        v = r16(x)
        e = np.exp(v - v.max(axis, keepdims=True))
        return [out32(e / e.sum(axis, keepdims=True))]

    for shape, axis in [((3, 37), -1), ((2, 5, 8), -1), ((2, 6, 3, 4), 1), ((1, 1000), -1)]:
        x = rand(*shape)
        BOOK.add(f"f16_softmax_{'x'.join(map(str, shape))}_a{axis}", "Softmax", [x],
                 {"axis": axis}, opset=13, ref=lambda x, axis=axis: ref(x, axis), ioc16=True,
                 tol=2e-3)


_f16_softmax()
