"""com.microsoft.DynamicQuantizeLSTM (what onnxruntime's quantize_dynamic makes of an ONNX
LSTM) in portable C, computing what onnxruntime's CPU kernel computes
(contrib_ops/cpu/quantization/dynamic_quantize_lstm.cc over the deep-CPU LSTM,
providers/cpu/rnn/uni_directional_lstm.cc and rnn_helpers.cc), run on one thread:

- W [dirs, input, 4H] and R [dirs, H, 4H] are already transposed, 8-bit, gate order i o f c;
  scales / zero points per direction ([dirs]) or per column ([dirs, 4H]). Integer zero
  points must be 0 for int8; uint8 uses one zero point per direction. The weights minus
  their zero point are stored once at compile time (int8 weights as they are, uint8
  ones minus their zero point as int16).
- Input projection, per direction, over the first max(sequence_lens) * batch rows of X:
  the range of those values widened to hold 0 gives scale = (max - min) / 255 (1 when
  equal) and zp = round-half-even(clamp(-min / scale, 0, 255)); each value becomes
  nearbyint(x / scale) + zp, clamped (DynamicQuantizeLinear's rule); then
  xw = float(sum (xq - zp) * w) * (x_scale * w_scale[n]). A reversed direction reverses each
  row within its length first, which permutes those rows: the same range, the same rows.
- Each step, the previous hidden rows of the whole batch (initial_h, then the step's output
  rows: zero for rows past their length when Y is an output, else their last value) are
  quantized the same way and g = float(acc) * (h_scale * r_scale[n]) + xw.
- Gates per row still inside its length, as GateComputations: i = f(clip(g_i + C*P_i + b_i)),
  f likewise (or 1 - i with input_forget), c = g(clip(g_c + b_c)), C = C*f + i*c (separate
  multiply and add), o = f(clip(g_o + C_new*P_o + b_o)), H = h(C) * o; b = Wb + Rb, clip is
  FLT_MAX when not given (min then max). f, g, h are MLAS's logistic and tanh (Eigen's
  rational approximations in their FMA3 form: fused multiply-adds, one division), the
  only activations accepted.
- Y past each row's length is 0; Y_h / Y_c are the last state (0 for a length of 0).

onnxruntime splits the batch into ceil(batch / threads) chunks quantized separately when it
has several threads (batch > 4, or 2 <= batch with H <= 256); one thread is one chunk,
which is what this computes."""
from __future__ import annotations

from typing import List

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, schema
from ...ir import Graph, Op
from ..registry import implements
from .requant import ROUND_EVEN

PARAMS = schema(i32("S", "sequence length"), i32("NB", "batch"), i32("IN", "input size"),
                i32("H", "hidden size"))

# input positions of the node
X_, W_, R_, B_, SEQ_, H0_, C0_, P_, WS_, WZ_, RS_, RZ_ = range(12)

MLAS_ACT = ("megcc_mlas_logistic_tanh", r"""
/* MLAS's logistic and tanh (onnxruntime's LSTM activations), their FMA3 kernels */
static float megcc_mlas_logistic(float v) {
    float v2, p, q, r;
    v = v > -18.0f ? v : -18.0f;
    v = v < 18.0f ? v : 18.0f;
    v2 = v * v;
    p = fmaf(v2, 4.37031012579801e-11f, 1.15627324459942e-07f);
    p = fmaf(p, v2, 6.08574864600143e-05f);
    p = fmaf(p, v2, 8.51377133304701e-03f);
    p = fmaf(p, v2, 2.48287947061529e-01f);
    p = p * v;
    q = fmaf(v2, 6.10247389755681e-13f, 5.76102136993427e-09f);
    q = fmaf(q, v2, 6.29106785017040e-06f);
    q = fmaf(q, v2, 1.70198817374094e-03f);
    q = fmaf(q, v2, 1.16817656904453e-01f);
    q = fmaf(q, v2, 9.93151921023180e-01f);
    r = p / q + 0.5f;
    r = r > 0.0f ? r : 0.0f;
    return r < 1.0f ? r : 1.0f;
}
static float megcc_mlas_tanh(float v) {
    float v2, p, q;
    v = v > -9.0f ? v : -9.0f;
    v = v < 9.0f ? v : 9.0f;
    v2 = v * v;
    p = fmaf(v2, -2.76076847742355e-16f, 2.00018790482477e-13f);
    p = fmaf(p, v2, -8.60467152213735e-11f);
    p = fmaf(p, v2, 5.12229709037114e-08f);
    p = fmaf(p, v2, 1.48572235717979e-05f);
    p = fmaf(p, v2, 6.37261928875436e-04f);
    p = fmaf(p, v2, 4.89352455891786e-03f);
    p = p * v;
    q = fmaf(v2, 1.19825839466702e-06f, 1.18534705686654e-04f);
    q = fmaf(q, v2, 2.26843463243900e-03f);
    q = fmaf(q, v2, 4.89352518554385e-03f);
    return p / q;
}
""")

# onnxruntime's GetQuantizationParameter + quantize, over n floats into uint8 (named to
# sort after megcc_qround_even, which it calls: helpers are emitted in name order)
QUANTIZE = ("megcc_quant_dynamic_u8", r"""
static void megcc_quant_dynamic_u8(const float *x, int64_t n, uint8_t *q, float *scale_out,
                          int32_t *zp_out) {
    float mn = n > 0 ? x[0] : 0.0f, mx = mn, scale, lo, hi;
    int32_t zp;
    int64_t i;
    for (i = 1; i < n; ++i) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    mn = mn < 0.0f ? mn : 0.0f;
    mx = mx > 0.0f ? mx : 0.0f;
    scale = mx == mn ? 1.0f : (mx - mn) / 255.0f;
    zp = megcc_qround_even(0.0f - mn / scale, 0.0f, 255.0f);
    lo = (float)(0 - zp);
    hi = (float)(255 - zp);
    for (i = 0; i < n; ++i) q[i] = (uint8_t)(megcc_qround_even(x[i] / scale, lo, hi) + zp);
    *scale_out = scale;
    *zp_out = zp;
}
""")

DEFAULT_ACTS = ("sigmoid", "tanh", "tanh")


def _present(names, k: int) -> bool:
    return len(names) > k and bool(names[k])


def _const(graph: Graph, op: Op, k: int, what: str) -> np.ndarray:
    t = graph.tensors[op.inputs[k]]
    if not t.is_const:
        raise graph.error(f"{what} must be a constant (an initializer)", op)
    return np.asarray(t.data)


def _weights(graph: Graph, op: Op, k: int, ks: int, kz: int, what: str, dirs: int, rows: int,
             H: int):
    """(w - zp [dirs, rows, 4H]: int8, or int16 for uint8 weights; scale per column
    float32 [dirs, 4H])."""
    w = _const(graph, op, k, what)
    if w.dtype not in (np.int8, np.uint8) or w.shape != (dirs, rows, 4 * H):
        raise graph.error(f"{what} must be int8 or uint8 of shape {(dirs, rows, 4 * H)} "
                          f"(has {w.dtype} {w.shape})", op)
    scale = _const(graph, op, ks, f"{what}_scale").astype(np.float32)
    if not _present(op.inputs, kz):
        zp = np.zeros((dirs, 1), np.int32)
    else:
        zp = _const(graph, op, kz, f"{what}_zero_point").astype(np.int32).reshape(dirs, -1)
    if scale.size not in (dirs, dirs * 4 * H) or zp.shape[1] not in (1, 4 * H):
        raise graph.error(f"{what}_scale / zero point must have {dirs} or {dirs * 4 * H} values",
                          op)
    if w.dtype == np.int8 and np.any(zp != 0):
        raise graph.error(f"{what}_zero_point must be 0 for int8 weights", op)
    if np.any(zp != zp[:, :1]):
        raise graph.error(f"{what}_zero_point must be one value per direction", op)
    wq = w if w.dtype == np.int8 else (w.astype(np.int32) - zp[:, :1, None]).astype(np.int16)
    sc = np.broadcast_to(scale.reshape(dirs, -1), (dirs, 4 * H)).astype(np.float32)
    return wq, np.ascontiguousarray(sc)


def _gate(name: str, peep: str, bias: bool, clip: str) -> List[str]:
    """pre-activation of one gate, as onnxruntime: + peephole product, then clip_add_bias
    (min then max) or clip_ignore_bias."""
    out = [f"            float {name} = g[{peep[0]}];"]
    if peep[1]:
        out.append(f"            {name} = {name} + {peep[1]};")
    if bias:
        out += [f"            {name} = {name} + {peep[2]};",
                f"            {name} = {name} < {clip} ? {name} : {clip};",
                f"            {name} = -{clip} < {name} ? {name} : -{clip};"]
    else:
        out.append(f"            {name} = {name} > {clip} ? {clip} : "
                   f"({name} < -{clip} ? -{clip} : {name});")
    return out


def _body(dirs: int, reverse: bool, has: dict, outs: tuple, clip: float,
          input_forget: bool, wt: str, rt: str) -> str:
    ins = ["x", "wq", "rq", "wsc", "rsc"] + [n for n in ("bb", "lens", "h0", "c0", "pp")
                                             if has[n]]
    L = ["    const int32_t N = 4 * H;"]
    for k, n in enumerate(ins):
        ct = {"wq": wt, "rq": rt, "lens": "int32_t"}.get(n, "float")
        L.append(f"    const {ct} *{n} = (const {ct} *)in_ptrs[{k}];")
    for k, n in enumerate(n for n, on in zip(("y", "yh", "yc"), outs) if on):
        L.append(f"    float *{n} = (float *)out_ptrs[{k}];")
    L += ["    float *xw = (float *)workspace;",
          "    float *g = xw + (int64_t)S * NB * N;",
          "    float *bias = g + N;",
          "    float *hp = bias + N;",
          "    float *hl = hp + (int64_t)NB * H;",
          "    float *cs = hl + (int64_t)NB * H;",
          "    int32_t *acc = (int32_t *)(cs + (int64_t)NB * H);",
          "    uint8_t *qa = (uint8_t *)(acc + (int64_t)NB * N);",
          "    float xs, hs;",
          "    int32_t xz, hz, maxlen = S, d, t, b, j, n, k;",
          "    int64_t rows;"]
    clip_c = repr(float(np.float32(clip))) + "f"
    # lengths clamped to [0, S] as the float LSTM does (onnxruntime refuses others): a bad
    # run-time value cannot index outside the buffers
    length = "(lens[b] < 0 ? 0 : lens[b] > S ? S : lens[b])" if has["lens"] else "S"
    if has["lens"]:
        L.append("    maxlen = 0;")
        L.append(f"    for (b = 0; b < NB; ++b) maxlen = {length} > maxlen ? {length} : maxlen;")
    if outs[0]:
        L.append("    for (rows = 0; rows < (int64_t)S * %d * NB * H; ++rows) y[rows] = 0.0f;"
                 % dirs)
    # the input rows of the first maxlen steps (a reversed direction permutes them)
    L += ["    rows = (int64_t)maxlen * NB;",
          "    megcc_quant_dynamic_u8(x, rows * IN, qa, &xs, &xz);"]
    L.append(f"    for (d = 0; d < {dirs}; ++d) {{")
    L += [f"        const {wt} *wd = wq + (int64_t)d * IN * N;",
          f"        const {rt} *rd = rq + (int64_t)d * H * N;",
          "        const float *wsd = wsc + (int64_t)d * N, *rsd = rsc + (int64_t)d * N;",
          "        int64_t r;",
          "        for (r = 0; r < rows; ++r) {",
          "            const uint8_t *a = qa + r * IN;",
          "            for (n = 0; n < N; ++n) acc[n] = 0;",
          "            for (k = 0; k < IN; ++k) {",
          "                const int32_t ak = (int32_t)a[k] - xz;",
          f"                const {wt} *wk = wd + (int64_t)k * N;",
          "                for (n = 0; n < N; ++n) acc[n] += ak * wk[n];",
          "            }",
          "            for (n = 0; n < N; ++n) xw[r * N + n] = (float)acc[n] * (xs * wsd[n]);",
          "        }"]
    if has["bb"]:
        L.append("        for (n = 0; n < N; ++n) bias[n] = bb[(int64_t)d * 2 * N + n] + "
                 "bb[(int64_t)d * 2 * N + N + n];")
    L.append("        for (j = 0; j < NB * H; ++j) {")
    L.append("            hp[j] = %s;" % ("h0[(int64_t)d * NB * H + j]" if has["h0"] else "0.0f"))
    L.append("            cs[j] = %s;" % ("c0[(int64_t)d * NB * H + j]" if has["c0"] else "0.0f"))
    L.append("            hl[j] = 0.0f;")
    L.append("        }")
    L.append("        for (t = 0; t < maxlen; ++t) {")
    L.append("            megcc_quant_dynamic_u8(hp, (int64_t)NB * H, qa + rows * IN, &hs, &hz);")
    # every row's sums at once, so that each row of R is read once per step
    L.append("            for (j = 0; j < NB * N; ++j) acc[j] = 0;")
    L.append("            for (k = 0; k < H; ++k) {")
    L.append(f"                const {rt} *rk = rd + (int64_t)k * N;")
    L.append("                for (b = 0; b < NB; ++b) {")
    L.append("                    const int32_t ak = (int32_t)qa[rows * IN + (int64_t)b * H + k] - hz;")
    L.append("                    int32_t *ab = acc + (int64_t)b * N;")
    L.append("                    for (n = 0; n < N; ++n) ab[n] += ak * rk[n];")
    L.append("                }")
    L.append("            }")
    L.append("            for (b = 0; b < NB; ++b) {")
    L.append(f"                const int32_t len = {length};")
    L.append("                const int32_t *ab = acc + (int64_t)b * N;")
    L.append("                const float *xr;")
    L.append("                float *cr = cs + (int64_t)b * H;")
    L.append("                if (t >= len) {")
    if outs[0]:
        L.append("                    for (j = 0; j < H; ++j) hp[(int64_t)b * H + j] = 0.0f;")
    L.append("                    continue;")
    L.append("                }")
    rev = "1" if reverse else ("d == 1" if dirs == 2 else "0")
    L.append(f"                xr = xw + ((int64_t)(({rev}) ? len - 1 - t : t) * NB + b) * N;")
    L.append("                for (n = 0; n < N; ++n) g[n] = (float)ab[n] * (hs * rsd[n]) + xr[n];")
    L.append("                for (j = 0; j < H; ++j) {")
    pp = "pp[(int64_t)d * 3 * H + %s]"
    peep = bool(has["pp"])
    bias = bool(has["bb"])
    body = []
    body += _gate("pi", ("j", f"cr[j] * {pp % 'j'}" if peep else "", "bias[j]"), bias, clip_c)
    body.append("            const float ig = megcc_mlas_logistic(pi);")
    if input_forget:
        body.append("            const float fg = 1.0f - ig;")
    else:
        body += _gate("pf", ("2 * H + j", f"cr[j] * {pp % '2 * H + j'}" if peep else "",
                             "bias[2 * H + j]"), bias, clip_c)
        body.append("            const float fg = megcc_mlas_logistic(pf);")
    body += _gate("pc", ("3 * H + j", "", "bias[3 * H + j]"), bias, clip_c)
    body.append("            const float cg = megcc_mlas_tanh(pc);")
    body.append("            const float cn = cr[j] * fg + ig * cg;")
    body.append("            float hn;")
    body += _gate("po", ("H + j", f"cn * {pp % 'H + j'}" if peep else "", "bias[H + j]"),
                  bias, clip_c)
    body.append("            cr[j] = cn;")
    body.append("            hn = megcc_mlas_tanh(cn) * megcc_mlas_logistic(po);")
    body.append("            hp[(int64_t)b * H + j] = hn;")
    body.append("            hl[(int64_t)b * H + j] = hn;")
    if outs[0]:
        yt = f"(({rev}) ? len - 1 - t : t)"
        body.append(f"            y[(((int64_t){yt} * {dirs} + d) * NB + b) * H + j] = hn;")
    L += ["        " + line for line in body]
    L.append("                }")
    L.append("            }")
    L.append("        }")
    fin = "((int64_t)d * NB + b) * H + j"
    if outs[1] or outs[2]:
        L.append("        for (b = 0; b < NB; ++b) {")
        L.append(f"            const int32_t len = {length};")
        L.append("            for (j = 0; j < H; ++j) {")
        if outs[1]:
            L.append(f"                yh[{fin}] = len > 0 ? hl[(int64_t)b * H + j] : 0.0f;")
        if outs[2]:
            L.append(f"                yc[{fin}] = len > 0 ? cs[(int64_t)b * H + j] : 0.0f;")
        L.append("            }")
        L.append("        }")
    L.append("    }")
    return "\n".join(L) + "\n"


def workspace_bytes(S, B, I, H):
    N = 4 * H
    floats = S * B * N + 2 * N + 3 * B * H + B * N  # (the last B * N: int32 sums)
    return floats * 4 + S * B * I + B * H  # then the codes of X and of one step's H


@implements("DynamicQuantizeLSTM", dtypes=("float32",))
def lower_dynamic_quantize_lstm(op: Op, graph: Graph):
    ins, outs = list(op.inputs), list(op.outputs)
    if len(ins) < 12 or not all(ins[k] for k in (X_, W_, R_, WS_, RS_)):
        raise graph.error("expects inputs X, W, R, B, sequence_lens, initial_h, initial_c, P, "
                          "W_scale, W_zero_point, R_scale, R_zero_point", op)
    x = graph.tensors[ins[X_]]
    direction = op.attrs.get("direction", "forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("forward", "reverse", "bidirectional"):
        raise graph.error(f"direction {direction!r} is not forward, reverse or bidirectional",
                          op)
    dirs = 2 if direction == "bidirectional" else 1
    acts = [a.decode() if isinstance(a, bytes) else str(a)
            for a in (op.attrs.get("activations") or [])]
    if acts and [a.lower() for a in acts] != list(DEFAULT_ACTS) * dirs:
        raise graph.error(f"activations {acts} are not supported (only the default "
                          "Sigmoid, Tanh, Tanh)", op)
    if len(x.shape) != 3:
        raise graph.error("X must be 3-D [seq, batch, input]", op)
    S, B, I = x.shape
    H = int(op.attrs["hidden_size"])
    wq, wsc = _weights(graph, op, W_, WS_, WZ_, "W", dirs, I, H)
    rq, rsc = _weights(graph, op, R_, RS_, RZ_, "R", dirs, H, H)
    for k, what in ((B_, "B"), (H0_, "initial_h"), (C0_, "initial_c"), (P_, "P")):
        if _present(ins, k) and graph.tensors[ins[k]].dtype != "float32":
            raise graph.error(f"{what} must be float32", op)
    if _present(ins, SEQ_) and graph.tensors[ins[SEQ_]].dtype != "int32":
        raise graph.error("sequence_lens must be int32", op)
    has = {"bb": _present(ins, B_), "lens": _present(ins, SEQ_), "h0": _present(ins, H0_),
           "c0": _present(ins, C0_), "pp": _present(ins, P_)}
    on = tuple(_present(outs, k) for k in range(3))
    clip = float(op.attrs.get("clip", np.finfo(np.float32).max))
    input_forget = bool(int(op.attrs.get("input_forget", 0)))
    reverse = direction == "reverse"
    wt, rt = ("int8_t" if a.dtype == np.int8 else "int16_t" for a in (wq, rq))
    body = _body(dirs, reverse, has, on, clip, input_forget, wt, rt)
    tag = ("bi" if dirs == 2 else "rev" if reverse else "fwd") + "_" + "".join(
        k[0] for k, v in has.items() if v) + "_o" + "".join(str(int(o)) for o in on)
    if op.attrs.get("clip") is not None:
        tag += "_clip%08x" % int(np.float32(clip).view(np.uint32))
    if input_forget:
        tag += "_if"
    tag += f"_w{wt[3:-2]}r{rt[3:-2]}"
    kernel = make_kernel(f"dynamic_quantize_lstm_{tag}_f32", body, PARAMS,
                         ("math", ROUND_EVEN, QUANTIZE, MLAS_ACT))
    consts = []
    for base, arr in (("wq", wq), ("rq", rq), ("wsc", wsc), ("rsc", rsc)):
        name = graph.unique_name(f"{ins[W_ if base[0] == 'w' else R_]}__dqlstm_{base}")
        graph.add_const(name, arr)
        consts.append(name)
    kin = [ins[X_]] + consts + [ins[k] for k, key in ((B_, "bb"), (SEQ_, "lens"),
                                                     (H0_, "h0"), (C0_, "c0"), (P_, "pp"))
                                if has[key]]
    note = (f"DynamicQuantizeLSTM {direction} S={S!r} B={B!r} I={I} H={H}: onnxruntime's "
            f"per-call uint8 quantization of X and of each step's hidden rows, integer "
            f"products with the 8-bit weights, MLAS's logistic / tanh")
    return [Instr(kernel, kin, [o for o in outs if o],
                  PARAMS.pack(S=S, NB=B, IN=I, H=H),
                  workspace_bytes=workspace_bytes(S, B, I, H), note=note)]
