"""Reduction kernels against onnxruntime (or NumPy where onnxruntime lacks a kernel):
Reduce* (axes as attribute and as input, keepdims, noop_with_empty_axes), ArgMax/ArgMin,
Softmax/LogSoftmax/Hardmax in both the opset < 13 and the opset >= 13 semantics.

The cases of one (op, opset) group compile into one model (one gcc build); each case is
still its own test. Floats: |ours - ref| / max(1, |ref|) <= 1e-4; integers exact.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from megcc_builder.host import run_onnx

RNG = np.random.default_rng(11)


class Const:
    """An input given as an initializer (compile-time constant)."""

    def __init__(self, value):
        self.value = np.asarray(value)


@dataclass
class Case:
    id: str
    op: str
    inputs: list  # np.ndarray = runtime input, Const = initializer, None = omitted
    attrs: Dict = field(default_factory=dict)
    opset: int = 17
    n_out: int = 1
    ref: Optional[Callable] = None  # NumPy reference; None = onnxruntime

    @property
    def group(self):  # one compiled model per op family and opset
        family = "reduce" if self.op.startswith("Reduce") else self.op
        return (family, self.opset)


def build_model(cases: List[Case]) -> onnx.ModelProto:
    nodes, graph_inputs, inits, outputs = [], [], [], []
    for k, c in enumerate(cases):
        names = []
        for i, v in enumerate(c.inputs):
            if v is None:
                names.append("")
                continue
            name = f"c{k}_in{i}"
            names.append(name)
            if isinstance(v, Const):
                inits.append(numpy_helper.from_array(v.value, name))
            else:
                graph_inputs.append(helper.make_tensor_value_info(
                    name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape))
        outs = [f"c{k}_out{j}" for j in range(c.n_out)]
        outputs += [helper.make_empty_tensor_value_info(o) for o in outs]
        nodes.append(helper.make_node(c.op, names, outs, name=f"case{k}", **c.attrs))
    graph = helper.make_graph(nodes, "cases", graph_inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", cases[0].opset)])
    model.ir_version = 8
    return model


def feeds(cases: List[Case]) -> Dict[str, np.ndarray]:
    return {f"c{k}_in{i}": v for k, c in enumerate(cases) for i, v in enumerate(c.inputs)
            if isinstance(v, np.ndarray)}


def reference(cases: List[Case]) -> List[list]:
    """Per case, its reference outputs: NumPy when given, else onnxruntime."""
    by_ort = [c for c in cases if c.ref is None]
    ort_out = []
    if by_ort:
        model = build_model(by_ort)
        ort_out = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"]).run(None,
                                                                               feeds(by_ort))
    result, k = [], 0
    for c in cases:
        if c.ref is not None:
            result.append(list(c.ref(*[v.value if isinstance(v, Const) else v
                                       for v in c.inputs])))
        else:
            result.append(ort_out[k:k + c.n_out])
            k += c.n_out
    return result


@functools.lru_cache(maxsize=None)
def run_group(group) -> Dict[str, tuple]:
    """case id -> (our outputs, reference outputs), one compile for the whole group."""
    cases = [c for c in CASES if c.group == group]
    ours = run_onnx(build_model(cases), feeds(cases))
    result, k = {}, 0
    for c, ref in zip(cases, reference(cases)):
        result[c.id] = (ours[k:k + c.n_out], ref)
        k += c.n_out
    return result


def check_case(case: Case):
    ours, ref = run_group(case.group)[case.id]
    for a, b in zip(ours, ref):
        b = np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
        if a.dtype.kind == "f":
            err = np.abs(a.astype(np.float64) - b) / np.maximum(1.0, np.abs(b))
            assert np.array_equal(np.isnan(a), np.isnan(b))
            assert np.nanmax(err, initial=0.0) <= 1e-4, f"max error {np.nanmax(err)}"
        else:
            np.testing.assert_array_equal(a, b)


def rand(*shape, dtype=np.float32, low=-3.0, high=3.0):
    if np.dtype(dtype).kind == "f":
        return np.asarray(RNG.uniform(low, high, shape)).astype(dtype)
    return RNG.integers(int(low), int(high) + 1, shape).astype(dtype)


CASES: List[Case] = []


def case(id_, *args, **kwargs):
    CASES.append(Case(id_, *args, **kwargs))


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


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_reduce(case):
    check_case(case)
