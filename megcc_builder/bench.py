"""Side-by-side latency: our compiled model vs onnxruntime and MegEngine Lite, one run,
one machine, single-threaded by default, with GFLOP/s against this machine's measured FMA
peak. Ours runs in this process (megcc_builder.session), timed in C around the forward; the
Python path (InferenceSession.run, what onnxruntime's number is) is timed on request.

Each engine gets its fastest documented single-thread configuration: onnxruntime with all
graph optimisations and one intra-op thread; MegEngine Lite with weight preprocessing and
the NCHW88 layout (x86 AVX2) or NCHW44 (ARM), with and without fast-run profiling (the
faster is reported).
"""
from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from .host import _digest, _run, cache_dir, DEFAULT_CC, DEFAULT_CFLAGS

FMA_PEAK_C = r"""
/* Independent FMA chains, enough to hide latency on every core we target. Timed in thread
 * CPU time: on a shared machine wall-clock time counts other processes' slices and would
 * understate the peak (and so overstate every "% of peak"). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#if defined(__FMA__) && defined(__AVX__)
#include <immintrin.h>
typedef __m256 vec;
#define LANES 8
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define SET1(x) _mm256_set1_ps(x)
static float hsum(vec v) { float t[8]; int i; float s = 0; _mm256_storeu_ps(t, v); for (i = 0; i < 8; ++i) s += t[i]; return s; }
#elif defined(__ARM_NEON)
#include <arm_neon.h>
typedef float32x4_t vec;
#define LANES 4
#define FMA(a, b, c) vfmaq_f32(c, a, b)
#define SET1(x) vdupq_n_f32(x)
static float hsum(vec v) { return vgetq_lane_f32(v, 0) + vgetq_lane_f32(v, 1) + vgetq_lane_f32(v, 2) + vgetq_lane_f32(v, 3); }
#else
typedef float vec;
#define LANES 1
#define FMA(a, b, c) ((a) * (b) + (c))
#define SET1(x) (x)
static float hsum(vec v) { return v; }
#endif
#define CHAINS 12
int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 20000000L, i;
    int k;
    vec acc[CHAINS], a = SET1(0.999999f), b = SET1(1e-7f);
    struct timespec t0, t1;
    double s, best = 1e30;
    int rep;
    for (rep = 0; rep < 5; ++rep) {
        for (k = 0; k < CHAINS; ++k) acc[k] = SET1((float)k);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
        for (i = 0; i < iters; ++i)
            for (k = 0; k < CHAINS; ++k) acc[k] = FMA(acc[k], a, b);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
        s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (s < best) best = s;
    }
    {
        float sink = 0;
        for (k = 0; k < CHAINS; ++k) sink += hsum(acc[k]);
        printf("gflops=%.3f lanes=%d sink=%g\n", 2.0 * LANES * CHAINS * (double)iters / best / 1e9,
               LANES, (double)sink);
    }
    return 0;
}
"""


def measure_fma_peak_gflops(cc: str = DEFAULT_CC) -> float:
    """Single-core float32 FMA throughput of this machine, measured now."""
    flags = [f for f in DEFAULT_CFLAGS if f != "-std=c99"] + ["-std=gnu99"]
    d = os.path.join(cache_dir(), "fma_peak", _digest(cc, flags, FMA_PEAK_C))
    exe = os.path.join(d, "fma_peak")
    if not os.path.exists(exe):
        os.makedirs(d, exist_ok=True)
        src = os.path.join(d, "fma_peak.c")
        with open(src, "w") as f:
            f.write(FMA_PEAK_C)
        _run([cc, *flags, "-o", exe + ".tmp", src], "building the FMA peak probe")
        os.replace(exe + ".tmp", exe)
    out = subprocess.run([exe, "20000000"], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"gflops=([0-9.]+)", out).group(1))


def model_flops(plan) -> int:
    """Multiply-adds x2 of the convolutions and matrix products (the ops that dominate)."""
    g = plan.graph
    total = 0
    for op in g.ops:
        if op.type == "Conv":  # every output element: C/g*KH*KW multiply-adds
            total += 2 * g.tensors[op.outputs[0]].numel * int(np.prod(g.tensors[op.inputs[1]].shape[1:]))
        elif op.type == "ConvTranspose":  # every input element: OC/g*KH*KW multiply-adds
            total += 2 * g.tensors[op.inputs[0]].numel * int(np.prod(g.tensors[op.inputs[1]].shape[1:]))
        elif op.type in ("Gemm", "MatMul"):
            a = g.tensors[op.inputs[0]].shape
            y = g.tensors[op.outputs[0]]
            k = a[0] if op.type == "Gemm" and op.attrs.get("transA", 0) else a[-1]
            total += 2 * y.numel * k
    return total


@dataclass
class Result:
    engine: str
    median_ms: float
    min_ms: float
    note: str = ""


# Which clock times an inference. "cpu": CPU time of the whole process (all its threads), so
# other processes' time slices on a shared, loaded machine do not count (and an engine's
# helper threads do); "wall": elapsed time. Set by run_benchmark.
CLOCK = {"name": "cpu"}


def _now() -> float:
    return time.process_time() if CLOCK["name"] == "cpu" else time.perf_counter()


def _time(fn: Callable[[], None], iterations: int, warmup: int) -> List[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iterations):
        t0 = _now()
        fn()
        times.append((_now() - t0) * 1000)
    return times


def _clock_of_c_timing() -> str:
    """The in-process C timing clock matching CLOCK: process CPU time (all of this process'
    threads; Python waits in the foreign call meanwhile) or wall-clock time."""
    return "process" if CLOCK["name"] == "cpu" else "wall"


def bench_ours(path: str, feeds: Dict[str, np.ndarray], iterations: int, warmup: int,
               isa: str = "native", threads: int = 1, subprocess: bool = False,
               python: bool = False):
    """Our latency timed in C around megcc_network_forward (in this process; the runner
    process with subprocess=True), and with python=True a second Result: the latency of
    InferenceSession.run as a Python caller sees it (feeds in, new output arrays out)."""
    from .compiler import ModelSpec, compile_bundle
    from .host import build_runner, in_process_supported, run_blob_logged
    from .session import InferenceSession

    with tempfile.TemporaryDirectory(prefix="megcc-bench-") as tmp:
        shapes = {k: tuple(v.shape) for k, v in feeds.items()}
        bundle = compile_bundle([ModelSpec("model", path, [shapes])], tmp, save_c_array=False,
                                isa=isa)
        plan = bundle.models[0].plans[0]
        ordered = [feeds[n] for n in plan.graph.inputs]
        note = f"{threads} thread{'s' if threads > 1 else ''}"
        if subprocess or not in_process_supported():
            if threads != 1:
                raise ValueError("--threads needs the in-process runtime")
            runner = build_runner(bundle.files["kernels_c"])
            _, log = run_blob_logged(runner, bundle.files["model.tiny"], ordered,
                                     extra_args=["-w", str(warmup), "-t", str(iterations)]
                                     + (["--cpu-clock"] if CLOCK["name"] == "cpu" else []))
            m = re.search(r"latency_ms min=([0-9.]+) median=([0-9.]+)", log)
            return [Result("megcc", float(m.group(2)), float(m.group(1)),
                           note + ", runner process")], plan
        with InferenceSession(tmp, threads=threads) as sess:
            ms, _ = sess.native_network().time_forward(ordered, warmup, iterations,
                                                       _clock_of_c_timing())
            results = [Result("megcc", statistics.median(ms), min(ms), note + ", timed in C")]
            if python:
                times = _time(lambda: sess.run(None, feeds), iterations, warmup)
                results.append(Result("megcc-python", statistics.median(times), min(times),
                                      note + ", InferenceSession.run"))
        return results, plan


def bench_onnxruntime(path: str, feeds, iterations: int, warmup: int, threads: int = 1
                      ) -> Result:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads > 1:  # spinning workers would burn the other cores between runs
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # e.g. a newer IR version than this onnxruntime reads
        return Result("onnxruntime", 0.0, 0.0, f"failed: onnxruntime {ort.__version__} "
                      f"could not load the model: {_ort_reason(exc)}")
    times = _time(lambda: sess.run(None, feeds), iterations, warmup)
    return Result("onnxruntime", statistics.median(times), min(times),
                  f"CPU EP, {threads} intra-op thread{'s' if threads > 1 else ''}, "
                  "ORT_ENABLE_ALL, InferenceSession.run")


class _QuietStderr:
    """Collect what a native library writes to fd 2 (MegEngine logs every failed layout
    pass with a C++ backtrace) instead of letting it reach the user's terminal."""

    def __enter__(self):
        import sys

        sys.stderr.flush()
        self._file = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.close()
        return False


def _ort_reason(exc: Exception) -> str:
    """onnxruntime's reason without its C++ location prefix ("...model.cc:181 onnxruntime::
    Model::Model(...) Unsupported model IR version: 13, ...")."""
    line = _first_line(exc) if len(str(exc)) < 160 else str(exc).strip().splitlines()[0]
    return re.sub(r"^.*\) (?=[A-Z])", "", line)[:160]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line[:160]


def _time_lite(lite, path, feeds, iterations, warmup, layout, profile, failures):
    """One MegEngine Lite configuration's Result, or None (its error added to failures)."""
    cfg = lite.LiteConfig()
    cfg.options.weight_preprocess = True
    if layout != "nchw":
        setattr(cfg.options, f"enable_{layout}", True)
    try:
        net = lite.LiteNetwork(cfg)
        net.threads_number = 1
        if profile:
            net.set_network_algo_policy(lite.LiteAlgoSelectStrategy.LITE_ALGO_PROFILE
                                        | lite.LiteAlgoSelectStrategy.LITE_ALGO_OPTIMIZED)
        net.load(path)
        for name, value in feeds.items():
            net.get_io_tensor(name).set_data_by_copy(value)

        def forward():
            net.forward()
            net.wait()

        times = _time(forward, iterations, warmup)
    except Exception as exc:  # MegEngine refused this configuration
        failures.append(f"{layout}: {_first_line(exc)}")
        return None
    finally:
        net = None
    return Result("megengine-lite", statistics.median(times), min(times),
                  f"1 thread, weight_preprocess, {layout}, "
                  f"{'fast-run profile' if profile else 'heuristic'}")


def bench_megengine_lite(path: str, feeds, iterations: int, warmup: int) -> Result:
    """MegEngine Lite at its best on this machine: its layout transform (NCHW44 on Arm,
    NCHW88 on x86) when the model accepts it, else the plain layout; heuristic and fast-run
    algorithm choice; the faster wins. A configuration MegEngine refuses is skipped (its
    error in the note when none runs)."""
    import gc
    import logging
    import platform

    import megenginelite as lite

    arm = platform.machine().lower() in ("aarch64", "arm64", "armv7l")
    best: Optional[Result] = None
    failures = []

    root = logging.getLogger()
    level = root.level
    # MegEngine logs a refused layout pass (with a C++ backtrace) when it happens and again
    # when the failed network is destroyed: the whole loop, collection included, runs with
    # its native log captured.
    with _QuietStderr():
        root.setLevel(logging.CRITICAL)  # megenginelite logs its errors too
        try:
            for layout in ("nchw44" if arm else "nchw88", "nchw"):
                for profile in (False, True):
                    r = _time_lite(lite, path, feeds, iterations, warmup, layout, profile,
                                   failures)
                    if r is not None and (best is None or r.median_ms < best.median_ms):
                        best = r
                    gc.collect()
                if best is not None:
                    break
        finally:
            root.setLevel(level)
    if best is None:
        return Result("megengine-lite", 0.0, 0.0, "failed: " + "; ".join(failures[::2]))
    return best


def _seeded_feed(tensor, rng) -> np.ndarray:
    """A benchmark input of the tensor's own dtype (onnxruntime refuses float32 for an int8
    input): floats standard normal, integers over their whole range (int8/uint8 codes of a
    quantized model) or 0/1 for wider ones (indices, flags), as `megcc run` seeds them."""
    from .ir.dtypes import numpy_dtype

    dt = np.dtype(numpy_dtype(tensor.dtype))
    if dt.kind == "f":
        return rng.standard_normal(tensor.shape).astype(dt)
    if dt.itemsize == 1 and dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, tensor.shape, endpoint=True).astype(dt)
    return rng.integers(0, 2, tensor.shape).astype(dt)


def run_benchmark(path: str, shapes: Optional[Dict[str, tuple]], compare: List[str],
                  iterations: int, warmup: int = 3, seed: int = 0, isa: str = "native",
                  clock: str = "cpu", threads: int = 1, python: bool = False,
                  subprocess: bool = False) -> dict:
    """Results: ours (timed in C) first, then the engines of `compare`, then (python=True)
    our InferenceSession.run. threads > 1 times in wall-clock time (CPU time adds up the
    threads' time, hiding any speed-up)."""
    from .compiler import load_graph

    graph = load_graph(path, shapes)
    rng = np.random.default_rng(seed)
    feeds = {n: _seeded_feed(graph.tensors[n], rng) for n in graph.inputs}
    if clock not in ("cpu", "wall"):
        raise ValueError(f"clock must be cpu or wall, not {clock!r}")
    if threads > 1:
        clock = "wall"
    CLOCK["name"] = clock
    peak = measure_fma_peak_gflops()
    ours, plan = bench_ours(path, feeds, iterations, warmup, isa, threads, subprocess, python)
    results = ours[:1]
    is_onnx = path.lower().endswith(".onnx")
    for engine in compare:
        if engine == "onnxruntime" and is_onnx:
            results.append(bench_onnxruntime(path, feeds, iterations, warmup, threads))
        elif engine == "megengine" and not is_onnx:
            results.append(bench_megengine_lite(path, feeds, iterations, warmup))
        else:  # say so rather than drop the row
            kind = "an ONNX model" if is_onnx else "a MegEngine model"
            results.append(Result("megengine-lite" if engine == "megengine" else engine,
                                  0.0, 0.0, f"not run: {kind} ({engine} runs "
                                  f"{'.mge' if engine == 'megengine' else '.onnx'} files)"))
    return {"model": os.path.basename(path), "flops": model_flops(plan), "peak_gflops": peak,
            "results": results + ours[1:], "clock": clock, "threads": threads}


def format_report(report: dict) -> str:
    flops, peak = report["flops"], report["peak_gflops"]
    ours = report["results"][0]
    lines = [f"model {report['model']}: {flops / 1e9:.3f} GFLOP (conv+matmul), "
             f"measured single-core FMA peak {peak:.1f} GFLOP/s, "
             f"{report.get('clock', 'wall')} clock, {report.get('threads', 1)} thread(s)",
             f"{'engine':<16}{'median ms':>11}{'min ms':>10}{'GFLOP/s':>10}{'% peak':>8}"
             f"{'ours/x':>8}  config"]
    for r in report["results"]:
        if not r.median_ms:  # an engine that did not run: its reason only
            lines.append(f"{r.engine:<16}{'-':>11}{'-':>10}{'-':>10}{'-':>8}{'-':>8}  {r.note}")
            continue
        gf = flops / (r.median_ms * 1e6) if r.median_ms else 0.0
        ratio = ours.median_ms / r.median_ms if r.median_ms else 0.0
        lines.append(f"{r.engine:<16}{r.median_ms:>11.2f}{r.min_ms:>10.2f}{gf:>10.2f}"
                     f"{100 * gf / peak:>7.1f}%{ratio:>8.2f}  {r.note}")
    return "\n".join(lines)
