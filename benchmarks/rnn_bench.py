"""Recurrent models: ours (the in-process session, megcc_builder.InferenceSession) against
onnxruntime, both single-threaded, same run. Prints the fastest call of each in process CPU
time (on a shared machine waiting for a core is not counted) and the ratio ours / ORT.

    python benchmarks/rnn_bench.py [--isa native] [-n 50]

Models: Silero VAD 6.2.3 (one 32 ms chunk through the static model; 32 chunks through the
sequence model's LSTM), and synthetic single layers: LSTM and GRU with hidden 256 over 100
steps of input 128 (batch 1 and 4, forward and bidirectional).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from megcc_builder import InferenceSession  # noqa: E402


def best_time(fn, n: int) -> float:
    fn()
    best = float("inf")
    for _ in range(n):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def layer(op: str, S: int, B: int, I: int, H: int, direction: str) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    G, D = {"LSTM": 4, "GRU": 3}[op], 2 if direction == "bidirectional" else 1
    inits = [numpy_helper.from_array(rng.uniform(-0.1, 0.1, s).astype(np.float32), n)
             for n, s in (("W", (D, G * H, I)), ("R", (D, G * H, H)), ("B", (D, 2 * G * H)))]
    node = helper.make_node(op, ["X", "W", "R", "B"], ["Y", "Y_h"], hidden_size=H,
                            direction=direction)
    graph = helper.make_graph([node], "layer",
                              [helper.make_tensor_value_info("X", 1, (S, B, I))],
                              [helper.make_empty_tensor_value_info("Y"),
                               helper.make_empty_tensor_value_info("Y_h")], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


def compare(label: str, path: str, feed, shapes, isa: str, n: int) -> None:
    ours = InferenceSession(path, input_shapes=shapes, isa=isa)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    ref = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    a = best_time(lambda: ours.run(None, feed), n)
    b = best_time(lambda: ref.run(None, feed), n)
    print(f"{label:44s} {a * 1e3:9.3f} ms {b * 1e3:9.3f} ms {a / b:7.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--isa", default="native")
    ap.add_argument("-n", type=int, default=50)
    args = ap.parse_args()
    from pypi_models import model_path

    rng = np.random.default_rng(1)
    print(f"{'model':44s} {'ours':>12s} {'onnxruntime':>12s} {'ratio':>7s}")
    vad = model_path("silero_vad_openvino_16k")
    compare("silero_vad_openvino_16k (1 chunk)", vad,
            {"input": rng.standard_normal((1, 576)).astype(np.float32) * 0.1,
             "state": np.zeros((2, 1, 128), np.float32)}, None, args.isa, args.n)
    seq = model_path("silero_vad_16k_sequence")
    h = np.zeros((1, 1, 128), np.float32)
    compare("silero_vad_16k_sequence (32 chunks)", seq,
            {"input": rng.standard_normal((32, 576)).astype(np.float32) * 0.1, "h": h, "c": h},
            {"input": (32, 576), "h": (1, 1, 128), "c": (1, 1, 128)}, args.isa, args.n)
    with tempfile.TemporaryDirectory(prefix="rnn-bench-") as tmp:
        for op, B, direction in (("LSTM", 1, "forward"), ("LSTM", 4, "forward"),
                                 ("LSTM", 1, "bidirectional"), ("GRU", 1, "forward"),
                                 ("GRU", 4, "bidirectional")):
            path = os.path.join(tmp, f"{op}_{B}_{direction}.onnx")
            onnx.save(layer(op, 100, B, 128, 256, direction), path)
            x = rng.standard_normal((100, B, 128)).astype(np.float32)
            compare(f"{op} S=100 B={B} I=128 H=256 {direction}", path, {"X": x}, None,
                    args.isa, max(5, args.n // 5))


if __name__ == "__main__":
    main()
