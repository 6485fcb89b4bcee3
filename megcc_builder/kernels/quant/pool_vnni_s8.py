"""MaxPool on int8 / uint8 codes with AVX-512BW byte masks (the x86_64-vnni level): the
separable form of pool_sep_s8 (the window rows' maximum into a row buffer with low cells
around it, then the maximum of kw cells of it per output), 64 codes per `vpmaxub` /
`vpmaxsb`, and no libc call per row: the row tails are masked loads whose missing lanes
are the low code (so the buffer past the row is low without a memset) and masked stores.
Stride 2 takes the even bytes of 64 buffer cells (`vpmovwb`), stride 1 whole vectors,
other strides a scalar horizontal pass. On SqueezeNet's 3x3 stride-2 pools of 111/55/27
wide rows the AVX2 separable kernel spent its time in the per-row memset/memcpy calls.
The maximum of the codes is the code of the maximum (dequantization is monotonic): exact,
as the portable kernel."""
from __future__ import annotations

from ...codegen.kernel import Instr, make_kernel
from ...ir import Graph, Op
from ...isa import IsaSpec
from ..registry import implements
from .pool_generic_s8 import MAXPOOL_PARAMS, QTYPES, maxpool_s8_applies
from .requant import CTYPE, SHORT

# buffer cells before the row (a whole low vector is stored there, covering any PL < 64) and
# after the last window (whole 64-byte vectors are read there)
LEAD, SLACK = 64, 192


def _extent(op: Op):
    kh, kw = op.attrs["kernel_shape"]
    sw = op.attrs.get("strides", [1, 1])[1]
    dw = op.attrs.get("dilations", [1, 1])[1]
    return (kw - 1) * dw + sw


def _applies(op: Op, graph: Graph, isa: IsaSpec):
    if not maxpool_s8_applies(op, graph):
        return "not a 2-D int8/uint8 MaxPool"
    pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
    if pads[1] >= LEAD or _extent(op) >= 64:
        return "window wider than the buffer's low margins (64 cells)"
    return None


def cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    # pool_avx2_s8's estimate with vectors twice as wide and no per-row library calls. At
    # stride 2 the AVX2 separable kernel (its even bytes by a pack, 32/16/8-code vectors,
    # no masks) measured faster on every row width we have: SqueezeNet's 3x3/2 pools of
    # 64x111x111, 128x55x55, 256x27x27 took 45/33/31 us against 49/40/39 here, ResNet-50's
    # 64x112x112 46 against 50-54 (benchmarks/layer_profile.py, x86_64-v3 and -vnni
    # builds): priced above it there
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    work = float(x.numel) * kh * y.shape[2] / max(1, x.shape[2]) + float(y.numel) * kw
    return work / (12.0 if op.attrs.get("strides", [1, 1])[1] == 2 else 40.0)


@implements("MaxPool", dtypes=QTYPES, requires="vnni", applies=_applies, cost=cost,
            label="avx512bw int8 max pool (separable, 64 codes per vpmax, masked tails)")
def lower_maxpool_s8_vnni(op: Op, graph: Graph):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kh, kw = op.attrs["kernel_shape"]
    sh, sw = op.attrs.get("strides", [1, 1])
    dh, dw = op.attrs.get("dilations", [1, 1])
    pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
    ct = CTYPE[x.dtype]
    signed = x.dtype == "int8"
    vmax = "_mm512_max_epi8" if signed else "_mm512_max_epu8"
    low = "INT8_MIN" if signed else "0"
    if sw == 2:
        tap = "_mm512_cvtepi16_epi8(_mm512_loadu_si512((const void *)(w0 + {o})))"
        red = tap.format(o=0)
        for kx in range(1, kw):
            red = f"_mm256_max_ep{'i' if signed else 'u'}8({red}, {tap.format(o=kx * dw)})"
        horizontal = f"""for (ox = 0; ox < OW; ox += 32) {{
                const {ct} *w0 = m + 2 * ox;
                const int32_t n = OW - ox < 32 ? OW - ox : 32;
                const __mmask32 sm = n == 32 ? ~(__mmask32)0 : (((__mmask32)1 << n) - 1);
                _mm256_mask_storeu_epi8(yr + ox, sm, {red});
            }}"""
    elif sw == 1:
        tap = "_mm512_loadu_si512((const void *)(w0 + {o}))"
        red = tap.format(o=0)
        for kx in range(1, kw):
            red = f"{vmax}({red}, {tap.format(o=kx * dw)})"
        horizontal = f"""for (ox = 0; ox < OW; ox += 64) {{
                const {ct} *w0 = m + ox;
                const int32_t n = OW - ox < 64 ? OW - ox : 64;
                const __mmask64 sm = n == 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1);
                _mm512_mask_storeu_epi8(yr + ox, sm, {red});
            }}"""
    else:
        horizontal = f"""for (ox = 0; ox < OW; ++ox) {{
                const {ct} *w0 = m + ox * {sw};
                {ct} v = w0[0];
                for (kx = 1; kx < {kw}; ++kx) v = w0[kx * {dw}] > v ? w0[kx * {dw}] : v;
                yr[ox] = v;
            }}"""
    body = f"""    const {ct} *x = (const {ct} *)in_ptrs[0];
    {ct} *y = ({ct} *)out_ptrs[0];
    /* cell i of m is input column i - PL (low where there is none) */
    {ct} *buf = ({ct} *)(void *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    {ct} *m = buf + {LEAD} - PL;
    const __m512i lowv = _mm512_set1_epi8((char){low});
    int32_t c, oy, ox, ky, kx, i;
    (void)kx;
    _mm512_storeu_si512((void *)buf, lowv);
    for (c = 0; c < NC; ++c) {{
        const {ct} *xc = x + (int64_t)c * H * W;
        {ct} *yc = y + (int64_t)c * OH * OW;
        for (oy = 0; oy < OH; ++oy) {{
            const int32_t iy0 = oy * {sh} - PT;
            {ct} *yr = yc + (int64_t)oy * OW;
            {ct} *mm = buf + {LEAD};
            for (i = 0; i < W; i += 64) {{
                const int32_t n = W - i < 64 ? W - i : 64;
                const __mmask64 lm = n == 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1);
                __m512i v = lowv;
                for (ky = 0; ky < {kh}; ++ky) {{
                    const int32_t iy = iy0 + ky * {dh};
                    if (iy >= 0 && iy < H)
                        v = {vmax}(v, _mm512_mask_loadu_epi8(lowv, lm,
                                                             (const void *)(xc + (int64_t)iy * W + i)));
                }}
                _mm512_storeu_si512((void *)(mm + i), v);
            }}
            /* cells past the row's last vector: low */
            _mm512_storeu_si512((void *)(mm + i), lowv);
            _mm512_storeu_si512((void *)(mm + i + 64), lowv);
            {horizontal}
        }}
    }}
"""
    name = f"maxpool_vnni_{SHORT[x.dtype]}_k{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}"
    kernel = make_kernel(name, body, MAXPOOL_PARAMS, isa="vnni")
    wp = max(pads[1] + x.shape[3], (y.shape[3] - 1) * sw + (kw - 1) * dw + 1)
    params = MAXPOOL_PARAMS.pack(NC=x.shape[0] * x.shape[1], H=x.shape[2], W=x.shape[3],
                                 OH=y.shape[2], OW=y.shape[3], PT=pads[0], PL=pads[1], WP=wp)
    ws = 64 + LEAD + -(-x.shape[3] // 64) * 64 + 128 + SLACK
    return [Instr(kernel, [op.inputs[0]], [op.outputs[0]], params, workspace_bytes=ws,
                  note="AVX-512BW int8 max pool (separable, masked tails)")]
