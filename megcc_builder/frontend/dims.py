"""Run-time input dimensions: model dim_params and `--input-shapes` names -> symbols.

Every symbol gets bounds (`16<=W<=2048` in --input-shapes; default [1, 16384]) and a hint,
the value the static part of the plan is compiled for (`--shape-hints "W=320"`; default 1
for a leading (batch) axis, otherwise 64, clamped into the bounds).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from ..ir import CompileError, Graph
from ..ir.graph import clip
from ..ir.symbolic import DEFAULT_MAX, DEFAULT_MIN, Sym

DEFAULT_HINT_BATCH, DEFAULT_HINT = 1, 64


@dataclass
class SymbolSpec:
    """What the user said about the symbols: bounds and hints by name."""
    bounds: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    hints: Dict[str, int] = field(default_factory=dict)


def sanitize(raw: str) -> str:
    if isinstance(raw, bytes):  # protobuf hands back a dim_param that is not valid UTF-8 as bytes
        raw = raw.decode("utf-8", "replace")
    name = re.sub(r"[^A-Za-z0-9_]", "_", raw.strip())
    if not name or name[0].isdigit():
        name = "d_" + name
    return name


class SymbolMaker:
    """Creates the graph's symbols: one per name, first use defines it."""

    def __init__(self, graph: Graph, spec: Optional[SymbolSpec], source: str):
        self.graph = graph
        self.spec = spec or SymbolSpec()
        self.source = source
        self.syms: Dict[str, Sym] = {}
        self.unnamed = 0

    def unnamed_symbol(self, axis: int) -> Sym:
        while f"d{self.unnamed}" in self.syms:
            self.unnamed += 1
        name = f"d{self.unnamed}"
        self.unnamed += 1
        return self.symbol(name, axis)

    def symbol(self, raw: str, axis: int) -> Sym:
        name = sanitize(raw)
        if name in self.syms:
            return self.syms[name]
        lo, hi = self.spec.bounds.get(name, (DEFAULT_MIN, DEFAULT_MAX))
        if name in self.spec.hints:
            hint = self.spec.hints[name]
            if not lo <= hint <= hi:
                raise CompileError(f"hint {name}={hint} is outside the bounds [{lo}, {hi}]",
                                   self.source)
        else:
            hint = DEFAULT_HINT_BATCH if axis == 0 else DEFAULT_HINT
            hint = min(max(hint, lo), hi)
        if name not in self.spec.bounds:
            self.graph.default_bounded.add(name)
        sym = Sym.symbol(name, hint)
        self.syms[name] = sym
        self.graph.symbols[name] = (lo, hi, hint)
        return sym

    def check_spec(self) -> None:
        """Bounds or hints given for a symbol the model does not have are mistakes."""
        for name in list(self.spec.bounds) + list(self.spec.hints):
            if name not in self.syms:
                known = ", ".join(sorted(self.syms)) or "none"
                raise CompileError(f"--input-shapes/--shape-hints name dimension "
                                   f"'{clip(name)}', which no input has (symbolic dimensions: "
                                   f"{known})", self.source)
