"""enable_nchw44_dot (MegCC's option for Armv8.2 dot-product int8 kernels): accepted by
`megcc compile|run|inspect --enable-nchw44-dot`, the JSON/YAML config and mgb-to-tinynn, and
refused with one line naming the ISA level when that level has no dot-product instructions.
Only arm64-dot has them (its builds, run under qemu, are in tests/test_int8_dot.py); the
acceptance check also runs with a stand-in level that declares the feature.
"""
import dataclasses
import json
import os
import subprocess
import sys

import pytest

import mge_quant_zoo as zoo
from megcc_builder import compiler, options
from megcc_builder.compiler import ModelSpec
from megcc_builder.ir import CompileError
from megcc_builder.isa import levels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory):
    return zoo.dump("conv3x3_relu", str(tmp_path_factory.mktemp("dot")), True)


def _one_line_refusal(argv, level, out_dir, env=None):
    proc = subprocess.run([sys.executable] + argv, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "enable_nchw44_dot" in lines[0] and f"ISA level '{level}'" in lines[0], lines[0]
    assert "dot-product" in lines[0] and "Traceback" not in proc.stderr
    assert not os.path.exists(out_dir) or not os.listdir(out_dir)


@pytest.mark.parametrize("level", ["generic", "x86_64-v3", "arm64-neon", "armv7-neon"])
def test_compile_refuses_levels_without_dot_product(int8_model, tmp_path, level):
    out = str(tmp_path / "out")
    _one_line_refusal(["-m", "megcc_builder.cli", "compile", int8_model, "-o", out,
                       "--enable-nchw44-dot", "--isa", level], level, out)


def test_mgb_to_tinynn_and_config_carry_the_option(int8_model, tmp_path):
    out = str(tmp_path / "m")
    _one_line_refusal(["-c", "import sys; from megcc_builder.cli import mgb_to_tinynn_main as m;"
                       f" sys.exit(m([{int8_model!r}, {out!r}, '--enable_nchw44_dot']))"],
                      "arm64-neon", out, env={"MEGCC_ISA": "arm64-neon"})
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"models": [{"model_name": "m", "model_path": int8_model,
                                           "enable_nchw44_dot": True}]}))
    out = str(tmp_path / "c")
    _one_line_refusal(["-m", "megcc_builder.cli", "compile", "--json", str(cfg), "-o", out],
                      "generic", out)
    # false is an ordinary build: the manifest is the one without the option
    cfg.write_text(json.dumps({"models": [{"model_name": "m", "model_path": int8_model,
                                           "enable_nchw44_dot": False}]}))
    proc = subprocess.run([sys.executable, "-m", "megcc_builder.cli", "compile", "--json",
                           str(cfg), "-o", out], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert manifest["models"][0]["options"] == {
        "mgb_fuse_kernel": True, "enable_nchw44": False, "enable_nchw44_dot": False,
        "enable_compress_fp16": False, "enable_ioc16": False,
        "enable_fixed_point_requant": False, "enable_nchw88": False}


def test_a_level_with_dot_product_accepts_it(int8_model, monkeypatch):
    """The check reads the level's CPU features: a level declaring asimddp builds with the
    option, which runs the convolution region in NCHW44 like enable_nchw44."""
    arm = levels.SPECS["arm64-neon"]
    dot = dataclasses.replace(arm, name="arm64-dot-test",
                              features=arm.features | {options.DOT_PRODUCT_FEATURE})
    monkeypatch.setitem(levels.SPECS, dot.name, dot)
    assert options.dot_product_refusal("arm64-dot-test") == ""
    opts = ModelSpec("m", int8_model, isa="arm64-dot-test",
                     enable_nchw44_dot=True).compile_options()
    assert opts.enable_nchw44_dot and opts.nchw44 and opts.isa == "arm64-dot-test"
    spec = ModelSpec("m", int8_model, isa="arm64-neon", enable_nchw44_dot=True)
    with pytest.raises(CompileError, match="ISA level 'arm64-neon'"):
        spec.compile_options()
    assert spec.options()["enable_nchw44_dot"] is True
    assert compiler.ModelSpec("m", int8_model).options()["enable_nchw44_dot"] is False
