"""QLinearMatMul and QGemm with a constant B on AVX2: the conv's int16-pair GEMM
(conv_avx2_s8: MR x 16 `vpmaddwd` tiles), B centred on its zero points and packed as MR-row
panels of B^T at compile time, A rows packed per block. The int32 accumulators equal the
portable kernel's; the epilogue is the portable one, so outputs are bit-identical."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...ir.quant import operand
from ...isa import IsaSpec
from ..registry import implements
from .conv_avx2_s8 import MR, _micro_kernel
from .matmul_generic_s8 import PARAMS, QTYPES, _digest, _qlinear
from .requant import CTYPE, SHORT


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    b = graph.tensors[op.inputs[3]]
    if not b.is_const or len(b.shape) != 2:
        return "B not a constant matrix"
    zb = operand(graph, op, 5)
    if zb is not None and not graph.tensors[zb].is_const:
        return "B zero point not constant"
    if op.attrs.get("activation") not in (None, "", "Relu", "Clip"):
        return "real-valued activation"
    return None


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    a, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    k = graph.tensors[op.inputs[3]].shape[0 if not op.attrs.get("transB") else 1]
    return float(y.numel) * k / 12.0 + 8.0 * y.numel + a.numel


def _emit_avx2(op, graph, kind, geo, at, bt, ins, az, bz, head, col, epilogue, helpers=()):
    m, n, k = geo["M"], geo["N"], geo["K"]
    b = np.asarray(graph.tensors[op.inputs[3]].data).astype(np.int32)
    bt_mat = b.T if geo["SBK"] == n and geo["SBN"] == 1 else b  # -> [N][K]
    zb_name = operand(graph, op, 5)
    zb = np.zeros(n, np.int32) if zb_name is None else np.broadcast_to(
        np.asarray(graph.tensors[zb_name].data).reshape(-1).astype(np.int32), (n,))
    centred = bt_mat.reshape(n, k) - zb[:, None]
    np_, kp = -(-n // MR) * MR, k + (k & 1)
    packed = np.zeros((np_, kp), np.int16)
    packed[:n, :k] = centred
    panels = packed.reshape(np_ // MR, MR, kp // 2, 2).transpose(0, 2, 1, 3)
    name = graph.unique_name(op.inputs[3] + "__avx2_i16x2")
    graph.add_const(name, np.ascontiguousarray(panels).reshape(-1), "int16")
    ins.names[1] = name
    k2 = kp // 2
    nb = int(min(256, max(16, (96 * 1024) // max(1, 4 * k2)))) // 16 * 16
    nb = min(nb, -(-m // 16) * 16)
    ct = CTYPE[at]
    body = f"""    const {ct} *a = (const {ct} *)in_ptrs[0];
    const int16_t *bw = (const int16_t *)in_ptrs[1];  /* MR-row panels of B^T, int16 pairs */
{head}
    const int32_t K2 = {k2}, NB = {nb}, NP = {np_};
    int16_t *bp = (int16_t *)workspace;  /* [K2][NB][2]: a block of A rows, int16 pairs */
    int32_t tile[{MR}][16];
    int32_t t, m0, n0, j, kk, r, kidx;
    int64_t yb = 0;
    for (t = 0; t < BATCH; ++t, yb += (int64_t)M * N) {{
        const {ct} *at = a + AOFF[t];
        for (m0 = 0; m0 < M; m0 += NB) {{
            const int32_t nb = M - m0 < NB ? M - m0 : NB;
            for (kidx = 0; kidx < 2 * K2; ++kidx) {{
                int16_t *dst = bp + (int64_t)(kidx >> 1) * NB * 2 + (kidx & 1);
                for (j = 0; j < NB; ++j) {{
                    const int32_t m = m0 + j;
                    const int32_t za = {az};
                    dst[2 * j] = (int16_t)(j < nb && kidx < K
                        ? (int32_t)at[(int64_t)m * SAM + (int64_t)kidx * SAK] - za : 0);
                }}
            }}
            for (n0 = 0; n0 < NP; n0 += {MR}) {{
                const int16_t *ap = bw + (int64_t)n0 * K2 * 2;
                for (j = 0; j < nb; j += 16) {{
MICRO_KERNEL
                    for (r = 0; r < {MR} && n0 + r < N; ++r) {{
                        const int32_t n = n0 + r;
                        int32_t u;
                        {col}
                        for (u = 0; u < 16 && j + u < nb; ++u) {{
                            const int32_t m = m0 + j + u;
                            const int64_t yi = yb + (int64_t)m * N + n;
                            const int32_t acc = tile[r][u];
                            {epilogue}
                        }}
                    }}
                }}
            }}
        }}
    }}
""".replace("MICRO_KERNEL", _micro_kernel())
    kernel = make_kernel(f"{kind}_avx2_{SHORT[at]}{SHORT[bt]}_{_digest(body)}", body, PARAMS,
                         helpers, isa="avx2")
    ws = k2 * nb * 2 * 2 + 64
    return [Instr(kernel, ins.names, [op.outputs[0]], PARAMS.pack(**geo), workspace_bytes=ws,
                  note=f"AVX2 int16-pair GEMM {MR}x16 (vpmaddwd), B pre-packed")]


@implements("QLinearMatMul", dtypes=QTYPES, typed_inputs=(0, 3), requires="avx2",
            applies=_applies, cost=cost, label="avx2 int16-pair GEMM (vpmaddwd)")
def lower_qlinear_matmul_avx2(op: Op, graph: Graph):
    return _qlinear(op, graph, "qlinear_matmul", gemm=False, emit=_emit_avx2)


@implements("QGemm", dtypes=QTYPES, typed_inputs=(0, 3), requires="avx2", applies=_applies,
            cost=cost, label="avx2 int16-pair GEMM (vpmaddwd)")
def lower_qgemm_avx2(op: Op, graph: Graph):
    return _qlinear(op, graph, "qgemm", gemm=True, emit=_emit_avx2)
