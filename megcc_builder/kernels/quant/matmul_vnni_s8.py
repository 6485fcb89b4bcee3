"""QLinearMatMul and QGemm with a constant B on AVX512-VNNI: matmul_avx2_s8's blocking with
the quad GEMM of conv_u8s8_vnni_s8 (`vpdpbusd`, 256-bit: 6 x 16 int32 tiles, 4 K per lane).

B is centred on its zero points at compile time (it must then fit int8, which symmetric
int8 weights always do) and packed as 6-row panels of B^T in K quads; A is packed per block
of rows as u8 quads [K quad][row][4], int8 A shifted by 128 (o = -128, uint8: o = 0). Then
sum_k (a - za)(b - zb) = sum_k (a - o) bc - (za - o) sum_k bc, with the column sums of the
centred B a compile-time constant; computed modulo 2^32 like the portable kernel, whose
epilogue this kernel shares, so outputs are bit-identical."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...ir.quant import operand
from ...isa import IsaSpec
from ..registry import implements
from .conv_u8s8_avx2_s8 import _micro_kernel as conv_micro_kernel
from .conv_u8s8_vnni_s8 import DPBUSD_STEP
from .matmul_avx2_s8 import _applies as avx2_applies
from .matmul_generic_s8 import PARAMS, QTYPES, _digest, _qlinear
from .requant import CTYPE, SHORT, wrapping_mul, wrapping_sub

MR = 6


def _centred_bt(op: Op, graph: Graph, geo=None) -> np.ndarray:
    """B^T centred on its zero points, [N][K] int32."""
    b = np.asarray(graph.tensors[op.inputs[3]].data).astype(np.int32)
    trans = bool(op.attrs.get("transB")) if op.type == "QGemm" else False
    bt = b if trans else b.T
    n = bt.shape[0]
    zb_name = operand(graph, op, 5)
    zb = np.zeros(n, np.int32) if zb_name is None else np.broadcast_to(
        np.asarray(graph.tensors[zb_name].data).reshape(-1).astype(np.int32), (n,))
    return bt - zb[:, None]


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    why = avx2_applies(op, graph, isa)
    if why:
        return why
    c = _centred_bt(op, graph)
    if c.size and (c.min() < -128 or c.max() > 127):
        return "B minus its zero point outside int8"
    return None


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # matmul_avx2_s8's cost with a K step four times, not twice, as wide per instruction
    a, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    k = graph.tensors[op.inputs[3]].shape[0 if not op.attrs.get("transB") else 1]
    if a.numel <= GEMV_ROWS * k:  # the GEMV form: 64 multiply-adds per 512-bit vpdpbusd
        # (below matmul_gemv_avx2_s8's 16 per vpmaddwd, which also applies on this level)
        return float(y.numel) * k / 48.0 + 4.0 * y.numel + a.numel
    return float(y.numel) * k / 22.0 + 8.0 * y.numel + a.numel


def _micro_kernel() -> str:
    """conv_u8s8's quad tile, stored to `tile` for the portable epilogue."""
    lines = [conv_micro_kernel(DPBUSD_STEP).rstrip("\n")]
    for r in range(MR):
        lines += [f"                    _mm256_storeu_si256((__m256i *)(void *)tile[{r}], c{r}0);",
                  f"                    _mm256_storeu_si256((__m256i *)(void *)(tile[{r}] + 8), c{r}1);"]
    return "\n".join(lines) + "\n"


# rows up to which the A-broadcast form runs: each B quad is then loaded once per row of A,
# where the 6 x 16 tile (rows of A in the vector) would compute 16 rows for 1 (fc layers)
GEMV_ROWS = 4


def _add_quad_panels(op, graph, ins, centred, width: int, zero_panels: int,
                     suffix: str) -> int:
    """B^T (centred [N][K]) as panels [N/width + zero_panels][K quads][width][4] in place of B,
    and its row sums (the activation shift's correction) as a new operand; returns the
    sums' operand position."""
    n, k = centred.shape
    panel_count, kq = -(-n // width) + zero_panels, -(-k // 4)
    packed = np.zeros((panel_count * width, kq * 4), np.int8)
    packed[:n, :k] = centred
    panels = packed.reshape(panel_count, width, kq, 4).transpose(0, 2, 1, 3)
    name = graph.unique_name(op.inputs[3] + suffix)
    graph.add_const(name, np.ascontiguousarray(panels).reshape(-1), "int8")
    ins.names[1] = name
    sums = graph.unique_name(op.inputs[3] + "__vnni_colsums")
    graph.add_const(sums, centred.sum(axis=1).astype(np.int32), "int32")
    ins.names.append(sums)
    return len(ins.names) - 1


def _emit_gemv(op, graph, kind, geo, at, bt, ins, az, bz, head, col, epilogue, helpers,
               centred, shift, acc):
    """Few rows of A: B^T packed as 16-column panels [N/16][K quads][16][4] (one 64-byte
    vector per panel and quad), the row's quad broadcast, 4 panels (64 columns) per pass."""
    m, n, k = geo["M"], geo["N"], geo["K"]
    n16, kq = -(-n // 16) * 16, -(-k // 4)
    # 3 zero panels past the last: the last pass reads 4
    sum_pos = _add_quad_panels(op, graph, ins, centred, 16, 3, "__vnni_s8x16")
    ct = CTYPE[at]
    acc = acc.replace("tile[r][u]", "tile[u]")
    acc_z = "\n".join(f"            __m512i z{v} = _mm512_setzero_si512();" for v in range(4))
    # vpdpbusd's first factor is the unsigned one: the broadcast activations
    steps = "\n".join(f"                    z{v} = _mm512_dpbusd_epi32(z{v}, av, _mm512_loadu_si512("
                      f"(const void *)(bk + {64 * v} * KQ)));" for v in range(4))
    stores = "\n".join(f"            _mm512_storeu_si512((void *)(tile + {16 * v}), z{v});"
                       for v in range(4))
    body = f"""    const {ct} *a = (const {ct} *)in_ptrs[0];
    const int8_t *bw = (const int8_t *)in_ptrs[1];  /* 16-column panels of centred B^T */
    const int32_t *csum = (const int32_t *)in_ptrs[{sum_pos}];  /* sum_k of centred B */
{head}
    const int32_t KQ = {kq}, N16 = {n16};
    uint8_t *ap = (uint8_t *)(void *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    int32_t tile[64];
    int32_t t, m, n0, kq, kidx;
    int64_t yb = 0;
    for (t = 0; t < BATCH; ++t, yb += (int64_t)M * N) {{
        const {ct} *at = a + AOFF[t];
        for (m = 0; m < M; ++m) {{
            const int32_t za = {az};
            for (kidx = 0; kidx < 4 * KQ; ++kidx)  /* the row as shifted quads, 0 past K */
                ap[kidx] = (uint8_t)(kidx < K
                    ? (int32_t)at[(int64_t)m * SAM + (int64_t)kidx * SAK] - ({shift}) : 0);
            for (n0 = 0; n0 < N16; n0 += 64) {{
                /* the last pass may read up to 3 panels past N16 (zero panels in the
                   array); only columns below N are stored */
{acc_z}
                const int8_t *bk = bw + (int64_t)n0 * KQ * 4;
                const int32_t *aq = (const int32_t *)(const void *)ap;
                int32_t u, nn;
                for (kq = 0; kq < KQ; ++kq, bk += 64) {{
                    const __m512i av = _mm512_set1_epi32(aq[kq]);
{steps}
                }}
{stores}
                nn = N - n0 < 64 ? N - n0 : 64;
                for (u = 0; u < nn; ++u) {{
                    const int32_t n = n0 + u;
                    const int64_t yi = yb + (int64_t)m * N + n;
                    {col}
                    {{
                        const int32_t acc = {acc};
                        {epilogue}
                    }}
                }}
            }}
        }}
    }}
"""
    kernel = make_kernel(f"{kind}_vnni_gemv_{SHORT[at]}{SHORT[bt]}_{_digest(body)}", body,
                         PARAMS, helpers, isa="vnni")
    return [Instr(kernel, ins.names, [op.outputs[0]], PARAMS.pack(**geo),
                  workspace_bytes=4 * kq + 128,
                  note="AVX512-VNNI u8 x s8 GEMV 64 columns per pass (vpdpbusd zmm), "
                       "B pre-packed in 16-column panels")]


def _emit_vnni(op, graph, kind, geo, at, bt, ins, az, bz, head, col, epilogue, helpers=()):
    m, n, k = geo["M"], geo["N"], geo["K"]
    centred = _centred_bt(op, graph).reshape(n, k)
    if m <= GEMV_ROWS:
        shift = 0 if at == "uint8" else -128
        acc = wrapping_sub("tile[r][u]", wrapping_mul(f"za - ({shift})", "csum[n]"))
        return _emit_gemv(op, graph, kind, geo, at, bt, ins, az, bz, head, col, epilogue,
                          helpers, centred, shift, acc)
    np_, kq = -(-n // MR) * MR, -(-k // 4)
    sum_pos = _add_quad_panels(op, graph, ins, centred, MR, 0, "__vnni_s8x4")
    nb = int(min(256, max(16, (96 * 1024) // max(1, 4 * kq)))) // 16 * 16
    nb = min(nb, -(-m // 16) * 16)
    ct = CTYPE[at]
    shift = 0 if at == "uint8" else -128  # a - shift is in [0, 255]
    acc = wrapping_sub("tile[r][u]", wrapping_mul(f"za - ({shift})", "csum[n]"))
    body = f"""    const {ct} *a = (const {ct} *)in_ptrs[0];
    const int8_t *bw = (const int8_t *)in_ptrs[1];  /* 6-row panels of centred B^T, K quads */
    const int32_t *csum = (const int32_t *)in_ptrs[{sum_pos}];  /* sum_k of centred B */
{head}
    const int32_t KQ = {kq}, NB = {nb}, NBS = NB, NP = {np_};
    uint8_t *bp = (uint8_t *)workspace;  /* [KQ][NB][4]: a block of A rows, shifted */
    int32_t tile[{MR}][16];
    int32_t t, m0, n0, j, kq, r, kidx;
    int64_t yb = 0;
    for (t = 0; t < BATCH; ++t, yb += (int64_t)M * N) {{
        const {ct} *at = a + AOFF[t];
        for (m0 = 0; m0 < M; m0 += NB) {{
            const int32_t nb = M - m0 < NB ? M - m0 : NB;
            for (kidx = 0; kidx < 4 * KQ; ++kidx) {{
                uint8_t *dst = bp + (int64_t)(kidx >> 2) * NB * 4 + (kidx & 3);
                for (j = 0; j < NB; ++j) {{
                    /* past K or M: 0 (B is 0 there / the row is not stored) */
                    dst[4 * j] = (uint8_t)(j < nb && kidx < K
                        ? (int32_t)at[(int64_t)(m0 + j) * SAM + (int64_t)kidx * SAK] - ({shift})
                        : 0);
                }}
            }}
            for (n0 = 0; n0 < NP; n0 += {MR}) {{
                const int8_t *ap = bw + (int64_t)n0 * KQ * 4;
                for (j = 0; j < nb; j += 16) {{
                    const uint8_t *bj = bp + (int64_t)j * 4;
MICRO_KERNEL
                    for (r = 0; r < {MR} && n0 + r < N; ++r) {{
                        const int32_t n = n0 + r;
                        int32_t u;
                        {col}
                        for (u = 0; u < 16 && j + u < nb; ++u) {{
                            const int32_t m = m0 + j + u;
                            const int64_t yi = yb + (int64_t)m * N + n;
                            const int32_t za = {az};
                            const int32_t acc = {acc};
                            {epilogue}
                        }}
                    }}
                }}
            }}
        }}
    }}
""".replace("MICRO_KERNEL", _micro_kernel())
    kernel = make_kernel(f"{kind}_vnni_{SHORT[at]}{SHORT[bt]}_{_digest(body)}", body, PARAMS,
                         helpers, isa="vnni")
    ws = kq * nb * 4 + 64
    return [Instr(kernel, ins.names, [op.outputs[0]], PARAMS.pack(**geo), workspace_bytes=ws,
                  note=f"AVX512-VNNI u8 x s8 GEMM {MR}x16 (vpdpbusd), B pre-packed")]


@implements("QLinearMatMul", dtypes=QTYPES, typed_inputs=(0, 3), requires="vnni",
            applies=_applies, cost=cost, label="vnni u8 x s8 quad GEMM (vpdpbusd)")
def lower_qlinear_matmul_vnni(op: Op, graph: Graph):
    return _qlinear(op, graph, "qlinear_matmul", gemm=False, emit=_emit_vnni)


@implements("QGemm", dtypes=QTYPES, typed_inputs=(0, 3), requires="vnni", applies=_applies,
            cost=cost, label="vnni u8 x s8 quad GEMM (vpdpbusd)")
def lower_qgemm_vnni(op: Op, graph: Graph):
    return _qlinear(op, graph, "qgemm", gemm=True, emit=_emit_vnni)
