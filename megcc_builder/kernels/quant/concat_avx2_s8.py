"""QLinearConcat with AVX2: an input with the output's scale and zero point is copied; another
is requantized 16 codes per step by the arithmetic the portable kernel's table holds
(lut.build_table with the identity, onnxruntime's QlinearBuildLookupTable):
x = xs * float(q - xz), v = x / ys (float32, each correctly rounded, as NumPy's float32
operations that built the table), clamped to [lo - yz, hi - yz], rounded ties to even
(`_mm256_cvtps_epi32`), + yz. Every code the vector loop computes is therefore the table's
entry for it, bit for bit; a block's tail uses the same scalar statements.

The division is the loop's bottleneck. An input has only 256 codes, so `exact_multiplier`
looks at compile time for one float32 r with float(q - xz) * r rounding to the table's
code for every one of them (r = xs / ys or a few ulps from it; it nearly always exists);
such an input is requantized by that one multiplication (kernel pattern letter "m"), the
others by the division above ("t")."""
from __future__ import annotations

import numpy as np

from ...codegen.kernel import Instr, f32_bits, make_kernel
from ...codegen.params import i64, schema, table
from ...ir import Graph, Op
from ...ir.quant import QRANGE
from ...isa import IsaSpec
from ..registry import implements
from .elementwise_generic_s8 import QTYPES, concat_inputs
from .lut import build_table
from .requant import CTYPE, ROUND_EVEN, SHORT

F32 = np.float32


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    return sum((0.05 if same else 0.4) * graph.tensors[x].numel
               for x, same, _, _ in concat_inputs(op, graph)[3]) + 40.0


def exact_multiplier(x_dtype: str, xs: float, xz: int, y_dtype: str, ys: float,
                     yz: int, ulps: int = 16):
    """A float32 r such that clamp(float(q - xz) * r) rounded ties to even, + yz, is the
    portable kernel's table entry for every code q (None if no r within `ulps` of
    xs / ys is)."""
    table = build_table(x_dtype, xs, xz, y_dtype, ys, yz, lambda x: x)
    codes = np.arange(256, dtype=np.uint8).view(np.dtype(x_dtype)).astype(np.int64)
    a = (codes - int(xz)).astype(F32)
    lo, hi = QRANGE[y_dtype]
    r = F32(F32(xs) / F32(ys))
    up = down = r
    cands = [r]
    for _ in range(ulps):
        up = np.nextafter(up, F32(np.inf), dtype=F32)
        down = np.nextafter(down, F32(-np.inf), dtype=F32)
        cands += [up, down]
    for r in cands:
        if not np.isfinite(r) or r <= 0:
            continue
        v = np.clip((a * r).astype(F32), F32(lo - yz), F32(hi - yz))
        if np.array_equal(np.rint(v).astype(np.int64) + int(yz), table):
            return r
    return None


def _mul_block(j: int, xt: str, yt: str, k: int) -> str:
    """C block: block j requantized into y by one multiplication (qp[2k..2k+1]: r bits,
    xz); exact_multiplier proved it gives the table's code for every input code."""
    ext = "_mm256_cvtepi8_epi32" if xt == "int8_t" else "_mm256_cvtepu8_epi32"
    pack = "_mm_packus_epi16" if yt == "uint8_t" else "_mm_packs_epi16"
    halves = "\n".join(
        f"""                const __m256i q{h} = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(
                    _mm256_max_ps(_mm256_mul_ps(vr, _mm256_cvtepi32_ps(_mm256_sub_epi32(
                    {ext}(_mm_loadl_epi64((const __m128i *)(const void *)(x + i + {8 * h}))),
                    vxz))), vlo), vhi)), vyz);"""
        for h in (0, 1))
    return f"""        {{
            const {xt} *x = (const {xt} *)in_ptrs[{j}] + (int64_t)o * blk[{j}];
            float r;
            const int32_t xz = qp[{2 * k + 1}];
            memcpy(&r, &qp[{2 * k}], sizeof r);
            {{
            const __m256 vr = _mm256_set1_ps(r);
            const __m256i vxz = _mm256_set1_epi32(xz);
            for (i = 0; i + 16 <= blk[{j}]; i += 16) {{
{halves}
                const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
                _mm_storeu_si128((__m128i *)(void *)(y + i), {pack}(
                    _mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1)));
            }}
            }}
            for (; i < blk[{j}]; ++i)
                y[i] = ({yt})(megcc_qround_even((float)((int32_t)x[i] - xz) * r, lo, hi) + yz);
        }}"""


def _requant_block(j: int, xt: str, yt: str, k: int) -> str:
    """C block: block j of the current outer index requantized into y (input params at
    qp[4k..4k+1]: xs bits, xz)."""
    ext = "_mm256_cvtepi8_epi32" if xt == "int8_t" else "_mm256_cvtepu8_epi32"
    pack = "_mm_packus_epi16" if yt == "uint8_t" else "_mm_packs_epi16"
    halves = "\n".join(
        f"""                const __m256 x{h} = _mm256_mul_ps(vxs, _mm256_cvtepi32_ps(_mm256_sub_epi32(
                    {ext}(_mm_loadl_epi64((const __m128i *)(const void *)(x + i + {8 * h}))), vxz)));
                const __m256i q{h} = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(
                    _mm256_max_ps(_mm256_div_ps(x{h}, vys), vlo), vhi)), vyz);"""
        for h in (0, 1))
    return f"""        {{
            const {xt} *x = (const {xt} *)in_ptrs[{j}] + (int64_t)o * blk[{j}];
            float xs;
            const int32_t xz = qp[{2 * k + 1}];
            memcpy(&xs, &qp[{2 * k}], sizeof xs);
            {{
            const __m256 vxs = _mm256_set1_ps(xs);
            const __m256i vxz = _mm256_set1_epi32(xz);
            for (i = 0; i + 16 <= blk[{j}]; i += 16) {{
{halves}
                /* packs work per 128-bit lane: 0xD8 puts the int16 codes back in order */
                const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
                _mm_storeu_si128((__m128i *)(void *)(y + i), {pack}(
                    _mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1)));
            }}
            }}
            for (; i < blk[{j}]; ++i) {{
                const float xv = xs * (float)((int32_t)x[i] - xz);
                const float v = xv / ys;
                y[i] = ({yt})(megcc_qround_even(v, lo, hi) + yz);
            }}
        }}"""


@implements("QLinearConcat", dtypes=QTYPES, typed_inputs=(1,), requires="avx2", cost=cost,
            label="avx2 int8 concat (requantization 16 codes per step)")
def lower_qlinear_concat_avx2(op: Op, graph: Graph):
    y_dtype, ys, yz, parts = concat_inputs(op, graph)
    y = graph.tensors[op.outputs[0]]
    axis_outer, blocks = parts_geometry(op, graph, parts)
    yt = CTYPE[y_dtype]
    lo, hi = QRANGE[y_dtype]
    lines, qp, pattern = [], [], ""
    for j, (name, same, xs, xz) in enumerate(parts):
        xt = CTYPE[graph.tensors[name].dtype]
        if same:
            lines.append(f"        memcpy(y, (const uint8_t *)in_ptrs[{j}] + (int64_t)o * blk[{j}], "
                         f"(size_t)blk[{j}]);")
            pattern += "c"
        else:
            x_dtype = graph.tensors[name].dtype
            r = exact_multiplier(x_dtype, xs, xz, y_dtype, ys, yz)
            block = _requant_block if r is None else _mul_block
            lines.append(block(j, xt, yt, len(qp) // 2))
            qp += [f32_bits(xs if r is None else float(r)), xz]
            pattern += ("t" if r is None else "m") + SHORT[x_dtype][0]
        lines.append(f"        y += blk[{j}];")
    body = f"""    {yt} *y = ({yt} *)out_ptrs[0];
    int64_t o;
    int32_t i;
    float ys;
    const int32_t yz = qp[{len(qp)}];
    memcpy(&ys, &qp[{len(qp) + 1}], sizeof ys);
    const float lo = (float)({lo} - yz), hi = (float)({hi} - yz);
    const __m256 vys = _mm256_set1_ps(ys), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256i vyz = _mm256_set1_epi32(yz);
    (void)vys; (void)vlo; (void)vhi; (void)vyz; (void)lo; (void)hi;
    for (o = 0; o < OUTER; ++o) {{
        i = 0;
{chr(10).join(lines)}
    }}
"""
    params = schema(i64("OUTER", "blocks before the axis"),
                    table("blk", len(parts), "elements per block of each input"),
                    table("qp", len(qp) + 2, "requantized inputs' (X_scale bits, X_zp), "
                          "then Y_zp, Y_scale bits"))
    kernel = make_kernel(f"qlinear_concat_avx2_{SHORT[y_dtype]}_{pattern}", body, params,
                         (ROUND_EVEN,), isa="avx2")
    return [Instr(kernel, [p[0] for p in parts], [op.outputs[0]],
                  params.pack(OUTER=axis_outer, blk=blocks, qp=qp + [yz, f32_bits(ys)]),
                  note="AVX2 int8 concatenation")]


def parts_geometry(op: Op, graph: Graph, parts):
    """(blocks before the axis, elements per block of each input)."""
    from ..data.copy_generic import norm_axis

    y = graph.tensors[op.outputs[0]]
    axis = norm_axis(int(op.attrs["axis"]), len(y.shape), op, graph)
    outer = int(np.prod(y.shape[:axis], dtype=np.int64))
    return outer, [int(np.prod(graph.tensors[p[0]].shape[axis:], dtype=np.int64))
                   for p in parts]
