"""How far fixed-point requantization (enable_fixed_point_requant: Q31 multiplier + shift per
channel, CMSIS-NN's arithmetic) lands from the model's own float requantization, end to end.

For each network quantized by onnxruntime (QDQ, per-channel int8 weights, uint8 and int8
activations): our float-mode build and our fixed-point build on the same input, both on the
host (portable C, level generic; the Cortex-M kernels give the same integers, tests/
test_int8_mcu.py), compared in output quantization steps: how many outputs differ, the
largest difference, top-1 agreement; and how many int8 layers with a fixed-point form
(convolutions, matrix products, QLinearAdd/Mul, average pools) the fixed mode took.

Then the same comparison per operator with a fixed-point form on its own (--ops): every pair
of int8 codes for QLinearAdd / QLinearMul (256 x 256 outputs), random planes for the average
pools, a few scale sets each.

    python benchmarks/int8_fixed_point.py [--models digits,mobilenet_se,squeezenet] [--ops]
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

import int8_models  # noqa: E402
from megcc_builder.compiler import ModelSpec, compile_bundle  # noqa: E402
from megcc_builder.host import run_compiled  # noqa: E402
from test_int8_onnx_models import output_step  # noqa: E402


def _model(name: str, work: str):
    """(quantized paths by form, input name, input batch)."""
    if name == "digits":
        model, x, _ = int8_models.digits_cnn()
        calib = [x[i:i + 1] for i in range(64)]
    else:
        model = int8_models.MODELS[name]()
        inp = model.graph.input[0]
        shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
        rng = np.random.default_rng(3)
        x = rng.standard_normal([8] + shape[1:]).astype(np.float32)
        calib = [rng.standard_normal([1] + shape[1:]).astype(np.float32) for _ in range(16)]
    path = int8_models.prepared(model, work, name)
    name_in = model.graph.input[0].name
    paths = int8_models.quantize_all(path, work, name_in, calib,
                                     forms=("qdq_per_channel", "qdq_s8"))
    return paths, name_in, x


def _run(path: str, name_in: str, x, fixed: bool, work: str):
    out = os.path.join(work, f"{os.path.basename(path)}.{int(fixed)}")
    spec = ModelSpec("m", path, [{name_in: tuple(x.shape)}], True, "generic",
                     enable_fixed_point_requant=fixed)
    b = compile_bundle([spec], out, save_c_array=False, isa="generic")
    plan = b.models[0].plans[0]
    q31 = sum("_q31" in i.kernel.name for i in plan.instrs)
    ints = sum(i.kernel.name.startswith(("qlinear_conv", "qlinear_dwconv", "qlinear_matmul",
                                         "qgemm", "qlinear_add", "qlinear_mul", "qlinear_avgpool",
                                         "qlinear_global_avgpool"))
               for i in plan.instrs)
    (y,) = run_compiled(b.files["kernels_c"], b.files["m.tiny"], [x])
    return y, q31, ints


# (label, op, attrs, (x scale, [b scale,] y scale), zero points)
OPS = [("QLinearAdd", {}, (0.031, 0.017, 0.045), (3, -7, 11)),
       ("QLinearAdd", {}, (0.02, 0.02, 0.03), (0, 0, -5)),
       ("QLinearAdd", {}, (0.004, 0.3, 0.2), (-20, 9, 0)),
       ("QLinearMul", {}, (0.031, 0.017, 0.045), (3, -7, 11)),
       ("QLinearMul", {}, (0.1, 0.05, 0.9), (0, -20, 5)),
       ("QLinearAveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]), (0.05, 0.04),
        (-3, 4)),
       ("QLinearAveragePool", dict(kernel_shape=[2, 2], strides=[2, 2]), (0.03, 0.03),
        (5, 5)),
       ("QLinearGlobalAveragePool", dict(channels_last=0), (0.05, 0.02), (-3, 4))]


def _op_model(op: str, attrs: dict, scales, zps, path: str):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    binary = op in ("QLinearAdd", "QLinearMul")
    shape = [256, 256] if binary else [1, 8, 32, 32]
    names = ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"] if binary else \
        ["a", "sa", "za", "sc", "zc"]
    vals = {"sa": scales[0], "sc": scales[-1], "za": zps[0], "zc": zps[-1]}
    if binary:
        vals.update(sb=scales[1], zb=zps[1])
    init = [numpy_helper.from_array(np.array(v, np.float32 if k[0] == "s" else np.int8), k)
            for k, v in vals.items()]
    out = [1, 8, 1, 1] if op == "QLinearGlobalAveragePool" else None
    node = helper.make_node(op, names, ["y"], domain="com.microsoft", **attrs)
    ins = [helper.make_tensor_value_info(n, TensorProto.INT8, shape)
           for n in (["a", "b"] if binary else ["a"])]
    g = helper.make_graph([node], "g", ins,
                          [helper.make_tensor_value_info("y", TensorProto.INT8, out)], init)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.microsoft", 1)])
    onnx.save(m, path)
    if binary:  # every pair of codes
        codes = np.arange(-128, 128, dtype=np.int8)
        return [np.repeat(codes[:, None], 256, 1), np.repeat(codes[None, :], 256, 0)]
    return [np.random.default_rng(5).integers(-128, 128, shape).astype(np.int8)]


def ops_table(work: str) -> None:
    print("\n| operator | scales (x, [b,] y) | kernel (fixed) | outputs differing | largest "
          "difference (steps) |")
    print("|---|---|---|---|---|")
    for k, (op, attrs, scales, zps) in enumerate(OPS):
        path = os.path.join(work, f"op{k}.onnx")
        xs = _op_model(op, attrs, scales, zps, path)
        ys, kernels = [], []
        for fixed in (False, True):
            spec = ModelSpec("m", path, [{f"{n}": tuple(x.shape) for n, x in
                                          zip("ab", xs)}], True, "generic",
                             enable_fixed_point_requant=fixed)
            b = compile_bundle([spec], os.path.join(work, f"op{k}.{int(fixed)}"),
                               save_c_array=False, isa="generic")
            kernels.append(b.models[0].plans[0].instrs[0].kernel.name)
            ys.append(run_compiled(b.files["kernels_c"], b.files["m.tiny"], xs)[0])
        d = np.abs(ys[0].astype(np.int32) - ys[1].astype(np.int32))
        print(f"| {op} | {', '.join(f'{v:g}' for v in scales)} | {kernels[1]} | "
              f"{np.mean(d > 0):.2%} of {d.size} | {d.max()} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="digits,mobilenet_se,squeezenet",
                    help="comma-separated; empty: none")
    ap.add_argument("--ops", action="store_true", help="also the per-operator table")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="megcc-fixed-")
    if args.ops:
        ops_table(work)
    if not args.models:
        return 0
    print("| model | form | int8 layers in fixed point | outputs differing | largest "
          "difference (steps) | top-1 agreement |")
    print("|---|---|---|---|---|---|")
    for name in args.models.split(","):
        paths, name_in, x = _model(name, work)
        for form, path in paths.items():
            yf, _, _ = _run(path, name_in, x, False, work)
            yq, q31, ints = _run(path, name_in, x, True, work)
            steps = np.rint(np.abs(yq - yf) / output_step(path)).astype(np.int64)
            top = float(np.mean(yq.reshape(len(x), -1).argmax(1) ==
                                yf.reshape(len(x), -1).argmax(1)))
            print(f"| {name} | {form} | {q31} of {ints} | {np.mean(steps > 0):.2%} of "
                  f"{steps.size} | {steps.max()} | {top:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
