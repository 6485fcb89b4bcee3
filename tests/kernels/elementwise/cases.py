"""Element-wise cases: binary ops with broadcasting, unary ops, int64 arithmetic; run
against every element-wise implementation that applies (portable C, the vector kernels).

Moved here from test_kernels_core (test_binary_broadcast, test_unary,
test_int64_arithmetic_broadcast), test_kernels_nn.py (PRelu) and test_kernels_neon.py
(test_elementwise_armv7: flat ops and fused chains, lengths leaving 1..3-element tails,
scalar operands, NaN; `expect` records which ones the ARMv7 NEON kernels take).
"""
from __future__ import annotations

import numpy as np

from kernels.harness import Book, Const, uniform_source

BOOK = Book("elementwise")
F32 = np.float32
_r = np.random.default_rng(1234)


def _f32(*shape):
    return _r.standard_normal(shape).astype(F32)


BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
          "Max": np.maximum, "Min": np.minimum}
SHAPES = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), ()), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 1)),
          ((1, 3, 1, 5), (2, 1, 7, 1)), ((5,), (3, 1)), ((1, 1), (1, 1)), ((2, 1, 3), (1, 4, 1))]
for _op in sorted(BINARY):
    for _as, _bs in SHAPES:
        _a, _b = _f32(*_as), _f32(*_bs)
        if _op == "Div":
            _b = np.where(np.abs(_b) < 0.1, 0.5, _b).astype(F32)
        BOOK.add(f"core_{_op}_{_as}_{_bs}", _op, [_a, _b], opset=13,
                 ref=lambda a, b, fn=BINARY[_op]: [fn(a.astype(np.float64), b)])

UNARY = {"Relu": lambda x: np.maximum(x, 0), "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
         "Tanh": np.tanh, "Exp": np.exp, "Abs": np.abs, "Neg": np.negative,
         "Floor": np.floor, "Ceil": np.ceil, "Sqrt": np.sqrt, "Log": np.log}
for _op in sorted(UNARY):
    _x = _f32(3, 7, 5) * 2
    if _op == "Sqrt":
        _x = np.abs(_x)
    if _op == "Log":
        _x = np.abs(_x) + F32(0.1)
    BOOK.add(f"core_{_op}", _op, [_x], opset=13,
             ref=lambda x, fn=UNARY[_op]: [fn(x.astype(np.float64))])

# int64 arithmetic with broadcasting: exact
_a = _r.integers(-50, 50, (3, 4)).astype(np.int64)
_b = _r.integers(1, 9, (4,)).astype(np.int64)
for _op, _fn in (("Add", np.add), ("Mul", np.multiply), ("Sub", np.subtract)):
    BOOK.add(f"core_int64_{_op}", _op, [_a, _b], opset=13, ref=lambda a, b, fn=_fn: [fn(a, b)])


# PRelu (test_kernels_nn.py): per-channel, scalar, last-axis, full and runtime slopes
_rand_nn = uniform_source(5)


rand, case = _rand_nn, BOOK.add
for name, x, slope in [("per_channel", rand(2, 3, 4, 5), rand(3, 1, 1)),
                       ("scalar", rand(2, 3, 4), rand(1)),
                       ("last_axis", rand(3, 7), rand(7)),
                       ("full", rand(2, 5), rand(2, 5))]:
    case(f"prelu_{name}", "PRelu", [x, Const(slope)], opset=16)
case("prelu_runtime_slope", "PRelu", [rand(2, 3, 2), rand(3, 1)], opset=16)


# --- test_kernels_neon.py::test_elementwise_armv7 ------------------------------------------
# Only ARMv7 has NEON kernels for these ops (AArch64 compilers vectorise portable C); the
# cases run against every implementation that applies, everywhere
_ra = np.random.default_rng(4322)
NEON7 = {"armv7": ("ew_", "_neon")}
PORTABLE7 = {"armv7": ("", "!_neon")}  # left to portable C on ARMv7


def _f(*shape):
    return _ra.standard_normal(shape).astype(F32)


def _nan_at(x, *flat):
    x = x.copy()
    x.flat[list(flat)] = np.nan
    return x


_relu = (("Relu", [], {}),)
_a, _b = _nan_at(_f(3, 5, 7), 4), _nan_at(_f(3, 5, 7), 9)
BOOK.add("armv7_add", "Add", [_a, _b], opset=13, expect=NEON7)
BOOK.add("armv7_add_relu", "Add", [_f(2, 3, 5, 5), _f(2, 3, 5, 5)], opset=13, post=_relu,
         ref=lambda c, d: [np.maximum(c.astype(np.float64) + d, 0)], expect=NEON7)
BOOK.add("armv7_mul_const_scalar", "Mul", [_f(4, 6), Const(np.array([1.5], F32))], opset=13,
         expect=NEON7)
BOOK.add("armv7_scalar_minus_vector", "Sub", [_f(1), _f(2, 9)], opset=13, expect=NEON7)
_h, _i = _nan_at(_f(31), 2), _nan_at(_f(31), 7)
BOOK.add("armv7_max_nan", "Max", [_h, _i], opset=13, ref=lambda h, i: [np.maximum(h, i)],
         expect=NEON7)
BOOK.add("armv7_min_nan", "Min", [_h + 1, _i], opset=13, ref=lambda h, i: [np.minimum(h, i)],
         expect=NEON7)
BOOK.add("armv7_clip_nan", "Clip", [_nan_at(_f(5, 11), 3), Const(np.array(-0.5, F32)),
                                    Const(np.array(0.75, F32))], opset=13,
         ref=lambda j, lo, hi: [np.clip(j, lo, hi)], expect=NEON7)
BOOK.add("armv7_leaky_relu", "LeakyRelu", [_nan_at(_f(3, 13), 1)], {"alpha": 0.1}, opset=13,
         ref=lambda k: [np.where(k >= 0, k, k * F32(0.1))], expect=NEON7)
_m = _f(2, 2, 3)
BOOK.add("armv7_abs_neg_times_x", "Neg", [_m], opset=13,
         post=(("Abs", [], {}), ("Mul", [_m], {})), ref=lambda m: [np.abs(-m) * m], expect=NEON7)
BOOK.add("armv7_sin_portable", "Sin", [_f(17)], opset=13,
         ref=lambda x: [np.sin(x.astype(np.float64))], expect=PORTABLE7)
BOOK.add("armv7_per_channel_add_relu", "Add", [_f(2, 3, 4, 5), _f(1, 3, 1, 1)], opset=13,
         post=_relu, ref=lambda q, r: [np.maximum(q.astype(np.float64) + r, 0)], expect=NEON7)
BOOK.add("armv7_row_broadcast_mul", "Mul", [_f(3, 4, 7), _f(7)], opset=13,
         ref=lambda t, u: [t.astype(np.float64) * u], expect=NEON7)
BOOK.add("armv7_4d_broadcast_portable", "Add", [_f(2, 3, 4, 5), _f(2, 1, 4, 1)], opset=13,
         ref=lambda v, w: [v.astype(np.float64) + w], expect=PORTABLE7)


# --- float16 (enable_ioc16 on arm64-fp16): NumPy float16 arithmetic as the reference.
# Rows of 8 halves and their tails, scalar and per-row (per-channel) broadcasts, fused
# chains; exact except the float32-lane transcendentals (exp, sigmoid, tanh: within two
# float16 ulps of the float16 rounding of the exact value)
def _f16_cases():
    from kernels.f16_reference import ew_f16, hardswish_f16

    ops = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
           "Max": np.maximum, "Min": np.minimum}
    shapes = [((2, 3, 21), (2, 3, 21)), ((1, 5, 4, 6), (1, 5, 1, 1)), ((3, 37), ()),
              ((2, 4, 3, 3), (1, 4, 1, 1))]
    for op, fn in sorted(ops.items()):
        for k, (sa, sb) in enumerate(shapes):
            a, b = _f32(*sa), _f32(*sb)
            if op == "Div":
                b = np.where(np.abs(b) < 0.1, F32(0.5), b).astype(F32)
            BOOK.add(f"f16_{op}_{k}", op, [a, b], opset=13, ref=lambda a, b, fn=fn: ew_f16(fn, a, b),
                     ioc16=True, exact=True)
    BOOK.add("f16_Add_const_channel", "Add", [_f32(1, 6, 5, 5), Const(_f32(1, 6, 1, 1))],
             opset=13, ref=lambda a, b: ew_f16(np.add, a, b), ioc16=True, exact=True)
    x = (_f32(3, 29) * 4).astype(F32)
    x[0, 3] = np.nan
    unary = {"Relu": lambda v: np.maximum(v, 0), "Neg": np.negative, "Abs": np.abs}
    for op, fn in sorted(unary.items()):
        BOOK.add(f"f16_{op}", op, [x], opset=13, ref=lambda a, fn=fn: ew_f16(fn, a),
                 ioc16=True, exact=True)
    BOOK.add("f16_Clip_relu6", "Clip", [x, Const(np.array(0, F32)), Const(np.array(6, F32))],
             opset=13, ref=lambda a, lo, hi: ew_f16(lambda v: np.minimum(np.maximum(v, 0), 6), a),
             ioc16=True, exact=True)
    BOOK.add("f16_HardSwish", "HardSwish", [x], opset=14, ref=hardswish_f16, ioc16=True, exact=True)
    for op, fn in [("Sigmoid", lambda v: 1 / (1 + np.exp(-v))), ("Exp", np.exp), ("Tanh", np.tanh)]:
        BOOK.add(f"f16_{op}", op, [x], opset=13, ref=lambda a, fn=fn: ew_f16(fn, a), ioc16=True,
                 tol=2e-3)
    a, b = _f32(2, 8, 13), _f32(2, 8, 13)
    BOOK.add("f16_fused_add_relu", "Add", [a, b], opset=13, post=(("Relu", [], {}),),
             ref=lambda a, b: ew_f16(lambda u, v: np.maximum(u + v, 0), a, b), ioc16=True,
             exact=True)


_f16_cases()


def _f16_clip_edges():
    """Clip with a bound float16 cannot hold (rounds to infinity) and one side only."""
    from kernels.f16_reference import ew_f16

    x = (_f32(3, 61) * 4).astype(F32)
    BOOK.add("f16_Clip_max_only", "Clip", [x, None, Const(np.array(1.5, F32))], opset=13,
             ref=lambda a, lo, hi: ew_f16(lambda v: np.minimum(v, 1.5), a), ioc16=True, exact=True)
    BOOK.add("f16_Clip_huge_bounds", "Clip", [x, Const(np.array(-1e6, F32)),
                                              Const(np.array(2.0, F32))], opset=13,
             ref=lambda a, lo, hi: ew_f16(lambda v: np.minimum(v, 2.0), a), ioc16=True, exact=True)


_f16_clip_edges()


# --- float16 NCHW88 (enable_ioc16 + enable_nchw88 on arm64-fp16): the op follows an
# identity 1x1 conv and a 1x1 max pool (both exact in float16; the pool keeps the op from
# fusing into the conv), which put its input in NCHW88; operands walking like the output,
# per-channel constants (one vector per block), scalars; 12 channels: a padded last block.
# NumPy float16 arithmetic as the reference: exact, Sigmoid within two float16 ulps.
def _f16_nchw88_cases():
    from kernels.f16_reference import ew_f16, hardswish_f16

    def pre(c):
        return (("Conv", [Const(np.eye(c, dtype=F32).reshape(c, c, 1, 1))], {}),
                ("MaxPool", [], {"kernel_shape": [1, 1]}))

    kw = dict(opset=14, ioc16=True, nchw88=True)
    for c in (16, 12):
        a, b = _f32(1, c, 5, 7), _f32(1, c, 5, 7)
        BOOK.add(f"n88_Add_tensor_c{c}", "Add", [a, b], ref=lambda a, b: ew_f16(np.add, a, b),
                 exact=True, pre=pre(c), **kw)
        BOOK.add(f"n88_Mul_const_channel_c{c}", "Mul", [a, Const(_f32(1, c, 1, 1))],
                 ref=lambda a, b: ew_f16(np.multiply, a, b), exact=True, pre=pre(c), **kw)
        BOOK.add(f"n88_Add_const_channel_relu_c{c}", "Add", [a, Const(_f32(1, c, 1, 1))],
                 post=(("Relu", [], {}),), exact=True, pre=pre(c),
                 ref=lambda a, b: ew_f16(lambda u, v: np.maximum(u + v, 0), a, b), **kw)
        BOOK.add(f"n88_HardSwish_c{c}", "HardSwish", [(a * 4).astype(F32)], ref=hardswish_f16,
                 exact=True, pre=pre(c), **kw)
        BOOK.add(f"n88_Sigmoid_c{c}", "Sigmoid", [a], ref=lambda a: ew_f16(
            lambda v: 1 / (1 + np.exp(-v)), a), tol=2e-3, pre=pre(c), **kw)
    x = (_f32(2, 8, 3, 9) * 5).astype(F32)
    BOOK.add("n88_Clip_relu6", "Clip", [x, Const(np.array(0, F32)), Const(np.array(6, F32))],
             ref=lambda a, lo, hi: ew_f16(lambda v: np.minimum(np.maximum(v, 0), 6), a),
             exact=True, pre=pre(8), **kw)
    BOOK.add("n88_Relu", "Relu", [x], ref=lambda a: ew_f16(lambda v: np.maximum(v, 0), a),
             exact=True, pre=pre(8), **kw)
    BOOK.add("n88_Mul_scalar", "Mul", [x, Const(np.array(0.75, F32))],
             ref=lambda a, b: ew_f16(np.multiply, a, b), exact=True, pre=pre(8), **kw)
    d = np.where(np.abs(_f32(1, 8, 1, 1)) < 0.1, F32(0.5), _f32(1, 8, 1, 1)).astype(F32)
    BOOK.add("n88_Div_const_channel", "Div", [x, Const(d)],
             ref=lambda a, b: ew_f16(np.divide, a, b), exact=True, pre=pre(8), **kw)


_f16_nchw88_cases()
