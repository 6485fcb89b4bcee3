"""Asking for CV operators: MegCC's config "cv" section (JSON, YAML), `--cv` on `megcc compile`
and `mgb-to-tinynn`, the SCons builder's CV= and megcc_add_model(CV ...). Only what is asked
for is generated, into tinycv_c.h + tinycv.c beside kernels.h; a build that asks for none
gets neither file and links no CV code; bad entries are one-line errors naming the entry."""
from __future__ import annotations

import json
import os
import re
import subprocess

import cv2
import numpy as np
import pytest

from build_support import PYTHON, ROOT, SCONS, conv_onnx, require_target, require_tools, run, \
    scons_env

DIGITS = os.path.join(ROOT, "samples", "digits", "digits.mge")
SHAPES = "data=(1,1,8,8)"


def this_checkout_env() -> dict:
    """Build tools run `python -m megcc_builder.cli`: this checkout's, wherever they run."""
    env = scons_env()
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def megcc(*args, check=True):
    proc = subprocess.run([PYTHON, "-m", "megcc_builder.cli", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, cwd=ROOT)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def tool(*args, check=True):
    proc = subprocess.run([PYTHON, "-c", "import sys; from megcc_builder.cli import "
                           "mgb_to_tinynn_main as m; sys.exit(m())", *args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, cwd=ROOT)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def functions(out_dir) -> list:
    with open(os.path.join(out_dir, "manifest.json")) as f:
        return json.load(f).get("cv", {}).get("functions", [])


def config(tmp_path, cv, name="cfg.json"):
    data = {"dump_dir": "out", "models": [{"model_name": "digits", "model_path": DIGITS,
                                           "input_shape_str": SHAPES}]}
    if cv is not None:
        data["cv"] = cv
    path = tmp_path / name
    if name.endswith(".yaml"):
        import yaml

        path.write_text(yaml.safe_dump(data))
    else:
        path.write_text(json.dumps(data))
    return str(path)


def test_config_section_and_flag_merge(tmp_path):
    cfg = config(tmp_path, {"resize_linear": ["ui8", "f32"], "flip": ["ui8"]})
    megcc("compile", "--json", cfg, "--cv", "rgb2gray:ui8;gaussian_blur_reflect:f32")
    out = tmp_path / "out"
    assert sorted(functions(out)) == sorted([
        "tinycv_resize_linear_ui8", "tinycv_resize_linear_f32", "tinycv_flip_ui8",
        "tinycv_cvt_rgb2gray_ui8", "tinycv_gaussian_blur_reflect_f32"])
    header = (out / "tinycv_c.h").read_text()
    source = (out / "tinycv.c").read_text()
    # MegCC's exact prototypes, and nothing that was not asked for
    assert "void tinycv_flip_ui8(const TinyMat* src, const TinyMat* dst, bool vertical, " \
           "bool horizontal);" in header
    assert "typedef struct TinyMat {\n    size_t rows;\n    size_t cols;\n    size_t channels;" \
           "\n    void* data;\n} TinyMat;" in header
    assert "tinycv_transpose_ui8" not in header + source
    assert "tinycv_gaussian_ui8" not in source and "tinycv_gaussian_f32(" in source
    # deterministic: a second compile writes the same bytes
    before = {p: (out / p).read_bytes() for p in ("tinycv.c", "tinycv_c.h")}
    megcc("compile", "--json", cfg, "--cv", "gaussian_blur_reflect:f32", "--cv", "rgb2gray:ui8")
    assert before == {p: (out / p).read_bytes() for p in ("tinycv.c", "tinycv_c.h")}


def test_yaml_config_and_mgb_to_tinynn(tmp_path):
    cfg = config(tmp_path, {"rotate": ["f16"]}, "cfg.yaml")
    tool("--json", cfg, "--cv", "transpose:ui8")
    assert functions(tmp_path / "out") == ["tinycv_rotate_f16", "tinycv_transpose_ui8"]
    tool(DIGITS, str(tmp_path / "o2"), "--input-shapes", SHAPES, "--cv", "warp_affine_constant_linear")
    assert functions(tmp_path / "o2") == ["tinycv_warp_affine_constant_linear_ui8"]


def test_no_request_no_cv_files(tmp_path):
    out = tmp_path / "out"
    megcc("compile", DIGITS, "-o", str(out), "--input-shapes", SHAPES, "--cv", "flip:ui8")
    assert (out / "tinycv.c").exists()
    megcc("compile", DIGITS, "-o", str(out), "--input-shapes", SHAPES)  # same dir, none asked
    assert not (out / "tinycv.c").exists() and not (out / "tinycv_c.h").exists()
    assert "cv" not in json.loads((out / "manifest.json").read_text())
    cfg = config(tmp_path, {})  # an empty section is no request either
    megcc("compile", "--json", cfg)
    assert not (tmp_path / "out" / "tinycv.c").exists()


@pytest.mark.parametrize("cv, flag, message", [
    ({"rgb2grey": ["ui8"]}, None, "cv.rgb2grey: unknown CV operator 'rgb2grey'"),
    ({"flip": ["f32"]}, None, "cv.flip: CV operator 'flip' has no dtype 'f32' (it has ui8)"),
    ({"flip": []}, None, "cv.flip: CV operator 'flip' needs a non-empty list of dtypes"),
    (["flip"], None, "field 'cv' must be an object"),
    (None, "resize_linear:ui8,f64", "--cv: 'resize_linear:ui8,f64': CV operator "
                                    "'resize_linear' has no dtype 'f64'"),
    (None, "resize:ui8", "--cv: 'resize:ui8': unknown CV operator 'resize'"),
])
def test_bad_entries_are_one_line_errors(tmp_path, cv, flag, message):
    cfg = config(tmp_path, cv)
    proc = megcc("compile", "--json", cfg, *(["--cv", flag] if flag else []), check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    if flag is None:
        assert cfg in lines[0]
    assert not (tmp_path / "out").exists()  # nothing half-written


# ----------------------------------------------------------------------- build systems
APP_C = r"""
#include <stdio.h>
#include "tinycv_c.h"
int main(void) {
    static unsigned char src[19 * 23 * 3], small[7 * 11 * 3], gray[7 * 11];
    TinyMat s = {19, 23, 3, src}, d = {7, 11, 3, small}, g = {7, 11, 1, gray};
    unsigned i;
    for (i = 0; i < sizeof src; ++i) src[i] = (unsigned char)(i * 37 % 251);
    tinycv_resize_linear_ui8(&s, &d);
    tinycv_cvt_rgb2gray_ui8(&d, &g);
    for (i = 0; i < sizeof gray; ++i) printf("%d\n", gray[i]);
    return 0;
}
"""


def expected_app_output() -> list:
    src = (np.arange(19 * 23 * 3) * 37 % 251).astype(np.uint8).reshape(19, 23, 3)
    small = cv2.resize(src, (11, 7), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).ravel().tolist()


SCONSTRUCT = """
import os
env = Environment(tools=["default", "megcc"], toolpath=[{toolpath!r}], ENV=os.environ)
net = env.MegccModel("net", "model.onnx", INPUT_SHAPES="data=(1,1,6,6)",
                     CV={{"resize_linear": ["ui8"], "rgb2gray": ["ui8"]}})
app = env.Program("app", ["app.c"], LIBS=[net, "m"])
env.MegccSizeReport(app, net)
plain = env.Clone().MegccModel("plain", "model.onnx", INPUT_SHAPES="data=(1,1,6,6)",
                               GEN_DIR="plain.megcc")
noop = env.Program("noop", [env.Object("noop.c")], LIBS=[plain, "m"])
env.MegccSizeReport(noop, plain)
"""


def test_scons_builder_cv(tmp_path):
    require_target("x86_64")
    conv_onnx(str(tmp_path / "model.onnx"), seed=1)
    (tmp_path / "app.c").write_text(APP_C)
    (tmp_path / "noop.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "SConstruct").write_text(SCONSTRUCT.format(
        toolpath=os.path.join(ROOT, "site_scons", "site_tools")))
    run([*SCONS, "-C", str(tmp_path), "-Q"], env=this_checkout_env())
    out = run([str(tmp_path / "app")]).stdout.split()
    assert [int(v) for v in out] == expected_app_output()
    assert sorted(os.listdir(tmp_path / "net.megcc")).count("tinycv.c") == 1
    assert not (tmp_path / "plain.megcc" / "tinycv.c").exists()
    # up to date: the emitter predicted every output
    assert run([*SCONS, "-C", str(tmp_path), "-q"], env=this_checkout_env(), check=False).returncode == 0
    # a program whose model asked for no CV operator links none
    assert "tinycv" not in run(["nm", str(tmp_path / "noop")]).stdout
    # the size report shows what each CV function costs (and none for noop)
    report = (tmp_path / "app.size.txt").read_text()
    sizes = dict(re.findall(r"cv (.+?): text (\d+) bytes", report))
    assert set(sizes) == {"tinycv_resize_linear_ui8", "tinycv_cvt_rgb2gray_ui8",
                          "(shared helpers)"}, report
    assert all(int(v) > 0 for v in sizes.values())
    assert " cv " not in (tmp_path / "noop.size.txt").read_text()


CMAKELISTS = """
cmake_minimum_required(VERSION 3.20)
project(cvtest C)
include({megcc_cmake})
megcc_add_model(net MODEL model.onnx INPUT_SHAPES "data=(1,1,6,6)" CV resize_linear:ui8 rgb2gray:ui8)
add_executable(app app.c)
target_link_libraries(app PRIVATE net)
megcc_size_report(app net)
"""


def test_cmake_megcc_add_model_cv(tmp_path):
    require_tools("cmake", "ninja")
    require_target("x86_64")
    src, build = tmp_path / "src", tmp_path / "build"
    src.mkdir()
    conv_onnx(str(src / "model.onnx"), seed=1)
    (src / "app.c").write_text(APP_C)
    (src / "CMakeLists.txt").write_text(CMAKELISTS.format(
        megcc_cmake='"' + os.path.join(ROOT, "cmake", "megcc.cmake") + '"'))
    env = this_checkout_env()
    run(["cmake", "-S", str(src), "-B", str(build), "-G", "Ninja", "-DMEGCC_PYTHON=" + PYTHON],
        env=env)
    log = run(["cmake", "--build", str(build)], env=env).stdout
    assert "megcc size report: cv tinycv_resize_linear_ui8: text" in log, log
    out = run([str(build / "app")]).stdout.split()
    assert [int(v) for v in out] == expected_app_output()
    assert "no work to do" in run(["cmake", "--build", str(build)], env=env).stdout


# ----------------------------------------------------------------------- the sample
@pytest.mark.parametrize("target", ["x86_64", "cortex-m4"])
def test_cv_digits_sample(target, tmp_path):
    """samples/cv_digits: a picture of a handwritten 9 pre-processed by the generated tinycv
    functions, classified by the digits CNN; the logits equal OpenCV's pre-processing fed
    to the host runner, on the host and on a Cortex-M4 within its 256 KB / 64 KB budget."""
    from build_support import TOL, hex_floats, max_rel_err
    from megcc_builder.host import compile_and_run

    t = require_target(target)
    build = tmp_path / "b"
    prog = build / target / "cv_digits" / "cv_digits"
    run([*SCONS, "-C", ROOT, "-Q", "-j2", f"target={target}", f"build_dir={build}", str(prog),
         f"{prog}.size.txt"], env=this_checkout_env())
    out = run(t.run_command(str(prog)), timeout=120).stdout
    line = next(l for l in out.splitlines() if "digit:" in l)
    digit, logits = int(line.split()[3]), hex_floats(line.split()[5:15])

    raw = open(os.path.join(ROOT, "samples", "cv_digits", "digit.ppm"), "rb").read()
    rgb = np.frombuffer(raw[-37 * 43 * 3:], np.uint8).reshape(43, 37, 3)
    small = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (8, 8),
                       interpolation=cv2.INTER_LINEAR)
    x = ((255.0 - small.astype(np.float32)) / 255.0).reshape(1, 1, 8, 8)
    (ref,) = compile_and_run(os.path.join(ROOT, "samples", "digits", "digits.mge"),
                             {"data": x}).values()
    assert digit == 9 == int(np.argmax(ref))  # the picture's label (make_image.py)
    assert max_rel_err(logits, ref.ravel()) <= TOL
    report = (prog.parent / "cv_digits.size.txt").read_text()
    assert "cv tinycv_resize_linear_ui8: text" in report
