"""AffineGrid: the sampling grid of an affine transform, for GridSample (2-D and 3-D).

For every output point the normalised base coordinates (x along W, y along H, z along D;
align_corners: -1 + 2 i / (L - 1), else -1 + (2 i + 1) / L, as onnx.reference builds them;
an extent of 1 gives 0 either way, as in PyTorch and onnxruntime, where onnx.reference's
aligned grid gives -1)
are multiplied by theta[n] (N x 2 x 3 or N x 3 x 4) with the homogeneous 1 last. The size
input is a compile-time constant (it sets the output shape); theta is read at run time.
"""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, schema, table
from ...ir import Graph, Op, c_type
from ..registry import implements
from .copy_generic import const_input


def _params(d: int):
    return schema(i32("N", "batch"), table("L", d, "grid extents, outermost first (D,) H, W"))


@implements("AffineGrid", dtypes=("float32", "float64"))
def emit(op: Op, graph: Graph):
    theta, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    size = const_input(op, graph, 1, "AffineGrid size")
    d = len(size.reshape(-1)) - 2  # spatial rank
    if d not in (2, 3) or tuple(theta.shape[1:]) != (d, d + 1):
        raise graph.error(f"theta of shape {list(theta.shape)} does not fit a {d}-D size", op)
    align = bool(int(op.attrs.get("align_corners", 0)))
    ct = c_type(theta.dtype)
    base = ("(L[a] == 1 ? 0.0 : -1.0 + 2.0 * (double)i / (double)(L[a] - 1))" if align
            else "(-1.0 + (2.0 * (double)i + 1.0) / (double)L[a])")
    name = f"affine_grid_{d}d{'_ac' if align else ''}_{theta.dtype}"
    body = f"""    const {ct} *theta = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    int32_t b, a, k, j, idx[{d}];
    int64_t q, points = 1;
    for (a = 0; a < {d}; ++a) points *= L[a];
    for (b = 0; b < N; ++b) {{
        const {ct} *t = theta + (int64_t)b * {d * (d + 1)};
        for (a = 0; a < {d}; ++a) idx[a] = 0;
        for (q = 0; q < points; ++q) {{
            double h[{d + 1}];  /* x, y[, z], 1: innermost axis first */
            for (a = 0; a < {d}; ++a) {{
                const int32_t i = idx[a];
                h[{d - 1} - a] = {base};
            }}
            h[{d}] = 1.0;
            for (k = 0; k < {d}; ++k) {{
                double v = 0.0;
                for (j = 0; j <= {d}; ++j) v += (double)t[k * {d + 1} + j] * h[j];
                *y++ = ({ct})v;
            }}
            for (a = {d - 1}; a >= 0; --a) {{  /* next point */
                if (++idx[a] < L[a]) break;
                idx[a] = 0;
            }}
        }}
    }}
"""
    params = _params(d)
    kernel = make_kernel(name, body, params)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  params.pack(N=theta.shape[0], L=list(y.shape[1:-1])),
                  note=f"{d}-D, align_corners={int(align)}")]
