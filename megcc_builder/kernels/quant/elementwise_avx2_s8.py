"""QLinearAdd / QLinearMul (onnxruntime's formula: no activation, ties to even) with AVX2,
16 codes per step, bit-identical to elementwise_generic_s8's portable kernel:

- Add, both operands running: v = fma(a, rac, fma(b, rbc, fixed)) (`_mm256_fmadd_ps`, one
  rounding each, as the scalar fmaf); one operand one value per innermost run: the
  portable kernel's fmaf joins it to the constant part once per run, then
  v = fma(other, r, fixed_run) (onnxruntime's order: elementwise_generic_s8.add_fixed_setup);
- Mul: v = float((a - za) * (b - zb)) * ratio, then + zc (a separate multiply and add,
  as the portable kernel's two statements; intrinsics, so nothing is contracted);
- rounding: max(v, lo), min(v, hi) (NaN -> lo, as the scalar `v > lo ? v : lo`), then
  `_mm256_cvtps_epi32` (ties to even under the default MXCSR mode: the magic-number
  rounding's integer, exact once clamped); the codes are in range, so the saturating
  packs only narrow.

The innermost run is vectorised for the stride patterns the collapsed broadcast produces
(both contiguous, one operand one value per run); a run's tail and any other stride pattern
compute the portable kernel's scalar statements."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...ir.quant import QRANGE
from ...isa import IsaSpec
from ..elementwise.generic import broadcast_strides, collapse
from ..registry import implements
from .elementwise_generic_s8 import (QTYPES, _broadcast_params, _check_binary, add_fixed_setup,
                                     add_run_constant, binary_operands, onnxruntime_form,
                                     outer_axes_loop)
from .requant import CTYPE, ROUND_EVEN, SHORT, refuses_fixed

STEP = 16  # codes per vector step (two 8-lane float halves, one 16-byte store)


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    return refuses_fixed(op) or (None if onnxruntime_form(op) else
                                 "activation / rounding attributes (MegEngine's float form)")


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    return 0.6 * graph.tensors[op.outputs[0]].numel + 40.0


def _load8(ct: str, p: str) -> str:
    """C expression: 8 codes at `p` as int32 lanes."""
    ext = "_mm256_cvtepi8_epi32" if ct == "int8_t" else "_mm256_cvtepu8_epi32"
    return f"{ext}(_mm_loadl_epi64((const __m128i *)(const void *)({p})))"


def _vector_run(ct: str, kind: str, pattern: str) -> str:
    """C statements: the vector part of one innermost run (j from 0 while j + 16 <= n_in),
    `pattern` "vv" (both contiguous), "sa" (A one value per run), "sb" (B one value)."""
    pa = "a + ia0 + j" if pattern != "sa" else None
    pb = "b + ib0 + j" if pattern != "sb" else None
    halves = []
    for h in (0, 1):
        off = f" + {8 * h}"
        la = _load8(ct, pa + off) if pa else None
        lb = _load8(ct, pb + off) if pb else None
        if kind == "add":
            if pattern == "vv":
                v = (f"_mm256_fmadd_ps(_mm256_cvtepi32_ps({la}), vrac, _mm256_fmadd_ps("
                     f"_mm256_cvtepi32_ps({lb}), vrbc, vfixed))")
            elif pattern == "sa":
                v = f"_mm256_fmadd_ps(_mm256_cvtepi32_ps({lb}), vrbc, vrun)"
            else:
                v = f"_mm256_fmadd_ps(_mm256_cvtepi32_ps({la}), vrac, vrun)"
        else:
            da = f"_mm256_sub_epi32({la}, vza)" if la else "vda"
            db = f"_mm256_sub_epi32({lb}, vzb)" if lb else "vdb"
            v = (f"_mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32({da}, "
                 f"{db})), vratio), vzc)")
        halves.append(f"const __m256i q{h} = _mm256_cvtps_epi32(_mm256_min_ps("
                      f"_mm256_max_ps({v}, vlo), vhi));")
    pack = "_mm_packus_epi16" if ct == "uint8_t" else "_mm_packs_epi16"
    return f"""for (; j + {STEP} <= n_in; j += {STEP}) {{
                {halves[0]}
                {halves[1]}
                /* packs work per 128-bit lane: 0xD8 puts the int16 codes back in order */
                const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
                _mm_storeu_si128((__m128i *)(void *)(y + i0 + j), {pack}(
                    _mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1)));
            }}"""


def _scalar_run(ct: str, kind: str, pattern: str, ia: str, ib: str) -> str:
    """C statements: the portable kernel's scalar loop over the rest of a run from j."""
    lo, hi = QRANGE[{"int8_t": "int8", "uint8_t": "uint8"}[ct]]
    if kind == "add":
        compute = {"vv": "v = fmaf(fa, rac, fmaf(fb, rbc, fixed));",
                   "sa": "v = fmaf(fb, rbc, fixed_run);",
                   "sb": "v = fmaf(fa, rac, fixed_run);"}[pattern]
        compute = ("const float fa = (float)(int32_t)a[ia], fb = (float)(int32_t)b[ib];\n"
                   f"                float v;\n                {compute}\n"
                   "                (void)fa; (void)fb;")
    else:
        compute = """const int32_t prod = ((int32_t)a[ia] - za) * ((int32_t)b[ib] - zb);
                float v = (float)prod * ratio;
                v = v + (float)zc;"""
    return f"""for (; j < n_in; ++j) {{
                const int64_t i = i0 + j, ia = {ia}, ib = {ib};
                {compute}
                y[i] = ({ct})megcc_qround_even(v, {lo}.0f, {hi}.0f);
            }}"""


def _run_setup(kind: str, pattern: str) -> str:
    """C statements at the start of a run: the per-run constant of a broadcast operand,
    computed by the portable kernel's statements (Add), or its centred value (Mul)."""
    if kind == "add" and pattern in ("sa", "sb"):
        x = "a[ia0]" if pattern == "sa" else "b[ib0]"
        return f"""const float fixed_run = {add_run_constant(pattern, x)};
            const __m256 vrun = _mm256_set1_ps(fixed_run);"""
    if kind == "mul" and pattern == "sa":
        return "const __m256i vda = _mm256_set1_epi32((int32_t)a[ia0] - za);"
    if kind == "mul" and pattern == "sb":
        return "const __m256i vdb = _mm256_set1_epi32((int32_t)b[ib0] - zb);"
    return ""


def _loop(rank: int, ct: str, kind: str, tag: str, vector_run=None, run_setup=None) -> str:
    """The odometer over the outer axes (as the portable kernel's) with the vectorised
    innermost runs; `tag` is the compile-time pattern: the portable kernel's formula for
    an Add depends on it (sa / sb / vv). `vector_run(ct, kind, pattern)` and
    `run_setup(kind, pattern)` emit the ISA's vector statements (AVX2's by default; the
    NEON kernel passes its own)."""
    vector_run = vector_run or _vector_run
    run_setup = run_setup or _run_setup

    def run(pattern: str, ia: str, ib: str, vector: bool) -> str:
        parts = [run_setup(kind, pattern)] if vector or kind == "add" else []
        parts += ["j = 0;"]
        if vector:
            parts.append(vector_run(ct, kind, pattern))
        parts.append(_scalar_run(ct, kind, pattern, ia, ib))
        return "\n            ".join(p for p in parts if p)
    if kind == "add":
        # the Add formula is fixed by the tag; the vector patterns are those matching it
        patterns = {"vv": [("vv", "sa_in == 1 && sb_in == 1")],
                    "sa": [("sa", "sa_in == 0 && sb_in == 1")],
                    "sb": [("sb", "sa_in == 1 && sb_in == 0")]}[tag]
    else:
        patterns = [("vv", "sa_in == 1 && sb_in == 1"), ("sb", "sa_in == 1 && sb_in == 0"),
                    ("sa", "sa_in == 0 && sb_in == 1")]
    offsets = {"vv": ("ia0 + j", "ib0 + j"), "sa": ("ia0", "ib0 + j"),
               "sb": ("ia0 + j", "ib0")}
    general = ("ia0 + (int64_t)j * sa_in", "ib0 + (int64_t)j * sb_in")
    branches = []
    for k, (pattern, cond) in enumerate(patterns):
        kw = "if" if k == 0 else "} else if"
        branches.append(f"        {kw} ({cond}) {{\n            "
                        f"{run(pattern, *offsets[pattern], True)}")
    # other strides: scalar, the tag's formula (an Add's `sa`/`sb` run constant recomputed
    # per element by the portable kernel equals the per-run one: a stride-0 operand)
    fallback = tag if kind == "add" else "vv"
    if kind == "add" and tag != "vv":
        fallback_body = _general_add_scalar(ct, tag, general)
    else:
        fallback_body = run(fallback, *general, False)
    branches.append(f"        }} else {{\n            {fallback_body}\n        }}")
    return outer_axes_loop(rank, "\n".join(branches))


def _general_add_scalar(ct: str, tag: str, general) -> str:
    """An Add of tag sa/sb on a run with other strides: the portable per-element form (the
    broadcast operand's product and the constant part added per element)."""
    lo, hi = QRANGE[{"int8_t": "int8", "uint8_t": "uint8"}[ct]]
    x, other, ro = ("a[ia]", "fb", "rbc") if tag == "sa" else ("b[ib]", "fa", "rac")
    return f"""for (j = 0; j < n_in; ++j) {{
                const int64_t i = i0 + j, ia = {general[0]}, ib = {general[1]};
                const float fa = (float)(int32_t)a[ia], fb = (float)(int32_t)b[ib];
                const float fixed_run = {add_run_constant(tag, x)};
                const float v = fmaf({other}, {ro}, fixed_run);
                (void)fa; (void)fb;
                y[i] = ({ct})megcc_qround_even(v, {lo}.0f, {hi}.0f);
            }}"""


@implements("QLinearAdd", "QLinearMul", dtypes=QTYPES, typed_inputs=(0, 3), requires="avx2",
            applies=_applies, cost=cost, label="avx2 int8 add/mul (16 codes per step)")
def lower_qlinear_binary_avx2(op: Op, graph: Graph):
    a, b, c = _check_binary(op, graph)
    dims, (sa, sb) = collapse(list(c.shape), [broadcast_strides(a.shape, c.shape),
                                              broadcast_strides(b.shape, c.shape)])
    rank = len(dims)
    ct = CTYPE[c.dtype]
    lo, hi = QRANGE[c.dtype]
    ins, pos, zp = binary_operands(op, graph, ct)
    kind = "add" if op.type == "QLinearAdd" else "mul"
    if kind == "add":  # the portable kernel's tag: which operand joins the constant part
        tag = "sa" if sa[-1] == 0 else ("sb" if sb[-1] == 0 else "vv")
        setup = add_fixed_setup(tag) + """
    const __m256 vrac = _mm256_set1_ps(rac), vrbc = _mm256_set1_ps(rbc);
    const __m256 vfixed = _mm256_set1_ps(fixed);
    (void)vrac; (void)vrbc; (void)vfixed;"""
    else:
        tag = "mul"
        setup = """const float ratio = sa * sb / sc;
    const __m256 vratio = _mm256_set1_ps(ratio), vzc = _mm256_set1_ps((float)zc);
    const __m256i vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb);"""
    body = f"""    const {ct} *a = (const {ct} *)in_ptrs[0];
    const {ct} *b = (const {ct} *)in_ptrs[1];
    {ct} *y = ({ct} *)out_ptrs[0];
    const float sa = *(const float *)in_ptrs[{pos[2]}];
    const float sb = *(const float *)in_ptrs[{pos[4]}];
    const float sc = *(const float *)in_ptrs[{pos[6]}];
    const int32_t za = {zp(3)}, zb = {zp(5)}, zc = {zp(7)};
    const __m256 vlo = _mm256_set1_ps({lo}.0f), vhi = _mm256_set1_ps({hi}.0f);
    {setup}
{_loop(rank, ct, kind, tag)}"""
    params = _broadcast_params(rank)
    name = f"qlinear_{kind}_avx2_{SHORT[c.dtype]}_{tag}_r{rank}" \
        + "".join("" if k in pos else f"_noz{k}" for k in (3, 5, 7))
    kernel = make_kernel(name, body, params, (ROUND_EVEN,), isa="avx2")
    return [Instr(kernel, ins, [op.outputs[0]], params.pack(dims=dims, sta=sa, stb=sb),
                  note="AVX2 int8 element-wise (onnxruntime's formula)")]
