"""Resize / Upsample: coordinates computed at compile time, kernels gather and blend."""
from __future__ import annotations

import math
from typing import List, Optional

import numpy as np

from ...codegen.kernel import Instr, f32_bits, make_kernel
from ...codegen.params import f32, i32, schema, table
from ...ir import Graph, Op, itemsize, numpy_dtype
from ..registry import implements
from ...ir.symbolic import Sym
from .copy_generic import UINT_OF_SIZE, const_input, norm_axis


# Both kernels: the planes, their extents, then per-output-row and per-column tables.
_HEAD = (i32("NC", "planes (N * C)"), i32("H", "input height"), i32("W", "input width"),
         i32("OH", "output height"), i32("OW", "output width"))
NEAREST_PARAMS = schema(*_HEAD, table("iy", "OH", "source row per output row (-1: outside)"),
                        table("ix", "OW", "source column per output column (-1: outside)"),
                        table("ev_bytes", 2, "extrapolation value's bytes (zero-extended)"))
BILINEAR_PARAMS = schema(*_HEAD, table("y0", "OH", "first source row (-1: outside)"),
                         table("y1", "OH", "second source row"),
                         table("wy0", "OH", "f32 bits: weight of y0"),
                         table("wy1", "OH", "f32 bits: weight of y1"),
                         table("x0", "OW", "first source column (-1: outside)"),
                         table("x1", "OW", "second source column"),
                         table("wx0", "OW", "f32 bits: weight of x0"),
                         table("wx1", "OW", "f32 bits: weight of x1"),
                         f32("ev", "extrapolation value"))


F32 = np.float32


def source_coord(mode: str, x: int, scale, in_len: int, out_len: int, roi=(0.0, 1.0)):
    """Input coordinate of output index x (float32 arithmetic, as onnxruntime does)."""
    xf, scale = F32(x), F32(scale)
    if mode == "half_pixel":
        return (xf + F32(0.5)) / scale - F32(0.5)
    if mode == "half_pixel_symmetric":
        adj = F32(out_len) / (scale * F32(in_len))
        center = F32(in_len) / F32(2)
        offset = center * (F32(1) - adj)
        return offset + (xf + F32(0.5)) / scale - F32(0.5)
    if mode == "pytorch_half_pixel":
        return (xf + F32(0.5)) / scale - F32(0.5) if out_len > 1 else F32(0)
    if mode == "align_corners":
        return F32(0) if out_len == 1 else xf * F32(in_len - 1) / F32(out_len - 1)
    if mode == "asymmetric":
        return xf / scale
    if mode == "tf_half_pixel_for_nn":
        return (xf + F32(0.5)) / scale
    if mode == "tf_crop_and_resize":
        start, end = F32(roi[0]), F32(roi[1])
        if out_len > 1:
            return start * F32(in_len - 1) + xf * (end - start) * F32(in_len - 1) / F32(out_len - 1)
        return F32(0.5) * (start + end) * F32(in_len - 1)
    raise KeyError(mode)


def nearest_index(mode: str, v, downsample: bool) -> int:
    v = float(v)
    if mode == "round_prefer_floor":
        return math.floor(v) if v == int(v) + 0.5 else _round_half_away(v)
    if mode == "round_prefer_ceil":
        return _round_half_away(v)
    if mode == "floor":
        return math.floor(v)
    if mode == "ceil":
        return math.ceil(v)
    if mode == "simple":  # Upsample and Resize-10
        return math.ceil(v) if downsample else int(v)
    raise KeyError(mode)


def _round_half_away(v: float) -> int:
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def _resize_setup(op: Op, graph: Graph, rank: int):
    """(mode, coordinate mode, nearest mode, scales[rank] or None, roi[2*rank])."""
    if op.type == "Upsample" or graph.opset < 11:
        mode = op.attrs.get("mode", "nearest")
        if op.type == "Upsample" and graph.opset < 9:
            scales = list(op.attrs["scales"])
        else:
            scales = const_input(op, graph, 1, "scales").tolist()
        return mode, "asymmetric", "simple", scales, None
    a = op.attrs
    mode = a.get("mode", "nearest")
    roi = const_input(op, graph, 1, "roi")
    scales = const_input(op, graph, 2, "scales")
    sizes = const_input(op, graph, 3, "sizes")
    axes = [norm_axis(int(v), rank, op, graph) for v in a.get("axes", range(rank))]
    full_roi = [0.0] * rank + [1.0] * rank
    if roi is not None and roi.size:
        for k, ax in enumerate(axes):
            full_roi[ax], full_roi[rank + ax] = float(roi[k]), float(roi[len(axes) + k])
    full_scales: Optional[List[float]] = None
    if scales is not None and scales.size:
        full_scales = [1.0] * rank
        for k, ax in enumerate(axes):
            full_scales[ax] = float(scales[k])
    elif sizes is not None and sizes.size:
        policy = a.get("keep_aspect_ratio_policy", "stretch")
        x = graph.tensors[op.inputs[0]]
        ratios = [_size_ratio(s, x.shape[ax]) for s, ax in zip(sizes.tolist(), axes)]
        full_scales = [1.0] * rank
        for ax, r in zip(axes, ratios):
            full_scales[ax] = r if policy == "stretch" else \
                (min(ratios) if policy == "not_larger" else max(ratios))
    return mode, a.get("coordinate_transformation_mode", "half_pixel"), \
        a.get("nearest_mode", "round_prefer_floor"), full_scales, full_roi


def _size_ratio(size, extent) -> float:
    """ONNX's float32 size / extent. A size computed from run-time dimensions (`Shape * 2`,
    another tensor's extent) that is an exact multiple or fraction of the extent keeps the
    plan dynamic: k * n / n and n / (k * n) round to the float32 of k and 1 / k, whatever
    n; the multiple is a guard naming the node. Any other ratio needs the values."""
    if isinstance(size, Sym) or isinstance(extent, Sym):
        hs, hn = int.__int__(size), int.__int__(extent)
        if hs % hn == 0 and size == (hs // hn) * extent:
            return float(F32(hs // hn))
        if hn % hs == 0 and extent == (hn // hs) * size:
            return float(F32(1) / F32(hn // hs))
    return float(F32(int(size)) / F32(int(extent)))


def _axis_table(op, graph, mode, coord, nearest, scale, in_len, out_len, roi):
    """Per output index: (i0, i1, w0, w1) for linear, (i0,) for nearest; i0 = -1 means
    'outside the crop box' (tf_crop_and_resize extrapolation)."""
    if scale is None:
        scale = F32(out_len) / F32(in_len)
    rows = []
    for o in range(out_len):
        try:
            v = source_coord(coord, o, scale, in_len, out_len, roi)
        except KeyError:
            raise graph.error(f"coordinate_transformation_mode '{coord}' is not supported",
                              op) from None
        if coord == "tf_crop_and_resize" and (v < 0 or v > in_len - 1):
            rows.append((-1, -1, 0.0, 0.0))
            continue
        if mode == "nearest":
            try:
                i = nearest_index(nearest, v, F32(scale) < 1)
            except KeyError:
                raise graph.error(f"nearest_mode '{nearest}' is not supported", op) from None
            i = min(max(i, 0), in_len - 1)
            rows.append((i, i, 1.0, 0.0))
            continue
        v = min(max(float(v), 0.0), float(in_len - 1))
        i0 = min(int(v), in_len - 1)
        i1 = min(i0 + 1, in_len - 1)
        d0, d1 = abs(F32(v) - F32(i0)), abs(F32(v) - F32(i1))
        if i0 == i1:
            d0 = d1 = F32(0.5)
        rows.append((i0, i1, float(d1), float(d0)))  # weight of i0 is the distance to i1
    return rows


@implements("Resize", "Upsample")
def lower_resize(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    rank = len(x.shape)
    if rank != 4:
        raise graph.error(f"only 4-D NCHW input is supported, got rank {rank}", op)
    if x.shape[:2] != y.shape[:2]:
        raise graph.error("resizing the batch or channel axis is not supported", op)
    mode, coord, nearest, scales, roi = _resize_setup(op, graph, rank)
    if mode == "bilinear":  # old Upsample spelling
        mode = "linear"
    if mode not in ("nearest", "linear", "cubic"):
        raise graph.error(f"mode '{mode}' is not supported (nearest, linear and cubic are)", op)
    if mode != "nearest" and x.dtype != "float32":
        raise graph.error(f"{mode} Resize on {x.dtype} is not supported (float32 is)", op)
    roi = roi or [0.0] * rank + [1.0] * rank
    if any(isinstance(d, Sym) for d in x.shape[2:] + y.shape[2:]):
        if mode == "cubic" or int(op.attrs.get("antialias", 0)):
            what = "cubic" if mode == "cubic" else "antialiased"
            raise graph.error(f"{what} Resize with run-time sizes is not supported (nearest "
                              "and linear are; or give the shape with --input-shapes)", op)
        if mode == "nearest":
            return [_nearest_runtime_instr(op, graph, coord, nearest, scales)]
        return [_bilinear_runtime_instr(op, graph, coord, scales)]
    antialias = int(op.attrs.get("antialias", 0)) and any(
        y.shape[d] < x.shape[d] for d in (2, 3))
    if mode == "cubic" or (mode == "linear" and antialias):
        return [_taps_instr(op, graph, mode, coord, scales, roi, bool(antialias))]
    tables = [_axis_table(op, graph, mode, coord, nearest,
                          None if scales is None else scales[d], x.shape[d], y.shape[d],
                          (roi[d], roi[rank + d])) for d in (2, 3)]
    extrap = op.attrs.get("extrapolation_value", 0.0)
    head = dict(NC=x.shape[0] * x.shape[1], H=x.shape[2], W=x.shape[3], OH=y.shape[2],
                OW=y.shape[3])
    note = f"{mode}, {coord}" + (f", {nearest}" if mode == "nearest" else "")
    if mode == "nearest":
        return [_nearest_instr(op, graph, head, tables, extrap, note)]
    return [_bilinear_instr(op, head, tables, extrap, note)]


# source coordinate of output index o along an axis (input extent n, output m, scale s),
# in float32 as source_coord computes it for the tables
_RT_COORD = {
    "asymmetric": "(float)o / s",
    "half_pixel": "((float)o + 0.5f) / s - 0.5f",
    "pytorch_half_pixel": "m > 1 ? ((float)o + 0.5f) / s - 0.5f : 0.0f",
    "align_corners": "m == 1 ? 0.0f : (float)o * (float)(n - 1) / (float)(m - 1)",
    "tf_half_pixel_for_nn": "((float)o + 0.5f) / s",
}
# nearest_index in C (double, as Python rounds the float32 coordinate)
_RT_NEAREST = {
    "floor": "floor(v)",
    "ceil": "ceil(v)",
    "round_prefer_floor": "v == (double)(int64_t)v + 0.5 ? floor(v) : megcc_round_away(v)",
    "round_prefer_ceil": "megcc_round_away(v)",
    "simple": "s < 1.0f ? ceil(v) : (double)(int64_t)v",
}
RT_NEAREST_PARAMS = schema(*_HEAD, f32("SH", "height scale (0: output / input)"),
                           f32("SW", "width scale (0: output / input)"))


def _nearest_runtime_instr(op: Op, graph: Graph, coord: str, nearest: str, scales) -> Instr:
    """Nearest Resize whose extents are only known at run time (a dynamic plan): the
    source index of each output row and column is computed by the kernel, with the same
    float32 coordinate and rounding as the compile-time tables."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if coord not in _RT_COORD:
        raise graph.error(f"coordinate_transformation_mode '{coord}' with run-time extents "
                          "is not supported", op)
    if nearest not in _RT_NEAREST:
        raise graph.error(f"nearest_mode '{nearest}' is not supported", op)
    esize = itemsize(x.dtype)
    ct = UINT_OF_SIZE[esize]
    name = f"resize_nearest_rt_{coord}_{nearest}_e{esize}"
    tag = f"{coord}_{nearest}"
    rounding = _RT_NEAREST[nearest].replace("megcc_round_away", f"megcc_round_away_{tag}")
    index = f"""static inline double megcc_round_away_{tag}(double v) {{
    return v >= 0.0 ? floor(v + 0.5) : -floor(-v + 0.5);
}}
static inline int32_t megcc_resize_src_{tag}(int32_t o, int32_t n, int32_t m, float s) {{
    const float v32 = {_RT_COORD[coord]};
    const double v = (double)v32;
    double r = {rounding};
    (void)m;
    (void)megcc_round_away_{tag};
    if (r < 0.0) r = 0.0;
    if (r > (double)(n - 1)) r = (double)(n - 1);
    return (int32_t)r;
}}
"""
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    const float sh = SH > 0.0f ? SH : (float)OH / (float)H;
    const float sw = SW > 0.0f ? SW : (float)OW / (float)W;
    /* the source column of every output column once, in the workspace (as the static
     * kernel's table); the source row once per output row */
    int32_t *ix = (int32_t *)workspace;
    int32_t c, oy, ox;
    for (ox = 0; ox < OW; ++ox) ix[ox] = megcc_resize_src_{coord}_{nearest}(ox, W, OW, sw);
    for (c = 0; c < NC; ++c) {{
        const {ct} *xc = x + (int64_t)c * H * W;
        for (oy = 0; oy < OH; ++oy, y += OW) {{
            const {ct} *row = xc + (int64_t)megcc_resize_src_{coord}_{nearest}(oy, H, OH, sh) * W;
            for (ox = 0; ox < OW; ++ox) y[ox] = row[ix[ox]];
        }}
    }}
"""
    kernel = make_kernel(name, body, RT_NEAREST_PARAMS, ("math",),
                         prelude=index)
    sh = 0.0 if scales is None else float(F32(scales[2]))
    sw = 0.0 if scales is None else float(F32(scales[3]))
    params = RT_NEAREST_PARAMS.pack(NC=x.shape[0] * x.shape[1], H=x.shape[2], W=x.shape[3],
                                    OH=y.shape[2], OW=y.shape[3], SH=f32_bits(sh),
                                    SW=f32_bits(sw))
    return Instr(kernel, [op.inputs[0]], [op.outputs[0]], params,
                 workspace_bytes=4 * y.shape[3],
                 note=f"nearest, {coord}, {nearest}, indices computed at run time")


def _bilinear_runtime_instr(op: Op, graph: Graph, coord: str, scales) -> Instr:
    """Bilinear Resize (float32) whose extents are only known at run time: each output
    column's two source columns and weights computed once per call into the workspace, each
    row's once per row, with the float32 arithmetic of the compile-time tables."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if coord not in _RT_COORD:
        raise graph.error(f"coordinate_transformation_mode '{coord}' with run-time extents "
                          "is not supported", op)
    name = f"resize_bilinear_rt_{coord}_f32"
    src = f"""static inline void megcc_resize_lin_{coord}(int32_t o, int32_t n, int32_t m, float s,
        int32_t *i0, int32_t *i1, float *w0, float *w1) {{
    float v = {_RT_COORD[coord]};
    float d0, d1;
    (void)m;
    if (v < 0.0f) v = 0.0f;
    if (v > (float)(n - 1)) v = (float)(n - 1);
    *i0 = (int32_t)v < n - 1 ? (int32_t)v : n - 1;
    *i1 = *i0 + 1 < n - 1 ? *i0 + 1 : n - 1;
    d0 = fabsf(v - (float)*i0);
    d1 = fabsf(v - (float)*i1);
    if (*i0 == *i1) d0 = d1 = 0.5f;
    *w0 = d1;  /* the weight of i0 is the distance to i1 */
    *w1 = d0;
}}
"""
    body = f"""    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const float sh = SH > 0.0f ? SH : (float)OH / (float)H;
    const float sw = SW > 0.0f ? SW : (float)OW / (float)W;
    int32_t *x0 = (int32_t *)workspace, *x1 = x0 + OW;
    float *wx0 = (float *)(x1 + OW), *wx1 = wx0 + OW;
    int32_t c, oy, ox;
    for (ox = 0; ox < OW; ++ox)
        megcc_resize_lin_{coord}(ox, W, OW, sw, x0 + ox, x1 + ox, wx0 + ox, wx1 + ox);
    for (c = 0; c < NC; ++c) {{
        const float *xc = x + (int64_t)c * H * W;
        for (oy = 0; oy < OH; ++oy, y += OW) {{
            int32_t y0, y1;
            float a0, a1;
            const float *r0, *r1;
            megcc_resize_lin_{coord}(oy, H, OH, sh, &y0, &y1, &a0, &a1);
            r0 = xc + (int64_t)y0 * W;
            r1 = xc + (int64_t)y1 * W;
            for (ox = 0; ox < OW; ++ox) {{
                const float b0 = wx0[ox], b1 = wx1[ox];
                y[ox] = b0 * a0 * r0[x0[ox]] + b1 * a0 * r0[x1[ox]]
                        + b0 * a1 * r1[x0[ox]] + b1 * a1 * r1[x1[ox]];
            }}
        }}
    }}
"""
    kernel = make_kernel(name, body, RT_NEAREST_PARAMS, ("math",), prelude=src)
    sh = 0.0 if scales is None else float(F32(scales[2]))
    sw = 0.0 if scales is None else float(F32(scales[3]))
    params = RT_NEAREST_PARAMS.pack(NC=x.shape[0] * x.shape[1], H=x.shape[2], W=x.shape[3],
                                    OH=y.shape[2], OW=y.shape[3], SH=f32_bits(sh),
                                    SW=f32_bits(sw))
    return Instr(kernel, [op.inputs[0]], [op.outputs[0]], params,
                 workspace_bytes=16 * y.shape[3],
                 note=f"linear, {coord}, source rows and columns computed at run time")


def _nearest_instr(op: Op, graph: Graph, head, tables, extrap, note) -> Instr:
    x = graph.tensors[op.inputs[0]]
    esize = itemsize(x.dtype)
    ct = UINT_OF_SIZE[esize]
    raw = np.zeros(8, np.uint8)
    raw[:esize] = np.frombuffer(np.asarray(extrap).astype(numpy_dtype(x.dtype)).tobytes(),
                                np.uint8)
    name = f"resize_nearest_e{esize}"
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    int32_t c, oy, ox;
    {ct} ev;
    memcpy(&ev, ev_bytes, sizeof ev);
    for (c = 0; c < NC; ++c) {{
        const {ct} *xc = x + (int64_t)c * H * W;
        for (oy = 0; oy < OH; ++oy, y += OW) {{
            const {ct} *row;
            if (iy[oy] < 0) {{ for (ox = 0; ox < OW; ++ox) y[ox] = ev; continue; }}
            row = xc + (int64_t)iy[oy] * W;
            for (ox = 0; ox < OW; ++ox) y[ox] = ix[ox] < 0 ? ev : row[ix[ox]];
        }}
    }}
"""
    kernel = make_kernel(name, body, NEAREST_PARAMS)
    params = NEAREST_PARAMS.pack(**head, iy=[r[0] for r in tables[0]],
                                 ix=[r[0] for r in tables[1]],
                                 ev_bytes=np.frombuffer(raw.tobytes(), "<i4").tolist())
    return Instr(kernel, [op.inputs[0]], [op.outputs[0]], params, note=note)


def _bilinear_instr(op: Op, head, tables, extrap, note) -> Instr:
    name = "resize_bilinear_f32"
    # Tables per output row (y) and column (x): two source indices and their weights.
    body = """    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    int32_t c, oy, ox;
    for (c = 0; c < NC; ++c) {
        const float *xc = x + (int64_t)c * H * W;
        for (oy = 0; oy < OH; ++oy, y += OW) {
            const float a0 = megcc_f32_from_bits(wy0[oy]), a1 = megcc_f32_from_bits(wy1[oy]);
            const float *r0, *r1;
            if (y0[oy] < 0) { for (ox = 0; ox < OW; ++ox) y[ox] = ev; continue; }
            r0 = xc + (int64_t)y0[oy] * W;
            r1 = xc + (int64_t)y1[oy] * W;
            for (ox = 0; ox < OW; ++ox) {
                const float b0 = megcc_f32_from_bits(wx0[ox]), b1 = megcc_f32_from_bits(wx1[ox]);
                y[ox] = x0[ox] < 0 ? ev : b0 * a0 * r0[x0[ox]] + b1 * a0 * r0[x1[ox]]
                                         + b0 * a1 * r1[x0[ox]] + b1 * a1 * r1[x1[ox]];
            }
        }
    }
"""
    kernel = make_kernel(name, body, BILINEAR_PARAMS, ("f32_bits",))
    ty, tx = tables
    params = BILINEAR_PARAMS.pack(
        **head, y0=[r[0] for r in ty], y1=[r[1] for r in ty], wy0=[f32_bits(r[2]) for r in ty],
        wy1=[f32_bits(r[3]) for r in ty], x0=[r[0] for r in tx], x1=[r[1] for r in tx],
        wx0=[f32_bits(r[2]) for r in tx], wx1=[f32_bits(r[3]) for r in tx],
        ev=f32_bits(extrap))
    return Instr(kernel, [op.inputs[0]], [op.outputs[0]], params, note=note)


# --- cubic and antialiased Resize: a separable filter of K taps per output index -------------
TAPS_PARAMS = schema(*_HEAD, i32("KY", "taps per output row"), i32("KX", "taps per output column"),
                     table("ty", "OH * KY", "source row of each row tap (edge-clamped)"),
                     table("wy", "OH * KY", "f32 bits: weight of each row tap"),
                     table("tx", "OW * KX", "source column of each column tap (edge-clamped)"),
                     table("wx", "OW * KX", "f32 bits: weight of each column tap"),
                     table("oky", "OH", "1: row inside the crop box, 0: extrapolated"),
                     table("okx", "OW", "1: column inside the crop box, 0: extrapolated"),
                     f32("ev", "extrapolation value"))


def _filter_coeffs(mode: str, ratio: float, scale: float, a: float, antialias: bool):
    """ONNX's interpolation coefficients for the taps around a point `ratio` (in (0, 1])
    past the tap left of it; antialiased ones stretch the kernel by 1/scale (downscaling)."""
    if mode == "cubic" and not antialias:
        r = ratio
        return [((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
                ((a + 2) * r - (a + 3)) * r * r + 1,
                ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1,
                ((a * (2 - r) - 5 * a) * (2 - r) + 8 * a) * (2 - r) - 4 * a]
    scale = min(scale, 1.0)
    if mode == "linear":
        start = int(math.floor(-1 / scale) + 1)
        c = [min(max(1 - abs((i - ratio) * scale), 0.0), 1.0)
             for i in range(start, 2 - start)]
    else:
        def cubic(v):
            v = abs(v)
            if v <= 1:
                return (a + 2) * v ** 3 - (a + 3) * v * v + 1
            return a * v ** 3 - 5 * a * v * v + 8 * a * v - 4 * a if v < 2 else 0.0
        start = int(math.floor(-2 / scale) + 1)
        c = [cubic(scale * (i - ratio)) for i in range(start, 2 - start)]
    total = sum(c)
    return [v / total for v in c]


def _source_coord64(coord: str, o: int, scale: float, in_len: int, out_len: int, roi):
    """Input coordinate of output index o in float64 (ONNX's reference precision). Like
    source_coord (and onnxruntime), align_corners and the crop box divide by the integer
    output length; ONNX's reference divides by scale * in_len, which differs only when that
    is not an integer."""
    if coord == "align_corners":
        return 0.0 if out_len == 1 else o * (in_len - 1) / (out_len - 1)
    if coord == "asymmetric":
        return o / scale
    if coord == "tf_crop_and_resize":
        if out_len == 1:
            return 0.5 * (roi[0] + roi[1]) * (in_len - 1)
        return roi[0] * (in_len - 1) + o * (roi[1] - roi[0]) * (in_len - 1) / (out_len - 1)
    if coord == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if out_len > 1 else 0.0
    if coord == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if coord == "half_pixel_symmetric":
        offset = in_len / 2 * (1 - out_len / (scale * in_len))
        return offset + (o + 0.5) / scale - 0.5
    raise KeyError(coord)


def _tap_table(op, graph, mode, coord, scale, in_len, out_len, roi, a, exclude, antialias):
    """Per output index: (inside the crop box, [source index], [weight]) with K taps."""
    if scale is None:
        scale = out_len / in_len
    rows = []
    for o in range(out_len):
        try:
            v = _source_coord64(coord, o, float(scale), in_len, out_len, roi)
        except KeyError:
            raise graph.error(f"coordinate_transformation_mode '{coord}' is not supported",
                              op) from None
        if coord == "tf_crop_and_resize" and (v < 0 or v > in_len - 1):
            rows.append((0, None, None))
            continue
        # the tap left of v (v itself is the right end of (left, v] when integral)
        left = math.ceil(v) - 1
        ratio = v - left
        w = _filter_coeffs(mode, ratio, float(scale), a, antialias)
        k = len(w)
        # the k neighbours nearest v (smaller first on ties), within the edge-padded range
        pad = (k + 1) // 2
        first = min(max(left - k // 2 + 1, -pad), in_len + pad - k)
        idx = list(range(first, first + k))
        if exclude:
            w = [c if 0 <= i < in_len else 0.0 for c, i in zip(w, idx)]
            total = sum(w)
            w = [c / total for c in w]
        rows.append((1, [min(max(i, 0), in_len - 1) for i in idx], w))
    return rows


def _taps_instr(op: Op, graph: Graph, mode, coord, scales, roi, antialias) -> Instr:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    rank = len(x.shape)
    a = float(op.attrs.get("cubic_coeff_a", -0.75))
    exclude = bool(int(op.attrs.get("exclude_outside", 0)))
    tables = [_tap_table(op, graph, mode, coord, None if scales is None else scales[d],
                         x.shape[d], y.shape[d], (roi[d], roi[rank + d]), a, exclude,
                         antialias) for d in (2, 3)]
    ks = [max((len(r[1]) for r in t if r[1] is not None), default=1) for t in tables]

    def flat(t, k, col):
        # every row has k taps (an extrapolated one gets zeros)
        return [v for r in t for v in (r[col] if r[1] is not None else [0] * k)]

    ty, tx = tables
    params = TAPS_PARAMS.pack(
        NC=x.shape[0] * x.shape[1], H=x.shape[2], W=x.shape[3], OH=y.shape[2], OW=y.shape[3],
        KY=ks[0], KX=ks[1], ty=flat(ty, ks[0], 1), wy=[f32_bits(v) for v in flat(ty, ks[0], 2)],
        tx=flat(tx, ks[1], 1), wx=[f32_bits(v) for v in flat(tx, ks[1], 2)],
        oky=[r[0] for r in ty], okx=[r[0] for r in tx],
        ev=f32_bits(op.attrs.get("extrapolation_value", 0.0)))
    # Rows first: each output row blends KY input rows into a row buffer (workspace),
    # then each output column blends KX entries of it.
    body = """    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    float *row = (float *)workspace;
    int32_t c, oy, ox, k, j;
    for (c = 0; c < NC; ++c) {
        const float *xc = x + (int64_t)c * H * W;
        for (oy = 0; oy < OH; ++oy, y += OW) {
            const int32_t *sy = ty + (int64_t)oy * KY;
            const int32_t *ay = wy + (int64_t)oy * KY;
            if (!oky[oy]) { for (ox = 0; ox < OW; ++ox) y[ox] = ev; continue; }
            for (j = 0; j < W; ++j) row[j] = 0.0f;
            for (k = 0; k < KY; ++k) {
                const float a = megcc_f32_from_bits(ay[k]);
                const float *xr = xc + (int64_t)sy[k] * W;
                for (j = 0; j < W; ++j) row[j] += a * xr[j];
            }
            for (ox = 0; ox < OW; ++ox) {
                const int32_t *sx = tx + (int64_t)ox * KX;
                const int32_t *ax = wx + (int64_t)ox * KX;
                float acc = 0.0f;
                if (!okx[ox]) { y[ox] = ev; continue; }
                for (k = 0; k < KX; ++k) acc += megcc_f32_from_bits(ax[k]) * row[sx[k]];
                y[ox] = acc;
            }
        }
    }
"""
    kernel = make_kernel("resize_taps_f32", body, TAPS_PARAMS, ("f32_bits",))
    note = f"{mode}{' antialiased' if antialias else ''}, {coord}, taps {ks[0]}x{ks[1]}" + \
        (", exclude_outside" if exclude else "")
    return Instr(kernel, [op.inputs[0]], [op.outputs[0]], params, workspace_bytes=4 * x.shape[3],
                 note=note)
