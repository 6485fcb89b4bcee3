"""Shared helpers of the build-integration tests (SCons, CMake, cross targets).

Missing tools: locally a test for a target whose compiler or emulator is not installed is
skipped with the apt packages to install; in CI (CI=true) it fails instead, so a broken
setup can never pass as "skipped".
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
import pytest

from megcc_builder import targets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
SCONS = [PYTHON, "-m", "SCons"]
TOL = 1e-4  # |a - b| / max(1, |ref|), DESIGN.md's float32 default


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(what: str, missing: Sequence[str], packages: Sequence[str] = ()) -> None:
    if not missing:
        return
    msg = f"{what} needs {', '.join(missing)}" + (
        f" (apt packages: {' '.join(packages)}; scripts/setup.sh installs them)"
        if packages else "")
    if in_ci():
        pytest.fail(msg)
    pytest.skip(msg)


def require_target(name: str) -> targets.Target:
    t = targets.load(name)
    require(f"target {name}", t.missing_tools(), t.packages)
    return t


def require_tools(*tools: str) -> None:
    require("this test", [t for t in tools if shutil.which(t) is None])


def run(cmd: Sequence[str], cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None,
        check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-8000:]}")
    return proc


def scons_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(PYTHON) + os.pathsep + env.get("PATH", "")
    return env


def max_rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    ours = np.asarray(ours, np.float64)
    ref = np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return float(np.max(np.abs(ours - ref) / np.maximum(1.0, np.abs(ref)))) if ref.size else 0.0


def hex_floats(words: Sequence[str]) -> np.ndarray:
    return np.array([int(w, 16) for w in words], dtype=np.uint32).view(np.float32)


def parse_digits(stdout: str):
    """(labels, predictions, logits[100, 10], correct) from the digits app's output."""
    labels, preds, logits, correct = [], [], [], None
    for line in stdout.splitlines():
        parts = line.split()
        if line.startswith("image "):
            labels.append(int(parts[3]))
            preds.append(int(parts[5]))
            logits.append(hex_floats(parts[7:17]))
        elif line.startswith("accuracy:"):
            correct = int(parts[1].split("/")[0])
    return labels, preds, np.array(logits), correct


def parse_classify(stdout: str):
    """(top-5 classes, all outputs) from `classify --hex` output."""
    top = [int(line.split()[2]) for line in stdout.splitlines() if line.startswith("top")]
    outs = [line.split()[2] for line in stdout.splitlines() if line.startswith("out ")]
    return top, hex_floats(outs)


def synthetic_image(n: int) -> np.ndarray:
    """The classify app's built-in input (samples/classify/main.c), bit for bit."""
    out = np.empty(n, np.float32)
    state = 12345
    for i in range(n):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = np.float32((state >> 8) & 0xFFFF) / np.float32(32768.0) - np.float32(1.0)
    return out


def conv_onnx(path: str, seed: int, channels: int = 4, external: bool = False) -> None:
    """A small Conv-Relu-GlobalAveragePool-Gemm ONNX model for build tests; `seed` changes
    only the weights (same graph, same kernels); external=True stores the weights in
    `<path>.data` (ONNX external data)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.RandomState(seed)
    w = numpy_helper.from_array(rng.randn(channels, 1, 3, 3).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.randn(channels).astype(np.float32), "b")
    fc = numpy_helper.from_array(rng.randn(channels, 3).astype(np.float32), "fc")
    nodes = [helper.make_node("Conv", ["data", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "fc"], ["out"])]
    graph = helper.make_graph(
        nodes, "buildtest", [helper.make_tensor_value_info("data", TensorProto.FLOAT,
                                                           [1, 1, 6, 6])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3])], [w, b, fc])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if external:
        data = path + ".data"
        if os.path.exists(data):
            os.unlink(data)  # onnx refuses to overwrite it
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=os.path.basename(path) + ".data", size_threshold=0)
    else:
        onnx.save_model(model, path)


def snapshot(root: str) -> Dict[str, float]:
    """mtime_ns of every file under root (relative paths)."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = os.stat(p).st_mtime_ns
    return out


def changed(before: Dict[str, float], after: Dict[str, float]) -> List[str]:
    return sorted(p for p in after if before.get(p) != after[p])
