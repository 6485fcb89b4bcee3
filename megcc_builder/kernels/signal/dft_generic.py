"""DFT: forward, inverse and one-sided (real-input forward, real-output inverse) discrete
Fourier transforms along one axis, as direct O(n^2) sums in double.

The tensor is seen as [outer, n, inner, c] with c = 1 (real) or 2 (real, imaginary). The
signal is zero-padded or truncated to dft_length L. The twiddle factors of L are computed
once per call into the workspace (angles 2 pi t / L with t = j k mod L, so every angle is
exact to a rounding). inverse divides by L; inverse + onesided (irfft) rebuilds the full
spectrum by Hermitian symmetry from the first L/2 + 1 bins, ignoring the imaginary parts
of the DC and Nyquist bins, as numpy.fft.irfft does.
"""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, make_kernel, numel
from ...codegen.params import i32, schema
from ...ir import Graph, Op, c_type
from ..data.copy_generic import const_input, norm_axis
from ..registry import implements

PARAMS = schema(i32("outer", "elements before the axis"), i32("n_in", "input signal length"),
                i32("inner", "elements after the axis (without the complex axis)"),
                i32("L", "dft_length"), i32("n_out", "output bins (or samples)"),
                i32("n_use", "input bins (or samples) read: min(n_in, L or L/2 + 1)"))


def dft_setup(op: Op, graph: Graph):
    """(axis in the signal's rank, dft_length, inverse, onesided) of a DFT node."""
    x = graph.tensors[op.inputs[0]]
    rank = len(x.shape)
    if graph.opset >= 20:
        axis_v = const_input(op, graph, 2, "DFT axis")
        axis = -2 if axis_v is None else int(np.asarray(axis_v).reshape(-1)[0])
    else:
        axis = int(op.attrs.get("axis", 1))
    axis = norm_axis(axis, rank, op, graph)
    if axis == rank - 1 or axis == 0:
        raise graph.error(f"axis {axis} is the batch or the complex axis", op)
    inverse = bool(int(op.attrs.get("inverse", 0)))
    onesided = bool(int(op.attrs.get("onesided", 0)))
    length = const_input(op, graph, 1, "DFT dft_length")
    if length is not None:
        length = int(np.asarray(length).reshape(-1)[0])
    elif inverse and onesided:
        length = 2 * (x.shape[axis] - 1)
    else:
        length = x.shape[axis]
    if length < 1:
        raise graph.error(f"dft_length {length} is not positive", op)
    return axis, length, inverse, onesided


@implements("DFT", dtypes=("float32", "float64"))
def emit(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    axis, L, inverse, onesided = dft_setup(op, graph)
    c_in, c_out = x.shape[-1], y.shape[-1]
    if c_in not in (1, 2):
        raise graph.error(f"the last axis has {c_in} values (1: real, 2: complex)", op)
    if onesided and not inverse and c_in != 1:
        raise graph.error("a one-sided forward DFT needs a real input", op)
    irfft = inverse and onesided
    n_out = L if not onesided or inverse else L // 2 + 1
    expect = list(x.shape[:axis]) + [n_out] + list(x.shape[axis + 1:-1]) + [1 if irfft else 2]
    if list(y.shape) != expect:
        raise graph.error(f"output shape {list(y.shape)} is not {expect}", op)
    n_use = min(x.shape[axis], L // 2 + 1 if irfft else L)
    ct = c_type(x.dtype)
    kind = "irfft" if irfft else ("idft" if inverse else "dft")
    name = f"{kind}_c{c_in}_{x.dtype}"
    sign = "+" if inverse else "-"
    if irfft:
        # Hermitian: bins 1 .. ceil(L/2) - 1 count twice; DC and (L even) Nyquist once
        term = """                const double wk = (k == 0 || 2 * k == L) ? 1.0 : 2.0;
                re += wk * (xr * tw[2 * t] - xi * tw[2 * t + 1]);"""
    else:
        term = f"""                const double c = tw[2 * t], s = {sign}tw[2 * t + 1];
                re += xr * c - xi * s;
                im += xr * s + xi * c;"""
    scale = "1.0 / (double)L" if inverse else "1.0"
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    double *tw = (double *)workspace;  /* cos, sin of 2 pi t / L */
    const double scale = {scale};
    int32_t o, i, k, j;
    for (j = 0; j < L; ++j) {{
        const double a = 6.283185307179586476925 * (double)j / (double)L;
        tw[2 * j] = cos(a);
        tw[2 * j + 1] = sin(a);
    }}
    for (o = 0; o < outer; ++o)
        for (i = 0; i < inner; ++i)
            for (j = 0; j < n_out; ++j) {{  /* output bin (or sample) j */
                double re = 0.0, im = 0.0;
                for (k = 0; k < n_use; ++k) {{  /* input sample (or bin) k */
                const {ct} *xp = x + (((int64_t)o * n_in + k) * inner + i) * {c_in};
                const double xr = (double)xp[0], xi = {"(double)xp[1]" if c_in == 2 else "0.0"};
                const int32_t t = (int32_t)(((int64_t)j * k) % L);
{term}
                }}
                {{
                    {ct} *yp = y + (((int64_t)o * n_out + j) * inner + i) * {c_out};
                    yp[0] = ({ct})(re * scale);
{"                    yp[1] = (" + ct + ")(im * scale);" + chr(10) if c_out == 2 else "                    (void)im;" + chr(10)}\
                }}
            }}
"""
    kernel = make_kernel(name, body, PARAMS, ("math",))
    params = PARAMS.pack(outer=numel(x.shape[:axis]), n_in=x.shape[axis],
                         inner=numel(x.shape[axis + 1:-1]), L=L, n_out=n_out, n_use=n_use)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params, workspace_bytes=16 * L,
                  note=f"{kind}, axis {axis}, length {L}")]
