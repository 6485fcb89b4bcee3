"""The NEON builds (armv7-neon: 6x8 GEMM tile; arm64-neon: 8x12 lane-FMA tile) as a whole,
cross-built and run under qemu-user: warning-free and guarded kernels, a zoo network
against MegEngine, deterministic packed builds. The kernels' cases (every implementation,
NEON ones under qemu) are in tests/kernels/<family>/cases.py.
"""
import os
import subprocess

import numpy as np
import onnx
import pytest

from build_support import require_target
from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.host import RUNTIME_DIR
from reference import assert_close
from test_kernels_isa import every_family_model

# (target, ISA level, kernel suffix of the packed GEMM, its tile)
TARGETS = [("arm64", "arm64-neon", "_neon64", "8x12"), ("armv7", "armv7-neon", "_neon", "6x8")]
IDS = [t[0] for t in TARGETS]


@pytest.mark.parametrize("target,isa,suffix,tile", TARGETS, ids=IDS)
def test_kernels_compile_warning_free_and_guarded(target, isa, suffix, tile, tmp_path):
    """Every NEON kernel family with -std=c99 -Wall -Wextra -Werror -pedantic for its target;
    AArch64-only kernels refuse (#error) to compile for ARMv7."""
    t = require_target(target)
    path = str(tmp_path / "m.onnx")
    onnx.save(every_family_model(), path)
    bundle = compile_bundle([ModelSpec("m", path)], str(tmp_path / "out"), isa=isa)
    names = [k.name for k in bundle.kernels]
    assert sum(n.endswith(suffix) for n in names) >= 3 and any("depthwise" in n for n in names)
    assert any(n.startswith("ew_") for n in names)
    if target == "armv7":
        assert any(n.startswith("ew_") and n.endswith("_neon") for n in names), names
    assert "#include <arm_neon.h>" in open(bundle.files["kernels_c"]).read()

    def compile_for(tgt):
        return subprocess.run([tgt.cc, *tgt.compile_flags(), "-std=c99", "-Wall", "-Wextra",
                               "-Werror", "-pedantic", "-O2", "-I",
                               os.path.join(RUNTIME_DIR, "include"), "-c",
                               bundle.files["kernels_c"], "-o", str(tmp_path / "k.o")],
                              capture_output=True, text=True)

    proc = compile_for(t)
    assert proc.returncode == 0, proc.stderr
    if target == "arm64":
        proc = compile_for(require_target("armv7"))
        assert proc.returncode != 0 and "these kernels use NEON64" in proc.stderr


@pytest.mark.parametrize("name,target,isa", [("mobilenet_v2", "arm64", "arm64-neon"),
                                             ("resnet18", "arm64", "arm64-neon"),
                                             ("mobilenet_v2", "armv7", "armv7-neon")])
def test_zoo_network_matches_megengine(name, target, isa, tmp_path, summary):
    """Real networks (MegEngine zoo, seeded weights, BN folded, small input) end to end on
    the NEON kernels, against MegEngine running the same file."""
    import mge_zoo
    from megcc_builder.compiler import compile_model
    from megcc_builder.host import compile_and_run

    require_target(target)
    shape = (1, 3, 64, 64)
    path = mge_zoo.dump_model(name, str(tmp_path / f"{name}.mge"), True, input_shape=shape,
                              fuse_conv_bias=True)
    kernels = [i.kernel.name for i in compile_model(ModelSpec(name, path, isa=isa)).plans[0].instrs]
    neon = [k for k in kernels if k.endswith(("_neon", "_neon64"))]
    convs = [k for k in kernels if k.startswith("conv2d")]
    assert convs and all(k in neon for k in convs), kernels  # every conv runs on NEON
    x = np.random.default_rng(3).uniform(-1, 1, shape).astype(np.float32)
    refs = mge_zoo.reference_output(path, {"data": x})
    ours = compile_and_run(path, {"data": x}, isa=isa, target=target)
    assert len(ours) == len(refs)
    for got, ref in zip(ours.values(), refs):
        err = assert_close(got, ref, what=f"{name} on {target}")
        summary(f"{name} on {target} ({isa}, {len(neon)}/{len(kernels)} NEON kernels): "
                f"max normalised error {err:.2e}")


@pytest.mark.parametrize("isa", ["arm64-neon", "armv7-neon"])
def test_packed_build_is_deterministic(isa, tmp_path):
    """Same model and options: byte-identical kernels.c and model (packed weights included),
    and the packed weights replace the originals (nothing stored twice)."""
    path = str(tmp_path / "m.onnx")
    onnx.save(every_family_model(), path)
    outs = []
    for d in ("a", "b"):
        bundle = compile_bundle([ModelSpec("m", path)], str(tmp_path / d), isa=isa)
        outs.append((open(bundle.files["kernels_c"], "rb").read(),
                     open(bundle.files["m.tiny"], "rb").read()))
    assert outs[0] == outs[1]
    plan = bundle.models[0].plans[0]
    weights = {n for i in plan.instrs if "gemm" in i.kernel.name
               and i.kernel.name.endswith(("_neon", "_neon64")) for n in i.inputs[1:2]}
    assert len(weights) >= 2 and all("__neon" in n for n in weights), weights
    assert not any(n in ("w1", "w3") for i in plan.instrs for n in i.inputs)
