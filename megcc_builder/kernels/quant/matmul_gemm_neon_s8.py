"""QLinearMatMul and QGemm with a constant B on NEON (ARMv7 and AArch64): conv_gemm_neon_s8's
6 x 8 int16 tile (`vmlal_lane_s16`, exact for any int8 / uint8 operands: both centred on
their zero points, |values| <= 255). The columns of B are centred at compile time into
6-column panels; the rows of A are centred and widened per block of rows into [K][NB]
int16 (the kernel works for any A strides: transposed or broadcast A costs no copy). The
int32 sums equal the portable kernel's, and its epilogue follows per element (the outputs
of one column are N apart, so the tile is not stored as rows)."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...ir.quant import operand
from ...isa import IsaSpec
from ..registry import implements
from .conv_gemm_neon_s8 import MRP, _micro_kernel
from .matmul_generic_s8 import PARAMS, QTYPES, _digest, _qlinear
from .requant import CTYPE, SHORT

MR, NR = 6, 8


def _b_centred(op: Op, graph: Graph, n: int, k: int) -> np.ndarray:
    """B^T [N][K] minus the per-column zero point."""
    b = np.asarray(graph.tensors[op.inputs[3]].data).astype(np.int32)
    trans_b = int(op.attrs.get("transB", 0)) if op.type == "QGemm" else 0
    bt = b if trans_b else b.T
    zb_name = operand(graph, op, 5)
    zb = np.zeros(n, np.int32) if zb_name is None else np.broadcast_to(
        np.asarray(graph.tensors[zb_name].data).reshape(-1).astype(np.int32), (n,))
    return bt.reshape(n, k) - zb[:, None]


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    b = graph.tensors[op.inputs[3]]
    if not b.is_const or len(b.shape) != 2:
        return "B not a constant matrix"
    zb = operand(graph, op, 5)
    if zb is not None and not graph.tensors[zb].is_const:
        return "B zero point not constant"
    if op.type == "QGemm" and int(op.attrs.get("transA", 0)):
        return "transA"
    return None


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # 4 multiply-adds per vmlal over the padded 6-column panels, packing ~0.5 cycle per
    # int16, the scalar epilogue ~4 cycles per output (the portable estimate: 1 per MAC)
    a, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    k = a.shape[-1]
    n = y.shape[-1]
    rows = float(y.numel) / max(1, n)
    np_ = -(-n // MR) * MR
    return rows * np_ * k / 4.0 + 0.5 * a.numel + 4.0 * y.numel


def _emit_neon(op, graph, kind, geo, at, bt, ins, az, bz, head, col, epilogue, helpers=()):
    m, n, k = geo["M"], geo["N"], geo["K"]
    centred = _b_centred(op, graph, n, k)
    np_ = -(-n // MR) * MR
    rows = np.zeros((np_, k), np.int16)
    rows[:n] = centred
    panels = np.zeros((np_ // MR, k, MRP), np.int16)
    panels[..., :MR] = rows.reshape(np_ // MR, MR, k).transpose(0, 2, 1)
    name = graph.unique_name(op.inputs[3] + "__neon_panels")
    graph.add_const(name, panels.reshape(-1), "int16")
    ins.names[1] = name
    mb = max(NR, min(1024, (32 * 1024) // max(1, 2 * k)) // NR * NR)
    mb = min(mb, -(-m // NR) * NR)
    ct = CTYPE[at]
    nv = NR // 4
    stores = "\n".join(f"                    vst1q_s32(tile[{r}] + {4 * v}, c{r}_{v});"
                       for r in range(MR) for v in range(nv))
    body = f"""    const {ct} *a = (const {ct} *)in_ptrs[0];
    const int16_t *bw = (const int16_t *)in_ptrs[1];  /* [NP/{MR}][K][{MRP}] centred B^T */
{head}
    const int32_t NB = {mb}, NP = {np_};
    int16_t *bp = (int16_t *)(void *)(((uintptr_t)workspace + 15) & ~(uintptr_t)15);
    int32_t tile[{MR}][{NR}];
    int32_t t, m0, n0, j, kk, r, u;
    int32_t za;
    {{
        const int32_t m = 0;  /* (the zero point of A is one value) */
        (void)m;
        za = {az};
    }}
    int64_t yb = 0;
    for (t = 0; t < BATCH; ++t, yb += (int64_t)M * N) {{
        const {ct} *at = a + AOFF[t];
        for (m0 = 0; m0 < M; m0 += NB) {{
            const int32_t nb = M - m0 < NB ? M - m0 : NB;
            const int32_t nbr = (nb + {NR - 1}) / {NR} * {NR};
            for (kk = 0; kk < K; ++kk) {{  /* [K][NB]: column kk of the block's rows */
                int16_t *dst = bp + (int64_t)kk * NB;
                const {ct} *src = at + (int64_t)m0 * SAM + (int64_t)kk * SAK;
                for (j = 0; j < nb; ++j)
                    dst[j] = (int16_t)((int32_t)src[(int64_t)j * SAM] - za);
                for (; j < nbr; ++j) dst[j] = 0;
            }}
            for (j = 0; j < nb; j += {NR}) {{
                const int16_t *bj = bp + j;
                for (n0 = 0; n0 < NP; n0 += {MR}) {{
                    const int16_t *ap = bw + (int64_t)(n0 / {MR}) * K * {MRP};
MICRO_KERNEL
STORES
                    for (r = 0; r < {MR} && n0 + r < N; ++r) {{
                        const int32_t n = n0 + r;
                        {col}
                        for (u = 0; u < {NR} && j + u < nb; ++u) {{
                            const int32_t m = m0 + j + u;
                            const int64_t yi = yb + (int64_t)m * N + n;
                            const int32_t acc = tile[r][u];  /* = sum (a-za)(b-zb) */
                            (void)m;
                            {epilogue}
                        }}
                    }}
                }}
            }}
        }}
    }}
""".replace("MICRO_KERNEL", _micro_kernel(MR, NR)).replace("STORES", stores)
    kernel = make_kernel(f"{kind}_gemm_neon_{SHORT[at]}{SHORT[bt]}_{_digest(body)}", body,
                         PARAMS, helpers, isa="neon")
    return [Instr(kernel, ins.names, [op.outputs[0]], PARAMS.pack(**geo),
                  workspace_bytes=k * mb * 2 + 16,
                  note=f"NEON int16 GEMM {MR}x{NR} (vmlal_lane_s16), B pre-packed")]


@implements("QLinearMatMul", dtypes=QTYPES, typed_inputs=(0, 3), requires="neon",
            applies=_applies, cost=cost, label="neon int16 GEMM 6x8 (vmlal_lane_s16)")
def lower_qlinear_matmul_neon(op: Op, graph: Graph):
    return _qlinear(op, graph, "qlinear_matmul", gemm=False, emit=_emit_neon)


@implements("QGemm", dtypes=QTYPES, typed_inputs=(0, 3), requires="neon",
            applies=_applies, cost=cost, label="neon int16 GEMM 6x8 (vmlal_lane_s16)")
def lower_qgemm_neon(op: Op, graph: Graph):
    return _qlinear(op, graph, "qgemm", gemm=True, emit=_emit_neon)
