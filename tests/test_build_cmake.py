"""The CMake package: megcc_add_model() in an outside project, with Ninja and with
Makefiles — second build is a no-op, touching the model rebuilds nothing, new weights
rebuild the model object but not the kernel objects, a new input shape and a new option
(enable_nchw44) regenerate, clean
removes the generated files — and the digits sample cross-built with a toolchain file and
run by ctest under the emulator."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

from build_support import (PYTHON, ROOT, TOL, changed, conv_onnx, hex_floats, in_ci,
                           max_rel_err, require_target, require_tools, run, snapshot)
from megcc_builder.host import compile_and_run
from megcc_builder.isa import host_level
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
    assert any(p.endswith("net.tiny.embed.c.o") for p in touched), touched
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


@pytest.mark.parametrize("target", ["arm64", "cortex-m3", "cortex-m55"])
def test_digits_sample_cross_built_and_run_by_ctest(target, tmp_path):
    require_tools("cmake", "ninja", "ctest")
    require_target(target)
    build = tmp_path / "build"
    run(["cmake", "-S", os.path.join(ROOT, "samples", "cmake"), "-B", str(build), "-G", "Ninja",
         "-DMEGCC_PYTHON=" + PYTHON,
         "-DCMAKE_TOOLCHAIN_FILE=" + os.path.join(ROOT, "cmake", "toolchains", f"{target}.cmake")])
    out = cmake_build(build)
    # megcc_size_report ran after linking: totals and the model's arena, no per-object table
    assert re.search(r"megcc size report: model digits blob \d+ bytes, arena \d+ bytes "
                     r"\(MEGCC_DIGITS_ARENA_SIZE\)", out), out
    assert "(TOTALS)" not in out and "kernels.c.o" not in out.split("size report")[-1]
    proc = run(["ctest", "--test-dir", str(build), "--output-on-failure", "-V"], timeout=300)
    assert "100% tests passed" in proc.stdout
    assert "accuracy:" in proc.stdout


def levels_this_machine_runs():
    """The x86 levels up to this machine's own (x86_64 < x86_64-v3 < x86_64-v4 <
    x86_64-vnni)."""
    order = ["x86_64", "x86_64-v3", "x86_64-v4", "x86_64-vnni"]
    own = host_level()
    return order[:order.index(own) + 1] if own in order else []


def test_onnx_external_data_is_a_dependency(project):
    """New weights only in the external-data file (the .onnx byte-identical): rebuilt."""
    src, build = project
    conv_onnx(str(src / "model.onnx"), seed=1, external=True)
    run(["cmake", str(build)])  # the model now keeps its weights in model.onnx.data
    cmake_build(build)
    check_output(src, build)
    onnx_bytes = (src / "model.onnx").read_bytes()
    conv_onnx(str(src / "model.onnx"), seed=5, external=True)
    assert (src / "model.onnx").read_bytes() == onnx_bytes
    assert "megcc: compiling" in cmake_build(build)
    check_output(src, build)


def test_isa_level_default_and_override_on_the_host(project):
    """A plain host build names its level (x86_64 here); -DMEGCC_ISA=x86_64-v3 adds the
    flags its AVX2 kernels need, so it builds and runs."""
    src, build = project
    configure = run(["cmake", str(build)]).stdout
    assert "megcc: kernels for ISA level x86_64 " in configure
    assert "--isa x86_64" in (build / "net.megcc" / "options.txt").read_text()
    if "x86_64-v3" not in levels_this_machine_runs():
        if in_ci():
            pytest.fail("CI must run the AVX2 (x86_64-v3) kernels")
        pytest.skip("this machine cannot run AVX2 kernels")
    run(["cmake", "-DMEGCC_ISA=x86_64-v3", str(build)])
    cmake_build(build)
    assert "_avx2" in (build / "net.megcc" / "kernels.c").read_text()
    check_output(src, build)


def test_isa_override_with_a_toolchain_file(tmp_path):
    """-DMEGCC_ISA=generic wins over the toolchain file's level (arm64-neon)."""
    require_tools("cmake", "ninja")
    require_target("arm64")
    build = tmp_path / "build"
    out = run(["cmake", "-S", os.path.join(ROOT, "samples", "cmake"), "-B", str(build),
               "-G", "Ninja", "-DMEGCC_PYTHON=" + PYTHON, "-DMEGCC_ISA=generic",
               "-DCMAKE_TOOLCHAIN_FILE=" + os.path.join(ROOT, "cmake", "toolchains",
                                                        "arm64.cmake")]).stdout
    assert "megcc: kernels for ISA level generic " in out
    options = (build / "digits_net.megcc" / "options.txt").read_text()
    assert "--isa generic" in options and "arm64-neon" not in options


def test_unknown_isa_level_fails_at_configure(tmp_path, project):
    src, build = project
    r = run(["cmake", "-DMEGCC_ISA=x86_65", str(build)], check=False)
    assert r.returncode != 0 and "megcc: MEGCC_ISA=x86_65: unknown" in r.stdout, r.stdout


def test_model_too_big_for_the_board_stops_before_compiling(tmp_path):
    """Cortex-M4 (256 KB flash) and a 360 KB model: the rule that runs the compiler fails
    with the numbers, and no C of the model was compiled."""
    require_tools("cmake", "ninja")
    require_target("cortex-m4")
    from test_build_scons import write_big_matmul

    src = tmp_path / "src"
    src.mkdir()
    write_big_matmul(str(src / "big.onnx"))
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(big C)\n"
        f"include(\"{os.path.join(ROOT, 'cmake', 'megcc.cmake')}\")\n"
        "megcc_add_model(big MODEL big.onnx)\n")
    build = tmp_path / "build"
    run(["cmake", "-S", str(src), "-B", str(build), "-G", "Ninja", "-DMEGCC_PYTHON=" + PYTHON,
         "-DCMAKE_TOOLCHAIN_FILE=" + os.path.join(ROOT, "cmake", "toolchains",
                                                  "cortex-m4.cmake")])
    r = run(["cmake", "--build", str(build)], check=False)
    assert r.returncode != 0
    assert ("megcc: error: the embedded model data (" in r.stdout and
            "bytes) does not fit the flash of cortex-m4 (memory profile mcu): 262,144 bytes"
            in r.stdout), r.stdout
    assert not list(build.rglob("*.o")), list(build.rglob("*.o"))
