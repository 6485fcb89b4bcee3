"""More NN layers: LpNormalization, EyeLike-style constants, MaxUnpool.

(Ops that ONNX defines as functions - RMSNormalization, GroupNormalization, Attention,
the losses, ... - need no kernel: the compiler expands them, see ir/functions.py.)
"""
from __future__ import annotations

from ..ir import Graph, Op, c_type
from .base import Instr, Kernel, kernel_source, lowers, numel
from .data_movement import norm_axis


@lowers("LpNormalization")
def lower_lp_normalization(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    if x.dtype != "float32":
        raise graph.error(f"LpNormalization on {x.dtype} is not supported (float32 is)", op)
    axis = norm_axis(int(op.attrs.get("axis", -1)), len(x.shape), op, graph)
    p_norm = int(op.attrs.get("p", 2))
    if p_norm not in (1, 2):
        raise graph.error(f"p={p_norm} is not supported (1 and 2 are)", op)
    outer, red, inner = numel(x.shape[:axis]), x.shape[axis], numel(x.shape[axis + 1:])
    term = "fabs(v)" if p_norm == 1 else "v * v"
    fin = "s" if p_norm == 1 else "sqrt(s)"
    name = f"lp_normalization_p{p_norm}_f32"
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const int32_t outer = p[0], red = p[1], inner = p[2];
    int32_t o, r, j;
    for (o = 0; o < outer; ++o)
        for (j = 0; j < inner; ++j) {{
            const int64_t base = (int64_t)o * red * inner + j;
            double s = 0.0, n;
            for (r = 0; r < red; ++r) {{ const double v = x[base + (int64_t)r * inner]; s += {term}; }}
            n = {fin};
            for (r = 0; r < red; ++r)
                y[base + (int64_t)r * inner] = n == 0.0 ? 0.0f : (float)(x[base + (int64_t)r * inner] / n);
        }}
"""
    kernel = Kernel(name, kernel_source(name, body))
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], [outer, red, inner],
                  note=f"axis={axis}")]


@lowers("MaxUnpool")
def lower_max_unpool(op: Op, graph: Graph):
    x, ind, y = (graph.tensors[n] for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if ind.dtype != "int64":
        raise graph.error(f"indices of dtype {ind.dtype} are not supported (int64 is)", op)
    ks = list(op.attrs["kernel_shape"])
    r = len(ks)
    st = list(op.attrs.get("strides", [1] * r))
    pads = list(op.attrs.get("pads", [0] * 2 * r))
    # Indices count positions in the tensor MaxPool saw (the inferred shape); an explicit
    # output_shape only pads that tensor at the end of each axis.
    inferred = list(x.shape[:2]) + [(x.shape[2 + d] - 1) * st[d] - pads[d] - pads[r + d] + ks[d]
                                    for d in range(r)]
    if len(y.shape) != len(inferred) or any(o < i for o, i in zip(y.shape, inferred)):
        raise graph.error(f"output shape {list(y.shape)} is smaller than {inferred}", op)
    rank = len(inferred)
    out_st = [1] * rank
    for d in range(rank - 2, -1, -1):
        out_st[d] = out_st[d + 1] * y.shape[d + 1]
    ct = c_type(x.dtype)
    name = f"max_unpool_{x.dtype}"
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    const int64_t *ind = (const int64_t *)in_ptrs[1];
    {ct} *y = ({ct} *)out_ptrs[0];
    const int32_t rank = p[0], *inf = p + 1, *ost = p + 1 + rank;
    const int64_t n_in = p[1 + 2 * rank], n_out = p[2 + 2 * rank];
    int64_t i, n_inf = 1;
    int32_t d;
    for (d = 0; d < rank; ++d) n_inf *= inf[d];
    for (i = 0; i < n_out; ++i) y[i] = 0;
    for (i = 0; i < n_in; ++i) {{
        int64_t k = ind[i], off = 0;
        if (k < 0 || k >= n_inf) return -1;
        for (d = rank - 1; d >= 0; --d) {{ off += (k % inf[d]) * ost[d]; k /= inf[d]; }}
        y[off] = x[i];
    }}
"""
    kernel = Kernel(name, kernel_source(name, body))
    return [Instr(kernel, [op.inputs[0], op.inputs[1]], [op.outputs[0]],
                  [rank] + inferred + out_st + [x.numel, y.numel])]
