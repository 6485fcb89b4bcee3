"""Reshape, Expand, Tile and ConstantOfShape whose shape operand is computed at run time.

Each output extent is a *shape value symbol* (ir/value_shapes.py, docs/dynamic-shapes.md
"Computed shapes"): the kernel applies ONNX's rules to the shape tensor, writes the output
extents into its count output (one int64 per output axis), which the runtime reads right
after the call, and fills the output. The output buffer is placed at a byte cap (`cap`
param): a result larger than that is written as extents only, nothing past the buffer,
and the runtime refuses it ("needs N bytes, more than the M placed for it"). A shape that
ONNX's rules reject (two -1s in a Reshape, a count that does not divide, an extent that
does not broadcast, a negative extent) is written as -1 in every extent: the runtime's
range check refuses it naming the node (the symbols are named after it).

The output is written contiguously by one odometer over the output axes, the input read at
per-axis strides computed at run time (0 where broadcast or repeated).
"""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, schema, table
from ...ir import Graph, Op, itemsize, numpy_dtype
from ...ir.symbolic import Sym
from ...ir.value_shapes import byte_cap
from ..registry import implements

UINT_OF_SIZE = {1: "uint8_t", 2: "uint16_t", 4: "uint32_t", 8: "uint64_t"}

# How each op turns the shape tensor `sv` into the output extents `od[k]` and the input
# stride per output axis `rs[k]` (in elements; `ist` are the input's own strides, `id` its
# extents aligned to the output's rank). `bad` marks an invalid shape.
_RESOLVE = {
    "Reshape": """    {
        int32_t neg = -1;
        int64_t known = 1;
        for (k = 0; k < R; ++k) {
            int64_t v = sv[k];
            if (v == 0 && !allowzero) v = k < in_rank ? in_dims[k] : -2;
            if (v == -1) {
                if (neg >= 0) bad = 1;
                neg = k;
                od[k] = 1;
                continue;
            }
            if (v < 0 || v > 0x7FFFFFFF) { bad = 1; v = 0; }
            od[k] = v;
            if (known > 0 && v > (int64_t)0x7FFFFFFFFFFFFFFFll / known) bad = 1;
            else known *= v;
        }
        if (neg >= 0) {
            if (known == 0 || numel_in % known) bad = 1;
            else od[neg] = numel_in / known;
        } else if (known != numel_in) {
            bad = 1;
        }
        for (k = R - 1, acc = 1; k >= 0; --k) { rs[k] = acc; acc *= bad ? 1 : od[k]; }
    }
""",
    "Expand": """    for (k = 0; k < R; ++k) {
        const int64_t x = id[k], s = k < R - n_shape ? 1 : sv[k - (R - n_shape)];
        if (s < 0) bad = 1;
        if (x == s || s == 1) od[k] = x;
        else if (x == 1) od[k] = s;
        else { bad = 1; od[k] = 0; }
        rs[k] = x == 1 ? 0 : ist[k];
    }
""",
    "Tile": """    for (k = 0; k < R; ++k) {
        const int64_t v = sv[k];
        if (v < 0 || (v > 0 && id[k] > 0x7FFFFFFF / v)) { bad = 1; od[k] = 0; }
        else od[k] = id[k] * v;
        rs[k] = ist[k];
    }
""",
    "ConstantOfShape": """    for (k = 0; k < R; ++k) {
        const int64_t v = sv[k];
        if (v < 0 || v > 0x7FFFFFFF) { bad = 1; od[k] = 0; } else od[k] = v;
        rs[k] = 0;
    }
""",
}


def _params(rank_out: int, rank_in: int):
    return schema(i32("cap", "bytes placed for the output (its byte cap)"),
                  i32("in_rank", "input rank"),
                  i32("n_shape", "elements of the shape operand"),
                  i32("allowzero", "Reshape: a 0 is a zero extent, not a copied one"),
                  table("in_dims", max(rank_in, 1), "input extents"),
                  table("fill", 2, "ConstantOfShape: the value's bytes (zero-extended)"))


def computed_shape_instr(op: Op, graph: Graph) -> Instr:
    """The one instruction computing `op` (Reshape/Expand/Tile/ConstantOfShape) with a
    computed shape operand."""
    y = graph.tensors[op.outputs[0]]
    R = len(y.shape)
    esize = itemsize(y.dtype)
    ct = UINT_OF_SIZE[esize]
    if op.type == "ConstantOfShape":
        shape_in, x_dims, data_in = op.inputs[0], [], ""
    else:
        shape_in, data_in = op.inputs[1], op.inputs[0]
        x_dims = list(graph.tensors[data_in].shape)
    rank_in = len(x_dims)
    n_shape = graph.tensors[shape_in].shape[0]
    fill = [0, 0]
    if op.type == "ConstantOfShape" and op.attrs.get("value") is not None:
        from onnx import numpy_helper

        raw = np.zeros(8, np.uint8)
        v = numpy_helper.to_array(op.attrs["value"]).astype(numpy_dtype(y.dtype)).reshape(-1)
        raw[:esize] = np.frombuffer(v[:1].tobytes(), np.uint8)
        fill = np.frombuffer(raw.tobytes(), "<i4").tolist()
    # input extents aligned to the output's rank (Expand pads with leading 1s)
    pad = R - rank_in if op.type == "Expand" else 0
    m = max(R, rank_in, 1)
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    const int64_t *sv = (const int64_t *)in_ptrs[{0 if op.type == "ConstantOfShape" else 1}];
    {ct} *y = ({ct} *)out_ptrs[0];
    int64_t *count = (int64_t *)out_ptrs[1];
    int64_t od[{m}], rs[{m}], id[{m}], ist[{m}], acc, rows = 1, r, n, s, off = 0, total = 1;
    int64_t numel_in = 1;
    const int32_t R = {R};
    int32_t k, j, idx[{m}], bad = 0;
    {ct} v0;
    memcpy(&v0, fill, sizeof v0);
    for (k = 0; k < {m}; ++k) {{ id[k] = 1; idx[k] = 0; }}
    for (k = 0; k < in_rank; ++k) {{
        id[k + {pad}] = in_dims[k];
        numel_in *= in_dims[k];
    }}
    for (k = {m} - 1, acc = 1; k >= 0; --k) {{ ist[k] = acc; acc *= id[k]; }}
{_RESOLVE[op.type]}"""
    body += f"""    for (k = 0; k < {R}; ++k) {{
        count[k] = bad ? -1 : od[k]; /* the runtime refuses -1, naming the node */
        if (!bad && od[k] && total > 0x7FFFFFFFFFFFFFFFll / od[k]) total = 0x7FFFFFFFFFFFFFFFll;
        else total *= bad ? 0 : od[k];
    }}
    if (bad) return BAD_RETURN;
    if (total == 0) return 0;
    if (total > (int64_t)cap / {esize}) return 0; /* over the byte cap: refused */
    (void)x; (void)v0;
    for (k = 0; k < {R} - 1; ++k) rows *= od[k];
    n = od[{R} - 1];
    s = rs[{R} - 1];
    for (r = 0; r < rows; ++r, y += n) {{
"""
    if op.type == "ConstantOfShape":
        body += "        for (j = 0; j < n; ++j) y[j] = v0;\n"
    elif op.type == "Tile":  # the input row repeats: index modulo its extent
        body += f"""        const int64_t w = id[{R} - 1];
        for (j = 0; j < n; ++j) y[j] = x[off + (int64_t)(j % w) * s];
"""
    else:
        body += """        if (s == 1) memcpy(y, x + off, sizeof(*y) * (size_t)n);
        else for (j = 0; j < n; ++j) y[j] = x[off + (int64_t)j * s];
"""
    wrap = "idx[k] % id[k]" if op.type == "Tile" else "idx[k]"
    body += f"""        for (k = {R} - 2; k >= 0; --k) {{
            if (++idx[k] < od[k]) break;
            idx[k] = 0;
        }}
        for (k = 0, off = 0; k < {R} - 1; ++k) off += (int64_t)({wrap}) * rs[k];
    }}
"""
    if R == 0:
        raise graph.error("a computed shape of rank 0", op)
    # with no extent left to compute (an Expand whose input fixes them all) no count is read:
    # an invalid shape fails the kernel itself
    checked = not any(isinstance(d, Sym) for d in y.shape)
    body = body.replace("BAD_RETURN", "-1" if checked else "0")
    params = _params(R, rank_in)
    name = f"{op.type.lower()}_computed_r{R}_i{rank_in}_e{esize}" + ("_chk" if checked else "")
    kernel = make_kernel(name, body, params, prelude="#include <string.h>\n")
    cap = y.nbytes if checked else byte_cap(graph, op.outputs[0])
    packed = params.pack(cap=cap, in_rank=rank_in, n_shape=n_shape,
                         allowzero=int(op.attrs.get("allowzero", 0)),
                         in_dims=x_dims or [1], fill=fill)
    inputs = [shape_in] if op.type == "ConstantOfShape" else [data_in, shape_in]
    return Instr(kernel, inputs, list(op.outputs[:2]), packed,
                 note=f"shape computed, cap {cap} bytes")


@implements("ConstantOfShape")
def lower_constant_of_shape(op: Op, graph: Graph):
    """Only reached with a computed shape (a constant one folds)."""
    return [computed_shape_instr(op, graph)]


