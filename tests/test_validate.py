"""`megcc validate`: our compiled model against the model's own framework, as a user runs it
before shipping; and the comparison figures it prints, checked against their definitions."""
import math
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

from build_support import conv_onnx, require_target
from megcc_builder.validate import compare_output

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "samples", "digits", "digits.mge")
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
SHUFFLENET = os.path.join(LIGHT, "light_shufflenet.onnx")


def validate(*args):
    return subprocess.run([sys.executable, "-m", "megcc_builder.cli", "validate", *args],
                          capture_output=True, text=True)


def rows(stdout: str):
    """output name -> the table row's fields."""
    lines = stdout.splitlines()
    assert lines[0].split()[:2] == ["output", "shape"], stdout
    return {line.split()[0]: line.split() for line in lines[1:] if line and
            not line.startswith(("/", "megcc"))}


# ---------------------------------------------------------------- the figures themselves
def test_identical_outputs_have_no_error_and_full_agreement():
    x = np.random.default_rng(0).standard_normal((3, 10)).astype(np.float32)
    r = compare_output("y", x, x.copy())
    assert (r.max_abs, r.max_normalised, r.top1) == (0.0, 0.0, 1.0)
    assert r.cosine == pytest.approx(1.0, abs=1e-12)
    assert r.passes(0.0)


def test_figures_follow_their_definitions():
    ref = np.array([[0.0, 4.0, -2.0], [1.0, 0.5, 0.25]], dtype=np.float32)
    ours = np.array([[0.5, 4.0, -2.0], [1.0, 3.0, 0.25]], dtype=np.float32)
    r = compare_output("y", ours, ref)
    assert r.max_abs == pytest.approx(2.5)
    # |3 - 0.5| / max(1, 0.5) = 2.5 beats |0.5 - 0| / max(1, 0) = 0.5
    assert r.max_normalised == pytest.approx(2.5)
    a, b = ours.ravel().astype(np.float64), ref.ravel().astype(np.float64)
    assert r.cosine == pytest.approx(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert r.top1 == 0.5  # row 0 agrees (index 1), row 1 does not (1 vs 0)
    assert not r.passes(1.0) and r.passes(2.5)


def test_orthogonal_outputs_have_zero_cosine():
    r = compare_output("y", np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert r.cosine == pytest.approx(0.0)


def test_shape_or_nan_mismatch_fails_whatever_the_tolerance():
    assert not compare_output("y", np.zeros((2, 3)), np.zeros((3, 2))).passes(math.inf)
    r = compare_output("y", np.array([np.nan, 1.0]), np.array([0.0, 1.0]))
    assert r.max_normalised == math.inf and not r.passes(1e9)
    both = compare_output("y", np.array([np.nan, np.inf]), np.array([np.nan, np.inf]))
    assert both.passes(0.0)


# ---------------------------------------------------------------- the command
def test_mge_model_matches_megengine():
    r = validate(DIGITS)
    assert r.returncode == 0, r.stderr
    row = rows(r.stdout)["fc.ADD"]
    assert row[1] == "1x10" and row[-1] == "ok"
    assert float(row[3]) <= 1e-4 and float(row[4]) > 0.9999
    assert "all 1 outputs within 0.0001" in r.stdout


def test_onnx_model_matches_onnxruntime_with_given_input(tmp_path):
    model = str(tmp_path / "conv.onnx")
    conv_onnx(model, seed=5)
    inputs = {i.name: i for i in onnx.load(model).graph.input}
    (name, info), = inputs.items()
    shape = [d.dim_value for d in info.type.tensor_type.shape.dim]
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = validate(model, "--input", f"{name}={tmp_path / 'x.npy'}")
    assert r.returncode == 0, r.stderr
    assert all(row[-1] == "ok" for row in rows(r.stdout).values())


def test_real_model_on_arm64_under_its_emulator():
    require_target("arm64")
    r = validate(SHUFFLENET, "--target", "arm64", "--seed", "3")
    assert r.returncode == 0, r.stderr
    (row,) = rows(r.stdout).values()
    assert row[1] == "1x1000" and row[5] == "100.0%" and row[-1] == "ok"


def test_error_above_the_tolerance_exits_non_zero():
    # every normalised error is >= 0, so a negative tolerance must fail every output
    r = validate(DIGITS, "--tolerance", "-1")
    assert r.returncode == 1
    assert rows(r.stdout)["fc.ADD"][-3:] == ["FAIL", "(>", "-1)"]
    assert r.stderr.strip().splitlines() == [
        f"megcc: error: {DIGITS}: output 'fc.ADD' differs from the reference beyond "
        "--tolerance -1"]


@pytest.mark.parametrize("case", ["float64", "unknown_name", "bad_extension", "missing",
                                  "bad_target"])
def test_user_mistakes_give_one_line(tmp_path, case):
    x = np.zeros((1, 1, 8, 8))
    np.save(tmp_path / "x64.npy", x)
    np.save(tmp_path / "x32.npy", x.astype(np.float32))
    args, expect = {
        "float64": ([DIGITS, "--input", f"data={tmp_path / 'x64.npy'}"],
                    "input 'data' is float64, the model takes float32"),
        "unknown_name": ([DIGITS, "--input", f"nope={tmp_path / 'x32.npy'}"],
                         "names 'nope', but the model's inputs are ['data']"),
        "bad_extension": ([str(tmp_path / "x32.npy")], "validate takes an .onnx or .mge model"),
        "missing": ([str(tmp_path / "none.onnx")], "no such model file"),
        "bad_target": ([DIGITS, "--target", "arm65"], "unknown target 'arm65'"),
    }[case]
    r = validate(*args)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], r.stderr
    assert "Traceback" not in r.stderr
