"""Hand-made dynamic plans over the fixture kernels (fixture_kernels.py), for the runtime
tests of docs/dynamic-shapes.md: built with the Python twin (emit/dynamic.py), so the
hint instance stored in the plan is exactly what the runtime computes at the hint.

Model "dyn" (symbol N, bounds [1, 64], hint 2), inputs x (N, 3) and z (N, 2):
    t = x + x; r = relu(t) (staged through workspace ws); o = r * 0.5  -> output o
    o_last = view of o's last row (byte offset 12 (N - 1))           -> output o_last
    zo = relu(z)                                                      -> output zo
    guard: N != 5 ("node Guarded: N must not be 5")
plus, as plan 1, a static plan for N = 4 computing o = relu(2x) * 2.0 (a different
constant, so a test can tell which plan ran).
"""
from typing import Dict, List, Optional, Sequence, Tuple

from megcc_builder.emit.dynamic import (ADD, CONST, EQ, FLOORDIV, MUL, SUB, SYM, Buffer,
                                        DynamicPlan, Symbol, evaluate, place_buffers)
from megcc_builder.emit.model_blob import (BlobInstr, BlobPlan, BlobTensor, float_param,
                                           write_model)

import fixture_kernels as fk

K = {n: i for i, n in enumerate(fk.NAMES)}
N_MIN, N_MAX, HINT = 1, 64, 2


def c(v: int) -> Tuple[int, ...]:
    return (CONST, v & 0xFFFFFFFF)


N = (SYM, 0)


def times(k: int, e=N) -> Tuple[int, ...]:
    return (*e, *c(k), MUL)


def _static_plan_n4() -> BlobPlan:
    T = BlobTensor
    tensors = [T("x", "float32", (4, 3), "arena", 0), T("z", "float32", (4, 2), "arena", 64),
               T("t", "float32", (4, 3), "arena", 128), T("r", "float32", (4, 3), "arena", 192),
               T("o", "float32", (4, 3), "arena", 256),
               T("o_last", "float32", (3,), "view", 36, base=4),
               T("zo", "float32", (4, 2), "arena", 320)]
    instrs = [BlobInstr(K["add_f32"], [0, 0], [2], [12]),
              BlobInstr(K["relu_f32"], [2], [3], [12]),
              BlobInstr(K["scale_f32"], [3], [4], [12, float_param(2.0)]),
              BlobInstr(K["relu_f32"], [1], [6], [8])]
    return BlobPlan("x=(4,3);z=(4,2)", 0, 384, tensors, instrs, [0, 1], [4, 5, 6])


def dynamic_plan(hint: int = HINT, exprs: Optional[Dict[str, tuple]] = None,
                 guard: Optional[tuple] = None, extra_guards: Sequence = ()) -> BlobPlan:
    """The dynamic plan at `hint`; `exprs` overrides named expressions (to build faulty
    plans), guard replaces the N != 5 guard's expression."""
    e = {"N": N, "3N": times(3), "2N": times(2), "12N": times(12), "8N": times(8),
         "last": (*N, *c(1), SUB, *c(12), MUL),
         "guard": (*N, *c(5), EQ, *c(0), EQ)}
    if guard is not None:
        e["guard"] = guard
    e.update(exprs or {})
    dyn = DynamicPlan(symbols=[Symbol("N", N_MIN, N_MAX, 0, 0)])
    ix = {name: dyn.expr_index(v) for name, v in e.items()}
    # tensors: 0 x, 1 z, 2 t, 3 ws, 4 r, 5 o, 6 o_last (view), 7 zo
    dyn.dims = [(0, 0, ix["N"]), (1, 0, ix["N"]), (2, 0, ix["N"]), (3, 0, ix["3N"]),
                (4, 0, ix["N"]), (5, 0, ix["N"]), (7, 0, ix["N"])]
    dyn.view_offsets = [(6, ix["last"])]
    dyn.params = [(0, 0, ix["3N"]), (1, 0, ix["3N"]), (2, 0, ix["3N"]), (3, 0, ix["2N"])]
    dyn.guards = [(ix["guard"], "node Guarded: N must not be 5")]
    for g, msg in extra_guards:
        dyn.guards.append((dyn.expr_index(g), msg))
    n_instrs = 4
    dyn.buffers = [Buffer(ix["12N"], -1, 0, (0,)), Buffer(ix["8N"], -1, 3, (1,)),
                   Buffer(ix["12N"], 0, 1, (2,)), Buffer(ix["12N"], 1, 1, (3,)),
                   Buffer(ix["12N"], 1, 2, (4,)), Buffer(ix["12N"], 2, n_instrs, (5,)),
                   Buffer(ix["8N"], 3, n_instrs, (7,))]
    vals = [hint]

    def v(name):
        return evaluate(e[name], vals)

    sizes = [evaluate(dyn.exprs[b.size], vals) for b in dyn.buffers]
    offs, arena = place_buffers(sizes, dyn.buffers)
    at = {m: offs[k] for k, b in enumerate(dyn.buffers) for m in b.members}
    n = v("N")
    T = BlobTensor
    tensors = [T("x", "float32", (n, 3), "arena", at[0]), T("z", "float32", (n, 2), "arena", at[1]),
               T("t", "float32", (n, 3), "arena", at[2]), T("ws", "float32", (v("3N"),), "arena", at[3]),
               T("r", "float32", (n, 3), "arena", at[4]), T("o", "float32", (n, 3), "arena", at[5]),
               T("o_last", "float32", (3,), "view", v("last"), base=5),
               T("zo", "float32", (n, 2), "arena", at[7])]
    instrs = [BlobInstr(K["add_f32"], [0, 0], [2], [v("3N")]),
              BlobInstr(K["relu_f32"], [2], [4], [v("3N")], workspace=3),
              BlobInstr(K["scale_f32"], [4], [5], [v("3N"), float_param(0.5)]),
              BlobInstr(K["relu_f32"], [1], [7], [v("2N")])]
    return BlobPlan("x=(N,3);z=(N,2)", 0, arena, tensors, instrs, [0, 1], [5, 6, 7],
                    dynamic=dyn)


def model(plans: List[BlobPlan], name: str = "dyn") -> bytes:
    return write_model(name, fk.NAMES, fk.KERNEL_SET_ID, plans, [])


def dyn_model() -> bytes:
    return model([dynamic_plan(), _static_plan_n4()])


def faulty_models() -> Dict[str, bytes]:
    """Plans a (buggy, but trusted) compiler could emit: listed in kernels.c, so they load,
    and their expressions fail at run time."""
    big = (*N, *c(0x7FFFFFFF), MUL, *c(0x7FFFFFFF), MUL, *c(0x7FFFFFFF), MUL)
    return {
        "overflow": model([dynamic_plan(extra_guards=[(big, "overflowing guard")])], "ovf"),
        "divzero": model([dynamic_plan(extra_guards=[((*N, *c(0), FLOORDIV), "div guard")])],
                         "div"),
        "negdiv": model([dynamic_plan(extra_guards=[((*N, *c(-3), FLOORDIV), "neg guard")])],
                        "neg"),
        # a buffer smaller than its tensor for N > 2: placement must refuse, not overrun
        "short_buffer": model([dynamic_plan(exprs={"12N": (*N, *c(2), ADD, *c(6), MUL)})],
                              "short"),
    }


def reference(x, z, n: int):
    """numpy outputs of the dynamic plan (scale 0.5) or of the static N=4 plan (2.0)."""
    import numpy as np
    scale = np.float32(2.0 if n == 4 else 0.5)
    o = np.maximum(x + x, 0) * scale
    return [o, o[-1], np.maximum(z, 0)]
