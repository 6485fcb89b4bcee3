"""float16 fully-connected layers on Armv8.2-A + FP16 (enable_ioc16, passes/ioc16.py):
Y[M, N] = act(A[M, K] * B[K, N] + bias), everything float16, with 8-lane fp16 FMAs
(`fmla v.8h`) accumulating in float16.

B is packed at compile time into 32-column panels, k-major, zero-padded (each k: four
float16x8_t vectors); a row of A is broadcast one element per k. Four independent
accumulators per panel hide the FMA latency. The bias (padded to 32) starts the
accumulators; ReLU is a vmaxq_f16 on the finished panel.

Accumulation in float16: each FMA rounds to 11 significant bits, so a K-term dot product
carries up to about K/2 half-ulps of its running sum (a float32 accumulator would need a
widening FMA, FMLAL, which is Armv8.2's optional FHM extension). tests/test_fp16_ioc16.py
checks the kernel bit-exactly against NumPy float16 arithmetic in the same order and
reports the error against float64. On arm64-fp16fml (FEAT_FHM) the panel accumulates in
float32 instead: 8 float32x4 accumulators fed by FMLAL/FMLAL2 (vfmlalq_low/high_f16), the
bias widened into them, the sums rounded to float16 once before ReLU.
"""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, schema
from ...ir import Graph, Op
from ...isa import IsaSpec
from ...isa.arm import accumulates_f16_in_f32
from ..registry import implements

NR = 32  # columns per panel: 4 vectors of 8 halves
PARAMS = schema(i32("M", "rows of Y"), i32("N", "columns of Y"), i32("K", "reduction"))


def pack_panels(b: np.ndarray) -> np.ndarray:
    """(K, N) float16 -> NR-column panels over K, k-major, zero-padded to a multiple of NR."""
    k, n = b.shape
    npad = -(-n // NR) * NR
    padded = np.zeros((k, npad), np.float16)
    padded[:, :n] = b
    return np.ascontiguousarray(padded.reshape(k, npad // NR, NR).transpose(1, 0, 2).reshape(-1))


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    if b.dtype != "float16" or not b.is_const or len(b.shape) != 2 or len(a.shape) != 2:
        return "weights not a constant 2-D float16 matrix"
    if op.attrs.get("activation") not in (None, ("Relu", ("in", 0))):
        return "activation other than ReLU"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    """8 multiply-adds per FMA; only float16 products reach it, so nothing competes."""
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    return a.shape[0] * b.shape[0] * b.shape[1] / (8 * isa.core.fma_per_cycle)


@implements("MatMul", dtypes=("float16",), requires="f16.gemm", applies=_applies, cost=_cost,
            label="NEON fp16 FC (8 lanes)")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    m, k = a.shape
    n = b.shape[1]
    has_bias = len(op.inputs) > 2 and bool(op.inputs[2])
    relu = op.attrs.get("activation") is not None
    bname = graph.unique_name(op.inputs[1] + f"__fp16_b{NR}")
    graph.add_const(bname, pack_panels(np.asarray(b.data, np.float16)))
    inputs = [op.inputs[0], bname]
    if has_bias:
        padded = np.zeros(-(-n // NR) * NR, np.float16)
        padded[:n] = np.asarray(graph.tensors[op.inputs[2]].data, np.float16).reshape(-1)
        cname = graph.unique_name(op.outputs[0] + f"__fp16_bias{NR}")
        graph.add_const(cname, padded)
        inputs.append(cname)
    init = ("acc[v] = vld1q_f16(bias + j + 8 * v);" if has_bias else "acc[v] = vdupq_n_f16(0);")
    post = "acc[v] = vmaxq_f16(acc[v], vdupq_n_f16(0));" if relu else ""
    fml = accumulates_f16_in_f32(isa)
    name = (f"fc_f16_nr{NR}{'_bias' if has_bias else ''}{'_relu' if relu else ''}"
            f"_neon64fp16{'fml' if fml else ''}")
    if fml:
        f32_init = ("f[w] = vcvt_f32_f16(vld1_f16(bias + j + 4 * w));" if has_bias
                    else "f[w] = vdupq_n_f32(0);")
        fmas = "\n".join(f"                bv = vld1q_f16(b + {8 * v}); "
                          f"f[{2 * v}] = vfmlalq_low_f16(f[{2 * v}], bv, av); "
                          f"f[{2 * v + 1}] = vfmlalq_high_f16(f[{2 * v + 1}], bv, av);"
                          for v in range(4))
        accumulate = f"""            float32x4_t f[8];
            float16x8_t bv;
            for (w = 0; w < 8; ++w) {f32_init}
            for (kk = 0; kk < K; ++kk, b += {NR}) {{
                const float16x8_t av = vdupq_n_f16(ar[kk]);
{fmas}
            }}
            for (v = 0; v < 4; ++v) acc[v] = vcombine_f16(vcvt_f16_f32(f[2 * v]), vcvt_f16_f32(f[2 * v + 1]));"""
    else:
        accumulate = f"""            for (v = 0; v < 4; ++v) {init}
            for (kk = 0; kk < K; ++kk, b += {NR}) {{
                const float16x8_t av = vdupq_n_f16(ar[kk]);
                acc[0] = vfmaq_f16(acc[0], vld1q_f16(b), av);
                acc[1] = vfmaq_f16(acc[1], vld1q_f16(b + 8), av);
                acc[2] = vfmaq_f16(acc[2], vld1q_f16(b + 16), av);
                acc[3] = vfmaq_f16(acc[3], vld1q_f16(b + 24), av);
            }}"""
    body = f"""    const float16_t *a = (const float16_t *)in_ptrs[0];
    const float16_t *bp = (const float16_t *)in_ptrs[1];  /* {NR}-column panels, k-major */
    const float16_t *bias = {"(const float16_t *)in_ptrs[2]" if has_bias else "0"};
    float16_t *y = (float16_t *)out_ptrs[0];
    int32_t i, j, kk, v{", w" if fml else ""};
    for (i = 0; i < M; ++i) {{
        const float16_t *ar = a + (int64_t)i * K;
        float16_t *yr = y + (int64_t)i * N;
        for (j = 0; j < N; j += {NR}) {{
            const float16_t *b = bp + (int64_t)(j / {NR}) * K * {NR};
            float16x8_t acc[4];
{accumulate}
            for (v = 0; v < 4; ++v) {{
                {post}
                if (j + 8 * v + 8 <= N) {{
                    vst1q_f16(yr + j + 8 * v, acc[v]);
                }} else if (j + 8 * v < N) {{
                    float16_t t[8];
                    int32_t e;
                    vst1q_f16(t, acc[v]);
                    for (e = 0; j + 8 * v + e < N; ++e) yr[j + 8 * v + e] = t[e];
                }}
            }}
        }}
    }}
"""
    kernel = make_kernel(name, body, PARAMS, (), isa="neon64fp16fml" if fml else "neon64fp16")
    how = "FMLAL/FMLAL2 accumulating in float32" if fml else "8-lane fp16 FMAs accumulating in float16"
    return [Instr(kernel, inputs, [op.outputs[0]], PARAMS.pack(M=m, N=n, K=k),
                  note=f"float16 FC, {how}, {NR}-column panels (M={m}, N={n}, K={k})")]
