"""Requantization, the step every integer kernel ends with: int32 accumulator -> float ->
activation -> rounding -> zero point -> saturation (all in float32, as onnxruntime's
MlasRequantizeOutput: `float(acc + bias) * (s_in * s_w / s_out)`, clamped, rounded, + zp).

The rounding follows the op's `rounding` attribute: "half_even" (onnxruntime; the float32
magic-number trick MLAS uses, exact once clamped to the output range) or "half_away"
(MegEngine: trunc(v + 0.5f), and it scales into output steps by multiplying with 1 / s_out
where onnxruntime divides by s_out; both differ from the other near ties). The
`activation` is applied to the float value before rounding: Relu and Clip as tighter clamp
bounds, others (Sigmoid, HSwish) on the real value.
"""
from __future__ import annotations

from typing import Optional, Tuple

from ...codegen.kernel import c_float
from ...ir import Graph, Op
from ...ir.quant import QRANGE, fixed_point_problem, q31_multipliers  # noqa: F401

# ties-to-even without libm or the current rounding mode: for |v| < 2^22, adding 1.5 * 2^23
# leaves the rounded integer in the low mantissa bits (MLAS_ROUNDING_BIAS_MAGIC)
ROUND_EVEN = ("megcc_qround_even", r"""
static inline int32_t megcc_qround_even(float v, float lo, float hi) {
    int32_t bits;
    v = v > lo ? v : lo;  /* NaN -> lo, as MLAS's max(v, lo) */
    v = v < hi ? v : hi;
    v += 12582912.0f;
    memcpy(&bits, &v, sizeof bits);
    return bits - 0x4B400000;
}
""")
# MegEngine's (megdnn's QConverter): v + 0.5f (or - 0.5f) in float32, then truncation. Not
# roundf: just below a tie (k + 0.5 - ulp) the float addition already rounds up to k + 1.
ROUND_AWAY = ("megcc_qround_away", r"""
static inline int32_t megcc_qround_away(float v, float lo, float hi) {
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    v += v >= 0.0f ? 0.5f : -0.5f;
    return (int32_t)v;
}
""")
# The fixed-point mode (op attribute requant="fixed", set for a whole build by
# enable_fixed_point_requant; CMSIS-NN's arithmetic, no float unit needed): the real
# multiplier s_in * s_w / s_out of each output channel, computed at compile time, is
# m * 2^(e - 31) with m a Q31 integer in [2^30, 2^31); the output is
# (acc * m + 2^(30 - e)) >> (31 - e) in int64 (one rounding, ties towards +infinity), then
# the zero point and the integer clamp. Relu and Clip are integer bounds (Clip's rounded
# half away from zero in output steps).
ROUND_Q31 = ("megcc_qround_q31", r"""
static inline int32_t megcc_qround_q31(int32_t acc, int32_t m, int32_t e, int32_t lo,
                                       int32_t hi) {
    const int32_t t = 31 - e;  /* 1 <= t <= 62, checked at compile time */
    int64_t v = ((int64_t)acc * m + ((int64_t)1 << (t - 1))) >> t;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    return (int32_t)v;
}
""")
FIXED_ACTIVATIONS = ("", "Relu", "Clip")
# the same product and rounding without the clamp: rescales an operand into a common
# integer domain (fixed-point QLinearAdd, CMSIS-NN's arm_elementwise_add_s8 input step)
SCALE_Q31 = ("megcc_qscale_q31", r"""
static inline int32_t megcc_qscale_q31(int32_t v, int32_t m, int32_t e) {
    const int32_t t = 31 - e;  /* 1 <= t <= 62, checked at compile time */
    return (int32_t)(((int64_t)v * m + ((int64_t)1 << (t - 1))) >> t);
}
""")


def refuses_fixed(op: Op) -> Optional[str]:
    """For the `applies` of a kernel whose epilogue is float (SIMD requantization in
    registers): why it cannot take an op marked requant="fixed" (None if the op is not);
    the portable kernel then computes the fixed-point arithmetic."""
    if op.attrs.get("requant") == "fixed":
        return "fixed-point requantization (the portable kernel's)"
    return None


ACTIVATIONS = ("", "Relu", "Clip", "Sigmoid", "HSwish", "Tanh")
# activations computed on the real value (the others are bounds)
_REAL_ACT = {"Sigmoid": "megcc_q_sigmoid({r})", "HSwish": "megcc_q_hswish({r})",
             "Tanh": "tanhf({r})"}
REAL_ACT_HELPERS = {"Sigmoid": ("megcc_q_sigmoid", r"""
static inline float megcc_q_sigmoid(float r) { return 1.0f / (1.0f + expf(-r)); }
"""), "HSwish": ("megcc_q_hswish", r"""
static inline float megcc_q_hswish(float r) {
    const float t = r + 3.0f < 0.0f ? 0.0f : (r + 3.0f > 6.0f ? 6.0f : r + 3.0f);
    return r * t / 6.0f;
}
""")}


def real_activation_helpers(activation: str) -> tuple:
    """The helper an activation on real values needs (only that one: clang warns about an
    unused static function)."""
    return (REAL_ACT_HELPERS[activation],) if activation in REAL_ACT_HELPERS else ()


def to_output_steps(real: str, s_out: str, rounding: str) -> str:
    """C expression: a real value in output quantization steps, as the model's origin
    computes it (onnxruntime divides by the scale, MegEngine multiplies by its inverse)."""
    if rounding == "half_away":
        return f"(({real}) * (1.0f / {s_out}))"
    return f"(({real}) / {s_out})"


def wrapping_add(a: str, b: str) -> str:
    """C expression: int32 a + b modulo 2^32, as the references' vector adds compute it
    (MLAS adds the bias with paddd), without C's signed-overflow undefined behaviour: the
    same value whenever the sum is in range (a fuzzed bias near INT32_MAX is not)."""
    return f"(int32_t)((uint32_t)({a}) + (uint32_t)({b}))"


def wrapping_sub(a: str, b: str) -> str:
    """C expression: int32 a - b modulo 2^32 (see wrapping_add)."""
    return f"(int32_t)((uint32_t)({a}) - (uint32_t)({b}))"


def wrapping_mul(a: str, b: str) -> str:
    """C expression: int32 a * b modulo 2^32 (see wrapping_add)."""
    return f"(int32_t)((uint32_t)({a}) * (uint32_t)({b}))"


CTYPE = {"int8": "int8_t", "uint8": "uint8_t", "int32": "int32_t", "int16": "int16_t",
         "uint16": "uint16_t"}
SHORT = {"int8": "s8", "uint8": "u8", "int32": "s32", "float32": "f32", "int16": "s16",
         "uint16": "u16"}


def rounding_of(op: Op, graph: Graph) -> str:
    mode = op.attrs.get("rounding", "half_even")
    if mode not in ("half_even", "half_away"):
        raise graph.error(f"rounding '{mode}' is not supported (half_even, half_away are)", op)
    return mode


def activation_of(op: Op, graph: Graph) -> Tuple[str, Optional[Tuple[float, float]]]:
    act = op.attrs.get("activation", "") or ""
    if act not in ACTIVATIONS:
        raise graph.error(f"activation '{act}' is not supported ({', '.join(ACTIVATIONS[1:])} "
                          "are)", op)
    bounds = None
    if act == "Clip":
        b = op.attrs.get("activation_bounds")
        if not b or len(b) != 2:
            raise graph.error("activation Clip needs activation_bounds [min, max]", op)
        bounds = (float(b[0]), float(b[1]))
    return act, bounds


class Requant:
    """The C pieces of one op's requantization (output dtype, rounding, activation)."""

    def __init__(self, op: Op, graph: Graph, out_dtype: str):
        if out_dtype not in ("int8", "uint8"):
            raise graph.error(f"quantized output of dtype {out_dtype} is not supported "
                              "(int8, uint8 are)", op)
        self.dtype = out_dtype
        self.ctype = CTYPE[out_dtype]
        self.rounding = rounding_of(op, graph)
        self.activation, self.bounds = activation_of(op, graph)
        self.fn = "megcc_qround_even" if self.rounding == "half_even" else "megcc_qround_away"
        self.helpers = (ROUND_EVEN if self.rounding == "half_even" else ROUND_AWAY,) + \
            real_activation_helpers(self.activation)
        self.fixed = op.attrs.get("requant", "float") == "fixed"
        if self.fixed:
            if self.activation not in FIXED_ACTIVATIONS:
                raise graph.error(f"fixed-point requantization cannot apply activation "
                                  f"{self.activation}", op)
            self.fn, self.helpers = "megcc_qround_q31", (ROUND_Q31,)
        self.clip_steps = None  # fixed point: Clip's bounds in output steps (set_clip_scale)

    def set_clip_scale(self, s_out: float) -> None:
        """Fixed point: Clip's real bounds as integer output steps, rounded half away from
        zero (the output scale must be a compile-time constant)."""
        import math

        if self.bounds:
            r = [math.floor(abs(b / s_out) + 0.5) * (1 if b >= 0 else -1) for b in self.bounds]
            self.clip_steps = (int(r[0]), int(r[1]))

    @property
    def tag(self) -> str:
        """Kernel-name suffix: everything that changes the epilogue's code."""
        t = SHORT[self.dtype] + ("_q31" if self.fixed else
                                 "" if self.rounding == "half_even" else "_away")
        if self.activation:
            t += "_" + self.activation.lower()
        if self.bounds:
            t += "_" + "_".join(f"{v:g}".replace("-", "m").replace(".", "p")
                                for v in self.bounds)
        return t

    @property
    def real(self) -> bool:
        """Whether the activation needs the real value (scale of the accumulator, s_out)."""
        return self.activation in _REAL_ACT

    def setup(self, zp: str, s_out: str = "so") -> str:
        """C declarations of `lo`, `hi` (float clamp bounds, relative to the zero point)
        from the int32 output zero point `zp` (and the float output scale for Clip)."""
        lo, hi = QRANGE[self.dtype]
        if self.fixed:  # integer bounds relative to the zero point
            code = f"int32_t lo = {lo} - {zp}, hi = {hi} - {zp};\n"
            if self.activation == "Relu":
                code += "    if (lo < 0) lo = 0;\n"
            if self.clip_steps:
                code += (f"    if (lo < {self.clip_steps[0]}) lo = {self.clip_steps[0]};\n"
                         f"    if (hi > {self.clip_steps[1]}) hi = {self.clip_steps[1]};\n")
            return code
        code = f"float lo = (float)({lo} - {zp}), hi = (float)({hi} - {zp});\n"
        if self.activation == "Relu":
            code += "    if (lo < 0.0f) lo = 0.0f;\n"
        if self.bounds:
            code += (f"    {{ const float cl = {c_float(self.bounds[0])} / {s_out}, "
                     f"ch = {c_float(self.bounds[1])} / {s_out};\n"
                     "      if (lo < cl) lo = cl;\n      if (hi > ch) hi = ch; }\n")
        return code

    @property
    def uses_real_scale(self) -> bool:
        """Whether the value goes through the real domain (acc * s_in * s_w, then into output
        steps) instead of one multiplier s_in * s_w / s_out: for real activations, and for
        MegEngine, whose requantization is act(acc * (s_in * s_w)) * (1 / s_out) whatever
        the activation (the two differ near ties). Kernels then define `real_scale`, else
        `mult`."""
        return not self.fixed and (self.real or self.rounding == "half_away")

    def value(self, acc: str, mult: str, real_scale: str = "", s_out: str = "so") -> str:
        """The float value to round, in output steps (before the zero point), from the int32
        accumulator: acc * mult, or act(acc * real_scale) in output steps (uses_real_scale).
        Fixed point: the accumulator itself (store multiplies by the kernel's `qm`, `qe`)."""
        if self.fixed:
            return f"({acc})"
        if self.uses_real_scale:
            r = f"((float)({acc}) * {real_scale})"
            if self.real:
                r = _REAL_ACT[self.activation].format(r=r)
            return to_output_steps(r, s_out, self.rounding)
        return f"((float)({acc}) * {mult})"

    def store(self, value: str, zp: str) -> str:
        """C expression: the output element from the float value `value` (fixed point:
        from the int32 accumulator and the channel's Q31 multiplier `qm`, exponent `qe`)."""
        if self.fixed:
            return f"({self.ctype})({self.fn}({value}, qm, qe, lo, hi) + {zp})"
        return f"({self.ctype})({self.fn}({value}, lo, hi) + {zp})"
