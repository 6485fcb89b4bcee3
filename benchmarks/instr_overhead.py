"""Per-instruction overhead of the runtime's run loop and kernel call path: models of many
tiny operators, timed in C (megcc forward, median) as instructions per microsecond.

    python benchmarks/instr_overhead.py [-n 200] [--ops 400]

- `add`: a chain of Add(x, c) on 1x8 floats compiled without fusion: one tiny element-wise
  kernel per instruction (the run loop and the call dominate);
- `conv`: a chain of 1x1 Conv + bias on 1x4x2x2 (each a separate packed-GEMM or portable
  kernel call with its params, workspace and pool argument);
- `fc`: a chain of 16 -> 16 fully connected layers (Gemm + bias) on one row;
- `pool`: MaxPool 1x1 / Relu alternating on 1x4x2x2 (pooling and unary kernels).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from megcc_builder.session import InferenceSession  # noqa: E402


def chain(kind: str, ops: int):
    nodes, inits, x = [], [], "x"
    shape = [1, 8] if kind == "add" else [1, 16] if kind == "fc" else [1, 4, 2, 2]
    for i in range(ops):
        y = "y" if i == ops - 1 else f"t{i}"
        if kind == "add":
            inits.append(numpy_helper.from_array(np.full([1, 8], 0.001 * i, np.float32), f"c{i}"))
            nodes.append(helper.make_node("Add", [x, f"c{i}"], [y]))
        elif kind == "fc":
            inits.append(numpy_helper.from_array(
                (np.eye(16) * 0.9).astype(np.float32), f"w{i}"))
            inits.append(numpy_helper.from_array(np.full(16, 0.01, np.float32), f"b{i}"))
            nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [y]))
        elif kind == "conv":
            inits.append(numpy_helper.from_array(
                (np.eye(4) * 0.9).astype(np.float32).reshape(4, 4, 1, 1), f"w{i}"))
            inits.append(numpy_helper.from_array(np.full(4, 0.01, np.float32), f"b{i}"))
            nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [y]))
        else:
            nodes.append(helper.make_node("MaxPool", [x], [y], kernel_shape=[1, 1]) if i % 2
                         else helper.make_node("Relu", [x], [y]))
        x = y
    g = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def measure(kind: str, ops: int, runs: int):
    sess = InferenceSession(chain(kind, ops), fuse=kind != "add")
    x = np.random.default_rng(0).standard_normal(sess.get_inputs()[0].shape).astype(np.float32)
    net = sess.native_network()
    n_instrs = net.model.n_instructions(net.plan)
    times = net.time_forward([x], 20, runs, "wall")[0]
    best, med = min(times), statistics.median(times)
    return n_instrs, med, best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=200)
    ap.add_argument("--ops", type=int, default=400)
    args = ap.parse_args(argv)
    print("| model | instructions | forward median us | best us | instructions/us (median) |")
    print("|---|---:|---:|---:|---:|")
    for kind in ("add", "conv", "fc", "pool"):
        n, med, best = measure(kind, args.ops, args.runs)
        print(f"| {kind} x{args.ops} | {n} | {med * 1e3:.1f} | {best * 1e3:.1f} | "
              f"{n / (med * 1e3):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
