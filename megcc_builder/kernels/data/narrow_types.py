"""Conversions of the narrow ONNX element types (ir/dtypes.py NARROW_FLOATS, NARROW_INTS)
to and from ordinary values, as C expressions plus the generated helpers they call.

Everything goes through float (or double) at the edges, exactly as ONNX specifies
(onnx.reference's Cast, i.e. ml_dtypes and onnx.numpy_helper):

- decoding is exact: bfloat16 is the high half of a float32; a float8/float4 code indexes
  a table of its values (generated here from ml_dtypes); float8e8m0 is 2^(code - 127);
  int4/uint4/int2/uint2 hold their low bits in a byte (ml_dtypes' layout);
- bfloat16 encodes with round-to-nearest-even; a float64 source is rounded to float32
  first, as ml_dtypes (so ONNX's reference) and onnxruntime do;
- float8/float4 encode to the nearest value, ties to the even code, searching the sorted
  magnitudes extended by the first value past the largest finite one: landing there is an
  overflow, which gives the largest finite value with saturate (and always for float4,
  which has no infinity or NaN), else infinity (E5M2) or NaN. FNUZ types have no negative
  zero; float64 sources go through float32 here too;
- float8e8m0 encodes like onnx.numpy_helper.to_float8e8m0 (round_mode up/down/nearest);
- the 2- and 4-bit integers encode like a C conversion to int64 (floats truncate; NaN, inf
  and out-of-range floats give 0) wrapped to their width.
"""
from __future__ import annotations

import functools
import struct
from typing import Tuple

import numpy as np

from ...ir.dtypes import NARROW_FLOATS, NARROW_INTS, numpy_dtype

# the float8/float4 types encoded by table search: (positive codes, code of NaN or None,
# code of +infinity or None, sign bit, unsigned zero (FNUZ))
TABLE_FLOATS = {
    "float8e4m3fn": (127, 0x7F, None, 0x80, False),
    "float8e4m3fnuz": (128, 0x80, None, 0x80, True),
    "float8e5m2": (124, 0x7E, 0x7C, 0x80, False),
    "float8e5m2fnuz": (128, 0x80, None, 0x80, True),
    "float4e2m1": (8, None, None, 0x8, False),
}
INT_BITS = {"int4": (4, True), "uint4": (4, False), "int2": (2, True), "uint2": (2, False)}


def is_narrow(dtype: str) -> bool:
    return dtype in NARROW_FLOATS or dtype in NARROW_INTS


def _f32_hex(v: float) -> str:
    return f"0x{struct.unpack('<I', struct.pack('<f', float(v)))[0]:08x}u"


def _short(dtype: str) -> str:
    return dtype.replace("float", "f")


@functools.lru_cache(maxsize=None)
def _decode_table(dtype: str) -> Tuple[str, str]:
    """(name, source) of the float32 bit patterns of every code of a table float."""
    n = 16 if dtype == "float4e2m1" else 256
    values = np.arange(n, dtype=np.uint8).view(numpy_dtype(dtype)).astype(np.float32)
    name = f"megcc_{_short(dtype)}_bits"
    rows = ",\n    ".join(", ".join(_f32_hex(v) for v in values[i:i + 6])
                          for i in range(0, n, 6))
    return name, f"static const uint32_t {name}[{n}] = {{\n    {rows}\n}};\n"


@functools.lru_cache(maxsize=None)
def _magnitudes(dtype: str) -> Tuple[str, str]:
    """(name, source) of the ascending non-negative finite values of a table float (their
    index is their code), then the first value past the largest: the overflow."""
    count = TABLE_FLOATS[dtype][0]
    mags = np.arange(count, dtype=np.uint8).view(numpy_dtype(dtype)).astype(np.float64)
    past = 2 * mags[-1] - mags[-2]  # the next value of the top binade
    name = f"megcc_{_short(dtype)}_mag"
    values = ",\n    ".join(", ".join(repr(float(v)) for v in (list(mags) + [past])[i:i + 6])
                            for i in range(0, count + 1, 6))
    return name, f"static const double {name}[{count + 1}] = {{\n    {values}\n}};\n"


@functools.lru_cache(maxsize=None)
def _encoder(dtype: str, saturate: bool) -> Tuple[str, str]:
    """(name, source) of `uint8_t f(double v)` encoding to a table float."""
    count, nan, inf, sign, unsigned_zero = TABLE_FLOATS[dtype]
    table = _magnitudes(dtype)[0]
    sat = saturate or dtype == "float4e2m1"
    overflow = (f"{count - 1}u" if sat else f"{inf}u" if inf is not None else f"{nan}u")
    # float4 has no NaN: ml_dtypes (and so ONNX's reference) gives the zero of the opposite
    # sign
    nan_code = f"{nan}u" if nan is not None else f"(signbit(v) ? 0u : {sign}u)"
    name = f"megcc_to_{_short(dtype)}{'_sat' if sat else ''}"
    zero = "if (k == 0) return 0u;  /* no negative zero */\n    " if unsigned_zero else ""
    src = f"""static uint8_t {name}(double v) {{
    const uint8_t s = v < 0.0 || (v == 0.0 && 1.0 / v < 0.0) ? {sign}u : 0u;
    const double a = v < 0.0 ? -v : v;
    int32_t lo = 0, hi = {count}, k;
    if (v != v) return {nan_code};
    if (a >= {table}[{count}]) {{
        k = {count};
    }} else {{
        while (hi - lo > 1) {{  /* {table}[lo] <= a < {table}[hi] */
            const int32_t mid = (lo + hi) / 2;
            if ({table}[mid] <= a) lo = mid; else hi = mid;
        }}
        {{
            const double dl = a - {table}[lo], dh = {table}[hi] - a;
            k = dl < dh || (dl == dh && (lo & 1) == 0) ? lo : hi;
        }}
    }}
    if (k == {count}) return (uint8_t)({overflow} | s);
    {zero}return (uint8_t)(k | s);
}}
"""
    return name, src


_E8M0_UP = {
    "up": "        const int up = (b & 0x7FFFFFu) != 0;",
    "down": "        const int up = 0;",
    "nearest": """        const int g = (b & 0x400000u) != 0, r = (b & 0x200000u) != 0;
        const int st = (b & 0x1FFFFFu) != 0, lsb = e > 0;
        const int up = g && (r || st || lsb);""",
}


def _e8m0_encoder(mode: str) -> Tuple[str, str]:
    name = f"megcc_to_f8e8m0_{mode}"
    return name, f"""static uint8_t {name}(float f, int sat) {{
    uint32_t b, e;
    memcpy(&b, &f, sizeof b);
    e = (b >> 23) & 0xFFu;
    if (e == 0xFFu) return 0xFFu;  /* NaN, infinity */
    {{
{_E8M0_UP[mode]}
        if (up && !(sat && e == 0xFEu)) ++e;
    }}
    return (uint8_t)e;
}}
"""


E8M0_ENCODE = {mode: _e8m0_encoder(mode) for mode in _E8M0_UP}

BF16_ENCODE = ("megcc_to_bf16", r"""static uint16_t megcc_to_bf16(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((b >> 16) | 0x40u);  /* quiet NaN */
    b += 0x7FFFu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}
""")
def decode(dtype: str, v: str) -> Tuple[str, str, tuple]:
    """(C expression, its kind 'float' or 'int', helpers) of storage value v of dtype."""
    if dtype == "bfloat16":
        return f"megcc_f32_from_bits((int32_t)((uint32_t)({v}) << 16))", "float", ()
    if dtype == "float8e8m0":
        return (f"(({v}) == 0xFFu ? NAN : ldexpf(1.0f, (int32_t)({v}) - 127))", "float",
                ("math",))
    if dtype in TABLE_FLOATS:
        name, src = _decode_table(dtype)
        return f"megcc_f32_from_bits((int32_t){name}[{v}])", "float", ((name, src),)
    bits, signed = INT_BITS[dtype]
    mask, half = (1 << bits) - 1, 1 << (bits - 1)
    if signed:
        return (f"((int32_t)(({v}) & {mask}u) - ((({v}) & {half}u) ? {1 << bits} : 0))",
                "int", ())
    return f"(int32_t)(({v}) & {mask}u)", "int", ()


def encode(dtype: str, v: str, kind: str, saturate: bool, round_mode: str = "up"
           ) -> Tuple[str, tuple]:
    """(C expression, helpers) storing value v (kind: 'float' a float, 'double' a double,
    'int' an integer, 'bool') as dtype."""
    if dtype in INT_BITS:
        bits, _ = INT_BITS[dtype]
        mask = (1 << bits) - 1
        if kind in ("float", "double"):
            # C's float -> int64 truncation, defined everywhere: NaN/inf/huge give 0
            w = f"(fabs((double)({v})) < 9.2e18 ? (int64_t)({v}) : (int64_t)0)"
            return f"(uint8_t)((uint64_t){w} & {mask}u)", ("math",)
        return f"(uint8_t)((uint64_t)(int64_t)({v}) & {mask}u)", ()
    if dtype == "bfloat16":
        return f"megcc_to_bf16((float)({v}))", (BF16_ENCODE,)
    if dtype == "float8e8m0":
        return (f"megcc_to_f8e8m0_{round_mode}((float)({v}), {int(saturate)})",
                (E8M0_ENCODE[round_mode],))
    name, src = _encoder(dtype, saturate)
    return f"{name}((double)(float)({v}))", (_magnitudes(dtype), (name, src))
