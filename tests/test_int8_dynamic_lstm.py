"""com.microsoft.DynamicQuantizeLSTM, as onnxruntime's quantize_dynamic writes it for an ONNX
LSTM: compiled models against onnxruntime running the same quantized model on one thread
(with several threads onnxruntime quantizes the hidden rows of a batch chunk by chunk, so
its own result depends on the thread count). Our kernel computes what onnxruntime's does,
MLAS's logistic and tanh included, so every output is compared bit for bit.

Per-operator breadth (uint8 weights, clip, input_forget, length 0, batch 1 on every path)
is in tests/kernels/quant/cases.py; this file covers quantize_dynamic's own models with
batches > 1 (per-tensor and per-channel weights, every direction, with and without
sequence_lens, initial states and peepholes, Y omitted), a run-time batch and sequence
length, and the one-line refusal."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import quantize_dynamic

from megcc_builder.host import compile_and_run

F32 = np.float32


def _lstm_model(path, direction, S, B, I, H, seed, bias=True, lens=True, states=True,
                peep=True, outs=("Y", "Y_h", "Y_c"), activations=None, dims=None):
    rng = np.random.default_rng(seed)
    D = 2 if direction == "bidirectional" else 1
    inits = [numpy_helper.from_array((rng.standard_normal((D, 4 * H, I)) * 0.4).astype(F32), "W"),
             numpy_helper.from_array((rng.standard_normal((D, 4 * H, H)) * 0.4).astype(F32), "R")]
    sb = dims or [S, B]
    ins = ["x", "W", "R", "", "", "", "", ""]
    graph_in = [helper.make_tensor_value_info("x", TensorProto.FLOAT, sb + [I])]
    if bias:
        inits.append(numpy_helper.from_array((rng.standard_normal((D, 8 * H)) * 0.3).astype(F32), "Bb"))
        ins[3] = "Bb"
    if lens:
        ins[4] = "sl"
        graph_in.append(helper.make_tensor_value_info("sl", TensorProto.INT32, [sb[1]]))
    if states:
        ins[5:7] = ["h0", "c0"]
        graph_in += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [D, sb[1], H])
                     for n in ("h0", "c0")]
    if peep:
        inits.append(numpy_helper.from_array((rng.standard_normal((D, 3 * H)) * 0.3).astype(F32), "P"))
        ins[7] = "P"
    while not ins[-1]:
        ins.pop()
    attrs = dict(hidden_size=H, direction=direction)
    if activations:
        attrs["activations"] = activations
    node = helper.make_node("LSTM", ins, list(outs), name="lstm", **attrs)
    g = helper.make_graph([node], "g", graph_in,
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                           for o in outs if o], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8),
              path)


def _quantized(tmp_path, per_channel, **kw) -> str:
    fp, dq = str(tmp_path / "f.onnx"), str(tmp_path / "dq.onnx")
    _lstm_model(fp, **kw)
    quantize_dynamic(fp, dq, per_channel=per_channel)
    assert [n.op_type for n in onnx.load(dq).graph.node] == ["DynamicQuantizeLSTM"]
    return dq


def _feeds(rng, S, B, I, H, D, lens, states, lengths=None):
    feeds = {"x": (rng.standard_normal((S, B, I)) * 1.5).astype(F32)}
    if lens:
        feeds["sl"] = np.array(lengths if lengths is not None else rng.integers(0, S + 1, B),
                               np.int32)
    if states:
        for n in ("h0", "c0"):
            feeds[n] = (rng.standard_normal((D, B, H)) * 0.5).astype(F32)
    return feeds


def _ort(path, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, feeds)


def _compare(path, feeds, summary, what, **kw):
    ref = _ort(path, feeds)
    ours = list(compile_and_run(path, feeds, **kw).values())
    assert len(ours) == len(ref)
    differ = sum(int(np.sum(o != r)) for o, r in zip(ours, ref))
    worst = max(float(np.abs(o - r).max()) for o, r in zip(ours, ref))
    total = sum(r.size for r in ref)
    summary(f"DynamicQuantizeLSTM {what}: max |ours - onnxruntime| {worst:g}, "
            f"{differ} of {total} elements differ")
    for o, r in zip(ours, ref):
        assert o.shape == r.shape
        np.testing.assert_array_equal(o, r)


CONFIGS = {
    # id: (direction, S, B, I, H, optional inputs / outputs)
    "forward_all_inputs": ("forward", 6, 3, 5, 8, {}),
    "reverse_all_inputs": ("reverse", 7, 5, 4, 11, {}),
    "bidirectional_all_inputs": ("bidirectional", 5, 4, 6, 7, {}),
    "forward_bare": ("forward", 5, 6, 9, 16, dict(bias=False, lens=False, states=False,
                                                  peep=False)),
    "bidirectional_no_lens": ("bidirectional", 4, 2, 3, 5, dict(lens=False)),
    "reverse_no_y": ("reverse", 6, 5, 5, 6, dict(outs=("", "Y_h", "Y_c"))),
    "bidirectional_y_only": ("bidirectional", 6, 7, 4, 9, dict(outs=("Y",), states=False)),
}


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("cfg", sorted(CONFIGS))
def test_quantize_dynamic_lstm_bit_exact(cfg, per_channel, tmp_path, summary):
    direction, S, B, I, H, kw = CONFIGS[cfg]
    seed = sorted(CONFIGS).index(cfg)
    path = _quantized(tmp_path, per_channel, direction=direction, S=S, B=B, I=I, H=H,
                      seed=seed, **kw)
    rng = np.random.default_rng(100 + seed)
    D = 2 if direction == "bidirectional" else 1
    lens, states = kw.get("lens", True), kw.get("states", True)
    # a row of length 0 (not without Y: onnxruntime then quantizes an unwritten buffer),
    # a full-length row, and random ones
    lengths = None
    if lens:
        lengths = rng.integers(1, S + 1, B)
        lengths[0] = S
        if kw.get("outs", ("Y",))[0]:
            lengths[-1] = 0
    feeds = _feeds(rng, S, B, I, H, D, lens, states, lengths)
    _compare(path, feeds, summary, f"{cfg} {'per-channel' if per_channel else 'per-tensor'}")


def test_run_time_batch_and_sequence(tmp_path, summary):
    """Compiled once with a symbolic sequence length and batch (the kernel takes its sizes
    as params), run at three sizes by the same runner."""
    from dynamic_e2e import Compiled
    from megcc_builder.compiler import ModelSpec
    from megcc_builder.frontend.dims import SymbolSpec

    path = _quantized(tmp_path, True, direction="bidirectional", S=0, B=0, I=5, H=6, seed=9,
                      dims=["S", "N"])
    c = Compiled(ModelSpec("m", path, [], symbols=SymbolSpec()), str(tmp_path / "out"))
    assert {s.name for s in c.info["plans"][0]["dynamic"].symbols} == {"S", "N"}
    for S, B in ((4, 3), (7, 6), (2, 1)):
        feeds = _feeds(np.random.default_rng(S * 10 + B), S, B, 5, 6, 2, True, True)
        ref = _ort(path, feeds)
        ours = c.run([feeds[n] for n in ("x", "sl", "h0", "c0")])
        assert [o.shape for o in ours] == [r.shape for r in ref]
        for o, r in zip(ours, ref):
            np.testing.assert_array_equal(o, r)
        summary(f"DynamicQuantizeLSTM symbolic S, N at S={S} N={B}: bit-exact")


def test_other_activations_refused_in_one_line(tmp_path):
    """Only the default Sigmoid, Tanh, Tanh (MLAS's) are computed: another activation is
    one line naming the node and what is wrong, exit 1, no output."""
    path = _quantized(tmp_path, False, direction="forward", S=3, B=2, I=4, H=5, seed=3,
                      activations=["Sigmoid", "Tanh", "Relu"])
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "megcc_builder.cli", "compile", path, "-o",
                        str(out)], capture_output=True, text=True)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "lstm" in r.stderr and "activations" in r.stderr and "Relu" in r.stderr, r.stderr
    assert not out.exists() or not any(out.iterdir())
