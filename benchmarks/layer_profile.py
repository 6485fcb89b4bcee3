"""Per-convolution-layer efficiency of a compiled model: each Conv/Gemm instruction's
fastest time over N profiled runs (`megcc_runner --profile -t N`), its GFLOP/s and the
fraction of this machine's measured single-core FMA peak.

    python benchmarks/layer_profile.py MODEL [-n 10] [--isa native] [--kinds 3x3,1x1]
    python benchmarks/layer_profile.py MODEL --threads 2 [--all] [--rounds 3]

With --threads T: each instruction's fastest wall-clock time on one thread and on T
threads (same build, same inputs; run it on idle cores, e.g. under /work/freeze.sh), its
speed-up and its lost time t_T - t_1 / T (what keeps the model from a T-fold speed-up),
sorted by lost time.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

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
               every: bool = False, threads: Sequence[int] = (), rounds: int = 1) -> List[dict]:
    """One row per Conv/Gemm/MatMul instruction (float or int8; every instruction with
    `every`): kind, shapes, flops, best microseconds (CPU clock); with `threads`, also
    "us@T": the best wall-clock microseconds on T threads, for each T, over `rounds` runs
    of the runner per thread count, interleaved (two-thread times on a virtual machine
    change from one process to the next)."""
    with tempfile.TemporaryDirectory(prefix="megcc-layers-") as tmp:
        bundle = compile_bundle([ModelSpec("model", path, [shapes] if shapes else [])], tmp,
                                save_c_array=False, isa=isa)
        plan = bundle.models[0].plans[0]
        g = plan.graph
        rng = np.random.default_rng(0)
        feeds = [rng.standard_normal(g.tensors[n].shape).astype(np.float32) for n in g.inputs]
        runner = build_runner(bundle.files["kernels_c"])

        def profile(extra):
            _, log = run_blob_logged(runner, bundle.files["model.tiny"], feeds,
                                     extra_args=["--profile", "--profile-runs", str(iterations),
                                                 "-w", "1", *extra])
            best: Dict[int, float] = {}
            for m in re.finditer(r"^profile (\d+) (\S+) ([0-9.]+)$", log, re.M):
                i, us = int(m.group(1)), float(m.group(3))
                best[i] = min(us, best.get(i, us))
            return best

        best = profile(["--cpu-clock"]) if not threads else {}
        # wall clock: a thread's CPU clock does not see the other threads' share
        by_threads: Dict[int, Dict[int, float]] = {t: {} for t in threads}
        for _ in range(rounds):
            for t in threads:
                for i, us in profile(["--threads", str(t)]).items():
                    by_threads[t][i] = min(us, by_threads[t].get(i, us))
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
        row = {"index": i, "kernel": ins.kernel.name, "kind": kind,
               "in": list(g.tensors[op.inputs[0]].shape) if op.inputs else [],
               "out": list(y.shape), "flops": flops, "us": best.get(i, float("nan"))}
        for t, b in by_threads.items():
            row[f"us@{t}"] = b.get(i, float("nan"))
        rows.append(row)
    return rows


def thread_report(rows: List[dict], threads: int, top: int = 0) -> str:
    """Rows by lost time t_T - t_1 / T (largest first), with totals."""
    t1, tt = "us@1", f"us@{threads}"
    lost = lambda r: r[tt] - r[t1] / threads  # noqa: E731
    lines = [f"wall clock, best of the profiled runs; lost = t{threads} - t1/{threads}",
             f"{'#':>4} {'kind':<12}{'output':<20}{'t1 us':>9}{f't{threads} us':>9}"
             f"{'speedup':>8}{'lost us':>9}  kernel"]
    ranked = sorted(rows, key=lost, reverse=True)
    for r in ranked[:top or len(ranked)]:
        lines.append(f"{r['index']:>4} {r['kind']:<12}{str(r['out']):<20}{r[t1]:>9.1f}"
                     f"{r[tt]:>9.1f}{r[t1] / r[tt]:>8.2f}{lost(r):>9.1f}  {r['kernel']}")
    s1, st = sum(r[t1] for r in rows), sum(r[tt] for r in rows)
    lines.append(f"sum of instructions: t1 {s1 / 1e3:.2f} ms, t{threads} {st / 1e3:.2f} ms, "
                 f"speed-up {s1 / st:.2f}, lost {(st - s1 / threads) / 1e3:.2f} ms")
    by_kind: Dict[str, List[float]] = {}
    for r in rows:
        k = by_kind.setdefault(r["kind"].split("/")[0], [0.0, 0.0])
        k[0] += r[t1]
        k[1] += r[tt]
    lines.append("by kind: " + ", ".join(
        f"{k} {a / 1e3:.2f}->{b / 1e3:.2f} ms ({a / b:.2f}x, lost {(b - a / threads) / 1e3:.2f})"
        for k, (a, b) in sorted(by_kind.items(), key=lambda kv: kv[1][0] / threads - kv[1][1])))
    return "\n".join(lines)


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
    ap.add_argument("--threads", type=int, default=0,
                    help="compare 1 and this many threads (wall clock), ranked by lost time")
    ap.add_argument("--top", type=int, default=0, help="with --threads: only the first N rows")
    ap.add_argument("--rounds", type=int, default=1,
                    help="with --threads: runner runs per thread count, interleaved (best of)")
    args = ap.parse_args(argv)
    if args.threads > 1:
        rows = layer_rows(args.model, args.iterations, args.isa, every=args.all,
                          threads=(1, args.threads), rounds=args.rounds)
        print(thread_report(rows, args.threads, args.top))
        return 0
    rows = layer_rows(args.model, args.iterations, args.isa, every=args.all)
    kinds = [k for k in args.kinds.split(",") if k]
    print(report(rows, measure_fma_peak_gflops(), kinds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
