"""Float16 ONNX models on arm64-fp16 (computed in float16, qemu-aarch64 -cpu max) against
onnxruntime: the onnx package's light models with seeded weights converted by
onnxconverter-common's float16 tool (as tests/test_fp16_models.py does), and every ONNX node
conformance case with a float16 input or output (against the case's own expected outputs).

Per model: max |ours - ref| / max(1, |ref|), max |ours - ref| / max(1, max|ref|) (the
output-scale form), top-1 agreement (light models), and the fp16<->fp32 conversions of the
plan (what `megcc inspect --isa arm64-fp16` prints). Node cases that are expected failures
of the host conformance run (tests/onnx_expected_failures.py) are labelled as such.

    python benchmarks/fp16_onnx_arm64.py [--light squeezenet,...] [--nodes PATTERN] [--isa L]

CI runs a representative subset (tests/test_fp16_models.py, test_*_on_arm64_fp16).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from fp16_onnx_cases import as_array, converted_light_model, errors, float16_node_cases, run_on  # noqa: E402

LIGHT = ["squeezenet", "inception_v1", "inception_v2", "resnet50", "densenet121", "shufflenet"]


def float32_activation_max(m16: onnx.ModelProto, feeds: dict) -> float:
    """The largest |value| any operator produces when onnxruntime evaluates the model widened
    to float32: above 65504 a float16 evaluation overflows (onnxruntime's CPU provider runs
    most float16 operators in float32 with casts, so its "float16" reference does not)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from test_fp16_models import widened

    w = widened(m16)
    names = [n.output[0] for n in w.graph.node if n.output and n.output[0]]
    del w.graph.output[:]
    w.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names)
    sess = ort.InferenceSession(w.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {k: v.astype(np.float32) for k, v in feeds.items()})
    return max(float(np.max(np.abs(o))) for o in outs if np.asarray(o).dtype.kind == "f" and np.asarray(o).size)


def light_rows(names, isa, target):
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    for name in names:
        m16 = converted_light_model(name)
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "ref.onnx")
            onnx.save(m16, p)
            sess = ort.InferenceSession(p, providers=["CPUExecutionProvider"])
            rng = np.random.default_rng(7)
            feeds = {i.name: rng.standard_normal(i.shape).astype(np.float16)
                     for i in sess.get_inputs()}
            ref = sess.run(None, feeds)
            t0 = time.time()
            ours, conv, _ = run_on(m16, feeds, isa, target, d)
            o = sess.get_outputs()[0].name
            rule, scale = errors(ours[o], ref[0])
            top = int(np.argmax(ours[o])) == int(np.argmax(ref[0]))
            note = ""
            if np.isnan(ref[0]).any():
                note = "onnxruntime's float16 reference is NaN (float16 overflow)"
            elif not np.all(np.isfinite(ours[o])):
                note = (f"ours not finite: float16 overflow (the float32 evaluation's "
                        f"activations reach {float32_activation_max(m16, feeds):.3g} > 65504)")
            yield name, rule, scale, top, conv, time.time() - t0, note


def node_rows(pattern, isa, target):
    from onnx_expected_failures import EXPECTED_FAILURES

    for c in float16_node_cases(pattern):
        inputs, outputs = c.data_sets[0]
        names = [v.name for v in c.model.graph.input if v.name]
        feeds = dict(zip(names, [as_array(x) for x in inputs]))
        known = EXPECTED_FAILURES.get(c.name + "_cpu")
        with tempfile.TemporaryDirectory() as d:
            try:
                ours, conv, plan = run_on(c.model, feeds, isa, target, d)
            except Exception as exc:  # noqa: BLE001 (a report: every case gets its row)
                yield c.name, None, None, None, f"error: {str(exc).splitlines()[0][:90]}", known
                continue
            worst_rule = worst_scale = 0.0
            dtype_ok = True
            for v, r in zip(c.model.graph.output, outputs):
                g = ours[v.name]
                r = as_array(r)
                dtype_ok &= g.dtype == r.dtype
                if r.dtype.kind in "fc" or str(r.dtype).startswith("float"):
                    a, b = errors(g.astype(np.float64), r.astype(np.float64))
                else:
                    a = b = 0.0 if np.array_equal(g, r) else float("inf")
                worst_rule, worst_scale = max(worst_rule, a), max(worst_scale, b)
            f16 = any(ins.impl and "fp16" in ins.impl for ins in plan.instrs)
            yield c.name, worst_rule, worst_scale, conv, ("fp16 kernel" if f16 else "") + \
                ("" if dtype_ok else " DTYPE MISMATCH"), known


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--light", default=",".join(LIGHT), help="comma-separated ('-' = none)")
    ap.add_argument("--nodes", default="", help="regex over the node case names ('-' = none)")
    ap.add_argument("--isa", default="arm64-fp16")
    ap.add_argument("--target", default="arm64-fp16")
    a = ap.parse_args()
    tol = 1e-2
    if a.light and a.light != "-":
        print(f"== converted light models on {a.isa} (vs onnxruntime float16; tolerance {tol})")
        print(f"{'model':<14} {'max|d|/max(1,|ref|)':>20} {'/ output scale':>15} {'top-1':>6} "
              f"{'conversions':>11} {'seconds':>8}")
        for name, rule, scale, top, conv, sec, note in light_rows(a.light.split(","), a.isa, a.target):
            flag = f" ({note})" if note else ""
            print(f"{name:<14} {rule:20.2e} {scale:15.2e} {'same' if top else 'DIFF':>6} "
                  f"{conv:>11} {sec:8.1f}{flag}")
    if a.nodes != "-":
        print(f"== float16 node conformance cases on {a.isa} (vs the cases' expected outputs)")
        n = passed = 0
        for name, rule, scale, conv, note, known in node_rows(a.nodes, a.isa, a.target):
            n += 1
            ok = rule is not None and rule <= tol and "MISMATCH" not in note
            passed += ok
            status = "ok" if ok else ("xfail" if known else "FAIL")
            shown = f"{rule:10.2e} {scale:10.2e} {conv:>4}" if rule is not None else f"{'':>26}"
            print(f"{status:<5} {name:<58} {shown} {note}" + (f"  [host xfail: {known}]" if known and not ok else ""))
        print(f"== {passed} of {n} float16 node cases within {tol}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
