"""QLinearMatMul and QGemm with a constant B on Armv8.2-A dot product (`sdot`, level
arm64-dot): conv_neon64dot_s8's 8 x 12 tile of `vdotq_laneq_s32` over 4 x 4 int8 blocks,
the columns of B (centred on their zero points, int8 once centred: checked at compile time)
as the 8-row weight panels, rows of A (uint8 shifted by 128) packed per block of 12. The
zero point of A comes back as a per-column constant ((z_a - shift) * column sum of B), so
the int32 accumulator equals the portable kernel's; the portable epilogue follows."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...ir.quant import operand
from ...isa import IsaSpec
from ..registry import implements
from .conv_neon64dot_s8 import MR, NR, _micro_kernel
from .matmul_generic_s8 import PARAMS, QTYPES, _digest, _qlinear
from .requant import CTYPE, SHORT, wrapping_mul, wrapping_sub


def _b_centred(op: Op, graph: Graph, n: int, k: int, geo=None) -> np.ndarray:
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
    trans_b = int(op.attrs.get("transB", 0)) if op.type == "QGemm" else 0
    n, k = (b.shape[0], b.shape[1]) if trans_b else (b.shape[1], b.shape[0])
    c = _b_centred(op, graph, n, k)
    if c.size and (c.min() < -128 or c.max() > 127):
        return "centred B outside int8 (sdot multiplies int8 by int8)"
    return None


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    a, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    b = graph.tensors[op.inputs[3]]
    k = a.shape[-1]
    return float(y.numel) * k / 16.0 + 4.0 * y.numel + a.numel + b.numel / 4.0


def _emit_dot(op, graph, kind, geo, at, bt, ins, az, bz, head, col, epilogue, helpers=()):
    m, n, k = geo["M"], geo["N"], geo["K"]
    kq = -(-k // 4)
    centred = _b_centred(op, graph, n, k)
    np_ = -(-n // MR) * MR
    packed = np.zeros((np_, 4 * kq), np.int8)
    packed[:n, :k] = centred
    panels = packed.reshape(np_ // MR, MR, kq, 4).transpose(0, 2, 1, 3)
    name = graph.unique_name(op.inputs[3] + "__dot_4x4")
    graph.add_const(name, np.ascontiguousarray(panels).reshape(-1), "int8")
    ins.names[1] = name
    sums = graph.unique_name(op.inputs[3] + "__dot_sums")
    graph.add_const(sums, centred.sum(axis=1).astype(np.int32), "int32")
    ins.names.append(sums)
    mb = max(NR, min(1020, (32 * 1024) // max(1, 4 * kq)) // NR * NR)
    mb = min(mb, -(-m // NR) * NR)
    ct = CTYPE[at]
    shift = 128 if at == "uint8" else 0
    body = f"""    const {ct} *a = (const {ct} *)in_ptrs[0];
    const int8_t *bw = (const int8_t *)in_ptrs[1];  /* [NP/8][KQ][8][4] centred B^T */
    const int32_t *wsum = (const int32_t *)in_ptrs[{len(ins.names) - 1}];
{head}
    const int32_t KQ = {kq}, NB = {mb}, NP = {np_};
    int8_t *bp = (int8_t *)workspace;  /* [KQ][NB][4]: a block of A rows, shifted */
    int32_t tile[{MR}][{NR}];
    int32_t t, m0, n0, j, kq, r, u, kk;
    int32_t zas;
    {{
        const int32_t m = 0;  /* (the zero point of A is one value) */
        (void)m;
        zas = ({az}) - {shift};
    }}
    int64_t yb = 0;
    for (t = 0; t < BATCH; ++t, yb += (int64_t)M * N) {{
        const {ct} *at = a + AOFF[t];
        for (m0 = 0; m0 < M; m0 += NB) {{
            const int32_t nb = M - m0 < NB ? M - m0 : NB;
            const int32_t nbr = (nb + {NR - 1}) / {NR} * {NR};
            for (kq = 0; kq < KQ; ++kq) {{
                int8_t *dst = bp + (int64_t)kq * NB * 4;
                for (j = 0; j < nbr; ++j)
                    for (u = 0; u < 4; ++u) {{
                        kk = 4 * kq + u;
                        dst[4 * j + u] = (int8_t)(j < nb && kk < K ? (int32_t)at[
                            (int64_t)(m0 + j) * SAM + (int64_t)kk * SAK] - {shift} : 0);
                    }}
            }}
            for (j = 0; j < nb; j += {NR}) {{
                const int8_t *bj = bp + (int64_t)j * 4;
                for (n0 = 0; n0 < NP; n0 += {MR}) {{
                    const int8_t *ap = bw + (int64_t)n0 * KQ * 4;
MICRO_KERNEL
                    for (r = 0; r < {MR} && n0 + r < N; ++r) {{
                        const int32_t n = n0 + r;
                        const int32_t zc = {wrapping_mul("zas", "wsum[n]")};
                        {col}
                        for (u = 0; u < {NR} && j + u < nb; ++u) {{
                            const int32_t m = m0 + j + u;
                            const int64_t yi = yb + (int64_t)m * N + n;
                            const int32_t acc = {wrapping_sub("tile[r][u]", "zc")};  /* = sum (a-za)(b-zb) */
                            {epilogue}
                        }}
                    }}
                }}
            }}
        }}
    }}
""".replace("MICRO_KERNEL", _micro_kernel())
    kernel = make_kernel(f"{kind}_dot_neon64dot_{SHORT[at]}{SHORT[bt]}_{_digest(body)}", body,
                         PARAMS, helpers, isa="neon64dot")
    return [Instr(kernel, ins.names, [op.outputs[0]], PARAMS.pack(**geo),
                  workspace_bytes=kq * mb * 4 + 64,
                  note=f"arm64 sdot int8 GEMM {MR}x{NR} over 4x4 blocks, B pre-packed")]


@implements("QLinearMatMul", dtypes=QTYPES, typed_inputs=(0, 3), requires="neon64dot",
            applies=_applies, cost=cost, label="arm64 dot product: 4x4 int8 blocks (sdot)")
def lower_qlinear_matmul_dot(op: Op, graph: Graph):
    return _qlinear(op, graph, "qlinear_matmul", gemm=False, emit=_emit_dot)


@implements("QGemm", dtypes=QTYPES, typed_inputs=(0, 3), requires="neon64dot",
            applies=_applies, cost=cost, label="arm64 dot product: 4x4 int8 blocks (sdot)")
def lower_qgemm_dot(op: Op, graph: Graph):
    return _qlinear(op, graph, "qgemm", gemm=True, emit=_emit_dot)
