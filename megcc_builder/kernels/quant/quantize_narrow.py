"""QuantizeLinear and DequantizeLinear with a narrow quantized type (ONNX 21+): int4, uint4,
int2, uint2 (integers: x / scale rounded half to even, plus the zero point, clamped to the
type's range), the float8 types (x / scale cast to the type, saturating unless
saturate = 0; the zero point, always zero, is not added) and float4e2m1 (x / scale plus the
zero point, cast, saturating). Dequantization: the value (minus the zero point for the
integers) times the scale. As onnx.reference computes it; conversions from
data/narrow_types.py. Called by the portable QuantizeLinear/DequantizeLinear
implementations (quantize_generic_s8.py) for these types; the scale's dtype (float32 or
float16) is the dequantized output's.
"""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op, c_type
from ...ir.quant import check_scale, operand
from ..data import narrow_types
from ..data.copy_generic import F16_HELPERS

INT_RANGE = {"int4": (-8, 7), "uint4": (0, 15), "int2": (-2, 1), "uint2": (0, 3)}
SCALES = ("float32", "float16")


def _zero_point(op: Op, graph: Graph, data_dtype: str):
    name = operand(graph, op, 2)
    if name is not None and graph.tensors[name].dtype != data_dtype:
        raise graph.error(f"the zero point '{name}' is {graph.tensors[name].dtype}, but the "
                          f"data it goes with is {data_dtype}", op)
    return name


def _scale_read(op: Op, graph: Graph, per_axis: bool):
    st = graph.tensors[op.inputs[1]].dtype
    if st not in SCALES:
        raise graph.error(f"a {st} scale is not supported (float32, float16 are)", op)
    idx = "c" if per_axis else "0"
    if st == "float16":
        return f"megcc_f16_to_f32(((const uint16_t *)in_ptrs[1])[{idx}])", (F16_HELPERS,)
    return f"((const float *)in_ptrs[1])[{idx}]", ()


def quantize(op: Op, graph: Graph, split, params) -> list:
    """`split`: (outer, C, inner, per_axis) of the scale's axis; `params`: OUTER, C, INNER."""
    y = graph.tensors[op.outputs[0]]
    check_scale(graph, op, 1)
    zp = _zero_point(op, graph, y.dtype)
    outer, c, inner, per_axis = split
    scale, helpers = _scale_read(op, graph, per_axis)
    saturate = bool(int(op.attrs.get("saturate", 1)))
    zp_idx = "c" if per_axis else "0"
    if y.dtype in INT_RANGE:
        lo, hi = INT_RANGE[y.dtype]
        zp_v = (narrow_types.decode(y.dtype, f"((const uint8_t *)in_ptrs[2])[{zp_idx}]")[0]
                if zp else "0")
        store, more = narrow_types.encode(y.dtype, "(int32_t)r", "int", True)
        step = f"""                float r = rintf(*x / s) + (float)zp;  /* half to even */
                r = r != r ? {lo}.0f : (r < {lo}.0f ? {lo}.0f : (r > {hi}.0f ? {hi}.0f : r));
                *y = {store};"""
        zp_decl = f"const int32_t zp = {zp_v};"
    else:
        zp_v, more = "0.0f", ()
        if zp and y.dtype == "float4e2m1":
            zp_v, _, more = narrow_types.decode(y.dtype,
                                                f"((const uint8_t *)in_ptrs[2])[{zp_idx}]")
        store, enc = narrow_types.encode(y.dtype, "*x / s + zp", "float", saturate)
        more = tuple(more) + tuple(enc)
        step = f"                *y = {store};"
        zp_decl = f"const float zp = {zp_v};"
    helpers = helpers + tuple(more) + ("math",)
    name = (f"quantize_{y.dtype}{'_axis' if per_axis else ''}{'' if zp else '_nozp'}"
            f"{'' if saturate or y.dtype in INT_RANGE else '_nosat'}"
            f"{'_s16' if graph.tensors[op.inputs[1]].dtype == 'float16' else ''}")
    body = f"""    const float *x = (const float *)in_ptrs[0];
    uint8_t *y = (uint8_t *)out_ptrs[0];
    int64_t o, i;
    int32_t c;
    for (o = 0; o < OUTER; ++o)
        for (c = 0; c < C; ++c) {{
            const float s = {scale};
            {zp_decl}
            for (i = 0; i < INNER; ++i, ++x, ++y) {{
{step}
            }}
        }}
"""
    kernel = make_kernel(name, body, params, helpers)
    return [Instr(kernel, [n for n in op.inputs[:3] if n], [op.outputs[0]],
                  params.pack(OUTER=outer, C=c, INNER=inner))]


def dequantize(op: Op, graph: Graph, split, params) -> list:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    check_scale(graph, op, 1)
    zp = _zero_point(op, graph, x.dtype)
    outer, c, inner, per_axis = split
    scale, helpers = _scale_read(op, graph, per_axis)
    if y.dtype != graph.tensors[op.inputs[1]].dtype:
        raise graph.error(f"dequantizing to {y.dtype} with a "
                          f"{graph.tensors[op.inputs[1]].dtype} scale is not supported", op)
    value, kind, more = narrow_types.decode(x.dtype, "*x")
    zp_idx = "c" if per_axis else "0"
    # the integers subtract their zero point; the floats' is zero (float8) or ignored
    zp_v = (narrow_types.decode(x.dtype, f"((const uint8_t *)in_ptrs[2])[{zp_idx}]")[0]
            if zp and x.dtype in INT_RANGE else "0")
    store = "megcc_f32_to_f16(v)" if y.dtype == "float16" else "v"
    helpers = helpers + tuple(more) + ((F16_HELPERS,) if y.dtype == "float16" else ())
    name = (f"dequantize_{x.dtype}_to_{y.dtype}{'_axis' if per_axis else ''}"
            f"{'' if zp_v != '0' else '_nozp'}")
    body = f"""    const {c_type(x.dtype)} *x = (const {c_type(x.dtype)} *)in_ptrs[0];
    {c_type(y.dtype)} *y = ({c_type(y.dtype)} *)out_ptrs[0];
    int64_t o, i;
    int32_t c;
    for (o = 0; o < OUTER; ++o)
        for (c = 0; c < C; ++c) {{
            const float s = {scale};
            const float zp = (float)({zp_v});
            for (i = 0; i < INNER; ++i, ++x, ++y) {{
                const float v = ((float)({value}) - zp) * s;
                *y = {store};
            }}
        }}
"""
    kernel = make_kernel(name, body, params, helpers)
    return [Instr(kernel, [n for n in op.inputs[:3] if n], [op.outputs[0]],
                  params.pack(OUTER=outer, C=c, INNER=inner))]
