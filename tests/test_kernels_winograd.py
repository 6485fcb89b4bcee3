"""The AVX2 Winograd F(4x4, 3x3) and F(2x2, 3x3) convolutions and the fused residual-add
epilogue against numpy references, each case checking which kernel ran (no silent fallback).

Winograd cases cover the kernels' edges (F(2,3) a subset: it shares all but the transforms):
output sizes 1..9 and not multiples of the tile (cut edge tiles), tile rows wider than the
8-tile vector groups, padding 0/1 and asymmetric, batch 2, output channels leaving 1..5-row
tails of the 6-row micro-tile and above the 96-channel block, input channels above the
512-channel K block (accumulation over K blocks, input transform redone per output block),
more tiles than one block (blocks starting in the middle of a tile row), and every epilogue
(none, bias, ReLU, Clip, a scalar activation, a residual); one case shrinks all blocks to
reach every loop edge on a small layer. Whether Winograd pays off, and which variant, is the
cost model's call, so the edge cases force one (`force`) and separate cases check what the
cost model picks on real layer shapes.

Weights are scaled like a trained layer's (variance 1 / fan-in, so outputs are of order 1):
Winograd's rounding error grows with the magnitude of the partial sums (at unit-variance
weights and K = 576 it reaches ~5e-4 normalised, ten times im2col's), and at realistic scale
the 1e-4 tolerance tests the kernel's indexing, not F(4,3)'s conditioning.
"""
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from build_support import in_ci
from megcc_builder.compiler import ModelSpec, build_plan, compile_bundle
from megcc_builder.options import CompileOptions
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import RUNTIME_DIR, run_onnx
from megcc_builder.isa import host_level, spec
from megcc_builder.kernels.conv import winograd_avx2_f32 as avx2_winograd
from reference import assert_close, conv2d

RNG = np.random.default_rng(2024)
AVX2 = "x86_64-v3"
# locally a host without AVX2 skips; in CI the cases run (and fail) rather than vanish
pytestmark = pytest.mark.skipif(not spec(AVX2).features <= spec(host_level()).features
                                and not in_ci(), reason="host has no AVX2+FMA")


def f32(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def weights(oc, c, k=3):
    return f32(oc, c, k, k, scale=1 / np.sqrt(c * k * k))


def model_of(nodes, inputs, consts, outputs=("y",)):
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in inputs.items()]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    graph = helper.make_graph(nodes, "t", vi, outs,
                              [numpy_helper.from_array(a, n) for n, a in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def plan_of(model, isa=AVX2):
    return build_plan(load_onnx(model), "t", CompileOptions(isa=isa))


def kernels_of(model, isa=AVX2):
    return [i.kernel.name for i in plan_of(model, isa).instrs]


def force(monkeypatch, want):
    """Make the cost model pick Winograd variant `want` wherever Winograd applies."""
    monkeypatch.setattr(avx2_winograd, "winograd_cycles",
                        lambda geo, variant, isa: 0.0 if variant == want else 1e30)
    return want


@pytest.fixture(params=["f43", "f23"])
def force_winograd(request, monkeypatch):
    return force(monkeypatch, request.param)


ACTS = {
    None: lambda v: v,
    "Relu": lambda v: np.maximum(v, 0),
    "Clip": lambda v: np.clip(v, -0.5, 0.75),
    "Sigmoid": lambda v: 1 / (1 + np.exp(-v)),
}


def activation(nodes, consts, act, src, out="y"):
    if act is None:
        nodes[-1].output[0] = out
    elif act == "Clip":
        consts.update(lo=np.array(-0.5, np.float32), hi=np.array(0.75, np.float32))
        nodes.append(helper.make_node("Clip", [src, "lo", "hi"], [out]))
    else:
        nodes.append(helper.make_node(act, [src], [out]))
    return nodes


@pytest.mark.parametrize("variant", ["f43", "f23"])
def test_transform_matrices_compute_a_correlation(variant):
    """A^T [(G g G^T) . (B^T d B)] A is the valid 3x3 correlation of an (m+2)^2 patch."""
    v = avx2_winograd.VARIANTS[variant]
    d, g = RNG.standard_normal((v.alpha, v.alpha)), RNG.standard_normal((3, 3))
    y = v.at @ ((v.g @ g @ v.g.T) * (v.bt @ d @ v.bt.T)) @ v.at.T
    m = v.tile
    ref = np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(m)] for i in range(m)])
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_winograd_small_blocks(monkeypatch, force_winograd):
    """Blocks far smaller than the defaults on one layer: 3 K blocks (accumulating, input
    transform redone per output block), 3 output-channel blocks with a 1-row tail, tile
    blocks of 16 starting mid-row (9 tiles per row)."""
    monkeypatch.setattr(avx2_winograd, "KB_MAX", 16)
    monkeypatch.setattr(avx2_winograd, "MB_MAX", 12)
    monkeypatch.setattr(avx2_winograd, "WORKSPACE_BUDGET", 1)
    x, wt, b = f32(1, 40, 13, 35), weights(25, 40), f32(25)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 0, 1, 0]),
             helper.make_node("Relu", ["c"], ["y"])]
    model = model_of(nodes, {"x": x}, {"w": wt, "b": b})
    ins = plan_of(model).instrs[0]
    assert ins.kernel.name.startswith(f"conv2d_winograd_{force_winograd}")
    assert ins.params[10:13] == [16, 14, 12]
    (y,) = run_onnx(model, {"x": x}, isa=AVX2)
    assert_close(y, np.maximum(conv2d(x, wt, b, pads=(1, 0, 1, 0)), 0))


@pytest.mark.parametrize("c,hw,oc,stride,winograd", [
    (64, 56, 64, 1, "f43"), (128, 28, 128, 1, "f43"), (256, 14, 256, 1, "f43"),
    (512, 7, 512, 1, "f23"),  # F(4,3): 4 tiles, its 4x larger transformed weights dominate
    (64, 56, 64, 2, None),    # stride 2: not a Winograd case
])
def test_cost_model_choice_on_resnet_layers(c, hw, oc, stride, winograd):
    """Plans only (nothing runs): the ResNet-18 3x3 layers the model was calibrated on."""
    wt = np.zeros((oc, c, 3, 3), np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                            strides=[stride, stride])

    def instr(size):
        model = model_of([node], {"x": np.zeros((1, c, size, size), np.float32)}, {"w": wt})
        return plan_of(model).instrs[0]

    ins = instr(hw)
    assert ins.kernel.name.startswith(f"conv2d_winograd_{winograd}" if winograd else
                                      "conv2d_gemm6x16"), ins.kernel.name
    assert ("avx2 Winograd F(2,3)" in ins.note and "avx2 Winograd F(4,3)" in ins.note
            or stride != 1), ins.note
    if winograd:  # bounded by the channel blocks, whatever the feature map size
        tiles = (-(-hw // avx2_winograd.VARIANTS[winograd].tile)) ** 2
        if tiles < 2 * avx2_winograd.TILE_PARALLEL_MIN:  # one block's buffers
            assert ins.workspace_bytes <= 1536 * 1024, ins.workspace_bytes
        else:  # on threads cut into tile ranges: 4 areas (MAX_SCRATCH_PARTS) of 16 tiles
            assert ins.workspace_bytes <= 4 * 640 * 1024, ins.workspace_bytes
            assert instr(2 * hw).workspace_bytes == ins.workspace_bytes


def test_winograd_chosen_by_cost_model_runs():
    x, wt, b = f32(1, 32, 23, 26), weights(40, 32), f32(40)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    model = model_of(nodes, {"x": x}, {"w": wt, "b": b})
    assert kernels_of(model)[0].startswith("conv2d_winograd_f43"), kernels_of(model)
    (y,) = run_onnx(model, {"x": x}, isa=AVX2)
    assert_close(y, np.maximum(conv2d(x, wt, b, pads=(1, 1, 1, 1)), 0))


# ---------------------------------------------------------------------------------------
# residual add fused into the conv epilogue: y = act(conv(x) + bias + r)

def _residual_block(c, hw, k, act, r_first):
    """r = Relu(x); y = act(Conv2(Conv1(r)) + r), the Add's operands in either order; r's
    last reader becomes the fused conv, so its buffer is free from there on."""
    x, w1, w2, b2 = f32(1, c, hw, hw), weights(c, c, k), weights(c, c, k), f32(c)
    p = [k // 2] * 4
    add_in = ["r", "c2"] if r_first else ["c2", "r"]
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Conv", ["r", "w1"], ["c1"], kernel_shape=[k, k], pads=p),
             helper.make_node("Conv", ["c1", "w2", "b2"], ["c2"], kernel_shape=[k, k], pads=p),
             helper.make_node("Add", add_in, ["s"])]
    consts = {"w1": w1, "w2": w2, "b2": b2}
    nodes = activation(nodes, consts, act, "s")
    r = np.maximum(x, 0)
    ref = ACTS[act](conv2d(conv2d(r, w1, pads=p).astype(np.float32), w2, b2, pads=p) + r)
    return model_of(nodes, {"x": x}, consts), x, ref


@pytest.mark.parametrize("c,hw,act,r_first,kernel", [
    (24, 13, "Relu", False, "bias_residual_relu_avx2"),
    (24, 13, "Sigmoid", True, "bias_residual_sigmoid"),
    (13, 9, "Clip", False, "bias_residual_clip"),
])
def test_residual_fused_winograd(c, hw, act, r_first, kernel, force_winograd):
    model, x, ref = _residual_block(c, hw, 3, act, r_first)
    names = kernels_of(model)
    assert names[-1].startswith(f"conv2d_winograd_{force_winograd}_f32_{kernel}"), names
    assert len(names) == 3, names  # Relu, Conv1, Conv2 + Add (+ act): the Add pass is gone
    (y,) = run_onnx(model, {"x": x}, isa=AVX2)
    assert_close(y, ref, what=kernel)


@pytest.mark.parametrize("isa,c,hw,k,act,r_first,kernel", [
    (AVX2, 40, 9, 1, "Relu", True, "conv2d_1x1_gemm6x16_f32_bias_residual_relu_avx2"),
    (AVX2, 350, 9, 1, None, False, "conv2d_1x1_gemm6x16_f32_bias_residual_avx2"),  # 2 K blocks
    # a 5 x 5 map: the positions are the GEMM's rows (pointwise_rows_simd_f32)
    (AVX2, 350, 5, 1, None, False, "conv2d_1x1_rows_gemm6x16_f32_bias_residual_avx2"),
    (AVX2, 64, 2, 3, "Relu", False, "conv2d_gemm6x16_k3x3_s1x1_d1x1_f32_bias_residual_relu"),
    ("generic", 12, 7, 3, "Relu", False, "conv2d_im2col_k3x3_s1x1_d1x1_f32_bias_residual_relu"),
])
def test_residual_fused_gemm(isa, c, hw, k, act, r_first, kernel):
    """The packed-GEMM conv (1x1, and im2col where Winograd does not pay: a 2-row map) and
    the portable one."""
    model, x, ref = _residual_block(c, hw, k, act, r_first)
    names = kernels_of(model, isa)
    assert names[-1].startswith(kernel), names
    assert len(names) == 3, names
    (y,) = run_onnx(model, {"x": x}, isa=isa)
    assert_close(y, ref, what=kernel)


def test_residual_fused_into_the_later_of_two_convs():
    """Add(Conv_a(x), Conv_b(x)) (a ResNet downsample block): the conv computed second reads
    the first one's output; either way round the sum is right."""
    x = f32(1, 16, 10, 10)
    wa, wb, ba = weights(24, 16), weights(24, 16, 1), f32(24)
    nodes = [helper.make_node("Conv", ["x", "wa", "ba"], ["a"], kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Conv", ["x", "wb"], ["b"], kernel_shape=[1, 1]),
             helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    model = model_of(nodes, {"x": x}, {"wa": wa, "wb": wb, "ba": ba})
    plan = plan_of(model)
    assert len(plan.instrs) == 2 and "_residual_relu" in plan.instrs[1].kernel.name
    assert plan.instrs[1].inputs[3] == plan.instrs[0].outputs[0]
    (y,) = run_onnx(model, {"x": x}, isa=AVX2)
    assert_close(y, np.maximum(conv2d(x, wa, ba, pads=(1, 1, 1, 1)) + conv2d(x, wb), 0))


def test_residual_computed_after_the_conv():
    """Add(Conv(x), Sigmoid(x)) with the Sigmoid after the Conv in node order: the conv moves
    after it, reads its output and the Add disappears."""
    x, wt = f32(1, 8, 6, 6), weights(8, 8)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Sigmoid", ["x"], ["r"]), helper.make_node("Add", ["c", "r"], ["y"])]
    model = model_of(nodes, {"x": x}, {"w": wt})
    names = kernels_of(model)
    assert len(names) == 2 and "sigmoid" in names[0] and "_residual" in names[1], names
    (y,) = run_onnx(model, {"x": x}, isa=AVX2)
    assert_close(y, conv2d(x, wt, pads=(1, 1, 1, 1)) + 1 / (1 + np.exp(-x)))


@pytest.mark.parametrize("pattern", ["activation_before_add", "grouped_conv"])
def test_residual_not_fused(pattern):
    """Adds that must stay separate: the conv's activation comes before the add; a grouped
    conv (its kernels have no residual epilogue)."""
    x = f32(1, 8, 6, 6)
    group = 2 if pattern == "grouped_conv" else 1
    wt = weights(8, 8 // group)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1] * 4,
                              group=group)]
    conv = conv2d(x, wt, pads=(1, 1, 1, 1), group=group)
    if pattern == "activation_before_add":
        nodes.append(helper.make_node("Relu", ["c"], ["a"]))
        nodes.append(helper.make_node("Add", ["a", "x"], ["y"]))
        ref = np.maximum(conv, 0) + x
    else:
        nodes.append(helper.make_node("Add", ["c", "x"], ["y"]))
        ref = conv + x
    model = model_of(nodes, {"x": x}, {"w": wt})
    names = kernels_of(model)
    assert len(names) == 2 and not any("residual" in n for n in names), names
    (y,) = run_onnx(model, {"x": x}, isa=AVX2)
    assert_close(y, ref, what=pattern)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_generated_c_is_warning_free(tmp_path, cc, force_winograd):
    """Every Winograd variant (bias, residual, clamp, scalar pass) and the residual GEMM conv
    compile under -std=c99 -Wall -Wextra -Werror -pedantic."""
    x = np.zeros((1, 8, 6, 6), np.float32)
    consts = {"w": weights(8, 8), "w1": weights(8, 8, 1), "b": f32(8),
              "lo": np.array(-0.5, np.float32), "hi": np.array(0.75, np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c0"], kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Conv", ["c0", "w", "b"], ["c1"], kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Add", ["c1", "x"], ["s1"]),
             helper.make_node("Clip", ["s1", "lo", "hi"], ["y1"]),
             helper.make_node("Conv", ["y1", "w"], ["c2"], kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Sigmoid", ["c2"], ["y2"]),
             helper.make_node("Conv", ["y2", "w1"], ["c3"], kernel_shape=[1, 1]),
             helper.make_node("Add", ["c3", "y1"], ["y"])]
    path = str(tmp_path / "m.onnx")
    import onnx

    onnx.save(model_of(nodes, {"x": x}, consts), path)
    bundle = compile_bundle([ModelSpec("m", path)], str(tmp_path), save_c_array=False, isa=AVX2)
    names = [i.kernel.name for i in bundle.models[0].plans[0].instrs]
    assert sum(n.startswith("conv2d_winograd") for n in names) == 3, names
    assert any("residual" in n and "winograd" in n for n in names), names
    assert any("residual" in n and "gemm6x16" in n for n in names), names
    r = subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic",
                        "-Wno-overlength-strings", "-mavx2", "-mfma", "-I",
                        f"{RUNTIME_DIR}/include", "-c", bundle.files["kernels_c"], "-o",
                        str(tmp_path / "k.o")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
