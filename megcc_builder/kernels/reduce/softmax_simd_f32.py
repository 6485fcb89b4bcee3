"""Vector Softmax / LogSoftmax (float32) over the last or an inner axis, for the level's
f32 element-wise vocabulary (AVX2, NEON)."""
from __future__ import annotations

from typing import Optional

from ...codegen.kernel import Instr, Kernel
from ...codegen.parallel import range_parts, split_kernel
from ...codegen.vector import Simd, VecOps
from ...codegen.vmath import helpers, hmax, hmax_helpers, hsum, hsum_helpers, used
from ...ir import symbolic
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import F32, implements
from .generic import AXIS_PARAMS, softmax_shape


def _split(name: str, body: str, parts: str, s: Simd, available) -> Kernel:
    """split_kernel, with the vector math helpers the source uses."""
    k = split_kernel(name, body, parts, AXIS_PARAMS, ("math",), isa=s.isa)
    return Kernel(k.name, k.source, ("math",) + used(available, k.source), isa=s.isa,
                  params=AXIS_PARAMS)


def softmax_vector_shape(op: Op, graph: Graph, s):
    """[outer, axis, 1] if the vector kernel applies (float32, softmax over the innermost
    axis, at least one full vector per row), else None."""
    if op.type not in ("Softmax", "LogSoftmax") or graph.tensors[op.inputs[0]].dtype != "float32":
        return None
    shape = softmax_shape(op, graph)
    if shape[2] == 1:
        # rows shorter than a vector run the scalar tail only: a speed choice, so a
        # run-time row length is decided on its hint (no guard)
        with symbolic.hint_only():
            return shape if shape[1] >= s.vw else None
    return shape if shape[2] >= s.vw else None  # inner axis: vectors across `inner`


def lower_softmax_vector(op: Op, graph: Graph, s: Simd, v: VecOps):
    """Per row: a vector max, then exp(x - max) with the vector exp of codegen/vmath (stored and
    summed for Softmax, only summed for LogSoftmax), then one scaling (subtracting) pass.
    Row tails (red % VW) run the portable scalar code. A NaN or +inf in a row makes the whole
    row NaN, as in the portable kernel (the max's NaN handling does not matter: the NaN
    reaches the sum through its own exp)."""
    outer, red, inner = softmax_vector_shape(op, graph, s)
    if inner > 1:
        return _softmax_strided_vector(op, s, v, outer, red, inner)
    vw, V, exp = s.vw, s.vtype, v.fn("exp")
    kind = op.type
    name = f"{kind.lower()}_f32_last_{s.name}"
    ld = s.load
    if kind == "Softmax":
        passes = f"""        for (r = 0; r + {vw} <= red; r += {vw}) {{
            const {V} e = {exp}({v.sub(ld('xr + r'), 'vmx')});
            {s.store('yr + r', 'e')};
            vs = {s.add('vs', 'e')};
        }}
        s = {hsum(v, 'vs')};
        for (; r < red; ++r) {{ const float e = expf(xr[r] - mx); yr[r] = e; s += e; }}
        s = 1.0f / s;
        vs = {s.set1('s')};
        for (r = 0; r + {vw} <= red; r += {vw}) {s.store('yr + r', s.mul(ld('yr + r'), 'vs'))};
        for (; r < red; ++r) yr[r] *= s;"""
    else:
        passes = f"""        for (r = 0; r + {vw} <= red; r += {vw})
            vs = {s.add('vs', f"{exp}({v.sub(ld('xr + r'), 'vmx')})")};
        s = {hsum(v, 'vs')};
        for (; r < red; ++r) s += expf(xr[r] - mx);
        s = mx + logf(s);
        vs = {s.set1('s')};
        for (r = 0; r + {vw} <= red; r += {vw}) {s.store('yr + r', v.sub(ld('xr + r'), 'vs'))};
        for (; r < red; ++r) yr[r] = xr[r] - s;"""
    # parts (split_kernel): ranges of rows, each row computed as on one thread
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const int32_t o0 = (int32_t)((int64_t)outer * part / parts),
                  o1 = (int32_t)((int64_t)outer * (part + 1) / parts);
    int32_t o, r;
    for (o = o0; o < o1; ++o) {{
        const float *xr = x + (int64_t)o * red;
        float *yr = y + (int64_t)o * red;
        {V} vm = {s.set1('-INFINITY')}, vs = {s.zero}, vmx;
        float mx, s;
        for (r = 0; r + {vw} <= red; r += {vw}) vm = {s.max('vm', ld('xr + r'))};
        mx = {hmax(v, 'vm')};
        for (; r < red; ++r) mx = megcc_maxf(mx, xr[r]);
        vmx = {s.set1('mx')};
{passes}
    }}
"""
    kernel = _split(name, body, f"(outer > 1 ? {range_parts('(int64_t)outer * red')} : 1)", s,
                    helpers(v) + hsum_helpers(v) + hmax_helpers(v))
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  AXIS_PARAMS.pack(outer=outer, red=red, inner=1),
                  note=f"[{outer!r}, {red!r}, 1], {s.label}: {vw} per vector")]


def _softmax_strided_vector(op: Op, s: Simd, v: VecOps, outer: int, red: int, inner: int):
    """Softmax / LogSoftmax over a non-innermost axis: the portable strided kernel's passes
    with vectors across `inner` (per-position max m[] and sum s[] in the workspace);
    positions past the last full vector run the scalar code."""
    vw, V, exp, ld = s.vw, s.vtype, v.fn("exp"), s.load
    at = "(int64_t)r * inner + j"

    def across(vec: str, scalar: str, ind: str = "        ") -> str:
        """One pass over this part's j: vector steps, then the scalar tail."""
        return (f"{ind}for (j = j0; j + {vw} <= j1; j += {vw}) {{ {vec} }}\n"
                f"{ind}for (; j < j1; ++j) {{ {scalar} }}")

    def rows(vec: str, scalar: str) -> str:
        return "        for (r = 0; r < red; ++r) {\n" + across(vec, scalar, "            ") \
            + "\n        }"

    diff = v.sub(ld(f"xo + {at}"), ld("m + j"))
    if op.type == "Softmax":
        passes = [rows(f"const {V} e = {exp}({diff}); {s.store(f'yo + {at}', 'e')}; "
                       f"{s.store('s + j', s.add(ld('s + j'), 'e'))};",
                       f"const float e = expf(xo[{at}] - m[j]); yo[{at}] = e; s[j] += e;"),
                  "        for (j = j0; j < j1; ++j) s[j] = 1.0f / s[j];",
                  rows(f"{s.store(f'yo + {at}', s.mul(ld(f'yo + {at}'), ld('s + j')))};",
                       f"yo[{at}] *= s[j];")]
    else:
        passes = [rows(f"{s.store('s + j', s.add(ld('s + j'), f'{exp}({diff})'))};",
                       f"s[j] += expf(xo[{at}] - m[j]);"),
                  "        for (j = j0; j < j1; ++j) s[j] = m[j] + logf(s[j]);",
                  rows(f"{s.store(f'yo + {at}', v.sub(ld(f'xo + {at}'), ld('s + j')))};",
                       f"yo[{at}] = xo[{at}] - s[j];")]
    passes = "\n".join(passes)
    name = f"{op.type.lower()}_f32_strided_{s.name}"
    # parts (split_kernel): ranges of positions j cut at multiples of {vw}, so each
    # position takes the vector or the scalar path exactly as on one thread; m[] and s[]
    # are per position, so the parts share the workspace without overlapping
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    float *m = (float *)workspace, *s = m + inner;
    const int32_t nv = inner / {vw};
    const int32_t j0 = (int32_t)((int64_t)nv * part / parts) * {vw},
                  j1 = part + 1 == parts ? inner : (int32_t)((int64_t)nv * (part + 1) / parts) * {vw};
    int32_t o, r, j;
    for (o = 0; o < outer; ++o) {{
        const float *xo = x + (int64_t)o * red * inner;
        float *yo = y + (int64_t)o * red * inner;
        for (j = j0; j < j1; ++j) {{ m[j] = -INFINITY; s[j] = 0.0f; }}
{rows(f"{s.store('m + j', s.max(ld('m + j'), ld(f'xo + {at}')))};",
      f"m[j] = megcc_maxf(m[j], xo[{at}]);")}
{passes}
    }}
"""
    kernel = _split(name, body, f"(inner >= {2 * vw} ? {range_parts('(int64_t)outer * red * inner')} : 1)",
                    s, helpers(v))
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  AXIS_PARAMS.pack(outer=outer, red=red, inner=inner),
                  workspace_bytes=8 * inner,
                  note=f"[{outer!r}, {red!r}, {inner!r}], {s.label}: {vw} per vector across inner")]


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    if isa.core is None or isa.core.elementwise_vector is None:
        return "no vector cost figures for this level"
    if softmax_vector_shape(op, graph, isa.vec("f32").elementwise) is None:
        return "rows shorter than a vector"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    """Per element one exp, a max, a sum and a scale (or subtract)."""
    outer, red, inner = softmax_vector_shape(op, graph, isa.vec("f32").elementwise)
    cheap, libm = isa.core.elementwise_vector
    return outer * red * inner * (3 * cheap + libm) + 8 * outer


@implements("Softmax", "LogSoftmax", dtypes=F32, requires="f32.elementwise", applies=_applies,
            cost=_cost, label=lambda isa: f"{isa.vec('f32').elementwise.name} softmax")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    vs = isa.vec("f32")
    return lower_softmax_vector(op, graph, vs.elementwise, vs.math)
