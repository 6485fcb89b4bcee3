"""The fused activations the float16 kernels (`*_neon64fp16_f16`, enable_ioc16) apply to a
finished float16x8_t in registers: none, ReLU, a clamp to constants (ReLU6, Clip), and
HardSwish (x * clamp(x + 3, 0, 6) * fl16(1/6), each step in float16). Other activations
keep their op in float32 (passes/ioc16.py asks the registry first)."""
from __future__ import annotations

from typing import Optional

import numpy as np


def _const(arg) -> Optional[float]:
    if isinstance(arg, tuple) and len(arg) == 2 and arg[0] == "const":
        return float(arg[1])
    return None


HSWISH = ("HardSwish", ("in", 0))


def f16_clamp(act):
    """(lo, hi) of a supported clamp activation (None = unbounded), (None, None) for none
    and for HardSwish (its own code), or False if not supported."""
    if act is None or act == HSWISH:
        return None, None
    if act == ("Relu", ("in", 0)):
        return 0.0, None
    if isinstance(act, tuple) and len(act) == 4 and act[0] == "clip" and act[1] == ("in", 0):
        lo, hi = _const(act[2]), _const(act[3])
        if lo is not None and hi is not None:
            return lo, hi
    return False


def f16_literal(x: float) -> str:
    """A C constant equal to x rounded to float16 (beyond its range: infinity, as the
    rounding gives; math.h's INFINITY / NAN)."""
    with np.errstate(over="ignore"):
        v = float(np.float16(x))
    if v != v:
        return "NAN"
    if v in (float("inf"), float("-inf")):
        return "INFINITY" if v > 0 else "-INFINITY"
    return repr(v) + "f"


def clamp_code(act, v: str) -> str:
    """Statements applying the activation to the float16x8_t `v` in place ("" for none)."""
    if act == HSWISH:
        c = lambda x: f"vdupq_n_f16({f16_literal(x)})"  # noqa: E731
        return (f"{v} = vmulq_f16(vmulq_f16({v}, vminq_f16(vmaxq_f16(vaddq_f16({v}, {c(3.0)}), "
                f"{c(0.0)}), {c(6.0)})), {c(1.0 / 6.0)});")
    lo, hi = f16_clamp(act)
    out = ""
    if lo is not None:
        out += f"{v} = vmaxq_f16({v}, vdupq_n_f16({f16_literal(lo)}));"
    if hi is not None:
        out += f" {v} = vminq_f16({v}, vdupq_n_f16({f16_literal(hi)}));"
    return out.strip()


def clamp_tag(act) -> str:
    if act == HSWISH:
        return "_hswish"
    lo, hi = f16_clamp(act)
    if lo is None and hi is None:
        return ""
    if hi is None:
        return "_relu" if lo == 0.0 else f"_max{lo:g}".replace("-", "m").replace(".", "p")
    return f"_clip{lo:g}_{hi:g}".replace("-", "m").replace(".", "p")
