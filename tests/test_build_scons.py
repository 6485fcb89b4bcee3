"""The SCons tool as an outside project uses it (toolpath=[...]), tested the way SCons
tests itself: build, then ask `scons -q` whether anything is out of date, and look at
which commands a rebuild runs and which files it touches."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from build_support import (ROOT, SCONS, TOL, changed, conv_onnx, hex_floats, max_rel_err,
                           require_target, run, scons_env, snapshot)
from megcc_builder.host import compile_and_run

TOOLPATH = os.path.join(ROOT, "site_scons", "site_tools")

# An app that runs one embedded model on a fixed input pattern and prints the outputs as
# float32 bit patterns; MODEL is the model name (symbols megcc_model_<name>).
APP_C = r"""
#include <stdio.h>
#include <string.h>
#include "megcc/megcc.h"
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define MODEL_DATA CAT(megcc_model_, MODEL)
#define MODEL_SIZE CAT(MODEL_DATA, _size)
extern const unsigned char MODEL_DATA[];
extern const unsigned int MODEL_SIZE;
int main(void) {
    megcc_model *m; megcc_network *n; megcc_tensor_info in, out; size_t i;
    float *x; const float *y; unsigned u;
    if (megcc_model_load_from_memory(MODEL_DATA, MODEL_SIZE, 0, &m) ||
        megcc_network_create(m, NULL, 0, &n)) { printf("error %s\n", megcc_last_error()); return 1; }
    megcc_network_input_info(n, 0, &in); megcc_network_output_info(n, 0, &out);
    x = (float *)megcc_network_input_data(n, 0);
    for (i = 0; i < in.nbytes / 4; i++) x[i] = (float)((int)(i * 7 % 13) - 6) / 4.0f;
    if (megcc_network_forward(n)) { printf("error %s\n", megcc_network_last_error(n)); return 1; }
    y = (const float *)megcc_network_output_data(n, 0);
    for (i = 0; i < out.nbytes / 4; i++) { memcpy(&u, &y[i], 4); printf("%08x\n", u); }
    return 0;
}
"""

SCONSTRUCT = """
import os
env = Environment(tools=["default", "megcc"], toolpath=[{toolpath!r}], ENV=os.environ)
env.Append(CCFLAGS=["-Wall"])
shape = ARGUMENTS.get("shape", "data=(1,1,6,6)")
e1 = env.Clone()
app_defines = ["MODEL=net"]
if ARGUMENTS.get("app_define"):  # a macro for the app alone, added to its environment
    e1.Append(CPPDEFINES=["APP_FLAG=1"])
    app_defines.append("APP_FLAG=1")
net = e1.MegccModel("net", "model.onnx", INPUT_SHAPES=shape,
                    OPTIONS=ARGUMENTS.get("options", "").split())
app = e1.Program("app", ["app.c"], CPPDEFINES=app_defines, LIBS=[net, "m"])
e1.MegccSizeReport(app, net)
if ARGUMENTS.get("two"):
    e2 = env.Clone()
    net2 = e2.MegccModel("net2", "second.onnx", GEN_DIR="gen2")
    e2.Program("app2", [e2.Object("app2.o", "app.c", CPPDEFINES=["MODEL=net2"]), net2])
"""


def pattern_input(shape):
    n = int(np.prod(shape))
    return ((np.arange(n) * 7 % 13 - 6) / 4.0).astype(np.float32).reshape(shape)


@pytest.fixture
def project(tmp_path):
    require_target("x86_64")
    (tmp_path / "app.c").write_text(APP_C)
    (tmp_path / "SConstruct").write_text(SCONSTRUCT.format(toolpath=TOOLPATH))
    conv_onnx(str(tmp_path / "model.onnx"), seed=1)
    return tmp_path


def scons(project, *args, check=True):
    return run([*SCONS, "-C", str(project), *args], env=scons_env(), check=check)


def app_output(project, name="app"):
    out = run([str(project / name)]).stdout.split()
    return hex_floats(out)


def test_build_run_and_second_build_is_noop(project):
    scons(project)
    ref = compile_and_run(str(project / "model.onnx"), {"data": pattern_input((1, 1, 6, 6))})
    assert max_rel_err(app_output(project), ref["out"].ravel()) <= TOL
    assert "megcc size report" in (project / "app.size.txt").read_text()
    assert scons(project, "-q", check=False).returncode == 0
    second = scons(project).stdout
    assert "megcc" not in second.replace("scons: done", "") and "gcc" not in second


def test_touching_the_model_rebuilds_nothing(project):
    scons(project)
    before = snapshot(project)
    os.utime(project / "model.onnx", None)
    assert scons(project, "-q", check=False).returncode == 0
    out = scons(project).stdout
    assert "megcc" not in out.replace("scons: done", "") and "gcc" not in out
    assert set(changed(before, snapshot(project))) <= {"model.onnx", ".sconsign.dblite"}


def test_new_weights_regenerate_the_blob_but_not_the_kernel_objects(project):
    scons(project)
    before = snapshot(project)
    conv_onnx(str(project / "model.onnx"), seed=2)  # same graph, other weights
    assert scons(project, "-q", check=False).returncode != 0
    scons(project)
    touched = changed(before, snapshot(project))
    assert "net.megcc/net.tiny" in touched and "net.megcc/net.tiny.embed.o" in touched
    assert "net.megcc/kernels.o" not in touched
    assert not any(p.startswith("megcc_runtime/") for p in touched)
    ref = compile_and_run(str(project / "model.onnx"), {"data": pattern_input((1, 1, 6, 6))})
    assert max_rel_err(app_output(project), ref["out"].ravel()) <= TOL


def test_changing_the_input_shape_regenerates(project):
    scons(project)
    header = (project / "net.megcc" / "kernels.h").read_text()
    assert scons(project, "-q", "shape=data=(1,1,9,9)", check=False).returncode != 0
    out = scons(project, "shape=data=(1,1,9,9)").stdout
    assert "megcc_builder.cli compile" in out and "(1,1,9,9)" in out
    assert (project / "net.megcc" / "kernels.h").read_text() != header  # arena size changed
    ref = compile_and_run(str(project / "model.onnx"), {"data": pattern_input((1, 1, 9, 9))})
    assert max_rel_err(app_output(project), ref["out"].ravel()) <= TOL
    assert scons(project, "-q", "shape=data=(1,1,9,9)", check=False).returncode == 0


def test_changing_an_option_regenerates(project):
    """Turning on enable_nchw44 (a compile option) reruns the compiler: new kernels, the
    option in the manifest, the same outputs; then the build is up to date again."""
    scons(project)
    kernels = (project / "net.megcc" / "kernels.c").read_text()
    assert "conv_nchw44" not in kernels
    assert scons(project, "-q", "options=--enable-nchw44", check=False).returncode != 0
    out = scons(project, "options=--enable-nchw44").stdout
    assert "megcc_builder.cli compile" in out and "--enable-nchw44" in out
    assert "conv_nchw44_hybrid" in (project / "net.megcc" / "kernels.c").read_text()
    manifest = json.loads((project / "net.megcc" / "manifest.json").read_text())
    assert manifest["models"][0]["options"]["enable_nchw44"] is True
    ref = compile_and_run(str(project / "model.onnx"), {"data": pattern_input((1, 1, 6, 6))})
    assert max_rel_err(app_output(project), ref["out"].ravel()) <= TOL
    assert scons(project, "-q", "options=--enable-nchw44", check=False).returncode == 0


def test_changing_max_threads_regenerates(project):
    """--max-threads (a compile option with a value) is part of the build's signature like
    the boolean ones: setting it reruns the compiler (the option in the manifest, the same
    outputs), changing its value reruns it again, then the build is up to date."""
    scons(project)
    for n in ("1", "2"):
        opt = f"options=--max-threads={n}"
        assert scons(project, "-q", opt, check=False).returncode != 0
        out = scons(project, opt).stdout
        assert "megcc_builder.cli compile" in out and f"--max-threads={n}" in out
        manifest = json.loads((project / "net.megcc" / "manifest.json").read_text())
        assert manifest["models"][0]["options"]["max_threads"] == int(n)
        ref = compile_and_run(str(project / "model.onnx"), {"data": pattern_input((1, 1, 6, 6))})
        assert max_rel_err(app_output(project), ref["out"].ravel()) <= TOL
        assert scons(project, "-q", opt, check=False).returncode == 0


def test_clean_removes_every_generated_file(project):
    conv_onnx(str(project / "second.onnx"), seed=3, channels=6)
    sources = set(snapshot(project))
    scons(project, "two=1")
    assert len(snapshot(project)) > len(sources) + 10
    scons(project, "-c", "two=1")
    left = set(snapshot(project)) - sources - {".sconsign.dblite"}
    assert not left, sorted(left)
    assert not (project / "net.megcc").exists() and not (project / "gen2").exists()


def test_parallel_build_of_two_models(project):
    conv_onnx(str(project / "second.onnx"), seed=3, channels=6)
    scons(project, "-j2", "two=1")
    for app, model in (("app", "model.onnx"), ("app2", "second.onnx")):
        ref = compile_and_run(str(project / model), {"data": pattern_input((1, 1, 6, 6))})
        assert max_rel_err(app_output(project, app), ref["out"].ravel()) <= TOL
    assert scons(project, "-q", "two=1", check=False).returncode == 0


def test_onnx_external_data_is_a_dependency(project):
    conv_onnx(str(project / "model.onnx"), seed=1, external=True)
    assert (project / "model.onnx.data").exists()
    scons(project)
    blob = (project / "net.megcc" / "net.tiny").read_bytes()
    # New weights only in the external file: the .onnx itself is byte-identical.
    onnx_bytes = (project / "model.onnx").read_bytes()
    conv_onnx(str(project / "model.onnx"), seed=5, external=True)
    assert (project / "model.onnx").read_bytes() == onnx_bytes
    assert scons(project, "-q", check=False).returncode != 0
    scons(project)
    assert (project / "net.megcc" / "net.tiny").read_bytes() != blob
    ref = compile_and_run(str(project / "model.onnx"), {"data": pattern_input((1, 1, 6, 6))})
    assert max_rel_err(app_output(project), ref["out"].ravel()) <= TOL


def test_config_bundle_shares_one_kernel_set(project):
    """A MegCC JSON config as the source: the emitter reads it to name every output."""
    conv_onnx(str(project / "second.onnx"), seed=3, channels=6)
    (project / "bundle.json").write_text(
        '{"models": [{"model_name": "a", "model_path": "model.onnx"},'
        ' {"model_name": "b", "model_path": "second.onnx"}]}')
    (project / "SConstruct").write_text(
        f"import os\nenv = Environment(tools=['default', 'megcc'], toolpath=[{TOOLPATH!r}], "
        "ENV=os.environ)\nlib = env.MegccModel('bundle', 'bundle.json')\n"
        "env.Program('app', [env.Object('app_a.o', 'app.c', CPPDEFINES=['MODEL=a']), lib])\n"
        "env.Program('app2', [env.Object('app_b.o', 'app.c', CPPDEFINES=['MODEL=b']), lib])\n")
    scons(project, "-j2")
    gen = project / "bundle.megcc"
    assert sorted(os.listdir(gen)) == sorted(
        ["kernels.c", "kernels.h", "manifest.json", "a.tiny", "a.tiny.txt", "a.tiny.embed.c",
         "b.tiny", "b.tiny.txt", "b.tiny.embed.c", "kernels.o", "a.tiny.embed.o",
         "b.tiny.embed.o", "libmegcc_bundle.a"])
    for app, model in (("app", "model.onnx"), ("app2", "second.onnx")):
        ref = compile_and_run(str(project / model), {"data": pattern_input((1, 1, 6, 6))})
        assert max_rel_err(app_output(project, app), ref["out"].ravel()) <= TOL
    # The scanner follows the config to its models: new weights in one regenerate.
    conv_onnx(str(project / "second.onnx"), seed=4, channels=6)
    assert scons(project, "-q", check=False).returncode != 0


def write_big_matmul(path: str) -> None:
    """A one-MatMul ONNX model with 360 KB of weights (more than a Cortex-M4's flash)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((300, 300)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["data", "w"], ["out"])], "big",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 300])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 300])],
        [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_a_define_for_the_app_rebuilds_only_the_app(project):
    """MegccModel compiles the runtime, kernels and model array in its own environment:
    a CPPDEFINES the app adds to the caller's environment never reaches them."""
    scons(project)
    before = snapshot(project)
    out = scons(project, "app_define=1").stdout
    assert "APP_FLAG=1" in out
    touched = changed(before, snapshot(project))
    assert "app.o" in touched
    assert set(touched) - {".sconsign.dblite"} <= {"app.o", "app", "app.size.txt"}, touched


def test_isa_level_from_the_environment_and_from_the_command_line(project):
    out = run([*SCONS, "-C", str(project), "-n"], env=dict(scons_env(), MEGCC_ISA="generic"))
    assert "--isa generic" in out.stdout
    # the repository's SConstruct takes it as a variable too (dry run: nothing is built)
    out = run([*SCONS, "-C", ROOT, "-n", "target=arm64", "MEGCC_ISA=generic",
               f"build_dir={project / 'b'}"], env=scons_env())
    assert "--isa generic" in out.stdout and "--isa arm64-neon" not in out.stdout


def test_unknown_target_is_one_line_without_traceback(project):
    (project / "SConstruct").write_text(
        f"env = Environment(tools=['default', 'megcc'], toolpath=[{TOOLPATH!r}], "
        "MEGCC_TARGET='arm65')\n")
    r = scons(project, check=False)
    assert r.returncode != 0
    assert "scons: *** megcc: unknown target 'arm65' (known: arm64," in r.stdout
    assert "Traceback" not in r.stdout


def test_model_too_big_for_the_board_stops_before_compiling_its_array(project):
    """A 360 KB model on a Cortex-M4 with 256 KB of flash: refused with the numbers right
    after the compiler ran, before gcc compiles the model's C array."""
    require_target("cortex-m4")
    write_big_matmul(str(project / "big.onnx"))
    (project / "SConstruct").write_text(
        f"import os\nenv = Environment(tools=['default', 'megcc'], toolpath=[{TOOLPATH!r}], "
        "MEGCC_TARGET='cortex-m4', ENV=os.environ)\nenv.MegccModel('big', 'big.onnx')\n")
    r = scons(project, check=False)
    assert r.returncode != 0
    blob = json.loads((project / "big.megcc" / "manifest.json").read_text())[
        "models"][0]["blob_bytes"]
    assert blob > 262144
    assert (f"megcc: the embedded model data ({blob:,} bytes) does not fit the flash of "
            "cortex-m4 (memory profile mcu): 262,144 bytes") in r.stdout
    assert not (project / "big.megcc" / "big.tiny.o").exists()
