"""enable_compress_fp16: model file size and latency against the float32 build of the same
model (MegEngine zoo models, seeded), single thread, thread CPU time, fastest of N.

    python benchmarks/fp16_compress.py [--isa native] [-n 10] [--models resnet18,mobilenet_v2]
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import mge_zoo  # noqa: E402
from megcc_builder.compiler import ModelSpec, compile_bundle  # noqa: E402
from megcc_builder.host import build_runner, run_blob_logged  # noqa: E402


def measure(path, x, isa, compress, n, tmp):
    out = os.path.join(tmp, f"{isa}_{int(compress)}")
    b = compile_bundle([ModelSpec("m", path, [{"data": x.shape}], enable_compress_fp16=compress)],
                       out, save_c_array=False, isa=isa)
    runner = build_runner(b.files["kernels_c"])
    _, log = run_blob_logged(runner, b.files["m.tiny"], [x],
                             extra_args=["-w", "2", "-t", str(n), "--cpu-clock"])
    ms = float(re.search(r"latency_ms min=([0-9.]+)", log).group(1))
    return len(b.models[0].blob), ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--isa", default="native")
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--models", default="resnet18,mobilenet_v2")
    args = ap.parse_args()
    print(f"{'model':<14} {'isa':<10} {'fp32 B':>11} {'fp16 B':>11} {'ratio':>6} "
          f"{'fp32 ms':>8} {'fp16 ms':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            path = mge_zoo.dump_model(name, os.path.join(tmp, f"{name}.mge"), True,
                                      input_shape=(1, 3, 224, 224), fuse_conv_bias=True)
            x = np.random.default_rng(3).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
            s32, t32 = measure(path, x, args.isa, False, args.n, tmp)
            s16, t16 = measure(path, x, args.isa, True, args.n, tmp)
            print(f"{name:<14} {args.isa:<10} {s32:>11} {s16:>11} {s16 / s32:>6.3f} "
                  f"{t32:>8.2f} {t16:>8.2f}")


if __name__ == "__main__":
    main()
