"""int8 against fp32 on conv-heavy networks, one run on this machine, single-threaded.

For each network: our fp32 build, our int8 build of the onnxruntime-quantized QDQ model
(per-channel weights, uint8 activations; and the same with reduce_range=True, 7-bit weights,
rows "NAME 7b": the vpmaddubsw kernel), onnxruntime (1 thread, ORT_ENABLE_ALL) on the fp32
and on the same QDQ model; the model blob sizes (int8 against fp32). onnxruntime picks its
kernels from the CPU it runs on (AVX512-VNNI here if the CPU has it); ours are built for
--isa (fp32) and --int8-isa (int8: a comma-separated list of levels, each timed in the same
rounds, e.g. x86_64-v3,x86_64-vnni for AVX2 against vpdpbusd). Networks: SqueezeNet
and ResNet-50 from the onnx package's light models (seeded He weights) and the
MobileNetV2-style SE network of tests/int8_models.py.

    python benchmarks/int8_bench.py [-n 3] [--rounds 5] [--isa x86_64-v3]
        [--int8-isa x86_64-v3,x86_64-vnni]
        [--models squeezenet,resnet50] [--work DIR]
        (--work keeps the quantized models there for benchmarks/layer_profile.py)

Every engine of a model is timed in the same rounds, one after the other (interleaved, so a
change of load on the shared machine hits all of them), on the process CPU clock; the
figures are medians over all rounds, the load average is printed on every row.

Targets (issue 11): int8 >= 1.5x our fp32 on conv-heavy nets at x86_64-v3, and <= 1.0x
onnxruntime's time on the QDQ model.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import numpy as np  # noqa: E402
import onnx  # noqa: E402

import int8_models  # noqa: E402
from megcc_builder.compiler import ModelSpec, compile_bundle  # noqa: E402


def _light(name):
    from test_onnx_real_models import model_path, with_random_weights

    return lambda: int8_models._light(name) if name != "resnet50" else \
        onnx.version_converter.convert_version(_strip(with_random_weights(
            onnx.load(model_path(name)), 11)), 13)


def _strip(model):
    g = model.graph
    inits = {t.name for t in g.initializer}
    for vi in [vi for vi in g.input if vi.name in inits]:
        g.input.remove(vi)
    used = {i for n in g.node for i in n.input}
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)
    model.ir_version = 8
    return model


NETS = {"squeezenet": _light("squeezenet"), "resnet50": _light("resnet50"),
        "mobilenet_se": int8_models.mobilenet_se}


def blob_size(path: str, shapes) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        bundle = compile_bundle([ModelSpec("model", path, [shapes])], tmp, save_c_array=False)
        return os.path.getsize(bundle.files["model.tiny"])


class Ours:
    """One compiled model kept open: forwards timed in C on the process CPU clock."""

    def __init__(self, path: str, feeds, isa: str, stack: contextlib.ExitStack):
        from megcc_builder.session import InferenceSession

        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="megcc-int8-bench-"))
        shapes = {k: tuple(v.shape) for k, v in feeds.items()}
        bundle = compile_bundle([ModelSpec("model", path, [shapes])], tmp, save_c_array=False,
                                isa=isa)
        plan = bundle.models[0].plans[0]
        self.arrays = [feeds[n] for n in plan.graph.inputs]
        self.net = stack.enter_context(InferenceSession(tmp, threads=1)).native_network()

    def times(self, iterations: int) -> List[float]:
        return self.net.time_forward(self.arrays, 1, iterations, "process")[0]


class Ort:
    """onnxruntime, one intra-op thread, ORT_ENABLE_ALL, timed on the process CPU clock."""

    def __init__(self, path: str, feeds):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.feeds = feeds

    def times(self, iterations: int) -> List[float]:
        self.sess.run(None, self.feeds)
        out = []
        for _ in range(iterations):
            t0 = time.process_time()
            self.sess.run(None, self.feeds)
            out.append((time.process_time() - t0) * 1000)
        return out


def uptime() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3, help="timed forwards per engine per round")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds; each round times every engine of a model in turn")
    ap.add_argument("--isa", default="x86_64-v3")
    ap.add_argument("--int8-isa", default="", help="levels of the int8 builds, comma-"
                    "separated (default: --isa)")
    ap.add_argument("--work", default="", help="directory for the models (default: a new "
                    "temporary one)")
    ap.add_argument("--models", default="squeezenet,resnet50,mobilenet_se")
    args = ap.parse_args()
    levels = (args.int8_isa or args.isa).split(",")
    work = args.work or tempfile.mkdtemp(prefix="megcc-int8-bench-")
    os.makedirs(work, exist_ok=True)
    print(f"start: {uptime()} on {os.cpu_count()} CPUs; CPU clock (process time), 1 thread, "
          f"ISA {args.isa}, int8 {','.join(levels)}; {args.rounds} interleaved rounds x {args.n} forwards, medians")
    print(f"{'model':26} {'fp32 ms':>9} {'int8 ms':>9} {'fp32/int8':>10} {'ort fp32':>9} "
          f"{'ort qdq':>9} {'int8/ortq':>10} {'blob fp32':>10} {'blob int8':>10}  load")
    import onnxruntime as ort

    for name in args.models.split(","):
        fp = int8_models.prepared(NETS[name](), work, name)
        inp = ort.InferenceSession(fp, providers=["CPUExecutionProvider"]).get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        rng = np.random.default_rng(3)
        calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(2)]
        forms = int8_models.quantize_all(fp, work, inp.name, calib,
                                         forms=("qdq_per_channel", "qdq_reduce_range"))
        feeds = {inp.name: rng.standard_normal(shape).astype(np.float32)}
        rows = [(s + (f" {lv}" if len(levels) > 1 else ""), form, lv)
                for s, form in (("", "qdq_per_channel"), (" 7b", "qdq_reduce_range"))
                for lv in levels]
        with contextlib.ExitStack() as stack:
            engines = {"fp32": Ours(fp, feeds, args.isa, stack), "ort fp32": Ort(fp, feeds)}
            for suffix, form, lv in rows:
                engines["int8" + suffix] = Ours(forms[form], feeds, lv, stack)
                engines.setdefault("ortq " + form, Ort(forms[form], feeds))
            samples = {k: [] for k in engines}
            for _ in range(args.rounds):  # interleaved: every engine sees the same load
                for k, e in engines.items():
                    samples[k] += e.times(args.n)
            med = {k: statistics.median(v) for k, v in samples.items()}
        shapes = {inp.name: tuple(shape)}
        for suffix, form, _ in rows:
            i8, oq = med["int8" + suffix], med["ortq " + form]
            print(f"{name + suffix:26} {med['fp32']:9.2f} {i8:9.2f} {med['fp32'] / i8:9.2f}x "
                  f"{med['ort fp32']:9.2f} {oq:9.2f} {i8 / oq:9.2f}x "
                  f"{blob_size(fp, shapes):10d} {blob_size(forms[form], shapes):10d}  "
                  f"{uptime()}", flush=True)
    print("(fp32/int8 > 1: our int8 is faster than our fp32 (target >= 1.5 on conv-heavy "
          "nets); int8/ortq < 1: ours is faster than onnxruntime on the same QDQ model "
          "(target <= 1.0))")
    print(f"end: {uptime()}; models in {work}")


if __name__ == "__main__":
    main()
