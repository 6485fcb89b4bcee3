"""MaxUnpool: scatter pooled values back to their argmax positions."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, i64, schema, table
from ...ir import Graph, Op, c_type
from ..registry import implements


PARAMS = schema(i32("rank", "rank of the unpooled tensor"),
                table("inf", "rank", "extents MaxPool saw (the indices count in them)"),
                table("ost", "rank", "output element strides"),
                i64("n_in", "input elements"), i64("n_out", "output elements"))


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
    kernel = make_kernel(name, body, PARAMS)
    return [Instr(kernel, [op.inputs[0], op.inputs[1]], [op.outputs[0]],
                  PARAMS.pack(rank=rank, inf=inferred, ost=out_st, n_in=x.numel,
                              n_out=y.numel))]
