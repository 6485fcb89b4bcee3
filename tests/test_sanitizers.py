"""The host end-to-end tests with the runtime, kernels and runner built with AddressSanitizer
+ UBSan (MEGCC_SANITIZE=1, megcc_builder/host.py), and the runner and the misuse program
under valgrind memcheck (MEGCC_VALGRIND=1): zero reports.

CI runs a representative subset (SUBSET below) to stay within its time budget; the whole
suite runs the same way with
`MEGCC_SANITIZE=1 pytest tests/kernels tests/test_kernels_*.py tests/test_models_mge.py ...`.
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tool_support import need_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
sys.path.insert(0, os.path.join(ROOT, "fuzz"))
import make_seeds  # noqa: E402

# Every kernel family that indexes with params or runtime values (conv/pool/gemm/matmul,
# gather/slice/pad, resize/norms, reductions), and the digits model end to end. One pytest
# process: the batched cases share compiles.
# The kernel cases (tests/kernels/) on the host: portable C and the AVX2 implementations.
SUBSET = ["tests/kernels/conv", "tests/kernels/matmul", "tests/kernels/pool",
          "tests/kernels/data", "tests/kernels/norm", "tests/kernels/reduce",
          "tests/test_models_mge.py::test_digits_sample_model_classifies_real_images"]
SUBSET_K = ("(conv or gemm or matmul or pool or gather or slice or pad or resize or instance "
            "or argmax or softmax or digits) and not arm64 and not armv7 and not cost_model "
            "and not kernel_names")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    d = tmp_path_factory.mktemp("seeds")
    blobs = make_seeds.build(str(d), digits=False)
    return d, blobs


def _symbols(path):
    return subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout


def test_sanitize_env_really_instruments_the_runner(seeds, monkeypatch):
    """MEGCC_SANITIZE must not silently build an uninstrumented runner."""
    need_tool("gcc")
    from megcc_builder.host import build_runner

    d, _ = seeds
    monkeypatch.setenv("MEGCC_SANITIZE", "1")
    syms = _symbols(build_runner(str(d / "kernels.c")))
    assert "__asan_report" in syms and "__ubsan_handle" in syms
    monkeypatch.delenv("MEGCC_SANITIZE")
    assert "__asan_report" not in _symbols(build_runner(str(d / "kernels.c")))


def test_host_suite_subset_under_asan_ubsan(summary):
    need_tool("gcc")
    env = dict(os.environ, MEGCC_SANITIZE="1")
    env.pop("PYTEST_XDIST_WORKER", None)
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
            "-x"]
    r = subprocess.run(base + SUBSET + ["-k", SUBSET_K], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
    tail = r.stdout[-3000:] + r.stderr[-2000:]
    assert r.returncode == 0, tail
    last = r.stdout.strip().splitlines()[-1]
    assert " passed" in last and "failed" not in last and "skipped" not in last, tail
    n_passed = int(re.search(r"(\d+) passed", last).group(1))
    assert n_passed >= 250, tail
    summary(f"ASan+UBSan host subset: {n_passed} tests passed, no sanitizer report")


def test_runner_under_valgrind_memcheck(seeds, monkeypatch, tmp_path):
    """Every seed model through the host runner under memcheck (leaks included)."""
    need_tool("valgrind")
    need_tool("gcc")
    from megcc_builder import host
    from megcc_builder.emit.model_blob import read_model
    from megcc_builder.host import build_runner, run_blob
    from megcc_builder.ir.dtypes import numpy_dtype

    d, blobs = seeds
    # one (normally empty) log per valgrind process: proof that the runs went through it
    monkeypatch.setattr(host, "VALGRIND_CMD",
                        host.VALGRIND_CMD + [f"--log-file={tmp_path}/vg.%p.log"])
    n_runs = 0
    runner = build_runner(str(d / "kernels.c"))
    monkeypatch.setenv("MEGCC_VALGRIND", "1")
    vg_runner = build_runner(str(d / "kernels.c"))
    rng = np.random.default_rng(0)
    for blob in blobs:
        info = read_model(open(blob, "rb").read())
        for pi, plan in enumerate(info["plans"]):
            ins = []
            for ti in plan["inputs"]:
                t = plan["tensors"][ti]
                dt = numpy_dtype(t["dtype"])
                ins.append(rng.standard_normal(t["shape"]).astype(dt) if dt.kind == "f"
                           else np.zeros(t["shape"], dt))
            got = run_blob(vg_runner, blob, ins, plan=pi)  # raises on any memcheck report
            monkeypatch.delenv("MEGCC_VALGRIND")
            want = run_blob(runner, blob, ins, plan=pi)
            monkeypatch.setenv("MEGCC_VALGRIND", "1")
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
            n_runs += 1
    assert n_runs >= 6  # every seed model, both plans of the two-plan one
    logs = list(tmp_path.glob("vg.*.log"))
    assert len(logs) == n_runs and not any(p.read_text() for p in logs)


def test_misuse_program_under_valgrind_memcheck(tmp_path):
    """The runtime misuse/threads program (tests/runtime/misuse_test.c), uninstrumented,
    under memcheck: no invalid access, uninitialised use or leak in any error path."""
    need_tool("valgrind")
    need_tool("gcc")
    from megcc_builder.compiler import ModelSpec, compile_bundle
    from test_runtime_misuse import build_misuse_test

    make_seeds.build(str(tmp_path), digits=False)
    other = compile_bundle([ModelSpec("other", str(tmp_path / "src" / "eltwise.onnx"))],
                           str(tmp_path / "other"), save_c_array=False)
    exe = build_misuse_test(tmp_path, "gcc", ["-g", "-O1"], "misuse_plain")
    seeds_dir = tmp_path / "seeds"
    r = subprocess.run(["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                        "--errors-for-leak-kinds=definite,indirect", exe,
                        str(seeds_dir / "cnn.tiny"), str(seeds_dir / "eltwise.tiny"),
                        str(seeds_dir / "movement.tiny"), other.files["other.tiny"]],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
