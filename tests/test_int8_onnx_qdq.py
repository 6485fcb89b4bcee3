"""Single-operator QDQ models (DequantizeLinear -> op -> QuantizeLinear, as
onnxruntime.quantization writes them): the QDQ pass must turn each island into its integer
operator and the result must be bit-exact against onnxruntime's optimised run (which fuses
the same islands into its integer kernels); malformed quantization parameters are refused
with one line naming the node; `megcc inspect` lists the operators left in float."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from megcc_builder.compiler import build_plan
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import compile_and_run

F32 = np.float32
ONNX_TYPE = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8}


class QDQ:
    """A model whose float input is quantized, dequantized, run through `op` with
    dequantized constant operands, quantized and dequantized again."""

    def __init__(self, act: str = "uint8", seed: int = 0):
        self.act = act
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0
        self.zp = 128 if act == "uint8" else 0

    def _name(self, base):
        self.n += 1
        return f"{base}{self.n}"

    def const(self, value, dtype=None):
        name = self._name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def q(self, x, scale, zp=None, dtype=None):
        dtype = dtype or self.act
        out = self._name("q")
        zp = self.zp if zp is None else zp
        self.nodes.append(helper.make_node("QuantizeLinear", [x, self.const(scale, F32),
                                                              self.const(zp, dtype)], [out]))
        return out

    def dq(self, x, scale, zp, dtype, axis=None):
        out = self._name("dq")
        attrs = {} if axis is None else {"axis": axis}
        self.nodes.append(helper.make_node("DequantizeLinear",
                                           [x, self.const(scale, F32), self.const(zp, dtype)],
                                           [out], **attrs))
        return out

    def act_in(self, x, scale=0.05):
        return self.dq(self.q(x, scale), scale, self.zp, self.act)

    def weight(self, shape, per_channel_axis=None, dtype="int8"):
        w = self.rng.integers(-127, 128, shape).astype(dtype)
        if per_channel_axis is None:
            return self.dq(self.const(w), F32(0.01), 0, dtype)
        n = shape[per_channel_axis]
        return self.dq(self.const(w), np.linspace(0.003, 0.02, n).astype(F32),
                       np.zeros(n, dtype), dtype, axis=per_channel_axis)

    def bias(self, n, scale):
        b = self.rng.integers(-500, 500, n).astype(np.int32)
        return self.dq(self.const(b), np.asarray(scale, F32) * np.ones(n, F32), np.zeros(n, np.int32),
                       "int32", axis=0)

    def op(self, op_type, ins, **attrs):
        out = self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, ins, [out], name="target", **attrs))
        return out

    def out(self, y, scale=0.08, zp=None):
        zp = self.zp if zp is None else zp
        return self.dq(self.q(y, scale, zp), scale, zp, self.act)

    def model(self, inputs, y, opset=13):
        vis = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs]
        g = helper.make_graph(self.nodes, "qdq", vis,
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)],
                              self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        return m


def _conv(act="uint8", group=1, c=6, oc=9, k=3, stride=1, pads=(1, 1, 1, 1),
          per_channel=True, relu=False, bias=True):
    m = QDQ(act)
    x = m.act_in("x")
    w = m.weight((oc, c // group, k, k), 0 if per_channel else None)
    ins = [x, w] + ([m.bias(oc, F32(0.05) * F32(0.01))] if bias and not per_channel else [])
    y = m.op("Conv", ins, group=group, strides=[stride, stride], pads=list(pads),
             kernel_shape=[k, k])
    if relu:
        y = m.op("Relu", [y])
        m.nodes[-1].name = "relu"
    # with Relu: the output zero point at the range's low end, as the quantizer writes it
    zp = (0 if act == "uint8" else -128) if relu else None
    return m.model([("x", [1, c, 9, 11])], m.out(y, zp=zp)), "QLinearConv"


def _binary(op_type, act="uint8", shape_b=(1, 5, 1, 1)):
    m = QDQ(act)
    a, b = m.act_in("a", 0.04), m.act_in("b", 0.03)
    y = m.op(op_type, [a, b])
    return m.model([("a", [2, 5, 4, 3]), ("b", list(shape_b))], m.out(y, 0.06)), \
        f"QLinear{op_type}"


def _add_relu(op_type="Add"):
    """Add (or a two-input Sum) then Relu before a QuantizeLinear at the range's low end: the
    Relu is redundant after quantization and the island becomes a QLinearAdd."""
    m = QDQ("uint8")
    a, b = m.act_in("a", 0.04), m.act_in("b", 0.03)
    y = m.op(op_type, [a, b])
    y2 = m._name("relu")
    m.nodes.append(helper.make_node("Relu", [y], [y2], name="relu"))
    return m.model([("a", [1, 6, 5, 5]), ("b", [1, 6, 5, 5])], m.out(y2, 0.05, zp=0)), \
        "QLinearAdd"


def _unary(op_type, act="uint8", **attrs):
    m = QDQ(act)
    y = m.op(op_type, [m.act_in("x")], **attrs)
    scale = 1.0 / 256 if op_type == "Sigmoid" else 0.04
    zp = (0 if act == "uint8" else -128) if op_type == "Sigmoid" else None
    fused = {"Sigmoid": "QLinearSigmoid", "LeakyRelu": "QLinearLeakyRelu",
             "AveragePool": "QLinearAveragePool",
             "GlobalAveragePool": "QLinearGlobalAveragePool"}.get(op_type, op_type)
    return m.model([("x", [1, 7, 9, 9])], m.out(y, scale, zp)), fused


def _softmax(act="uint8", opset=13, shape=(2, 5, 7), **attrs):
    """DQ -> Softmax -> Q at the quantizer's output parameters (1/256; zero point 0 or
    -128): onnxruntime's optimiser forms its QLinearSoftmax, with the opset's axis."""
    m = QDQ(act)
    y = m.op("Softmax", [m.act_in("x", 0.07)], **attrs)
    zp = 0 if act == "uint8" else -128
    return m.model([("x", list(shape))], m.out(y, 1.0 / 256, zp), opset=opset), \
        "QLinearSoftmax"


def _mover(op_type, **attrs):
    m = QDQ("uint8")
    x = m.act_in("x", 0.05)
    ins = [x] + ([m.const(np.array([1, -1], np.int64))] if op_type == "Reshape" else [])
    y = m.op(op_type, ins, **attrs)
    return m.model([("x", [1, 4, 6, 6])], m.out(y, 0.05)), op_type


def _matmul(act="uint8", per_channel=True):
    m = QDQ(act)
    y = m.op("MatMul", [m.act_in("a"), m.weight((17, 6), 1 if per_channel else None)])
    return m.model([("a", [3, 17])], m.out(y, 0.1)), "QLinearMatMul"


def _gemm(act="uint8"):
    m = QDQ(act)
    a = m.act_in("a")
    w_scales = np.linspace(0.003, 0.02, 7).astype(F32)  # m.weight's per-channel scales
    y = m.op("Gemm", [a, m.weight((7, 13), 0), m.bias(7, F32(0.05) * w_scales)], transB=1)
    return m.model([("a", [2, 13])], m.out(y, 0.1)), "QGemm"


def _concat(act="uint8"):
    m = QDQ(act)
    a, b = m.act_in("a", 0.05), m.act_in("b", 0.02)
    y = m.op("Concat", [a, b], axis=1)
    return m.model([("a", [1, 3, 4, 4]), ("b", [1, 2, 4, 4])], m.out(y, 0.05)), "QLinearConcat"


CASES = {
    "conv_u8_per_channel": lambda: _conv(),
    "conv_u8_per_tensor_bias": lambda: _conv(per_channel=False),
    "conv_s8_per_channel": lambda: _conv("int8"),
    "conv_group": lambda: _conv(group=3, oc=9),
    "conv_depthwise": lambda: _conv(group=6, oc=6),
    "conv_stride2_asym_pads": lambda: _conv(stride=2, pads=(0, 1, 2, 1)),
    "conv_1x1": lambda: _conv(k=1, pads=(0, 0, 0, 0), c=13, oc=5),
    "conv_relu_folded": lambda: _conv(relu=True),
    "conv_s8_relu_folded": lambda: _conv("int8", relu=True),
    "matmul_u8_per_column": lambda: _matmul(),
    "matmul_s8": lambda: _matmul("int8", per_channel=False),
    "gemm_u8": lambda: _gemm(),
    "add_bcast": lambda: _binary("Add"),
    "add_s8_same": lambda: _binary("Add", "int8", (2, 5, 4, 3)),
    "mul_bcast": lambda: _binary("Mul"),
    "add_relu_redundant": lambda: _add_relu(),
    "sum_relu_redundant": lambda: _add_relu("Sum"),
    "sigmoid": lambda: _unary("Sigmoid"),
    "sigmoid_s8": lambda: _unary("Sigmoid", "int8"),
    "leaky_relu": lambda: _unary("LeakyRelu", alpha=0.2),
    "avgpool": lambda: _unary("AveragePool", kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1]),
    "global_avgpool": lambda: _unary("GlobalAveragePool"),
    "maxpool_int8_data": lambda: _mover("MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
    "transpose_int8_data": lambda: _mover("Transpose", perm=[0, 2, 3, 1]),
    "reshape_int8_data": lambda: _mover("Reshape"),
    "concat": lambda: _concat(),
    "softmax_u8": lambda: _softmax(),
    "softmax_s8_axis1": lambda: _softmax("int8", axis=1),
    "softmax_u8_opset12_coerced": lambda: _softmax(opset=12),
    "softmax_s8_opset11_axis0": lambda: _softmax("int8", opset=11, axis=0),
    "softmax_u8_opset19_axis_neg2": lambda: _softmax(opset=19, shape=(3, 9, 4), axis=-2),
}


def _ort(path, feeds):
    so = ort.SessionOptions()
    so.add_session_config_entry("session.qdqisint8allowed", "1")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_island_is_bit_exact(case, tmp_path):
    model, fused = CASES[case]()
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    rng = np.random.default_rng(1)
    feeds = {vi.name: (rng.standard_normal([d.dim_value for d in vi.type.tensor_type.shape.dim])
                       * 3).astype(F32) for vi in model.graph.input}
    shapes = {k: v.shape for k, v in feeds.items()}
    plan = build_plan(load_onnx(path, shapes), "m")
    target = [op for op in plan.graph.ops if op.name == "target"]
    assert [op.type for op in target] == [fused], [op.type for op in plan.graph.ops]
    # the int8 data path: the target reads and writes integer tensors
    t = target[0]
    data = t.inputs[2] if t.type == "QLinearConcat" else t.inputs[0]
    assert plan.graph.tensors[data].dtype in ("int8", "uint8")
    assert plan.graph.tensors[t.outputs[0]].dtype in ("int8", "uint8")
    assert not any(op.type == "Relu" for op in plan.graph.ops)
    ours = list(compile_and_run(path, feeds).values())[0]
    ref = _ort(path, feeds)
    np.testing.assert_array_equal(ours, ref)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "megcc_builder.cli", *args],
                          capture_output=True, text=True)


@pytest.mark.parametrize("what,scale,zp,message", [
    ("zero scale", 0.0, 128, "must be finite and > 0"),
    ("negative scale", -0.5, 128, "must be finite and > 0"),
])
def test_malformed_quant_params_one_line(what, scale, zp, message, tmp_path):
    m = QDQ("uint8")
    x = m.q("x", 0.05)
    m.nodes[-1].name = "quant_x"
    y = m.dq(x, F32(scale), zp, "uint8")
    m.nodes[-1].name = "bad_dq"
    path = str(tmp_path / "bad.onnx")
    onnx.save(m.model([("x", [1, 4])], y), path)
    r = _cli("compile", path, "-o", str(tmp_path / "out"))
    assert r.returncode == 1, r
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "bad_dq" in err and message in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_zero_point_dtype_mismatch_one_line(tmp_path):
    m = QDQ("uint8")
    x = m.q("x", 0.05)
    out = "y"
    m.nodes.append(helper.make_node("DequantizeLinear", [x, m.const(0.05, F32),
                                                         m.const(3, "int8")], [out],
                                    name="mismatched_dq"))
    path = str(tmp_path / "bad.onnx")
    onnx.save(m.model([("x", [1, 4])], out), path)
    r = _cli("compile", path, "-o", str(tmp_path / "out"))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "mismatched_dq" in r.stderr


def test_inspect_lists_ops_kept_in_float(tmp_path):
    """HardSwish has no int8 kernel: it runs in float between its DQ and Q, and inspect
    says so; the convolution before it is fused."""
    m = QDQ("uint8")
    y = m.op("Conv", [m.act_in("x"), m.weight((4, 3, 3, 3), 0)], kernel_shape=[3, 3],
             pads=[1, 1, 1, 1])
    m.nodes[-1].name = "conv"
    y = m.out(y)
    h = m.op("HardSwish", [y])
    path = str(tmp_path / "m.onnx")
    onnx.save(m.model([("x", [1, 3, 5, 5])], m.out(h), opset=14), path)
    r = _cli("inspect", path)
    assert r.returncode == 0, r.stderr
    section = r.stdout.split("operators kept in float")[1].split("== instructions")[0]
    assert "target (HardSwish): no int8 kernel for HardSwish" in section, section
    assert "conv" not in section
    assert "QLinearConv" in r.stdout
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 5, 5)).astype(F32)
    ours = list(compile_and_run(path, {"x": x}).values())[0]
    np.testing.assert_array_equal(ours, _ort(path, {"x": x}))


def test_bias_with_another_scale_is_requantized(tmp_path):
    """A DequantizeLinear'd int32 bias whose scale is not x_scale * w_scale (a hand-made QDQ
    model; onnxruntime's quantizer never writes one) is re-quantized to that scale, so the
    fused convolution keeps the model's real bias: within one step of onnxruntime's literal
    (float) evaluation."""
    m = QDQ("uint8")
    x = m.act_in("x")
    w = m.weight((5, 3, 3, 3))
    bias = m.bias(5, F32(0.002))  # x_scale * w_scale would be 0.05 * 0.01 = 0.0005
    y = m.op("Conv", [x, w, bias], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    path = str(tmp_path / "m.onnx")
    onnx.save(m.model([("x", [1, 3, 6, 6])], m.out(y, 0.08)), path)
    plan = build_plan(load_onnx(path, {"x": (1, 3, 6, 6)}), "m")
    assert [op.type for op in plan.graph.ops if op.name == "target"] == ["QLinearConv"]
    x = np.random.default_rng(2).standard_normal((1, 3, 6, 6)).astype(F32) * 3
    ours = list(compile_and_run(path, {"x": x}).values())[0]
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    literal = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    assert np.abs(ours - literal).max() <= 0.08 * 1.001, np.abs(ours - literal).max()


def test_quantized_compile_is_byte_identical(tmp_path):
    """Same QDQ model, two directories and hash seeds -> byte-identical generated files
    (packed int16 weights, look-up tables and kernel variants included)."""
    import os

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    model, _ = _conv(relu=True)
    outs = []
    for k, seed in enumerate(("0", "4242")):
        work = tmp_path / f"d{k}"
        work.mkdir()
        onnx.save(model, str(work / "m.onnx"))
        r = subprocess.run([sys.executable, "-m", "megcc_builder.cli", "compile", "m.onnx",
                            "-o", "out", "--isa", "x86_64-v3"], cwd=str(work),
                           capture_output=True, text=True,
                           env=dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=ROOT))
        assert r.returncode == 0, r.stderr
        out = work / "out"
        outs.append({f: (out / f).read_bytes() for f in sorted(os.listdir(out))})
    assert outs[0] == outs[1]
    assert any(b"qlinear_conv_gemm_avx2" in v for v in outs[0].values())


ARM_LEVELS = {"arm64-dot": ("arm64-dot", ["-march=armv8.2-a+dotprod"]),
              "arm64-i8mm": ("arm64-i8mm", ["-march=armv8.2-a+fp16+dotprod+i8mm"]),
              "armv7-neon": ("armv7", ["-march=armv7-a", "-mfpu=neon-vfpv4",
                                       "-mfloat-abi=hard"])}


@pytest.mark.parametrize("level", ["generic", "x86_64-v3", "x86_64-vnni", *ARM_LEVELS])
def test_int8_kernels_compile_without_warnings(level, tmp_path):
    """Every int8 kernel variant the kernel cases produce (tests/kernels/quant) is clean C99
    under gcc and clang with -Wall -Wextra -Werror -pedantic (Arm levels: the cross gcc of
    their toolchain)."""
    import os

    from kernels.harness import build_model, shapes_of
    from kernels.quant.cases import BOOK
    from megcc_builder.compiler import ModelSpec, compile_bundle
    from megcc_builder.host import RUNTIME_DIR

    groups = {}
    for c in BOOK.cases:
        groups.setdefault(c.group, []).append(c)
    specs = []
    for k, cases in enumerate(groups.values()):
        path = str(tmp_path / f"cases{k}.onnx")
        onnx.save(build_model(cases), path)
        specs.append(ModelSpec(f"cases{k}", path, [shapes_of(cases)], True, level))
    out = str(tmp_path / "out")
    compile_bundle(specs, out, save_c_array=False, isa=level)
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic",
             "-Wno-overlength-strings"] + {"generic": [], "x86_64-v3": ["-march=x86-64-v3"],
                                          "x86_64-vnni": ["-march=x86-64-v4", "-mavx512vnni"],
                                          **{k: v[1] for k, v in ARM_LEVELS.items()}}[level]
    compilers = ("gcc", "clang")
    if level in ARM_LEVELS:
        from build_support import require_target

        compilers = (require_target(ARM_LEVELS[level][0]).cc,)
    for cc in compilers:
        r = subprocess.run([cc, *flags, "-I", os.path.join(RUNTIME_DIR, "include"), "-c",
                            os.path.join(out, "kernels.c"), "-o", str(tmp_path / "k.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0, (cc, r.stderr[-4000:])


def test_conv_with_auto_pad_same_stays_float(tmp_path):
    """auto_pad SAME is resolved only after shape inference, which the QDQ pass precedes:
    the island stays float (and says so), within one output step of onnxruntime."""
    m = QDQ("uint8")
    y = m.op("Conv", [m.act_in("x"), m.weight((4, 3, 3, 3), 0)], kernel_shape=[3, 3],
             auto_pad="SAME_UPPER", strides=[2, 2])
    path = str(tmp_path / "m.onnx")
    onnx.save(m.model([("x", [1, 3, 7, 7])], m.out(y, 0.08)), path)
    r = _cli("inspect", path)
    assert r.returncode == 0, r.stderr
    assert "target (Conv): auto_pad SAME_UPPER" in r.stdout
    x = np.random.default_rng(4).standard_normal((1, 3, 7, 7)).astype(F32)
    ours = list(compile_and_run(path, {"x": x}).values())[0]
    assert np.abs(ours - _ort(path, {"x": x})).max() <= 0.08 * 1.001


def _qoperator_model(tmp_path, node, inits, x_shape, x_type=TensorProto.UINT8, ms=False):
    g = helper.make_graph([node], "q", [helper.make_tensor_value_info("x", x_type, x_shape)],
                          [helper.make_tensor_value_info("y", x_type, None)], inits)
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid("com.microsoft", 1)]
                                              if ms else [])
    m = helper.make_model(g, opset_imports=opsets)
    m.ir_version = 8
    path = str(tmp_path / "q.onnx")
    onnx.save(m, path)
    return path


def test_qoperator_zero_scale_one_line(tmp_path):
    c = lambda v, t, n: numpy_helper.from_array(np.asarray(v, t), n)  # noqa: E731
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"],
                            name="conv_zero_scale")
    inits = [c(0.05, F32, "xs"), c(128, np.uint8, "xz"), c(np.ones((2, 3, 1, 1)), np.int8, "w"),
             c(0.01, F32, "ws"), c(0, np.int8, "wz"), c(0.0, F32, "ys"), c(128, np.uint8, "yz")]
    path = _qoperator_model(tmp_path, node, inits, [1, 3, 4, 4])
    r = _cli("compile", path, "-o", str(tmp_path / "out"))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "conv_zero_scale" in r.stderr and "y_scale" in r.stderr and "> 0" in r.stderr


def test_unsupported_quantized_operator_one_line(tmp_path):
    node = helper.make_node("QLinearReduceMean", ["x", "s", "z", "s", "z"], ["y"],
                            name="qreduce", domain="com.microsoft", axes=[1], keepdims=1)
    inits = [numpy_helper.from_array(np.asarray(0.05, F32), "s"),
             numpy_helper.from_array(np.asarray(0, np.uint8), "z")]
    path = _qoperator_model(tmp_path, node, inits, [1, 10], ms=True)
    r = _cli("compile", path, "-o", str(tmp_path / "out"))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "qreduce" in r.stderr and "com.microsoft.QLinearReduceMean" in r.stderr


@pytest.mark.parametrize("attrs,shape,y_scale,message", [
    ({"axis": -1}, [2, 10], 1.0 / 256, "'opset' attribute"),
    ({"axis": -1, "opset": 13}, [2, "n"], 1.0 / 256, "known at compile time"),
    ({"axis": 0, "opset": 12}, ["n", 10], 1.0 / 256, "known at compile time"),
    ({"axis": -1, "opset": 13}, [2, 10], 1e-8, "below 2^-21"),
])
def test_qlinear_softmax_refusals_one_line(attrs, shape, y_scale, message, tmp_path):
    """QLinearSoftmax's table depends on the row length (a symbolic length along the rows
    is refused; opset < 13 rows run from the axis to the end); onnxruntime requires the
    opset attribute; floor(1 / y_scale) past 2^21 is outside the exact rounding."""
    node = helper.make_node("QLinearSoftmax", ["x", "s", "z", "ys", "z"], ["y"],
                            name="qsoftmax", domain="com.microsoft", **attrs)
    inits = [numpy_helper.from_array(np.asarray(0.05, F32), "s"),
             numpy_helper.from_array(np.asarray(y_scale, F32), "ys"),
             numpy_helper.from_array(np.asarray(0, np.uint8), "z")]
    path = _qoperator_model(tmp_path, node, inits, shape, ms=True)
    r = _cli("compile", path, "-o", str(tmp_path / "out"))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "qsoftmax" in r.stderr and message in r.stderr, r.stderr
