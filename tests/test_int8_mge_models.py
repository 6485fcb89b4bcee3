"""MegEngine int8 models end to end: our compiler + int8 C kernels + runtime against
MegEngine running the same quantized .mge.

Single-operator dumps (tests/mge_quant_zoo.py) must be bit-exact: MegEngine's int8 result is
the output, compared as integers. Whole networks (digits CNN, MobileNetV2-, ResNet-18- and
ShuffleNetV2-style, MegEngine post-training quantized) output dequantized logits; there the
requirement is one quantization step on at least 99 % of the elements, and the test reports
the bit-exact share and the largest deviation (in steps of the output's scale).
"""
import numpy as np
import pytest

import mge_quant_zoo as zoo
from build_support import require_target
from reference import assert_close
from megcc_builder.frontend.mge import load_mge
from megcc_builder.host import compile_and_run

MODES = {"plain": False, "optimized": True}
# Left out until h-int8 has the kernel: QLinearAveragePool with rounding="half_away" (MegEngine's
# average pooling; the numpy reading in tests/test_int8_mge_frontend.py covers the translation).
# The *_float_head nets test the three image nets' int8 bodies meanwhile. Put them back (and
# the at-the-ties test of commit "tests: compiled at-the-ties test left out") when it lands.
NO_KERNEL_YET = {"avgpool_2x2", "avgpool_3x3_s2_p1_include_pad", "avgpool_3x3_s1_p1_exclude_pad",
                 "global_avgpool", "mobilenet_v2", "resnet18", "shufflenet_v2"}
COMPILED_OPS = [n for n in zoo.OP_NAMES if n not in NO_KERNEL_YET]
INT8_NETS = [n for n in zoo.NET_NAMES if not n.endswith("_float_head") and n not in NO_KERNEL_YET]


@pytest.fixture(scope="session")
def qzoo_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("mge_quant_e2e"))


def _feeds(name, seed=0):
    inputs = zoo.op_inputs(name, seed) if name in zoo.OPS else [zoo.net_input(name, 100 + seed)]
    return dict(zip(zoo.input_names(name), inputs))


def _output_step(path) -> float:
    """The quantization step of the model's (dequantized) output."""
    graph = load_mge(path)
    (op,) = [op for op in graph.ops if op.outputs[0] == graph.outputs[0]]
    assert op.type == "DequantizeLinear", op.type
    return float(graph.tensor(op.inputs[1]).data)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", COMPILED_OPS)
def test_single_operator_bit_exact(qzoo_dir, name, mode):
    path = zoo.dump(name, qzoo_dir, MODES[mode])
    feeds = _feeds(name)
    (ref,) = zoo.reference_output(path, feeds)
    (ours,) = compile_and_run(path, feeds).values()
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    diff = np.flatnonzero(ours != ref)
    assert diff.size == 0, (f"{name}/{mode}: {diff.size} of {ref.size} elements differ, first "
                            f"at {diff[0]}: ours {ours.flat[diff[0]]}, MegEngine {ref.flat[diff[0]]}")


# (dump mode, ISA level, target): every dump mode on the best host level, the portable C
# once, and the NCHW44 dump (MegCC's ARM flow) on Arm64 under qemu
NET_RUNS = [("plain", "generic", None), ("plain", "native", None),
            ("optimized", "native", None), ("nchw44", "native", None),
            ("nchw44_dot", "native", None), ("nchw44", "arm64-neon", "arm64")]


@pytest.mark.parametrize("mode,isa,target", NET_RUNS)
@pytest.mark.parametrize("name", INT8_NETS)
def test_whole_net_within_one_step(qzoo_dir, name, mode, isa, target, summary):
    if target:
        require_target(target)
    path = zoo.dump(name, qzoo_dir, mode)
    step = _output_step(path)
    x = np.concatenate([_feeds(name, seed)["data"] for seed in range(4)])  # a batch of 4
    (ref,) = zoo.reference_output(path, {"data": x})
    (ours,) = compile_and_run(path, {"data": x}, isa=isa, target=target).values()
    assert ours.shape == ref.shape
    steps = np.abs(ours.astype(np.float64) - ref) / step
    within = float(np.mean(steps <= 1.0 + 1e-6))
    exact = float(np.mean(ours == ref))
    worst = int(np.argmax(steps))
    summary(f"int8 mge {name} [{mode}, {isa}{' on ' + target if target else ''}]: {exact:.2%} bit-exact, {within:.2%} within one "
            f"step, largest deviation {steps.flat[worst]:.3g} steps (ours {ours.flat[worst]:.6g}, "
            f"MegEngine {ref.flat[worst]:.6g}), top-1 agreement "
            f"{np.mean(np.argmax(ours, 1) == np.argmax(ref, 1)):.0%}")
    assert within >= 0.99
    assert np.array_equal(np.argmax(ours, 1), np.argmax(ref, 1))


FLOAT_HEAD_NETS = [n for n in zoo.NET_NAMES if n.endswith("_float_head")]


@pytest.mark.parametrize("mode,isa,target", NET_RUNS)
@pytest.mark.parametrize("name", FLOAT_HEAD_NETS)
def test_int8_body_bit_exact_float_head_close(qzoo_dir, name, mode, isa, target, summary):
    """MobileNetV2/ResNet-18/ShuffleNetV2-style nets whose global pooling and classifier run
    in float: the int8 body's dequantized output map must equal MegEngine's bit for bit,
    the float logits within the float rule (1e-4 relative), with the same top-1."""
    if target:
        require_target(target)
    path = zoo.dump(name, qzoo_dir, mode)
    x = np.concatenate([_feeds(name, seed)["data"] for seed in range(4)])
    ref_logits, ref_map = zoo.reference_output(path, {"data": x})
    ours_logits, ours_map = compile_and_run(path, {"data": x}, isa=isa, target=target).values()
    diff = np.flatnonzero(ours_map != ref_map)
    assert diff.size == 0, f"{name}/{mode}: {diff.size} of {ref_map.size} int8 outputs differ"
    err = assert_close(ours_logits, ref_logits, what=f"{name}/{mode} logits")
    assert np.array_equal(np.argmax(ours_logits, 1), np.argmax(ref_logits, 1))
    summary(f"int8 mge {name} [{mode}, {isa}{' on ' + target if target else ''}]: int8 body "
            f"{ref_map.size} values bit-exact; float logits max normalised error {err:.2e}")


def test_digits_int8_accuracy_beside_fp32(qzoo_dir, summary):
    """The compiled int8 digits CNN on sklearn's 300 held-out real digits, beside the fp32
    network it was quantized from."""
    import megengine as mge

    float_net = zoo.digits_float()
    _, _, x_test, y_test = zoo.digits_data()
    fp32 = float(np.mean(np.argmax(float_net(mge.tensor(x_test)).numpy(), 1) == y_test))
    path = zoo.dump("digits", qzoo_dir, True)
    (ref,) = zoo.reference_output(path, {"data": x_test})
    (ours,) = compile_and_run(path, {"data": x_test}).values()
    assert np.array_equal(ours, ref)  # bit-exact against MegEngine on all 300 images
    int8 = float(np.mean(np.argmax(ours, 1) == y_test))
    summary(f"digits compiled int8: {int8:.2%} of {len(y_test)} held-out images correct "
            f"(fp32 network: {fp32:.2%})")
    assert int8 >= 0.95 and int8 >= fp32 - 0.02
