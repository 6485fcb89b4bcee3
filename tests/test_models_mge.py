"""MegEngine models end to end: our compiler + C runtime against MegEngine itself.

Each zoo model (seeded weights, non-trivial BN statistics) is dumped plain, with
optimize_for_inference, and with conv+bias+nonlinearity fusion; we compile the dumped file,
build the C code on the host, run it, and compare with MegEngine running the same file.
Tolerance: |ours - ref| / max(1, |ref|) <= 1e-4 everywhere.
"""
import os

import numpy as np
import pytest

import mge_zoo
from megcc_builder.compiler import ModelSpec, compile_model
from megcc_builder.options import CompileOptions
from megcc_builder.host import compile_and_run
from reference import assert_close

IMAGENET = (1, 3, 224, 224)
SHAPES = {"mobilenet_v1": IMAGENET, "mobilenet_v2": IMAGENET, "resnet18": IMAGENET,
          "shufflenet_v2": IMAGENET, "digits": (1, 1, 8, 8), "opzoo": (2, 8, 12, 12)}
DUMP_MODES = {"plain": (False, False), "optimized": (True, False), "fused": (True, True)}
# every zoo network, including "opzoo" (an operator mix)
E2E_MODELS = list(mge_zoo.MODELS)


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("mge_e2e"))


def dumped(zoo_dir, name, mode):
    optimized, fuse = DUMP_MODES[mode]
    path = os.path.join(zoo_dir, f"{name}_{mode}.mge")
    return mge_zoo.dump_model(name, path, optimized, input_shape=SHAPES[name],
                              fuse_conv_bias=fuse)


@pytest.mark.parametrize("mode", DUMP_MODES)
@pytest.mark.parametrize("name", E2E_MODELS)
def test_matches_megengine(zoo_dir, name, mode, summary):
    path = dumped(zoo_dir, name, mode)
    x = np.random.default_rng(3).uniform(-1, 1, SHAPES[name]).astype(np.float32)
    refs = mge_zoo.reference_output(path, {"data": x})
    ours = compile_and_run(path, {"data": x})
    assert len(ours) == len(refs)
    for (out_name, got), ref in zip(ours.items(), refs):
        err = assert_close(got, ref, what=f"{name}/{mode}/{out_name}")
        summary(f"{name} [{mode}] {out_name}: max normalised error {err:.2e}")


@pytest.mark.parametrize("isa", ["generic", "native"])
@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "resnet18", "shufflenet_v2"])
def test_nchw44_dump_matches_megengine(zoo_dir, name, isa, summary):
    """A model MegEngine itself dumped in NCHW44 format (5-D activations, re-laid-out
    weights): the frontend converts each NCHW44 conv/pooling to NCHW between relayouts, and
    the transpose pass cancels every relayout between neighbours, so no copy is left."""
    from megcc_builder.compiler import build_plan
    from megcc_builder.frontend.mge import load_mge

    shape = (1, 3, 32, 32)
    path = mge_zoo.dump_model(name, os.path.join(zoo_dir, f"{name}_nchw44.mge"), True,
                              input_shape=shape, fuse_conv_bias=True, nchw44=True)
    x = np.random.default_rng(5).uniform(-1, 1, shape).astype(np.float32)
    refs = mge_zoo.reference_output(path, {"data": x})
    ours = compile_and_run(path, {"data": x}, isa=isa)
    for (out_name, got), ref in zip(ours.items(), refs):
        err = assert_close(got, ref, what=f"{name}/nchw44/{out_name}")
        summary(f"{name} [nchw44 dump, {isa}] {out_name}: max normalised error {err:.2e}")
    nchw_path = mge_zoo.dump_model(name, os.path.join(zoo_dir, f"{name}_nchw_32.mge"), True,
                                   input_shape=shape, fuse_conv_bias=True)

    def transposes(p):
        ops = build_plan(load_mge(p), name, CompileOptions(isa=isa)).graph.ops
        assert sum(op.type == "Conv" for op in ops) >= 10
        return sum(op.type == "Transpose" for op in ops)
    # the model's own transposes (ShuffleNetV2's channel shuffle) stay, and MegEngine's
    # relayouts at the ends of the NCHW44 region (at most one in, one out); the relayouts the
    # frontend put around every conv and pooling are gone
    assert transposes(path) <= transposes(nchw_path) + 2


@pytest.mark.parametrize("name", E2E_MODELS)
def test_arena_close_to_liveness_bound(zoo_dir, name, summary):
    plan = compile_model(ModelSpec(name, dumped(zoo_dir, name, "plain"))).plans[0]
    arena, bound = plan.memory.arena_size, plan.memory.lower_bound
    summary(f"{name}: arena {arena} B, liveness lower bound {bound} B, ratio {arena / bound:.4f}")
    assert bound <= arena <= 1.05 * bound


def test_digits_sample_model_classifies_real_images(summary):
    """The committed digits sample model on its held-out real images from sklearn."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    model = os.path.join(root, "samples", "digits", "digits.mge")
    data = np.load(os.path.join(root, "samples", "digits", "digits_test.npz"))
    images, labels = data["x"], data["y"]
    # the whole held-out set as one batch: the compiler re-plans the model for batch 100
    (logits,) = compile_and_run(model, {"data": images}).values()
    (ref,) = mge_zoo.reference_output(model, {"data": images})
    assert_close(logits, ref)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == labels))
    summary(f"digits: {accuracy:.2%} of {len(images)} held-out images correct")
    assert accuracy >= 0.95
