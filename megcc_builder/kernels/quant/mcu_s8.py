"""What the Cortex-M int8 kernels share: constant-weight packing and the inner dot products
on the DSP extension (SMLAD) and on Helium (MVE).

Both reduce a convolution or a fully connected layer to dot products between rows of
compile-time weights, centred on their zero points (int8 once centred: checked by the
kernels' `applies`), and columns built at run time (im2col, or a row of A).

- DSP (`*_dsp`, CMSIS-NN's approach, our code): the column holds int16 values centred on
  the input zero point (padding is 0), the weights stay int8 in flash and are widened on the
  fly: one 32-bit load of 4 weights, SXTB16 gives the even bytes as two int16, SXTB16 of the
  word rotated by 8 the odd ones. The weights are stored with each group of 4 as
  [k0, k2, k1, k3], so those two pairs are (k0, k1) and (k2, k3): the column's natural
  order, read as two int16 pairs. SMLAD adds both products of a pair to the int32 sum.
- MVE (`*_mve`): the column holds int8 (uint8 shifted by 128, padding = the shifted input
  zero point), VMLADAVA sums 16 int8 products into a scalar; the input zero point comes back
  per output channel as `(zx - shift) * sum(w)` (the dot kernels' identity), so the int32
  sum equals the portable kernel's.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ...ir import Graph, Op
from ...ir.quant import operand

DSP_DOT = ("megcc_dsp_dot", r"""
/* sum over k < 4 * kq of w[k] * c[k]: w int8 in [k0 k2 k1 k3] groups, c int16 */
static inline int32_t megcc_dsp_ror8(int32_t v) {
    return (int32_t)(((uint32_t)v >> 8) | ((uint32_t)v << 24));
}
static inline int32_t megcc_dsp_dot(const int8_t *w, const int16_t *c, int32_t kq,
                                    int32_t acc) {
    for (; kq > 0; --kq, w += 4, c += 4) {
        int32_t wv, c01, c23;
        memcpy(&wv, w, 4);
        memcpy(&c01, c, 4);
        memcpy(&c23, c + 2, 4);
        acc = __smlad(__sxtb16(wv), c01, acc);
        acc = __smlad(__sxtb16(megcc_dsp_ror8(wv)), c23, acc);
    }
    return acc;
}
/* two weight rows x two columns: each weight word widened once, each column word loaded
   once for both rows (8 SMLAD per 4 k) */
static inline void megcc_dsp_dot2x2(const int8_t *w0, const int8_t *w1, const int16_t *c0,
                                    const int16_t *c1, int32_t kq, int32_t acc[4]) {
    int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
    for (; kq > 0; --kq, w0 += 4, w1 += 4, c0 += 4, c1 += 4) {
        int32_t u, v, x01, x23, y01, y23;
        memcpy(&u, w0, 4);
        memcpy(&v, w1, 4);
        memcpy(&x01, c0, 4);
        memcpy(&x23, c0 + 2, 4);
        memcpy(&y01, c1, 4);
        memcpy(&y23, c1 + 2, 4);
        {
            const int32_t u02 = __sxtb16(u), u13 = __sxtb16(megcc_dsp_ror8(u));
            const int32_t v02 = __sxtb16(v), v13 = __sxtb16(megcc_dsp_ror8(v));
            a00 = __smlad(u02, x01, a00);
            a00 = __smlad(u13, x23, a00);
            a01 = __smlad(u02, y01, a01);
            a01 = __smlad(u13, y23, a01);
            a10 = __smlad(v02, x01, a10);
            a10 = __smlad(v13, x23, a10);
            a11 = __smlad(v02, y01, a11);
            a11 = __smlad(v13, y23, a11);
        }
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}
""")

MVE_DOT = ("megcc_mve_dot", r"""
/* sum over k < 16 * kv of w[k] * c[k], both int8 */
static inline int32_t megcc_mve_dot(const int8_t *w, const int8_t *c, int32_t kv) {
    int32_t acc = 0;
    for (; kv > 0; --kv, w += 16, c += 16)
        acc = vmladavaq_s8(acc, vld1q_s8(c), vld1q_s8(w));
    return acc;
}
/* four weight rows (`stride` bytes apart) against one column: the column loaded once */
static inline void megcc_mve_dot4(const int8_t *w, int32_t stride, const int8_t *c,
                                  int32_t kv, int32_t acc[4]) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (; kv > 0; --kv, w += 16, c += 16) {
        const int8x16_t x = vld1q_s8(c);
        a0 = vmladavaq_s8(a0, x, vld1q_s8(w));
        a1 = vmladavaq_s8(a1, x, vld1q_s8(w + stride));
        a2 = vmladavaq_s8(a2, x, vld1q_s8(w + 2 * stride));
        a3 = vmladavaq_s8(a3, x, vld1q_s8(w + 3 * stride));
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
""")


def centred_rows(graph: Graph, op: Op, w_index: int, zp_index: int) -> np.ndarray:
    """The constant weights as [output channel][rest] int32 minus the per-channel (or
    single) zero point."""
    w = graph.tensors[op.inputs[w_index]]
    oc = w.shape[0]
    wv = np.asarray(w.data).reshape(oc, -1).astype(np.int32)
    zp = operand(graph, op, zp_index)
    wz = np.zeros(oc, np.int32) if zp is None else np.broadcast_to(
        np.asarray(graph.tensors[zp].data).reshape(-1).astype(np.int32), (oc,))
    return wv - wz[:, None]


def constant_weights_problem(graph: Graph, op: Op, w_index: int, zp_index: int,
                             limit: Tuple[int, int] = (-128, 127)):
    """Why the centred-weights kernels cannot take this op (None: they can)."""
    if not graph.tensors[op.inputs[w_index]].is_const:
        return "weights not constant"
    zp = operand(graph, op, zp_index)
    if zp is not None and not graph.tensors[zp].is_const:
        return "weight zero point not constant"
    wc = centred_rows(graph, op, w_index, zp_index)
    if wc.size and (wc.min() < limit[0] or wc.max() > limit[1]):
        return "centred weights outside int8"
    return None


def round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def dsp_rows(rows: np.ndarray) -> Tuple[np.ndarray, int]:
    """[R][K] centred int8 weights -> [R][K4] int8 (K padded with zeros to a multiple of 4,
    each group of 4 stored as k0 k2 k1 k3), and K4."""
    r, k = rows.shape
    k4 = round_up(max(k, 1), 4)
    padded = np.zeros((r, k4), np.int8)
    padded[:, :k] = rows
    return np.ascontiguousarray(padded.reshape(r, k4 // 4, 4)[:, :, [0, 2, 1, 3]]
                                ).reshape(r, k4), k4


def mve_rows(rows: np.ndarray) -> Tuple[np.ndarray, int]:
    """[R][K] centred int8 weights -> [R][K16] int8 (zero padded), and K16."""
    r, k = rows.shape
    k16 = round_up(max(k, 1), 16)
    padded = np.zeros((r, k16), np.int8)
    padded[:, :k] = rows
    return padded, k16


def add_packed(graph: Graph, base: str, suffix: str, data: np.ndarray, dtype: str) -> str:
    name = graph.unique_name(f"{base}__{suffix}")
    graph.add_const(name, np.ascontiguousarray(data, dtype=np.dtype(dtype)).reshape(-1), dtype)
    return name


def im2col(xt: str, ct: str, kpad: str, value: str, pad: str) -> str:
    """C: column `col` ([KP] of `ct`) of output position `pos` of group input `xg`: the taps
    in the weights' order (channel, ky, kx), `value` of an input cell `v`, `pad` for a padded
    one, zeros from K up to `kpad`."""
    return f"""{{
                const int32_t oy = pos / OW, ox = pos - (pos / OW) * OW;
                int32_t ic, ky, kx, idx = 0;
                for (ic = 0; ic < ICG; ++ic) {{
                    const {xt} *xc = xg + (int64_t)ic * HW;
                    for (ky = 0; ky < KH; ++ky) {{
                        const int32_t iy = oy * SH - PT + ky * DH;
                        for (kx = 0; kx < KW; ++kx, ++idx) {{
                            const int32_t ix = ox * SW - PL + kx * DW;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) {{
                                col[idx] = ({ct})({pad});
                            }} else {{
                                const int32_t v = (int32_t)xc[(int64_t)iy * W + ix];
                                col[idx] = ({ct})({value});
                            }}
                        }}
                    }}
                }}
                for (; idx < {kpad}; ++idx) col[idx] = 0;
            }}"""


def conv_applies(op: Op, graph: Graph) -> "str | None":
    """Shared by the Cortex-M im2col convolutions: 1-D / 2-D, not depthwise, constant
    weights that fit int8 once centred."""
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[3]]
    if len(x.shape) not in (3, 4):
        return "not 1-D or 2-D"
    group = int(op.attrs.get("group", 1))
    if group > 1 and w.shape[0] == group and w.shape[1] == 1:
        return "depthwise (its own kernel)"
    return constant_weights_problem(graph, op, 3, 5)


def depthwise_applies(op: Op, graph: Graph) -> "str | None":
    """Shared by the Cortex-M depthwise kernels: 2-D, one filter per channel, constant
    weights (int16 once centred: always)."""
    x, w, y = (graph.tensors[n] for n in (op.inputs[0], op.inputs[3], op.outputs[0]))
    group = int(op.attrs.get("group", 1))
    if len(x.shape) != 4:
        return "not 2-D"
    if not (group > 1 and w.shape[0] == group == x.shape[1] == y.shape[1] and w.shape[1] == 1):
        return "not depthwise with channel multiplier 1"
    return constant_weights_problem(graph, op, 3, 5, (-32768, 32767))


def wrap_add(a: str, b: str) -> str:
    return f"(int32_t)((uint32_t)({a}) + (uint32_t)({b}))"


def wrap_sub_mul(a: str, b: str, c: str) -> str:
    """a - b * c modulo 2^32."""
    return f"(int32_t)((uint32_t)({a}) - (uint32_t)({b}) * (uint32_t)({c}))"


def output_store(pt: dict, acc: str, o: str, yi: str) -> str:
    """C block: requantize `acc` (the int32 sum without bias) of output channel `o` into
    y[yi], with the portable kernel's per-channel setup and epilogue (same arithmetic; the
    bias added modulo 2^32, as the hardware sums wrap)."""
    rq = pt["rq"]
    return (f"{{ const int32_t o = {o};\n                {pt['oc_setup']}\n                (void)o;\n"
            f"                y[{yi}] = {rq.store(rq.value(wrap_add(acc, 'bo'), 'mult', 'rs'), 'yz')}; }}")


def padded_plane(geo: dict, kw_span: int) -> tuple:
    """(rows, cols) of a channel plane padded on every side so that every tap of every
    output reads inside it (`kw_span`: columns one output's taps cover, rounded as the kernel
    reads them)."""
    hp = max(geo["H"] + geo["PT"], (geo["OH"] - 1) * geo["SH"] + (geo["KH"] - 1) * geo["DH"] + 1)
    wp = max(geo["W"] + geo["PL"], (geo["OW"] - 1) * geo["SW"] + kw_span)
    return hp, wp


def fill_plane(xt: str) -> str:
    """C: `plane` ([HP][WP] int16) = channel `xc` centred on `xz`, zeros around it."""
    return f"""for (i = 0; i < HP * WP; ++i) plane[i] = 0;
            for (iy = 0; iy < H; ++iy) {{
                const {xt} *src = xc + (int64_t)iy * W;
                int16_t *dst = plane + (int64_t)(iy + PT) * WP + PL;
                for (ix = 0; ix < W; ++ix) dst[ix] = (int16_t)((int32_t)src[ix] - xz);
            }}"""
