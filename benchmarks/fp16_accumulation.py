"""enable_ioc16's accumulation choice, measured: the dot products of convolution and FC
layers (K = C/G * kh * kw terms) accumulated in float16 (what the `*_neon64fp16_f16` kernels
do: `fmla v.8h`, each FMA rounding to 11 significant bits) against accumulating the same
float16 operands in float32 (what FMLAL/FMLAL2 of Armv8.2's optional FHM extension would
give, rounded to float16 once at the end), both against float64.

Operands as in a trained network: inputs >= 0 after a ReLU (half-normal), weights He-normal
(variance 2/K), so outputs are O(1). Errors are relative to the outputs' RMS.

    python benchmarks/fp16_accumulation.py [--n 4096]

--zoo also runs the MegEngine zoo models (seeded, 1x3x64x64) with enable_ioc16 under
qemu-aarch64 -cpu max on both levels, arm64-fp16 (float16 accumulation) and arm64-fp16fml
(float32 accumulation, FMLAL), against MegEngine's float32 output.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np


def r16(a):
    return np.asarray(a, np.float64).astype(np.float16).astype(np.float64)


def r32(a):
    return np.asarray(a, np.float64).astype(np.float32).astype(np.float64)


def measure(k: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = r16(np.abs(rng.standard_normal((n, k))))
    w = r16(rng.standard_normal((n, k)) * np.sqrt(2.0 / k))
    exact = (x * w).sum(1)
    acc16 = np.zeros(n)
    acc32 = np.zeros(n)
    for j in range(k):  # in the kernels' order: one FMA per term, rounded once
        p = x[:, j] * w[:, j]  # exact in float64
        acc16 = r16(acc16 + p)
        acc32 = r32(acc32 + p)
    out32 = r16(acc32)  # the float16 output of a float32 accumulator
    scale = np.sqrt(np.mean(exact ** 2))
    e16 = np.abs(acc16 - exact) / scale
    e32 = np.abs(out32 - exact) / scale
    return scale, e16.max(), np.sqrt(np.mean(e16 ** 2)), e32.max(), np.sqrt(np.mean(e32 ** 2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4096, help="dot products per K")
    ap.add_argument("--zoo", nargs="*", default=None,
                    help="zoo models (none given: MobileNetV1/V2, ResNet-18, ShuffleNetV2)")
    a = ap.parse_args()
    print(f"{'K':>6} {'rms out':>8} | {'fp16 acc max':>12} {'rms':>9} | {'fp32 acc max':>12} {'rms':>9}")
    for k in (9, 27, 144, 576, 1152, 2304, 4608):
        scale, m16, r16_, m32, r32_ = measure(k, a.n)
        print(f"{k:>6} {scale:8.3f} | {m16:12.2e} {r16_:9.2e} | {m32:12.2e} {r32_:9.2e}")
    if a.zoo is not None:
        zoo(a.zoo)


def zoo(names) -> None:
    from pathlib import Path

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:0] = [root, os.path.join(root, "tests")]
    from test_fp16_fml import ZOO, zoo_errors

    print("\nenable_ioc16 vs MegEngine float32 (1x3x64x64, seeded weights): "
          "max|d|/max|ref|, max|d|/max(1,|ref|), top-1")
    print(f"{'model':<14} | {'fp16 acc (arm64-fp16)':^32} | {'fp32 acc (arm64-fp16fml)':^32} | ref top-1")
    for name in names or ZOO:
        with tempfile.TemporaryDirectory() as d:
            errs, top = zoo_errors(name, Path(d))
        cells = [f"{s:9.2e} {r:9.2e} {t:>6}" for s, r, t in (errs["arm64-fp16"], errs["arm64-fp16fml"])]
        print(f"{name:<14} | {cells[0]:^32} | {cells[1]:^32} | {top}")


if __name__ == "__main__":
    main()
