"""Gemm and MatMul cases, run against every matmul implementation that applies (portable
GEMM/MatMul, the packed fully-connected kernels of every vector level).

Moved here from test_kernels_core (test_gemm, test_matmul), test_kernels_isa
(test_fully_connected, test_matmul_constant_weights: the AVX2 6x16 tile edges, K above the
K block) and test_kernels_neon (the NEON 8x12 / 6x8 tile edges).
"""
from __future__ import annotations

import numpy as np

from kernels.common import act_post, act_ref
from kernels.harness import Book, Const

BOOK = Book("matmul")
F32 = np.float32


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(F32)


# --------------------------------------------------------------- test_kernels_core
_r = np.random.default_rng(1234)
for _ta, _tb, _cs, _al, _be in [(0, 0, (5,), 1.0, 1.0), (0, 1, (3, 5), 0.5, 2.0),
                                (1, 0, None, 1.0, 1.0), (1, 1, (3, 1), 1.5, -1.0),
                                (0, 1, (), 1.0, 1.0)]:
    _m, _k, _n = 3, 7, 5
    _a = _f32(_r, _k, _m) if _ta else _f32(_r, _m, _k)
    _b = _f32(_r, _n, _k) if _tb else _f32(_r, _k, _n)
    _ins = [_a, Const(_b)] + ([Const(_f32(_r, *_cs))] if _cs is not None else [])

    def _gemm_ref(a, b, c=None, ta=_ta, tb=_tb, al=_al, be=_be):
        y = al * ((a.T if ta else a).astype(np.float64) @ (b.T if tb else b))
        return [y if c is None else y + be * c]
    BOOK.add(f"core_gemm_t{_ta}{_tb}_c{_cs}_a{_al}_b{_be}", "Gemm", _ins,
             dict(transA=_ta, transB=_tb, alpha=_al, beta=_be), opset=13, ref=_gemm_ref)

for _as, _bs in [((3, 4), (4, 5)), ((2, 3, 4), (4, 6)), ((2, 1, 3, 4), (5, 4, 2)),
                 ((4,), (4, 3)), ((2, 3, 4), (4,)), ((1, 9, 17), (3, 17, 33))]:
    BOOK.add(f"core_matmul_{_as}x{_bs}", "MatMul", [_f32(_r, *_as), _f32(_r, *_bs)], opset=13,
             ref=lambda a, b: [np.matmul(a.astype(np.float64), b)])


# ------------------------------------------------ fully connected (isa and neon tile edges)
FC_EXPECT = {"avx2": ("fc_gemm6x16", "_avx2"), "arm64": ("fc_gemm8x12", "_neon64"),
             "armv7": ("fc_gemm6x8", "_neon")}  # what the cost model picks


def fc_case(id_, rng, m, k, n, trans_b, bias, act, fp16=False):
    a = _f32(rng, m, k)
    b = _f32(rng, n, k) if trans_b else _f32(rng, k, n)
    if fp16:  # values float16 represents: the reference stays exact
        b = b.astype(np.float16).astype(F32)
    ins = [a, Const(b)]
    beta = 0.75 if bias == "scalar" else 1.0
    if bias:
        ins.append(Const(_f32(rng, n) if bias == "row" else _f32(rng, 1)))

    def ref(a, b, c=None):
        y = a.astype(np.float64) @ (b.T if trans_b else b)
        return [act_ref(act, y if c is None else y + beta * c)]
    BOOK.add(id_, "Gemm", ins, dict(transB=trans_b, alpha=1.0, beta=beta), opset=13, ref=ref,
             post=act_post(act), compress_fp16=fp16,
             expect={p: (pre + ("_w16" if fp16 else ""), suf) for p, (pre, suf) in FC_EXPECT.items()})


ISA_FC = [(1, 2048, 1000, 1, "row", None), (2, 150, 21, 0, None, "Relu"),
          (3, 37, 19, 1, "row", "Clip"), (8, 333, 40, 0, "scalar", "Sigmoid"),
          (13, 650, 17, 1, "row", None), (6, 16, 16, 0, None, None)]
# N leaves 12/8-column edges of every width
NEON_FC = [(1, 2048, 1000, 1, "row", None), (2, 150, 21, 0, None, "Relu"),
           (3, 37, 19, 1, "row", "Clip"), (9, 333, 40, 0, "scalar", "Sigmoid"),
           (13, 650, 17, 1, "row", None), (8, 12, 12, 0, None, None)]
_r = np.random.default_rng(4321)
for _c in ISA_FC:
    fc_case("isa_fc_" + "_".join(map(str, _c)), _r, *_c)
_r2 = np.random.default_rng(77)
for _c in NEON_FC:
    if _c not in ISA_FC:  # the shared ones are the same case
        fc_case("neon_fc_" + "_".join(map(str, _c)), _r2, *_c)
# one row (the one-thread GEMV runs 4 column panels at a time, the block loop the rest):
# N = 70 (one group of 4 panels + 6 columns), 130 with a scalar bias and a scalar pass
_r3 = np.random.default_rng(1212)
for _c in [(1, 300, 70, 0, None, "Clip"), (1, 45, 130, 1, "scalar", "Sigmoid")]:
    fc_case("fc_m1_" + "_".join(map(str, _c)), _r3, *_c)
# constant weights: MatMul as a fully connected layer
BOOK.add("isa_matmul_constant_weights", "MatMul", [_f32(_r, 2, 3, 29), Const(_f32(_r, 29, 21))],
         opset=13, ref=lambda a, b: [np.matmul(a.astype(np.float64), b)], expect=FC_EXPECT)


# ------------------------------------------------- float16 weights (enable_compress_fp16)
# The generic Gemm widens K blocks of B (transB 0) or blocks of B^T rows (transB 1; N = 1000
# at K = 2048 is 125 blocks of 8), the vector FC blocks of NCW columns per K block (K over
# the K block, N over NCW, every tile edge); MatMul folds A's batch into M.
FP16_FC = [(1, 2048, 1000, 1, "row", None), (2, 150, 21, 0, None, "Relu"),
           (3, 37, 19, 1, "row", "Clip"), (13, 650, 17, 1, "row", None),
           (9, 333, 40, 0, "scalar", "Sigmoid"), (5, 700, 300, 0, "row", None)]
_r3 = np.random.default_rng(1616)
for _c in FP16_FC:
    fc_case("fp16_fc_" + "_".join(map(str, _c)), _r3, *_c, fp16=True)
BOOK.add("fp16_matmul_constant_weights", "MatMul",
         [_f32(_r3, 2, 3, 29), Const(_f32(_r3, 29, 21).astype(np.float16).astype(F32))],
         opset=13, ref=lambda a, b: [np.matmul(a.astype(np.float64), b)], compress_fp16=True,
         expect={p: (pre + "_w16", suf) for p, (pre, suf) in FC_EXPECT.items()})


# --- Einsum (one portable kernel for every equation) ------------------------------------
_re = np.random.default_rng(77)
for _eq, _shapes in [("ij,jk->ik", [(3, 4), (4, 5)]),
                     ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
                     ("ij,jk", [(3, 4), (4, 2)]),                  # implicit output
                     ("ij->ji", [(3, 5)]),
                     ("ii", [(4, 4)]),                             # trace
                     ("...ii->...i", [(2, 3, 3)]),                 # batch diagonal
                     ("...ij,...jk->...ik", [(2, 1, 3, 4), (1, 5, 4, 2)]),  # broadcast
                     ("i,j->ij", [(3,), (4,)]),
                     ("i,i", [(6,), (6,)]),
                     ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
                     ("ij->", [(3, 4)]),
                     ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)])]:
    _tag = _eq.replace(",", "_").replace("->", "_to_").replace("...", "E") or "x"
    BOOK.add(f"einsum_{_tag}", "Einsum", [_f32(_re, *s) for s in _shapes],
             {"equation": _eq}, opset=12)
BOOK.add("einsum_f64_matmul", "Einsum", [_re.standard_normal((3, 4)),
                                         Const(_re.standard_normal((4, 2)))],
         {"equation": "ij,jk->ik"}, opset=12, tol=1e-12)
BOOK.add("einsum_int32_sum", "Einsum",
         [_re.integers(-9, 9, (3, 4)).astype(np.int32), _re.integers(-9, 9, (4,)).astype(np.int32)],
         {"equation": "ij,j->i"}, opset=12)
BOOK.add("einsum_int64_outer", "Einsum",
         [_re.integers(-9, 9, (3,)).astype(np.int64), _re.integers(-9, 9, (2,)).astype(np.int64)],
         {"equation": "i,j->ji"}, opset=12)

# --- Det (partial pivoting in double): batches, 1x1, a singular matrix, a zero pivot that
# needs a row swap, float64 (NumPy's LAPACK determinant as the oracle there)
_rd = np.random.default_rng(55)
BOOK.add("det_2x2", "Det", [_f32(_rd, 2, 2)], opset=11)
BOOK.add("det_batched_3x3", "Det", [_f32(_rd, 2, 3, 3, 3)], opset=11)
BOOK.add("det_1x1", "Det", [_f32(_rd, 4, 1, 1)], opset=11)
BOOK.add("det_singular_and_swap", "Det",
         [np.array([[[1, 2, 3], [2, 4, 6], [0, 1, 1]], [[0, 2, 1], [3, 1, 0], [1, 0, 2]]], F32)],
         opset=11)
BOOK.add("det_f64_6x6", "Det", [_rd.standard_normal((3, 6, 6))], opset=11, tol=1e-10,
         ref=lambda x: [np.linalg.det(x)])


# --- float16 fully-connected layers (enable_ioc16 on arm64-fp16): bit-exact against NumPy
# float16 arithmetic in the kernel's order; 32-column panel edges (N % 32), bias, ReLU
def _f16_fc():
    from kernels.f16_reference import fc_f16

    r = np.random.default_rng(1601)
    for m, k, n, trans_b, bias, relu in [(1, 64, 40, 1, True, False), (3, 17, 33, 0, False, True),
                                         (2, 5, 8, 1, True, True), (5, 300, 96, 1, False, False),
                                         (4, 129, 63, 0, True, False)]:
        x = _f32(r, m, k)
        w = (r.standard_normal((n, k) if trans_b else (k, n)) / np.sqrt(k)).astype(F32)
        inputs = [x, Const(w)]
        if bias:
            inputs.append(Const(_f32(r, n)))
        post = (("Relu", [], {}),) if relu else ()

        def ref(x, w, b=None, trans_b=trans_b, relu=relu):
            return fc_f16(x, w.T if trans_b else w, b, relu)
        BOOK.add(f"f16_fc_m{m}_k{k}_n{n}", "Gemm", inputs, {"transB": trans_b}, opset=13,
                 ref=ref, post=post, ioc16=True, exact=True)


_f16_fc()
