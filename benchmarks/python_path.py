"""The Python path: megcc_builder.InferenceSession.run against onnxruntime's
InferenceSession.run, as a Python caller sees them, in one run on this machine.

1. Per-call overhead of run() on a one-operator model (Relu on 1x3x8x8).
2. Latency of run() (median of N calls after warm-up, one thread) on the benchmark models,
   beside our forward timed in C (the C-runner number) and onnxruntime.
3. Threads: our forward on 1 and 2 threads against onnxruntime with 1 and 2 intra-op
   threads (wall-clock time: CPU time would add the threads up).

    python benchmarks/python_path.py [-n 10] [--models resnet50,squeezenet,...]
        [--thread-models resnet50,mobilenet_v2] [--clock cpu|wall]

Models: the ONNX light models (onnx/backend/test/data/light: weights are constant fills,
fine for timing), our MegEngine zoo models exported to ONNX through our IR (so both
engines run the same graph; benchmarks/run_benchmarks.py does the same; `_96`/`_112`: at
that input resolution), and the models small_models.py builds: `face_cnn` (a
MobileFaceNet-style PReLU CNN with an NHWC input, 87 MFLOP) and `detector_320` (an
SSD-lite/YOLO-style detector at 320x320, 362 MFLOP).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from megcc_builder.session import InferenceSession  # noqa: E402
import small_models  # noqa: E402

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
ONNX_MODELS = ["resnet50", "squeezenet", "shufflenet", "inception_v1", "vgg19"]
MGE_MODELS = {"mobilenet_v2": (1, 3, 224, 224), "shufflenet_v2": (1, 3, 224, 224),
              "mobilenet_v2_96": (1, 3, 96, 96), "shufflenet_v2_112": (1, 3, 112, 112),
              "digits": (1, 1, 8, 8)}
# built by small_models.py: name -> builder
BUILT_MODELS = {"face_cnn": lambda: small_models.face_cnn(),
                "detector_320": lambda: small_models.detector(320)}


def model_path(name: str, work: str) -> str:
    if name in ONNX_MODELS:
        return os.path.join(LIGHT, f"light_{name}.onnx")
    if name in BUILT_MODELS:
        path = os.path.join(work, f"{name}.onnx")
        onnx.save(BUILT_MODELS[name](), path)
        return path
    path = os.path.join(work, f"{name}.onnx")
    if not os.path.exists(path):
        # Dumped and exported in a child process: importing MegEngine starts a background
        # thread that keeps about a tenth of a core busy, and in the timing process it
        # took that from one of the two threads being measured (two-thread runs of
        # MobileNetV2 took 14 ms instead of 7, onnxruntime's as well).
        subprocess.run([sys.executable, os.path.abspath(__file__), "--export", name, work],
                       check=True, stdout=subprocess.DEVNULL)
    return path


def export_mge_model(name: str, work: str) -> None:
    import mge_zoo
    from run_benchmarks import export_onnx

    zoo = name.rsplit("_", 1)[0] if name.rsplit("_", 1)[-1].isdigit() else name
    mge = mge_zoo.dump_model(zoo, os.path.join(work, f"{name}.mge"), True,
                             input_shape=MGE_MODELS[name], fuse_conv_bias=True)
    export_onnx(mge, os.path.join(work, f"{name}.onnx"))


def ort_session(path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # no warnings about the light models' unused initializers
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads > 1:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def clock_of(name: str):
    return time.process_time if name == "cpu" else time.perf_counter


def median_ms(fn, calls: int, warmup: int, clock) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        t0 = clock()
        fn()
        times.append((clock() - t0) * 1e3)
    return statistics.median(times)


def feeds_for(sess: InferenceSession, seed: int = 0):
    rng = np.random.default_rng(seed)
    return {i.name: rng.standard_normal(i.shape).astype(i.dtype) for i in sess.get_inputs()}


def per_call_overhead(repeats: int = 7, calls: int = 3000):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                                                [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    ours = InferenceSession(model)
    theirs = ort_session(model.SerializeToString(), 1)
    feeds = feeds_for(ours)
    assert np.array_equal(ours.run(None, feeds)[0], theirs.run(None, feeds)[0])
    best = {}
    for _ in range(repeats):  # interleaved, best of: the machine is shared
        for name, fn in (("megcc", lambda: ours.run(None, feeds)),
                         ("onnxruntime", lambda: theirs.run(None, feeds))):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            us = (time.perf_counter() - t0) / calls * 1e6
            best[name] = min(best.get(name, us), us)
    return best


def python_table(models, calls: int, work: str, clock_name: str):
    clock = clock_of(clock_name)
    rows = []
    for name in models:
        path = model_path(name, work)
        ours = InferenceSession(path)
        theirs = ort_session(path, 1)
        feeds = feeds_for(ours)
        c_ms = statistics.median(ours.native_network().time_forward(
            list(feeds.values()), 2, calls, "process" if clock_name == "cpu" else "wall")[0])
        py = median_ms(lambda: ours.run(None, feeds), calls, 2, clock)
        ref = median_ms(lambda: theirs.run(None, feeds), calls, 2, clock)
        rows.append((name, c_ms, py, ref))
        print(f"  {name}: C {c_ms:.2f} ms, run() {py:.2f} ms, onnxruntime {ref:.2f} ms",
              flush=True)
    return rows


def thread_table(models, calls: int, work: str):
    rows = []
    for name in models:
        path = model_path(name, work)
        res = {}
        for threads in (1, 2):
            ours = InferenceSession(path, threads=threads)
            feeds = feeds_for(ours)
            res[("megcc", threads)] = median_ms(lambda: ours.run(None, feeds), calls, 2,
                                                time.perf_counter)
            theirs = ort_session(path, threads)
            res[("onnxruntime", threads)] = median_ms(lambda: theirs.run(None, feeds), calls,
                                                      2, time.perf_counter)
            ours.close()
        rows.append((name, res))
        print(f"  {name}: " + ", ".join(f"{e} x{t} {v:.2f} ms" for (e, t), v in res.items()),
              flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--calls", type=int, default=10)
    ap.add_argument("--models", default="resnet50,squeezenet,shufflenet,mobilenet_v2,"
                                        "shufflenet_v2,mobilenet_v2_96,shufflenet_v2_112,"
                                        "face_cnn,digits,detector_320")
    ap.add_argument("--thread-models", default="resnet50,mobilenet_v2,detector_320")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="clock of the one-thread table (threads are always wall-clock)")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: "
                                               "overhead,python,threads")
    ap.add_argument("--export", nargs=2, metavar=("MODEL", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.export:
        export_mge_model(*args.export)
        return 0
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="megcc-pypath-") as work:
        if "overhead" not in skip:
            o = per_call_overhead()
            print("## Per-call overhead of run(), one-operator model (Relu 1x3x8x8), "
                  "best of 7 x 3000 calls")
            print(f"| engine | us per call |\n|---|---:|\n| megcc InferenceSession.run | "
                  f"{o['megcc']:.1f} |\n| onnxruntime InferenceSession.run | "
                  f"{o['onnxruntime']:.1f} |\n\nmegcc/onnxruntime: "
                  f"{o['megcc'] / o['onnxruntime']:.2f}\n", flush=True)
        if "python" not in skip:
            models = [m for m in args.models.split(",") if m]
            rows = python_table(models, args.calls, work, args.clock)
            print(f"## Python path, one thread, median of {args.calls} calls ({args.clock} "
                  "clock)")
            print("| model | megcc forward (C) ms | megcc run() ms | onnxruntime run() ms | "
                  "run()/ORT |\n|---|---:|---:|---:|---:|")
            ratios = []
            for name, c_ms, py, ref in rows:
                ratios.append(py / ref)
                print(f"| {name} | {c_ms:.2f} | {py:.2f} | {ref:.2f} | {py / ref:.2f} |")
            geo = float(np.exp(np.mean(np.log(ratios))))
            print(f"\ngeometric mean run()/ORT: {geo:.2f}; worst {max(ratios):.2f}\n",
                  flush=True)
        if "threads" not in skip:
            models = [m for m in args.thread_models.split(",") if m]
            rows = thread_table(models, args.calls, work)
            print(f"## Threads (wall clock, median of {args.calls} run() calls)")
            print("| model | megcc 1 thr ms | megcc 2 thr ms | speed-up | ORT 1 thr ms | "
                  "ORT 2 thr ms | ORT speed-up | megcc 2 / ORT 2 |\n"
                  "|---|---:|---:|---:|---:|---:|---:|---:|")
            for name, r in rows:
                m1, m2 = r[("megcc", 1)], r[("megcc", 2)]
                o1, o2 = r[("onnxruntime", 1)], r[("onnxruntime", 2)]
                print(f"| {name} | {m1:.2f} | {m2:.2f} | {m1 / m2:.2f} | {o1:.2f} | {o2:.2f} "
                      f"| {o1 / o2:.2f} | {m2 / o2:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
