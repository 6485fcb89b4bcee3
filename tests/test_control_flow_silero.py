"""Silero VAD (a real model nobody here wrote, from its pinned PyPI wheel): its whole
network sits in the branches of an If on the sample-rate input `sr`, with nested Ifs and an
LSTM inside. Compiled once with `sr` a run-time input (never specialised on its value), it
must match onnxruntime at 16 kHz and 8 kHz.

The 8 kHz network takes 256-sample frames and the 16 kHz one 512: one compiled model holds
one static plan per frame size, each with the If kept at run time; a branch whose shapes
do not work for a plan's frame size becomes a trap (taking it fails the forward, as
onnxruntime fails for that combination).
"""
import numpy as np
import onnxruntime as ort
import pytest

from megcc_builder import InferenceSession
from megcc_builder.native import MegccRuntimeError
from pypi_models import model_path

SHAPES = [{"input": (1, 512), "state": (2, 1, 128)}, {"input": (1, 256), "state": (2, 1, 128)}]


def _rel_err(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


@pytest.mark.parametrize("name, cases", [
    ("silero_vad", ((16000, 512), (8000, 256))),
    ("silero_vad_16k_op15", ((16000, 512), (16000, 256))),
])
def test_silero_vad_matches_onnxruntime_with_a_runtime_sample_rate(name, cases):
    path = model_path(name)
    sess = InferenceSession(path, input_shapes=SHAPES)
    ref = ort.InferenceSession(path)
    rng = np.random.default_rng(3)
    for sr, n in cases:
        state = np.zeros((2, 1, 128), np.float32)
        ref_state = state
        for _ in range(3):  # a few frames, feeding the state back
            x = (rng.standard_normal((1, n)) * 0.2).astype(np.float32)
            feeds = {"input": x, "state": state, "sr": np.array(sr, np.int64)}
            prob, state = sess.run(None, feeds)
            rprob, ref_state = ref.run(None, {**feeds, "state": ref_state})
            assert _rel_err(prob, rprob) < 1e-4 and _rel_err(state, ref_state) < 1e-4
    sess.close()


def test_silero_vad_wrong_rate_for_the_frame_fails_at_run_time():
    sess = InferenceSession(model_path("silero_vad"), input_shapes=SHAPES[:1])
    feeds = {"input": np.zeros((1, 512), np.float32), "state": np.zeros((2, 1, 128), np.float32)}
    sess.run(None, {**feeds, "sr": np.array(16000, np.int64)})
    with pytest.raises(MegccRuntimeError, match="if_branch_invalid"):
        sess.run(None, {**feeds, "sr": np.array(8000, np.int64)})
    sess.close()
