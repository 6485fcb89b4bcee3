"""float16 Softmax on Armv8.2-A + FP16 (enable_ioc16): float16 in and out; the row maximum
in float16 (8-lane `fmax`, exact), the exponentials, their sum and the scaling in float32
lanes (`fcvtl`, the arm64-neon vector exp of codegen/vmath.py, `fcvtn`): exp(x - max)
summed over a long row in float16 would lose the small terms. Over the last axis 8 halves
per step; over another axis a scalar float32 loop."""
from __future__ import annotations

from typing import Optional

from ...codegen.kernel import Instr, Kernel, kernel_source
from ...codegen.vmath import helpers, used
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .generic import AXIS_PARAMS, softmax_shape


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    x = graph.tensors[op.inputs[0]]
    return None if x.dtype == "float16" and x.numel > 0 else "not float16"


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    outer, red, inner = softmax_shape(op, graph)
    cheap, libm = isa.core.elementwise_vector
    return outer * red * inner * (3 * cheap + libm) / 2 + 20


@implements("Softmax", dtypes=("float16",), requires="f16.elementwise", applies=_applies,
            cost=_cost, label="NEON fp16 softmax (float32 exp and sum)")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    outer, red, inner = softmax_shape(op, graph)
    exp = isa.vec("f32").math.fn("exp")
    head = """    const float16_t *x = (const float16_t *)in_ptrs[0];
    float16_t *y = (float16_t *)out_ptrs[0];
    int32_t o, r;
"""
    if inner == 1:
        name = "softmax_f16_last_neon64fp16"
        body = head + f"""    for (o = 0; o < outer; ++o) {{
        const float16_t *xr = x + (int64_t)o * red;
        float16_t *yr = y + (int64_t)o * red;
        float16x8_t m8 = vdupq_n_f16(xr[0]);
        float16_t mh;
        float mx, s, inv;
        float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0), mv;
        for (r = 0; r + 8 <= red; r += 8) m8 = vmaxq_f16(m8, vld1q_f16(xr + r));
        mh = vmaxvq_f16(m8);
        for (; r < red; ++r) mh = (xr[r] != xr[r] || xr[r] > mh) ? xr[r] : mh;
        mx = (float)mh;
        mv = vdupq_n_f32(mx);
        for (r = 0; r + 8 <= red; r += 8) {{
            const float16x8_t v = vld1q_f16(xr + r);
            s0 = vaddq_f32(s0, {exp}(vsubq_f32(vcvt_f32_f16(vget_low_f16(v)), mv)));
            s1 = vaddq_f32(s1, {exp}(vsubq_f32(vcvt_high_f32_f16(v), mv)));
        }}
        s = vaddvq_f32(vaddq_f32(s0, s1));
        for (; r < red; ++r) s += expf((float)xr[r] - mx);
        inv = 1.0f / s;
        for (r = 0; r + 8 <= red; r += 8) {{
            const float16x8_t v = vld1q_f16(xr + r);
            const float32x4_t e0 = vmulq_n_f32({exp}(vsubq_f32(vcvt_f32_f16(vget_low_f16(v)), mv)), inv);
            const float32x4_t e1 = vmulq_n_f32({exp}(vsubq_f32(vcvt_high_f32_f16(v), mv)), inv);
            vst1q_f16(yr + r, vcombine_f16(vcvt_f16_f32(e0), vcvt_f16_f32(e1)));
        }}
        for (; r < red; ++r) yr[r] = (float16_t)(expf((float)xr[r] - mx) * inv);
    }}
"""
        workspace = 0
    else:
        name = "softmax_f16_strided_neon64fp16"
        body = head + """    float *m = (float *)workspace, *s = m + inner;
    int32_t j;
    for (o = 0; o < outer; ++o) {
        const float16_t *xo = x + (int64_t)o * red * inner;
        float16_t *yo = y + (int64_t)o * red * inner;
        for (j = 0; j < inner; ++j) { m[j] = -INFINITY; s[j] = 0.0f; }
        for (r = 0; r < red; ++r)
            for (j = 0; j < inner; ++j) m[j] = megcc_maxf(m[j], (float)xo[(int64_t)r * inner + j]);
        for (r = 0; r < red; ++r)
            for (j = 0; j < inner; ++j) s[j] += expf((float)xo[(int64_t)r * inner + j] - m[j]);
        for (r = 0; r < red; ++r)
            for (j = 0; j < inner; ++j)
                yo[(int64_t)r * inner + j] = (float16_t)(expf((float)xo[(int64_t)r * inner + j] - m[j]) / s[j]);
    }
"""
        workspace = 8 * inner
    source = kernel_source(name, body, params=AXIS_PARAMS)
    kernel = Kernel(name, source, ("math",) + used(helpers(isa.vec("f32").math), source),
                    isa="neon64fp16", params=AXIS_PARAMS)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  AXIS_PARAMS.pack(outer=outer, red=red, inner=inner), workspace_bytes=workspace,
                  note=f"float16 softmax [{outer!r}, {red!r}, {inner!r}], float32 exp and sum")]
