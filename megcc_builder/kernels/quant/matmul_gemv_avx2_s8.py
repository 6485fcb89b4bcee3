"""QLinearMatMul and QGemm with a constant B and few rows of A (a classifier's fully
connected layer: one row) on AVX2. matmul_avx2_s8 broadcasts B and runs A's rows 16 at a
time, so a single row wastes 15 of 16 columns; here the roles are swapped: the row's int16
pairs are broadcast and B^T is packed at compile time as [N/16][K pairs][16][2] (centred on
its zero points), 16 output columns per pair of `vpmaddwd`, two interleaved accumulator
chains. Same int32 accumulators as the portable kernel, whose scalar epilogue follows:
bit-identical."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .matmul_avx2_s8 import _applies as _constant_b
from .matmul_generic_s8 import PARAMS, QTYPES, _digest, _qlinear, _problem
from .requant import CTYPE, SHORT
from ...ir.quant import operand

MAX_ROWS = 4  # rows of A (all products) up to which a row at a time beats 16-row strips


def _rows(op: Op, graph: Graph) -> int:
    gemm = op.type == "QGemm"
    ta = int(op.attrs.get("transA", 0)) if gemm else 0
    tb = int(op.attrs.get("transB", 0)) if gemm else 0
    geo = _problem(op, graph, op.inputs[0], op.inputs[3], ta, tb)
    return geo["M"] * geo["BATCH"]


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    why = _constant_b(op, graph, isa)
    if why:
        return why
    if _rows(op, graph) > MAX_ROWS:
        return f"more than {MAX_ROWS} rows of A (matmul_avx2_s8's strips)"
    return None


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # 16 multiply-adds per vpmaddwd at ~1.5 per cycle with the B loads (B streamed once per
    # row), the scalar epilogue ~4 per output, A's row packing
    a, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    k = graph.tensors[op.inputs[3]].shape[0 if not op.attrs.get("transB") else 1]
    return float(y.numel) * k / 24.0 + 4.0 * y.numel + a.numel


def _emit(op, graph, kind, geo, at, bt, ins, az, bz, head, col, epilogue, helpers=()):
    m, n, k = geo["M"], geo["N"], geo["K"]
    b = np.asarray(graph.tensors[op.inputs[3]].data).astype(np.int32)
    bt_mat = b.T if geo["SBK"] == n and geo["SBN"] == 1 else b  # -> [N][K]
    zb_name = operand(graph, op, 5)
    zb = np.zeros(n, np.int32) if zb_name is None else np.broadcast_to(
        np.asarray(graph.tensors[zb_name].data).reshape(-1).astype(np.int32), (n,))
    centred = bt_mat.reshape(n, k) - zb[:, None]
    np16, kp = -(-n // 16) * 16, k + (k & 1)
    packed = np.zeros((np16, kp), np.int16)
    packed[:n, :k] = centred
    panels = packed.reshape(np16 // 16, 16, kp // 2, 2).transpose(0, 2, 1, 3)
    name = graph.unique_name(op.inputs[3] + "__avx2_gemv_i16x2")
    graph.add_const(name, np.ascontiguousarray(panels).reshape(-1), "int16")
    ins.names[1] = name
    k2 = kp // 2
    ct = CTYPE[at]
    body = f"""    const {ct} *a = (const {ct} *)in_ptrs[0];
    const int16_t *bw = (const int16_t *)in_ptrs[1];  /* [N/16][K2][16][2] */
{head}
    const int32_t K2 = {k2}, NP = {np16};
    int16_t *ap = (int16_t *)(void *)(((uintptr_t)workspace + 31) & ~(uintptr_t)31);
    int32_t tile[16];
    int32_t t, m, n0, kk, kidx, u;
    int64_t yb = 0;
    for (t = 0; t < BATCH; ++t, yb += (int64_t)M * N) {{
        const {ct} *at = a + AOFF[t];
        for (m = 0; m < M; ++m) {{
            const int32_t za = {az};
            const int32_t *apair = (const int32_t *)(const void *)ap;
            for (kidx = 0; kidx < 2 * K2; ++kidx)
                ap[kidx] = (int16_t)(kidx < K
                    ? (int32_t)at[(int64_t)m * SAM + (int64_t)kidx * SAK] - za : 0);
            for (n0 = 0; n0 < NP; n0 += 16) {{
                const int16_t *bk = bw + (int64_t)n0 * K2 * 2;
                __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256();
                __m256i d0 = _mm256_setzero_si256(), d1 = _mm256_setzero_si256();
                for (kk = 0; kk + 2 <= K2; kk += 2, bk += 64) {{
                    const __m256i av = _mm256_set1_epi32(apair[kk]);
                    const __m256i aw = _mm256_set1_epi32(apair[kk + 1]);
                    c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(av, _mm256_loadu_si256((const __m256i *)(const void *)bk)));
                    c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(av, _mm256_loadu_si256((const __m256i *)(const void *)(bk + 16))));
                    d0 = _mm256_add_epi32(d0, _mm256_madd_epi16(aw, _mm256_loadu_si256((const __m256i *)(const void *)(bk + 32))));
                    d1 = _mm256_add_epi32(d1, _mm256_madd_epi16(aw, _mm256_loadu_si256((const __m256i *)(const void *)(bk + 48))));
                }}
                if (kk < K2) {{
                    const __m256i av = _mm256_set1_epi32(apair[kk]);
                    c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(av, _mm256_loadu_si256((const __m256i *)(const void *)bk)));
                    c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(av, _mm256_loadu_si256((const __m256i *)(const void *)(bk + 16))));
                }}
                /* int32 sums wrap like the portable kernel's (a ring: same result) */
                _mm256_storeu_si256((__m256i *)(void *)tile, _mm256_add_epi32(c0, d0));
                _mm256_storeu_si256((__m256i *)(void *)(tile + 8), _mm256_add_epi32(c1, d1));
                for (u = 0; u < 16 && n0 + u < N; ++u) {{
                    const int32_t n = n0 + u;
                    const int64_t yi = yb + (int64_t)m * N + n;
                    const int32_t acc = tile[u];
                    {col}
                    {epilogue}
                }}
            }}
        }}
    }}
"""
    kernel = make_kernel(f"{kind}_gemv_avx2_{SHORT[at]}{SHORT[bt]}_{_digest(body)}", body,
                         PARAMS, helpers, isa="avx2")
    ws = k2 * 4 + 64
    return [Instr(kernel, ins.names, [op.outputs[0]], PARAMS.pack(**geo), workspace_bytes=ws,
                  note="AVX2 int16-pair GEMV (vpmaddwd), 16 columns per step, B pre-packed")]


@implements("QLinearMatMul", dtypes=QTYPES, typed_inputs=(0, 3), requires="avx2",
            applies=_applies, cost=cost, label="avx2 int16-pair GEMV (few rows of A)")
def lower_qlinear_matmul_gemv_avx2(op: Op, graph: Graph):
    return _qlinear(op, graph, "qlinear_matmul", gemm=False, emit=_emit)


@implements("QGemm", dtypes=QTYPES, typed_inputs=(0, 3), requires="avx2", applies=_applies,
            cost=cost, label="avx2 int16-pair GEMV (few rows of A)")
def lower_qgemm_gemv_avx2(op: Op, graph: Graph):
    return _qlinear(op, graph, "qgemm", gemm=True, emit=_emit)
