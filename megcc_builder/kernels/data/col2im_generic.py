"""Col2Im: the inverse of im2col, N-D. Input [N, C * prod(block), L] holds, for each of the
L sliding-block positions, the C blocks' values; each is added into the image at
position * stride - pad_begin + offset * dilation (outside the image: dropped). Overlapping
blocks sum. image_shape and block_shape are compile-time constants (they set the shape);
the kernel zero-fills the output, then scatters every input element once."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel, numel
from ...codegen.params import i32, schema, table
from ...ir import Graph, Op, c_type
from ..registry import implements
from .copy_generic import const_input


def _params(d: int):
    return schema(i32("N", "batch"), i32("C", "channels"),
                  table("img", d, "image extents"), table("blk", d, "block extents"),
                  table("nb", d, "sliding positions per axis"), table("st", d, "strides"),
                  table("dl", d, "dilations"), table("pb", d, "leading pads"))


@implements("Col2Im", dtypes=("float32", "float64", "int32", "int64"))
def emit(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    img = [int(v) for v in const_input(op, graph, 1, "Col2Im image_shape").reshape(-1)]
    blk = [int(v) for v in const_input(op, graph, 2, "Col2Im block_shape").reshape(-1)]
    d = len(img)
    if len(blk) != d or d < 1:
        raise graph.error(f"image_shape {img} and block_shape {blk} differ in rank", op)
    st = list(op.attrs.get("strides", [1] * d))
    dl = list(op.attrs.get("dilations", [1] * d))
    pads = list(op.attrs.get("pads", [0] * (2 * d)))
    nb = [(img[k] + pads[k] + pads[d + k] - (dl[k] * (blk[k] - 1) + 1)) // st[k] + 1
          for k in range(d)]
    bsize = numel(blk)
    if x.shape[1] % bsize or x.shape[2] != numel(nb) or min(nb) < 1:
        raise graph.error(f"input of shape {list(x.shape)} does not hold blocks {blk} at "
                          f"{nb} positions", op)
    ct = c_type(x.dtype)
    name = f"col2im_d{d}_{x.dtype}"
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    int32_t b, c, k, bo[{d}], po[{d}];
    int64_t plane = 1, nblk = 1, npos = 1, j, l, q;
    for (k = 0; k < {d}; ++k) {{ plane *= img[k]; nblk *= blk[k]; npos *= nb[k]; }}
    for (q = 0; q < (int64_t)N * C * plane; ++q) y[q] = 0;
    for (b = 0; b < N; ++b)
        for (c = 0; c < C; ++c) {{
            {ct} *yc = y + ((int64_t)b * C + c) * plane;
            for (k = 0; k < {d}; ++k) bo[k] = 0;
            for (j = 0; j < nblk; ++j) {{  /* offset inside the block */
                const {ct} *xr = x + (((int64_t)b * C + c) * nblk + j) * npos;
                for (k = 0; k < {d}; ++k) po[k] = 0;
                for (l = 0; l < npos; ++l) {{  /* sliding position */
                    int64_t off = 0;
                    int inside = 1;
                    for (k = 0; k < {d}; ++k) {{
                        const int32_t i = po[k] * st[k] - pb[k] + bo[k] * dl[k];
                        if (i < 0 || i >= img[k]) {{ inside = 0; break; }}
                        off = off * img[k] + i;
                    }}
                    if (inside) yc[off] += xr[l];
                    for (k = {d - 1}; k >= 0; --k) {{
                        if (++po[k] < nb[k]) break;
                        po[k] = 0;
                    }}
                }}
                for (k = {d - 1}; k >= 0; --k) {{
                    if (++bo[k] < blk[k]) break;
                    bo[k] = 0;
                }}
            }}
        }}
"""
    params = _params(d)
    kernel = make_kernel(name, body, params)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  params.pack(N=x.shape[0], C=x.shape[1] // bsize, img=img, blk=blk, nb=nb,
                              st=st, dl=dl, pb=pads[:d]),
                  note=f"image {img}, block {blk}, {nb} positions")]
