"""`megcc bench` as a user runs it on a MegEngine model: every engine asked for gets a row
(its time, or why it did not run), MegEngine's own native logs never reach the terminal."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "samples", "digits", "digits.mge")
BIN = os.path.dirname(sys.executable)


def bench(*args):
    return subprocess.run([os.path.join(BIN, "megcc"), "bench", *args], capture_output=True,
                          text=True, timeout=600)


def test_bench_mge_default_compare_gives_every_row_and_no_backtrace():
    r = bench(DIGITS, "-n", "3", "--warmup", "1")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[2:]}
    assert set(rows) == {"megcc", "onnxruntime", "megengine-lite"}
    assert "not run: a MegEngine model" in rows["onnxruntime"]
    # MegEngine refuses its NCHW88 transform on this model; the plain layout runs
    assert "weight_preprocess" in rows["megengine-lite"] and float(rows["megengine-lite"].split()[1]) > 0
    assert "backtrace" not in r.stderr and "libmegengine" not in r.stderr, r.stderr[-2000:]


def test_bench_mge_compare_onnxruntime_says_why_it_did_not_run():
    r = bench(DIGITS, "-n", "2", "--warmup", "0", "--compare", "onnxruntime")
    assert r.returncode == 0, r.stderr
    assert "onnxruntime" in r.stdout and "not run" in r.stdout


def test_bench_onnx_model_onnxruntime_cannot_load_gets_a_row_saying_why(tmp_path):
    """A model with a newer IR version than the installed onnxruntime reads: our row is
    timed, onnxruntime's says why it did not run (was: "internal error")."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 99
    onnx.save(model, tmp_path / "newer.onnx")
    r = bench(str(tmp_path / "newer.onnx"), "-n", "2", "--warmup", "0", "--compare",
              "onnxruntime")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[2:]}
    assert float(rows["megcc"].split()[1]) >= 0
    assert (f"failed: onnxruntime {ort.__version__} could not load the model: Unsupported "
            "model IR version: 99") in rows["onnxruntime"], rows


def test_bench_int8_input_model_feeds_onnxruntime_its_own_dtype(tmp_path):
    """A quantized model whose input is int8 codes: both engines are timed on int8 feeds
    (onnxruntime refused the float32 feeds every model used to get: "Unexpected input data
    type")."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 8, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])],
        [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
         numpy_helper.from_array(np.array(3, np.int8), "z")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "dq.onnx")
    r = bench(str(tmp_path / "dq.onnx"), "-n", "2", "--warmup", "0", "--compare",
              "onnxruntime")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[2:]}
    assert "failed" not in rows["onnxruntime"] and "not run" not in rows["onnxruntime"], rows
    assert float(rows["onnxruntime"].split()[2]) > 0, rows  # its min ms: it really ran
