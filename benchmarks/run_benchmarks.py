"""The standard benchmark set, side by side in one run on this machine, single-threaded.

ONNX light models (ResNet-50, SqueezeNet, ShuffleNet, Inception v1, VGG-19; their weights
are ConstantOfShape fills, which is fine for timing) against onnxruntime; our MegEngine
zoo models (MobileNetV1/V2, ResNet-18, ShuffleNetV2 at 224x224, dumped optimised with
conv+bias fusion) against MegEngine Lite, and against onnxruntime on the same graph
exported through our IR (megcc_builder.ir.to_onnx). Then the per-layer efficiency of
ResNet-50's 3x3 and 1x1 convolutions.

Writes benchmarks/results.md (tables + machine), benchmarks/results.png (bar chart) and
benchmarks/resnet50_layers.md.

    python benchmarks/run_benchmarks.py [-n 20] [--clock cpu|wall] [--models resnet50,...]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, HERE)

import onnx  # noqa: E402

from layer_profile import layer_rows  # noqa: E402
from megcc_builder.bench import run_benchmark  # noqa: E402

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
ONNX_MODELS = ["resnet50", "squeezenet", "shufflenet", "inception_v1", "vgg19"]
MGE_MODELS = ["mobilenet_v1", "mobilenet_v2", "resnet18", "shufflenet_v2"]
# targets of issue 6: ours / other engine latency must be at most this
TARGETS = {("resnet50", "onnxruntime"): 1.25, ("vgg19", "onnxruntime"): 1.25,
           ("squeezenet", "onnxruntime"): 1.0, ("shufflenet", "onnxruntime"): 1.0,
           ("mobilenet_v2", "onnxruntime"): 1.0}
MGE_TARGET = 0.5  # >= 2x faster than MegEngine Lite


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} CPUs, load average {load:.1f} at start"


def export_onnx(mge_path: str, onnx_path: str) -> str:
    """The MegEngine model's graph (before our optimisation passes) as ONNX, for ORT."""
    from megcc_builder.compiler import load_graph
    from megcc_builder.ir.infer import infer_and_fold
    from megcc_builder.ir.to_onnx import graph_to_onnx
    from megcc_builder.kernels import has_kernel

    g = load_graph(mge_path)
    infer_and_fold(g, has_kernel)
    onnx.save(graph_to_onnx(g), onnx_path)
    return onnx_path


def verdict(ratio: float, limit: float) -> str:
    return f"{'met' if ratio <= limit else 'missed'} (<= {limit:g}x)"


def run(models, iterations: int, clock: str, work: str):
    import mge_zoo

    rows = []
    for name in models:
        if name in ONNX_MODELS:
            path = os.path.join(LIGHT, f"light_{name}.onnx")
            rep = run_benchmark(path, None, ["onnxruntime"], iterations, clock=clock)
        else:
            path = mge_zoo.dump_model(name, os.path.join(work, f"{name}.mge"), True,
                                      input_shape=(1, 3, 224, 224), fuse_conv_bias=True)
            rep = run_benchmark(path, None, ["megengine"], iterations, clock=clock)
            ort = run_benchmark(export_onnx(path, os.path.join(work, f"{name}.onnx")), None,
                                ["onnxruntime"], iterations, clock=clock)
            rep["results"].append(ort["results"][1])
            rep["results"][-1].note += " (graph exported from the .mge through our IR)"
        rows.append((name, rep))
        print(f"{name}: " + ", ".join(f"{r.engine} {r.min_ms:.2f} ms" for r in rep["results"]),
              flush=True)
    return rows


def best_of(rounds):
    """Per model and engine, the round with the lowest min latency (and the highest peak)."""
    rows = []
    for per_model in zip(*rounds):
        name, rep = per_model[0]
        best = {}
        for _, r in per_model:
            for res in r["results"]:
                if res.engine not in best or res.min_ms < best[res.engine].min_ms:
                    best[res.engine] = res
        rep = dict(rep, results=[best[res.engine] for res in rep["results"]],
                   peak_gflops=max(r["peak_gflops"] for _, r in per_model))
        rows.append((name, rep))
    return rows


def write_markdown(rows, layer_table: str, peak: float, clock: str, iterations: int,
                   rounds: int) -> str:
    lines = [f"Machine: {machine()}; measured single-core FMA peak {peak:.1f} GFLOP/s; "
             f"{clock} clock, min of {iterations} runs after warm-up, best of {rounds} "
             f"interleaved rounds; "
             f"{datetime.date.today().isoformat()}.", "",
             "| model | GFLOP | megcc ms | GFLOP/s (% peak) | onnxruntime ms | ours/ORT | "
             "MegEngine Lite ms | ours/MGE | targets |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, rep in rows:
        res = {r.engine: r for r in rep["results"]}
        ours = res["megcc"].min_ms
        gf = rep["flops"] / (ours * 1e6)
        cells = [name, f"{rep['flops'] / 1e9:.2f}", f"{ours:.2f}",
                 f"{gf:.1f} ({100 * gf / rep['peak_gflops']:.0f}%)"]
        notes = []
        for engine in ("onnxruntime", "megengine-lite"):
            if engine in res:
                ratio = ours / res[engine].min_ms
                cells += [f"{res[engine].min_ms:.2f}", f"{ratio:.2f}"]
                limit = TARGETS.get((name, engine)) if engine == "onnxruntime" else MGE_TARGET
                if limit:
                    notes.append(f"{'ORT' if engine == 'onnxruntime' else 'MGE'} "
                                 f"{verdict(ratio, limit)}")
            else:
                cells += ["–", "–"]
        lines.append("| " + " | ".join(cells + ["; ".join(notes)]) + " |")
    lines += ["", "ours/X < 1 means megcc is faster. onnxruntime: CPU EP, 1 intra-op thread, "
              "ORT_ENABLE_ALL. MegEngine Lite: 1 thread, weight_preprocess, NCHW88, the faster "
              "of heuristic and fast-run algorithm choice. megcc: kernels for the host's ISA "
              "level (x86_64-v3: AVX2+FMA).", "", "### ResNet-50 convolutions", "",
              layer_table]
    return "\n".join(lines) + "\n"


def algorithm(kernel: str) -> str:
    """How a conv instruction computes: Winograd does fewer multiplies than the direct
    convolution, so its GFLOP/s (direct-conv FLOPs / time) is an effective rate."""
    return "Winograd" if "winograd" in kernel else "direct (packed GEMM)"


def layer_summary(path: str, iterations: int, peak: float):
    rows = layer_rows(path, iterations, "native")
    out = ["| layer | kind | input | output | kernel | MFLOP | us | GFLOP/s | % peak |",
           "|---|---|---|---|---|---:|---:|---:|---:|"]
    totals = {}
    for r in rows:
        kind = r["kind"].split("/")[0]
        if kind not in ("3x3", "1x1"):
            continue
        gf = r["flops"] / (r["us"] * 1e3)
        key = (kind, algorithm(r["kernel"]))
        f, t = totals.get(key, (0.0, 0.0))
        totals[key] = (f + r["flops"], t + r["us"])
        out.append(f"| #{r['index']} | {r['kind']} | {r['in']} | {r['out']} | {r['kernel']} | "
                   f"{r['flops'] / 1e6:.1f} | {r['us']:.0f} | {gf:.1f} | {100 * gf / peak:.0f}% |")
    summary = []
    for (kind, algo), (f, t) in sorted(totals.items()):
        gf = f / (t * 1e3)
        what = ("effective: direct-conv FLOPs / time" if algo == "Winograd"
                else "of the measured FMA peak")
        summary.append(f"- {kind} convolutions, {algo}: {f / 1e9:.2f} GFLOP in {t / 1e3:.2f} ms "
                       f"= {gf:.1f} GFLOP/s, **{100 * gf / peak:.0f}%** ({what}; target 60%)")
    return "\n".join(summary), "\n".join(out)


def plot(rows, png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = ["megcc", "onnxruntime", "megengine-lite"]
    colors = {"megcc": "#2a7", "onnxruntime": "#37c", "megengine-lite": "#c73"}
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.27
    for k, engine in enumerate(engines):
        xs, ys = [], []
        for i, (name, rep) in enumerate(rows):
            res = {r.engine: r for r in rep["results"]}
            if engine in res:
                xs.append(i + (k - 1) * width)
                ys.append(res[engine].min_ms / res["megcc"].min_ms)
        ax.bar(xs, ys, width, label=engine, color=colors[engine])
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([n for n, _ in rows], rotation=20)
    ax.set_ylabel("latency relative to megcc (higher = megcc faster)")
    ax.set_title("Single-thread inference latency, one run on one machine")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--iterations", type=int, default=20)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--rounds", type=int, default=2,
                    help="run the whole set this many times, keep each engine's best round "
                         "(a shared VM's slow phases last seconds: interleaving rounds keeps "
                         "one of them from deciding a ratio)")
    ap.add_argument("--models", default=",".join(ONNX_MODELS + MGE_MODELS))
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    with tempfile.TemporaryDirectory(prefix="megcc-benchmarks-") as work:
        rounds = [run(models, args.iterations, args.clock, work) for _ in range(args.rounds)]
    rows = best_of(rounds)
    peak = max(rep["peak_gflops"] for _, rep in rows)
    summary, table = layer_summary(os.path.join(LIGHT, "light_resnet50.onnx"),
                                   args.iterations, peak)
    md = write_markdown(rows, summary, peak, args.clock, args.iterations, args.rounds)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "resnet50_layers.md"), "w") as f:
        f.write(f"ResNet-50 3x3 and 1x1 convolutions, fastest of {args.iterations} profiled runs "
                f"(thread CPU time), FMA peak {peak:.1f} GFLOP/s\n\n{summary}\n\n{table}\n")
    plot(rows, os.path.join(args.out, "results.png"))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
