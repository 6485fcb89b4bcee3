"""MaxUnpool: scatter pooled values back to their argmax positions."""
from __future__ import annotations

from ...codegen.kernel import Instr, Kernel, kernel_source
from ...ir import Graph, Op, c_type
from ..registry import implements


@implements("MaxUnpool")
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
