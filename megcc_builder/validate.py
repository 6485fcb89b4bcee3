"""`megcc validate`: our compiled model against the reference engine, on the same inputs.

Compiles the model, runs it (on this machine, or on a hosted target under its emulator),
runs the framework the model came from on the same inputs (onnxruntime for .onnx,
MegEngine for .mge), and reports, per output, the numbers a deployment engineer checks
before shipping: max absolute error, max normalised error |ours - ref| / max(1, |ref|)
(the rule the test suites use), cosine similarity and top-1 agreement. A model passes when
every output has the reference's shape and its normalised error is within the tolerance.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from .ir import CompileError
from .ir.dtypes import numpy_dtype


@dataclass
class OutputReport:
    name: str
    shape: tuple
    ref_shape: tuple
    max_abs: float
    max_normalised: float
    cosine: float
    top1: Optional[float]  # fraction of rows whose argmax agrees; None: not a score vector

    def passes(self, tolerance: float) -> bool:
        return self.shape == self.ref_shape and self.max_normalised <= tolerance


def compare_output(name: str, ours: np.ndarray, ref: np.ndarray) -> OutputReport:
    """The error figures of one output (computed in float64)."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    if ours.shape != ref.shape:
        nan = float("nan")
        return OutputReport(name, ours.shape, ref.shape, nan, float("inf"), nan, None)
    a, b = ours.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
    if a.size == 0:
        return OutputReport(name, ours.shape, ref.shape, 0.0, 0.0, 1.0, None)
    finite = np.isfinite(a) & np.isfinite(b)
    # a NaN or an infinity must sit where the reference has the same one
    specials_agree = np.array_equal(np.isnan(a), np.isnan(b)) and bool(
        np.all((a == b) | finite | np.isnan(a)))
    a, b = a[finite], b[finite]
    diff = np.abs(a - b)
    max_abs = float(diff.max()) if diff.size else 0.0
    worst = float((diff / np.maximum(1.0, np.abs(b))).max()) if diff.size else 0.0
    if not specials_agree:
        worst = float("inf")
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    cosine = float(np.dot(a, b) / norm) if norm > 0 else (1.0 if max_abs == 0.0 else 0.0)
    top1 = None
    if ours.ndim >= 1 and ours.shape[-1] > 1 and np.issubdtype(ref.dtype, np.floating):
        rows_ours = ours.reshape(-1, ours.shape[-1])
        rows_ref = ref.reshape(-1, ref.shape[-1])
        top1 = float(np.mean(rows_ours.argmax(axis=1) == rows_ref.argmax(axis=1)))
    return OutputReport(name, ours.shape, ref.shape, max_abs, worst, cosine, top1)


def seeded_inputs(graph, given: Dict[str, np.ndarray], seed: int) -> Dict[str, np.ndarray]:
    """Values for every input of a planned graph: the given ones, the others drawn from a
    seeded generator (floats uniform in [-1, 1], integers 0 or 1: valid indices and flags)."""
    rng = np.random.default_rng(seed)
    values = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        if name in given:
            values[name] = given[name]
        elif t.dtype.startswith("float"):
            values[name] = rng.uniform(-1, 1, t.shape).astype(numpy_dtype(t.dtype))
        else:
            values[name] = rng.integers(0, 2, t.shape).astype(numpy_dtype(t.dtype))
    return values


def reference_outputs(path: str, inputs: Dict[str, np.ndarray]) -> List[np.ndarray]:
    """The outputs of the model's own framework, in the model's output order."""
    if path.lower().endswith(".mge"):
        from megengine.utils.comp_graph_tools import GraphInference

        try:
            with open(path, "rb") as f:  # a path would be opened and never closed
                inference = GraphInference(f)
            result = inference.run(inp_dict=inputs)
        except Exception as exc:  # MegEngine's own message, first line only
            raise CompileError(f"MegEngine could not run the model: "
                               f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                               path) from None
        return [np.asarray(v) for v in result.values()]
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as exc:
        from .bench import _ort_reason

        raise CompileError(f"onnxruntime {ort.__version__} could not load the model: "
                           f"{_ort_reason(exc)}",
                           path) from None
    return session.run(None, {k: v for k, v in inputs.items()
                              if k in {i.name for i in session.get_inputs()}})


def validate(path: str, shapes: Dict[str, tuple], given: Dict[str, np.ndarray], seed: int,
             isa: Optional[str], target: Optional[str], fuse: bool = True,
             **options) -> List[OutputReport]:
    """Compile, run ours and the reference on the same inputs, compare every output;
    options: the ModelSpec options (enable_nchw44, enable_compress_fp16, ...)."""
    from .compiler import ModelSpec, compile_bundle
    from .host import run_compiled

    if isa is None:  # the best this machine runs, or the target's own level
        from . import targets

        isa = targets.load(target).isa if target else "native"
    shapes = dict(shapes)
    for name, arr in given.items():
        shapes.setdefault(name, tuple(arr.shape))
    out_dir = tempfile.mkdtemp(prefix="megcc-validate-")
    try:
        bundle = compile_bundle([ModelSpec("model", path, [shapes] if shapes else [], fuse, **options)],
                                out_dir, save_c_array=False, isa=isa)
        plan = bundle.models[0].plans[0]
        inputs = seeded_inputs(plan.graph, given, seed)
        for name, arr in inputs.items():
            want = numpy_dtype(plan.graph.tensors[name].dtype)
            if arr.dtype != want:
                raise CompileError(f"input '{name}' is {arr.dtype}, the model takes {want}",
                                   path)
        # in this process on the host; the runner under the emulator for a target
        ours = run_compiled(bundle.files["kernels_c"], bundle.files["model.tiny"],
                            [inputs[n] for n in plan.graph.inputs], target=target)
        refs = reference_outputs(path, inputs)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    if len(refs) != len(ours):
        raise CompileError(f"the reference gives {len(refs)} outputs, the compiled model "
                           f"{len(ours)}", path)
    return [compare_output(n, o, r) for n, o, r in zip(plan.output_names, ours, refs)]


def format_reports(reports: Sequence[OutputReport], tolerance: float) -> str:
    lines = [f"{'output':<24} {'shape':<18} {'max abs':>10} {'max norm':>10} {'cosine':>10} "
             f"{'top-1':>7}  verdict"]
    for r in reports:
        top1 = "-" if r.top1 is None else f"{100 * r.top1:.1f}%"
        shape = "x".join(map(str, r.shape)) or "scalar"
        if r.shape != r.ref_shape:
            verdict = f"FAIL (shape {list(r.shape)}, reference {list(r.ref_shape)})"
        else:
            verdict = "ok" if r.passes(tolerance) else f"FAIL (> {tolerance:g})"
        lines.append(f"{r.name[:24]:<24} {shape[:18]:<18} {r.max_abs:10.3g} "
                     f"{r.max_normalised:10.3g} {r.cosine:10.6f} {top1:>7}  {verdict}")
    return "\n".join(lines)


def ensure_readable_model(path: str) -> None:
    if not os.path.isfile(path):
        raise CompileError("no such model file", path)
    if not path.lower().endswith((".onnx", ".mge")):
        raise CompileError("validate takes an .onnx or .mge model (its reference engine "
                           "is chosen by the extension)", path)
