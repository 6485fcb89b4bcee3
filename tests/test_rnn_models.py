"""A real recurrent speech model no one here wrote: Silero VAD 6.2.3 (its LSTM decoder),
streamed over consecutive chunks of a speech-like signal the way the VAD is used (each
call's state output is the next call's state input), against onnxruntime doing the same.
|ours - ref| / max(1, |ref|) <= 1e-4 for every output of every call.

- silero_vad_openvino_16k: static (1, 576) chunk (512 samples + 64 of context) and a
  (2, 1, 128) state;
- silero_vad_16k_sequence: L chunks at once through the LSTM (a symbolic sequence length),
  compiled once at three lengths (one plan each) and streamed in groups of those lengths.

Run with -s to see the speech probabilities side by side.
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from megcc_builder import InferenceSession
from pypi_models import model_path

TOL = 1e-4
RATE, CHUNK, CONTEXT = 16000, 512, 64


def speech_like(seconds: float, seed: int = 7) -> np.ndarray:
    """Float32 audio at 16 kHz: syllables of a voiced source (a glottal pulse train with a
    wandering pitch) through three formant resonators, separated by pauses of faint noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t) + 10 * rng.standard_normal(n).cumsum() / n
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    source = np.zeros(n)
    for k in range(1, 30):  # harmonics with a -12 dB/octave glottal tilt
        source += np.sin(k * phase) / k ** 2
    out = np.zeros(n)
    for freq, bw in ((700, 90), (1200, 110), (2600, 160)):  # two-pole resonators
        r = np.exp(-np.pi * bw / RATE)
        a1, a2 = 2 * r * np.cos(2 * np.pi * freq / RATE), -r * r
        y1 = y2 = 0.0
        res = np.empty(n)
        for i in range(n):
            y = source[i] + a1 * y1 + a2 * y2
            res[i], y2, y1 = y, y1, y
        out += res / np.abs(res).max()
    syllables = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 0.5  # ~5 syllables / s
    voiced = (t % 1.6) < 1.0  # a second of speech, then a pause
    audio = 0.3 * out / np.abs(out).max() * syllables * voiced
    audio += 0.003 * rng.standard_normal(n)
    return audio.astype(np.float32)


def chunks(audio: np.ndarray) -> np.ndarray:
    """(count, 576): each 512-sample chunk after the 64 samples before it (zeros first)."""
    padded = np.concatenate([np.zeros(CONTEXT, np.float32), audio])
    count = len(audio) // CHUNK
    return np.stack([padded[k * CHUNK:k * CHUNK + CONTEXT + CHUNK] for k in range(count)])


def worst(ours, ref) -> float:
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape
    return float(np.max(np.abs(ours - ref) / np.maximum(1.0, np.abs(ref)), initial=0.0))


def ort_session(path):
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("isa", ["generic", "native"])
def test_silero_vad_streaming(isa):
    path = model_path("silero_vad_openvino_16k")
    ours, ref = InferenceSession(path, isa=isa), ort_session(path)
    xs = chunks(speech_like(3.2))
    state_o = state_r = np.zeros((2, 1, 128), np.float32)
    probs, errs = [], []
    for x in xs:
        prob_o, state_o = ours.run(None, {"input": x[None], "state": state_o})
        prob_r, state_r = ref.run(None, {"input": x[None], "state": state_r})
        errs.append(max(worst(prob_o, prob_r), worst(state_o, state_r)))
        probs.append((float(prob_o[0, 0]), float(prob_r[0, 0])))
    print(f"\nsilero_vad_openvino_16k [{isa}], {len(xs)} chunks of 32 ms: speech probability "
          f"ours / onnxruntime")
    for k in range(0, len(probs), 10):
        print("  " + "  ".join(f"{a:.5f}/{b:.5f}" for a, b in probs[k:k + 10]))
    print(f"  max error {max(errs):.2e}")
    assert max(errs) <= TOL, errs
    # the signal is speech-like where it is voiced: the VAD (both runtimes) says so
    assert max(p for p, _ in probs) > 0.5 > min(p for p, _ in probs)


LENGTHS = (1, 4, 9)


def test_silero_vad_sequence_lengths():
    """One compile, three sequence lengths (plans), streamed with the LSTM state carried."""
    path = model_path("silero_vad_16k_sequence")
    shapes = [{"input": (n, CONTEXT + CHUNK), "h": (1, 1, 128), "c": (1, 1, 128)}
              for n in LENGTHS]
    ours, ref = InferenceSession(path, input_shapes=shapes), ort_session(path)
    xs = chunks(speech_like(3.2, seed=11))
    zero = np.zeros((1, 1, 128), np.float32)
    ho, co, hr, cr = zero, zero, zero, zero
    pos, k, errs, probs = 0, 0, [], []
    while pos + LENGTHS[k % 3] <= len(xs):
        n = LENGTHS[k % 3]
        x = xs[pos:pos + n]
        po, ho, co = ours.run(None, {"input": x, "h": ho, "c": co})
        pr, hr, cr = ref.run(None, {"input": x, "h": hr, "c": cr})
        assert po.shape == (n,)
        errs.append(max(worst(po, pr), worst(ho, hr), worst(co, cr)))
        probs += list(zip(po.tolist(), pr.tolist()))
        pos, k = pos + n, k + 1
    print(f"\nsilero_vad_16k_sequence, lengths {LENGTHS} in turn, {pos} chunks: ours / onnxruntime")
    for j in range(0, len(probs), 10):
        print("  " + "  ".join(f"{a:.5f}/{b:.5f}" for a, b in probs[j:j + 10]))
    print(f"  max error {max(errs):.2e}")
    assert k >= 6 and max(errs) <= TOL, errs


def test_silero_vad_threads_bitwise():
    """The recurrent kernel's GEMMs split over threads by whole tiles: the same bits."""
    path = model_path("silero_vad_16k_sequence")
    shapes = {"input": (9, CONTEXT + CHUNK), "h": (1, 1, 128), "c": (1, 1, 128)}
    xs = chunks(speech_like(0.4, seed=3))[:9]
    rng = np.random.default_rng(5)
    feed = {"input": xs, "h": rng.uniform(-1, 1, (1, 1, 128)).astype(np.float32),
            "c": rng.uniform(-1, 1, (1, 1, 128)).astype(np.float32)}
    one = InferenceSession(path, input_shapes=shapes, threads=1).run(None, feed)
    two = InferenceSession(path, input_shapes=shapes, threads=2).run(None, feed)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
