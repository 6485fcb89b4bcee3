"""QLinearAveragePool and QLinearGlobalAveragePool, portable C, as onnxruntime computes
them: the average pool in float on dequantized values, quantized with
nearbyint(y / y_scale + y_zp); the global pool as an int32 sum requantized by
x_scale / (y_scale * count) (MLAS)."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, schema, table
from ...ir import Graph, Op
from ...ir.quant import QRANGE, check_scale, check_zero_point, operand
from ..registry import implements
from .requant import CTYPE, SHORT, Requant, rounding_of

QTYPES = ("int8", "uint8")
POOL_PARAMS = schema(i32("NC", "planes (N * C)"), i32("H", "input height"),
                     i32("W", "input width"), i32("OH", "output height"),
                     i32("OW", "output width"), i32("KH", "window height"),
                     i32("KW", "window width"), i32("SH", "stride height"),
                     i32("SW", "stride width"), i32("PT", "padding top"),
                     i32("PL", "padding left"))
GLOBAL_PARAMS = schema(i32("NC", "planes (N * C)"), i32("S", "elements per plane"))


def _io(op: Op, graph: Graph, fixed: bool = False):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype != y.dtype:
        raise graph.error(f"X is {x.dtype} but Y is {y.dtype}", op)
    check_scale(graph, op, 1, "x_scale")
    check_scale(graph, op, 3, "y_scale")
    check_zero_point(graph, op, 2, x.dtype, "x_zero_point")
    check_zero_point(graph, op, 4, y.dtype, "y_zero_point")
    names = [op.inputs[0], op.inputs[1], operand(graph, op, 2), op.inputs[3],
             operand(graph, op, 4)]
    ins = [n for n in names if n]
    pos = {k: sum(1 for n in names[:k] if n) for k, n in enumerate(names) if n}
    ct = CTYPE[x.dtype]
    zp = lambda k: f"(int32_t)*(const {ct} *)in_ptrs[{pos[k]}]" if k in pos else "0"  # noqa
    scales = "" if fixed else f"""    const float xs = *(const float *)in_ptrs[{pos[1]}];
    const float so = *(const float *)in_ptrs[{pos[3]}];
"""  # fixed point: the multipliers are kernel parameters (no float in the kernel)
    head = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
{scales}    const int32_t xz = {zp(2)}, yz = {zp(4)};
"""
    return x, y, ins, head, ("" if 2 in pos else "_noxz") + ("" if 4 in pos else "_noyz")


@implements("QLinearAveragePool", dtypes=QTYPES)
def lower_qlinear_avgpool(op: Op, graph: Graph):
    fixed = op.attrs.get("requant") == "fixed"
    x, y, ins, head, ztag = _io(op, graph, fixed)
    if len(x.shape) not in (3, 4):
        raise graph.error(f"{len(x.shape) - 2}-D pooling is not supported (1-D, 2-D are)", op)
    if op.attrs.get("activation"):
        raise graph.error("QLinearAveragePool with a fused activation is not supported", op)
    if rounding_of(op, graph) == "half_away" and not fixed:
        return _lower_avgpool_megengine(op, graph, x, y, ins, head, ztag)
    one_d = len(x.shape) == 3
    ks = list(op.attrs["kernel_shape"])
    st = list(op.attrs.get("strides") or [1] * len(ks))
    pads = list(op.attrs.get("pads") or [0] * 2 * len(ks))
    if one_d:
        ks, st, pads = [1] + ks, [1] + st, [0, pads[0], 0, pads[1]]
    h, w = (1, x.shape[2]) if one_d else x.shape[2:]
    oh, ow = (1, y.shape[2]) if one_d else y.shape[2:]
    include_pad = int(op.attrs.get("count_include_pad", 0))
    lo, hi = QRANGE[y.dtype]
    yt = CTYPE[y.dtype]
    count = "KH * KW" if include_pad else "(he - hs) * (we - ws)"
    geometry = dict(NC=x.shape[0] * x.shape[1], H=h, W=w, OH=oh, OW=ow, KH=ks[0], KW=ks[1],
                    SH=st[0], SW=st[1], PT=pads[0], PL=pads[1])
    if fixed:
        return _lower_avgpool_fixed(op, graph, x, ins, head, ztag, count, include_pad,
                                    geometry)
    # onnxruntime: hend = min(hstart + k, H) then hstart = max(hstart, 0); the sum in float
    # over dequantized values, row by row; y = clamp(nearbyint(sum / count / ys + yz))
    body = head + f"""    int32_t c, oy, ox, iy, ix;
    for (c = 0; c < NC; ++c) {{
        const {yt} *xc = x + (int64_t)c * H * W;
        {yt} *yc = y + (int64_t)c * OH * OW;
        for (oy = 0; oy < OH; ++oy) {{
            int32_t hs = oy * SH - PT, he = hs + KH < H ? hs + KH : H;
            hs = hs > 0 ? hs : 0;
            for (ox = 0; ox < OW; ++ox) {{
                int32_t ws = ox * SW - PL, we = ws + KW < W ? ws + KW : W;
                float sum = 0.0f, v;
                ws = ws > 0 ? ws : 0;
                for (iy = hs; iy < he; ++iy)
                    for (ix = ws; ix < we; ++ix)
                        sum += xs * (float)((int32_t)xc[(int64_t)iy * W + ix] - xz);
                sum /= (float)({count});
                v = sum / so;
                v = v + (float)yz;
                yc[oy * OW + ox] = ({yt})megcc_qround_even(v, {lo}.0f, {hi}.0f);
            }}
        }}
    }}
"""
    from .requant import ROUND_EVEN

    name = f"qlinear_avgpool_{SHORT[x.dtype]}{'_incpad' if include_pad else ''}{ztag}"
    kernel = make_kernel(name, body, POOL_PARAMS, (ROUND_EVEN,))
    params = POOL_PARAMS.pack(NC=x.shape[0] * x.shape[1], H=h, W=w, OH=oh, OW=ow, KH=ks[0],
                              KW=ks[1], SH=st[0], SW=st[1], PT=pads[0], PL=pads[1])
    return [Instr(kernel, ins, [op.outputs[0]], params, note="int8 average pool")]


def _lower_avgpool_megengine(op: Op, graph: Graph, x, y, ins, head, ztag):
    """MegEngine's quantized average pooling: the exact integer sum of the window, then
    (float)sum * xs / count in output steps (x * (1 / ys)), rounded half away."""
    from .requant import ROUND_AWAY

    ks = list(op.attrs["kernel_shape"])
    if len(ks) != 2:
        raise graph.error(f"{len(ks)}-D pooling with MegEngine's rounding is not supported "
                          "(2-D is)", op)
    st = list(op.attrs.get("strides") or [1, 1])
    pads = list(op.attrs.get("pads") or [0, 0, 0, 0])
    include_pad = int(op.attrs.get("count_include_pad", 0))
    lo, hi = QRANGE[y.dtype]
    yt = CTYPE[y.dtype]
    count = "KH * KW" if include_pad else "(he - hs) * (we - ws)"
    body = head + f"""    int32_t c, oy, ox, iy, ix;
    const float lo = (float)({lo} - yz), hi = (float)({hi} - yz);
    for (c = 0; c < NC; ++c) {{
        const {yt} *xc = x + (int64_t)c * H * W;
        {yt} *yc = y + (int64_t)c * OH * OW;
        for (oy = 0; oy < OH; ++oy) {{
            int32_t hs = oy * SH - PT, he = hs + KH < H ? hs + KH : H;
            hs = hs > 0 ? hs : 0;
            for (ox = 0; ox < OW; ++ox) {{
                int32_t ws = ox * SW - PL, we = ws + KW < W ? ws + KW : W, sum = 0;
                ws = ws > 0 ? ws : 0;
                for (iy = hs; iy < he; ++iy)
                    for (ix = ws; ix < we; ++ix)
                        sum += (int32_t)xc[(int64_t)iy * W + ix] - xz;
                yc[oy * OW + ox] = ({yt})(megcc_qround_away(
                    ((float)sum * xs / (float)({count})) * (1.0f / so), lo, hi) + yz);
            }}
        }}
    }}
"""
    name = f"qlinear_avgpool_{SHORT[x.dtype]}_away{'_incpad' if include_pad else ''}{ztag}"
    kernel = make_kernel(name, body, POOL_PARAMS, (ROUND_AWAY,))
    params = POOL_PARAMS.pack(NC=x.shape[0] * x.shape[1], H=x.shape[2], W=x.shape[3],
                              OH=y.shape[2], OW=y.shape[3], KH=ks[0], KW=ks[1], SH=st[0],
                              SW=st[1], PT=pads[0], PL=pads[1])
    return [Instr(kernel, ins, [op.outputs[0]], params, note="int8 average pool (MegEngine)")]


def global_avgpool_cost(per_code: float):
    """Cost of a global average pool summing `per_code` cycles a code, plus the per-channel
    requantization (a division-free float epilogue, ~20 cycles)."""
    def cost(op: Op, graph: Graph, isa) -> float:
        x = graph.tensors[op.inputs[0]]
        return float(x.numel) * per_code + 20.0 * x.shape[0] * x.shape[1]
    return cost


@implements("QLinearGlobalAveragePool", dtypes=QTYPES, cost=global_avgpool_cost(1.0))
def lower_qlinear_global_avgpool(op: Op, graph: Graph):
    if op.attrs.get("requant") == "fixed":  # the SIMD implementations refuse these
        x, y, ins, head, ztag = _io(op, graph, True)
        if op.attrs.get("channels_last", 0):
            raise graph.error("channels_last is not supported", op)
        return _lower_global_fixed(op, graph, x, ins, head, ztag, Requant(op, graph, y.dtype),
                                   _plane_size(x))
    return lower_global_avgpool(op, graph, "qlinear_global_avgpool", """        int32_t sum = 0;
        for (i = 0; i < S; ++i) sum += (int32_t)x[i];
""", note="int8 global average pool")


def _plane_size(x) -> int:
    spatial = 1
    for d in x.shape[2:]:
        spatial *= d
    return spatial


def lower_global_avgpool(op: Op, graph: Graph, prefix: str, plane_sum: str, note: str,
                         prelude: str = "", isa: str = ""):
    """The global average pool around `plane_sum`: C statements declaring `int32_t sum`, the
    exact sum of the S codes at `x` (the SIMD implementations differ only there; the
    requantization of the sum is this one, so every implementation rounds alike)."""
    x, y, ins, head, ztag = _io(op, graph)
    if op.attrs.get("channels_last", 0):
        raise graph.error("channels_last is not supported", op)
    rq = Requant(op, graph, y.dtype)
    spatial = _plane_size(x)
    value = rq.value("sum - xz * S", "scale", "xs / (float)S")
    body = head + f"""    const float scale = xs / (so * (float)S);
    {rq.setup("yz")}
    int32_t c, i;
{prelude}    for (c = 0; c < NC; ++c, x += S) {{
{plane_sum}        y[c] = {rq.store(value, "yz")};
    }}
"""
    name = f"{prefix}_{rq.tag}{ztag}"
    kernel = make_kernel(name, body, GLOBAL_PARAMS, rq.helpers, isa=isa)
    return [Instr(kernel, ins, [op.outputs[0]],
                  GLOBAL_PARAMS.pack(NC=x.shape[0] * x.shape[1], S=spatial), note=note)]


# --- fixed point (requant="fixed", enable_fixed_point_requant): the int32 sum of the
# centred window, one Q31 multiplier per window size (x_scale / (y_scale * count), computed
# at compile time: ir/quant.avgpool_multipliers), one rounding, no float instruction ---

def _fixed_multipliers(op: Op, graph: Graph, counts, rq) -> tuple:
    """(Q31 multipliers, exponents) of x_scale / (y_scale * n) for each n of `counts`."""
    from ...ir.quant import avgpool_problem, fixed_scales
    from .requant import q31_multipliers

    why = avgpool_problem(op, graph, counts)
    if why:
        raise graph.error(f"fixed-point requantization: {why}", op)
    xs, ys = fixed_scales(op, graph, (1, 3))
    rq.set_clip_scale(ys)
    m, e = q31_multipliers([xs / (ys * n) for n in counts])
    return [int(v) for v in m], [int(v) for v in e]


def _lower_global_fixed(op: Op, graph: Graph, x, ins, head, ztag, rq, spatial: int):
    (qm,), (qe,) = _fixed_multipliers(op, graph, [spatial], rq)
    params = schema(i32("NC", "planes (N * C)"), i32("S", "elements per plane"),
                    i32("qm", "Q31 multiplier of x_scale / (y_scale * S)"),
                    i32("qe", "its exponent"))
    body = head + f"""    {rq.setup("yz")}
    int32_t c, i;
    for (c = 0; c < NC; ++c, x += S) {{
        int32_t sum = 0;
        for (i = 0; i < S; ++i) sum += (int32_t)x[i] - xz;
        y[c] = {rq.store(rq.value("sum", ""), "yz")};
    }}
"""
    kernel = make_kernel(f"qlinear_global_avgpool_{rq.tag}{ztag}", body, params, rq.helpers)
    return [Instr(kernel, ins, [op.outputs[0]],
                  params.pack(NC=x.shape[0] * x.shape[1], S=spatial, qm=qm, qe=qe),
                  note="int8 global average pool (fixed point)")]


def _lower_avgpool_fixed(op: Op, graph: Graph, x, ins, head, ztag, count: str,
                         include_pad: int, geometry: dict):
    """The window geometry of lower_qlinear_avgpool (onnxruntime's); each window's centred
    int32 sum requantized by the multiplier of its element count (a table indexed by it)."""
    rq = Requant(op, graph, x.dtype)
    window = geometry["KH"] * geometry["KW"]
    qm, qe = _fixed_multipliers(op, graph, range(1, window + 1), rq)
    params = schema(*POOL_PARAMS.params, table("qmt", window, "Q31 multiplier per count"),
                    table("qet", window, "its exponent"))
    yt = CTYPE[x.dtype]
    body = head + f"""    {rq.setup("yz")}
    int32_t c, oy, ox, iy, ix;
    for (c = 0; c < NC; ++c) {{
        const {yt} *xc = x + (int64_t)c * H * W;
        {yt} *yc = y + (int64_t)c * OH * OW;
        for (oy = 0; oy < OH; ++oy) {{
            int32_t hs = oy * SH - PT, he = hs + KH < H ? hs + KH : H;
            hs = hs > 0 ? hs : 0;
            for (ox = 0; ox < OW; ++ox) {{
                int32_t ws = ox * SW - PL, we = ws + KW < W ? ws + KW : W, sum = 0;
                int32_t qm, qe;
                ws = ws > 0 ? ws : 0;
                for (iy = hs; iy < he; ++iy)
                    for (ix = ws; ix < we; ++ix)
                        sum += (int32_t)xc[(int64_t)iy * W + ix] - xz;
                qm = qmt[{count} - 1];
                qe = qet[{count} - 1];
                yc[oy * OW + ox] = {rq.store(rq.value("sum", ""), "yz")};
            }}
        }}
    }}
"""
    name = f"qlinear_avgpool_{rq.tag}{'_incpad' if include_pad else ''}{ztag}"
    kernel = make_kernel(name, body, params, rq.helpers)
    return [Instr(kernel, ins, [op.outputs[0]], params.pack(**geometry, qmt=qm, qet=qe),
                  note="int8 average pool (fixed point)")]


# --- MaxPool on int8 / uint8 (QDQ islands run it on the quantized tensor) ----------------
MAXPOOL_PARAMS = schema(i32("NC", "planes (N * C)"), i32("H", "input height"),
                        i32("W", "input width"), i32("OH", "output height"),
                        i32("OW", "output width"), i32("PT", "padding top"),
                        i32("PL", "padding left"),
                        i32("WP", "row buffer cells (covers every window of a row)"))


def maxpool_s8_applies(op: Op, graph: Graph) -> bool:
    """Whether the int8 kernel below computes this MaxPool (2-D, int8/uint8, no Indices);
    pool.direct_generic_f32 hands such ops to it (one portable MaxPool implementation)."""
    x = graph.tensors[op.inputs[0]]
    return x.dtype in QTYPES and len(x.shape) == 4 and not (len(op.outputs) > 1 and
                                                            op.outputs[1])


def lower_maxpool_s8(op: Op, graph: Graph):
    """The window's maximum of the integer codes (the dequantization is monotonic, so this
    is the max of the real values, quantized alike); window, stride and dilation compiled
    in."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
    ct = CTYPE[x.dtype]
    low = "INT8_MIN" if x.dtype == "int8" else "0"
    # separable: the window rows' element-wise maximum into a padded row buffer (contiguous,
    # vectorised by the C compiler), then each output the maximum of kw cells of it
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    {ct} *m = ({ct} *)workspace;  /* WP cells: PL low cells, the row maxima, low cells */
    int32_t c, oy, ox, ky, kx, i;
    for (c = 0; c < NC; ++c) {{
        const {ct} *xc = x + (int64_t)c * H * W;
        {ct} *yc = y + (int64_t)c * OH * OW;
        for (oy = 0; oy < OH; ++oy) {{
            const int32_t iy0 = oy * {sh} - PT;
            for (i = 0; i < WP; ++i) m[i] = {low};
            for (ky = 0; ky < {kh}; ++ky) {{
                const int32_t iy = iy0 + ky * {dh};
                if (iy >= 0 && iy < H) {{
                    const {ct} *r = xc + (int64_t)iy * W;
                    {ct} *mm = m + PL;
                    for (i = 0; i < W; ++i) mm[i] = r[i] > mm[i] ? r[i] : mm[i];
                }}
            }}
            for (ox = 0; ox < OW; ++ox) {{
                const {ct} *w0 = m + ox * {sw};
                {ct} v = w0[0];
                for (kx = 1; kx < {kw}; ++kx) v = w0[kx * {dw}] > v ? w0[kx * {dw}] : v;
                yc[oy * OW + ox] = v;
            }}
        }}
    }}
"""
    name = f"maxpool_sep_{SHORT[x.dtype]}_k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    kernel = make_kernel(name, body, MAXPOOL_PARAMS)
    wp = max(pads[1] + x.shape[3], (y.shape[3] - 1) * sw + (kw - 1) * dw + 1)
    params = MAXPOOL_PARAMS.pack(NC=x.shape[0] * x.shape[1], H=x.shape[2], W=x.shape[3],
                                 OH=y.shape[2], OW=y.shape[3], PT=pads[0], PL=pads[1], WP=wp)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params, workspace_bytes=wp,
                  note="int8 max pool (separable)")]
