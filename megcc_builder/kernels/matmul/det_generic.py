"""Det: determinants of square matrices [..., M, M], by Gaussian elimination with partial
pivoting in double (a copy of each matrix in the workspace); float32 and float64."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel, numel
from ...codegen.params import i32, schema
from ...ir import Graph, Op, c_type
from ..registry import implements

PARAMS = schema(i32("B", "matrices"), i32("M", "rows = columns"))


@implements("Det", dtypes=("float32", "float64"))
def emit(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    if len(x.shape) < 2 or x.shape[-1] != x.shape[-2]:
        raise graph.error(f"input of shape {list(x.shape)} is not square matrices", op)
    m = x.shape[-1]
    ct = c_type(x.dtype)
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    double *a = (double *)workspace;
    int32_t b, i, j, k;
    for (b = 0; b < B; ++b) {{
        double det = 1.0;
        for (i = 0; i < M * M; ++i) a[i] = (double)x[(int64_t)b * M * M + i];
        for (k = 0; k < M && det != 0.0; ++k) {{
            int32_t p = k;
            for (i = k + 1; i < M; ++i)
                if (fabs(a[i * M + k]) > fabs(a[p * M + k])) p = i;
            if (a[p * M + k] == 0.0) {{ det = 0.0; break; }}
            if (p != k) {{  /* a row swap flips the sign */
                for (j = 0; j < M; ++j) {{
                    const double t = a[k * M + j];
                    a[k * M + j] = a[p * M + j];
                    a[p * M + j] = t;
                }}
                det = -det;
            }}
            det *= a[k * M + k];
            for (i = k + 1; i < M; ++i) {{
                const double f = a[i * M + k] / a[k * M + k];
                for (j = k + 1; j < M; ++j) a[i * M + j] -= f * a[k * M + j];
            }}
        }}
        y[b] = ({ct})det;
    }}
"""
    kernel = make_kernel(f"det_{x.dtype}", body, PARAMS, ("math",))
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  PARAMS.pack(B=numel(x.shape[:-2]), M=m), workspace_bytes=8 * m * m,
                  note=f"{m}x{m}")]
