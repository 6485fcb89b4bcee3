"""ir/symbolic.py: symbolic integer dimensions with hints and guards.

The oracle is plain integer arithmetic: every expression built from Syms must evaluate, for
every value of its symbols, to what Python computes on those values; and its program
(emit/dynamic.py, the runtime's evaluator) must give the same number."""
import itertools

import numpy as np
import pytest

from megcc_builder.emit.dynamic import evaluate as run_program
from megcc_builder.ir import symbolic as S
from megcc_builder.ir.symbolic import Sym, floordiv, hint, session, smax, smin

VALUES = range(1, 70)


def _syms(hw=(64, 48)):
    return Sym.symbol("W", hw[0]), Sym.symbol("H", hw[1])


def _check(expr_fn):
    """expr_fn(W, H) on Syms equals expr_fn on ints for every (W, H), via both the Python
    evaluation and the compiled program."""
    with session({"W": (1, 100), "H": (1, 100)}):
        W, H = _syms()
        e = expr_fn(W, H)
        prog = S.program(e, {"W": 0, "H": 1})
        assert hint(e) == expr_fn(64, 48)
        for w, h in itertools.product(VALUES, range(1, 12)):
            want = expr_fn(w, h)
            assert S.evaluate(e, {"W": w, "H": h}) == want, (w, h)
            assert run_program(prog, [w, h]) == want, (w, h)


@pytest.mark.parametrize("fn", [
    lambda W, H: W + 1 - 1,
    lambda W, H: (W + 2 - 3) // 2 + 1,                        # a conv's output extent
    lambda W, H: ((W - 1) // 2) // 2,
    lambda W, H: (((((W + 1) // 2 + 1) // 2 + 1) // 2 + 1) // 2 + 1) // 2,
    lambda W, H: (W * 3 + H) % 7,
    lambda W, H: (W * H * 3) // (H * 3),
    lambda W, H: -(-W // 8) * 8,                              # round up to a vector
    lambda W, H: smin(W * H, 100) + smax(W, 16),
    lambda W, H: floordiv(W * H + 5, H + 1),
    lambda W, H: (W - 1) * 2 + 3 - H * 2,
    lambda W, H: W ** 2 - 4 * W * H,
])
def test_expressions_evaluate_like_integers(fn):
    _check(fn)


def test_canonical_forms_compare_structurally():
    with session() as s:
        W, H = _syms()
        assert S.same(W + 1 - 1, W) and repr(W + 1 - 1) == "W"
        assert repr(((((W + 1) // 2 + 1) // 2 + 1) // 2)) == "(W + 7)//8"
        assert (W * H * 3) // (H * 3) is W or repr((W * H * 3) // (H * 3)) == "W"
        assert {W * 2: "x"}[2 * W] == "x"
        assert S.same(W * (H + 1), W * H + W)
        assert not S.same(W, H)
        assert W * 2 - W * 2 == 0 and isinstance(W * 2 - W * 2, int)
        assert s.guards == []  # structural equality decides without a guard


def test_bounds_decide_without_guards():
    with session({"W": (16, 2048)}) as s:
        W = Sym.symbol("W", 320)
        assert W >= 16 and W > 1 and not W < 16 and W != 5000
        assert S.same(smin(W, 4096), W) and S.same(smax(W, 8), W)
        assert s.guards == []


def test_undecided_comparisons_record_guards_naming_the_node():
    with session({"W": (1, 2048)}) as s:
        W = Sym.symbol("W", 320)
        with S.at_node("'conv1' (Conv)"):
            assert W > 100           # true on the hint: guard W - 100 > 0
            assert not W == 7        # false on the hint: guard W != 7
        assert [(g.op, g.node) for g in s.guards] == [("<", "'conv1' (Conv)"),
                                                        ("!=", "'conv1' (Conv)")]
        assert not any(g.pins for g in s.guards)
        idx = {"W": 0}
        progs = [S.guard_program(g, idx) for g in s.guards]
        for w in (1, 7, 100, 101, 320, 2048):
            assert bool(run_program(progs[0], [w])) == (w > 100)
            assert bool(run_program(progs[1], [w])) == (w != 7)


def test_specialising_pins_the_symbol():
    with session() as s:
        W, _ = _syms()
        with S.at_node("'r' (Reshape)"):
            assert int(W * 2) == 128
            assert f"{W}" == "64"
        assert all(g.pins and g.specialised for g in s.guards)
        assert s.guards[0].node == "'r' (Reshape)"
    with session() as s:
        W, _ = _syms()
        assert repr(W * 2 + 1) == "2*W + 1"  # repr (error messages) never specialises
        assert s.guards == []


def test_hint_only_records_nothing():
    with session() as s:
        W, _ = _syms()
        with S.hint_only():
            assert W > 10 and int(W) == 64 and min(W, 100) == 64
        assert s.guards == []


def test_numpy_object_arrays_fold_shapes():
    with session():
        W, H = _syms()
        shape = np.array([1, 3, H, W], dtype=object)
        assert np.prod(shape[2:]) == H * W
        assert list(np.concatenate([shape[:1], np.array([-1], dtype=object)])) == [1, -1]


def test_broadcast_shapes():
    with session() as s:
        W, H = _syms()
        assert S.broadcast_shapes((1, 3, H, W), (3, 1, 1)) == (1, 3, H, W)
        assert S.broadcast_shapes((W,), (1,)) == (W,)
        assert s.guards == []
        with pytest.raises(ValueError):
            S.broadcast_shapes((3,), (4,))


def test_upper_bound_covers_every_value():
    bounds = {"W": (1, 100), "H": (3, 9)}
    W, H = _syms()
    for e in (W * H * 4, (W + 31) // 32 * H, smin(W, H) + smax(W, 50)):
        top = S.upper_bound(e, bounds)
        assert top >= max(S.evaluate(e, {"W": w, "H": h})
                          for w in range(1, 101) for h in range(3, 10))


def test_constants_beyond_32_bits_are_refused():
    W, _ = _syms()
    with pytest.raises(S.ExprError):
        S.program(W * (1 << 40), {"W": 0})
