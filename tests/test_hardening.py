"""Hardening found by probing (issue 17): hostile configs and names, deep graphs, kills
while writing outputs, non-SSA graphs and exact messages for confusing inputs.

Every case drives the real CLI (`python -m megcc_builder.cli`, from this checkout) or the
function a finding was in, and asserts what the issue asks: refused quickly with one short
line, compiled, or left a consistent output set."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "fuzz"))
import make_seeds  # noqa: E402  (small real models)

ENV = dict(os.environ, PYTHONPATH=ROOT)


def megcc(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, "-m", "megcc_builder.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env or ENV)


def one_error_line(r, limit=300):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr[-2000:]
    assert lines[0].startswith("megcc: error: ") and "Traceback" not in r.stderr
    assert len(lines[0]) <= limit, lines[0][:500]
    return lines[0]


@pytest.fixture(scope="module")
def good_onnx(tmp_path_factory):
    d = tmp_path_factory.mktemp("good")
    path = d / "good.onnx"
    onnx.save(make_seeds.cnn(), str(path))
    return path


# ----------------------------------------------------------------------------- configs

ALIAS_BOMB = "models:\n  - model_name: m\n    model_path: good.onnx\n    enable_nchw44_dot: [" + \
    ", ".join(["&a0 [x, x, x, x, x, x, x, x, x]"] +
              [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]) + "]\n"


def test_alias_bomb_config_is_refused_fast(tmp_path, good_onnx):
    """700 bytes of nested aliases inside a model option: expanded by the error message
    (1.9 GB after 60 s, SIGTERM ignored). Timed in a child so a regression cannot hang."""
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text(ALIAS_BOMB)
    os.link(good_onnx, tmp_path / "good.onnx")
    assert len(ALIAS_BOMB) < 800
    probe = ("import sys, time\nfrom megcc_builder.config import load_config\n"
             "from megcc_builder.ir import CompileError\nt0 = time.perf_counter()\n"
             "try:\n    load_config(sys.argv[1])\nexcept CompileError as e:\n"
             "    print(f'{time.perf_counter() - t0:.3f} {e.one_line()}')\n")
    try:
        r = subprocess.run([sys.executable, "-c", probe, str(cfg)], capture_output=True,
                           text=True, timeout=30, env=ENV)
    except subprocess.TimeoutExpired:
        pytest.fail("load_config did not refuse the alias bomb within 30 s")
    secs, msg = r.stdout.split(" ", 1)
    assert float(secs) < 1.0, r.stdout
    assert "YAML aliases are not supported" in msg and "line 4" in msg, msg
    line = one_error_line(megcc("compile", "--json", cfg, "-o", tmp_path / "out", timeout=60))
    assert "bomb.yaml" in line and "aliases" in line


@pytest.mark.parametrize("value", ["y" * (1 << 20), list(range(100000)),
                                   {"k" * 1000: "v" * 100000}])
def test_bad_option_values_are_quoted_short(tmp_path, good_onnx, value):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"models": [{"model_name": "m", "model_path": str(good_onnx),
                                           "enable_nchw44": value}]}))
    line = one_error_line(megcc("compile", "--json", cfg, "-o", tmp_path / "out"))
    assert "option 'enable_nchw44' must be true or false" in line


def _good_build(out, good_onnx):
    r = megcc("compile", good_onnx, "-o", out, "--name", "prev")
    assert r.returncode == 0, r.stderr
    return {f: (out / f).read_bytes() for f in os.listdir(out)}


@pytest.mark.parametrize("where", ["config", "flag"])
def test_over_long_model_name_is_refused_and_previous_outputs_stay(tmp_path, good_onnx, where):
    """A 1 MB name in the config / a 100 KB --name: the rename failed after kernels.c had
    been replaced, and the error line was as long as the name."""
    out = tmp_path / "out"
    before = _good_build(out, good_onnx)
    if where == "config":
        cfg = tmp_path / "long.json"
        cfg.write_text(json.dumps({"models": [{"model_name": "n" * (1 << 20),
                                               "model_path": str(good_onnx)}]}))
        r = megcc("compile", "--json", cfg, "-o", out)
    else:
        r = megcc("compile", good_onnx, "-o", out, "--name", "n" * 100000)
    line = one_error_line(r)
    assert "at most 128" in line
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before


def test_longest_allowed_name_compiles(tmp_path, good_onnx):
    out = tmp_path / "out"
    r = megcc("compile", good_onnx, "-o", out, "--name", "n" * 128)
    assert r.returncode == 0, r.stderr
    assert ("n" * 128 + ".tiny.txt") in os.listdir(out)
