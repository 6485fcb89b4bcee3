"""STFT: the DFT of frame_length samples every frame_step samples of [batch, length, 1|2]
signals, each frame multiplied by the window (read at run time; none: ones), as direct
sums in double over a per-call twiddle table like dft_generic; onesided keeps
frame_length / 2 + 1 bins. frame_step and frame_length are compile-time constants (they
set the shape)."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, schema
from ...ir import Graph, Op, c_type
from ..data.copy_generic import const_input
from ..registry import implements

PARAMS = schema(i32("B", "signals"), i32("L", "signal length"), i32("F", "frames"),
                i32("S", "frame step"), i32("NF", "frame length (DFT size)"),
                i32("K", "output bins"))


@implements("STFT", dtypes=("float32", "float64"))
def emit(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if len(x.shape) != 3 or x.shape[2] not in (1, 2):
        raise graph.error(f"signal of shape {list(x.shape)} is not [batch, length, 1 or 2]", op)
    step = int(np.asarray(const_input(op, graph, 1, "STFT frame_step")).reshape(-1)[0])
    has_window = len(op.inputs) > 2 and bool(op.inputs[2])
    flen = const_input(op, graph, 3, "STFT frame_length")
    if flen is not None:
        nf = int(np.asarray(flen).reshape(-1)[0])
    else:
        nf = graph.tensors[op.inputs[2]].shape[0] if has_window else x.shape[1]
    onesided = bool(int(op.attrs.get("onesided", 1)))
    if step < 1 or nf < 1 or nf > x.shape[1]:
        raise graph.error(f"frame_step {step} / frame_length {nf} do not fit a signal of "
                          f"{x.shape[1]} samples", op)
    frames = 1 + (x.shape[1] - nf) // step
    bins = nf // 2 + 1 if onesided else nf
    if list(y.shape) != [x.shape[0], frames, bins, 2]:
        raise graph.error(f"output shape {list(y.shape)} is not "
                          f"{[x.shape[0], frames, bins, 2]}", op)
    ci = x.shape[2]
    ct = c_type(x.dtype)
    wt = c_type(graph.tensors[op.inputs[2]].dtype) if has_window else ct
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {"const " + wt + " *win = (const " + wt + " *)in_ptrs[1];" if has_window else ""}
    {ct} *y = ({ct} *)out_ptrs[0];
    double *tw = (double *)workspace;  /* cos, sin of 2 pi t / NF */
    int32_t b, f, k, j;
    for (j = 0; j < NF; ++j) {{
        const double a = 6.283185307179586476925 * (double)j / (double)NF;
        tw[2 * j] = cos(a);
        tw[2 * j + 1] = sin(a);
    }}
    for (b = 0; b < B; ++b)
        for (f = 0; f < F; ++f)
            for (k = 0; k < K; ++k) {{
                double re = 0.0, im = 0.0;
                for (j = 0; j < NF; ++j) {{
                    const {ct} *xp = x + ((int64_t)b * L + (int64_t)f * S + j) * {ci};
                    const double wj = {"(double)win[j]" if has_window else "1.0"};
                    const double xr = (double)xp[0] * wj;
                    const double xi = {"(double)xp[1] * wj" if ci == 2 else "0.0"};
                    const int32_t t = (int32_t)(((int64_t)j * k) % NF);
                    const double c = tw[2 * t], s = -tw[2 * t + 1];
                    re += xr * c - xi * s;
                    im += xr * s + xi * c;
                }}
                y[(((int64_t)b * F + f) * K + k) * 2] = ({ct})re;
                y[(((int64_t)b * F + f) * K + k) * 2 + 1] = ({ct})im;
            }}
"""
    name = f"stft_c{ci}{'_window' if has_window else ''}_{x.dtype}"
    kernel = make_kernel(name, body, PARAMS, ("math",))
    inputs = [op.inputs[0]] + ([op.inputs[2]] if has_window else [])
    return [Instr(kernel, inputs, [op.outputs[0]],
                  PARAMS.pack(B=x.shape[0], L=x.shape[1], F=frames, S=step, NF=nf, K=bins),
                  workspace_bytes=16 * nf, note=f"{frames} frames of {nf}, step {step}")]
