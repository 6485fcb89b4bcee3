"""`megcc package`: the archive unpacks and builds with CMake and a C compiler alone (any
Python on PATH is a trap that fails the build), and the program it builds computes what
MegEngine computes; the archive is deterministic."""
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from build_support import ROOT, require_target, require_tools
from megcc_builder.validate import reference_outputs

DIGITS = os.path.join(ROOT, "samples", "digits", "digits.mge")


def megcc(*args):
    return subprocess.run([sys.executable, "-m", "megcc_builder.cli", *args],
                          capture_output=True, text=True)


def no_python_env(tmp_path):
    """PATH with `python` and `python3` that fail loudly, ahead of everything else."""
    trap = tmp_path / "trap"
    trap.mkdir(exist_ok=True)
    for name in ("python", "python3"):
        (trap / name).write_text("#!/bin/sh\necho 'python was called' >&2\nexit 99\n")
        (trap / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{trap}:/usr/local/bin:/usr/bin:/bin"
    return env


def build_package(tmp_path, target, *options):
    archive = tmp_path / f"digits-{target}.tar.gz"
    r = megcc("package", DIGITS, "--target", target, "-o", str(archive), *options)
    assert r.returncode == 0, r.stderr
    unpacked = tmp_path / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked)
    (top,) = os.listdir(unpacked)
    assert top == f"megcc-digits-{target}"
    files = [os.path.join(d, f) for d, _, fs in os.walk(unpacked / top) for f in fs]
    assert not [f for f in files if f.endswith(".py")]
    build = subprocess.run(["sh", str(unpacked / top / "build.sh")], capture_output=True,
                           text=True, env=no_python_env(tmp_path))
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return unpacked / top, archive


@pytest.mark.parametrize("target", ["x86_64", "arm64"])
def test_package_builds_without_python_and_matches_megengine(tmp_path, target):
    require_tools("cmake")
    t = require_target(target)
    top, _ = build_package(tmp_path, target)
    x = np.random.default_rng(7).uniform(-1, 1, (1, 1, 8, 8)).astype(np.float32)
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    x.tofile(tmp_path / "in" / "input_0.bin")
    run = subprocess.run([*t.emulator(), str(top / "build" / "megcc_runner"),
                          str(top / "model" / "digits.tiny"), str(tmp_path / "in"),
                          str(tmp_path / "out")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    ours = np.fromfile(tmp_path / "out" / "output_0.bin", dtype="<f4")
    (ref,) = reference_outputs(DIGITS, {"data": x})
    err = np.abs(ours - ref.ravel()) / np.maximum(1.0, np.abs(ref.ravel()))
    assert err.max() <= 1e-4
    # the model is embedded in the library too (for targets without a file system)
    nm = t.cc[:-3] + "nm" if t.cc.endswith("gcc") else "nm"
    symbols = subprocess.run([nm, str(top / "build" / "libmegcc_digits.a")],
                             capture_output=True, text=True, check=True).stdout
    assert " R megcc_model_digits\n" in symbols and " R megcc_model_digits_size\n" in symbols


def test_bare_metal_package_builds_the_library_with_cv_operators(tmp_path):
    require_tools("cmake")
    t = require_target("cortex-m4")
    top, _ = build_package(tmp_path, "cortex-m4", "--cv", "resize_linear:ui8;flip:ui8")
    assert not (top / "build" / "megcc_runner").exists()
    assert "void tinycv_resize_linear_ui8(" in (top / "model" / "tinycv_c.h").read_text()
    symbols = subprocess.run([t.cc[:-3] + "nm", str(top / "build" / "libmegcc_digits.a")],
                             capture_output=True, text=True, check=True).stdout
    assert " T tinycv_resize_linear_ui8\n" in symbols and " T tinycv_flip_ui8\n" in symbols


def test_package_is_deterministic(tmp_path):
    archives = []
    for k in range(2):
        archive = tmp_path / f"p{k}" / "digits.tar.gz"
        r = megcc("package", DIGITS, "--target", "arm64", "-o", str(archive))
        assert r.returncode == 0, r.stderr
        archives.append(archive.read_bytes())
    assert archives[0] == archives[1]


@pytest.mark.parametrize("args, message", [
    (["--target", "arm64", "-o", "x.zip"], "the package is a .tar.gz archive"),
    (["--target", "arm65", "-o", "x.tar.gz"], "unknown target 'arm65'"),
])
def test_package_mistakes_are_one_line(tmp_path, args, message):
    r = megcc("package", DIGITS, *[str(tmp_path / a) if a.startswith("x.") else a
                                   for a in args])
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())
