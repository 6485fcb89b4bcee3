"""More NN layers: LpNormalization, EyeLike-style constants, MaxUnpool.

(Ops that ONNX defines as functions - RMSNormalization, GroupNormalization, Attention,
the losses, ... - need no kernel: the compiler expands them, see ir/functions.py.)
"""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel, numel
from ...codegen.params import i32, schema
from ...ir import Graph, Op
from ..data.copy_generic import norm_axis
from ..registry import implements


PARAMS = schema(i32("outer", "rows before the axis"), i32("red", "extent of the normalised axis"),
                i32("inner", "elements after the axis"))


@implements("LpNormalization")
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
    kernel = make_kernel(name, body, PARAMS)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  PARAMS.pack(outer=outer, red=red, inner=inner),
                  note=f"axis={axis}")]
