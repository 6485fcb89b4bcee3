"""One kernel per LSTM / GRU / RNN op, generated for a GEMM flavour (the packed GEMM of a
vector vocabulary, or portable C) and an element-wise spelling (lanes.py).

Per direction:
1. the input projection of every time step at once, XW[S*B, G*H] = X * W^T + bias, one
   GEMM (X is [S*B, I] in either layout: only the row of (t, b) differs);
2. per step, the recurrent product of the state rows, REC[B, G*H] = H * R^T (a GEMV for a
   batch up to 4, products.py; GRU: the z/r part, then the h part over r (.) H, or over H
   when linear_before_reset), then the gate math of each batch row still inside its
   sequence, fused in one loop over the hidden units, writing the new state and its row
   of Y.

Weights: W^T and R^T in the GEMM's column panels (packed_gemm.pack_b; portable C: plain
row-major [K, N], i.e. one panel N wide). Constant weights are packed at compile time (one
block per direction, GRU's R as its z/r block then its h block); weights given at run
time are packed into the workspace first. Biases are summed in C (Wb + Rb, except GRU's
Rbh with linear_before_reset, which stays inside r (.) (...)).

Sizes (S, B, I, H) are params; everything else (cell, directions, activations, clip,
layout, which operands exist) is in the code and the kernel's name. sequence_lens: rows
past their length do nothing (their state stays, Y there is zero), a reversed direction
starts at each row's own end. Results do not depend on the thread count: only the products
run in parallel, by whole tiles or column panels (products.py), never splitting a sum.
"""
from __future__ import annotations

import hashlib
from typing import List, Optional

import numpy as np

from ...codegen import packed_gemm as g
from ...codegen.kernel import Instr, Kernel, kernel_source
from ...codegen.params import i32, schema
from ...codegen.vector import Simd
from ...codegen.vmath import helpers as vmath_helpers, used
from ...ir import Graph, Op
from ...ir.symbolic import smax
from .lanes import Vector, run
from .products import PACK_HELPER, PORTABLE_MM, simd_gemv, simd_mm
from .problem import B_, C0_, H0_, P_, R_, SEQ_, W_, X_, RnnProblem, rnn_problem

PARAMS = schema(i32("S", "sequence length"), i32("NB", "batch"), i32("IN", "input size"),
                i32("H", "hidden size"))

def _panel_cols(n: int, nr: Optional[int]) -> int:
    return n if nr is None else -(-n // nr) * nr


def r_blocks(p: RnnProblem) -> List[int]:
    """The column counts of R's packed blocks per direction (GRU: z/r, then h)."""
    return [2 * p.H, p.H] if p.cell == "GRU" else [p.N]


def pack_weights(p: RnnProblem, w: np.ndarray, r: np.ndarray, nr: Optional[int]):
    """(packed W of every direction, packed R of every direction), float32."""
    def pack(m: np.ndarray) -> np.ndarray:  # m: [n, K] -> m^T in panels
        return g.pack_b(np.ascontiguousarray(m.T), nr or m.shape[0])
    wp = np.concatenate([pack(w[d]) for d in range(p.dirs)])
    rp = []
    for d in range(p.dirs):
        row = 0
        for n in r_blocks(p):
            rp.append(pack(r[d, row:row + n]))
            row += n
    return wp.astype(np.float32), np.concatenate(rp).astype(np.float32)


def workspace_floats(p: RnnProblem, nr: Optional[int]) -> int:
    """Mirrors the C layout below (a sum of per-size terms, for dynamic sizes later)."""
    S, B, I, H, N = p.S, p.B, p.I, p.H, p.N
    total = 0
    if not p.const_w:
        total += _panel_cols(N, nr) * I
    if not p.const_r:
        total += sum(_panel_cols(n, nr) for n in r_blocks(p)) * H
    total += _panel_cols(N, nr) + (_panel_cols(H, nr) if p.cell == "GRU" else 0)  # biases
    total += S * B * N + B * N + B * H  # XW, REC, h
    if p.cell == "LSTM":
        total += B * H
    if p.cell == "GRU":
        total += 2 * B * H
    if nr is not None:
        total += smax(S * B * I, B * H)  # A packed (smax: sizes may be run-time expressions)
    return total


def _c_panel(n: str, nr: Optional[int]) -> str:
    return f"({n})" if nr is None else f"((({n}) + {nr - 1}) / {nr} * {nr})"


def _lstm_body(p: RnnProblem, d: int):
    f, gg, h = p.acts[d]

    def body(L) -> List[str]:
        V = L.vtype
        out = []

        def pre(name, off, peep=None, cell="cr"):
            e = L.add(L.load(f"xr + {off}"), L.load(f"gr + {off}"))
            if peep is not None:
                e = L.fma(L.load(peep), L.load(cell) if cell == "cr" else cell, e)
            out.append(f"{V} {name} = {e};")
            if p.clip is not None:
                out.append(f"{name} = {L.clamp(name, L.c(-p.clip), L.c(p.clip))};")

        pre("pi", "0", "pi_" if p.has_p else None)
        out.append(f"const {V} ig = {L.act(f, 'pi')};")
        if p.input_forget:
            out.append(f"const {V} fg = {L.sub(L.c(1.0), 'ig')};")
        else:
            pre("pf", "2 * H", "pf_" if p.has_p else None)
            out.append(f"const {V} fg = {L.act(f, 'pf')};")
        pre("pc", "3 * H")
        out.append(f"const {V} cg = {L.act(gg, 'pc')};")
        out.append(f"const {V} cn = {L.fma('fg', L.load('cr'), L.mul('ig', 'cg'))};")
        out.append(L.store("cr", "cn"))
        if p.has_p:
            e = L.fma(L.load("po_"), "cn", L.add(L.load("xr + H"), L.load("gr + H")))
        else:
            e = L.add(L.load("xr + H"), L.load("gr + H"))
        out.append(f"{V} po = {e};")
        if p.clip is not None:
            out.append(f"po = {L.clamp('po', L.c(-p.clip), L.c(p.clip))};")
        out.append(f"const {V} og = {L.act(f, 'po')};")
        out.append(f"const {V} hn = {L.mul('og', L.act(h, 'cn'))};")
        out.append(L.store("hr", "hn"))
        if p.outs[0]:
            out.append("if (yr) " + L.store("yr", "hn"))
        return out
    return body


def _clip(p: RnnProblem, L, name: str) -> List[str]:
    return [] if p.clip is None else [f"{name} = {L.clamp(name, L.c(-p.clip), L.c(p.clip))};"]


def _gru_gates_body(p: RnnProblem, d: int):
    """z and r of one row; stores z, and r (.) h (or r with linear_before_reset)."""
    f = p.acts[d][0]

    def body(L) -> List[str]:
        V = L.vtype
        out = [f"{V} pz = {L.add(L.load('xr'), L.load('gr'))};"] + _clip(p, L, "pz")
        out += [f"{V} pr = {L.add(L.load('xr + H'), L.load('gr + H'))};"] + _clip(p, L, "pr")
        out += [L.store("zr", L.act(f, "pz")), f"const {V} rg = {L.act(f, 'pr')};"]
        out.append(L.store("ar", "rg" if p.linear_before_reset else L.mul("rg", L.load("hr"))))
        return out
    return body


def _gru_state_body(p: RnnProblem, d: int):
    gg = p.acts[d][1]

    def body(L) -> List[str]:
        V = L.vtype
        if p.linear_before_reset:
            e = L.fma(L.load("ar"), L.add(L.load("qr"), L.load("rbh")), L.load("xr + 2 * H"))
        else:
            e = L.add(L.load("xr + 2 * H"), L.load("qr"))
        out = [f"{V} ph = {e};"] + _clip(p, L, "ph")
        out += [f"const {V} hg = {L.act(gg, 'ph')};", f"const {V} zg = {L.load('zr')};"]
        # (1 - z) (.) h~ + z (.) h
        out.append(f"const {V} hn = {L.fma('zg', L.load('hr'), L.mul(L.sub(L.c(1.0), 'zg'), 'hg'))};")
        out.append(L.store("hr", "hn"))
        if p.outs[0]:
            out.append("if (yr) " + L.store("yr", "hn"))
        return out
    return body


def _rnn_body(p: RnnProblem, d: int):
    f = p.acts[d][0]

    def body(L) -> List[str]:
        V = L.vtype
        out = [f"{V} pa = {L.add(L.load('xr'), L.load('gr'))};"] + _clip(p, L, "pa")
        out += [f"const {V} hn = {L.act(f, 'pa')};", L.store("hr", "hn")]
        if p.outs[0]:
            out.append("if (yr) " + L.store("yr", "hn"))
        return out
    return body


def _mm_call(mm: Optional[Simd], M, N, K, a, b, bias, c) -> str:
    if mm is None:
        return f"megcc_rnn_mm_c({M}, {N}, {K}, {a}, {b}, {bias}, {c});"
    return f"megcc_{mm.name}_rnn_mm(par, {M}, {N}, {K}, {a}, {b}, {bias}, {c}, ap);"


def _step_call(mm: Optional[Simd], M, N, K, a, b, c) -> str:
    """The per-step product: register-tiled GEMV rows for a batch up to 4 (the packed GEMM's
    tiles leave a short batch latency-bound), the packed GEMM above."""
    if mm is None:
        return _mm_call(mm, M, N, K, a, b, "0", c)
    return (f"if ({M} <= 4) megcc_{mm.name}_rnn_gemv(par, {M}, {N}, {K}, {a}, {b}, {c}); "
            f"else {_mm_call(mm, M, N, K, a, b, '0', c)}")


def _direction(p: RnnProblem, d: int, mm: Optional[Simd], vec: Optional[Vector]) -> str:
    """C for direction d (a block: its packing, projection and steps)."""
    nr = mm.nr if mm else None
    pc = lambda n: _c_panel(n, nr)  # noqa: E731
    rev = p.direction_reversed(d)
    D = p.dirs
    lines = [f"    /* direction {d}{' (reverse)' if rev else ''} */", "    {"]
    # weights of this direction
    if p.const_w:
        lines.append(f"        const float *wd = wpk + (int64_t){d} * {pc('N')} * IN;")
    else:
        lines.append(f"        const float *wd = wbuf;\n        megcc_rnn_pack_panels(w + (int64_t){d} * N * IN, N, IN, {nr or 'N'}, wbuf);")
    rsz = " + ".join(f"{pc(n)}" for n in (["2 * H", "H"] if p.cell == "GRU" else ["N"]))
    if p.const_r:
        lines.append(f"        const float *rd = rpk + (int64_t){d} * ({rsz}) * H;")
    else:
        lines.append("        const float *rd = rbuf;")
        if p.cell == "GRU":
            lines.append(f"        megcc_rnn_pack_panels(r + (int64_t){d} * N * H, 2 * H, H, {nr or '2 * H'}, rbuf);")
            lines.append(f"        megcc_rnn_pack_panels(r + (int64_t){d} * N * H + (int64_t)2 * H * H, H, H, {nr or 'H'}, rbuf + (int64_t){pc('2 * H')} * H);")
        else:
            lines.append(f"        megcc_rnn_pack_panels(r + (int64_t){d} * N * H, N, H, {nr or 'N'}, rbuf);")
    if p.cell == "GRU":
        lines.append(f"        const float *rd_h = rd + (int64_t){pc('2 * H')} * H;")
        lines.append("        for (j = 0; j < NB * H; ++j) as[j] = 0.0f;  /* rows past their end stay defined */")
    # biases
    if p.has_bias:
        lines.append(f"        const float *wb = bb + (int64_t){d} * 2 * N, *rb = wb + N;")
        lines.append("        for (j = 0; j < N; ++j) bias[j] = wb[j] + rb[j];")
        if p.cell == "GRU" and p.linear_before_reset:
            lines.append("        for (j = 0; j < H; ++j) { bias[2 * H + j] = wb[2 * H + j]; rbh[j] = rb[2 * H + j]; }")
    # the input projection of every step
    proj = _mm_call(mm, "S * NB", "N", "IN", "x", "wd", "bias" if p.has_bias else "0", "xw")
    if mm is not None:  # a few rows (streaming one step at a time): the GEMV, then the bias
        add = ("\n            for (j = 0; j < (int64_t)S * NB * N; ++j) xw[j] += bias[j % N];"
               if p.has_bias else "")
        proj = (f"if (S * NB <= 4 && IN > 0) {{\n            megcc_{mm.name}_rnn_gemv(par, S * NB, N, IN, x, wd, xw);"
                f"{add}\n        }} else {proj}")
    lines.append("        " + proj)
    # initial state
    st_off = f"((int64_t){d} * NB + b) * H" if p.layout == 0 else f"((int64_t)b * {D} + {d}) * H"
    lines.append("        for (b = 0; b < NB; ++b)")
    lines.append("            for (j = 0; j < H; ++j) {")
    lines.append(f"                hs[(int64_t)b * H + j] = {'h0[' + st_off + ' + j]' if p.has_h0 else '0.0f'};")
    if p.cell == "LSTM":
        lines.append(f"                cs[(int64_t)b * H + j] = {'c0[' + st_off + ' + j]' if p.has_c0 else '0.0f'};")
    lines.append("            }")
    length = "(lens[b] < 0 ? 0 : lens[b] > S ? S : lens[b])" if p.has_seq else "S"
    if p.layout == 0:
        xrow, yoff = "(int64_t)t * NB + b", f"(((int64_t)t * {D} + {d}) * NB + b) * H"
    else:
        xrow, yoff = "(int64_t)b * S + t", f"(((int64_t)b * S + t) * {D} + {d}) * H"
    row_head = [
        "            for (b = 0; b < NB; ++b) {",
        f"                const int32_t len = {length}, t = {'len - 1 - s' if rev else 's'};",
        "                const float *xr, *gr;",
        "                float *hr = hs + (int64_t)b * H;",
        "                float *yr;",
        "                if (s >= len) continue;",
        f"                xr = xw + ({xrow}) * N;",
        f"                yr = {'y ? y + ' + yoff + ' : 0' if p.outs[0] else '0'};",
        "                (void)yr; (void)gr; (void)xr; (void)hr;"]
    steps = ["        for (s = 0; s < S; ++s) {"]
    ind = " " * 16
    if p.cell == "LSTM" or p.cell == "RNN":
        steps.append("            " + _step_call(mm, "NB", "N", "H", "hs", "rd", "rec"))
        steps += row_head
        steps.append("                gr = rec + (int64_t)b * N;")
        if p.cell == "LSTM":
            steps.append("                {")
            steps.append("                    float *cr = cs + (int64_t)b * H;")
            if p.has_p:
                steps.append(f"                    const float *pi_ = pp + (int64_t){d} * 3 * H, *po_ = pi_ + H, *pf_ = pi_ + 2 * H;")
            steps.append(run("H", _lstm_body(p, d), vec, ind + "    ").rstrip("\n"))
            steps.append("                }")
        else:
            steps.append(run("H", _rnn_body(p, d), vec, ind).rstrip("\n"))
        steps.append("            }")
    else:  # GRU
        steps.append("            " + _step_call(mm, "NB", "2 * H", "H", "hs", "rd", "rec"))
        steps += row_head
        steps.append("                gr = rec + (int64_t)b * 2 * H;")
        steps.append("                {")
        steps.append("                    float *zr = zs + (int64_t)b * H, *ar = as + (int64_t)b * H;")
        steps.append(run("H", _gru_gates_body(p, d), vec, ind + "    ").rstrip("\n"))
        steps.append("                }")
        steps.append("            }")
        a_in = "as" if not p.linear_before_reset else "hs"
        steps.append("            " + _step_call(mm, "NB", "H", "H", a_in, "rd_h", "qs"))
        steps += row_head
        steps.append("                {")
        steps.append("                    const float *zr = zs + (int64_t)b * H, *ar = as + (int64_t)b * H;")
        steps.append("                    const float *qr = qs + (int64_t)b * H;")
        steps.append("                    (void)ar;")
        steps.append(run("H", _gru_state_body(p, d), vec, ind + "    ").rstrip("\n"))
        steps.append("                }")
        steps.append("            }")
    steps.append("        }")
    lines += steps
    # final states, and zeros in Y past each sequence's end
    fin_off = f"((int64_t){d} * NB + b) * H" if p.layout == 0 else f"((int64_t)b * {D} + {d}) * H"
    # (a row of length 0 has no last step: its Y_h / Y_c are 0, as onnxruntime gives them)
    lines.append("        for (b = 0; b < NB; ++b) {")
    lines.append(f"            const int32_t len = {length};")
    lines.append("            (void)len;")
    if p.outs[1]:
        lines.append(f"            for (j = 0; j < H; ++j) yh[{fin_off} + j] = len > 0 ? hs[(int64_t)b * H + j] : 0.0f;")
    if p.outs[2]:
        lines.append(f"            for (j = 0; j < H; ++j) yc[{fin_off} + j] = len > 0 ? cs[(int64_t)b * H + j] : 0.0f;")
    if p.outs[0] and p.has_seq:
        lines.append("            for (t = len; t < S; ++t)")
        lines.append(f"                for (j = 0; j < H; ++j) y[{yoff} + j] = 0.0f;")
    lines.append("        }")
    lines.append("    }")
    return "\n".join(lines)


def kernel_of(p: RnnProblem, mm: Optional[Simd], vec: Optional[Vector], tag: str) -> Kernel:
    nr = mm.nr if mm else None
    pc = lambda n: _c_panel(n, nr)  # noqa: E731
    # operand order: X, W, R, then the present optional ones (B, sequence_lens, initial_h,
    # initial_c, P); outputs: the present ones of Y, Y_h, Y_c
    ins = ["x", "w", "r"] + [n for n, on in (("bb", p.has_bias), ("lens", p.has_seq),
                                             ("h0", p.has_h0), ("c0", p.has_c0),
                                             ("pp", p.has_p)) if on]
    outs = [n for n, on in zip(("y", "yh", "yc"), p.outs) if on]
    body = [f"    const int32_t N = {p.gates} * H;"]
    for k, n in enumerate(ins):
        ctype = "int32_t" if n == "lens" else "float"
        body.append(f"    const {ctype} *{n} = (const {ctype} *)in_ptrs[{k}];")
    for k, n in enumerate(outs):
        body.append(f"    float *{n} = (float *)out_ptrs[{k}];")
    body.append("    float *ws = (float *)workspace;")
    body.append("    const float *wpk = w, *rpk = r;  /* pre-packed (when constant) */")
    if not p.const_w:
        body.append(f"    float *wbuf = ws;\n    ws += (int64_t){pc('N')} * IN;")
    if not p.const_r:
        rsz = " + ".join(pc(n) for n in (["2 * H", "H"] if p.cell == "GRU" else ["N"]))
        body.append(f"    float *rbuf = ws;\n    ws += (int64_t)({rsz}) * H;")
    body.append(f"    float *bias = ws;\n    ws += {pc('N')};")
    if p.cell == "GRU":
        body.append(f"    float *rbh = ws;\n    ws += {pc('H')};")
    body += ["    float *xw = ws;", "    ws += (int64_t)S * NB * N;",
             "    float *rec = ws;", "    ws += (int64_t)NB * N;",
             "    float *hs = ws;", "    ws += (int64_t)NB * H;"]
    if p.cell == "LSTM":
        body += ["    float *cs = ws;", "    ws += (int64_t)NB * H;"]
    if p.cell == "GRU":
        body += ["    float *zs = ws;", "    ws += (int64_t)NB * H;",
                 "    float *as = ws;", "    ws += (int64_t)NB * H;",
                 "    float *qs = rec + (int64_t)NB * 2 * H;"]
    if mm is not None:
        body.append("    float *ap = ws;")
    body.append("    int32_t s, b, j, t;")
    body.append(f"    for (j = 0; j < {pc('N')}; ++j) bias[j] = 0.0f;")
    if p.cell == "GRU":
        body.append(f"    for (j = 0; j < {pc('H')}; ++j) rbh[j] = 0.0f;")
    text = "\n".join(body) + "\n"
    dirs = "\n".join(_direction(p, d, mm, vec) for d in range(p.dirs))
    # declarations must precede statements (C99 allows mixing, but keep one style: a block)
    text = text + dirs + "\n    (void)t; (void)wpk; (void)rpk;\n"
    digest = hashlib.sha1(p.key().encode()).hexdigest()[:10]
    dtag = "bi" if p.dirs == 2 else ("rev" if p.reverse else "fwd")
    name = f"{p.cell.lower()}_{dtag}_l{p.layout}_{digest}_f32_{tag}"
    helpers: tuple = ("math",)
    if not (p.const_w and p.const_r):
        helpers += (PACK_HELPER,)
    helpers += (PORTABLE_MM,) if mm is None else (simd_mm(mm), simd_gemv(mm))
    source = kernel_source(name, text, params=PARAMS)
    if vec is not None:
        helpers += used(vmath_helpers(vec.v), source)
    return Kernel(name, source, helpers, isa=mm.isa if mm else "", params=PARAMS)


def lower_rnn(op: Op, graph: Graph, mm: Optional[Simd], vec: Optional[Vector], tag: str,
              label: str) -> List[Instr]:
    p = rnn_problem(op, graph)
    nr = mm.nr if mm else None
    ins = [op.inputs[X_]]
    w = graph.tensors[op.inputs[W_]]
    r = graph.tensors[op.inputs[R_]]
    if p.const_w or p.const_r:
        wp, rp = pack_weights(p, np.asarray(w.data if p.const_w else np.zeros(w.shape), np.float32),
                              np.asarray(r.data if p.const_r else np.zeros(r.shape), np.float32), nr)
    suffix = f"__{tag}_{'t' if nr is None else 'p' + str(nr)}"
    if p.const_w:
        name = graph.unique_name(op.inputs[W_] + suffix)
        graph.add_const(name, wp)
        ins.append(name)
    else:
        ins.append(op.inputs[W_])
    if p.const_r:
        name = graph.unique_name(op.inputs[R_] + suffix)
        graph.add_const(name, rp)
        ins.append(name)
    else:
        ins.append(op.inputs[R_])
    for k, on in ((B_, p.has_bias), (SEQ_, p.has_seq), (H0_, p.has_h0), (C0_, p.has_c0),
                  (P_, p.has_p)):
        if on:
            ins.append(op.inputs[k])
    outs = [o for o, on in zip(op.outputs, p.outs) if on]
    kernel = kernel_of(p, mm, vec, tag)
    ws = workspace_floats(p, nr) * 4
    note = (f"{label}: {p.cell} {'bidirectional' if p.dirs == 2 else 'reverse' if p.reverse else 'forward'}"
            f" S={p.S!r} B={p.B!r} I={p.I} H={p.H}; X*W^T for all steps in one GEMM, "
            f"per step H*R^T + fused gate math; weights "
            f"{'pre-packed' if p.const_w and p.const_r else 'packed at run time'}"
            f"{'' if nr is None else f' in {nr}-column panels'}")
    return [Instr(kernel, ins, outs, PARAMS.pack(S=p.S, NB=p.B, IN=p.I, H=p.H),
                  workspace_bytes=ws, note=note)]


def rnn_macs(op: Op, graph: Graph) -> float:
    p = rnn_problem(op, graph)
    return float(p.dirs * p.S * p.B * p.N * (p.I + p.H))

