"""The fused activations the float16 kernels (`*_neon64fp16_f16`, enable_ioc16) apply to a
finished float16x8_t in registers: none, ReLU, and a clamp to constants (ReLU6, Clip).
Other activations keep their op in float32 (passes/ioc16.py asks the registry first)."""
from __future__ import annotations

from typing import Optional

import numpy as np


def _const(arg) -> Optional[float]:
    if isinstance(arg, tuple) and len(arg) == 2 and arg[0] == "const":
        return float(arg[1])
    return None


def f16_clamp(act):
    """(lo, hi) of a supported activation (None = unbounded), or False if not supported.
    None act -> (None, None)."""
    if act is None:
        return None, None
    if act == ("Relu", ("in", 0)):
        return 0.0, None
    if isinstance(act, tuple) and len(act) == 4 and act[0] == "clip" and act[1] == ("in", 0):
        lo, hi = _const(act[2]), _const(act[3])
        if lo is not None and hi is not None:
            return lo, hi
    return False


def f16_literal(x: float) -> str:
    """A C float16 constant equal to x rounded to float16 (the clamp the kernel applies)."""
    return repr(float(np.float16(x))) + "f"


def clamp_code(act, v: str) -> str:
    """Statements clamping the float16x8_t `v` in place ("" for no activation)."""
    lo, hi = f16_clamp(act)
    out = ""
    if lo is not None:
        out += f"{v} = vmaxq_f16({v}, vdupq_n_f16({f16_literal(lo)}));"
    if hi is not None:
        out += f" {v} = vminq_f16({v}, vdupq_n_f16({f16_literal(hi)}));"
    return out.strip()


def clamp_tag(act) -> str:
    lo, hi = f16_clamp(act)
    if lo is None and hi is None:
        return ""
    if hi is None:
        return "_relu" if lo == 0.0 else f"_max{lo:g}".replace("-", "m").replace(".", "p")
    return f"_clip{lo:g}_{hi:g}".replace("-", "m").replace(".", "p")
