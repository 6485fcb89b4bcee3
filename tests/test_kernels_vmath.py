"""The vector transcendental kernels (simd_math.py): element-wise Exp, Sigmoid, Tanh and the
expressions containing them (simd_elementwise.py), Softmax / LogSoftmax over the last axis
(reduce.py), on AVX2 (host) and NEON (AArch64, ARMv7 under qemu-user), against float64
numpy references.

Every case is one branch of a single model per target (one build, one emulator run), and
each branch checks which kernel computed its output, so no case can silently fall back to
portable C (and the cases meant to stay portable check that they do).

Beyond the project's 1e-4 rule, a dense sweep of [-100, 100] checks exp/sigmoid/tanh in
ulps of the float32-rounded float64 result (normal-range outputs); `pytest -s` prints the
maxima.
"""
import os
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from build_support import in_ci, require_target
from megcc_builder.compiler import ModelSpec, build_plan, compile_bundle
from megcc_builder.options import CompileOptions
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import RUNTIME_DIR, run_onnx
from megcc_builder.isa import host_level, spec
from reference import assert_close

RNG = np.random.default_rng(2024)
HOST_AVX2 = spec("x86_64-v3").features <= spec(host_level()).features
TARGETS = [
    pytest.param(None, "x86_64-v3", "_avx2", id="host-avx2",
                 marks=[] if HOST_AVX2 or in_ci() else [pytest.mark.skip("host has no AVX2+FMA")]),
    pytest.param("arm64", "arm64-neon", "_neon64", id="arm64"),
    pytest.param("armv7", "armv7-neon", "_neon", id="armv7"),
]

# the inputs exp/sigmoid/tanh must get right: overflow and underflow edges, infinities,
# NaN, signed zeros, tiny and denormal values, the tanh polynomial/exp switch (0.625)
SPECIAL = np.array([88.7, -88.7, 88.72, 88.73, -87.33, -103.0, -103.97, -104.5, 100.0, -100.0,
                    np.inf, -np.inf, np.nan, -0.0, 0.0, 1e-30, -1e-30, 1e-40, -1e-40, 0.625,
                    -0.625, 0.62499, 20.0, 20.5, -20.0, 9.0, -9.0, 44.0, 45.0, 1.0, -1.0],
                   np.float32)
LENGTHS = (1, 3, 7, 9, 17, 1000)


def f32(*shape, scale=3.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def with_specials(n):
    """n values: the special ones (cycled) at random positions among normal samples."""
    x = f32(n, scale=8.0)
    pos = RNG.permutation(n)[:min(n, SPECIAL.size)]
    x[pos] = SPECIAL[:pos.size]
    return x


def d(x):
    return np.asarray(x, np.float64)


def as_float32_result(ref):
    """A float64 reference whose magnitude rounds past float32's range is +-inf in float32
    (expf(88.73) = inf): those entries become infinities, the rest stays float64."""
    if ref is None:
        return None
    ref = d(ref)
    with np.errstate(invalid="ignore"):
        big = np.abs(ref) >= 2.0 ** 128 - 2.0 ** 103  # rounds to inf
    return np.where(big, np.copysign(np.inf, ref), ref)


def np_sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-d(x)))


def np_softplus(x):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(d(x) > 20, d(x), np.log1p(np.exp(d(x))))


def np_elu(x, alpha):
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(d(x) >= 0, d(x), alpha * np.expm1(np.minimum(d(x), 0)))


def np_gelu_tanh(x):
    x = d(x)
    with np.errstate(invalid="ignore", over="ignore"):
        return 0.5 * x * (1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))


def np_softmax(x, log=False):
    x = d(x)
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.max(x, axis=-1, keepdims=True)
        e = np.exp(x - m)
        s = e.sum(axis=-1, keepdims=True)
        return x - m - np.log(s) if log else e / s


class Batch:
    """Cases as independent branches of one model: inputs, constants, outputs, references,
    and the expected kernel per output ('vector', 'portable')."""

    def __init__(self):
        self.nodes, self.inputs, self.consts = [], {}, {}
        self.outputs, self.refs, self.expect, self.what = [], [], [], []

    def add(self, nodes, inputs, ref, expect, what, consts=None):
        out = f"y{len(self.outputs)}"
        for node in nodes:
            node.output[:] = [out if o == "y" else o for o in node.output]
        self.nodes += nodes
        self.inputs.update(inputs)
        self.consts.update(consts or {})
        self.outputs.append(out)
        self.refs.append(as_float32_result(ref))
        self.expect.append(expect)
        self.what.append(what)

    def model(self):
        vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape)
              for n, a in self.inputs.items()]
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in self.outputs]
        graph = helper.make_graph(self.nodes, "t", vi, outs,
                                  [numpy_helper.from_array(a, n) for n, a in self.consts.items()])
        # opset 20: Mish (18) and Gelu (20) are ops; Softmax has the opset-13 axis semantics
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])

    def check_kernels(self, isa, suffix):
        plan = build_plan(load_onnx(self.model()), "t", CompileOptions(isa=isa))
        kernels = {o: i.kernel.name for i in plan.instrs for o in i.outputs}
        for out, expect, what in zip(self.outputs, self.expect, self.what):
            name = kernels[out]
            assert name.endswith(suffix) == (expect == "vector"), (what, name, expect)

    def run(self, target, isa):
        return run_onnx(self.model(), self.inputs, isa=isa, target=target)


def unary_cases(batch, suffix):
    k = 0
    for op, ref in (("Exp", lambda x: np.exp(d(x))), ("Sigmoid", np_sigmoid),
                    ("Tanh", lambda x: np.tanh(d(x))), ("Softplus", np_softplus)):
        for n in LENGTHS + (37,):
            x = with_specials(n)
            # one element is a scalar to the row kernel: portable
            batch.add([helper.make_node(op, [f"u{k}"], ["y"])], {f"u{k}": x}, None,
                      "vector" if n > 1 else "portable", f"{op} n={n}")
            with np.errstate(over="ignore"):
                batch.refs[-1] = as_float32_result(ref(x))
            k += 1
    x = with_specials(41)
    batch.add([helper.make_node("Elu", ["elu"], ["y"], alpha=0.7)], {"elu": x},
              np_elu(x, 0.7), "vector", "Elu")
    x = with_specials(23)
    a, g = 1.67326319217681884765625, 1.05070102214813232421875
    with np.errstate(invalid="ignore"):
        selu = g * np.where(d(x) > 0, d(x), a * np.expm1(np.minimum(d(x), 0)))
    batch.add([helper.make_node("Selu", ["selu"], ["y"])], {"selu": x}, selu, "vector", "Selu")
    x = with_specials(45)
    with np.errstate(invalid="ignore"):
        mish = d(x) * np.tanh(np_softplus(x))
    batch.add([helper.make_node("Mish", ["mish"], ["y"])], {"mish": x}, mish, "vector", "Mish")
    x = with_specials(33)
    batch.add([helper.make_node("Gelu", ["gelu"], ["y"], approximate="tanh")], {"gelu": x},
              np_gelu_tanh(x), "vector", "Gelu (tanh)")
    x = f32(19)
    from math import erf
    batch.add([helper.make_node("Gelu", ["gerf"], ["y"])], {"gerf": x},
              [0.5 * v * (1 + erf(v / np.sqrt(2))) for v in d(x)], "portable",
              "Gelu (erf) stays portable")


def chain_cases(batch, suffix):
    # SiLU as ONNX exports it: Sigmoid then Mul (fused into one expression)
    x = with_specials(1001)
    with np.errstate(invalid="ignore"):
        silu = d(x) * np_sigmoid(x)
    batch.add([helper.make_node("Sigmoid", ["silu"], ["sg"]),
               helper.make_node("Mul", ["silu", "sg"], ["y"])], {"silu": x}, silu, "vector",
              "SiLU chain")
    # per-channel bias, then tanh (an input repeated per row of H*W)
    x, b = f32(2, 3, 5, 7), f32(1, 3, 1, 1)
    batch.add([helper.make_node("Add", ["cx", "cb"], ["cs"]),
               helper.make_node("Tanh", ["cs"], ["y"])], {"cx": x, "cb": b},
              np.tanh(d(x) + b), "vector", "per-channel add + tanh")
    # a row vector broadcast, exp, scalar constant
    x, r = f32(4, 3, 9), f32(9)
    batch.add([helper.make_node("Mul", ["rx", "rr"], ["rm"]),
               helper.make_node("Exp", ["rm"], ["re"]),
               helper.make_node("Mul", ["re", "k05"], ["y"])], {"rx": x, "rr": r},
              np.exp(d(x) * r) * 0.5, "vector", "row broadcast * x, exp, * scalar",
              consts={"k05": np.array(0.5, np.float32)})
    # quick GELU: x * sigmoid(1.702 x), then a clip
    x = with_specials(29)
    with np.errstate(invalid="ignore"):
        q = np.clip(d(x) * np_sigmoid(np.float32(1.702) * x), -0.25, 3.0)
    batch.add([helper.make_node("Mul", ["qx", "k17"], ["qm"]),
               helper.make_node("Sigmoid", ["qm"], ["qs"]),
               helper.make_node("Mul", ["qx", "qs"], ["qc"]),
               helper.make_node("Clip", ["qc", "qlo", "qhi"], ["y"])], {"qx": x}, q, "vector",
              "quick GELU + clip", consts={"k17": np.array(1.702, np.float32),
                                           "qlo": np.array(-0.25, np.float32),
                                           "qhi": np.array(3.0, np.float32)})
    # Sigmoid as 1 / (1 + exp(-x)) spelt out: Div is vectorised except on ARMv7
    x = with_specials(13)
    batch.add([helper.make_node("Neg", ["dx"], ["dn"]), helper.make_node("Exp", ["dn"], ["de"]),
               helper.make_node("Add", ["de", "one"], ["da"]),
               helper.make_node("Div", ["one", "da"], ["y"])], {"dx": x}, np_sigmoid(x),
              "portable" if suffix == "_neon" else "vector", "1 / (1 + exp(-x))",
              consts={"one": np.array(1.0, np.float32)})
    # NaN-propagating max/min (megcc_maxf/megcc_minf semantics) and the other cheap ops
    # around a transcendental one, NaN in either operand
    a, b = with_specials(27), f32(27)
    b[[2, 5, 11]] = np.nan
    with np.errstate(invalid="ignore", over="ignore"):
        sa = np_sigmoid(a)
        mm = np.fmin(np.maximum(sa, d(b)), np.tanh(d(a)) + 0.5)
        mm = np.where(np.isnan(sa) | np.isnan(b) | np.isnan(a), np.nan, mm)
        t = np.tanh(d(a))
        lk = np.maximum(np.where(-np.abs(t) >= 0, -np.abs(t), -np.abs(t) * 0.2), 0) \
            - np.exp(d(b) - 3)
    batch.add([helper.make_node("Sigmoid", ["ma"], ["ms"]),
               helper.make_node("Max", ["ms", "mb"], ["mx"]),
               helper.make_node("Tanh", ["ma"], ["mt"]),
               helper.make_node("Add", ["mt", "k5"], ["mu"]),
               helper.make_node("Min", ["mx", "mu"], ["y"])], {"ma": a, "mb": b}, mm, "vector",
              "min(max(sigmoid(a), b), tanh(a) + 0.5) with NaN",
              consts={"k5": np.array(0.5, np.float32)})
    batch.add([helper.make_node("Tanh", ["ma"], ["lt"]), helper.make_node("Abs", ["lt"], ["la"]),
               helper.make_node("Neg", ["la"], ["ln"]),
               helper.make_node("LeakyRelu", ["ln"], ["ll"], alpha=0.2),
               helper.make_node("Relu", ["ll"], ["lr"]),
               helper.make_node("Sub", ["mb", "k3"], ["lb"]),
               helper.make_node("Exp", ["lb"], ["le"]),
               helper.make_node("Sub", ["lr", "le"], ["y"])], {}, lk, "vector",
              "relu(leaky(-|tanh(a)|)) - exp(b - 3)", consts={"k3": np.array(3.0, np.float32)})
    # no transcendental: x86 and AArch64 compilers vectorise the portable loop (ARMv7 not)
    x, y = f32(3, 11), f32(3, 11)
    batch.add([helper.make_node("Add", ["ax", "ay"], ["as"]),
               helper.make_node("Relu", ["as"], ["y"])], {"ax": x, "ay": y},
              np.maximum(d(x) + y, 0), "vector" if suffix == "_neon" else "portable",
              "add + relu (vector only on ARMv7)")
    # a 4-D broadcast the row kernel does not take
    x, w = f32(2, 3, 4, 5), f32(2, 1, 4, 1)
    batch.add([helper.make_node("Add", ["bx", "bw"], ["bs"]),
               helper.make_node("Exp", ["bs"], ["y"])], {"bx": x, "bw": w},
              np.exp(d(x) + w), "portable", "4-D broadcast + exp stays portable")


def softmax_cases(batch, suffix):
    for k, shape in enumerate([(1, 1000), (3, 17), (2, 3, 9), (5, 8), (2, 4), (1, 1)]):
        for op in ("Softmax", "LogSoftmax"):
            x = f32(*shape)
            if shape == (3, 17):  # extreme rows: huge, -inf entries, a NaN row, an inf row
                x[0, :5] = [88.0, 1000.0, -1000.0, -np.inf, 999.0]
                x[1, 7] = np.nan
                x[2, 16] = np.inf
            name = f"{op[:3].lower()}{k}"
            vector = shape[-1] >= (8 if suffix == "_avx2" else 4)
            batch.add([helper.make_node(op, [name], ["y"], axis=-1)], {name: x},
                      np_softmax(x, op == "LogSoftmax"), "vector" if vector else "portable",
                      f"{op} {shape}")
    # over an inner axis: vectors across `inner` (tails past the last vector, extreme values)
    vw = 8 if suffix == "_avx2" else 4
    for k, (shape, axis) in enumerate([((2, 10, 3), 1), ((2, 6, 19), 1), ((7, 2, 11), 0),
                                       ((3, 5, 2, 9), 1)]):
        for op in ("Softmax", "LogSoftmax"):
            x = f32(*shape)
            if shape == (2, 6, 19):
                x[0, :, 0] = [88.0, 1000.0, -1000.0, -np.inf, 999.0, 0.0]
                x[1, 2, 5] = np.nan
                x[0, 3, 18] = np.inf
            name = f"{op[:3].lower()}i{k}"
            inner = int(np.prod(shape[axis + 1:]))
            ref = np.moveaxis(np_softmax(np.moveaxis(x, axis, -1), op == "LogSoftmax"), -1, axis)
            batch.add([helper.make_node(op, [name], ["y"], axis=axis)], {name: x}, ref,
                      "vector" if inner >= vw else "portable", f"{op} {shape} axis={axis}")


@pytest.mark.parametrize("target,isa,suffix", TARGETS)
def test_vmath_kernels(target, isa, suffix):
    if target is not None:
        require_target(target)
    batch = Batch()
    unary_cases(batch, suffix)
    chain_cases(batch, suffix)
    softmax_cases(batch, suffix)
    batch.check_kernels(isa, suffix)
    for y, ref, what in zip(batch.run(target, isa), batch.refs, batch.what):
        assert_close(y, ref, what=f"{what} on {target or 'host'}")


# ulp bounds of the dense sweep (normal-range outputs): measured 1.2 (exp), 3.1 (sigmoid; 4.1
# with ARMv7's Newton reciprocal), 1.2 (tanh; 1.7 on ARMv7)
ULP_BOUND = {"Exp": 2.0, "Sigmoid": 5.0, "Tanh": 2.5, "Softplus": 4.5}


def f32_ulp(v: np.ndarray) -> np.ndarray:
    """The float32 ulp at each normal float32 value, computed in float64: np.spacing on
    float32 gives 0 at FLT_MIN once MegEngine is imported into the process (it turns on
    flush-to-zero, and the ulp there, 2^-149, is a float32 denormal)."""
    _, exponent = np.frexp(np.abs(v).astype(np.float64))
    return np.ldexp(1.0, exponent - 24)


def test_f32_ulp_matches_spacing():
    v = np.array([1.0, 3.0, -2.5e-30, np.finfo(np.float32).tiny, 1e30], np.float32)
    assert np.array_equal(f32_ulp(v)[:3], np.spacing(np.abs(v[:3])).astype(np.float64))
    assert f32_ulp(v)[3] == 2.0 ** -149 and f32_ulp(v)[4] == np.spacing(np.float32(1e30))


@pytest.mark.parametrize("target,isa,suffix", TARGETS)
def test_vmath_dense_sweep(target, isa, suffix):
    """exp/sigmoid/tanh/softplus over 2M+1 points of [-100, 100]: the 1e-4 rule, exact
    infinities and zeros where the float32 result is one, and the ulp bounds above."""
    if target is not None:
        require_target(target)
    x = np.linspace(-100, 100, 2_000_001).astype(np.float32)
    batch = Batch()
    refs = {"Exp": np.exp(d(x)), "Sigmoid": np_sigmoid(x), "Tanh": np.tanh(d(x)),
            "Softplus": np_softplus(x)}
    for op, ref in refs.items():
        batch.add([helper.make_node(op, ["sw"], ["y"])], {"sw": x}, ref, "vector", op)
    batch.check_kernels(isa, suffix)
    for y, ref, op in zip(batch.run(target, isa), batch.refs, batch.what):
        assert_close(y, ref, what=f"{op} sweep on {target or 'host'}")
        with np.errstate(over="ignore"):
            r32 = ref.astype(np.float32)
        exact = ~np.isfinite(r32) | (r32 == 0)
        assert np.array_equal(y[exact], r32[exact]), op
        normal = np.isfinite(r32) & (np.abs(r32) >= np.finfo(np.float32).tiny)
        ulp = np.abs(d(y[normal]) - ref[normal]) / f32_ulp(r32[normal])
        rel = np.abs(d(y[normal]) - ref[normal]) / np.abs(ref[normal])
        print(f"{target or 'host'} {op}: max {ulp.max():.2f} ulp, max rel {rel.max():.3g}")
        assert ulp.max() <= ULP_BOUND[op], (op, ulp.max(), x[normal][ulp.argmax()])


@pytest.mark.parametrize("target,isa,suffix", TARGETS)
def test_vmath_compile_warning_free(target, isa, suffix, tmp_path):
    """The kernels of the test model with -std=c99 -Wall -Wextra -Werror -pedantic: gcc and
    clang for AVX2, the target's cross compiler for NEON."""
    batch = Batch()
    unary_cases(batch, suffix)
    chain_cases(batch, suffix)
    softmax_cases(batch, suffix)
    path = str(tmp_path / "m.onnx")
    onnx.save(batch.model(), path)
    bundle = compile_bundle([ModelSpec("m", path)], str(tmp_path / "out"), isa=isa)
    names = [k.name for k in bundle.kernels]
    for form in ("last", "strided"):
        assert any(n.startswith(f"softmax_f32_{form}") and n.endswith(suffix) for n in names), \
            names
    assert any(n.startswith("ew_") and n.endswith(suffix) for n in names), names
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-I",
             os.path.join(RUNTIME_DIR, "include"), "-c", bundle.files["kernels_c"], "-o",
             str(tmp_path / "k.o")]
    if target is None:
        from build_support import require_tools
        require_tools("gcc", "clang")
        cmds = [[cc, "-mavx2", "-mfma", *flags] for cc in ("gcc", "clang")]
    else:
        t = require_target(target)
        cmds = [[t.cc, *t.compile_flags(), *flags]]
    for cmd in cmds:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, (cmd[0], proc.stderr)
