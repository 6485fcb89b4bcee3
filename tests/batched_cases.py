"""Many one-node ONNX cases compiled as one model: one gcc build per group, one test per case.

A test file makes a `CaseBook`, registers cases with `book.add(...)`, parametrizes a test
over `book.cases` and calls `book.check(case)`. References: onnxruntime by default, a
NumPy function, or "onnx" for the onnx package's reference evaluator (where onnxruntime
lacks a kernel or rejects a valid model).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from megcc_builder.host import run_onnx


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
    ref: Optional[Callable] = None  # NumPy reference, "onnx" (reference evaluator), None = ORT
    family: Optional[str] = None  # cases of one family and opset share a model (default: op)

    @property
    def group(self):
        return (self.family or self.op, self.opset)


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
    """Per case, its reference outputs."""
    by_ort = [c for c in cases if c.ref is None]
    ort_out = []
    if by_ort:
        model = build_model(by_ort)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        ort_out = sess.run(None, feeds(by_ort))
    result, k = [], 0
    for c in cases:
        if c.ref == "onnx":
            from onnx.reference import ReferenceEvaluator

            result.append(ReferenceEvaluator(build_model([c])).run(None, feeds([c])))
        elif c.ref is not None:
            result.append(list(c.ref(*[v.value if isinstance(v, Const) else v
                                       for v in c.inputs])))
        else:
            result.append(ort_out[k:k + c.n_out])
            k += c.n_out
    return result


class CaseBook:
    def __init__(self, exact: bool = False):
        self.cases: List[Case] = []
        self.exact = exact  # data movement must be bit-exact; arithmetic within 1e-4
        self._results = functools.lru_cache(maxsize=None)(self._run_group)

    def add(self, id_, *args, **kwargs) -> Case:
        c = Case(id_, *args, **kwargs)
        self.cases.append(c)
        return c

    def _run_group(self, group) -> Dict[str, tuple]:
        cases = [c for c in self.cases if c.group == group]
        ours = run_onnx(build_model(cases), feeds(cases))
        result, k = {}, 0
        for c, ref in zip(cases, reference(cases)):
            result[c.id] = (ours[k:k + c.n_out], ref)
            k += c.n_out
        return result

    def check(self, case: Case) -> None:
        ours, ref = self._results(case.group)[case.id]
        for a, b in zip(ours, ref):
            b = np.asarray(b)
            assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
            if a.dtype.kind == "f" and not self.exact:
                err = np.abs(a.astype(np.float64) - b) / np.maximum(1.0, np.abs(b))
                assert np.array_equal(np.isnan(a), np.isnan(b))
                assert np.nanmax(err, initial=0.0) <= 1e-4, f"max error {np.nanmax(err)}"
            else:
                np.testing.assert_array_equal(a, b)
