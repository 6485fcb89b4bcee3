"""int8 against fp32 on conv-heavy networks, one run on this machine, single-threaded.

For each network: our fp32 build, our int8 build of the onnxruntime-quantized QDQ model
(per-channel weights, uint8 activations; and the same with reduce_range=True, 7-bit weights,
rows "NAME 7b": the vpmaddubsw kernel), onnxruntime (1 thread, ORT_ENABLE_ALL) on the fp32
and on the same QDQ model; the model blob sizes (int8 against fp32). onnxruntime picks its
kernels from the CPU it runs on (AVX512-VNNI here if the CPU has it); ours are built for
--isa (x86_64-v3: AVX2, no VNNI). Networks: SqueezeNet
and ResNet-50 from the onnx package's light models (seeded He weights) and the
MobileNetV2-style SE network of tests/int8_models.py.

    python benchmarks/int8_bench.py [-n 10] [--isa x86_64-v3] [--models squeezenet,resnet50]
        [--work DIR]   (keeps the quantized models there for benchmarks/layer_profile.py)

Targets (issue 11): int8 >= 1.5x our fp32 on conv-heavy nets at x86_64-v3, and <= 1.0x
onnxruntime's time on the QDQ model.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import numpy as np  # noqa: E402
import onnx  # noqa: E402

import int8_models  # noqa: E402
from megcc_builder import bench  # noqa: E402
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10, help="timed iterations")
    ap.add_argument("--isa", default="x86_64-v3")
    ap.add_argument("--work", default="", help="directory for the models (default: a new "
                    "temporary one)")
    ap.add_argument("--models", default="squeezenet,resnet50,mobilenet_se")
    args = ap.parse_args()
    bench.CLOCK["name"] = "cpu"
    work = args.work or tempfile.mkdtemp(prefix="megcc-int8-bench-")
    os.makedirs(work, exist_ok=True)
    load0 = os.getloadavg()
    print(f"{'model':14} {'fp32 ms':>9} {'int8 ms':>9} {'int8/fp32':>10} {'ort fp32':>9} "
          f"{'ort qdq':>9} {'int8/ortq':>10} {'blob fp32':>10} {'blob int8':>10}")
    for name in args.models.split(","):
        fp = int8_models.prepared(NETS[name](), work, name)
        import onnxruntime as ort

        inp = ort.InferenceSession(fp, providers=["CPUExecutionProvider"]).get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        rng = np.random.default_rng(3)
        calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(2)]
        forms = int8_models.quantize_all(fp, work, inp.name, calib,
                                         forms=("qdq_per_channel", "qdq_reduce_range"))
        feeds = {inp.name: rng.standard_normal(shape).astype(np.float32)}
        ours_f = bench.bench_ours(fp, feeds, args.n, 2, args.isa)[0][0]
        ort_f = bench.bench_onnxruntime(fp, feeds, args.n, 2)
        shapes = {inp.name: tuple(shape)}
        for form, label in (("qdq_per_channel", name), ("qdq_reduce_range", name + " 7b")):
            qdq = forms[form]
            ours_q = bench.bench_ours(qdq, feeds, args.n, 2, args.isa)[0][0]
            ort_q = bench.bench_onnxruntime(qdq, feeds, args.n, 2)
            print(f"{label:14} {ours_f.median_ms:9.2f} {ours_q.median_ms:9.2f} "
                  f"{ours_f.median_ms / ours_q.median_ms:9.2f}x {ort_f.median_ms:9.2f} "
                  f"{ort_q.median_ms:9.2f} {ours_q.median_ms / ort_q.median_ms:9.2f}x "
                  f"{blob_size(fp, shapes):10d} {blob_size(qdq, shapes):10d}", flush=True)
    print(f"(medians of {args.n} runs, process CPU time, 1 thread, ISA {args.isa}; "
          "int8/fp32 > 1 means int8 is faster; int8/ortq < 1 means ours is faster)")
    load1 = os.getloadavg()
    print(f"(load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end, on "
          f"{os.cpu_count()} CPUs; models in {work})")


if __name__ == "__main__":
    main()
