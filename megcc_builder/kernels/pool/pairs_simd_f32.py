"""2x2 stride-2 max pooling without padding (NCHW, float32), straight from the input rows:
an output row is the pairwise max of the vertical max of two input rows.

The plane kernel (plane_simd_f32.py) copies every channel into a -inf-padded plane and
stores each output row with a partial vector: on small maps (the digits CNN: 32 channels of
8x8 -> 4x4) that per-channel and per-row cost is most of the layer (2.0 us for 512
outputs). Without padding no window leaves the input, so no plane is needed; output rows of
every channel are one loop, whole vectors first, then a half vector, then single floats.
NaN propagates like the portable kernel (a NaN anywhere in the window gives NaN).
"""
from __future__ import annotations

from typing import Optional

from ...codegen.kernel import Instr
from ...codegen.parallel import range_parts, split_kernel
from ...codegen.params import i32, schema
from ...codegen.vector import Simd
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import F32, implements
from .geometry import pool_geometry

PARAMS = schema(i32("NC", "planes (N * C)"), i32("H", "input height"),
                i32("W", "input width"), i32("OH", "output height"),
                i32("OW", "output width"))


def _max4(s: Simd, loads, half: bool) -> str:
    """C expression: the lane-wise max of the four loaded vectors, NaN-propagating."""
    a, b, c, d = loads
    if s.max_keeps_nan:
        return s.max(s.max(a, b), s.max(c, d))
    # AVX2 max returns its second operand for a NaN: NaN lanes found apart and set
    p, cmp = ("_mm_", "_mm_cmpunord_ps({x}, {y})") if half else \
        ("_mm256_", "_mm256_cmp_ps({x}, {y}, _CMP_UNORD_Q)")
    m = f"{p}max_ps({p}max_ps({a}, {b}), {p}max_ps({c}, {d}))"
    nan = f"{p}or_ps({cmp.format(x=a, y=b)}, {cmp.format(x=c, y=d)})"
    return f"{p}blendv_ps({m}, {p}set1_ps(NAN), {nan})"


def lower_maxpool_pairs(op: Op, graph: Graph, s: Simd):
    geo = pool_geometry(op, graph)
    vw, hw = s.vw, s.vw // 2
    full = _max4(s, ("e0", "o0", "e1", "o1"), False)
    hvt = "__m128" if s.name == "avx2" else "float32x2_t"
    half = ""
    if s.hload("p") and hw >= 2:
        half = f"""        if (ox + {hw} <= OW) {{
            const {hvt} e0 = {s.heven('r0 + 2 * ox')}, o0 = {s.hodd('r0 + 2 * ox')},
                        e1 = {s.heven('r1 + 2 * ox')}, o1 = {s.hodd('r1 + 2 * ox')};
            {s.hstore('yr + ox', _half_max(s))};
            ox += {hw};
        }}
"""
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    /* this part's output rows (of all NC * OH) */
    const int64_t rows = (int64_t)NC * OH,
                  q0 = rows * part / parts, q1 = rows * (part + 1) / parts;
    int64_t q;
    int32_t c = (int32_t)(q0 / OH), oy = (int32_t)(q0 % OH);  /* of row q, kept in step */
    for (q = q0; q < q1; ++q) {{
        const float *r0 = x + ((int64_t)c * H + 2 * oy) * W, *r1 = r0 + W;
        float *yr = y + q * OW;
        int32_t ox = 0;
        for (; ox + {vw} <= OW; ox += {vw}) {{
            const {s.vtype} e0 = {s.even('r0 + 2 * ox')}, o0 = {s.odd('r0 + 2 * ox')},
                        e1 = {s.even('r1 + 2 * ox')}, o1 = {s.odd('r1 + 2 * ox')};
            {s.store('yr + ox', full)};
        }}
{half}        for (; ox < OW; ++ox)
            yr[ox] = megcc_maxf(megcc_maxf(r0[2 * ox], r0[2 * ox + 1]),
                                megcc_maxf(r1[2 * ox], r1[2 * ox + 1]));
        if (++oy == OH) {{
            oy = 0;
            ++c;
        }}
    }}
"""
    name = f"maxpool_pairs_k2x2_s2x2_f32_{s.name}"
    kernel = split_kernel(name, body, range_parts("(int64_t)NC * OH * OW"), PARAMS,
                          ("math",), isa=s.isa)
    params = PARAMS.pack(NC=geo["n"] * geo["c"], H=geo["h"], W=geo["w"], OH=geo["oh"],
                         OW=geo["ow"])
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params,
                  note=f"{s.label} 2x2/2 max pooling from the input rows (no padded plane), "
                       f"{vw} outputs per vector")]


def _half_max(s: Simd) -> str:
    if s.max_keeps_nan:  # NEON: 2-lane vmax propagates NaN
        return "vmax_f32(vmax_f32(e0, o0), vmax_f32(e1, o1))"
    return _max4(s, ("e0", "o0", "e1", "o1"), True)


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    geo = pool_geometry(op, graph)
    if geo is None or op.type != "MaxPool":
        return "not a 2-D max pooling"
    if (geo["kh"], geo["kw"], geo["sh"], geo["sw"], geo["dh"], geo["dw"]) != (2, 2, 2, 2, 1, 1):
        return "not a 2x2 window of stride 2"
    if any(geo["pads"]):
        return "padded"
    # every window inside the input (floor mode, or ceil mode on even extents)
    if any(not isinstance(geo[k], int) for k in ("n", "c", "h", "w", "oh", "ow")):
        return "shape known only at run time"
    if 2 * geo["oh"] > geo["h"] or 2 * geo["ow"] > geo["w"]:
        return "a window past the input (ceil mode)"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    """Per output vector: 4 deinterleaving loads and 3 max; per output row a tail; no plane."""
    geo, vs = pool_geometry(op, graph), isa.vec("f32").direct
    rows = geo["n"] * geo["c"] * geo["oh"]
    rest = geo["ow"] % vs.vw
    halves = 1 if rest >= vs.vw // 2 >= 2 else 0
    rest -= halves * (vs.vw // 2)
    return rows * ((geo["ow"] // vs.vw) * 6.0 + halves * 4.0 + rest * 3.0 + 4.0)


@implements("MaxPool", dtypes=F32, requires="f32.direct", applies=_applies, cost=_cost,
            label=lambda isa: f"{isa.vec('f32').direct.name} 2x2/2 max from input rows",
            name="pool.pairs_simd_f32.max")
def emit_max(op: Op, graph: Graph, isa: IsaSpec):
    return lower_maxpool_pairs(op, graph, isa.vec("f32").direct)
