"""Integer matrix products, portable C: QLinearMatMul, MatMulInteger, QGemm and
MatMulIntegerToFloat. One loop nest over (batch, m, n) accumulating
(a - a_zp) * (b - b_zp[n]) in int32, operands addressed through strides (transposes and
broadcast batches cost no copy), then an epilogue: int32 out, requantized out
(requant.py, per-column scales) or float out."""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, schema, table
from ...ir import Graph, Op, Tensor
from ...ir.quant import check_scale, check_zero_point, operand
from ..registry import implements
from .requant import CTYPE, SHORT, Requant, wrapping_add

QTYPES = ("int8", "uint8")
PARAMS = schema(i32("BATCH", "matrix products"), i32("M", "rows"), i32("N", "columns"),
                i32("K", "reduction length"), i32("SAM", "A stride between rows"),
                i32("SAK", "A stride along K"), i32("SBK", "B stride along K"),
                i32("SBN", "B stride between columns"), i32("SCM", "bias stride between rows"),
                i32("SCN", "bias stride between columns"),
                table("AOFF", "BATCH", "A element offset per product"),
                table("BOFF", "BATCH", "B element offset per product"))


def _batch_offsets(a_shape, b_shape, out_batch):
    """Element offsets of each output batch's A and B matrices (numpy broadcasting)."""
    def offsets(shape):
        mat = shape[-2] * shape[-1]
        batch = shape[:-2]
        idx = np.arange(int(np.prod(batch, dtype=np.int64)) if batch else 1).reshape(batch) \
            * mat
        return np.broadcast_to(idx, out_batch).reshape(-1)
    return offsets(a_shape), offsets(b_shape)


def _problem(op: Op, graph: Graph, a_name: str, b_name: str, trans_a=0, trans_b=0) -> dict:
    a, b = graph.tensors[a_name].shape, graph.tensors[b_name].shape
    if trans_a or trans_b:  # Gemm: 2-D only
        m, k = (a[1], a[0]) if trans_a else a
        k2, n = (b[1], b[0]) if trans_b else b
        sam, sak = (1, m) if trans_a else (k, 1)
        sbk, sbn = (1, k2) if trans_b else (n, 1)
        if k != k2:
            raise graph.error(f"inner dimensions differ: {k} and {k2}", op)
        return dict(BATCH=1, M=m, N=n, K=k, SAM=sam, SAK=sak, SBK=sbk, SBN=sbn,
                    AOFF=[0], BOFF=[0])
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    m, k = a2[-2:]
    k2, n = b2[-2:]
    if k != k2:
        raise graph.error(f"inner dimensions differ: {k} and {k2}", op)
    out_batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    aoff, boff = _batch_offsets(a2, b2, out_batch)
    return dict(BATCH=len(aoff), M=m, N=n, K=k, SAM=k, SAK=1, SBK=n, SBN=1,
                AOFF=[int(v) for v in aoff], BOFF=[int(v) for v in boff])


def _per(graph: Graph, op: Op, name: Optional[str], count: int, what: str) -> bool:
    """Whether scale / zero point `name` has one value per row/column (else one)."""
    if name is None:
        return False
    n = graph.tensors[name].numel
    if n == 1:
        return False
    if n != count:
        raise graph.error(f"{what} has {n} values; 1 or {count} expected", op)
    return True


def _kernel_body(at: str, bt: str, az: str, bz: str, head: str, col_setup: str,
                 epilogue: str) -> str:
    return f"""    const {at} *a = (const {at} *)in_ptrs[0];
    const {bt} *b = (const {bt} *)in_ptrs[1];
{head}
    int32_t t, m, n, k;
    int64_t yi = 0;
    for (t = 0; t < BATCH; ++t) {{
        const {at} *ab = a + AOFF[t];
        const {bt} *bb = b + BOFF[t];
        for (m = 0; m < M; ++m) {{
            const int32_t za = {az};
            for (n = 0; n < N; ++n, ++yi) {{
                const int32_t zb = {bz};
                int32_t acc = 0;
                {col_setup}
                for (k = 0; k < K; ++k)
                    acc += ((int32_t)ab[(int64_t)m * SAM + (int64_t)k * SAK] - za) *
                           ((int32_t)bb[(int64_t)k * SBK + (int64_t)n * SBN] - zb);
                {epilogue}
            }}
        }}
    }}
"""


class _Inputs:
    """Instruction inputs in kernel order (a, b first), with their positions."""

    def __init__(self, a: str, b: str):
        self.names: List[str] = [a, b]

    def add(self, name: Optional[str]) -> Optional[int]:
        if not name:
            return None
        self.names.append(name)
        return len(self.names) - 1


def _zp_expr(pos: Optional[int], dtype: str, per: bool, index: str) -> str:
    if pos is None:
        return "0"
    return f"(int32_t)((const {CTYPE[dtype]} *)in_ptrs[{pos}])[{index if per else '0'}]"


def _bias_operand(graph: Graph, op: Op, name: Optional[str], m: int, n: int, dtype: str):
    """(stride between rows, between columns) of a bias broadcast to (M, N)."""
    if name is None:
        return 0, 0
    t = graph.tensors[name]
    if t.dtype != dtype:
        raise graph.error(f"the bias '{name}' must be {dtype} (is {t.dtype})", op)
    shape = (1,) * (2 - len(t.shape)) + tuple(t.shape[-2:]) if t.shape else (1, 1)
    if len(t.shape) > 2 or shape[0] not in (1, m) or shape[1] not in (1, n):
        raise graph.error(f"the bias of shape {list(t.shape)} does not broadcast to "
                          f"({m}, {n})", op)
    return (shape[1] if shape[0] == m and m > 1 else 0), (1 if shape[1] == n and n > 1 else 0)


def _emit(op: Op, graph: Graph, kind: str, geo: dict, at: str, bt: str, ins: _Inputs,
          az: str, bz: str, head: str, col_setup: str, epilogue: str, helpers=()) -> list:
    body = _kernel_body(CTYPE[at], CTYPE[bt], az, bz, head, col_setup, epilogue)
    name = f"{kind}_{SHORT[at]}{SHORT[bt]}"
    kernel = make_kernel(name + "_" + _digest(body), body, PARAMS, helpers)
    return [Instr(kernel, ins.names, [op.outputs[0]], PARAMS.pack(**geo),
                  note=f"int8 matrix product ({kind})")]


def _digest(body: str) -> str:
    """Short stable tag of a kernel's variant (which operands are per column, ...)."""
    import hashlib

    return hashlib.sha1(body.encode()).hexdigest()[:8]


@implements("MatMulInteger", dtypes=QTYPES, typed_inputs=(0, 1))
def lower_matmul_integer(op: Op, graph: Graph):
    """Inputs: A, B, [a_zp scalar or per row], [b_zp scalar or per column]; int32 out."""
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    check_zero_point(graph, op, 2, a.dtype, "a_zero_point")
    check_zero_point(graph, op, 3, b.dtype, "b_zero_point")
    geo = _problem(op, graph, op.inputs[0], op.inputs[1])
    geo.update(SCM=0, SCN=0)
    ins = _Inputs(op.inputs[0], op.inputs[1])
    za, zb = operand(graph, op, 2), operand(graph, op, 3)
    za_per = _per(graph, op, za, geo["M"], "a_zero_point")
    zb_per = _per(graph, op, zb, geo["N"], "b_zero_point")
    az = _zp_expr(ins.add(za), a.dtype, za_per, "m")
    bz = _zp_expr(ins.add(zb), b.dtype, zb_per, "n")
    head = "    int32_t *y = (int32_t *)out_ptrs[0];"
    return _emit(op, graph, "matmul_integer", geo, a.dtype, b.dtype, ins, az, bz, head, "",
                 "y[yi] = acc;")


def _requant_epilogue(rq: Requant, bias_pos: Optional[int], bs_per: bool):
    """(head additions, per-column setup, epilogue) of a requantized product."""
    bias = f"const int32_t *bias = (const int32_t *)in_ptrs[{bias_pos}];" if bias_pos else ""
    col = (f"const float bsc = bs[{'n' if bs_per else '0'}];\n"
           + ("                const float rs = alpha * as * bsc;\n" if rq.uses_real_scale else
              "                const float mult = alpha * as * bsc / so;\n"))
    acc = wrapping_add("acc", "bias[m * SCM + n * SCN]") if bias_pos else "acc"
    return bias, col, f"y[yi] = {rq.store(rq.value(acc, 'mult', 'rs'), 'yz')};"


def portable_cost(op: Op, graph: Graph, isa) -> float:
    """About one cycle per multiply-add of the loop nest."""
    b, y = graph.tensors[op.inputs[3]], graph.tensors[op.outputs[0]]
    k = b.shape[-1] if op.attrs.get("transB") else (b.shape[-2] if len(b.shape) > 1 else b.shape[0])
    return float(y.numel) * k


@implements("QLinearMatMul", dtypes=QTYPES, typed_inputs=(0, 3), cost=portable_cost)
def lower_qlinear_matmul(op: Op, graph: Graph):
    """Inputs: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp."""
    return _qlinear(op, graph, "qlinear_matmul", gemm=False)


@implements("QGemm", dtypes=QTYPES, typed_inputs=(0, 3), cost=portable_cost)
def lower_qgemm(op: Op, graph: Graph):
    """Inputs: A, a_scale, a_zp, B, b_scale, b_zp, [C int32], [y_scale, y_zp]; no y_scale:
    float output alpha * a_scale * b_scale * (acc + C)."""
    return _qlinear(op, graph, "qgemm", gemm=True)


def _float32_scales(op: Op, graph: Graph, positions) -> list:
    """The kernels read float32 scales: float16 ones (QLinearMatMul-21 allows them) are
    widened exactly, a constant at compile time, a run-time value by a Cast instruction
    (returned, to run first); the op reads the float32 copy."""
    from ..data.copy_generic import lower_cast

    first = []
    for k in positions:
        name = operand(graph, op, k)
        if name is None or graph.tensors[name].dtype != "float16":
            continue
        t = graph.tensors[name]
        wide = graph.unique_name(name + "_f32")
        if t.is_const:
            graph.add_const(wide, np.asarray(t.data).astype(np.float32))
        else:
            graph.add_tensor(Tensor(wide, t.shape, "float32"))
            first += lower_cast(Op("Cast", [name], [wide], {"to": 1}, wide), graph)
        op.inputs[k] = wide
    return first


def _qlinear(op: Op, graph: Graph, kind: str, gemm: bool, emit=None):
    """QLinearMatMul / QGemm: the checked operands, prologue and epilogue, given to `emit`
    (the portable loop nest by default; matmul_avx2_s8 passes its GEMM)."""
    emit = emit or _emit
    first = _float32_scales(op, graph, (1, 4, 7) if gemm else (1, 4, 6))
    a, b, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[3]], \
        graph.tensors[op.outputs[0]]
    check_scale(graph, op, 1, "a_scale")
    check_scale(graph, op, 4, "b_scale")
    check_zero_point(graph, op, 2, a.dtype, "a_zero_point")
    check_zero_point(graph, op, 5, b.dtype, "b_zero_point")
    ta = int(op.attrs.get("transA", 0)) if gemm else 0
    tb = int(op.attrs.get("transB", 0)) if gemm else 0
    geo = _problem(op, graph, op.inputs[0], op.inputs[3], ta, tb)
    alpha = float(op.attrs.get("alpha", 1.0)) if gemm else 1.0
    y_scale = operand(graph, op, 7 if gemm else 6)
    y_zp = operand(graph, op, 8 if gemm else 7)
    bias = operand(graph, op, 6) if gemm else None
    if graph.tensors[op.inputs[1]].numel != 1:
        raise graph.error("a_scale must be one value (per-tensor)", op)
    ins = _Inputs(op.inputs[0], op.inputs[3])
    za = operand(graph, op, 2)
    zb = operand(graph, op, 5)
    bs_per = _per(graph, op, op.inputs[4], geo["N"], "b_scale")
    zb_per = _per(graph, op, zb, geo["N"], "b_zero_point")
    if za is not None and graph.tensors[za].numel != 1:
        raise graph.error("a_zero_point must be one value (per-tensor)", op)
    az = _zp_expr(ins.add(za), a.dtype, False, "m")
    bz = _zp_expr(ins.add(zb), b.dtype, zb_per, "n")
    as_pos, bs_pos = ins.add(op.inputs[1]), ins.add(op.inputs[4])
    scm, scn = _bias_operand(graph, op, bias, geo["M"], geo["N"], "int32")
    geo.update(SCM=scm, SCN=scn)
    bias_pos = ins.add(bias)
    from ...codegen.kernel import c_float

    scales = (f"    const float as = *(const float *)in_ptrs[{as_pos}];\n"
              f"    const float *bs = (const float *)in_ptrs[{bs_pos}];\n"
              f"    const float alpha = {c_float(alpha)};\n")
    if y_scale is None:  # QGemm with float output
        if y.dtype != "float32":
            raise graph.error("QGemm without y_scale must output float32", op)
        head = scales + "    float *y = (float *)out_ptrs[0];\n" + (
            f"    const int32_t *bias = (const int32_t *)in_ptrs[{bias_pos}];" if bias_pos else "")
        col = f"const float mult = alpha * as * bs[{'n' if bs_per else '0'}];"
        acc = wrapping_add("acc", "bias[m * SCM + n * SCN]") if bias_pos else "acc"
        return first + emit(op, graph, kind + "_f32", geo, a.dtype, b.dtype, ins, az, bz,
                            head, col, f"y[yi] = (float)({acc}) * mult;")
    check_scale(graph, op, 7 if gemm else 6, "y_scale")
    check_zero_point(graph, op, 8 if gemm else 7, y.dtype, "y_zero_point")
    rq = Requant(op, graph, y.dtype)
    ys_pos = ins.add(y_scale)
    yz_pos = ins.add(y_zp)
    bias_decl, col, epilogue = _requant_epilogue(rq, bias_pos, bs_per)
    fixed_head = ""
    if rq.fixed:  # Q31 multipliers per column (conv_generic_s8.fixed_point_operands)
        from .conv_generic_s8 import fixed_point_operands

        qm_name, qe_name = fixed_point_operands(op, graph, rq, (1, 4, 7 if gemm else 6),
                                                geo["N"], alpha)
        qm_pos, qe_pos = ins.add(qm_name), ins.add(qe_name)
        fixed_head = (f"    const int32_t *qmv = (const int32_t *)in_ptrs[{qm_pos}];\n"
                      f"    const int32_t *qev = (const int32_t *)in_ptrs[{qe_pos}];\n"
                      "    (void)as; (void)bs; (void)alpha; (void)so;\n")
        col = (f"const int32_t qm = qmv[{'n' if bs_per else '0'}], "
               f"qe = qev[{'n' if bs_per else '0'}];")
    head = (scales + f"    {rq.ctype} *y = ({rq.ctype} *)out_ptrs[0];\n"
            f"    const float so = *(const float *)in_ptrs[{ys_pos}];\n"
            f"    const int32_t yz = {_zp_expr(yz_pos, y.dtype, False, '0')};\n"
            f"    {bias_decl}\n    {rq.setup('yz')}{fixed_head}")
    return first + emit(op, graph, f"{kind}_{rq.tag}", geo, a.dtype, b.dtype, ins, az, bz,
                        head, col, epilogue, rq.helpers)


@implements("MatMulIntegerToFloat", dtypes=QTYPES, typed_inputs=(0, 1))
def lower_matmul_integer_to_float(op: Op, graph: Graph):
    """Inputs: A, B, a_scale, b_scale, [a_zp], [b_zp], [bias float]:
    y = float(acc) * (a_scale * b_scale[n]) + bias[n]."""
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    check_zero_point(graph, op, 4, a.dtype, "a_zero_point")
    check_zero_point(graph, op, 5, b.dtype, "b_zero_point")
    geo = _problem(op, graph, op.inputs[0], op.inputs[1])
    ins = _Inputs(op.inputs[0], op.inputs[1])
    za, zb, bias = operand(graph, op, 4), operand(graph, op, 5), operand(graph, op, 6)
    zb_per = _per(graph, op, zb, geo["N"], "b_zero_point")
    bs_per = _per(graph, op, op.inputs[3], geo["N"], "b_scale")
    az = _zp_expr(ins.add(za), a.dtype, False, "m")
    bz = _zp_expr(ins.add(zb), b.dtype, zb_per, "n")
    as_pos, bs_pos = ins.add(op.inputs[2]), ins.add(op.inputs[3])
    scm, scn = _bias_operand(graph, op, bias, geo["M"], geo["N"], "float32")
    geo.update(SCM=scm, SCN=scn)
    bias_pos = ins.add(bias)
    head = (f"    const float as = *(const float *)in_ptrs[{as_pos}];\n"
            f"    const float *bs = (const float *)in_ptrs[{bs_pos}];\n"
            "    float *y = (float *)out_ptrs[0];\n" +
            (f"    const float *bias = (const float *)in_ptrs[{bias_pos}];" if bias_pos else ""))
    col = f"const float mult = as * bs[{'n' if bs_per else '0'}];"
    epi = "y[yi] = (float)acc * mult" + (" + bias[m * SCM + n * SCN];" if bias_pos else ";")
    return _emit(op, graph, "matmul_integer_to_float", geo, a.dtype, b.dtype, ins, az, bz,
                 head, col, epi)
