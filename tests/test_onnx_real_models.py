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


@pytest.mark.parametrize("name", MODELS)
def test_matches_onnxruntime(name):
    path = model_path(name)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    feeds = {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in sess.get_inputs()}
    ref = sess.run(None, feeds)
    ours = compile_and_run(path, feeds)
    for out, r in zip(sess.get_outputs(), ref):
        err = assert_close(ours[out.name], r, what=f"{name}:{out.name}")
        print(f"{name}: output {out.name} {list(r.shape)} max normalised error {err:.2e}")


@pytest.mark.parametrize("name", [m for m in MODELS if m not in ("vgg19", "zfnet512", "bvlc_alexnet")]
                         + ["vgg19", "zfnet512", "bvlc_alexnet"])
def test_arena_close_to_liveness_bound(name):
    plan = compile_model(ModelSpec(name, model_path(name))).plans[0]
    arena, bound = plan.memory.arena_size, plan.memory.lower_bound
    print(f"{name}: arena {arena} B, liveness lower bound {bound} B, ratio {arena / bound:.4f}")
    assert bound <= arena <= 1.05 * bound
