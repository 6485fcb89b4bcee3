"""QLinearMatMul and QGemm with a constant B (fully connected layers) on the Cortex-M DSP
extension (level cortex-m-dsp): two rows of A at a time are widened to int16 centred on
A's zero point, and each pair of B columns (centred at compile time, int8, stored as
[k0 k2 k1 k3] groups) is multiplied against both by megcc_dsp_dot2x2 (SMLAD). The int32
sums equal the portable kernel's; its epilogue follows (requantized or float output)."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .matmul_generic_s8 import PARAMS, QTYPES, _digest, _qlinear
from .matmul_neon64dot_s8 import _applies as _dot_applies, _b_centred
from .mcu_s8 import DSP_DOT, add_packed, dsp_rows
from .requant import CTYPE, SHORT


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    return _dot_applies(op, graph, isa)  # constant 2-D B, int8 once centred, no transA


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    a, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    k = a.shape[-1]
    # units as conv_dsp_s8.cost: ~0.75 cycles per MAC, widening A ~2.5 per element
    return float(y.numel) * k * 0.15 + 0.5 * a.numel


def mcu_output(col: str, epilogue: str, acc: str, m: str, n: str) -> str:
    """C block: one output (m, n) from the int32 sum `acc`, the portable epilogue."""
    return (f"{{ const int32_t m = {m}, n = {n};\n"
            f"                    const int64_t yi = yb + (int64_t)m * N + n;\n"
            f"                    const int32_t acc = {acc};\n"
            f"                    {col}\n                    {epilogue} }}")


def _emit(op, graph, kind, geo, at, bt, ins, az, bz, head, col, epilogue, helpers=()):
    n, k = geo["N"], geo["K"]
    packed, k4 = dsp_rows(_b_centred(op, graph, n, k))
    ins.names[1] = add_packed(graph, op.inputs[3], "smlad", packed, "int8")
    ct = CTYPE[at]
    out = lambda acc, m, nn: mcu_output(col, epilogue, acc, m, nn)  # noqa: E731
    body = f"""    const {ct} *a = (const {ct} *)in_ptrs[0];
    const int8_t *bw = (const int8_t *)in_ptrs[1];  /* [N][K4] centred B^T, k0 k2 k1 k3 */
{head}
    const int32_t K4 = {k4};
    int16_t *rows = (int16_t *)workspace;  /* two rows of A [2][K4], centred */
    int32_t t, m0, j, kk, c;
    int32_t za;
    int64_t yb = 0;
    {{
        const int32_t m = 0;  /* (the zero point of A is one value) */
        (void)m;
        za = {az};
    }}
    for (t = 0; t < BATCH; ++t, yb += (int64_t)M * N) {{
        const {ct} *at = a + AOFF[t];
        for (m0 = 0; m0 < M; m0 += 2) {{
            const int32_t nm = M - m0 < 2 ? M - m0 : 2;
            for (j = 0; j < nm; ++j)
                for (kk = 0; kk < K4; ++kk)
                    rows[j * K4 + kk] = (int16_t)(kk < K ? (int32_t)at[
                        (int64_t)(m0 + j) * SAM + (int64_t)kk * SAK] - za : 0);
            for (c = 0; c + 1 < N && nm == 2; c += 2) {{
                int32_t s[4];
                megcc_dsp_dot2x2(bw + (int64_t)c * K4, bw + (int64_t)(c + 1) * K4, rows,
                                 rows + K4, K4 / 4, s);
                {out("s[0]", "m0", "c")}
                {out("s[1]", "m0 + 1", "c")}
                {out("s[2]", "m0", "c + 1")}
                {out("s[3]", "m0 + 1", "c + 1")}
            }}
            for (; c < N; ++c)
                for (j = 0; j < nm; ++j) {{
                    const int32_t s1 = megcc_dsp_dot(bw + (int64_t)c * K4, rows + j * K4,
                                                     K4 / 4, 0);
                    {out("s1", "m0 + j", "c")}
                }}
        }}
    }}
"""
    kernel = make_kernel(f"{kind}_smlad_dsp_{SHORT[at]}{SHORT[bt]}_{_digest(body)}", body,
                         PARAMS, (DSP_DOT,) + tuple(helpers), isa="dsp")
    return [Instr(kernel, ins.names, [op.outputs[0]], PARAMS.pack(**geo),
                  workspace_bytes=4 * k4,
                  note="Cortex-M DSP int8 fully connected (SMLAD), 2 rows x 2 columns")]


@implements("QLinearMatMul", dtypes=QTYPES, typed_inputs=(0, 3), requires="dsp",
            applies=_applies, cost=cost, label="Cortex-M DSP: SMLAD, B pre-packed")
def lower_qlinear_matmul_dsp(op: Op, graph: Graph):
    return _qlinear(op, graph, "qlinear_matmul", gemm=False, emit=_emit)


@implements("QGemm", dtypes=QTYPES, typed_inputs=(0, 3), requires="dsp",
            applies=_applies, cost=cost, label="Cortex-M DSP: SMLAD, B pre-packed")
def lower_qgemm_dsp(op: Op, graph: Graph):
    return _qlinear(op, graph, "qgemm", gemm=True, emit=_emit)
