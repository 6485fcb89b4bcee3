"""The command line as a user drives it: compile (both forms), run, inspect, and the
one-line errors for mistakes a user can make."""
import json
import re
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from reference import assert_close

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
SQUEEZENET = os.path.join(LIGHT, "light_squeezenet.onnx")
DIGITS = os.path.join(ROOT, "samples", "digits", "digits.mge")
BIN = os.path.dirname(sys.executable)


def megcc(*args, tool="megcc", cwd=None):
    return subprocess.run([os.path.join(BIN, tool), *args], capture_output=True, text=True,
                          cwd=cwd)


def test_compile_writes_the_fixed_file_set(tmp_path):
    out = tmp_path / "out"
    r = megcc("compile", SQUEEZENET, "-o", str(out), "--name", "squeeze")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ["kernels.c", "kernels.h", "manifest.json", "squeeze.tiny",
                                       "squeeze.tiny.c", "squeeze.tiny.txt"]
    manifest = json.loads((out / "manifest.json").read_text())
    plan = manifest["models"][0]["plans"][0]
    assert plan["inputs"] == [{"name": "data_0", "dtype": "float32", "shape": [1, 3, 224, 224]}]
    assert plan["arena_bytes"] >= plan["liveness_lower_bound_bytes"] > 0
    header = (out / "kernels.h").read_text()
    assert f"#define MEGCC_SQUEEZE_ARENA_SIZE {plan['arena_bytes']}u" in header
    assert "liveness lower bound" in r.stdout


def test_compile_is_deterministic(tmp_path):
    """Same model and options, different directories and hash seeds: identical bytes."""
    outs = []
    for k, seed in enumerate(("1", "2")):
        out = tmp_path / f"o{k}"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([os.path.join(BIN, "megcc"), "compile", SQUEEZENET, "-o", str(out)],
                           capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        outs.append({f: (out / f).read_bytes() for f in os.listdir(out)})
    assert outs[0] == outs[1]


def test_multi_shape_instances_share_one_kernel_set(tmp_path):
    out = tmp_path / "out"
    r = megcc("compile", SQUEEZENET, "-o", str(out), "--no-c-array",
              "--input-shapes", "data_0=(1,3,224,224):data_0=(1,3,112,112)")
    assert r.returncode == 0, r.stderr
    plans = json.loads((out / "manifest.json").read_text())["models"][0]["plans"]
    assert [p["inputs"][0]["shape"] for p in plans] == [[1, 3, 224, 224], [1, 3, 112, 112]]


def test_mgb_to_tinynn_json_config_bundles_models(tmp_path):
    config = {"dump_dir": "./dump/",
              "models": [{"model_name": "digits", "model_path": DIGITS,
                          "input_shape_str": "data=(1,1,8,8):data=(4,1,8,8)"},
                         {"model_name": "squeeze", "model_path": SQUEEZENET}]}
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(config))
    r = megcc(f"--json={cfg}", tool="mgb-to-tinynn")
    assert r.returncode == 0, r.stderr
    dump = tmp_path / "dump"
    manifest = json.loads((dump / "manifest.json").read_text())
    assert [m["name"] for m in manifest["models"]] == ["digits", "squeeze"]
    assert len(manifest["models"][0]["plans"]) == 2
    assert (dump / "digits.tiny").exists() and (dump / "squeeze.tiny").exists()
    assert not (dump / "digits.tiny.c").exists()  # only with --save-model
    r = megcc(DIGITS, str(tmp_path / "pos"), "--input-shapes=data=(1,1,8,8)", "--save-model",
              "--arm64", tool="mgb-to-tinynn")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "pos" / "digits.tiny.c").exists()


def test_run_writes_outputs_matching_onnxruntime(tmp_path):
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = megcc("run", SQUEEZENET, "--input", f"data_0={tmp_path / 'x.npy'}", "--output-dir",
              str(tmp_path / "res"), "--profile")
    assert r.returncode == 0, r.stderr
    ours = np.load(tmp_path / "res" / "outputs.npz")
    sess = ort.InferenceSession(SQUEEZENET, providers=["CPUExecutionProvider"])
    (ref,) = sess.run(None, {"data_0": x})
    assert_close(ours[sess.get_outputs()[0].name], ref)
    assert "conv2d_" in r.stdout  # the profile names kernels


def test_run_fills_missing_inputs_with_seeded_random_data(tmp_path):
    runs = []
    for k in range(2):
        r = megcc("run", DIGITS, "--output-dir", str(tmp_path / f"r{k}"), "--seed", "5")
        assert r.returncode == 0, r.stderr
        # it says what it compiles and what it feeds, before the (first: slow) build
        assert r.stdout.startswith("compiling digits.mge for ISA level "), r.stdout
        assert "input data: float32 [1, 1, 8, 8] (seeded, --seed 5)" in r.stdout
        runs.append(dict(np.load(tmp_path / f"r{k}" / "outputs.npz")))
    assert runs[0].keys() == runs[1].keys()
    for name in runs[0]:
        np.testing.assert_array_equal(runs[0][name], runs[1][name])


def test_inspect_prints_plan_and_draws_png(tmp_path):
    png = tmp_path / "plan.png"
    r = megcc("inspect", DIGITS, "--plot", str(png))
    assert r.returncode == 0, r.stderr
    assert "== instructions" in r.stdout and "liveness lower bound" in r.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inspect_draws_one_picture_per_shape_instance_without_numpy_noise(tmp_path):
    png = tmp_path / "plan.png"
    r = megcc("inspect", DIGITS, "--input-shapes", "data=(1,1,8,8):data=(4,1,8,8)",
              "--plot", str(png))
    assert r.returncode == 0, r.stderr
    pictures = [tmp_path / "plan.0.png", tmp_path / "plan.1.png"]
    assert sorted(tmp_path.iterdir()) == pictures
    assert pictures[0].read_bytes() != pictures[1].read_bytes()
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pictures)
    assert "subnormal" not in r.stderr and "Warning" not in r.stderr, r.stderr


@pytest.mark.parametrize("args,expected", [
    (["compile", "/nonexistent/model.onnx", "-o", "OUT"], "no such model file"),
    (["compile", "BADFILE", "-o", "OUT"], "not a valid ONNX model"),
    (["compile", SQUEEZENET, "-o", "OUT", "--input-shapes", "data_0=(1,3"], "bad input shape"),
    (["compile", SQUEEZENET, "-o", "OUT", "--input-shapes", "nope=(1,3,8,8)"],
     "not an input of the model"),
    (["compile", "UNSUPPORTED", "-o", "OUT"], "node 'weird': NoSuchOp"),
    (["compile", "--json", "BADJSON"], "not valid JSON"),
    (["compile", "--json", "BADFIELD"], "unknown field 'modelz'"),
    (["compile", SQUEEZENET, "--json", "BADFIELD"], "give either model files or --json CONFIG"),
    (["compile", SQUEEZENET, "-o", "OUT", "--input-shapes", "data_0=(1,3,8,8);data_0=(1,3,9,9)"],
     "given twice in one instance (';' separates inputs of one instance, ':' separates shape "
     "instances)"),
    (["run", DIGITS, "--input", "data=F64", "--output-dir", "OUT"],
     "--input 'data' is float64, the model takes float32 (save it with .astype(np.float32))"),
    (["validate", "NEWIR"], "onnxruntime " + ort.__version__ + " could not load the model: "
     "Unsupported model IR version: 99"),
])
def test_user_errors_are_one_line_and_leave_no_outputs(tmp_path, args, expected):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not protobuf\xff\xff")
    node = onnx.helper.make_node("NoSuchOp", ["x"], ["y"], name="weird")
    graph = onnx.helper.make_graph(
        [node], "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    unsupported = tmp_path / "unsupported.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)]),
              unsupported)
    np.save(tmp_path / "x64.npy", np.zeros((1, 1, 8, 8)))  # float64, the default
    relu = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    newer = onnx.helper.make_model(relu, opset_imports=[onnx.helper.make_opsetid("", 13)])
    newer.ir_version = 99
    onnx.save(newer, tmp_path / "newer.onnx")
    (tmp_path / "bad.json").write_text('{"models": [')
    (tmp_path / "field.json").write_text(json.dumps({"models": [{"modelz": 1}]}))
    out = tmp_path / "out"
    subst = {"OUT": str(out), "BADFILE": str(bad), "UNSUPPORTED": str(unsupported),
             "BADJSON": str(tmp_path / "bad.json"), "BADFIELD": str(tmp_path / "field.json"),
             "data=F64": f"data={tmp_path / 'x64.npy'}", "NEWIR": str(tmp_path / "newer.onnx")}
    r = megcc(*[subst.get(a, a) for a in args])
    assert r.returncode == 1
    assert r.stderr.startswith("megcc: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert expected in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists() or not os.listdir(out)


def test_inspect_shows_each_choice_with_the_rejected_implementations():
    """On AVX2 the first 3x3 conv of the digits model (one input channel) has five
    applicable implementations: inspect names the one chosen, every estimate, and why
    depthwise does not apply."""
    r = megcc("inspect", DIGITS, "--isa", "x86_64-v3")
    assert r.returncode == 0, r.stderr
    first = next(line for line in r.stdout.splitlines() if line.startswith("#0 "))
    assert "[conv." in first and "cost model [x86_64-v3]:" in first, first
    assert "avx2 direct, few channels" in first.split("rejected")[0], first
    assert "rejected avx2 packed GEMM" in first and "portable C ~" in first, first
    assert "avx2 Winograd F(4,3)" in first, first
    assert "not applicable: avx2 depthwise direct (not a depthwise conv" in first, first


@pytest.mark.parametrize("flag, expected, forbidden", [
    ("--arm64", "_neon64", ("_avx2",)), ("--armv7", "_neon", ("_neon64", "_avx2")),
    ("--baremetal", None, ("_neon", "_neon64", "_avx2")),
    ("--arm64v7", "_neon64", ("_avx2",))])  # both sets; tests/test_multi_arch.py runs them
def test_mgb_to_tinynn_target_flags_choose_the_kernels(tmp_path, flag, expected, forbidden):
    r = megcc(DIGITS, str(tmp_path / "out"), "--input-shapes=data=(1,1,8,8)", flag,
              tool="mgb-to-tinynn")
    assert r.returncode == 0, r.stderr
    kernels = json.loads((tmp_path / "out" / "manifest.json").read_text())["kernels"]
    if expected:  # the convolutions run the target's NEON kernels
        assert any(k.startswith("conv2d") and k.endswith(expected) for k in kernels), kernels
    assert not any(k.endswith(forbidden) for k in kernels), kernels


def test_mgb_to_tinynn_refuses_two_target_flags(tmp_path):
    r = megcc(DIGITS, str(tmp_path / "out"), "--arm64", "--armv7", tool="mgb-to-tinynn")
    assert r.returncode == 1
    assert r.stderr.strip() == "megcc: error: give one target flag, not --arm64 and --armv7"
