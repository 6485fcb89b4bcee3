"""QLinearSoftmax (onnxruntime's com.microsoft op; also what the QDQ pass forms from
DequantizeLinear -> Softmax -> QuantizeLinear, as onnxruntime's optimiser does), portable C,
bit-exact with onnxruntime's table kernel (contrib_ops/cpu/quantization/qlinear_softmax.cc):

- a 256-entry float table T[k] = float(exp((k - 255 + shift) * x_scale)) computed in double,
  shift = max(0, logf(FLT_MAX / D) - 5) / x_scale (D: the row length), so that the row's
  maximum code reads T[255] and a sum of D entries cannot overflow. The input zero point
  cancels out and is not read;
- per row: the maximum code m, the float sum of T[255 - m + x] in row order, then
  y = nearbyint(T[255 - m + x] * floor(1 / y_scale) / sum) + y_zp, capped at 255 from
  above only. For int8 the result is stored as its low byte: onnxruntime's int8 kernel
  wraps 128..255 to negative codes (with y_scale 1/256 and y_zp -128, which its quantizer
  writes, a probability of 1 comes out as -128), and we reproduce that.
- A product T[k] * floor(1 / y_scale) that overflows float (short rows with a large
  1 / y_scale) gives what onnxruntime's x86-64 float-to-integer conversions give for
  infinity: y_zp for uint8; for int8, -1 when y_zp < 0, else y_zp.

Rows: opset < 13 (the op's `opset` attribute) coerces the input to 2-D at `axis` (a row is
everything from `axis` on); from 13 a row runs along the one axis `axis` (strided). The
table depends on the row length, so that length must be known at compile time (the other
extents may be symbolic)."""
from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

from ...codegen.kernel import Instr, f32_bits, make_kernel, numel
from ...codegen.params import i32, i64, schema, table
from ...ir import Graph, Op
from ...ir.symbolic import Sym
from ..data.copy_generic import norm_axis
from ..registry import implements
from .elementwise_generic_s8 import _unary_params
from .requant import CTYPE, ROUND_EVEN, SHORT

QTYPES = ("int8", "uint8")
F32 = np.float32
# floor(1 / y_scale) above this could round past the magic-number rounding's exact range
# (2^22) and reach onnxruntime's out-of-range integer conversions; no quantizer writes one
MAX_INV_SCALE = 1 << 21

PARAMS = schema(i64("OUTER", "rows before the axis"), i64("R", "row length"),
                i64("INNER", "elements after the axis (1 below opset 13)"),
                i32("YZ", "Y_zero_point"), i32("OVF", "the code of an overflowed product"),
                table("tab", 256, "exp table, float bits"),
                table("num", 256, "exp table times floor(1 / y_scale), float bits"))


def _libm_logf():
    """The C library's logf (onnxruntime's log of a float argument), else numpy's."""
    path = ctypes.util.find_library("m")
    if path:
        try:
            fn = ctypes.CDLL(path).logf
            fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
            return lambda v: float(fn(v))
        except (OSError, AttributeError):
            pass
    return lambda v: float(np.log(F32(v)))


_LOGF = _libm_logf()


def exp_table(x_scale: float, row: int) -> np.ndarray:
    """onnxruntime's QlinearBuildLookupTableUint32 (float entries), indexed 255 - (m - x)."""
    xs = float(F32(x_scale))
    shift = _LOGF(float(F32(np.finfo(F32).max) / F32(row)))
    shift = max(0.0, shift - 5.0) / xs
    return np.array([math.exp((k - 255.0 + shift) * xs) for k in range(256)]).astype(F32)


def rows_of(op: Op, graph: Graph):
    """(outer, row length, inner) of the op's rows."""
    x = graph.tensors[op.inputs[0]]
    if "opset" not in op.attrs:  # onnxruntime refuses the node too
        raise graph.error("the 'opset' attribute (the Softmax opset it stands for) is "
                          "missing", op)
    rank = len(x.shape)
    axis = norm_axis(int(op.attrs.get("axis", -1)), rank, op, graph)
    if int(op.attrs["opset"]) < 13:
        return numel(x.shape[:axis]), numel(x.shape[axis:]), 1
    return numel(x.shape[:axis]), x.shape[axis], numel(x.shape[axis + 1:])


@implements("QLinearSoftmax", dtypes=QTYPES)
def lower_qlinear_softmax(op: Op, graph: Graph):
    x, y, xs, _, ys, yz = _unary_params(op, graph)
    if x.dtype != y.dtype:
        raise graph.error(f"X and Y must have one dtype (have {x.dtype}, {y.dtype})", op)
    if op.attrs.get("activation") or op.attrs.get("rounding", "half_even") != "half_even":
        raise graph.error("only onnxruntime's rounding is supported here", op)
    outer, row, inner = rows_of(op, graph)
    if isinstance(row, Sym) or not isinstance(row, (int, np.integer)):
        raise graph.error("the length along the softmax axis must be known at compile time "
                          "(the exp table depends on it)", op)
    inv = F32(math.floor(F32(1.0) / F32(ys)))
    if inv > MAX_INV_SCALE:
        raise graph.error(f"Y_scale {ys:g} is below 2^-21, which is not supported", op)
    tab = exp_table(xs, int(row))
    with np.errstate(over="ignore"):
        num = (tab * inv).astype(F32)
    ct = CTYPE[x.dtype]
    # uint8: (uint32)(int64)inf is 0; int8: (int32)inf is INT32_MIN, + y_zp wraps above 255
    # for a negative y_zp, else its low byte is y_zp's
    overflow = -1 if x.dtype == "int8" and yz < 0 else yz
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    uint8_t *y = (uint8_t *)out_ptrs[0];  /* the low byte of the result (int8: wraps) */
    int64_t o, i, r;
    for (o = 0; o < OUTER; ++o) {{
        for (i = 0; i < INNER; ++i) {{
            const {ct} *xr = x + (o * R) * INNER + i;
            uint8_t *yr = y + (o * R) * INNER + i;
            int32_t m = xr[0];
            float sum = 0.0f;
            for (r = 1; r < R; ++r) if (xr[r * INNER] > m) m = xr[r * INNER];
            /* in row order, as onnxruntime adds them */
            for (r = 0; r < R; ++r) sum += megcc_f32_from_bits(tab[255 - m + xr[r * INNER]]);
            for (r = 0; r < R; ++r) {{
                const float q = megcc_f32_from_bits(num[255 - m + xr[r * INNER]]) / sum;
                int32_t v;
                if (q > 4194304.0f) {{  /* the product overflowed float */
                    v = OVF;
                }} else {{
                    v = megcc_qround_even(q, 0.0f, 4194304.0f) + YZ;
                    v = v > 255 ? 255 : v;  /* onnxruntime caps above only */
                }}
                yr[r * INNER] = (uint8_t)(v & 255);
            }}
        }}
    }}
"""
    kernel = make_kernel(f"qlinear_softmax_{SHORT[x.dtype]}", body, PARAMS, (ROUND_EVEN,))
    params = PARAMS.pack(OUTER=outer, R=int(row), INNER=inner, YZ=yz, OVF=overflow, tab=[f32_bits(v) for v in tab],
                         num=[f32_bits(v) for v in num])
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params,
                  note=f"QLinearSoftmax by onnxruntime's exp table (rows of {int(row)})")]
