"""The int8 digits sample: samples/digits/digits_int8.mge, made by make_model.py with
MegEngine's own post-training quantization of the fp32 digits CNN, built by `scons
run-digits-int8` from the same main.c as the fp32 app; and samples/digits/
digits_int8_qdq.onnx (make_qdq_model.py: onnxruntime's QDQ quantization of the same network),
`scons run-digits-int8-qdq`.

Checked against MegEngine running the committed .mge on the sample's 100 real held-out
digits: bit-exact logits on the host and on each target (qemu-user Arm64, Cortex-M4 on
qemu-system-arm), accuracy printed beside the fp32 app's, and on the Cortex-M4 the flash/RAM
of both builds from their size reports (the linker enforces the 256 KB / 64 KB budget).
"""
import os
import re

import numpy as np
import pytest

import mge_quant_zoo as zoo
from build_support import (ROOT, SCONS, parse_digits, require_target, run, scons_env)
from megcc_builder.host import compile_and_run

DIGITS_DIR = os.path.join(ROOT, "samples", "digits")
INT8 = os.path.join(DIGITS_DIR, "digits_int8.mge")
FP32 = os.path.join(DIGITS_DIR, "digits.mge")
QDQ = os.path.join(DIGITS_DIR, "digits_int8_qdq.onnx")  # make_qdq_model.py


def _images():
    data = np.load(os.path.join(DIGITS_DIR, "digits_test.npz"))
    return data["x"].astype(np.float32), data["y"].astype(np.int64)


def _onnxruntime_logits(images):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.add_session_config_entry("session.qdqisint8allowed", "1")
    return ort.InferenceSession(QDQ, so, providers=["CPUExecutionProvider"]).run(
        None, {"data": images})[0]


def _megengine_logits(path, images):
    return np.concatenate([zoo.reference_output(path, {"data": x[None]})[0] for x in images])


def test_committed_int8_model_is_quantized_and_bit_exact(summary):
    from megcc_builder.frontend.mge import load_mge

    graph = load_mge(INT8)
    assert sum(op.type == "QLinearConv" for op in graph.ops) == 3  # int8 inside, float edges
    assert graph.tensor(graph.inputs[0]).dtype == "float32"
    images, labels = _images()
    ref = _megengine_logits(INT8, images)
    (ours,) = compile_and_run(INT8, {"data": images}).values()  # all 100 as one batch
    assert np.array_equal(ours, ref)
    (fp32,) = compile_and_run(FP32, {"data": images}).values()
    acc8, acc32 = (float(np.mean(np.argmax(v, 1) == labels)) for v in (ours, fp32))
    summary(f"digits sample: int8 {acc8:.0%}, fp32 {acc32:.0%} of {len(labels)} real images; "
            f".mge file int8 {os.path.getsize(INT8)} B vs fp32 {os.path.getsize(FP32)} B")
    assert acc8 >= 0.95 and acc8 >= acc32 - 0.02


def _size(report: str):
    m = re.search(r"flash (\d+) of (\d+) bytes, RAM (\d+) of (\d+) bytes", report)
    return (int(m.group(1)), int(m.group(3))) if m else None


@pytest.mark.parametrize("target", ["x86_64", "arm64", "cortex-m4", "cortex-m55"])
def test_int8_sample_on_target(target, tmp_path, summary):
    t = require_target(target)
    build_dir = str(tmp_path / "build")
    run([*SCONS, "-C", ROOT, "-Q", "-j2", f"target={target}", f"build_dir={build_dir}"],
        env=scons_env(), timeout=1200)
    out_dir = os.path.join(build_dir, target, "digits")
    images, labels = _images()
    ref = _megengine_logits(INT8, images)
    results = {}
    for app in ("digits_int8", "digits", "digits_int8_qdq"):
        proc = run(t.run_command(os.path.join(out_dir, app)), timeout=300)
        assert proc.stdout.startswith(f"{app}: model ")
        got_labels, preds, logits, correct = parse_digits(proc.stdout)
        assert got_labels == list(labels) and correct == sum(p == l for p, l in zip(preds, labels))
        results[app] = (correct, logits, _size(open(os.path.join(out_dir, f"{app}.size.txt")).read()))
    correct8, logits8, size8 = results["digits_int8"]
    correct32, _, size32 = results["digits"]
    correctq, logitsq, sizeq = results["digits_int8_qdq"]
    assert np.array_equal(logits8, ref), "int8 logits differ from MegEngine's"
    assert correct8 >= 95 and correct8 >= correct32 - 2
    # the ONNX QDQ app: the host's portable build of the same model bit for bit, and
    # onnxruntime's predictions (its fused int8 kernels)
    (host_q,) = compile_and_run(QDQ, {"data": images}).values()
    assert np.array_equal(np.asarray(logitsq, np.float32), host_q)
    ort_pred = _onnxruntime_logits(images).argmax(1)
    agree = int(np.sum(np.argmax(logitsq, 1) == ort_pred))
    assert agree >= 99 and correctq >= 95 and correctq >= correct32 - 2
    line = (f"digits sample on {target}: int8 {correct8}/100 (MegEngine), int8 QDQ "
            f"{correctq}/100 (top-1 = onnxruntime's on {agree}/100), fp32 {correct32}/100")
    if t.baremetal:
        (flash8, ram8), (flash32, ram32), (flashq, ramq) = size8, size32, sizeq
        line += (f"; flash int8 {flash8} B, int8 QDQ {flashq} B vs fp32 {flash32} B; RAM int8 "
                 f"{ram8} B, int8 QDQ {ramq} B vs fp32 {ram32} B")
        assert flash8 < flash32 and ram8 < ram32 and flashq < flash32 and ramq < ram32
    summary(line)
