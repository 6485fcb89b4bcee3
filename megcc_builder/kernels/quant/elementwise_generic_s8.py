"""QLinearAdd / QLinearMul with numpy broadcasting, look-up-table unary ops
(QLinearSigmoid, QLinearLeakyRelu) and QLinearConcat, portable C.

QLinearAdd reproduces onnxruntime's AVX2 kernel (MlasQLinearAddKernelAvx2Helper, as
built: GCC contracts its scalar and vector multiply-adds into FMAs) and its broadcast
helper; see add_fixed_setup. QLinearMul is MLAS's: float((a - za)(b - zb)) * (sa*sb/sc) + zc.
Both round ties-to-even and saturate."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, i64, schema, table
from ...ir import Graph, Op
from ...isa import IsaSpec
from ...ir.quant import QRANGE, check_scale, check_zero_point, const_value, operand
from ..data.copy_generic import norm_axis
from ..elementwise.generic import broadcast_strides, collapse
from ..registry import implements
from .lut import build_table, identity, leaky_relu, mlas_logistic
from .requant import CTYPE, ROUND_AWAY, ROUND_EVEN, SHORT, rounding_of

QTYPES = ("int8", "uint8")


def _broadcast_loop(rank: int, body: str) -> str:
    """The loop of a binary kernel over the output: the outer axes by an odometer, the
    innermost run of n_in elements (A/B offsets ia/ib, output index i) with `body`. The
    run is emitted once per stride pattern (both operands contiguous, one of them one
    value per run, general) so that the common ones have unit or zero strides the C
    compiler can vectorise; each computes exactly `body`."""
    def run(ia: str, ib: str) -> str:
        return f"""for (j = 0; j < n_in; ++j) {{
            const int64_t i = i0 + j, ia = {ia}, ib = {ib};
            {body}
        }}"""
    return outer_axes_loop(rank, f"""        if (sa_in == 1 && sb_in == 1) {{
            {run("ia0 + j", "ib0 + j")}
        }} else if (sa_in == 1 && sb_in == 0) {{
            {run("ia0 + j", "ib0")}
        }} else if (sa_in == 0 && sb_in == 1) {{
            {run("ia0", "ib0 + j")}
        }} else {{
            {run("ia0 + (int64_t)j * sa_in", "ib0 + (int64_t)j * sb_in")}
        }}""")


def outer_axes_loop(rank: int, runs: str) -> str:
    """The row loop of a binary kernel: `runs` (the innermost run of n_in elements, one
    branch per stride pattern) for each row, the outer axes advanced by an odometer."""
    return f"""    int32_t idx[{rank}] = {{0}};
    int64_t ia0 = 0, ib0 = 0, i0 = 0, rows = 1, row;
    int32_t d, j;
    const int32_t n_in = dims[{rank - 1}], sa_in = sta[{rank - 1}], sb_in = stb[{rank - 1}];
    for (d = 0; d < {rank - 1}; ++d) rows *= dims[d];
    for (row = 0; row < rows; ++row, i0 += n_in) {{
{runs}
        for (d = {rank - 2}; d >= 0; --d) {{  /* the odometer over the outer axes */
            ia0 += sta[d];
            ib0 += stb[d];
            if (++idx[d] < dims[d]) break;
            ia0 -= (int64_t)dims[d] * sta[d];
            ib0 -= (int64_t)dims[d] * stb[d];
            idx[d] = 0;
        }}
    }}
"""


def _broadcast_params(rank: int):
    return schema(table("dims", rank, "output extents (collapsed)"),
                  table("sta", rank, "A element strides (0: broadcast)"),
                  table("stb", rank, "B element strides (0: broadcast)"))

def _scalar(graph: Graph, op: Op, index: int, what: str):
    v = const_value(graph, op, index, what)
    return None if v is None else v.reshape(-1)[0]


def _check_binary(op: Op, graph: Graph):
    a, b, c = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[3]], \
        graph.tensors[op.outputs[0]]
    if a.dtype != b.dtype or a.dtype != c.dtype:
        raise graph.error(f"A, B and C must have one dtype (have {a.dtype}, {b.dtype}, "
                          f"{c.dtype})", op)
    for k, what in ((1, "A_scale"), (4, "B_scale"), (6, "C_scale")):
        check_scale(graph, op, k, what)
        if graph.tensors[op.inputs[k]].numel != 1:
            raise graph.error(f"{what} must be one value (per-tensor)", op)
    for k, what in ((2, "A_zero_point"), (5, "B_zero_point"), (7, "C_zero_point")):
        check_zero_point(graph, op, k, a.dtype, what)
    return a, b, c


def binary_operands(op: Op, graph: Graph, ct: str):
    """The kernel's inputs (a, b, a_scale, a_zp?, b_scale, b_zp?, c_scale, c_zp?), the
    in_ptrs position of each present one by its op input index, and a C expression of zero
    point k (0 when absent)."""
    names = [op.inputs[0], op.inputs[3], op.inputs[1], operand(graph, op, 2),
             op.inputs[4], operand(graph, op, 5), op.inputs[6], operand(graph, op, 7)]
    ins = [n for n in names if n]
    pos = {k: sum(1 for n in names[:k] if n) for k, n in enumerate(names) if n}
    zp = lambda k: f"(int32_t)*(const {ct} *)in_ptrs[{pos[k]}]" if k in pos else "0"  # noqa
    return ins, pos, zp


def onnxruntime_form(op: Op) -> bool:
    """Whether QLinearAdd/Mul computes onnxruntime's formula (no activation, ties to even);
    else MegEngine's float form (_lower_binary_generic)."""
    return not op.attrs.get("activation") and op.attrs.get("rounding", "half_even") == "half_even"


def portable_cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # scalar convert, multiply-adds, clamp and magic-number rounding per element
    return 6.0 * graph.tensors[op.outputs[0]].numel


@implements("QLinearAdd", "QLinearMul", dtypes=QTYPES, typed_inputs=(0, 3),
            cost=portable_cost)
def lower_qlinear_binary(op: Op, graph: Graph):
    a, b, c = _check_binary(op, graph)
    if op.attrs.get("requant") == "fixed":
        return _lower_binary_fixed(op, graph, a, b, c)
    if not onnxruntime_form(op):
        return _lower_binary_generic(op, graph, a, b, c)
    dims, (sa, sb) = collapse(list(c.shape), [broadcast_strides(a.shape, c.shape),
                                              broadcast_strides(b.shape, c.shape)])
    rank = len(dims)
    ct = CTYPE[c.dtype]
    lo, hi = QRANGE[c.dtype]
    ins, pos, zp = binary_operands(op, graph, ct)
    if op.type == "QLinearAdd":
        tag = "sa" if sa[-1] == 0 else ("sb" if sb[-1] == 0 else "vv")
        setup = add_fixed_setup(tag)
        compute = f"""const float fa = (float)(int32_t)a[ia], fb = (float)(int32_t)b[ib];
                const float v = {ADD_VALUE[tag]};"""
    else:
        setup = "const float ratio = sa * sb / sc;"
        compute = """const int32_t prod = ((int32_t)a[ia] - za) * ((int32_t)b[ib] - zb);
                float v = (float)prod * ratio;
                v = v + (float)zc;"""
        tag = "mul"
    loop_body = f"""{{
                {compute}
                y[i] = ({ct})megcc_qround_even(v, {lo}.0f, {hi}.0f);
            }}"""
    body = f"""    const {ct} *a = (const {ct} *)in_ptrs[0];
    const {ct} *b = (const {ct} *)in_ptrs[1];
    {ct} *y = ({ct} *)out_ptrs[0];
    const float sa = *(const float *)in_ptrs[{pos[2]}];
    const float sb = *(const float *)in_ptrs[{pos[4]}];
    const float sc = *(const float *)in_ptrs[{pos[6]}];
    const int32_t za = {zp(3)}, zb = {zp(5)}, zc = {zp(7)};
    {setup}
{_broadcast_loop(rank, loop_body)}"""
    params = _broadcast_params(rank)
    name = f"qlinear_{'add' if op.type == 'QLinearAdd' else 'mul'}_{SHORT[c.dtype]}_{tag}_r{rank}" \
        + "".join("" if k in pos else f"_noz{k}" for k in (3, 5, 7))
    kernel = make_kernel(name, body, params, (ROUND_EVEN,))
    return [Instr(kernel, ins, [op.outputs[0]], params.pack(dims=dims, sta=sa, stb=sb),
                  note="int8 element-wise (onnxruntime's formula)")]


# onnxruntime's QLinearAdd (qlinear_binary_op.cc + MLAS's AVX2 kernel, compiled with FMA
# contraction; checked exhaustively, all 256 x 256 code pairs, against onnxruntime 1.23 on
# x86-64): when A is one value per innermost run ("sa") the broadcast helper swaps the
# operands, so that MLAS's span operand X is always the running one and Y the other:
#   fixed = zc - fma(rxc, zx, ryc * zy)      (the C++ `rxc*zx + ryc*zy`, contracted)
#   run   = fma(y, ryc, fixed)               (a per-run Y: `fixed + y*ryc`, contracted)
#   v     = fma(x, rxc, run)                 (same shape: run = fma(y, ryc, fixed) per element)
# so "sb" and "vv" compute the same expression, and "sa" the one with a and b exchanged.
_XY = {"sa": ("rbc", "zb", "rac", "za"), "sb": ("rac", "za", "rbc", "zb"),
       "vv": ("rac", "za", "rbc", "zb")}
ADD_VALUE = {"sa": "fmaf(fb, rbc, fmaf(fa, rac, fixed))",
             "sb": "fmaf(fa, rac, fmaf(fb, rbc, fixed))",
             "vv": "fmaf(fa, rac, fmaf(fb, rbc, fixed))"}


def add_fixed_setup(tag: str) -> str:
    """C statements defining rac, rbc and onnxruntime's constant part `fixed` of an Add
    kernel of pattern `tag` (sa / sb / vv: the operand that is one value per run)."""
    rx, zx, ry, zy = _XY[tag]
    return f"""const float rac = sa / sc, rbc = sb / sc;
    const float fixed = (float)zc - fmaf({rx}, (float){zx}, {ry} * (float){zy});"""


def add_run_constant(tag: str, code: str) -> str:
    """C expression: the per-run constant of an Add whose operand of pattern `tag`
    (sa / sb) is one value `code` per run: onnxruntime's fma(y, ryc, fixed)."""
    r = "rac" if tag == "sa" else "rbc"
    return f"fmaf((float)(int32_t){code}, {r}, fixed)"


def _lower_binary_generic(op: Op, graph: Graph, a, b, c):
    """MegEngine's form (rounding / activation attributes): the real values added or
    multiplied in float, the activation applied, then quantized with the op's rounding."""
    from .requant import Requant, to_output_steps

    rq = Requant(op, graph, c.dtype)
    dims, (sa, sb) = collapse(list(c.shape), [broadcast_strides(a.shape, c.shape),
                                              broadcast_strides(b.shape, c.shape)])
    rank = len(dims)
    ct = CTYPE[c.dtype]
    names = [op.inputs[0], op.inputs[3], op.inputs[1], operand(graph, op, 2),
             op.inputs[4], operand(graph, op, 5), op.inputs[6], operand(graph, op, 7)]
    ins = [n for n in names if n]
    pos = {k: sum(1 for n in names[:k] if n) for k, n in enumerate(names) if n}
    zp = lambda k: f"(int32_t)*(const {ct} *)in_ptrs[{pos[k]}]" if k in pos else "0"  # noqa
    combine = "ra + rb" if op.type == "QLinearAdd" else "ra * rb"
    real = {"": "r", "Relu": "r", "Clip": "r", "Sigmoid": "megcc_q_sigmoid(r)",
            "HSwish": "megcc_q_hswish(r)", "Tanh": "tanhf(r)"}[rq.activation]
    loop_body = f"""const float ra = (float)((int32_t)a[ia] - za) * sa;
            const float rb = (float)((int32_t)b[ib] - zb) * sb;
            const float r = {combine};
            const float v = {to_output_steps(real, "so", rq.rounding)};
            y[i] = {rq.store("v", "zc")};"""
    body = f"""    const {ct} *a = (const {ct} *)in_ptrs[0];
    const {ct} *b = (const {ct} *)in_ptrs[1];
    {ct} *y = ({ct} *)out_ptrs[0];
    const float sa = *(const float *)in_ptrs[{pos[2]}];
    const float sb = *(const float *)in_ptrs[{pos[4]}];
    const float so = *(const float *)in_ptrs[{pos[6]}];
    const int32_t za = {zp(3)}, zb = {zp(5)}, zc = {zp(7)};
    {rq.setup("zc")}
{_broadcast_loop(rank, loop_body)}"""
    params = _broadcast_params(rank)
    helpers = rq.helpers  # rounding, and the activation's helper
    name = f"qlinear_{'add' if op.type == 'QLinearAdd' else 'mul'}_float_{rq.tag}_r{rank}" \
        + "".join("" if k in pos else f"_noz{k}" for k in (3, 5, 7))
    kernel = make_kernel(name, body, params, helpers)
    return [Instr(kernel, ins, [op.outputs[0]], params.pack(dims=dims, sta=sa, stb=sb),
                  note="int8 element-wise (float, rounding/activation attributes)")]


# --- fixed point (requant="fixed", enable_fixed_point_requant) ------------------------------

def _lower_binary_fixed(op: Op, graph: Graph, a, b, c):
    """Integer-only QLinearAdd / QLinearMul (no float instruction): the Q31 multipliers and
    exponents of fixed_binary_multipliers are kernel parameters; Add rescales each centred
    operand (<< 20) with its own multiplier, sums, and requantizes the sum with the output
    multiplier (one rounding each, ties towards +infinity); Mul requantizes the product of
    the centred operands. Relu / Clip are integer bounds (requant.Requant)."""
    from ...ir.quant import (ADD_LEFT_SHIFT, fixed_binary_multipliers,
                             fixed_binary_problem)
    from .requant import ROUND_Q31, SCALE_Q31, Requant, q31_multipliers

    rq = Requant(op, graph, c.dtype)
    why = fixed_binary_problem(op, graph)
    if why:
        raise graph.error(f"fixed-point requantization: {why}", op)
    rq.set_clip_scale(float(np.asarray(graph.tensors[op.inputs[6]].data).reshape(-1)[0]))
    q = {k: tuple(int(v[0]) for v in q31_multipliers(r))
         for k, r in fixed_binary_multipliers(op, graph).items()}
    dims, (sa, sb) = collapse(list(c.shape), [broadcast_strides(a.shape, c.shape),
                                              broadcast_strides(b.shape, c.shape)])
    rank = len(dims)
    ct = CTYPE[c.dtype]
    ins, pos, zp = binary_operands(op, graph, ct)
    if op.type == "QLinearAdd":
        up = 1 << ADD_LEFT_SHIFT  # a multiplication: << of a negative value is undefined
        value = f"""const int32_t va = megcc_qscale_q31(((int32_t)a[ia] - za) * {up}, qma, qea);
            const int32_t vb = megcc_qscale_q31(((int32_t)b[ib] - zb) * {up}, qmb, qeb);
            const int32_t v = va + vb;"""
        names = ("qma", "qea", "qmb", "qeb", "qmo", "qeo")
        values = dict(qma=q["a"][0], qea=q["a"][1], qmb=q["b"][0], qeb=q["b"][1],
                      qmo=q["o"][0], qeo=q["o"][1])
        helpers = (SCALE_Q31, ROUND_Q31)
    else:
        value = "const int32_t v = ((int32_t)a[ia] - za) * ((int32_t)b[ib] - zb);"
        names = ("qmo", "qeo")
        values = dict(qmo=q["o"][0], qeo=q["o"][1])
        helpers = (ROUND_Q31,)
    loop_body = f"""{value}
            y[i] = ({ct})(megcc_qround_q31(v, qmo, qeo, lo, hi) + zc);"""
    body = f"""    const {ct} *a = (const {ct} *)in_ptrs[0];
    const {ct} *b = (const {ct} *)in_ptrs[1];
    {ct} *y = ({ct} *)out_ptrs[0];
    const int32_t za = {zp(3)}, zb = {zp(5)}, zc = {zp(7)};
    {rq.setup("zc")}
{_broadcast_loop(rank, loop_body)}"""
    params = schema(table("dims", rank, "output extents (collapsed)"),
                    table("sta", rank, "A element strides (0: broadcast)"),
                    table("stb", rank, "B element strides (0: broadcast)"),
                    *[i32(n, "Q31 multiplier" if n[1] == "m" else "its exponent")
                      for n in names])
    name = f"qlinear_{'add' if op.type == 'QLinearAdd' else 'mul'}_{rq.tag}_r{rank}" \
        + "".join("" if k in pos else f"_noz{k}" for k in (3, 5, 7))
    kernel = make_kernel(name, body, params, helpers)
    return [Instr(kernel, ins, [op.outputs[0]],
                  params.pack(dims=dims, sta=sa, stb=sb, **values),
                  note="int8 element-wise (fixed point, Q31 multipliers)")]


# --- look-up tables ----------------------------------------------------------------------

LUT_PARAMS = schema(i64("n", "elements"), table("lut", 256, "output code per input byte"))


def _lut_instr(op: Op, graph: Graph, x_name: str, lut: np.ndarray, note: str) -> Instr:
    x, y = graph.tensors[x_name], graph.tensors[op.outputs[0]]
    xt, yt = CTYPE[x.dtype], CTYPE[y.dtype]
    body = f"""    const uint8_t *x = (const uint8_t *)in_ptrs[0];
    {yt} *y = ({yt} *)out_ptrs[0];
    int64_t i;
    for (i = 0; i < n; ++i) y[i] = ({yt})lut[x[i]];
"""
    kernel = make_kernel(f"qlut_{SHORT[x.dtype]}_to_{SHORT[y.dtype]}", body, LUT_PARAMS)
    return Instr(kernel, [x_name], [op.outputs[0]],
                 LUT_PARAMS.pack(n=x.numel, lut=[int(v) for v in lut]), note=note)


def _unary_params(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    xs = check_scale(graph, op, 1, "X_scale")
    ys = check_scale(graph, op, 3, "Y_scale")
    xz = check_zero_point(graph, op, 2, x.dtype, "X_zero_point")
    yz = check_zero_point(graph, op, 4, y.dtype, "Y_zero_point")
    for k, v in ((1, xs), (3, ys)):
        if v is None:
            raise graph.needs_value(op, op.inputs[k], "the scale of a table-driven op")
    for k in (2, 4):
        if operand(graph, op, k) and not graph.tensors[op.inputs[k]].is_const:
            raise graph.needs_value(op, op.inputs[k], "the zero point of a table-driven op")
    xz = 0 if xz is None else int(xz.reshape(-1)[0])
    yz = 0 if yz is None else int(yz.reshape(-1)[0])
    return x, y, float(xs.reshape(-1)[0]), xz, float(ys.reshape(-1)[0]), yz


@implements("QLinearSigmoid", "QLinearLeakyRelu", dtypes=QTYPES)
def lower_qlinear_lut(op: Op, graph: Graph):
    x, y, xs, xz, ys, yz = _unary_params(op, graph)
    rounding_of(op, graph)
    if op.attrs.get("activation"):
        raise graph.error("an activation attribute is not supported here", op)
    fn = mlas_logistic if op.type == "QLinearSigmoid" else \
        leaky_relu(float(op.attrs.get("alpha", 0.01)))
    lut = build_table(x.dtype, xs, xz, y.dtype, ys, yz, fn)
    return [_lut_instr(op, graph, op.inputs[0], lut, f"{op.type} by a 256-entry table")]


# --- concatenation -----------------------------------------------------------------------

def concat_inputs(op: Op, graph: Graph):
    """Checked QLinearConcat operands: (output dtype, Y_scale, Y_zp, [(X name, whether it is
    copied: the output's dtype, scale and zero point, X_scale, X_zp) per input])."""
    y = graph.tensors[op.outputs[0]]
    ys = check_scale(graph, op, 0, "Y_scale")
    yz = check_zero_point(graph, op, 1, y.dtype, "Y_zero_point")
    if ys is None or (operand(graph, op, 1) and yz is None):
        raise graph.needs_value(op, op.inputs[0], "the output scale")
    ys, yz = float(ys.reshape(-1)[0]), 0 if yz is None else int(yz.reshape(-1)[0])
    if (len(op.inputs) - 2) % 3 or len(op.inputs) < 5:
        raise graph.error("inputs must be Y_scale, Y_zero_point, then (X, X_scale, "
                          "X_zero_point) triples", op)
    parts = []
    for k in range(2, len(op.inputs), 3):
        x = graph.tensors[op.inputs[k]]
        if x.dtype not in QTYPES:
            raise graph.error(f"input '{x.name}' is {x.dtype} (int8, uint8 are)", op)
        xs = check_scale(graph, op, k + 1, "X_scale")
        xz = check_zero_point(graph, op, k + 2, x.dtype, "X_zero_point")
        if xs is None or (operand(graph, op, k + 2) and xz is None):
            raise graph.needs_value(op, op.inputs[k + 1], "an input's scale")
        xs, xz = float(xs.reshape(-1)[0]), 0 if xz is None else int(xz.reshape(-1)[0])
        same = x.dtype == y.dtype and np.float32(xs) == np.float32(ys) and xz == yz
        parts.append((op.inputs[k], same, xs, xz))
    return y.dtype, ys, yz, parts


def concat_cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # a copy, or a table look-up per element
    return sum((0.05 if same else 1.5) * graph.tensors[x].numel
               for x, same, _, _ in concat_inputs(op, graph)[3]) + 20.0


@implements("QLinearConcat", dtypes=QTYPES, typed_inputs=(1,), cost=concat_cost)
def lower_qlinear_concat(op: Op, graph: Graph):
    """Inputs: Y_scale, Y_zp, then (X, X_scale, X_zp) per input. An input with the output's
    scale and zero point is copied; another goes through its requantization table."""
    y = graph.tensors[op.outputs[0]]
    _, ys, yz, parts = concat_inputs(op, graph)
    axis = norm_axis(int(op.attrs["axis"]), len(y.shape), op, graph)
    outer = int(np.prod(y.shape[:axis], dtype=np.int64))
    xs_names, blocks, luts, copy = [], [], [], []
    for name, same, xs, xz in parts:
        x = graph.tensors[name]
        xs_names.append(name)
        blocks.append(int(np.prod(x.shape[axis:], dtype=np.int64)))
        copy.append(same)
        if not same:
            luts.append(build_table(x.dtype, xs, xz, y.dtype, ys, yz, identity))
    yt = CTYPE[y.dtype]
    lines = []
    lut_index = 0
    for j, same in enumerate(copy):
        src = f"(const uint8_t *)in_ptrs[{j}] + (int64_t)o * blk[{j}]"
        if same:
            lines.append(f"        memcpy(y, {src}, (size_t)blk[{j}]);")
        else:
            lines.append(f"        {{ const uint8_t *x = {src};\n"
                         f"          const int32_t *t = lut + {256 * lut_index};\n"
                         f"          for (i = 0; i < blk[{j}]; ++i) y[i] = ({yt})t[x[i]]; }}")
            lut_index += 1
        lines.append(f"        y += blk[{j}];")
    body = f"""    {yt} *y = ({yt} *)out_ptrs[0];
    int64_t o;
    int32_t i;
    for (o = 0; o < OUTER; ++o) {{
{chr(10).join(lines)}
    }}
"""
    params = schema(i64("OUTER", "blocks before the axis"),
                    table("blk", len(copy), "elements per block of each input"),
                    table("lut", 256 * max(1, len(luts)), "requantization tables"))
    pattern = "".join("c" if s else "t" for s in copy)
    kernel = make_kernel(f"qlinear_concat_{SHORT[y.dtype]}_{pattern}", body, params)
    lut_words = [int(v) for t in luts for v in t] or [0] * 256
    return [Instr(kernel, xs_names, [op.outputs[0]],
                  params.pack(OUTER=outer, blk=blocks, lut=lut_words),
                  note="int8 concatenation")]
