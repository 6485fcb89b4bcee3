"""MegCC's `--arm64v7`: one model file carrying an arm64 and an armv7 plan set, and one
kernels.c that compiles each architecture's NEON kernels on that architecture. The same
two files are built for both targets and run under qemu against MegEngine's own output;
and `megcc run` on a target (--target) or with kernels this machine cannot run."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from build_support import require_target
from megcc_builder.host import build_runner, emulator_of, run_blob_logged
from megcc_builder.validate import reference_outputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "samples", "digits", "digits.mge")
BIN = os.path.dirname(sys.executable)


def tool(name, *args):
    return subprocess.run([os.path.join(BIN, name), *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def dual(tmp_path_factory):
    out = tmp_path_factory.mktemp("arm64v7") / "out"
    r = tool("mgb-to-tinynn", DIGITS, str(out), "--arm64v7")
    assert r.returncode == 0, r.stderr
    return out


def digits_images(n=8):
    from sklearn.datasets import load_digits

    images = load_digits().images[:n].astype(np.float32) / 16.0
    return images.reshape(n, 1, 1, 8, 8)


def run_on(target, out, x, extra=()):
    runner = build_runner(str(out / "kernels.c"), target=target)
    return run_blob_logged(runner, str(out / "digits.tiny"), [x], extra_args=list(extra),
                           emulator=emulator_of(target))


def test_one_model_file_carries_a_plan_set_per_architecture(dual):
    manifest = json.loads((dual / "manifest.json").read_text())
    assert manifest["isa"] == ["arm64-neon", "armv7-neon"]
    plans = manifest["models"][0]["plans"]
    assert [p["arch"] for p in plans] == ["arm64", "armv7"]
    kernels = manifest["kernels"]
    assert any(k.endswith("_neon64") for k in kernels), kernels  # arm64's own
    assert any(k.startswith("conv2d_gemm6x8") and k.endswith("_neon") for k in kernels), \
        kernels  # armv7's 6x8 micro-kernel tile


@pytest.mark.parametrize("target", ["arm64", "armv7"])
def test_the_same_files_run_the_architectures_own_kernels(dual, target):
    require_target(target)
    for x in digits_images(3):
        outs, log = run_on(target, dual, x, ["--profile"])
        (ref,) = reference_outputs(DIGITS, {"data": x})
        np.testing.assert_allclose(outs[0], ref, rtol=1e-4, atol=1e-4)
    ran = [line.split()[2] for line in log.splitlines() if line.startswith("profile")]
    convs = [k for k in ran if k.startswith("conv2d")]
    assert convs, ran
    if target == "arm64":
        # (the direct few-channel conv of the first layer uses the vocabulary both Arm
        # levels share, so its name ends in _neon on arm64 too; the GEMM convs are arm64's)
        assert any(k.endswith("_neon64") for k in convs), ran
        assert all(k.endswith("_neon64") or k.startswith("conv2d_direct_c") and
                   k.endswith("_neon") for k in convs), ran
    else:  # armv7 cannot run a single AArch64 kernel: it would not have compiled
        assert all(k.endswith("_neon") for k in convs), ran


def test_a_plan_of_the_other_architecture_is_refused_by_name(dual):
    require_target("arm64")
    with pytest.raises(RuntimeError, match="plan 1 was compiled for another architecture"):
        run_on("arm64", dual, digits_images(1)[0], ["-p", "1"])


def test_kernels_c_refuses_other_architectures_at_compile_time(dual, tmp_path):
    r = subprocess.run(["cc", "-std=c99", "-I", os.path.join(ROOT, "runtime", "include"), "-c",
                        str(dual / "kernels.c"), "-o", str(tmp_path / "k.o")],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "this kernels.c was generated for aarch64 and armv7 only" in r.stderr


def test_multi_architecture_build_is_deterministic(dual, tmp_path):
    again = tmp_path / "again"
    assert tool("mgb-to-tinynn", DIGITS, str(again), "--arm64v7").returncode == 0
    for name in ("kernels.c", "kernels.h", "digits.tiny", "manifest.json"):
        assert (again / name).read_bytes() == (dual / name).read_bytes(), name


def test_megcc_run_on_a_target_under_its_emulator(tmp_path):
    """Under qemu-aarch64 with the runtime's thread pool: 1 and 2 threads give the same
    bytes, and MegEngine's answer."""
    require_target("arm64")
    x = digits_images(1)[0]
    np.save(tmp_path / "x.npy", x)
    outs = []
    for threads in ("1", "2"):
        r = tool("megcc", "run", DIGITS, "--target", "arm64", "--input",
                 f"data={tmp_path}/x.npy", "--output-dir", str(tmp_path / threads),
                 "--threads", threads)
        assert r.returncode == 0, r.stderr
        assert "running under arm64's emulator" in r.stdout
        got = np.load(tmp_path / threads / "outputs.npz")
        outs.append(got[got.files[0]])
    (ref,) = reference_outputs(DIGITS, {"data": x})
    np.testing.assert_allclose(outs[1], ref, rtol=1e-4, atol=1e-4)
    assert outs[0].tobytes() == outs[1].tobytes()


def test_megcc_run_of_a_compiled_directory_on_a_target(dual, tmp_path):
    require_target("armv7")
    x = digits_images(2)[1]
    np.save(tmp_path / "x.npy", x)
    r = tool("megcc", "run", str(dual), "--target", "armv7", "--input",
             f"data={tmp_path}/x.npy", "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    (ref,) = reference_outputs(DIGITS, {"data": x})
    got = np.load(tmp_path / "o" / "outputs.npz")
    np.testing.assert_allclose(got[got.files[0]], ref, rtol=1e-4, atol=1e-4)


def test_megcc_run_refuses_kernels_this_machine_cannot_run(dual, tmp_path):
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the case is an x86-64 build machine")  # (CI runs on x86-64)
    r = tool("megcc", "run", DIGITS, "--isa", "arm64-neon", "--output-dir", str(tmp_path / "a"))
    assert r.returncode == 1
    assert r.stderr.strip() == (
        "megcc: error: cannot run --isa arm64-neon here: ISA level arm64-neon builds kernels "
        "for aarch64; this machine is x86_64; add --target arm64 to run under its emulator")
    r = tool("megcc", "run", str(dual), "--output-dir", str(tmp_path / "b"))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "add --target arm64" in r.stderr, r.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_megcc_run_on_a_bare_metal_board_under_qemu_system(tmp_path):
    """A Cortex-M4 board: the runner reads the model and arrays by semihosting."""
    require_target("cortex-m4")
    x = digits_images(3)[2]
    np.save(tmp_path / "x.npy", x)
    r = tool("megcc", "run", DIGITS, "--target", "cortex-m4", "--input",
             f"data={tmp_path}/x.npy", "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert "for ISA level cortex-m-dsp" in r.stdout and "cortex-m4's emulator" in r.stdout
    (ref,) = reference_outputs(DIGITS, {"data": x})
    got = np.load(tmp_path / "o" / "outputs.npz")
    np.testing.assert_allclose(got[got.files[0]], ref, rtol=1e-4, atol=1e-4)


def test_in_process_session_runs_this_machines_plans_of_a_multi_architecture_model(tmp_path):
    """On this x86-64 machine: a model compiled for arm64 and x86-64 (plan 0 arm64's) runs
    in-process and through `megcc run DIR` on its x86-64 plan, never the foreign one."""
    import platform

    from megcc_builder.compiler import ModelSpec, compile_bundle
    from megcc_builder.session import InferenceSession

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the case is an x86-64 build machine")  # (CI runs on x86-64)
    out = tmp_path / "dual"
    bundle = compile_bundle([ModelSpec("digits", DIGITS)], str(out),
                            isa=["arm64-neon", "x86_64-v3"])
    assert [p.arch for p in bundle.models[0].plans] == [2, 1]
    x = digits_images(4)[3]
    (ref,) = reference_outputs(DIGITS, {"data": x})
    with InferenceSession(str(out)) as sess:
        (got,) = sess.run(None, {"data": x})
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    np.save(tmp_path / "x.npy", x)
    r = tool("megcc", "run", str(out), "--input", f"data={tmp_path}/x.npy", "--output-dir",
             str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    res = np.load(tmp_path / "o" / "outputs.npz")
    np.testing.assert_allclose(res[res.files[0]], ref, rtol=1e-4, atol=1e-4)
