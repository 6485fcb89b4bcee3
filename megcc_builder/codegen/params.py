"""Typed kernel parameters: one ordered, named list per kernel.

A kernel reads the integers that vary per layer (extents, strides, float bit patterns,
tables) from `const int32_t *p`. The `ParamSchema` of a kernel is the single place that
defines their order and meaning:

* in C, `schema.unpack(body)` writes the named, commented declarations at the top of the
  kernel body (`const int32_t N = p[0];  /* batch */`), only for the names the body uses,
  so kernel templates never index `p[...]` by hand and never need `(void)x;` silencers;
* in Python, `schema.pack(N=..., C=...)` builds the instruction's params list from named
  values, checking that every param is given (tables with their length);
* `megcc inspect` and the instruction-signature table name the params with it
  (`schema.describe(params)`).

Param kinds (all stored as int32 words):

    i32    an int32 scalar (extent, stride, offset, count)
    i64    an int32 scalar the kernel widens to int64 at once (byte counts, offsets that
           feed 64-bit index arithmetic)
    f32    a float32 bit pattern (codegen.kernel.f32_bits), read back with
           megcc_f32_from_bits
    table  a run of int32 words (per-axis extents, strides...), seen in C as
           `const int32_t *name`; its length is a Python int or, when the kernel is not
           specialised on it, a C expression over earlier scalars (e.g. "rank")
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple, Union


KINDS = ("i32", "i64", "f32", "table")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Param:
    name: str  # the C local the body uses
    comment: str  # meaning and units, for the generated C and `megcc inspect`
    kind: str = "i32"
    count: Union[int, str] = 1  # tables: length (int, or C expression over earlier scalars)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"param {self.name}: unknown kind {self.kind!r}")
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"bad param name {self.name!r}")
        if self.kind != "table" and self.count != 1:
            raise ValueError(f"param {self.name}: only tables have a count")


def i32(name: str, comment: str) -> Param:
    return Param(name, comment, "i32")


def i64(name: str, comment: str) -> Param:
    return Param(name, comment, "i64")


def f32(name: str, comment: str) -> Param:
    return Param(name, comment, "f32")


def table(name: str, count: Union[int, str], comment: str) -> Param:
    return Param(name, comment, "table", count)


def _uses(text: str, name: str) -> bool:
    return re.search(r"\b" + re.escape(name) + r"\b", text) is not None


class _Offset:
    """A word offset into p: a constant plus symbolic terms (lengths of earlier tables)."""

    def __init__(self):
        self.const = 0
        self.terms: Counter = Counter()

    def advance(self, count: Union[int, str]):
        if isinstance(count, int):
            self.const += count
        else:
            self.terms[count] += 1

    def c_expr(self) -> str:
        parts = [str(self.const)] if self.const or not self.terms else []
        for term, n in self.terms.items():
            term = term if _NAME.fullmatch(term) else f"({term})"
            parts.append(term if n == 1 else f"{n} * {term}")
        return " + ".join(parts)

    def names(self) -> List[str]:
        return [w for term in self.terms for w in _NAME.findall(term)]


@dataclass(frozen=True)
class ParamSchema:
    params: Tuple[Param, ...] = ()

    def __post_init__(self):
        seen = set()
        for prm in self.params:
            if prm.name in seen:
                raise ValueError(f"param {prm.name} listed twice")
            if isinstance(prm.count, str):
                unknown = [w for w in _NAME.findall(prm.count) if w not in seen]
                if unknown:
                    raise ValueError(f"table {prm.name}: length uses unknown {unknown}")
            seen.add(prm.name)

    @property
    def names(self) -> List[str]:
        return [prm.name for prm in self.params]

    def _layout(self) -> List[Tuple[Param, str, List[str]]]:
        """(param, C offset expression, the scalars that expression needs) in order."""
        out, off = [], _Offset()
        for prm in self.params:
            out.append((prm, off.c_expr(), off.names()))
            off.advance(prm.count)
        return out

    def unpack(self, body: str) -> str:
        """The C declarations of the params `body` uses (and those their offsets need)."""
        layout = self._layout()
        needed = {prm.name for prm, _, _ in layout if _uses(body, prm.name)}
        changed = True
        while changed:  # table offsets and lengths may name earlier scalars
            changed = False
            for prm, _, deps in layout:
                if prm.name in needed:
                    extra = set(deps) - needed
                    if extra:
                        needed |= extra
                        changed = True
        lines = []
        for prm, off, _ in layout:
            if prm.name not in needed:
                continue
            if prm.kind == "table":
                decl = f"const int32_t *{prm.name} = p" + ("" if off == "0" else f" + {off}")
            elif prm.kind == "f32":
                decl = f"const float {prm.name} = megcc_f32_from_bits(p[{off}])"
            else:
                ctype = "int64_t" if prm.kind == "i64" else "int32_t"
                decl = f"const {ctype} {prm.name} = p[{off}]"
            lines.append(f"    {decl};  /* {prm.comment} */\n")
        return "".join(lines)

    def pack(self, **values) -> List[int]:
        """The params list, in schema order, from named values (tables as sequences)."""
        missing = [n for n in self.names if n not in values]
        extra = [n for n in values if n not in self.names]
        if missing or extra:
            raise ValueError(f"params: missing {missing}, unknown {extra}")
        scalars: Dict[str, int] = {}
        out: List[int] = []
        for prm in self.params:
            v = values[prm.name]
            if prm.kind == "table":
                words = [_word(x) for x in v]
                want = prm.count if isinstance(prm.count, int) else \
                    eval(prm.count, {"__builtins__": {}}, dict(scalars))  # "rank", "2 * k"
                if _is_sym(want):  # a table as long as a run-time extent: only its hint
                    want = int(want)  # (specialises: the plan cannot stay dynamic)
                if len(words) != want:
                    raise ValueError(f"table {prm.name}: {len(words)} words, {want} expected")
                out.extend(words)
            else:
                scalars[prm.name] = _word(v)
                out.append(_word(v))
        return out

    def describe(self, params: Sequence[int]) -> str:
        """`N=1 C=3 ... strides=[1,4]` for params packed with this schema ('' if they do not
        fit it); f32 params shown as floats."""
        import struct

        words, pos, scalars, parts = list(params), 0, {}, []
        for prm in self.params:
            if prm.kind == "table":
                try:
                    n = prm.count if isinstance(prm.count, int) else \
                        eval(prm.count, {"__builtins__": {}}, dict(scalars))
                except Exception:
                    return ""
                if n < 0 or pos + n > len(words):
                    return ""
                parts.append(f"{prm.name}=[{','.join(repr(w) for w in words[pos:pos + n])}]")
                pos += n
                continue
            if pos >= len(words):
                return ""
            w = words[pos]
            pos += 1
            scalars[prm.name] = w
            if prm.kind == "f32":
                val = struct.unpack("<f", struct.pack("<I", w & 0xFFFFFFFF))[0]
                parts.append(f"{prm.name}={val:g}")
            else:  # (repr: a run-time param shows its expression, not its hint)
                parts.append(f"{prm.name}={w!r}")
        return " ".join(parts) if pos == len(words) else ""


NO_PARAMS = ParamSchema()


def schema(*params: Param) -> ParamSchema:
    return ParamSchema(tuple(params))



def int_constants(body: str, **values: int) -> str:
    """`const int32_t KH = 3;` lines for the compile-time values `body` uses: kernels
    specialised on a geometry name it without leaving unused locals behind."""
    return "".join(f"    const int32_t {name} = {value};\n" for name, value in values.items()
                   if _uses(body, name))


def _word(v):
    """A param value: an int, or a symbolic extent (ir/symbolic.py) that the dynamic plan
    recomputes at run time (kept as an expression, not specialised)."""
    from ..ir.symbolic import Sym

    return v if isinstance(v, Sym) else int(v)


def _is_sym(v) -> bool:
    from ..ir.symbolic import Sym

    return isinstance(v, Sym)
