"""The 9 real models shipped in the onnx package: ONNX's own real-model test through our
backend, and a comparison with onnxruntime on seeded random inputs."""
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from megcc_builder import onnx_backend
from megcc_builder.compiler import ModelSpec, compile_model
from megcc_builder.host import compile_and_run
from onnx_suite import suite_cases
from reference import assert_close

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
MODELS = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
          "shufflenet", "squeezenet", "vgg19", "zfnet512"]

# ONNX's own OnnxBackendRealModelTest cases for these models, run through our backend.
globals().update(suite_cases(onnx_backend, __name__, r"^test_(" + "|".join(MODELS) + r")_cpu$"))


def model_path(name):
    return os.path.join(LIGHT, f"light_{name}.onnx")


def with_random_weights(model: onnx.ModelProto, seed: int) -> onnx.ModelProto:
    """The shipped light models fill every weight with one constant (ConstantOfShape), so
    all classes score alike; seeded He-scaled weights make the comparison discriminating.
    1-D tensors (biases, BatchNorm statistics) get values in [0.5, 1.5): valid variances."""
    rng = np.random.default_rng(seed)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    shapes = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    kept = []
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in shapes:
            shape = tuple(int(d) for d in shapes[node.input[0]])
            if len(shape) >= 2:
                value = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
            else:
                value = rng.uniform(0.5, 1.5, shape)
            model.graph.initializer.append(
                onnx.numpy_helper.from_array(value.astype(np.float32), node.output[0]))
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return model


@pytest.mark.parametrize("name", MODELS)
def test_matches_onnxruntime(name, summary, tmp_path):
    path = str(tmp_path / f"{name}.onnx")
    onnx.save(with_random_weights(onnx.load(model_path(name)), seed=11), path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    feeds = {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in sess.get_inputs()}
    ref = sess.run(None, feeds)
    ours = compile_and_run(path, feeds)
    for out, r in zip(sess.get_outputs(), ref):
        assert np.ptp(r) > 1e-3, "the reference output must vary for the test to mean much"
        err = assert_close(ours[out.name], r, what=f"{name}:{out.name}")
        summary(f"{name}: output {out.name} {list(r.shape)} (random weights) max normalised "
                f"error {err:.2e}, top-1 {int(np.argmax(r))} = ours {int(np.argmax(ours[out.name]))}")
        assert np.argmax(ours[out.name]) == np.argmax(r)


@pytest.mark.parametrize("name", [m for m in MODELS if m not in ("vgg19", "zfnet512", "bvlc_alexnet")]
                         + ["vgg19", "zfnet512", "bvlc_alexnet"])
def test_arena_close_to_liveness_bound(name, summary):
    plan = compile_model(ModelSpec(name, model_path(name))).plans[0]
    arena, bound = plan.memory.arena_size, plan.memory.lower_bound
    summary(f"{name}: arena {arena} B, liveness lower bound {bound} B, ratio {arena / bound:.4f}")
    assert bound <= arena <= 1.05 * bound
