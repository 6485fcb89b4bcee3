"""QLinearAdd / QLinearMul / QLinearConcat on NEON against the portable kernels, under qemu
(user mode: only the ratio between the two is meaningful, not the times; qemu translates
NEON and scalar code at different costs than silicon). One model per run holding a
QLinearAdd and a QLinearMul of two 1x64x128x128 uint8 tensors and a QLinearConcat of two of
them with a requantized input; the runner's child-process CPU time (qemu + kernels) is
measured for the default choice (NEON) and with the portable kernels forced, interleaved,
median of several runs, minus a run of the same model at 1x1x1x1 (start-up cost).

With --count: executed guest instructions per code of each op (qemu -singlestep -d exec),
the machine-independent figure.

    PYTHONPATH=. python benchmarks/int8_neon_elementwise_qemu.py [--target arm64|armv7]
        [-n 5] [--count]"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.host import build_runner, emulator_of, run_blob
from megcc_builder.kernels import registry

GENERIC = ("quant.elementwise_generic_s8.lower_qlinear_binary",
           "quant.elementwise_generic_s8.lower_qlinear_concat")


def model(shape, ops=("QLinearAdd", "QLinearMul", "QLinearConcat")):
    init = [numpy_helper.from_array(np.array(v, dt), n) for n, v, dt in (
        ("sa", 0.031, np.float32), ("za", 128, np.uint8), ("sb", 0.017, np.float32),
        ("zb", 100, np.uint8), ("sc", 0.045, np.float32), ("zc", 131, np.uint8),
        ("sd", 0.07, np.float32))]
    nodes = [n for n in [helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"],
                              ["y"], domain="com.microsoft"),
             helper.make_node("QLinearMul", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"],
                              ["m"], domain="com.microsoft"),
             helper.make_node("QLinearConcat", ["sd", "zc", "a", "sa", "za", "b", "sb", "zb"],
                              ["k"], axis=1, domain="com.microsoft")] if n.op_type in ops]
    cat = list(shape)
    cat[1] *= 2
    io = lambda n, s: helper.make_tensor_value_info(n, TensorProto.UINT8, s)  # noqa: E731
    outs = {"QLinearAdd": io("y", shape), "QLinearMul": io("m", shape),
            "QLinearConcat": io("k", cat)}
    g = helper.make_graph(nodes, "g", [io("a", shape), io("b", shape)],
                          [outs[n.op_type] for n in nodes], init)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                               helper.make_opsetid("com.microsoft", 1)])


def build(tmp, shape, level, portable, ops=("QLinearAdd", "QLinearMul", "QLinearConcat")):
    d = tempfile.mkdtemp(dir=tmp)
    path = os.path.join(d, "m.onnx")
    onnx.save(model(shape, ops), path)
    ms = ModelSpec("m", path, [], True, level)
    if portable:
        with registry.only(*GENERIC):
            bundle = compile_bundle([ms], d, save_c_array=False, isa=level)
    else:
        bundle = compile_bundle([ms], d, save_c_array=False, isa=level)
    impls = sorted({i.impl for i in bundle.models[0].plans[0].instrs})
    return bundle.files["kernels_c"], bundle.files["m.tiny"], impls


def cpu_of(runner, blob, inputs, target):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run_blob(runner, blob, inputs, 0, target=target)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def instructions(runner, blob, inputs, target, tmp):
    """Guest instructions executed by one run (qemu -singlestep: one instruction per
    translation block, each logged by -d exec)."""
    log = os.path.join(tmp, "exec.log")
    emu = emulator_of(target)
    emu = emu[:1] + ["-singlestep", "-d", "nochain,exec", "-D", log] + emu[1:]
    run_blob(runner, blob, inputs, 0, emulator=emu)
    with open(log, "rb") as f:
        n = sum(chunk.count(b"Trace ") for chunk in iter(lambda: f.read(1 << 24), b""))
    os.remove(log)
    return n


def count(target, level):
    """Executed instructions per output code of each op, NEON against portable: a run at
    1x16x16x16 minus a run at 1x1x1x1 (start-up, I/O of a few bytes)."""
    rng = np.random.default_rng(0)
    big, small = (1, 16, 16, 16), (1, 1, 1, 1)
    codes = {"QLinearAdd": 4096, "QLinearMul": 4096, "QLinearConcat": 8192}
    with tempfile.TemporaryDirectory() as tmp:
        for op in codes:
            row = []
            for portable in (False, True):
                n = {}
                for shape in (big, small):
                    kc, blob, impls = build(tmp, shape, level, portable, (op,))
                    runner = build_runner(kc, target=target)
                    ins = [rng.integers(0, 256, shape).astype(np.uint8) for _ in range(2)]
                    n[shape] = instructions(runner, blob, ins, target, tmp)
                    if shape == big:  # the 1-element run may pick the portable kernel
                        label = impls[0].split(".")[-1]
                row.append(((n[big] - n[small]) / codes[op], label))
            print(f"{target} {op}: {row[0][0]:.2f} instructions per code ({row[0][1]}), "
                  f"portable {row[1][0]:.2f} ({row[1][1]}): {row[1][0] / row[0][0]:.1f}x fewer")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="arm64", choices=("arm64", "armv7"))
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--count", action="store_true",
                    help="count executed guest instructions per code instead of timing")
    args = ap.parse_args()
    level = {"arm64": "arm64-neon", "armv7": "armv7-neon"}[args.target]
    if args.count:
        return count(args.target, level)
    big, small = (1, 64, 128, 128), (1, 1, 1, 1)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        times = {}
        for portable in (False, True):
            for shape in (big, small):
                kc, blob, impls = build(tmp, shape, level, portable)
                runner = build_runner(kc, target=args.target)
                ins = [rng.integers(0, 256, shape).astype(np.uint8) for _ in range(2)]
                times[portable, shape] = (runner, blob, ins)
                if shape == big:
                    print(("portable" if portable else "default "), impls)
        res = {k: [] for k in times}
        for _ in range(args.n):  # interleaved
            for k, (runner, blob, ins) in times.items():
                res[k].append(cpu_of(runner, blob, ins, args.target))
        med = {k: statistics.median(v) for k, v in res.items()}
        neon = med[False, big] - med[False, small]
        port = med[True, big] - med[True, small]
        print(f"{args.target} under qemu, 3 ops on 1M codes each (add, mul; concat 2M), CPU s "
              f"minus start-up, median of {args.n}: default {neon:.3f}, portable {port:.3f}, "
              f"ratio {port / max(neon, 1e-9):.1f}x  (load: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
