"""The installed package, not the checkout: build the wheel, install it (not editable) into a
fresh virtual environment, and from a directory outside the repository, with the repository
on no path, compile and run a model with `megcc`, run one through the ONNX backend, and
build and run the digits sample with the installed SCons tool and CMake package (found with
`megcc --scons-toolpath` and `megcc --cmake-dir`). Oracles: onnxruntime and MegEngine.

The fresh environment gets the compiler's dependencies (numpy, onnx, MegEngine, SCons, ...)
from the environment running this test through a .pth file instead of a download: the test
needs no network, and what it proves is that megcc-builder itself ships everything it needs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

import mge_zoo
from build_support import (ROOT, TOL, conv_onnx, max_rel_err, parse_digits, require_target,
                           require_tools, run)

# What a source distribution holds (MANIFEST.in): the wheel is built from a copy of exactly
# this, so neither a stale build/ nor untracked files of the checkout can leak in.
PROJECT_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "megcc_builder", "runtime",
                 "toolchains", "cmake", "site_scons")
DIGITS_FILES = ("main.c", "gen_images.py", "digits.mge", "digits_test.npz")
DIGITS_SHAPE = "data=(1,1,8,8)"


class Installation:
    """A virtual environment with the wheel installed, and a way to run commands in it."""

    def __init__(self, venv: str, work: str, env: dict):
        self.venv, self.work, self.env = venv, work, env
        self.python = os.path.join(venv, "bin", "python")
        self.megcc = os.path.join(venv, "bin", "megcc")

    def run(self, cmd, cwd=None, check=True) -> subprocess.CompletedProcess:
        return run(cmd, cwd=cwd or self.work, env=self.env, check=check, timeout=300)

    def fact(self, flag: str) -> str:
        return self.run([self.megcc, flag]).stdout.strip()


def _copy_project(dest: str) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".sconsign.dblite")
    for name in PROJECT_FILES:
        src = os.path.join(ROOT, name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dest, name), ignore=ignore)
        else:
            shutil.copy2(src, os.path.join(dest, name))


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installation:
    tmp = str(tmp_path_factory.mktemp("install"))
    assert not os.path.realpath(tmp).startswith(os.path.realpath(ROOT) + os.sep)
    src, wheels, venv, work = (os.path.join(tmp, d) for d in ("src", "wheels", "venv", "work"))
    os.makedirs(src)
    os.makedirs(work)
    _copy_project(src)

    # Offline: setuptools of this environment builds the wheel (no build isolation).
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", src, "-w", wheels])
    (wheel,) = [os.path.join(wheels, f) for f in os.listdir(wheels) if f.endswith(".whl")]

    run([sys.executable, "-m", "venv", "--without-pip", venv])
    venv_python = os.path.join(venv, "bin", "python")
    site = run([venv_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
               ).stdout.strip()
    # Dependencies from this environment: plain path lines, so the .pth files of its
    # site-packages (among them the checkout's editable install) are not processed.
    ours = sysconfig.get_paths()
    with open(os.path.join(site, "dependencies.pth"), "w") as f:
        f.write("\n".join(sorted({ours["purelib"], ours["platlib"]})) + "\n")
    run([sys.executable, "-m", "pip", "--python", venv_python, "install", "-q", "--no-index",
         "--no-deps", wheel])

    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "MEGCC_TOOLCHAIN_DIR", "MEGCC_PYTHON")}
    env["PATH"] = os.path.join(venv, "bin") + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = venv
    # A cache of its own, so the host runner is built from the packaged runtime sources.
    env["MEGCC_CACHE_DIR"] = os.path.join(tmp, "cache")
    return Installation(venv, work, env)


def _onnxruntime(model: str, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return sess.run(None, {"data": x})[0]


def _digits_project(dest: str) -> str:
    os.makedirs(dest)
    for name in DIGITS_FILES:
        shutil.copy2(os.path.join(ROOT, "samples", "digits", name), dest)
    return dest


def _check_digits(stdout: str) -> None:
    """The app's labels, predictions and logits against MegEngine running digits.mge."""
    labels, preds, logits, correct = parse_digits(stdout)
    data = np.load(os.path.join(ROOT, "samples", "digits", "digits_test.npz"))
    (ref,) = mge_zoo.reference_output(os.path.join(ROOT, "samples", "digits", "digits.mge"),
                                      {"data": data["x"]})
    assert labels == [int(v) for v in data["y"]]
    assert preds == [int(v) for v in np.argmax(logits, axis=1)]
    assert max_rel_err(logits, ref) <= TOL
    assert correct == sum(p == label for p, label in zip(preds, labels)) and correct >= 95


def test_installed_package_uses_only_its_own_files(installed):
    site = installed.run([installed.python, "-c", "import megcc_builder, os; "
                          "print(os.path.dirname(megcc_builder.__file__))"]).stdout.strip()
    assert site.startswith(installed.venv + os.sep), site
    runtime = installed.fact("--runtime-dir")
    cmake_dir = installed.fact("--cmake-dir")
    toolpath = installed.fact("--scons-toolpath")
    for path in (runtime, cmake_dir, toolpath):
        assert path.startswith(site + os.sep), path
    assert os.path.isfile(os.path.join(runtime, "include", "megcc", "megcc.h"))
    assert os.path.isfile(os.path.join(runtime, "tools", "megcc_runner.c"))
    assert os.path.isfile(os.path.join(cmake_dir, "MegCCConfig.cmake"))
    assert os.path.isfile(os.path.join(toolpath, "megcc", "__init__.py"))
    # The signature covers relative paths only: installed and checkout agree.
    from megcc_builder.signature import compiler_signature

    assert installed.fact("--signature") == compiler_signature()


def test_cli_compiles_and_runs_a_model(installed):
    require_target("x86_64")
    work = os.path.join(installed.work, "cli")
    os.makedirs(work)
    model = os.path.join(work, "model.onnx")
    conv_onnx(model, seed=3)
    x = np.random.RandomState(0).randn(1, 1, 6, 6).astype(np.float32)
    np.save(os.path.join(work, "x.npy"), x)

    installed.run(["megcc", "compile", "model.onnx", "-o", "out", "--input-shapes",
                   "data=(1,1,6,6)"], cwd=work)
    for name in ("kernels.c", "kernels.h", "manifest.json", "model.tiny", "model.tiny.c"):
        assert os.path.isfile(os.path.join(work, "out", name)), name

    installed.run(["megcc", "run", "model.onnx", "--input", "data=x.npy", "--output-dir", "res"],
                  cwd=work)
    (ours,) = np.load(os.path.join(work, "res", "outputs.npz")).values()
    assert max_rel_err(ours, _onnxruntime(model, x)) <= TOL


def test_onnx_backend_runs_a_model(installed):
    require_target("x86_64")
    work = os.path.join(installed.work, "backend")
    os.makedirs(work)
    model = os.path.join(work, "model.onnx")
    conv_onnx(model, seed=4)
    x = np.random.RandomState(1).randn(1, 1, 6, 6).astype(np.float32)
    np.save(os.path.join(work, "x.npy"), x)
    script = ("import numpy as np, onnx\n"
              "from megcc_builder.onnx_backend import MegccBackend\n"
              "rep = MegccBackend.prepare(onnx.load('model.onnx'))\n"
              "np.save('y.npy', rep.run([np.load('x.npy')])[0])\n")
    installed.run([installed.python, "-c", script], cwd=work)
    assert max_rel_err(np.load(os.path.join(work, "y.npy")), _onnxruntime(model, x)) <= TOL


SCONSTRUCT = """
import os
env = Environment(tools=["default", "megcc"], toolpath=[{toolpath!r}], ENV=os.environ)
net = env.MegccModel("digits", "digits.mge", INPUT_SHAPES={shape!r})
images = env.Command(["digits_images.c", "digits_images.h"], ["digits_test.npz", "gen_images.py"],
                     "$( $MEGCC_PYTHON $) ${{SOURCES[1]}} ${{SOURCES[0]}} $TARGETS")
env.AppendUnique(CPPPATH=[Dir(".")])
env.Program("digits", ["main.c", images[0], net])
"""


def test_scons_tool_of_the_installation_builds_the_digits_app(installed):
    require_target("x86_64")
    project = _digits_project(os.path.join(installed.work, "scons"))
    toolpath = installed.fact("--scons-toolpath")
    with open(os.path.join(project, "SConstruct"), "w") as f:
        f.write(SCONSTRUCT.format(toolpath=toolpath, shape=DIGITS_SHAPE))
    installed.run([installed.python, "-m", "SCons", "-Q", "-j2"], cwd=project)
    _check_digits(installed.run([os.path.join(project, "digits")]).stdout)
    # The build is complete: asking again finds everything up to date.
    installed.run([installed.python, "-m", "SCons", "-Q", "-q"], cwd=project)


CMAKELISTS = """
cmake_minimum_required(VERSION 3.20)
project(digits_installed C)
find_package(MegCC REQUIRED CONFIG)
megcc_add_model(digits_net MODEL digits.mge NAME digits INPUT_SHAPES "{shape}")
add_custom_command(
  OUTPUT digits_images.c digits_images.h
  COMMAND "${{MEGCC_PYTHON}}" "${{CMAKE_CURRENT_SOURCE_DIR}}/gen_images.py"
          "${{CMAKE_CURRENT_SOURCE_DIR}}/digits_test.npz" digits_images.c digits_images.h
  DEPENDS digits_test.npz gen_images.py
  VERBATIM)
add_executable(digits main.c "${{CMAKE_CURRENT_BINARY_DIR}}/digits_images.c")
target_include_directories(digits PRIVATE "${{CMAKE_CURRENT_BINARY_DIR}}")
target_link_libraries(digits PRIVATE digits_net)
"""


def test_cmake_package_of_the_installation_builds_the_digits_app(installed):
    require_tools("cmake", "ninja")
    require_target("x86_64")
    project = _digits_project(os.path.join(installed.work, "cmake"))
    with open(os.path.join(project, "CMakeLists.txt"), "w") as f:
        f.write(CMAKELISTS.format(shape=DIGITS_SHAPE))
    build = os.path.join(project, "build")
    # No MEGCC_PYTHON: the package finds the Python it is installed in by itself.
    installed.run(["cmake", "-S", project, "-B", build, "-G", "Ninja",
                   "-DMegCC_DIR=" + installed.fact("--cmake-dir")])
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        (python,) = [line.split("=", 1)[1] for line in f.read().splitlines()
                     if line.startswith("MEGCC_PYTHON:")]
    assert os.path.dirname(python) == os.path.join(installed.venv, "bin"), python
    installed.run(["cmake", "--build", build])
    _check_digits(installed.run([os.path.join(build, "digits")]).stdout)
    # Second build: nothing to do (the signature and inputs are unchanged).
    out = installed.run(["cmake", "--build", build]).stdout
    assert "megcc: compiling" not in out and "Linking" not in out, out


def test_from_a_checkout_the_flags_name_the_repository(capsys):
    from megcc_builder.cli import main

    for flag, expected in (("--cmake-dir", os.path.join(ROOT, "cmake")),
                           ("--runtime-dir", os.path.join(ROOT, "runtime")),
                           ("--scons-toolpath", os.path.join(ROOT, "site_scons", "site_tools"))):
        with pytest.raises(SystemExit) as exit_:
            main([flag])
        assert exit_.value.code == 0
        assert capsys.readouterr().out == expected + "\n"


def test_an_incomplete_installation_is_one_line(tmp_path, monkeypatch, capsys):
    """A package directory without the packaged data (and no checkout around it)."""
    from megcc_builder import resources
    from megcc_builder.cli import main

    package = tmp_path / "site-packages" / "megcc_builder"
    package.mkdir(parents=True)
    monkeypatch.setattr(resources, "PACKAGE_DIR", str(package))
    monkeypatch.setattr(resources, "PACKAGED_DATA_DIR", str(package / "_data"))
    with pytest.raises(SystemExit) as exit_:
        main(["--cmake-dir"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"megcc: error: {package / '_data' / 'cmake'} is missing")
