"""QuantizeLinear, DequantizeLinear (per tensor or per axis) and DynamicQuantizeLinear,
portable C. Scales and zero points are read from their tensors at run time, so the scale
a DynamicQuantizeLinear computes can feed a DequantizeLinear."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, i64, schema
from ...ir import Graph, Op
from ...ir.quant import QRANGE, check_scale, check_zero_point, operand
from ..data.narrow_types import NARROW_INTS, TABLE_FLOATS, is_narrow
from ..registry import implements
from . import quantize_narrow
from .requant import CTYPE, ROUND_AWAY, ROUND_EVEN, SHORT, rounding_of, to_output_steps

AXIS_PARAMS = schema(i64("OUTER", "elements before the axis (product)"),
                     i32("C", "extent of the axis"),
                     i64("INNER", "elements after the axis (product)"))
FLAT_PARAMS = schema(i64("n", "elements"))
QUANTIZABLE = ("int8", "uint8", "int16", "uint16")
DEQUANTIZABLE = ("int8", "uint8", "int32", "int16", "uint16") + NARROW_INTS + tuple(TABLE_FLOATS)


BLOCK_PARAMS = schema(i64("OUTER", "elements before the axis (product)"),
                      i32("C", "extent of the axis"),
                      i64("INNER", "elements after the axis (product)"),
                      i32("BS", "block size along the axis"),
                      i32("CB", "blocks along the axis (the scale's extent there)"))


def _block_split(op: Op, graph: Graph, shape, scale_name: str):
    """(outer, C, inner, block size, blocks) of a blocked scale (block_size > 0): the scale
    has the data's shape except ceil(C / block size) along the axis."""
    bs = int(op.attrs["block_size"])
    rank = len(shape)
    sshape = tuple(graph.tensors[scale_name].shape)
    axis = int(op.attrs.get("axis", 1))
    if not -rank <= axis < rank:
        raise graph.error(f"axis {axis} is out of range for rank {rank}", op)
    axis %= rank
    cb = -(-shape[axis] // bs)
    if bs < 1 or sshape != tuple(shape[:axis]) + (cb,) + tuple(shape[axis + 1:]):
        raise graph.error(f"a scale of shape {list(sshape)} does not block the data "
                          f"{list(shape)} by {bs} along axis {axis}", op)
    outer = inner = 1
    for d in shape[:axis]:
        outer *= d
    for d in shape[axis + 1:]:
        inner *= d
    return outer, shape[axis], inner, bs, cb


def _axis_split(op: Op, graph: Graph, shape, scale_name: str):
    """(outer, C, inner, per_axis) of a per-tensor or per-axis scale over `shape`."""
    if op.attrs.get("block_size"):
        raise graph.error("blocked quantization (block_size) of this type is not supported "
                          "(int8, uint8, int16, uint16 and int32 are)", op)
    n_scale = graph.tensors[scale_name].numel
    rank = len(shape)
    if n_scale == 1 and len(graph.tensors[scale_name].shape) <= 1:
        total = 1
        for d in shape:
            total *= d
        # one run of every element: the inner loop is the one the C compiler vectorises
        return 1, 1, total, False
    axis = int(op.attrs.get("axis", 1))
    if not -rank <= axis < rank:
        raise graph.error(f"axis {axis} is out of range for rank {rank}", op)
    axis %= rank
    if n_scale != shape[axis]:
        raise graph.error(f"the scale has {n_scale} values, but axis {axis} has extent "
                          f"{shape[axis]}", op)
    outer = inner = 1
    for d in shape[:axis]:
        outer *= d
    for d in shape[axis + 1:]:
        inner *= d
    return outer, shape[axis], inner, True


@implements("QuantizeLinear", dtypes=("float32",))
def lower_quantize(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if is_narrow(y.dtype) and y.dtype in DEQUANTIZABLE:  # int4, float8...
        return quantize_narrow.quantize(
            op, graph, _axis_split(op, graph, x.shape, op.inputs[1]), AXIS_PARAMS)
    if y.dtype not in QUANTIZABLE:
        raise graph.error(f"quantizing to {y.dtype} is not supported ({', '.join(QUANTIZABLE)} "
                          "and the narrow types are)", op)
    check_scale(graph, op, 1)
    zp = operand(graph, op, 2)
    check_zero_point(graph, op, 2, y.dtype)
    if op.attrs.get("block_size"):
        return _blocked(op, graph, x.shape, y.dtype, quantize=True)
    outer, c, inner, per_axis = _axis_split(op, graph, x.shape, op.inputs[1])
    rounding = rounding_of(op, graph)
    fn = "megcc_qround_even" if rounding == "half_even" else "megcc_qround_away"
    ct = CTYPE[y.dtype]
    lo, hi = QRANGE[y.dtype]
    name = (f"quantize_{SHORT[y.dtype]}{'_axis' if per_axis else ''}"
            f"{'' if zp else '_nozp'}{'' if rounding == 'half_even' else '_away'}")
    zp_expr = f"(int32_t)((const {ct} *)in_ptrs[2])[{'c' if per_axis else '0'}]" if zp else "0"
    # MLAS: v = x / scale (a division), clamped to the range around the zero point, rounded
    body = f"""    const float *x = (const float *)in_ptrs[0];
    const float *sc = (const float *)in_ptrs[1];
    {ct} *y = ({ct} *)out_ptrs[0];
    int64_t o, i;
    int32_t c;
    for (o = 0; o < OUTER; ++o)
        for (c = 0; c < C; ++c) {{
            const float s = sc[{'c' if per_axis else '0'}];
            const int32_t zp = {zp_expr};
            const float lo = (float)({lo} - zp), hi = (float)({hi} - zp);
            for (i = 0; i < INNER; ++i, ++x, ++y)
                *y = ({ct})({fn}({to_output_steps("*x", "s", rounding)}, lo, hi) + zp);
        }}
"""
    helper = ROUND_EVEN if rounding == "half_even" else ROUND_AWAY
    kernel = make_kernel(name, body, AXIS_PARAMS, (helper,))
    return [Instr(kernel, [n for n in op.inputs[:3] if n], [op.outputs[0]],
                  AXIS_PARAMS.pack(OUTER=outer, C=c, INNER=inner))]


@implements("DequantizeLinear", dtypes=DEQUANTIZABLE)
def lower_dequantize(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if is_narrow(x.dtype):  # int4, float8...
        return quantize_narrow.dequantize(
            op, graph, _axis_split(op, graph, x.shape, op.inputs[1]), AXIS_PARAMS)
    if y.dtype != "float32":
        raise graph.error(f"dequantizing to {y.dtype} is not supported (float32 is)", op)
    check_scale(graph, op, 1)
    zp = operand(graph, op, 2)
    check_zero_point(graph, op, 2, x.dtype)
    if op.attrs.get("block_size"):
        return _blocked(op, graph, x.shape, x.dtype, quantize=False)
    outer, c, inner, per_axis = _axis_split(op, graph, x.shape, op.inputs[1])
    ct = CTYPE[x.dtype]
    name = f"dequantize_{SHORT[x.dtype]}{'_axis' if per_axis else ''}{'' if zp else '_nozp'}"
    zp_expr = f"(int32_t)((const {ct} *)in_ptrs[2])[{'c' if per_axis else '0'}]" if zp else "0"
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    const float *sc = (const float *)in_ptrs[1];
    float *y = (float *)out_ptrs[0];
    int64_t o, i;
    int32_t c;
    for (o = 0; o < OUTER; ++o)
        for (c = 0; c < C; ++c) {{
            const float s = sc[{'c' if per_axis else '0'}];
            const int32_t zp = {zp_expr};
            for (i = 0; i < INNER; ++i, ++x, ++y) *y = (float)((int32_t)*x - zp) * s;
        }}
"""
    kernel = make_kernel(name, body, AXIS_PARAMS)
    return [Instr(kernel, [n for n in op.inputs[:3] if n], [op.outputs[0]],
                  AXIS_PARAMS.pack(OUTER=outer, C=c, INNER=inner))]


def _blocked(op: Op, graph: Graph, shape, qtype: str, quantize: bool):
    """Blocked (de)quantization: element (o, c, i) uses scale and zero point
    (o, c / BS, i). Quantizing rounds half to even, like the per-axis kernel."""
    outer, c, inner, bs, cb = _block_split(op, graph, shape, op.inputs[1])
    zp = operand(graph, op, 2)
    ct = CTYPE[qtype]
    lo, hi = QRANGE[qtype]
    zp_v = f"(int32_t)((const {ct} *)in_ptrs[2])[k]" if zp else "0"
    if quantize:
        if rounding_of(op, graph) != "half_even":
            raise graph.error("blocked quantization rounds half to even only", op)
        head = f"""    const float *x = (const float *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];"""
        step = (f"*y = ({ct})(megcc_qround_even(*x / sc[k], (float)({lo} - zp), "
                f"(float)({hi} - zp)) + zp);")
        helpers = (ROUND_EVEN,)
    else:
        head = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];"""
        step = "*y = (float)((int32_t)*x - zp) * sc[k];"
        helpers = ()
    body = f"""{head}
    const float *sc = (const float *)in_ptrs[1];
    int64_t o, i;
    int32_t c;
    for (o = 0; o < OUTER; ++o)
        for (c = 0; c < C; ++c)
            for (i = 0; i < INNER; ++i, ++x, ++y) {{
                const int64_t k = (o * CB + c / BS) * INNER + i;
                const int32_t zp = {zp_v};
                {step}
            }}
"""
    name = (f"{'quantize' if quantize else 'dequantize'}_{SHORT[qtype]}_blocked"
            f"{'' if zp else '_nozp'}")
    kernel = make_kernel(name, body, BLOCK_PARAMS, helpers)
    return [Instr(kernel, [n for n in op.inputs[:3] if n], [op.outputs[0]],
                  BLOCK_PARAMS.pack(OUTER=outer, C=c, INNER=inner, BS=bs, CB=cb),
                  note=f"blocks of {bs}")]


@implements("DynamicQuantizeLinear", dtypes=("float32",))
def lower_dynamic_quantize(op: Op, graph: Graph):
    """uint8 with the scale and zero point of the tensor's range (widened to hold 0), as
    onnxruntime: scale = (max - min) / 255, zp = round(clamp(-min / scale, 0, 255))."""
    x = graph.tensors[op.inputs[0]]
    body = """    const float *x = (const float *)in_ptrs[0];
    uint8_t *y = (uint8_t *)out_ptrs[0];
    float *y_scale = (float *)out_ptrs[1];
    uint8_t *y_zp = (uint8_t *)out_ptrs[2];
    float mn = n > 0 ? x[0] : 0.0f, mx = mn, scale, zpf, lo, hi;
    int32_t zp;
    int64_t i;
    for (i = 1; i < n; ++i) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    mn = mn < 0.0f ? mn : 0.0f;
    mx = mx > 0.0f ? mx : 0.0f;
    scale = mx == mn ? 1.0f : (mx - mn) / 255.0f;
    zpf = 0.0f - mn / scale;
    zp = megcc_qround_even(zpf, 0.0f, 255.0f);
    lo = (float)(0 - zp);
    hi = (float)(255 - zp);
    for (i = 0; i < n; ++i) y[i] = (uint8_t)(megcc_qround_even(x[i] / scale, lo, hi) + zp);
    *y_scale = scale;
    *y_zp = (uint8_t)zp;
"""
    kernel = make_kernel("dynamic_quantize_u8", body, FLAT_PARAMS, (ROUND_EVEN,))
    return [Instr(kernel, [op.inputs[0]], list(op.outputs), FLAT_PARAMS.pack(n=x.numel))]
