"""Direct window kernels (depthwise convolution, pooling) over a padded input plane:
the plane's extents and the generated loop over one output row, for one vector vocabulary."""
from __future__ import annotations

import textwrap

from ..ir.symbolic import smax
from .vector import Simd


def plane(geo, vw: int):
    """Padded input plane extents for vw-wide outputs: every vector load of any output row
    (full vectors, or deinterleaving loads of 2*vw floats at stride 2) stays inside."""
    owv = -(-geo["ow"] // vw) * vw
    last = (owv - vw) * geo["sw"] + (geo["kw"] - 1) * geo["dw"] + (vw if geo["sw"] == 1 else 2 * vw)
    pw = smax(geo["pads"][1] + geo["w"], last)  # (expressions for run-time extents)
    ph = smax((geo["oh"] - 1) * geo["sh"] + (geo["kh"] - 1) * geo["dh"] + 1, 1)
    return ph, pw


def window_row(s: Simd, stride: int, start, tap, finish, indent: int) -> str:
    """The loop over one output row (yr, OW outputs, input rows from `row`) of a direct
    window kernel (max pooling): s.row_unroll output vectors per step,
    each with its own accumulator acc<u> (in-order cores overlap their latency chains), then
    single vectors with a partial store at the row's end. start(u): declaration of acc<u>;
    tap(u, x): statements folding the input vector x into it; finish(u): before the store.
    The code is indented by `indent` spaces (its first line by none)."""
    def step(n: int, store: str) -> str:
        srcs = [f"r + {u * s.vw * stride} + kx * DW" if u else "r + kx * DW" for u in range(n)]
        loads = [s.load(p) if stride == 1 else s.even(p) for p in srcs]
        return "\n".join(["{", *(f"    {start(u)}" for u in range(n)),
                          "    for (ky = 0; ky < KH; ++ky) {",
                          "        const float *r = row + (int64_t)ky * DH * PW + ox * SW;",
                          "        for (kx = 0; kx < KW; ++kx) {",
                          *(f"            {tap(u, loads[u])}" for u in range(n)),
                          "        }", "    }",
                          *(f"    {finish(u)}" for u in range(n) if finish(u)),
                          f"    {store}", "}"])
    u, vw = s.row_unroll, s.vw
    lines = ["ox = 0;"]
    if u > 1:
        stores = " ".join(s.store(f"yr + ox + {i * vw}", f"acc{i}") + ";" for i in range(u))
        lines.append(f"for (; ox + {u * vw} <= OW; ox += {u * vw}) " + step(u, stores))
    lines.append(f"for (; ox < OW; ox += {vw}) " + step(1, store_row_tail(s, "acc0")))
    return textwrap.indent("\n".join(lines), " " * indent).lstrip()


def store_row_tail(s: Simd, v: str) -> str:
    """Store vector v at yr + ox, only its OW - ox live lanes when it is the row's last."""
    return (f"if (ox + {s.vw} <= OW) {s.store('yr + ox', v)};\n"
            f"    else {{ float t[{s.vw}]; int32_t q; {s.store('t', v)}; "
            f"for (q = 0; q < OW - ox; ++q) yr[ox + q] = t[q]; }}")
