"""Ops whose output length is computed by the kernel: NonZero, Range with run-time operands.

Each writes its element count into an extra int64 output (`<output>:count`,
ir/value_shapes.py); the runtime reads it right after the call and recomputes the sizes
that depend on it (docs/dynamic-shapes.md, "Value symbols"). The main output's storage is
placed for the count's cap, so the kernel only has to check the count against the cap
given as a param (a count above it fails the kernel rather than writing past its output).
"""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel, numel
from ...codegen.params import i32, schema, table
from ...ir import Graph, Op, c_type
from ...ir.value_shapes import RANGE_DTYPES
from ..registry import implements

MAX_RANK = 8

# How each dtype tests "non-zero" (float16/bfloat16 are stored as their bits: +-0 is zero).
_NONZERO = {"float32": "x[i] != 0.0f", "float64": "x[i] != 0.0",
            "float16": "(x[i] & 0x7FFFu) != 0", "bfloat16": "(x[i] & 0x7FFFu) != 0"}
NONZERO_TYPES = ("float32", "float64", "float16", "bfloat16", "int8", "int16", "int32",
                 "int64", "uint8", "uint16", "uint32", "uint64", "bool")

NONZERO_PARAMS = schema(i32("n", "input elements"), i32("cap", "most indices the output holds"),
                        i32("rank", "input rank"), table("dims", "rank", "input extents"))


@implements("NonZero", dtypes=NONZERO_TYPES)
def lower_nonzero(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    if x.dtype not in NONZERO_TYPES:
        raise graph.error(f"NonZero on {x.dtype} is not supported", op)
    if len(x.shape) > MAX_RANK:
        raise graph.error(f"NonZero of rank {len(x.shape)} (at most {MAX_RANK})", op)
    test = _NONZERO.get(x.dtype, "x[i] != 0")
    name = f"nonzero_{x.dtype}"
    # Two passes: the count first (the output's row stride), then the coordinates.
    body = f"""    const {c_type(x.dtype)} *x = (const {c_type(x.dtype)} *)in_ptrs[0];
    int64_t *y = (int64_t *)out_ptrs[0];
    int64_t *count = (int64_t *)out_ptrs[1];
    int64_t total = 0, k = 0, i;
    int32_t r;
    for (i = 0; i < n; ++i)
        if ({test}) ++total;
    *count = total;
    if (total > cap) return 0; /* the runtime refuses the count: above its cap */
    for (i = 0; i < n; ++i) {{
        int64_t rest = i;
        if (!({test})) continue;
        for (r = rank - 1; r >= 0; --r) {{
            y[(int64_t)r * total + k] = rest % dims[r];
            rest /= dims[r];
        }}
        ++k;
    }}
"""
    kernel = make_kernel(name, body, NONZERO_PARAMS)
    cap = graph.tensors[op.outputs[0]].shape[1]
    params = NONZERO_PARAMS.pack(n=numel(x.shape), cap=_cap_of(graph, cap),
                                 rank=len(x.shape), dims=list(x.shape))
    return [Instr(kernel, [op.inputs[0]], list(op.outputs[:2]), params)]


def _cap_of(graph: Graph, n) -> object:
    """The cap of value symbol `n` as the instruction's param (an expression of the input
    symbols, re-evaluated with the shapes, never of `n` itself)."""
    name = next(iter(n.symbols))
    return graph.value_symbols[name][2]


RANGE_TYPES = RANGE_DTYPES
RANGE_PARAMS = schema(i32("cap", "most elements the output holds"))


@implements("Range", dtypes=RANGE_TYPES)
def lower_range(op: Op, graph: Graph):
    t = graph.tensors[op.inputs[0]].dtype
    if t not in RANGE_TYPES:
        raise graph.error(f"Range on {t} is not supported", op)
    ct = c_type(t)
    # ONNX: n = max(ceil((limit - start) / delta), 0), element i = start + i * delta
    if t in ("float32", "float64"):
        length = f"""    double len = ceil(((double)limit - (double)start) / (double)delta);
    if (!(len > 0)) len = 0; /* NaN and negative: empty */
    if (len > (double)cap) {{ *count = (int64_t)cap + 1; return 0; }} /* refused */
    n = (int64_t)len;"""
    else:
        length = f"""    int64_t d = (int64_t)limit - (int64_t)start;
    if (delta == 0) return -1;
    n = d / (int64_t)delta;
    if (n * (int64_t)delta != d && ((d > 0) == (delta > 0))) ++n; /* ceil */
    if (n < 0) n = 0;
    if (n > cap) {{ *count = n; return 0; }} /* the runtime refuses it */"""
    body = f"""    const {ct} start = *(const {ct} *)in_ptrs[0];
    const {ct} limit = *(const {ct} *)in_ptrs[1];
    const {ct} delta = *(const {ct} *)in_ptrs[2];
    {ct} *y = ({ct} *)out_ptrs[0];
    int64_t *count = (int64_t *)out_ptrs[1];
    int64_t n, i;
{length}
    *count = n;
    for (i = 0; i < n; ++i) y[i] = ({ct})(start + ({ct})i * delta);
"""
    kernel = make_kernel(f"range_{t}", body, RANGE_PARAMS, prelude="#include <math.h>\n")
    n = graph.tensors[op.outputs[0]].shape[0]
    return [Instr(kernel, list(op.inputs[:3]), list(op.outputs[:2]),
                  RANGE_PARAMS.pack(cap=_cap_of(graph, n)))]
