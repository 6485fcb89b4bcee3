"""Normalisation and other NN layers: BatchNormalization (unfolded), InstanceNormalization,
LayerNormalization, LRN, PRelu, ConvTranspose, Resize/Upsample.

All are float32 NCHW. Resize does every coordinate computation at compile time, in
float32 exactly like the reference runtimes, and hands the kernel tables of source
indices and weights: the kernel only gathers and blends, so one kernel serves every
coordinate_transformation_mode and nearest_mode.
"""
from __future__ import annotations

from typing import List

from ...codegen.kernel import Instr, f32_bits, make_kernel, numel
from ...codegen.params import f32, i32, schema
from ...ir import Graph, Op
from ..data.copy_generic import norm_axis
from ..registry import F32, implements


def present(names: List[str], k: int) -> bool:
    return len(names) > k and bool(names[k])


# --- normalisations ---------------------------------------------------------------------

# BatchNormalization and InstanceNormalization over an [N, C, S] view of the input.
NCS_PARAMS = schema(i32("N", "batch"), i32("C", "channels"),
                    i32("S", "elements per channel (spatial size)"),
                    f32("eps", "epsilon added to the variance"))
LAYERNORM_PARAMS = schema(i32("outer", "rows normalised separately"),
                          i32("inner", "elements per normalised row"),
                          f32("eps", "epsilon added to the variance"),
                          i32("sg", "Scale element stride (1 full, 0 scalar)"),
                          i32("sb", "B element stride (1 full, 0 scalar)"))
LRN_PARAMS = schema(i32("N", "batch"), i32("C", "channels"), i32("S", "spatial size"),
                    i32("lo", "channels before c in the window"),
                    i32("hi", "channels after c in the window"),
                    f32("alpha_n", "alpha / size"), f32("beta", "exponent"),
                    f32("bias", "added before the power"))

@implements("BatchNormalization", dtypes=F32)
def lower_batchnorm(op: Op, graph: Graph):
    if int(op.attrs.get("training_mode", 0)) or any(present(op.outputs, k) for k in (1, 2, 3, 4)):
        raise graph.error("training mode (running statistics outputs) is not supported", op)
    if not int(op.attrs.get("spatial", 1)):
        raise graph.error("spatial=0 is not supported", op)
    x = graph.tensors[op.inputs[0]]
    # Statistics may be runtime tensors, so the per-channel scale/shift is formed in C.
    name = "batchnorm_inference_f32"
    body = """    const float *x = (const float *)in_ptrs[0], *g = (const float *)in_ptrs[1];
    const float *b = (const float *)in_ptrs[2], *mean = (const float *)in_ptrs[3];
    const float *var = (const float *)in_ptrs[4];
    float *y = (float *)out_ptrs[0];
    int32_t n, c, s;
    for (n = 0; n < N; ++n)
        for (c = 0; c < C; ++c) {
            const float a = g[c] / sqrtf(var[c] + eps), sh = b[c] - mean[c] * a;
            const int64_t base = ((int64_t)n * C + c) * S;
            for (s = 0; s < S; ++s) y[base + s] = x[base + s] * a + sh;
        }
"""
    kernel = make_kernel(name, body, NCS_PARAMS, ("f32_bits",))
    c = x.shape[1] if len(x.shape) > 1 else 1
    params = NCS_PARAMS.pack(N=x.shape[0], C=c, S=numel(x.shape[2:]),
                             eps=f32_bits(op.attrs.get("epsilon", 1e-5)))
    return [Instr(kernel, list(op.inputs[:5]), [op.outputs[0]], params)]


@implements("InstanceNormalization", dtypes=F32)
def lower_instancenorm(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    name = "instancenorm_f32"
    # Mean and variance in double: spatial planes can be large.
    body = """    const float *x = (const float *)in_ptrs[0], *g = (const float *)in_ptrs[1];
    const float *b = (const float *)in_ptrs[2];
    float *y = (float *)out_ptrs[0];
    int32_t n, c, s;
    for (n = 0; n < N; ++n)
        for (c = 0; c < C; ++c) {
            const float *xc = x + ((int64_t)n * C + c) * S;
            float *yc = y + ((int64_t)n * C + c) * S;
            double sum = 0.0, sq = 0.0, mean;
            float a, sh;
            for (s = 0; s < S; ++s) sum += xc[s];
            mean = S > 0 ? sum / S : 0.0;
            for (s = 0; s < S; ++s) { const double d = xc[s] - mean; sq += d * d; }
            a = g[c] / sqrtf((float)(S > 0 ? sq / S : 0.0) + eps);
            sh = b[c] - (float)mean * a;
            for (s = 0; s < S; ++s) yc[s] = xc[s] * a + sh;
        }
"""
    kernel = make_kernel(name, body, NCS_PARAMS, ("f32_bits",))
    params = NCS_PARAMS.pack(N=x.shape[0], C=x.shape[1], S=numel(x.shape[2:]),
                             eps=f32_bits(op.attrs.get("epsilon", 1e-5)))
    return [Instr(kernel, list(op.inputs[:3]), [op.outputs[0]], params)]


def _per_element_stride(op: Op, graph: Graph, name: str, inner: int, what: str) -> int:
    """1 when a LayerNormalization operand covers the normalised block, 0 when a scalar."""
    n = graph.tensors[name].numel
    if n == inner:
        return 1
    if n == 1:
        return 0
    raise graph.error(f"{what} with {n} elements cannot broadcast over the normalised "
                      f"{inner} elements (only full or scalar is supported)", op)


@implements("LayerNormalization", dtypes=F32)
def lower_layernorm(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    axis = norm_axis(int(op.attrs.get("axis", -1)), len(x.shape), op, graph)
    outer, inner = numel(x.shape[:axis]), numel(x.shape[axis:])
    has_bias = present(op.inputs, 2)
    outs = [op.outputs[0]]
    tags = ""
    for k, tag in ((1, "mean"), (2, "invstd")):
        if present(op.outputs, k):
            outs.append(op.outputs[k])
            tags += "_" + tag
    s_scale = _per_element_stride(op, graph, op.inputs[1], inner, "Scale")
    s_bias = _per_element_stride(op, graph, op.inputs[2], inner, "B") if has_bias else 0
    name = f"layernorm_f32{'_bias' if has_bias else ''}{tags}"
    stat_lines = ""
    if "mean" in tags:
        stat_lines += "        ((float *)out_ptrs[1])[o] = (float)mean;\n"
    if "invstd" in tags:
        stat_lines += f"        ((float *)out_ptrs[{len(outs) - 1}])[o] = r;\n"
    bias_term = " + b[(int64_t)j * sb]" if has_bias else ""
    body = f"""    const float *x = (const float *)in_ptrs[0], *g = (const float *)in_ptrs[1];
    {"const float *b = (const float *)in_ptrs[2];" if has_bias else ""}
    float *y = (float *)out_ptrs[0];
    int32_t o, j;
    for (o = 0; o < outer; ++o) {{
        const float *xr = x + (int64_t)o * inner;
        float *yr = y + (int64_t)o * inner;
        double sum = 0.0, sq = 0.0, mean;
        float r;
        for (j = 0; j < inner; ++j) sum += xr[j];
        mean = sum / inner;
        for (j = 0; j < inner; ++j) {{ const double d = xr[j] - mean; sq += d * d; }}
        r = 1.0f / sqrtf((float)(sq / inner) + eps);
{stat_lines}        for (j = 0; j < inner; ++j)
            yr[j] = ((xr[j] - (float)mean) * r) * g[(int64_t)j * sg]{bias_term};
    }}
"""
    kernel = make_kernel(name, body, LAYERNORM_PARAMS, ("f32_bits",))
    params = LAYERNORM_PARAMS.pack(outer=outer, inner=inner,
                                   eps=f32_bits(op.attrs.get("epsilon", 1e-5)),
                                   sg=s_scale, sb=s_bias)
    return [Instr(kernel, list(op.inputs[:3 if has_bias else 2]), outs, params,
                  note=f"[{outer!r}, {inner!r}]")]


@implements("LRN", dtypes=F32)
def lower_lrn(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    size = int(op.attrs["size"])
    alpha, beta = float(op.attrs.get("alpha", 1e-4)), float(op.attrs.get("beta", 0.75))
    bias = float(op.attrs.get("bias", 1.0))
    name = "lrn_f32"
    # Window over channels [c - floor((size-1)/2), c + ceil((size-1)/2)].
    body = """    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    int32_t n, c, k, s;
    for (n = 0; n < N; ++n)
        for (c = 0; c < C; ++c) {
            const int32_t c0 = c - lo < 0 ? 0 : c - lo, c1 = c + hi >= C ? C - 1 : c + hi;
            const float *xn = x + (int64_t)n * C * S;
            float *yc = y + ((int64_t)n * C + c) * S;
            for (s = 0; s < S; ++s) {
                float sq = 0.0f;
                for (k = c0; k <= c1; ++k) sq += xn[(int64_t)k * S + s] * xn[(int64_t)k * S + s];
                yc[s] = xn[(int64_t)c * S + s] / powf(bias + alpha_n * sq, beta);
            }
        }
"""
    kernel = make_kernel(name, body, LRN_PARAMS, ("f32_bits",))
    params = LRN_PARAMS.pack(N=x.shape[0], C=x.shape[1], S=numel(x.shape[2:]),
                             lo=(size - 1) // 2, hi=size // 2, alpha_n=f32_bits(alpha / size),
                             beta=f32_bits(beta), bias=f32_bits(bias))
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params, note=f"size={size!r}")]


# --- ConvTranspose ----------------------------------------------------------------------

# --- Resize / Upsample ------------------------------------------------------------------
