"""Normalisation and other NN layers: BatchNormalization (unfolded), InstanceNormalization,
LayerNormalization, LRN, PRelu, ConvTranspose, Resize/Upsample.

All are float32 NCHW. Resize does every coordinate computation at compile time, in
float32 exactly like the reference runtimes, and hands the kernel tables of source
indices and weights: the kernel only gathers and blends, so one kernel serves every
coordinate_transformation_mode and nearest_mode.
"""
from __future__ import annotations

import math
from typing import List, Optional

import numpy as np

from ..ir import Graph, Op, itemsize, numpy_dtype
from .base import Instr, Kernel, f32_bits, kernel_source, lowers, numel
from .data_movement import UINT_OF_SIZE, const_input, norm_axis
from .elementwise import elementwise_instr


def require_f32(op: Op, graph: Graph) -> None:
    dt = graph.tensors[op.inputs[0]].dtype
    if dt != "float32":
        raise graph.error(f"{op.type} on {dt} is not supported (float32 is)", op)


def present(names: List[str], k: int) -> bool:
    return len(names) > k and bool(names[k])


# --- normalisations ---------------------------------------------------------------------

@lowers("BatchNormalization")
def lower_batchnorm(op: Op, graph: Graph):
    require_f32(op, graph)
    if int(op.attrs.get("training_mode", 0)) or any(present(op.outputs, k) for k in (1, 2, 3, 4)):
        raise graph.error("training mode (running statistics outputs) is not supported", op)
    if not int(op.attrs.get("spatial", 1)):
        raise graph.error("spatial=0 is not supported", op)
    x = graph.tensors[op.inputs[0]]
    # Statistics may be runtime tensors, so the per-channel scale/shift is formed in C.
    name = "batchnorm_inference_f32"
    body = """    const float *x = (const float *)in_ptrs[0], *g = (const float *)in_ptrs[1];
    const float *b = (const float *)in_ptrs[2], *mean = (const float *)in_ptrs[3];
    const float *var = (const float *)in_ptrs[4];
    float *y = (float *)out_ptrs[0];
    const int32_t N = p[0], C = p[1], S = p[2];
    const float eps = megcc_f32_from_bits(p[3]);
    int32_t n, c, s;
    for (n = 0; n < N; ++n)
        for (c = 0; c < C; ++c) {
            const float a = g[c] / sqrtf(var[c] + eps), sh = b[c] - mean[c] * a;
            const int64_t base = ((int64_t)n * C + c) * S;
            for (s = 0; s < S; ++s) y[base + s] = x[base + s] * a + sh;
        }
"""
    kernel = Kernel(name, kernel_source(name, body), ("f32_bits",))
    c = x.shape[1] if len(x.shape) > 1 else 1
    params = [x.shape[0], c, numel(x.shape[2:]), f32_bits(op.attrs.get("epsilon", 1e-5))]
    return [Instr(kernel, list(op.inputs[:5]), [op.outputs[0]], params)]


@lowers("InstanceNormalization")
def lower_instancenorm(op: Op, graph: Graph):
    require_f32(op, graph)
    x = graph.tensors[op.inputs[0]]
    name = "instancenorm_f32"
    # Mean and variance in double: spatial planes can be large.
    body = """    const float *x = (const float *)in_ptrs[0], *g = (const float *)in_ptrs[1];
    const float *b = (const float *)in_ptrs[2];
    float *y = (float *)out_ptrs[0];
    const int32_t N = p[0], C = p[1], S = p[2];
    const float eps = megcc_f32_from_bits(p[3]);
    int32_t n, c, s;
    for (n = 0; n < N; ++n)
        for (c = 0; c < C; ++c) {
            const float *xc = x + ((int64_t)n * C + c) * S;
            float *yc = y + ((int64_t)n * C + c) * S;
            double sum = 0.0, sq = 0.0, mean;
            float a, sh;
            for (s = 0; s < S; ++s) sum += xc[s];
            mean = S > 0 ? sum / S : 0.0;
            for (s = 0; s < S; ++s) { const double d = xc[s] - mean; sq += d * d; }
            a = g[c] / sqrtf((float)(S > 0 ? sq / S : 0.0) + eps);
            sh = b[c] - (float)mean * a;
            for (s = 0; s < S; ++s) yc[s] = xc[s] * a + sh;
        }
"""
    kernel = Kernel(name, kernel_source(name, body), ("f32_bits",))
    params = [x.shape[0], x.shape[1], numel(x.shape[2:]), f32_bits(op.attrs.get("epsilon", 1e-5))]
    return [Instr(kernel, list(op.inputs[:3]), [op.outputs[0]], params)]


def _per_element_stride(op: Op, graph: Graph, name: str, inner: int, what: str) -> int:
    """1 when a LayerNormalization operand covers the normalised block, 0 when a scalar."""
    n = graph.tensors[name].numel
    if n == inner:
        return 1
    if n == 1:
        return 0
    raise graph.error(f"{what} with {n} elements cannot broadcast over the normalised "
                      f"{inner} elements (only full or scalar is supported)", op)


@lowers("LayerNormalization")
def lower_layernorm(op: Op, graph: Graph):
    require_f32(op, graph)
    x = graph.tensors[op.inputs[0]]
    axis = norm_axis(int(op.attrs.get("axis", -1)), len(x.shape), op, graph)
    outer, inner = numel(x.shape[:axis]), numel(x.shape[axis:])
    has_bias = present(op.inputs, 2)
    outs = [op.outputs[0]]
    tags = ""
    for k, tag in ((1, "mean"), (2, "invstd")):
        if present(op.outputs, k):
            outs.append(op.outputs[k])
            tags += "_" + tag
    s_scale = _per_element_stride(op, graph, op.inputs[1], inner, "Scale")
    s_bias = _per_element_stride(op, graph, op.inputs[2], inner, "B") if has_bias else 0
    name = f"layernorm_f32{'_bias' if has_bias else ''}{tags}"
    stat_lines = ""
    if "mean" in tags:
        stat_lines += "        ((float *)out_ptrs[1])[o] = (float)mean;\n"
    if "invstd" in tags:
        stat_lines += f"        ((float *)out_ptrs[{len(outs) - 1}])[o] = r;\n"
    bias_term = " + b[(int64_t)j * sb]" if has_bias else ""
    body = f"""    const float *x = (const float *)in_ptrs[0], *g = (const float *)in_ptrs[1];
    {"const float *b = (const float *)in_ptrs[2];" if has_bias else ""}
    float *y = (float *)out_ptrs[0];
    const int32_t outer = p[0], inner = p[1], sg = p[3], sb = p[4];
    const float eps = megcc_f32_from_bits(p[2]);
    int32_t o, j;
    (void)sb;
    for (o = 0; o < outer; ++o) {{
        const float *xr = x + (int64_t)o * inner;
        float *yr = y + (int64_t)o * inner;
        double sum = 0.0, sq = 0.0, mean;
        float r;
        for (j = 0; j < inner; ++j) sum += xr[j];
        mean = sum / inner;
        for (j = 0; j < inner; ++j) {{ const double d = xr[j] - mean; sq += d * d; }}
        r = 1.0f / sqrtf((float)(sq / inner) + eps);
{stat_lines}        for (j = 0; j < inner; ++j)
            yr[j] = ((xr[j] - (float)mean) * r) * g[(int64_t)j * sg]{bias_term};
    }}
"""
    kernel = Kernel(name, kernel_source(name, body), ("f32_bits",))
    params = [outer, inner, f32_bits(op.attrs.get("epsilon", 1e-5)), s_scale, s_bias]
    return [Instr(kernel, list(op.inputs[:3 if has_bias else 2]), outs, params,
                  note=f"[{outer}, {inner}]")]


@lowers("LRN")
def lower_lrn(op: Op, graph: Graph):
    require_f32(op, graph)
    x = graph.tensors[op.inputs[0]]
    size = int(op.attrs["size"])
    alpha, beta = float(op.attrs.get("alpha", 1e-4)), float(op.attrs.get("beta", 0.75))
    bias = float(op.attrs.get("bias", 1.0))
    name = "lrn_f32"
    # Window over channels [c - floor((size-1)/2), c + ceil((size-1)/2)].
    body = """    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const int32_t N = p[0], C = p[1], S = p[2], lo = p[3], hi = p[4];
    const float alpha_n = megcc_f32_from_bits(p[5]), beta = megcc_f32_from_bits(p[6]);
    const float bias = megcc_f32_from_bits(p[7]);
    int32_t n, c, k, s;
    for (n = 0; n < N; ++n)
        for (c = 0; c < C; ++c) {
            const int32_t c0 = c - lo < 0 ? 0 : c - lo, c1 = c + hi >= C ? C - 1 : c + hi;
            const float *xn = x + (int64_t)n * C * S;
            float *yc = y + ((int64_t)n * C + c) * S;
            for (s = 0; s < S; ++s) {
                float sq = 0.0f;
                for (k = c0; k <= c1; ++k) sq += xn[(int64_t)k * S + s] * xn[(int64_t)k * S + s];
                yc[s] = xn[(int64_t)c * S + s] / powf(bias + alpha_n * sq, beta);
            }
        }
"""
    kernel = Kernel(name, kernel_source(name, body), ("f32_bits",))
    params = [x.shape[0], x.shape[1], numel(x.shape[2:]), (size - 1) // 2, size // 2,
              f32_bits(alpha / size), f32_bits(beta), f32_bits(bias)]
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params, note=f"size={size}")]


@lowers("PRelu")
def lower_prelu(op: Op, graph: Graph):
    # x >= 0 ? x : x * slope, with the slope broadcast like any element-wise operand.
    require_f32(op, graph)
    x, slope = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    items, slope_name = [], op.inputs[1]
    if graph.opset < 7 and len(slope.shape) == 1 and len(x.shape) > 2 \
            and slope.shape[0] == x.shape[1] and slope.shape[0] != 1:
        # PRelu-6: a 1-D slope is per channel (axis 1), not NumPy-aligned to the last axis
        from ..ir import Tensor
        from .base import View

        slope_name = graph.unique_name(op.inputs[1] + "_per_channel")
        graph.add_tensor(Tensor(slope_name, (slope.shape[0],) + (1,) * (len(x.shape) - 2),
                                slope.dtype, data=None if not slope.is_const else
                                np.asarray(slope.data).reshape(-1, *[1] * (len(x.shape) - 2))))
        if not slope.is_const:
            items.append(View(slope_name, op.inputs[1]))
    return items + [elementwise_instr(("leaky", ("in", 0), ("in", 1)), [op.inputs[0], slope_name],
                                      op.outputs[0], graph, note="PRelu")]


# --- ConvTranspose ----------------------------------------------------------------------

def _deconv_begin_pads(op: Op, full: List[int], out: List[int]) -> List[int]:
    """Leading pads per spatial axis; `full` is the output extent with zero padding."""
    mode = op.attrs.get("auto_pad", "NOTSET")
    if "output_shape" in op.attrs or mode in ("SAME_UPPER", "SAME_LOWER"):
        begins = []
        for f, o in zip(full, out):
            total = f - o
            begins.append(total // 2 if mode == "SAME_UPPER" else total - total // 2)
        return begins
    if mode == "VALID":
        return [0] * len(full)
    pads = op.attrs.get("pads", [0] * (2 * len(full)))
    return list(pads[:len(full)])


@lowers("ConvTranspose")
def lower_conv_transpose(op: Op, graph: Graph):
    require_f32(op, graph)
    x, w, y = (graph.tensors[n] for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if len(x.shape) not in (3, 4):
        raise graph.error(f"{len(x.shape) - 2}-D ConvTranspose is not supported (1-D and 2-D "
                          "are)", op)
    nsp = len(x.shape) - 2
    ks = list(w.shape[2:])
    st = list(op.attrs.get("strides", [1] * nsp))
    dl = list(op.attrs.get("dilations", [1] * nsp))
    op_pad = list(op.attrs.get("output_padding", [0] * nsp))
    full = [s * (i - 1) + p + (k - 1) * d + 1
            for s, i, p, k, d in zip(st, x.shape[2:], op_pad, ks, dl)]
    begin = _deconv_begin_pads(op, full, list(y.shape[2:]))
    if nsp == 1:  # a 1-D layer is a 2-D one with height 1
        ks, st, dl, begin = [1] + ks, [1] + st, [1] + dl, [0] + begin
    (kh, kw), (sh, sw), (dh, dw) = ks, st, dl
    h, wd = (1, x.shape[2]) if nsp == 1 else x.shape[2:]
    oh, ow = (1, y.shape[2]) if nsp == 1 else y.shape[2:]
    group = int(op.attrs.get("group", 1))
    n, c, m = x.shape[0], x.shape[1], y.shape[1]
    mg = m // group
    has_bias = present(op.inputs, 2)
    geo = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    name = f"conv_transpose2d_{geo}_f32{'_bias' if has_bias else ''}"
    # Per image and group: cols[Mg*KH*KW, H*W] = W_g^T x X_g (a GEMM reading W transposed
    # through strides), then col2im scatters the columns into the output.
    body = f"""    const float *x = (const float *)in_ptrs[0], *w = (const float *)in_ptrs[1];
    {"const float *bias = (const float *)in_ptrs[2];" if has_bias else ""}
    float *y = (float *)out_ptrs[0], *cols = (float *)workspace;
    const int32_t N = p[0], C = p[1], H = p[2], W = p[3], M = p[4], OH = p[5], OW = p[6];
    const int32_t G = p[7], PT = p[8], PL = p[9];
    const int32_t CG = C / G, MG = M / G, KK = MG * {kh * kw}, S = H * W;
    int32_t b, g, mo, ky, kx, iy, ix, s;
    for (b = 0; b < N; ++b)
        for (g = 0; g < G; ++g) {{
            const float *xg = x + ((int64_t)b * C + (int64_t)g * CG) * S;
            float *yg = y + ((int64_t)b * M + (int64_t)g * MG) * OH * OW;
            megcc_gemm_nn(KK, S, CG, w + (int64_t)g * CG * KK, 1, KK, xg, S, cols, S, 0);
            for (mo = 0; mo < MG; ++mo) {{
                float *ym = yg + (int64_t)mo * OH * OW;
                const float bv = {"bias[g * MG + mo]" if has_bias else "0.0f"};
                for (s = 0; s < OH * OW; ++s) ym[s] = bv;
                for (ky = 0; ky < {kh}; ++ky)
                    for (kx = 0; kx < {kw}; ++kx) {{
                        const float *col = cols + ((int64_t)(mo * {kh} + ky) * {kw} + kx) * S;
                        for (iy = 0; iy < H; ++iy) {{
                            const int32_t oy = iy * {sh} - PT + ky * {dh};
                            if (oy < 0 || oy >= OH) continue;
                            for (ix = 0; ix < W; ++ix) {{
                                const int32_t ox = ix * {sw} - PL + kx * {dw};
                                if (ox >= 0 && ox < OW) ym[(int64_t)oy * OW + ox] += col[iy * W + ix];
                            }}
                        }}
                    }}
            }}
        }}
"""
    kernel = Kernel(name, kernel_source(name, body), ("math", "gemm"))
    params = [n, c, h, wd, m, oh, ow, group, begin[0], begin[1]]
    inputs = list(op.inputs[:3 if has_bias else 2])
    return [Instr(kernel, inputs, [op.outputs[0]], params,
                  workspace_bytes=4 * mg * kh * kw * h * wd,
                  note=f"gemm (M={mg * kh * kw}, N={h * wd}, K={c // group}) + col2im")]


# --- Resize / Upsample ------------------------------------------------------------------

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
        ratios = [float(F32(int(s)) / F32(x.shape[ax])) for s, ax in zip(sizes.tolist(), axes)]
        full_scales = [1.0] * rank
        for ax, r in zip(axes, ratios):
            full_scales[ax] = r if policy == "stretch" else \
                (min(ratios) if policy == "not_larger" else max(ratios))
    return mode, a.get("coordinate_transformation_mode", "half_pixel"), \
        a.get("nearest_mode", "round_prefer_floor"), full_scales, full_roi


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


@lowers("Resize", "Upsample")
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
    if mode == "cubic":
        raise graph.error("cubic interpolation is not supported (nearest and linear are)", op)
    if mode not in ("nearest", "linear"):
        raise graph.error(f"mode '{mode}' is not supported (nearest and linear are)", op)
    if mode == "linear" and int(op.attrs.get("antialias", 0)) and \
            any(y.shape[d] < x.shape[d] for d in (2, 3)):
        raise graph.error("antialiased linear downscaling is not supported", op)
    if mode == "linear" and x.dtype != "float32":
        raise graph.error(f"linear Resize on {x.dtype} is not supported (float32 is)", op)
    roi = roi or [0.0] * rank + [1.0] * rank
    tables = [_axis_table(op, graph, mode, coord, nearest,
                          None if scales is None else scales[d], x.shape[d], y.shape[d],
                          (roi[d], roi[rank + d])) for d in (2, 3)]
    extrap = op.attrs.get("extrapolation_value", 0.0)
    head = [x.shape[0] * x.shape[1], x.shape[2], x.shape[3], y.shape[2], y.shape[3]]
    note = f"{mode}, {coord}" + (f", {nearest}" if mode == "nearest" else "")
    if mode == "nearest":
        return [_nearest_instr(op, graph, head, tables, extrap, note)]
    return [_bilinear_instr(op, head, tables, extrap, note)]


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
    const int32_t NC = p[0], H = p[1], W = p[2], OH = p[3], OW = p[4];
    const int32_t *iy = p + 5, *ix = p + 5 + OH;
    int32_t c, oy, ox;
    {ct} ev;
    memcpy(&ev, p + 5 + OH + OW, sizeof ev);
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
    kernel = Kernel(name, kernel_source(name, body))
    params = head + [r[0] for r in tables[0]] + [r[0] for r in tables[1]] + \
        np.frombuffer(raw.tobytes(), "<i4").tolist()
    return Instr(kernel, [op.inputs[0]], [op.outputs[0]], params, note=note)


def _bilinear_instr(op: Op, head, tables, extrap, note) -> Instr:
    name = "resize_bilinear_f32"
    # Tables per output row (y) and column (x): two source indices and their weights.
    body = """    const float *x = (const float *)in_ptrs[0];
    float *y = (float *)out_ptrs[0];
    const int32_t NC = p[0], H = p[1], W = p[2], OH = p[3], OW = p[4];
    const int32_t *y0 = p + 5, *y1 = y0 + OH, *wy0 = y1 + OH, *wy1 = wy0 + OH;
    const int32_t *x0 = wy1 + OH, *x1 = x0 + OW, *wx0 = x1 + OW, *wx1 = wx0 + OW;
    const float ev = megcc_f32_from_bits(wx1[OW]);
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
    kernel = Kernel(name, kernel_source(name, body), ("f32_bits",))
    ty, tx = tables
    params = head + [r[0] for r in ty] + [r[1] for r in ty] + [f32_bits(r[2]) for r in ty] + \
        [f32_bits(r[3]) for r in ty] + [r[0] for r in tx] + [r[1] for r in tx] + \
        [f32_bits(r[2]) for r in tx] + [f32_bits(r[3]) for r in tx] + [f32_bits(extrap)]
    return Instr(kernel, [op.inputs[0]], [op.outputs[0]], params, note=note)
