"""Per-convolution-layer efficiency of a compiled model: each Conv/Gemm instruction's
fastest time over N profiled runs (`megcc_runner --profile -t N`), its GFLOP/s and the
fraction of this machine's measured single-core FMA peak.

    python benchmarks/layer_profile.py MODEL [-n 10] [--isa native] [--kinds 3x3,1x1]
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from typing import Dict, List, Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from megcc_builder.bench import measure_fma_peak_gflops  # noqa: E402
from megcc_builder.compiler import ModelSpec, compile_bundle  # noqa: E402
from megcc_builder.host import build_runner, run_blob_logged  # noqa: E402


# op type -> index of its weights (int8 ops carry scales and zero points before them)
CONVS = {"Conv": 1, "QLinearConv": 3, "ConvInteger": 1}
MATMULS = ("Gemm", "MatMul", "QLinearMatMul", "QGemm", "MatMulInteger")


def conv_kind(graph, op, w) -> str:
    group = int(op.attrs.get("group", 1))
    k = "x".join(str(d) for d in w[2:])
    s = "x".join(str(d) for d in op.attrs.get("strides", [1] * (len(w) - 2)))
    if group > 1 and group == graph.tensors[op.inputs[0]].shape[1]:
        return f"dw{k}/s{s}"
    return f"{k}/s{s}" + (f"/g{group}" if group > 1 else "")


def layer_rows(path: str, iterations: int, isa: str, shapes: Optional[Dict] = None,
               every: bool = False) -> List[dict]:
    """One row per Conv/Gemm/MatMul instruction (float or int8; every instruction with
    `every`): kind, shapes, flops, best microseconds."""
    with tempfile.TemporaryDirectory(prefix="megcc-layers-") as tmp:
        bundle = compile_bundle([ModelSpec("model", path, [shapes] if shapes else [])], tmp,
                                save_c_array=False, isa=isa)
        plan = bundle.models[0].plans[0]
        g = plan.graph
        rng = np.random.default_rng(0)
        feeds = [rng.standard_normal(g.tensors[n].shape).astype(np.float32) for n in g.inputs]
        runner = build_runner(bundle.files["kernels_c"])
        _, log = run_blob_logged(runner, bundle.files["model.tiny"], feeds,
                                 extra_args=["--profile", "--profile-runs", str(iterations),
                                             "--cpu-clock", "-w", "1"])
    best: Dict[int, float] = {}
    for m in re.finditer(r"^profile (\d+) (\S+) ([0-9.]+)$", log, re.M):
        i, us = int(m.group(1)), float(m.group(3))
        best[i] = min(us, best.get(i, us))
    producers = g.producers()
    rows = []
    for i, ins in enumerate(plan.instrs):
        op = producers.get(ins.outputs[0])
        if op is None or (op.type not in CONVS and op.type not in MATMULS and not every):
            continue
        y = g.tensors[op.outputs[0]]
        if op.type in CONVS:
            w = g.tensors[op.inputs[CONVS[op.type]]]
            flops = 2 * y.numel * int(np.prod(w.shape[1:]))
            kind = conv_kind(g, op, w.shape)
        elif op.type in MATMULS:
            a = g.tensors[op.inputs[0]].shape
            flops = 2 * y.numel * (a[0] if op.attrs.get("transA", 0) else a[-1])
            kind = "fc"
        else:
            flops, kind = 0, op.type[:12]
        rows.append({"index": i, "kernel": ins.kernel.name, "kind": kind,
                     "in": list(g.tensors[op.inputs[0]].shape), "out": list(y.shape),
                     "flops": flops, "us": best.get(i, float("nan"))})
    return rows


def report(rows: List[dict], peak: float, kinds: Optional[List[str]] = None) -> str:
    lines = [f"FMA peak {peak:.1f} GFLOP/s (single core, measured now)",
             f"{'#':>4} {'kind':<12}{'input':<20}{'output':<20}{'MFLOP':>9}{'us':>10}"
             f"{'GFLOP/s':>9}{'% peak':>8}  kernel"]
    tot_f = tot_us = 0.0
    for r in rows:
        if kinds and not any(r["kind"].startswith(k) for k in kinds):
            continue
        gf = r["flops"] / (r["us"] * 1e3)
        tot_f += r["flops"]
        tot_us += r["us"]
        if not r["flops"]:
            lines.append(f"{r['index']:>4} {r['kind']:<12}{str(r['in']):<20}{str(r['out']):<20}"
                         f"{'':>9}{r['us']:>10.1f}{'':>9}{'':>8}  {r['kernel']}")
            continue
        lines.append(f"{r['index']:>4} {r['kind']:<12}{str(r['in']):<20}{str(r['out']):<20}"
                     f"{r['flops'] / 1e6:>9.1f}{r['us']:>10.1f}{gf:>9.1f}{100 * gf / peak:>7.1f}%"
                     f"  {r['kernel']}")
    if tot_us:
        gf = tot_f / (tot_us * 1e3)
        lines.append(f"total {tot_f / 1e9:.3f} GFLOP in {tot_us / 1e3:.2f} ms: {gf:.1f} GFLOP/s, "
                     f"{100 * gf / peak:.1f}% of peak")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("-n", "--iterations", type=int, default=10)
    ap.add_argument("--isa", default="native")
    ap.add_argument("--kinds", default="", help="comma-separated kind prefixes, e.g. 3x3,1x1")
    ap.add_argument("--all", action="store_true",
                    help="every instruction (element-wise, pooling, quantize, ...) too")
    args = ap.parse_args(argv)
    rows = layer_rows(args.model, args.iterations, args.isa, every=args.all)
    kinds = [k for k in args.kinds.split(",") if k]
    print(report(rows, measure_fma_peak_gflops(), kinds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
