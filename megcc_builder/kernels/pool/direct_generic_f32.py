"""Pooling kernels (float32, NCHW): max/average with padding, stride, dilation, ceil mode."""
from __future__ import annotations

import re

from ...codegen.kernel import Instr, make_kernel
from ...codegen.params import i32, schema, table
from ...ir import Graph, Op
from ..registry import implements
from ..quant.pool_generic_s8 import lower_maxpool_s8, maxpool_s8_applies
from .geometry import pool_cost


# 2-D pooling over N*C planes (the window, stride and dilation are in the kernel name)
POOL2D_PARAMS = schema(i32("NC", "planes (N * C)"), i32("H", "input height"),
                       i32("W", "input width"), i32("OH", "output height"),
                       i32("OW", "output width"), i32("PT", "padding top"),
                       i32("PL", "padding left"), i32("PB", "padding bottom"),
                       i32("PR", "padding right"))
GLOBAL_POOL_PARAMS = schema(i32("NC", "planes (N * C)"), i32("S", "elements per plane"))


def window_counters(fin: str) -> dict:
    """C fragments counting window cells, only for the counters `fin` divides by:
    cnt = cells inside the input, cnt_pad = cells inside the padded input."""
    uses = {c: re.search(r"\b" + c + r"\b", fin) is not None for c in ("cnt", "cnt_pad")}
    names = [c for c in ("cnt", "cnt_pad") if uses[c]]
    return {"decl": f"int32_t {', '.join(c + ' = 0' for c in names)};" if names else "",
            "cnt": "++cnt;" if uses["cnt"] else "",
            "cnt_pad": "++cnt_pad;" if uses["cnt_pad"] else "",
            "uses_cnt_pad": uses["cnt_pad"]}


@implements("MaxPool", "AveragePool", cost=lambda op, graph, isa: pool_cost(op, graph, isa, False))
def lower_pool(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if op.type == "MaxPool" and maxpool_s8_applies(op, graph):  # int8 / uint8 codes
        return lower_maxpool_s8(op, graph)
    if x.dtype != "float32" or len(x.shape) not in (3, 4) or \
            (len(op.outputs) > 1 and op.outputs[1]):
        return _generic_pool(op, graph, "max" if op.type == "MaxPool" else "avg")
    one_d = len(x.shape) == 3
    ks = list(op.attrs["kernel_shape"])
    st = list(op.attrs.get("strides", [1] * len(ks)))
    dl = list(op.attrs.get("dilations", [1] * len(ks)))
    pads = list(op.attrs.get("pads", [0] * 2 * len(ks)))
    if one_d:
        ks, st, dl, pads = [1] + ks, [1] + st, [1] + dl, [0, pads[0], 0, pads[1]]
    kh, kw = ks
    sh, sw = st
    dh, dw = dl
    h, w = (1, x.shape[2]) if one_d else x.shape[2:]
    oh, ow = (1, y.shape[2]) if one_d else y.shape[2:]
    is_max = op.type == "MaxPool"
    include_pad = int(op.attrs.get("count_include_pad", 0))
    geo = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    if is_max:
        name = f"maxpool_{geo}_f32"
        init, acc, fin = "-INFINITY", "v = xv > v || xv != xv ? xv : v;", "v"
    else:
        name = f"avgpool_{geo}_f32{'_incpad' if include_pad else ''}"
        init, acc = "0.0f", "v += xv;"
        # count_include_pad counts padded cells inside the padded input, not past it (ceil mode)
        fin = "v / (float)cnt_pad" if include_pad else "v / (float)(cnt > 0 ? cnt : 1)"
    count = window_counters(fin)
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const int32_t HP = H + PT + PB, WP = W + PL + PR;  /* padded extents */
    int32_t c, oy, ox, ky, kx;
    for (c = 0; c < NC; ++c) {{
        const float *xc = x + (int64_t)c * H * W;
        float *yc = y + (int64_t)c * OH * OW;
        for (oy = 0; oy < OH; ++oy)
            for (ox = 0; ox < OW; ++ox) {{
                float v = {init};
                {count["decl"]}
                for (ky = 0; ky < {kh}; ++ky) {{
                    const int32_t iy = oy * {sh} - PT + ky * {dh};
                    if (iy - (-PT) >= HP) break;
                    for (kx = 0; kx < {kw}; ++kx) {{
                        const int32_t ix = ox * {sw} - PL + kx * {dw};
                        if (ix + PL >= WP) break;
                        {count["cnt_pad"]}
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        {{ const float xv = xc[(int64_t)iy * W + ix]; {acc} }}
                        {count["cnt"]}
                    }}
                }}
                yc[oy * OW + ox] = {fin};
            }}
    }}
"""
    kernel = make_kernel(name, body, POOL2D_PARAMS)
    params = POOL2D_PARAMS.pack(NC=x.shape[0] * x.shape[1], H=h, W=w, OH=oh, OW=ow,
                                PT=pads[0], PL=pads[1], PB=pads[2], PR=pads[3])
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params)]


@implements("GlobalAveragePool", "GlobalMaxPool",
            # a scalar pass (the float16 row kernels compete for float16 inputs)
            cost=lambda op, graph, isa: 2.0 * float(graph.tensors[op.inputs[0]].numel) + 20)
def lower_global_pool(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    if x.dtype != "float32":
        raise graph.error(f"{op.type} on {x.dtype} is not supported (float32 is)", op)
    is_max = op.type == "GlobalMaxPool"
    name = "global_maxpool_f32" if is_max else "global_avgpool_f32"
    step = "v = x[i] > v || x[i] != x[i] ? x[i] : v;" if is_max else "v += x[i];"
    fin = "v" if is_max else "v / (float)S"
    # a long average sums 8 interleaved partial sums (independent chains the compiler keeps
    # in one vector), then pairs them: one running sum was a chain of dependent adds, 4
    # cycles per element (SqueezeNet's 1000 x 13 x 13: 93 us); a short one (3 x 3) keeps
    # the running sum, which the set-up of the 8 sums made slower
    lanes = "" if is_max else """
        i = 0;
        if (S >= 32) {
            float sums[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
            int32_t j;
            for (; i + 8 <= S; i += 8)
                for (j = 0; j < 8; ++j) sums[j] += x[i + j];
            v = ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]));
        }"""
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    int32_t c, i;
    for (c = 0; c < NC; ++c, x += S) {{
        float v = {"-INFINITY" if is_max else "0.0f"};{lanes}
        for ({"i = 0" if is_max else ""}; i < S; ++i) {step}
        y[c] = {fin};
    }}
"""
    spatial = 1
    for d in x.shape[2:]:
        spatial *= d
    kernel = make_kernel(name, body, GLOBAL_POOL_PARAMS)
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]],
                  GLOBAL_POOL_PARAMS.pack(NC=x.shape[0] * x.shape[1], S=spatial))]


# --- generic N-D pooling: 3-D windows, LpPool, MaxPool's Indices, integer MaxPool -----------

MAX_SPATIAL = 3
POOL_ND_PARAMS = schema(
    i32("NC", "planes (N * C)"),
    table("in_d", MAX_SPATIAL, "input extents (unused axes 1)"),
    table("out_d", MAX_SPATIAL, "output extents"), table("k", MAX_SPATIAL, "window extents"),
    table("s", MAX_SPATIAL, "strides"), table("dl", MAX_SPATIAL, "dilations"),
    table("pb", MAX_SPATIAL, "padding before"), table("pe", MAX_SPATIAL, "padding after"))


def _pool_geometry(op: Op, x_shape, y_shape):
    r = len(x_shape) - 2
    ks = list(op.attrs["kernel_shape"])
    st = list(op.attrs.get("strides", [1] * r))
    dl = list(op.attrs.get("dilations", [1] * r))
    pads = list(op.attrs.get("pads", [0] * 2 * r))
    pad = lambda v: v + [1] * (MAX_SPATIAL - r)  # noqa: E731 (unused axes have extent 1)
    zero = lambda v: v + [0] * (MAX_SPATIAL - r)  # noqa: E731
    return (pad(list(x_shape[2:])), pad(list(y_shape[2:])), pad(ks), pad(st), pad(dl),
            zero(pads[:r]), zero(pads[r:]))


def _generic_pool(op: Op, graph: Graph, kind: str):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    r = len(x.shape) - 2
    if not 1 <= r <= MAX_SPATIAL:
        raise graph.error(f"{r}-D pooling is not supported (1-D to 3-D are)", op)
    want_idx = len(op.outputs) > 1 and bool(op.outputs[1])
    ins, outs, ks, st, dl, pb, pe = _pool_geometry(op, x.shape, y.shape)
    is_float = x.dtype == "float32"
    if not is_float and (kind != "max" or x.dtype not in ("int8", "uint8")):
        raise graph.error(f"{op.type} on {x.dtype} is not supported", op)
    ct = {"float32": "float", "int8": "int8_t", "uint8": "uint8_t"}[x.dtype]
    p_norm = int(op.attrs.get("p", 2))
    include_pad = int(op.attrs.get("count_include_pad", 0))
    if kind == "max":
        init = "-INFINITY" if is_float else ("INT8_MIN" if x.dtype == "int8" else "0")
        acc = ("if (xv > v || (xv != xv && v == v) || best < 0) { v = xv; best = src; }")
        fin = "v"
    elif kind == "lp":
        init, acc = "0.0f", (f"v += fabsf(xv) * fabsf(xv);" if p_norm == 2 else
                             f"v += powf(fabsf(xv), {p_norm}.0f);")
        fin = "sqrtf(v)" if p_norm == 2 else f"powf(v, 1.0f / {p_norm}.0f)"
    else:
        init, acc = "0.0f", "v += xv;"
        fin = "v / (float)cnt_pad" if include_pad else "v / (float)(cnt > 0 ? cnt : 1)"
    storage = int(op.attrs.get("storage_order", 0))
    # Index of an input element as MaxPool's Indices output counts it: row-major over the
    # whole tensor, or column-major over the spatial axes (storage_order=1, 2-D).
    if storage and r == 2:
        idx_expr = "c * sp + ix[1] * in_d[0] + ix[0]"
    else:
        idx_expr = "src"
    tag = {"max": "max", "avg": "avg_incpad" if include_pad else "avg",
           "lp": f"lp{p_norm}"}[kind]
    name = f"pool_nd_{tag}_{x.dtype}{'_idx' if want_idx else ''}{'_cm' if storage and r == 2 else ''}"
    idx_decl = "int64_t *yi = (int64_t *)out_ptrs[1];" if want_idx else ""
    idx_store = f"yi[o] = best >= 0 ? best : 0;" if want_idx else ""
    uses_best = kind == "max"  # the window's argmax (ties, NaN and Indices need it)
    count = window_counters(fin)
    padded_test = "if (ix[d] < -pb[d] || ix[d] >= in_d[d] + pe[d]) padded = 0;" \
        if count["uses_cnt_pad"] else ""
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    {idx_decl}
    const int64_t sp = (int64_t)in_d[0] * in_d[1] * in_d[2];
    int64_t c, o = 0;
    int32_t oy[3], ky[3], ix[3];
    for (c = 0; c < NC; ++c)
      for (oy[0] = 0; oy[0] < out_d[0]; ++oy[0])
        for (oy[1] = 0; oy[1] < out_d[1]; ++oy[1])
          for (oy[2] = 0; oy[2] < out_d[2]; ++oy[2], ++o) {{
            float v = {init};
            {"int64_t best = -1;" if uses_best else ""}
            {count["decl"]}
            for (ky[0] = 0; ky[0] < k[0]; ++ky[0])
              for (ky[1] = 0; ky[1] < k[1]; ++ky[1])
                for (ky[2] = 0; ky[2] < k[2]; ++ky[2]) {{
                    int32_t d, inside = 1{", padded = 1" if count["uses_cnt_pad"] else ""};
                    for (d = 0; d < 3; ++d) {{
                        ix[d] = oy[d] * s[d] - pb[d] + ky[d] * dl[d];
                        if (ix[d] < 0 || ix[d] >= in_d[d]) inside = 0;
                        {padded_test}
                    }}
                    {"cnt_pad += padded;" if count["uses_cnt_pad"] else ""}
                    if (!inside) continue;
                    {count["cnt"]}
                    {{
                        const int64_t src = c * sp + ((int64_t)ix[0] * in_d[1] + ix[1]) * in_d[2] + ix[2];
                        const float xv = (float)x[src];
                        {acc.replace("best = src", "best = " + idx_expr)}
                    }}
                }}
            y[o] = ({ct})({fin});
            {idx_store}
          }}
"""
    kernel = make_kernel(name, body, POOL_ND_PARAMS)
    params = POOL_ND_PARAMS.pack(NC=x.shape[0] * x.shape[1], in_d=ins, out_d=outs, k=ks, s=st,
                                 dl=dl, pb=pb, pe=pe)
    return [Instr(kernel, [op.inputs[0]], [o for o in op.outputs if o], params,
                  note=f"{r}-D {kind} pooling")]


@implements("LpPool")
def lower_lp_pool(op: Op, graph: Graph):
    return _generic_pool(op, graph, "lp")


@implements("GlobalLpPool")
def lower_global_lp_pool(op: Op, graph: Graph):
    x = graph.tensors[op.inputs[0]]
    spatial = list(x.shape[2:])
    op = Op("LpPool", op.inputs, op.outputs, {"kernel_shape": spatial, "p": op.attrs.get("p", 2)},
            op.name)
    return _generic_pool(op, graph, "lp")
