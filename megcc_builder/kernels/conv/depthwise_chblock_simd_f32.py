"""Depthwise convolution on a small feature map (NCHW, float32) with the channels in the
vector lanes: VW channels are computed together, one vector FMA per output pixel and tap.

The plane kernel (depthwise_simd_f32.py) puts an output row's pixels in the vector lanes,
and pays per channel for a padded plane, nine weight broadcasts and a partial store: on a
3 x 3 map (MobileNetV2 at 96x96, its last stage; SSD heads at 5 x 5) a row is 3 of 8 lanes
and that fixed cost is most of the time (~100 cycles a channel for 81 multiply-adds).
Here each block of VW channels is transposed into a zero-bordered pixel-major buffer
(PH x PW pixels of VW floats), every output pixel is a chain of KH x KW FMAs with the
block's weights held in registers (pre-arranged at compile time as [block][tap][VW], the
missing channels of the last block zero), and the results are transposed back into the
NCHW planes (register block transposes where the level has them: lane_transpose.py,
which make stride-2 maps up to 40 x 40 outputs pay too). A channel multiplier other
than 1 is left to the plane kernel.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...codegen import packed_gemm as g
from ...codegen.kernel import Instr, c_float
from ...codegen.parallel import (parts_with_scratch, scratch_bytes, scratch_parts,
                                 scratch_stride, scratch_tag, split_kernel)
from ...codegen.params import i32
from ...codegen.vector import Simd
from ...ir import Graph, Op
from ...ir.symbolic import is_sym
from ...isa import IsaSpec
from ..elementwise.activation import activation_tag
from ..registry import F32, implements
from .lane_transpose import block_transpose
from .geometry import (bias_of, conv_head_values, conv_problem, conv_schema, prelu_slope,
                       prelu_tag, prelu_vector, scalar_activation_pass, vector_conv_rejection)

PARAMS = conv_schema(i32("PWB", "padded input width"),
                     i32("BR", "output rows per band"))

# Largest output map this kernel takes (positions per channel) on levels without register
# transposes: past it the plane kernel's rows fill its vectors and its per-channel cost is
# small beside the element-by-element copies. With register transposes the copies are cheap
# enough that stride-2 layers gain at every size (AVX2, in process: 96 channels 80x80 ->
# 40x40: 127 -> 98 us; 40x40 -> 20x20: 45 -> 24 us); since the map is transposed in bands
# of output rows (BAND_BYTES) the buffer no longer outgrows the cache on large maps either
# (48 channels 160x160 -> 80x80: 234 -> 200 us; 96 x 112x112 -> 56x56: 239 -> 191 us), so
# no limit there: the cost model leaves stride-1 large maps to the plane kernel.
MAX_POSITIONS = 196

# Cycles per element of the transposes (input into the pixel-major buffer, results out into
# the planes): element by element, or with register block transposes (lane_transpose.py),
# fitted to the layers above and 192 x 20 x 20 stride 1 (29.9 vs the plane kernel's 36.2 us),
# 96 x 40 x 40 stride 1 (51.5 vs 43.4 us: the plane kernel keeps it).
COPY_CYCLES = 0.4
COPY_CYCLES_TRANSPOSED = 0.2


def _transposes(isa: IsaSpec) -> bool:
    """Whether the level's vectors have register block transposes."""
    return block_transpose(isa.vec("f32").direct, "a", "1", "b", "1") is not None


def _padded(geo):
    ph = (geo["oh"] - 1) * geo["sh"] + (geo["kh"] - 1) * geo["dh"] + 1
    pw = (geo["ow"] - 1) * geo["sw"] + (geo["kw"] - 1) * geo["dw"] + 1
    return ph, pw


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    reason = vector_conv_rejection(op, graph)
    if reason:
        return reason
    geo = conv_problem(op, graph)
    if not (geo["group"] == geo["c"] == geo["oc"] and geo["group"] > 1):
        return "not a depthwise convolution with one filter per channel"
    # (Sym is an int: test for it, or the size check below becomes a run-time guard
    # that refuses every shape on the other side of it)
    if any(is_sym(geo[k]) or not isinstance(geo[k], int)
           for k in ("n", "c", "h", "w", "oh", "ow")):
        return "shape known only at run time"
    if not _transposes(isa) and geo["oh"] * geo["ow"] > MAX_POSITIONS:
        return f"more than {MAX_POSITIONS} output positions (no register transposes)"
    if graph.tensors[op.inputs[1]].dtype != "float32":
        return "float16 weights"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    """One vector FMA per tap per output pixel and block, plus the two transposes and
    clearing the (band) buffer."""
    geo, vs, core = conv_problem(op, graph), isa.vec("f32").direct, isa.core
    blocks = -(-geo["c"] // vs.vw)
    pw = _padded(geo)[1]
    bph = (band_rows(geo, vs.vw) - 1) * geo["sh"] + (geo["kh"] - 1) * geo["dh"] + 1
    # more taps than registers: each FMA also reloads its weight vector (load-bound)
    per_tap = 1.0 / core.fma_per_cycle if geo["kh"] * geo["kw"] <= 12 else 1.5
    taps = geo["oh"] * geo["ow"] * geo["kh"] * geo["kw"] * per_tap
    copy = COPY_CYCLES_TRANSPOSED if _transposes(isa) else COPY_CYCLES
    copies = (geo["h"] * geo["w"] + geo["oh"] * geo["ow"]) * vs.vw * copy
    return geo["n"] * (blocks * (taps + copies + 20) + bph * pw * vs.vw / 8)


# Output pixels of a row computed together: their taps share input loads (3x3 stride 1:
# 6 loads per row for 12 FMAs instead of 12) and their accumulators are independent chains,
# so the FMA latency is hidden (one chain of KH x KW dependent FMAs per pixel left the
# FMA units mostly idle). 4 accumulators + 9 weights + a load fit 16 vector registers.
PIXELS = 4


def _pixels(s: Simd, count: int, kh, kw, sh, sw, dh, dw, clamp: bool, prelu: bool) -> str:
    """C statements computing `count` consecutive output pixels from (oy, ox): per pixel
    the same FMA chain, in the same tap order, as one pixel alone (so results do not
    depend on how a row is cut into groups)."""
    code = []
    for ky in range(kh):
        uses = {}  # input column -> [(pixel, kx)]
        for p in range(count):
            for kx in range(kw):
                uses.setdefault(p * sw + kx * dw, []).append((p, kx))
        for col in sorted(uses):
            off = f"(int64_t){ky * dh} * PWB * {s.vw} + {col * s.vw}"
            code.append(f"v = {s.load(f'xi + {off}')};{s.keep('v')}")
            code += [f"a{p} = {s.fma(f'a{p}', 'v', f'wv{ky * kw + kx}')};" for p, kx in uses[col]]
    for p in range(count):
        if clamp:
            code.append(f"a{p} = {s.min('hi', s.max('lo', f'a{p}'))};")
        if prelu:
            code.append(f"a{p} = {prelu_vector(s, f'a{p}', 'sv', 'zv')};")
        code.append(s.store(f"yt + ((int64_t)oy * OW + ox + {p}) * {s.vw}", f"a{p}") + ";")
    accs = ", ".join(f"a{p} = bv" for p in range(count))
    lines = "\n".join("                    " + c for c in code)
    return f"""                    const float *xi = xt + ((int64_t)oy * {sh} * PWB + (int64_t)ox * {sw}) * {s.vw};
                    {s.vtype} v, {accs};
{lines}
"""


def _pixel(s: Simd, kh, kw, sh, sw, dh, dw, clamp: bool, prelu: bool) -> str:
    args = (kh, kw, sh, sw, dh, dw, clamp, prelu)
    return f"""            for (oy = 0; oy < nb; ++oy) {{
                for (ox = 0; ox + {PIXELS} <= OW; ox += {PIXELS}) {{
{_pixels(s, PIXELS, *args)}                }}
                for (; ox < OW; ++ox) {{
{_pixels(s, 1, *args)}                }}
            }}
"""


def _copy_in(s: Simd, kh: int, sh: int, dh: int) -> str:
    """C: the block's VW input planes into the pixel-major buffer's interior; whole blocks
    of VW columns by register transposes (the last one moved back to end at the row's end:
    it rewrites a few pixels with the same values), the rest element by element."""
    vw = s.vw
    tr = block_transpose(s, "xs + ix", "(int64_t)H * W", f"xr + (int64_t)ix * {vw}", str(vw))
    vector = "" if tr is None else f"""                if (nc == {vw} && wc >= {vw}) {{
                    for (ix = 0; ix + {vw} <= wc; ix += {vw})
                        {tr}
                    if (ix < wc) {{
                        ix = wc - {vw};
                        {tr}
                        ix = wc;
                    }}
                }}
"""
    return f"""            {{
                /* source columns that land inside the buffer */
                const int32_t wc = W < PWB - PL ? W : PWB - PL;
                const float *xb = x + ((int64_t)n * C + c0) * H * W;
                /* the band's padded rows: input rows outside the map are zero rows */
                const int32_t rows = (nb - 1) * {sh} + {(kh - 1) * dh + 1};
                int32_t r;
                for (r = 0; r < rows; ++r) {{
                    float *xr = xt + ((int64_t)r * PWB + PL) * {vw};
                    const float *xs;
                    iy = oy0 * {sh} + r - PT;
                    if (iy < 0 || iy >= H) {{
                        /* (one band: the first clearing left it zero) */
                        if (BR < OH)
                            memset(xt + (int64_t)r * PWB * {vw}, 0, sizeof(float) * (size_t)PWB * {vw});
                        continue;
                    }}
                    xs = xb + (int64_t)iy * W;
                    ix = 0;
{vector}                    for (; ix < wc; ++ix)
                        for (ch = 0; ch < nc; ++ch)
                            xr[(int64_t)ix * {vw} + ch] = xs[(int64_t)ch * H * W + ix];
                }}
            }}
"""


def _copy_out(s: Simd) -> str:
    """C: the block's results (pixel-major) back into its VW output planes, like _copy_in."""
    vw = s.vw
    tr = block_transpose(s, f"yt + (int64_t)q * {vw}", str(vw), "yb + q", "(int64_t)OH * OW")
    vector = "" if tr is None else f"""                if (nc == {vw} && P >= {vw}) {{
                    for (; q + {vw} <= P; q += {vw})
                        {tr}
                    if (q < P) {{
                        q = P - {vw};
                        {tr}
                        q = P;
                    }}
                }}
"""
    return f"""            {{
                float *yb = y + ((int64_t)n * C + c0) * OH * OW + (int64_t)oy0 * OW;
                const int32_t P = nb * OW;
                int32_t q = 0;
{vector}                for (; q < P; ++q)
                    for (ch = 0; ch < nc; ++ch)
                        yb[(int64_t)ch * OH * OW + q] = yt[(int64_t)q * {vw} + ch];
            }}
"""


# Bytes a band's buffers (input rows and results) aim at: they stay in the L2 cache with
# the planes streaming past (48 x 160x160 stride 2, AVX2: 24 KB 215 us, 64 KB 205, 128 KB
# 199-213, 256 KB 201-205, the whole map 234).
BAND_BYTES = 128 * 1024


def band_rows(geo, vw: int) -> int:
    """Output rows per band: as many as keep the band's buffers within BAND_BYTES (at least
    one, at most the map)."""
    pw = _padded(geo)[1]
    in_row = geo["sh"] * pw * vw * 4
    fixed = ((geo["kh"] - 1) * geo["dh"] + 1 - geo["sh"]) * pw * vw * 4
    per_row = in_row + geo["ow"] * vw * 4
    return max(1, min(geo["oh"], (BAND_BYTES - fixed) // per_row))


def lower_depthwise_chblock(op: Op, graph: Graph, s: Simd):
    geo = conv_problem(op, graph)
    act = op.attrs.get("activation")
    has_bias, bias_tag = bias_of(op)
    slope = prelu_slope(op)
    bias_tag += prelu_tag(op)
    kh, kw, sh, sw, dh, dw = (geo[k] for k in ("kh", "kw", "sh", "sw", "dh", "dw"))
    c, vw = geo["c"], s.vw
    blocks = -(-c // vw)
    ph, pw = _padded(geo)

    def per_block(name: str, values: np.ndarray, taps: int) -> str:
        """A (C, taps) constant as [block][tap][VW], missing channels zero."""
        arr = np.zeros((blocks * vw, taps), np.float32)
        arr[:c] = values.reshape(c, taps)
        out = graph.unique_name(f"{name}__cb{vw}")
        graph.add_const(out, np.ascontiguousarray(
            arr.reshape(blocks, vw, taps).transpose(0, 2, 1).reshape(-1)))
        return out

    inputs = [op.inputs[0], per_block(op.inputs[1], np.asarray(
        graph.tensors[op.inputs[1]].data, np.float32), kh * kw)]
    inputs.append(per_block(op.inputs[2], np.asarray(graph.tensors[op.inputs[2]].data,
                                                     np.float32), 1) if has_bias else "")
    if slope:
        sl = np.asarray(graph.tensors[slope].data, np.float32).reshape(-1)
        inputs += ["", per_block(slope, np.broadcast_to(sl, (c,)).copy(), 1)]
    clamp, act_pass = g.vector_clamp(act, c_float)
    lo, hi = clamp or ("0.0f", "0.0f")
    tag = f"k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    name = f"conv2d_depthwise_cb{vw}_{tag}_f32{bias_tag}{activation_tag(act)}_{s.name}"
    most = scratch_parts(graph)  # scratch areas: at most one per thread (max_threads)
    name += scratch_tag(most)
    wdecl = "\n".join(f"            const {s.vtype} wv{t} = {s.load(f'wb + {t * vw}')};"
                      for t in range(kh * kw))
    copy_in, copy_out = _copy_in(s, kh, sh, dh), _copy_out(s)
    act_code = "" if not act_pass else (
        "            for (ch = 0; ch < nc; ++ch) {\n"
        "                float *yc = y + ((int64_t)n * C + c0 + ch) * OH * OW;"
        f"{scalar_activation_pass(act, 'yc', 'OH * OW')}\n            }}\n")
    body = f"""    const float *x = (const float *)in_ptrs[0];
    const float *w = (const float *)in_ptrs[1];  /* [block][tap][{vw}] */
    {"const float *bias = (const float *)in_ptrs[2];" if has_bias else ""}
    {"const float *slope = (const float *)in_ptrs[4];" if slope else ""}
    float *y = (float *)out_ptrs[0];
    const int32_t blocks = (C + {vw - 1}) / {vw};
    const int32_t b0 = (int32_t)((int64_t)blocks * part / parts),
                  b1 = (int32_t)((int64_t)blocks * (part + 1) / parts);
    /* rows of the pixel-major input a band of BR output rows reads */
    const int32_t BPH = (BR - 1) * {sh} + {(kh - 1) * dh + 1};
    /* this part's scratch: a band's pixel-major input (BPH x PWB pixels of {vw} channels,
     * zero borders), then the band's results (BR x OW pixels) */
    float *xt = (float *)workspace + part * {scratch_stride(f'(BPH * PWB + BR * OW) * {vw}')};
    float *yt = xt + (int64_t)BPH * PWB * {vw};
    int32_t n, cb, ch, iy, ix, oy, ox, oy0, nb;
{f"    const {s.vtype} lo = {s.set1(lo)}, hi = {s.set1(hi)};{chr(10)}" if clamp else ""}\
{f"    const {s.vtype} zv = {s.zero};{chr(10)}" if slope else ""}\
    /* the borders stay zero: only the interior is rewritten per block (the lanes of missing
     * channels in the last block hold stale values, and their results are never stored) */
    memset(xt, 0, sizeof(float) * (size_t)BPH * (size_t)PWB * {vw});
    for (n = 0; n < N; ++n)
        for (cb = b0; cb < b1; ++cb) {{
            const int32_t c0 = cb * {vw}, nc = C - c0 < {vw} ? C - c0 : {vw};
            const float *wb = w + (int64_t)cb * {kh * kw * vw};
            const {s.vtype} bv = {s.load(f"bias + (int64_t)cb * {vw}") if has_bias else s.zero};
{f"            const {s.vtype} sv = {s.load(f'slope + (int64_t)cb * {vw}')};{chr(10)}" if slope else ""}\
{wdecl}
            /* bands of output rows: the input rows they read are transposed into a buffer
             * that stays in cache (a whole large map's buffer outgrows L2) */
            for (oy0 = 0; oy0 < OH; oy0 += BR) {{
                nb = OH - oy0 < BR ? OH - oy0 : BR;
{copy_in}{_pixel(s, kh, kw, sh, sw, dh, dw, bool(clamp), bool(slope))}\
{copy_out}            }}
{act_code}        }}
"""
    kernel = split_kernel(name, body, parts_with_scratch(f"(C + {vw - 1}) / {vw}", most), PARAMS,
                          ("math",), isa=s.isa)
    br = band_rows(geo, vw)
    bph = (br - 1) * sh + (kh - 1) * dh + 1
    params = PARAMS.pack(**conv_head_values(geo), PWB=pw, BR=br)
    parts = min(most, blocks)
    return [Instr(kernel, inputs, [op.outputs[0]], params,
                  workspace_bytes=scratch_bytes(parts, (bph * pw + br * geo["ow"]) * vw),
                  note=f"{s.label} depthwise with {vw} channels per vector: blocks transposed "
                       f"into a zero-bordered {ph}x{pw} pixel-major buffer in bands of {br} output "
                       f"rows, one FMA per tap "
                       f"and pixel, weights in registers")]


@implements("Conv", dtypes=F32, layout="nchw", requires="f32.direct", applies=_applies,
            cost=_cost,
            label=lambda isa: f"{isa.vec('f32').direct.name} depthwise, channels in lanes")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    return lower_depthwise_chblock(op, graph, isa.vec("f32").direct)
