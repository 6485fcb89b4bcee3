"""Symbolic integer dimensions: sizes only known at run time, traced through the compiler.

A `Sym` is an immutable integer expression of the run-time symbols (`W`, `batch`) that also
carries a *hint* value: it subclasses `int` with the hint as its int value, so compiler code
written for static shapes runs unchanged on the hint instance while `+ - * // % min max`
keep building expressions. Expressions are kept canonical (a polynomial: monomial ->
coefficient, with floor-division, min and max as atoms), so `W + 1 - 1` is `W` and equal
sizes compare equal structurally (`hash`, `==`, the planner's in-place reuse).

Decisions the compiler takes on a Sym are recorded, so that the plan is only used where
they hold (docs/dynamic-shapes.md, "guards"):

* a comparison (`==`, `<`, `bool()`, ...) that the symbols' bounds do not decide evaluates
  on the hints and records a *guard* (the comparison, naming the node being compiled);
* `int()`, `__index__`, `str()`/`format()` and `float()` *specialise*: they record the
  guard `expr == hint`, which pins the symbols; the compiler then refuses to keep the
  dimension dynamic and names the node that needed its value.

Choices that only affect speed (kernel selection by cost) run inside `hint_only()`, where
everything evaluates on the hints without guards.

The module is self-contained (ir/ imports only ir/); `session()` opens the guard log of
one compile.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

DEFAULT_MIN, DEFAULT_MAX = 1, 16384

# --- canonical expressions -------------------------------------------------------------
# atom:     ("s", name) | ("fd", poly, divisor:int) | ("min", poly, poly) | ("max", poly, poly)
#           | ("fdx", poly, poly)  (floor division by a non-constant)
# monomial: tuple of (atom, power) sorted by atom key
# poly:     tuple of (monomial, coef) sorted by monomial key; () is 0; ((), c) is a constant
Poly = tuple


def _akey(atom) -> str:
    return repr(atom)


def _mono_key(mono) -> str:
    return repr(mono)


def _make_poly(terms: Dict[tuple, int]) -> Poly:
    return tuple(sorted(((m, c) for m, c in terms.items() if c), key=lambda mc: _mono_key(mc[0])))


def _const_poly(c: int) -> Poly:
    return (((), c),) if c else ()


def _poly_add(a: Poly, b: Poly, sb: int = 1) -> Poly:
    terms = dict(a)
    for m, c in b:
        terms[m] = terms.get(m, 0) + sb * c
    return _make_poly(terms)


def _mono_mul(m1, m2):
    powers: Dict[str, list] = {}
    for atom, p in m1 + m2:
        k = _akey(atom)
        if k in powers:
            powers[k][1] += p
        else:
            powers[k] = [atom, p]
    return tuple((a, p) for k, (a, p) in sorted(powers.items()))


def _poly_mul(a: Poly, b: Poly) -> Poly:
    terms: Dict[tuple, int] = {}
    for m1, c1 in a:
        for m2, c2 in b:
            m = _mono_mul(m1, m2)
            terms[m] = terms.get(m, 0) + c1 * c2
    return _make_poly(terms)


def _as_const(p: Poly) -> Optional[int]:
    if not p:
        return 0
    if len(p) == 1 and p[0][0] == ():
        return p[0][1]
    return None


def _atom_poly(atom) -> Poly:
    return ((((atom, 1),), 1),)


def _symbols_of(p: Poly, out: set) -> set:
    for m, _ in p:
        for atom, _ in m:
            if atom[0] == "s":
                out.add(atom[1])
            else:
                for part in atom[1:]:
                    if isinstance(part, tuple):
                        _symbols_of(part, out)
    return out


def _eval_poly(p: Poly, env: Dict[str, int]) -> int:
    total = 0
    for m, c in p:
        v = c
        for atom, power in m:
            v *= _eval_atom(atom, env) ** power
        total += v
    return total


def _eval_atom(atom, env) -> int:
    kind = atom[0]
    if kind == "s":
        return env[atom[1]]
    if kind == "fd":
        return _eval_poly(atom[1], env) // atom[2]
    a, b = _eval_poly(atom[1], env), _eval_poly(atom[2], env)
    if kind == "fdx":
        return a // b
    return min(a, b) if kind == "min" else max(a, b)


def _interval_poly(p: Poly, bounds) -> Tuple[float, float]:
    lo = hi = 0
    for m, c in p:
        mlo, mhi = c, c
        for atom, power in m:
            alo, ahi = _interval_atom(atom, bounds)
            for _ in range(power):
                cands = (mlo * alo, mlo * ahi, mhi * alo, mhi * ahi)
                mlo, mhi = min(cands), max(cands)
        lo, hi = lo + mlo, hi + mhi
    return lo, hi


def _interval_atom(atom, bounds) -> Tuple[float, float]:
    kind = atom[0]
    if kind == "s":
        return bounds.get(atom[1], (DEFAULT_MIN, DEFAULT_MAX))
    if kind == "fd":
        lo, hi = _interval_poly(atom[1], bounds)
        return math.floor(lo / atom[2]), math.floor(hi / atom[2])
    alo, ahi = _interval_poly(atom[1], bounds)
    blo, bhi = _interval_poly(atom[2], bounds)
    if kind == "min":
        return min(alo, blo), min(ahi, bhi)
    if kind == "max":
        return max(alo, blo), max(ahi, bhi)
    if blo <= 0:  # fdx: unknown sign of the divisor
        return -math.inf, math.inf
    cands = [alo / blo, alo / bhi, ahi / blo, ahi / bhi]
    return math.floor(min(cands)), math.floor(max(cands))


def _poly_str(p: Poly) -> str:
    if not p:
        return "0"
    parts = []
    for m, c in p:
        factors = [_atom_str(a) + (f"^{k}" if k > 1 else "") for a, k in m]
        if not factors:
            parts.append(str(c))
            continue
        text = "*".join(factors)
        parts.append(text if c == 1 else f"-{text}" if c == -1 else f"{c}*{text}")
    out = parts[0]
    for t in parts[1:]:
        out += f" - {t[1:]}" if t.startswith("-") else f" + {t}"
    return out


def _atom_str(atom) -> str:
    kind = atom[0]
    if kind == "s":
        return atom[1]
    if kind == "fd":
        return f"({_poly_str(atom[1])})//{atom[2]}"
    if kind == "fdx":
        return f"({_poly_str(atom[1])})//({_poly_str(atom[2])})"
    return f"{kind}({_poly_str(atom[1])}, {_poly_str(atom[2])})"


# --- the compile session: bounds, guards, the node being compiled -------------------------

@dataclass(frozen=True)
class Guard:
    """`expr OP 0` must hold at run time (OP one of ==, !=, <, <=)."""
    op: str
    expr: Poly
    node: str
    why: str
    specialised: bool = False  # recorded by int()/str(): the plan needs the hint value

    @property
    def pins(self) -> bool:
        """An equality on a plain polynomial of one symbol fixes that symbol's value (and a
        specialisation fixes whatever it was computed from)."""
        if self.specialised:
            return True
        if self.op != "==":
            return False
        atoms = {a for m, _ in self.expr for a, _ in m}
        return len(atoms) == 1 and next(iter(atoms))[0] == "s"

    def text(self) -> str:
        return f"{_poly_str(self.expr)} {self.op} 0"


@dataclass
class Session:
    bounds: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    guards: List[Guard] = field(default_factory=list)
    node: str = ""
    hint_only: int = 0
    # implementation chosen by cost per node (kernels/registry.py), and choices to repeat
    # (tests compile a static plan with the choices a dynamic one made at its hints)
    choices: Dict[str, str] = field(default_factory=dict)
    replay: Dict[str, str] = field(default_factory=dict)
    # symbols computed by instructions (ir/value_shapes.py): a broadcast between one of
    # them and another extent is a guard, not a compile-time decision on the hints
    value_symbols: set = field(default_factory=set)

    def record(self, op: str, expr: Poly, why: str, specialised: bool = False) -> None:
        if self.hint_only:
            return
        for g in self.guards:
            if g.op == op and g.expr == expr:
                return
        if _DEBUG:  # where the compiler took the decision (MEGCC_SYM_DEBUG=1)
            import traceback
            why = (why + " at " if why else "at ") + " <- ".join(
                f"{f.name}:{f.lineno}" for f in traceback.extract_stack()[-8:-3][::-1])
        self.guards.append(Guard(op, expr, self.node, why, specialised))


_STACK: List[Session] = []
_DEBUG = bool(__import__("os").environ.get("MEGCC_SYM_DEBUG"))


def current() -> Optional[Session]:
    return _STACK[-1] if _STACK else None


@contextlib.contextmanager
def session(bounds: Optional[Dict[str, Tuple[int, int]]] = None,
            replay: Optional[Dict[str, str]] = None):
    """The guard log and symbol bounds of one compile."""
    s = Session(dict(bounds or {}), replay=dict(replay or {}))
    _STACK.append(s)
    try:
        yield s
    finally:
        _STACK.pop()


@contextlib.contextmanager
def at_node(name: str):
    """Guards recorded inside name this node."""
    s = current()
    if s is None:
        yield
        return
    old, s.node = s.node, name
    try:
        yield
    finally:
        s.node = old


@contextlib.contextmanager
def hint_only():
    """Decisions that only affect speed: evaluate on the hints, record nothing."""
    s = current()
    if s is None:
        yield
        return
    s.hint_only += 1
    try:
        yield
    finally:
        s.hint_only -= 1


def _bounds() -> dict:
    s = current()
    return s.bounds if s else {}


# --- Sym ---------------------------------------------------------------------------------

class Sym(int):
    """A non-constant integer expression with a hint value (its int value)."""

    def __new__(cls, poly: Poly, hint: int):
        self = int.__new__(cls, hint)
        self.poly = poly
        return self

    @staticmethod
    def symbol(name: str, hint: int) -> "Sym":
        return Sym(_atom_poly(("s", name)), hint)

    # plain hint value, without any guard (the writer of the hint instance uses it)
    @property
    def hint(self) -> int:
        return int.__int__(self)

    @property
    def symbols(self) -> set:
        return _symbols_of(self.poly, set())

    def evaluate(self, env: Dict[str, int]) -> int:
        return _eval_poly(self.poly, env)

    # -- arithmetic (hint follows along) --
    def __add__(self, o):
        return _binop(self, o, lambda a, b: _poly_add(a, b), lambda a, b: a + b)

    __radd__ = __add__

    def __sub__(self, o):
        return _binop(self, o, lambda a, b: _poly_add(a, b, -1), lambda a, b: a - b)

    def __rsub__(self, o):
        return _binop(o, self, lambda a, b: _poly_add(a, b, -1), lambda a, b: a - b)

    def __mul__(self, o):
        return _binop(self, o, _poly_mul, lambda a, b: a * b)

    __rmul__ = __mul__

    def __neg__(self):
        return _wrap(_poly_add((), self.poly, -1), -self.hint)

    def __pos__(self):
        return self

    def __abs__(self):
        return self if self >= 0 else -self

    def __floordiv__(self, o):
        return floordiv(self, o)

    def __rfloordiv__(self, o):
        return floordiv(o, self)

    def __mod__(self, o):
        return self - o * floordiv(self, o)

    def __rmod__(self, o):
        return o - self * floordiv(o, self)

    def __pow__(self, k, mod=None):
        if isinstance(k, int) and not isinstance(k, Sym) and k >= 0 and mod is None:
            out = 1
            for _ in range(k):
                out = out * self
            return out
        return int(self) ** k

    def __truediv__(self, o):
        return float(self) / (float(o) if isinstance(o, Sym) else o)

    def __rtruediv__(self, o):
        return o / float(self)

    # -- comparisons: decided by bounds, else on the hint with a guard --
    def __eq__(self, o):
        return _compare(self, o, "==")

    def __ne__(self, o):
        return not _compare(self, o, "==")

    def __lt__(self, o):
        return _compare(self, o, "<")

    def __le__(self, o):
        return _compare(self, o, "<=")

    def __gt__(self, o):
        return _compare(o, self, "<")

    def __ge__(self, o):
        return _compare(o, self, "<=")

    def __bool__(self):
        return not _compare(self, 0, "==")

    def __hash__(self):
        return hash(self.poly)

    # -- specialisation --
    def __int__(self):
        return specialise(self, "its value is needed at compile time")

    def __index__(self):
        return specialise(self, "its value is needed at compile time")

    def __float__(self):
        return float(specialise(self, "its value is needed at compile time"))

    def __str__(self):
        return str(specialise(self, "its value is written into generated code"))

    def __format__(self, spec):
        return format(specialise(self, "its value is written into generated code"), spec)

    def __repr__(self):
        return _poly_str(self.poly)

    def __reduce__(self):  # copy/pickle keep the expression
        return (Sym, (self.poly, self.hint))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


def is_sym(x) -> bool:
    return isinstance(x, Sym)


def hint(x) -> int:
    """The hint value of an int or Sym, without a guard."""
    return x.hint if isinstance(x, Sym) else int(x)


def poly_of(x) -> Poly:
    return x.poly if isinstance(x, Sym) else _const_poly(int(x))


def _wrap(poly: Poly, hint_value: int):
    c = _as_const(poly)
    if c is not None:
        return c
    return Sym(poly, hint_value)


def _binop(a, b, fpoly, fint):
    if not isinstance(b, (int, Sym)) or isinstance(b, bool) and False:
        if isinstance(b, float):
            return fint(float(a), b)
        return NotImplemented
    if not isinstance(a, (int, Sym)):
        if isinstance(a, float):
            return fint(a, float(b))
        return NotImplemented
    return _wrap(fpoly(poly_of(a), poly_of(b)), fint(hint(a), hint(b)))


def floordiv(a, b):
    """a // b, simplified: exact parts pulled out, nested divisions merged."""
    if isinstance(a, float) or isinstance(b, float):
        return float(a) // float(b)
    ha, hb = hint(a), hint(b)
    if not isinstance(b, Sym):
        b = int(b)
        if not isinstance(a, Sym):
            return a // b
        if b == 1:
            return a
        if b <= 0:
            return Sym(_atom_poly(("fdx", a.poly, _const_poly(b))), ha // hb)
        q: Dict[tuple, int] = {}
        r: Dict[tuple, int] = {}
        for m, c in a.poly:
            if m == ():
                q[m] = c // b
                if c % b:
                    r[m] = c % b
            elif c % b == 0:
                q[m] = c // b
            else:
                r[m] = c
        rp = _make_poly(r)
        rc = _as_const(rp)
        if rc is not None:  # 0 <= rc < b
            return _wrap(_make_poly(q), ha // hb)
        # (x // c + k) // b == (x + c * k) // (c * b) for positive c, b and integer k
        var = [(m, c) for m, c in rp if m != ()]
        k = sum(c for m, c in rp if m == ())
        if len(var) == 1 and var[0][1] == 1 and len(var[0][0]) == 1 and var[0][0][0][1] == 1 \
                and var[0][0][0][0][0] == "fd":
            atom = var[0][0][0][0]
            rest = ("fd", _poly_add(atom[1], _const_poly(atom[2] * k)), atom[2] * b)
        else:
            rest = ("fd", rp, b)
        return _wrap(_poly_add(_make_poly(q), _atom_poly(rest)), ha // hb)
    exact = _divide_exactly(poly_of(a), b.poly)
    if exact is not None:
        return _wrap(exact, ha // hb)
    return _wrap(_atom_poly(("fdx", poly_of(a), b.poly)), ha // hb)


def _divide_exactly(a: Poly, b: Poly) -> Optional[Poly]:
    """a / b when b is one positive monomial that divides every term of a, else None."""
    if len(b) != 1 or b[0][1] <= 0:
        return None
    (bm, bc), = b
    need = {_akey(atom): (atom, p) for atom, p in bm}
    terms: Dict[tuple, int] = {}
    for m, c in a:
        if c % bc:
            return None
        have = {_akey(atom): [atom, p] for atom, p in m}
        for k, (atom, p) in need.items():
            if k not in have or have[k][1] < p:
                return None
            have[k][1] -= p
        mono = tuple((atom, p) for k, (atom, p) in sorted(have.items()) if p)
        terms[mono] = terms.get(mono, 0) + c // bc
    return _make_poly(terms)


def _minmax(kind: str, a, b):
    ha, hb = hint(a), hint(b)
    pick = min if kind == "min" else max
    if not isinstance(a, Sym) and not isinstance(b, Sym):
        return pick(a, b)
    d = _poly_add(poly_of(a), poly_of(b), -1)
    lo, hi = _decide_range(d)
    if hi <= 0:  # a <= b always
        return a if kind == "min" else b
    if lo >= 0:
        return b if kind == "min" else a
    pa, pb = sorted([poly_of(a), poly_of(b)], key=repr)
    return Sym(_atom_poly((kind, pa, pb)), pick(ha, hb))


def smin(*xs):
    """min() that keeps expressions (builtin min would compare and guard)."""
    out = xs[0]
    for x in xs[1:]:
        out = _minmax("min", out, x)
    return out


def smax(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = _minmax("max", out, x)
    return out


def at_most(x, c: int):
    """1 if x <= c else 0, without a guard: for a Sym an expression of it (a size that
    depends on a comparison, e.g. room a kernel needs only for small extents, stays the
    same formula for static and run-time extents)."""
    return smin(1, smax(0, c + 1 - x))


def _decide_range(d: Poly) -> Tuple[float, float]:
    c = _as_const(d)
    if c is not None:
        return c, c
    return _interval_poly(d, _bounds())


def _compare(a, b, op: str) -> bool:
    """a OP b for OP in ==, <, <=; proved from the bounds or guarded on the hints."""
    if not isinstance(b, (int, Sym)) or not isinstance(a, (int, Sym)):
        fa = float(a) if isinstance(a, Sym) else a
        fb = float(b) if isinstance(b, Sym) else b
        return {"==": lambda: fa == fb, "<": lambda: fa < fb, "<=": lambda: fa <= fb}[op]()
    d = _poly_add(poly_of(a), poly_of(b), -1)  # a - b
    lo, hi = _decide_range(d)
    if op == "==":
        if lo == hi == 0:
            return True
        if lo > 0 or hi < 0:
            return False
    elif op == "<":
        if hi < 0:
            return True
        if lo >= 0:
            return False
    else:
        if hi <= 0:
            return True
        if lo > 0:
            return False
    hv = hint(a) - hint(b)
    result = {"==": hv == 0, "<": hv < 0, "<=": hv <= 0}[op]
    s = current()
    if s is not None:
        if result:
            s.record(op, d, "")
        elif op == "==":
            s.record("!=", d, "")
        elif op == "<":   # not (d < 0): -d <= 0
            s.record("<=", _poly_add((), d, -1), "")
        else:             # not (d <= 0): -d < 0
            s.record("<", _poly_add((), d, -1), "")
    return result


def specialise(x: Sym, why: str) -> int:
    """The hint of `x`, recording that the plan is only valid for it."""
    s = current()
    if s is not None and not s.hint_only:
        s.record("==", _poly_add(x.poly, _const_poly(-x.hint), 1), why, True)
    return x.hint


def same(a, b) -> bool:
    """Equality of two ints/Syms for every shape the plan accepts, without a new guard:
    structurally equal, or equal by a guard already recorded (the detector's upsampled
    `2*((H + 31)//32)` and its lateral `(H + 15)//16`). False also when they merely might
    differ."""
    pa, pb = poly_of(a), poly_of(b)
    if pa == pb:
        return True
    s = current()
    if s is None or (_as_const(pa) is not None and _as_const(pb) is not None):
        return False
    d = _poly_add(pa, pb, -1)
    neg = _poly_add((), d, -1)
    return any(g.op == "==" and (g.expr == d or g.expr == neg) for g in s.guards)


def same_shape(a: Sequence, b: Sequence) -> bool:
    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))


def broadcast_shapes(*shapes: Sequence) -> tuple:
    """numpy's multidirectional broadcast for shapes with Syms: extents equal structurally
    or 1; two different symbolic extents must be equal (a guard). ValueError when they
    cannot broadcast."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        dims = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        real = [d for d in dims if not known(d, 1)]
        if not real:
            out.append(1)
            continue
        d0 = next((d for d in real if isinstance(d, Sym)), real[0])
        computed = [d for d in real if _reads_value_symbol(d)]
        if computed and len(computed) < len(real):
            d0 = next(d for d in real if not _reads_value_symbol(d))  # the known extent
        for d in real:
            if same(d, d0):
                continue
            if _reads_value_symbol(d) or _reads_value_symbol(d0):
                # a computed extent: equal (not 1) at run time, checked once it is known
                current().record("==", _poly_add(poly_of(d), poly_of(d0), -1),
                                 "broadcast of a computed extent")
                continue
            if d != d0:
                raise ValueError(f"shapes {shapes} do not broadcast")
        out.append(d0)
    return tuple(out)


def _reads_value_symbol(x) -> bool:
    s = current()
    return isinstance(x, Sym) and s is not None and bool(x.symbols & s.value_symbols)


def known(x, value: int) -> bool:
    """x is the constant `value` (no guard: a symbolic x is not known to be anything)."""
    return not isinstance(x, Sym) and x == value


def evaluate(x, env: Dict[str, int]) -> int:
    return x.evaluate(env) if isinstance(x, Sym) else int(x)


def substitute_hints(values: Iterable) -> tuple:
    return tuple(hint(v) for v in values)


def any_sym(values: Iterable) -> bool:
    return any(isinstance(v, Sym) for v in values)


# --- expression programs (emit/dynamic.py) -------------------------------------------------

CONST, SYM, ADD, SUB, MUL, FLOORDIV, MOD, MIN, MAX, EQ, LE, LT, AND = range(1, 14)
I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1


class ExprError(ValueError):
    pass


def program(x, symbol_index: Dict[str, int]) -> Tuple[int, ...]:
    """Reverse Polish program (u32 words, emit/dynamic.py opcodes) computing `x`."""
    words: List[int] = []
    _emit_poly(poly_of(x), symbol_index, words)
    return tuple(words)


def guard_program(g: Guard, symbol_index: Dict[str, int]) -> Tuple[int, ...]:
    """Program that is non-zero when the guard holds."""
    words: List[int] = []
    _emit_poly(g.expr, symbol_index, words)
    if g.op == "!=":  # d != 0  <=>  (d < 0) + (0 < d)
        d = list(words)
        words = d + _const(0) + [LT] + _const(0) + d + [LT, ADD]
        return tuple(words)
    words += _const(0) + [{"==": EQ, "<": LT, "<=": LE}[g.op]]
    return tuple(words)


def _const(v: int) -> List[int]:
    if not I32_MIN <= v <= I32_MAX:
        raise ExprError(f"constant {v} does not fit 32 bits")
    return [CONST, v & 0xFFFFFFFF]


def _emit_poly(p: Poly, idx, words: List[int]) -> None:
    if not p:
        words += _const(0)
        return
    first = True
    for m, c in p:
        neg = c < 0 and not first
        mag = -c if neg else c
        if m == ():
            words += _const(mag)
        else:
            _emit_mono(m, idx, words)
            if mag != 1:
                words += _const(mag) + [MUL]
        if not first:
            words.append(SUB if neg else ADD)
        first = False


def _emit_mono(m, idx, words) -> None:
    first = True
    for atom, power in m:
        for _ in range(power):
            _emit_atom(atom, idx, words)
            if not first:
                words.append(MUL)
            first = False


def _emit_atom(atom, idx, words) -> None:
    kind = atom[0]
    if kind == "s":
        words += [SYM, idx[atom[1]]]
    elif kind == "fd":
        _emit_poly(atom[1], idx, words)
        words += _const(atom[2]) + [FLOORDIV]
    else:
        _emit_poly(atom[1], idx, words)
        _emit_poly(atom[2], idx, words)
        words.append({"fdx": FLOORDIV, "min": MIN, "max": MAX}[kind])


def upper_bound(x, bounds: Dict[str, Tuple[int, int]]) -> float:
    """Largest value `x` can take within the bounds (an over-estimate for non-monotone)."""
    if not isinstance(x, Sym):
        return int(x)
    return _interval_poly(x.poly, bounds)[1]


def describe(x) -> str:
    return repr(x) if isinstance(x, Sym) else str(int(x))


def shape_text(shape: Sequence) -> str:
    """`(1,3,H,W)` without specialising anything."""
    return "(" + ",".join(describe(d) for d in shape) + ")"
