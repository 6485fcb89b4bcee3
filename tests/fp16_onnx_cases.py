"""Float16 ONNX models for the arm64-fp16 runs (tests/test_fp16_models.py and
benchmarks/fp16_onnx_arm64.py): the onnx package's light models converted to float16, the
ONNX node conformance cases with float16 values, compiling and running one, and the error
measure max |ours - ref| / max(1, |ref|).
"""
from __future__ import annotations

import os
import re
import warnings

import numpy as np
import onnx

from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.host import run_compiled
from megcc_builder.passes.float16_regions import conversion_count


def converted_light_model(name: str, seed: int = 11) -> onnx.ModelProto:
    from onnxconverter_common import float16
    from test_onnx_real_models import model_path, with_random_weights

    m = with_random_weights(onnx.load(model_path(name)), seed=seed)
    return float16.convert_float_to_float16(m, keep_io_types=False)


def run_on(model: onnx.ModelProto, feeds: dict, isa: str, target: str, workdir: str):
    """(outputs by name, conversions, plan) of `model` compiled for `isa`, run on `target`.
    An input whose value sets a shape (Range's bounds) is bound as a constant, as the ONNX
    backend (megcc_builder/onnx_backend.py) does."""
    from megcc_builder.ir import NeedsValue
    from megcc_builder.onnx_backend import _bind_inputs

    feeds = dict(feeds)
    bound: dict = {}
    while True:
        path = os.path.join(workdir, "m.onnx")
        onnx.save(_bind_inputs(model, bound) if bound else model, path)
        shapes = {k: tuple(v.shape) for k, v in feeds.items()}
        try:
            bundle = compile_bundle([ModelSpec("model", path, [shapes])],
                                    os.path.join(workdir, "o"), save_c_array=False, isa=isa)
            break
        except NeedsValue as exc:
            if exc.tensor not in feeds:
                raise
            bound[exc.tensor] = feeds.pop(exc.tensor)
    plan = bundle.models[0].plans[0]
    ins = [feeds[n] for n in plan.graph.inputs]
    outs = run_compiled(bundle.files["kernels_c"], bundle.files["model.tiny"], ins, target=target)
    return dict(zip(plan.output_names, outs)), conversion_count(plan.instrs, plan.graph), plan


def errors(got: np.ndarray, ref: np.ndarray):
    """(max |d| / max(1, |ref|), max |d| / max(1, max |ref|)); NaN where either is NaN."""
    g, r = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if g.shape != r.shape:
        raise ValueError(f"shape {g.shape} vs {r.shape}")
    both_nan = np.isnan(g) & np.isnan(r)
    same_inf = np.isinf(g) & np.isinf(r) & (np.sign(g) == np.sign(r))
    ok = ~(both_nan | same_inf)
    if not ok.any():
        return 0.0, 0.0
    d = np.abs(g[ok] - r[ok])
    return (float(np.max(d / np.maximum(1, np.abs(r[ok])))),
            float(np.max(d) / max(1.0, float(np.max(np.abs(r[ok]))))))


def float16_node_cases(pattern: str = ""):
    from onnx import TensorProto
    from onnx.backend.test.case import node

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = node.collect_testcases()
    for c in cases:
        m = c.model
        vals = list(m.graph.input) + list(m.graph.output)
        if any(v.type.tensor_type.elem_type == TensorProto.FLOAT16 for v in vals) \
                and re.search(pattern, c.name):
            yield c


def as_array(x) -> np.ndarray:
    """A case's value: a NumPy array, or a TensorProto (the Cast cases)."""
    if isinstance(x, onnx.TensorProto):
        return onnx.numpy_helper.to_array(x)
    return np.asarray(x)
