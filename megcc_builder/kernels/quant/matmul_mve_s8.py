"""QLinearMatMul and QGemm with a constant B (fully connected layers) on Cortex-M Helium
(level cortex-m-mve): each row of A is copied as int8 (uint8 shifted by 128, K padded with
zeros to 16) and four B columns (centred at compile time, int8, zero padded) share each
16-byte load of it on VMLADAVA (megcc_mve_dot4). A's zero point returns as the per-column
constant (z_a - shift) * sum(b): the int32 sums equal the portable kernel's; its epilogue
follows (requantized or float output)."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .matmul_dsp_s8 import mcu_output
from .matmul_generic_s8 import PARAMS, QTYPES, _digest, _qlinear
from .matmul_neon64dot_s8 import _applies as _dot_applies, _b_centred
from .mcu_s8 import MVE_DOT, add_packed, mve_rows, wrap_sub_mul
from .requant import CTYPE, SHORT


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    return _dot_applies(op, graph, isa)  # constant 2-D B, int8 once centred, no transA


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    a, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    k = a.shape[-1]
    # units as conv_dsp_s8.cost: ~8 MACs per cycle, copying A ~2.5 cycles per element
    return float(y.numel) * k * 0.025 + 0.5 * a.numel


def _emit(op, graph, kind, geo, at, bt, ins, az, bz, head, col, epilogue, helpers=()):
    n, k = geo["N"], geo["K"]
    centred = _b_centred(op, graph, n, k)
    packed, k16 = mve_rows(centred)
    ins.names[1] = add_packed(graph, op.inputs[3], "mve", packed, "int8")
    ins.names.append(add_packed(graph, op.inputs[3], "mve_sums", centred.sum(axis=1), "int32"))
    ct = CTYPE[at]
    shift = 128 if at == "uint8" else 0
    out = lambda acc, nn: mcu_output(col, epilogue, acc, "m0", nn)  # noqa: E731
    body = f"""    const {ct} *a = (const {ct} *)in_ptrs[0];
    const int8_t *bw = (const int8_t *)in_ptrs[1];  /* [N][K16] centred B^T */
    const int32_t *bsum = (const int32_t *)in_ptrs[{len(ins.names) - 1}];
{head}
    const int32_t K16 = {k16};
    int8_t *row = (int8_t *)workspace;  /* one row of A [K16], shifted */
    int32_t t, m0, kk, c;
    int32_t zas;
    int64_t yb = 0;
    {{
        const int32_t m = 0;  /* (the zero point of A is one value) */
        (void)m;
        zas = ({az}) - {shift};
    }}
    for (t = 0; t < BATCH; ++t, yb += (int64_t)M * N) {{
        const {ct} *at = a + AOFF[t];
        for (m0 = 0; m0 < M; ++m0) {{
            for (kk = 0; kk < K16; ++kk)
                row[kk] = (int8_t)(kk < K ? (int32_t)at[(int64_t)m0 * SAM + (int64_t)kk * SAK]
                                   - {shift} : 0);
            for (c = 0; c + 3 < N; c += 4) {{
                int32_t s[4];
                megcc_mve_dot4(bw + (int64_t)c * K16, K16, row, K16 / 16, s);
                {out(wrap_sub_mul("s[0]", "zas", "bsum[c]"), "c")}
                {out(wrap_sub_mul("s[1]", "zas", "bsum[c + 1]"), "c + 1")}
                {out(wrap_sub_mul("s[2]", "zas", "bsum[c + 2]"), "c + 2")}
                {out(wrap_sub_mul("s[3]", "zas", "bsum[c + 3]"), "c + 3")}
            }}
            for (; c < N; ++c) {{
                const int32_t s1 = megcc_mve_dot(bw + (int64_t)c * K16, row, K16 / 16);
                {out(wrap_sub_mul("s1", "zas", "bsum[c]"), "c")}
            }}
        }}
    }}
"""
    kernel = make_kernel(f"{kind}_vmladav_mve_{SHORT[at]}{SHORT[bt]}_{_digest(body)}", body,
                         PARAMS, (MVE_DOT,) + tuple(helpers), isa="mve")
    return [Instr(kernel, ins.names, [op.outputs[0]], PARAMS.pack(**geo), workspace_bytes=k16,
                  note="Cortex-M Helium int8 fully connected (VMLADAVA), 4 columns per row load")]


@implements("QLinearMatMul", dtypes=QTYPES, typed_inputs=(0, 3), requires="mve",
            applies=_applies, cost=cost, label="Cortex-M Helium: VMLADAVA, B pre-packed")
def lower_qlinear_matmul_mve(op: Op, graph: Graph):
    return _qlinear(op, graph, "qlinear_matmul", gemm=False, emit=_emit)


@implements("QGemm", dtypes=QTYPES, typed_inputs=(0, 3), requires="mve",
            applies=_applies, cost=cost, label="Cortex-M Helium: VMLADAVA, B pre-packed")
def lower_qgemm_mve(op: Op, graph: Graph):
    return _qlinear(op, graph, "qgemm", gemm=True, emit=_emit)
