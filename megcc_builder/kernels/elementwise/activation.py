"""Fused activations in kernel epilogues: the C of an activation expression applied to one
value, and the tag it adds to kernel names."""
from __future__ import annotations

from .generic import _expr_slug, render


def activation_code(act, var: str) -> str:
    """C expression applying a fused activation (expression over ('in', 0)) to `var`."""
    if act is None:
        return var
    code, _ = render(act, [var], ["float32"])
    return code


def activation_tag(act) -> str:
    return "" if act is None else "_" + _expr_slug(act).replace("_x0", "")
