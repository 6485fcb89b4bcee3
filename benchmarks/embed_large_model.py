"""Embedding a compiled model in a program: the assembler's .incbin against the C array.

For each model size, one run on this machine: a one-MatMul ONNX model with that many bytes
of weights is compiled with megcc, then its blob is embedded both ways and compiled into an
object with gcc -O2 (the step an app's build pays on every weight change). Prints seconds
and the compiler's peak memory for each (the C array only up to --max-c-array-mb: past
that gcc needs minutes and gigabytes), and checks that both objects hold the same bytes.

    .venv/bin/python benchmarks/embed_large_model.py [--sizes-mb 5 25 250]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from megcc_builder.embed import incbin_source


def matmul_model(path: str, megabytes: float) -> None:
    n = int((megabytes * 1e6 / 4) ** 0.5)
    w = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
        [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def timed(cmd) -> tuple:
    """Wall seconds and the peak resident memory (MB) of one command, measured by GNU time
    (a child forked from this large Python process would count our pages until it execs)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        t0 = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%M", *cmd], check=True,
                       stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
        peak_kb = int(report.read().strip().splitlines()[-1])
    return seconds, peak_kb / 1024


def section_bytes(obj: str, section: str) -> bytes:
    with tempfile.NamedTemporaryFile(suffix=".bin") as out:
        subprocess.run(["objcopy", "-O", "binary", f"--only-section={section}", obj, out.name],
                       check=True)
        return open(out.name, "rb").read()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes-mb", type=float, nargs="+", default=[5, 25, 250])
    ap.add_argument("--max-c-array-mb", type=float, default=25)
    args = ap.parse_args()
    megcc = [sys.executable, "-m", "megcc_builder.cli"]
    print(f"{'model MB':>9} {'megcc s':>8} {'incbin s':>9} {'incbin MB':>10} "
          f"{'c-array s':>10} {'c-array MB':>11} {'.tiny.c MB':>11}")
    for mb in args.sizes_mb:
        with tempfile.TemporaryDirectory(prefix="megcc-embed-") as tmp:
            model = os.path.join(tmp, "big.onnx")
            matmul_model(model, mb)
            c_array = mb <= args.max_c_array_mb
            flags = [] if c_array else ["--no-c-array"]
            megcc_s, _ = timed([*megcc, "compile", model, "-o", tmp, "--name", "big", *flags])
            blob = os.path.join(tmp, "big.tiny")
            embed_c = os.path.join(tmp, "big.tiny.embed.c")
            with open(embed_c, "w") as f:
                f.write(incbin_source(blob, "big"))
            inc_s, inc_mb = timed(["gcc", "-O2", "-c", embed_c, "-o", embed_c + ".o"])
            embedded = section_bytes(embed_c + ".o", ".rodata.megcc_model_big")
            blob_bytes = open(blob, "rb").read()
            size = int.from_bytes(embedded[-4:], sys.byteorder)
            assert embedded.startswith(blob_bytes) and size == len(blob_bytes), \
                "the .incbin object does not hold the blob"
            row = (f"{os.path.getsize(blob) / 1e6:9.1f} {megcc_s:8.1f} {inc_s:9.2f} "
                   f"{inc_mb:10.0f}")
            if c_array:
                array_c = os.path.join(tmp, "big.tiny.c")
                arr_s, arr_mb = timed(["gcc", "-O2", "-c", array_c, "-o", array_c + ".o"])
                row += (f" {arr_s:10.2f} {arr_mb:11.0f} "
                        f"{os.path.getsize(array_c) / 1e6:11.1f}")
            else:
                row += f" {'-':>10} {'-':>11} {'-':>11}"
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
