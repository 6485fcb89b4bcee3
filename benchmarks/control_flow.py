"""Cost of run-time control flow (If, Loop) in compiled plans.

1. Silero VAD (If on the run-time sample rate `sr`, whole network in the branches): the
   plan with `sr` a run-time input against a plan specialised on sr=16000 (the If inlined),
   same frame size, same in-process session API. Prints the fastest forward of each (us)
   and the ratio.
2. A Loop with a run-time trip count and a tiny body (y = y * a + b on 16 floats): the
   fastest forward for M = 1 and M = 1001, so the per-iteration cost of the loop machinery
   (counter test, branch, carried copy, increment, jump) plus the body's one fused kernel.

    python benchmarks/control_flow.py [-n 200]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as h

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from megcc_builder import InferenceSession  # noqa: E402


def fastest(sess, feeds, n):
    sess.run(None, feeds)
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        best = min(best, time.perf_counter() - t0)
    return best * 1e6


def silero(n):
    from pypi_models import model_path

    path = model_path("silero_vad")
    shapes = {"input": (1, 512), "state": (2, 1, 128)}
    feeds = {"input": np.random.default_rng(0).standard_normal((1, 512)).astype(np.float32),
             "state": np.zeros((2, 1, 128), np.float32), "sr": np.array(16000, np.int64)}
    runtime = InferenceSession(path, input_shapes=shapes)
    model = onnx.load(path)
    keep = [vi for vi in model.graph.input if vi.name != "sr"]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(16000, np.int64), "sr"))
    static = InferenceSession(model, input_shapes=shapes)
    t_rt = fastest(runtime, feeds, n)
    t_st = fastest(static, {k: v for k, v in feeds.items() if k != "sr"}, n)
    print(f"silero_vad 16 kHz frame: run-time sr {t_rt:8.1f} us, specialised sr {t_st:8.1f} us, "
          f"ratio {t_rt / t_st:.3f}")


def loop(n):
    body = h.make_graph([h.make_node("Mul", ["y_in", "a"], ["t"]),
                         h.make_node("Add", ["t", "b"], ["y_out"]),
                         h.make_node("Identity", ["c_in"], ["c_out"])], "body",
                        [h.make_tensor_value_info("i", TP.INT64, []),
                         h.make_tensor_value_info("c_in", TP.BOOL, []),
                         h.make_tensor_value_info("y_in", TP.FLOAT, [16])],
                        [h.make_tensor_value_info("c_out", TP.BOOL, []),
                         h.make_tensor_value_info("y_out", TP.FLOAT, [16])])
    inits = [onnx.numpy_helper.from_array(np.full(16, 0.5, np.float32), "a"),
             onnx.numpy_helper.from_array(np.full(16, 0.25, np.float32), "b")]
    g = h.make_graph([h.make_node("Loop", ["M", "", "y0"], ["y"], body=body)], "g",
                     [h.make_tensor_value_info("M", TP.INT64, []),
                      h.make_tensor_value_info("y0", TP.FLOAT, [16])],
                     [h.make_tensor_value_info("y", TP.FLOAT, [16])], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    sess = InferenceSession(m)
    y0 = np.ones(16, np.float32)
    t1 = fastest(sess, {"M": np.array(1, np.int64), "y0": y0}, n)
    t2 = fastest(sess, {"M": np.array(1001, np.int64), "y0": y0}, n)
    print(f"Loop, 16-float body: M=1 {t1:8.1f} us, M=1001 {t2:8.1f} us, "
          f"{(t2 - t1) / 1000 * 1e3:.1f} ns per iteration")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="timed runs per case (fastest shown)")
    args = ap.parse_args()
    silero(args.n)
    loop(args.n)


if __name__ == "__main__":
    main()
