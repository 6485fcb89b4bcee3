"""The CMake package: megcc_add_model() in an outside project, with Ninja and with
Makefiles — second build is a no-op, touching the model rebuilds nothing, new weights
rebuild the model object but not the kernel objects, a new input shape and a new option
(enable_nchw44) regenerate, clean
removes the generated files — and the digits sample cross-built with a toolchain file and
run by ctest under the emulator."""
from __future__ import annotations

import os

import numpy as np
import pytest

from build_support import (PYTHON, ROOT, TOL, changed, conv_onnx, hex_floats, max_rel_err,
                           require_target, require_tools, run, snapshot)
from megcc_builder.host import compile_and_run
from test_build_scons import APP_C, pattern_input

CMAKELISTS = """
cmake_minimum_required(VERSION 3.20)
project(buildtest C)
include({megcc_cmake})
set(SHAPE "data=(1,1,6,6)" CACHE STRING "")
set(OPTS "" CACHE STRING "")
megcc_add_model(net MODEL model.onnx INPUT_SHAPES "${{SHAPE}}" OPTIONS ${{OPTS}})
add_executable(app app.c)
target_compile_definitions(app PRIVATE MODEL=net)
target_link_libraries(app PRIVATE net)
"""

GENERATORS = {"ninja": "Ninja", "make": "Unix Makefiles"}


@pytest.fixture(params=sorted(GENERATORS))
def project(request, tmp_path):
    require_tools("cmake", request.param)
    require_target("x86_64")
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.c").write_text(APP_C)
    (src / "CMakeLists.txt").write_text(CMAKELISTS.format(
        megcc_cmake='"' + os.path.join(ROOT, "cmake", "megcc.cmake") + '"'))
    conv_onnx(str(src / "model.onnx"), seed=1)
    build = tmp_path / "build"
    run(["cmake", "-S", str(src), "-B", str(build), "-G", GENERATORS[request.param],
         "-DMEGCC_PYTHON=" + PYTHON])
    return src, build


def cmake_build(build):
    return run(["cmake", "--build", str(build)]).stdout


def app_output(build):
    return hex_floats(run([str(build / "app")]).stdout.split())


def check_output(src, build, shape=(1, 1, 6, 6)):
    ref = compile_and_run(str(src / "model.onnx"), {"data": pattern_input(shape)})
    assert max_rel_err(app_output(build), ref["out"].ravel()) <= TOL


def objects(paths):
    return [p for p in paths if p.endswith(".o")]


def test_incremental_builds(project):
    src, build = project
    cmake_build(build)
    check_output(src, build)

    # Second build: nothing to do.
    before = snapshot(build)
    out = cmake_build(build)
    assert "megcc: compiling" not in out and "Building C" not in out and "Linking" not in out, out
    assert objects(changed(before, snapshot(build))) == []

    # Touching the model: the digest check skips the compiler; no object, no relink.
    os.utime(src / "model.onnx", None)
    before = snapshot(build)
    cmake_build(build)
    touched = changed(before, snapshot(build))
    assert objects(touched) == [] and "app" not in touched, touched
    assert "megcc: compiling" not in cmake_build(build)  # and then it is a no-op again

    # New weights, same graph: model object rebuilt, kernel objects not.
    conv_onnx(str(src / "model.onnx"), seed=2)
    before = snapshot(build)
    cmake_build(build)
    touched = objects(changed(before, snapshot(build)))
    assert any(p.endswith("net.tiny.c.o") for p in touched), touched
    assert not any(p.endswith("kernels.c.o") for p in touched), touched
    assert not any("megcc_runtime" in p for p in touched), touched
    check_output(src, build)

    # A new input shape (an option) regenerates: kernels.h's arena size changes.
    header = (build / "net.megcc" / "kernels.h").read_text()
    run(["cmake", "-DSHAPE=data=(1,1,9,9)", str(build)])
    cmake_build(build)
    assert (build / "net.megcc" / "kernels.h").read_text() != header
    check_output(src, build, (1, 1, 9, 9))

    # Turning on enable_nchw44 (an option) regenerates: other kernels, same outputs.
    assert "conv_nchw44" not in (build / "net.megcc" / "kernels.c").read_text()
    run(["cmake", "-DOPTS=--enable-nchw44", str(build)])
    cmake_build(build)
    assert "conv_nchw44_hybrid" in (build / "net.megcc" / "kernels.c").read_text()
    check_output(src, build, (1, 1, 9, 9))

    # clean removes the generated files.
    run(["cmake", "--build", str(build), "--target", "clean"])
    gen = build / "net.megcc"
    left = [f for f in os.listdir(gen)] if gen.exists() else []
    assert not [f for f in left if f.endswith((".c", ".h", ".tiny", ".json", ".txt"))
                and f != "options.txt"], left


@pytest.mark.parametrize("target", ["arm64", "cortex-m3"])
def test_digits_sample_cross_built_and_run_by_ctest(target, tmp_path):
    require_tools("cmake", "ninja", "ctest")
    require_target(target)
    build = tmp_path / "build"
    run(["cmake", "-S", os.path.join(ROOT, "samples", "cmake"), "-B", str(build), "-G", "Ninja",
         "-DMEGCC_PYTHON=" + PYTHON,
         "-DCMAKE_TOOLCHAIN_FILE=" + os.path.join(ROOT, "cmake", "toolchains", f"{target}.cmake")])
    out = cmake_build(build)
    assert "arena 49152" in out or "arena" in out  # megcc_size_report ran after linking
    proc = run(["ctest", "--test-dir", str(build), "--output-on-failure", "-V"], timeout=300)
    assert "100% tests passed" in proc.stdout
    assert "accuracy:" in proc.stdout
