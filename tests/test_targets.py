"""End to end on every target: `scons target=<name>` builds the digits and classify samples
(digits: model + images in flash, static arena; classify: MobileNetV1 x0.25 at 64x64, from a
file on Linux, embedded on bare metal), runs them under the target's emulator, and the
outputs must equal the host's (the Python host runner, megcc_builder.host) within 1e-4
relative to magnitude; digits predictions must be right and the Cortex-M digits program
must fit 256 KB flash / 64 KB RAM."""
from __future__ import annotations

import functools
import os
import re

import numpy as np
import pytest

from build_support import (ROOT, SCONS, TOL, max_rel_err, parse_classify, parse_digits,
                           require_target, run, scons_env, synthetic_image)

TARGETS = ["x86_64", "x86_64-v3", "arm64", "armv7", "riscv64", "cortex-m4", "cortex-m55",
           "cortex-m3"]
CLASSIFY = {"classify_width": "0.25", "classify_size": "64"}
DIGITS_MGE = os.path.join(ROOT, "samples", "digits", "digits.mge")


@functools.lru_cache(maxsize=None)
def host_digits():
    """Host logits of the 100 test images: compiled once, one runner call per image."""
    from megcc_builder.compiler import ModelSpec, compile_bundle
    from megcc_builder.host import build_runner, run_blob
    import tempfile

    data = np.load(os.path.join(ROOT, "samples", "digits", "digits_test.npz"))
    out = tempfile.mkdtemp(prefix="megcc-host-digits-")
    b = compile_bundle([ModelSpec("digits", DIGITS_MGE, [{"data": (1, 1, 8, 8)}])], out,
                       save_c_array=False)
    runner = build_runner(b.files["kernels_c"])
    logits = [run_blob(runner, b.files["digits.tiny"], [img[None]])[0].ravel()
              for img in data["x"]]
    return np.array(logits), data["y"]


@functools.lru_cache(maxsize=None)
def host_classify(mge_path: str):
    from megcc_builder.host import compile_and_run

    x = synthetic_image(3 * 64 * 64).reshape(1, 3, 64, 64)
    (out,) = compile_and_run(mge_path, {"data": x}).values()
    return x, out.ravel()


# Targets whose emulated board cannot hold the classify sample's 1.9 MB of embedded
# weights: qemu's MPS3-AN547 (cortex-m55) reads its reset vector from the 512 KB ITCM, the
# only region that can serve as flash for a semihosted -kernel ELF. Digits runs there.
NO_CLASSIFY = {"cortex-m55"}


def build(target: str, build_dir: str) -> None:
    classify = target not in NO_CLASSIFY
    run([*SCONS, "-C", ROOT, "-Q", "-j2", f"target={target}", f"build_dir={build_dir}",
         f"classify={int(classify)}", *(f"{k}={v}" for k, v in CLASSIFY.items())],
        env=scons_env())


@pytest.mark.parametrize("target", TARGETS)
def test_samples_run_on_target(target, tmp_path):
    t = require_target(target)
    build_dir = str(tmp_path / "build")
    build(target, build_dir)
    out_dir = os.path.join(build_dir, target)

    # digits: every prediction equals the host's, logits within tolerance, labels right.
    proc = run(t.run_command(os.path.join(out_dir, "digits", "digits")), timeout=300)
    labels, preds, logits, correct = parse_digits(proc.stdout)
    ref_logits, ref_labels = host_digits()
    assert labels == [int(v) for v in ref_labels]
    assert preds == [int(v) for v in ref_logits.argmax(1)]
    assert max_rel_err(logits, ref_logits) <= TOL
    assert correct == sum(p == l for p, l in zip(preds, labels)) and correct >= 95

    # classify: MobileNetV1 x0.25 on the synthetic image, all 1000 outputs compared.
    if target in NO_CLASSIFY:
        return _check_digits_budget(t, target, out_dir)
    prog = os.path.join(out_dir, "classify", "classify")
    blob = os.path.join(out_dir, "classify", "classify.megcc", "classify.tiny")
    args = [] if t.baremetal else [blob, "--hex", "-t", "1"]
    proc = run(t.run_command(prog, args), timeout=300)
    top, outs = parse_classify(proc.stdout)
    mge = os.path.join(build_dir, "models", "mobilenet_v1_w0.25_64.mge")
    _, ref = host_classify(mge)
    assert outs.shape == (1000,)
    assert max_rel_err(outs, ref) <= TOL
    assert top == [int(i) for i in np.argsort(-ref, kind="stable")[:5]]

    _check_digits_budget(t, target, out_dir)


def _check_digits_budget(t, target: str, out_dir: str) -> None:
    report = open(os.path.join(out_dir, "digits", "digits.size.txt")).read()
    print(report)
    if t.baremetal:
        # The budget is enforced by the linker (memory map from the "mcu" profile); the
        # figures in the report must agree with it.
        m = re.search(r"flash (\d+) of (\d+) bytes, RAM (\d+) of (\d+) bytes", report)
        flash, flash_max, ram, ram_max = map(int, m.groups())
        assert flash_max == 256 * 1024 and ram_max == 64 * 1024
        assert flash <= flash_max and ram <= ram_max
        print(f"{target} digits: flash {flash} B ({flash / 1024:.1f} KiB) of 256 KiB, "
              f"RAM {ram} B ({ram / 1024:.1f} KiB) of 64 KiB")


def test_classify_host_output_matches_megengine(tmp_path):
    """The host reference itself is right: MegEngine on the same .mge and input."""
    require_target("x86_64")
    import sys

    sys.path.insert(0, os.path.join(ROOT, "samples", "classify"))
    import make_model  # noqa: E402  (the sample's own script)

    mge = str(tmp_path / "mobilenet.mge")
    make_model.dump(mge, width=0.25, size=64)
    x, ours = host_classify(mge)
    from megengine.utils.comp_graph_tools import GraphInference

    (ref,) = GraphInference(mge).run(inp_dict={"data": x}).values()
    assert max_rel_err(ours, np.asarray(ref).ravel()) <= TOL


def test_every_toolchain_names_a_level_whose_flags_it_passes():
    """The ISA level's description (megcc_builder/target) is where its enabling flags are
    written; a toolchain naming the level must compile with them, or kernels.c stops at its
    #error guard. The loader refuses a toolchain that does not."""
    import dataclasses

    from megcc_builder import targets
    from megcc_builder.isa import spec

    for name in targets.names():
        target = targets.load(name)
        assert set(spec(target.isa).cflags) <= set(target.machine_flags), name
    v3 = targets.load("x86_64-v3")
    broken = dataclasses.replace(v3, machine_flags=[f for f in v3.machine_flags
                                                    if f != "-march=x86-64-v3"])
    with pytest.raises(targets.TargetError, match="needs the flags -march=x86-64-v3"):
        targets._check_isa_level(broken, "x86_64-v3.json")
    with pytest.raises(targets.TargetError, match="unknown ISA level"):
        targets._check_isa_level(dataclasses.replace(v3, isa="avx9"), "x.json")
