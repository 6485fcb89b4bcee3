"""Direct convolution for few input channels (NCHW, float32): a network's first layer on
an RGB image (3 -> 16..64 channels, 3x3 stride 2). Output pixels in the vector lanes.

Through im2col these layers are a GEMM with K = C x KH x KW = 27: the 6x16 tile spends more
on packing the 27-row panels, its edges and the C stores than on its 27 FMA steps
(MobileNet-SSD 320's 3 -> 16 at 160x160: 407 us, 42 % of peak; SqueezeNet's 3 -> 64 at
111x111: 905 us, 40 %). Here each input channel is copied once into a zero-padded plane
(stride 2: split into even and odd columns, like the depthwise kernel), and every step
computes PIXEL_VECTORS output vectors of one row for OC_BLOCK output channels: per tap, one
load per pixel vector and one weight broadcast per channel feed 12 independent FMA chains.
"""
from __future__ import annotations

from typing import Optional

from ...codegen import packed_gemm as g
from ...codegen.kernel import Instr, c_float
from ...codegen.parallel import (parts_with_scratch, scratch_bytes, scratch_parts,
                                 scratch_stride, scratch_tag, split_kernel)
from ...codegen.params import i32
from ...codegen.vector import Simd
from ...codegen.window import plane
from ...ir import Graph, Op
from ...ir.symbolic import is_sym
from ...isa import IsaSpec
from ..elementwise.activation import activation_tag
from ..registry import F32, implements
from .geometry import bias_of, conv_head_values, conv_problem, conv_schema, vector_conv_rejection

PARAMS = conv_schema(i32("PH", "padded plane height"),
                     i32("PWP", "padded plane width (also compiled in as PW)"))

MAX_CHANNELS = 4      # input channels this kernel takes
MAX_OUTPUT_CHANNELS = 32
OC_BLOCK = 4          # output channels per step ...
PIXEL_VECTORS = 2     # ... times output vectors per step: 8 accumulators (12 spilled: 3 -> 16 at 320x320 439 us, 8: 287)


def _step(s: Simd, ocs: int, pvs: int, c: int, kh: int, kw: int, sw: int, clamp: bool) -> str:
    """C block: `pvs` output vectors from (oy, ox) of channels o .. o + ocs - 1."""
    taps = kh * kw
    code = [f"{s.vtype} " + ", ".join(f"a{j}_{p} = b{j}" for j in range(ocs)
                                      for p in range(pvs)) + ";",
            f"{s.vtype} v0" + "".join(f", v{p}" for p in range(1, pvs)) + ", wv;"]
    for ci in range(c):
        for ky in range(kh):
            for kx in range(kw):
                t = (ci * kh + ky) * kw + kx
                for p in range(pvs):
                    if sw == 1:
                        src = f"pl{ci} + {ky} * PW + ox + {p * s.vw + kx}"
                    else:  # padded column 2 * (ox + q) + kx: plane kx % 2, index ox + q + kx // 2
                        src = (f"p{'o' if kx % 2 else 'e'}{ci} + {ky} * PW2 + ox + "
                               f"{p * s.vw + kx // 2}")
                    code.append(f"v{p} = {s.load(src)};{s.keep(f'v{p}')}")
                for j in range(ocs):
                    code.append(f"wv = {s.dup(f'wo + {j * c * taps + t}')};")
                    code += [f"a{j}_{p} = {s.fma(f'a{j}_{p}', f'v{p}', 'wv')};"
                             for p in range(pvs)]
    for j in range(ocs):
        for p in range(pvs):
            acc = f"a{j}_{p}"
            if clamp:
                code.append(f"{acc} = {s.min('hi', s.max('lo', acc))};")
            dst = f"yo + {j} * (int64_t)OH * OW + ox + {p * s.vw}"
            code.append(f"if (ox + {(p + 1) * s.vw} <= OW) {s.store(dst, acc)}; else {{ "
                        f"float t[{s.vw}]; int32_t q; {s.store('t', acc)}; "
                        f"for (q = 0; q < OW - ox - {p * s.vw}; ++q) "
                        f"({dst})[q] = t[q]; }}")
    return "{\n" + "\n".join("    " + line for line in code) + "\n}"


def _row(s: Simd, ocs: int, c, kh, kw, sw, clamp) -> str:
    """C: one output row of channels o .. o + ocs - 1 (yo: their row oy), PIXEL_VECTORS
    vectors per step, then single vectors."""
    bias = " ".join(f"const {s.vtype} b{j} = {s.set1(f'bias ? bias[o + {j}] : 0.0f')};"
                    for j in range(ocs))
    full = PIXEL_VECTORS * s.vw
    return f"""{{
    const float *wo = w + (int64_t)o * {c * kh * kw};
    {bias}
    for (ox = 0; ox + {full} <= OW; ox += {full})
        {_step(s, ocs, PIXEL_VECTORS, c, kh, kw, sw, clamp)}
    for (; ox < OW; ox += {s.vw})
        {_step(s, ocs, 1, c, kh, kw, sw, clamp)}
}}"""


def lower_direct_fewc(op: Op, graph: Graph, s: Simd):
    geo = conv_problem(op, graph)
    act = op.attrs.get("activation")
    has_bias, bias_tag = bias_of(op)
    c, oc, kh, kw, sh, sw = (geo[k] for k in ("c", "oc", "kh", "kw", "sh", "sw"))
    ph, pw = plane(geo, s.vw)
    clamp, _ = g.vector_clamp(act, c_float)
    lo, hi = clamp or ("0.0f", "0.0f")
    name = (f"conv2d_direct_c{c}_k{kh}x{kw}_s{sh}x{sw}_pw{pw}_f32{bias_tag}"
            f"{activation_tag(act)}_{s.name}")
    most = scratch_parts(graph)  # scratch areas: at most one per thread (max_threads)
    name += scratch_tag(most)
    if sw == 1:
        per_plane = "PH * PW"
        planes = "\n".join(f"    float *pl{ci} = base + {ci} * (int64_t)PH * PW;" for ci in range(c))
        fills = "\n".join(f"    megcc_{s.name}_pad_plane(x + {ci} * (int64_t)H * W, H, W, PT, PL, "
                          f"PH, PW, 0.0f, pl{ci}, 0);" for ci in range(c))
        rowptr = "".join(f"        const float *pl{ci}r = pl{ci} + (int64_t)oy * SH * PW;\n"
                         for ci in range(c))
    else:
        per_plane = "2 * PH * PW2"
        planes = "\n".join(f"    float *pe{ci} = base + {ci} * 2 * (int64_t)PH * PW2, "
                           f"*po{ci} = pe{ci} + (int64_t)PH * PW2;" for ci in range(c))
        fills = "\n".join(f"    megcc_{s.name}_split_plane(x + {ci} * (int64_t)H * W, H, W, PT, PL, "
                          f"PH, PW, 0.0f, pe{ci}, po{ci}, 0);" for ci in range(c))
        rowptr = "".join(f"        const float *pe{ci}r = pe{ci} + (int64_t)oy * SH * PW2, "
                         f"*po{ci}r = po{ci} + (int64_t)oy * SH * PW2;\n"
                         f"        (void)po{ci}r;  /* (no odd-column tap when KW is 1) */\n"
                         for ci in range(c))
    blocks_full = oc // OC_BLOCK
    rest = oc % OC_BLOCK

    def row_code(ocs):
        code = _row(s, ocs, c, kh, kw, sw, bool(clamp))
        # the step reads pl<ci> / pe<ci> / po<ci>: this row's pointers
        for ci in range(c):
            for pre in (("pl",) if sw == 1 else ("pe", "po")):
                code = code.replace(f"{pre}{ci} +", f"{pre}{ci}r +")
        return code

    ind = " " * 12
    loops = f"""        for (o = o0; o < o1 && o + {OC_BLOCK} <= {blocks_full * OC_BLOCK}; o += {OC_BLOCK}) {{
            float *yo = y + (int64_t)o * OH * OW + (int64_t)oy * OW;
{ind}{row_code(OC_BLOCK).replace(chr(10), chr(10) + ind)}
        }}
"""
    if rest:
        loops += f"""        if (o < o1) {{  /* the last {rest} channels */
            float *yo = y + (int64_t)o * OH * OW + (int64_t)oy * OW;
{ind}{row_code(rest).replace(chr(10), chr(10) + ind)}
        }}
"""
    blocks = -(-oc // OC_BLOCK)
    body = f"""    const float *x = (const float *)in_ptrs[0];
    const float *w = (const float *)in_ptrs[1];
    const float *bias = {"(const float *)in_ptrs[2]" if has_bias else "0"};
    float *y = (float *)out_ptrs[0];
    const int32_t PW = {pw}, SH = {sh};{"" if sw == 1 else chr(10) + "    const int32_t PW2 = (PW + 1) / 2;"}
    /* this part's zero-padded input planes */
    float *base = (float *)workspace + part * {scratch_stride(f"{c} * {per_plane}")};
{planes}
    /* parts: ranges of {OC_BLOCK}-channel blocks */
    const int32_t o0 = (int32_t)((int64_t){blocks} * part / parts) * {OC_BLOCK},
                  o1b = (int32_t)((int64_t){blocks} * (part + 1) / parts) * {OC_BLOCK},
                  o1 = o1b < OC ? o1b : OC;
    int32_t o, oy, ox;
{f"    const {s.vtype} lo = {s.set1(lo)}, hi = {s.set1(hi)};{chr(10)}" if clamp else ""}\
{fills}
    for (oy = 0; oy < OH; ++oy) {{
{rowptr}{loops}    }}
"""
    kernel = split_kernel(name, body, parts_with_scratch(str(blocks), most), PARAMS, ("math",),
                          isa=s.isa)
    params = PARAMS.pack(**conv_head_values(geo), PH=ph, PWP=pw)
    inputs = [op.inputs[0], op.inputs[1], op.inputs[2] if has_bias else ""]
    plane_floats = c * (ph * pw if sw == 1 else 2 * ph * ((pw + 1) // 2))
    parts = min(most, blocks)
    return [Instr(kernel, inputs, [op.outputs[0]], params,
                  workspace_bytes=scratch_bytes(parts, plane_floats),
                  note=f"{s.label} direct convolution for {c} input channels: zero-padded "
                       f"planes{'' if sw == 1 else ' split into even/odd columns'}, "
                       f"{PIXEL_VECTORS} output vectors x {OC_BLOCK} channels per step")]


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    reason = vector_conv_rejection(op, graph)
    if reason:
        return reason
    geo = conv_problem(op, graph)
    if any(is_sym(geo[k]) or not isinstance(geo[k], int)
           for k in ("n", "c", "h", "w", "oh", "ow")):
        return "shape known only at run time"
    if len(graph.tensors[op.inputs[0]].shape) != 4:
        return "not 2-D"
    if geo["group"] != 1 or geo["c"] > MAX_CHANNELS:
        return f"grouped, or more than {MAX_CHANNELS} input channels"
    if geo["n"] != 1:
        return "batch other than 1"
    # with more output channels the GEMM's tiles fill: 3 -> 64 at 224x224 stride 2 gained
    # 5 % alone (522 -> 496 us) and lost in SqueezeNet (591 -> 723 us, loaded machine)
    if geo["oc"] > MAX_OUTPUT_CHANNELS:
        return f"more than {MAX_OUTPUT_CHANNELS} output channels"
    if (geo["dh"], geo["dw"]) != (1, 1) or geo["sw"] not in (1, 2) or geo["sh"] not in (1, 2):
        return "dilated, or a stride other than 1 or 2"
    if geo["kh"] * geo["kw"] > 25:
        return "more than 25 taps"
    if graph.tensors[op.inputs[1]].dtype != "float32":
        return "float16 weights"
    if len(op.inputs) > 3 and any(op.inputs[3:]):
        return "a fused residual or PReLU"
    _, act_pass = g.vector_clamp(op.attrs.get("activation"), c_float)
    if act_pass:
        return "an activation other than a clamp"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    """One vector FMA per tap, output vector and output channel (the weight broadcasts and
    input loads overlap them: fitted in process, AVX2, ~5.5-6.5 modelled cycles per us like
    the packed GEMM's estimates of the same layers), plus building the planes. Measured
    against the im2col GEMM: 3 -> 16 at 320x320 s2 394 -> 287 us, 3 -> 32 at 224x224 s2
    297 -> 247, 3 -> 64 at 224x224 s2 522 -> 496, 3 -> 16 at 112x112 s1 174 -> 119."""
    geo, vs, core = conv_problem(op, graph), isa.vec("f32").direct, isa.core
    vec = geo["oh"] * -(-geo["ow"] // vs.vw)
    taps = geo["c"] * geo["kh"] * geo["kw"]
    ph, pw = plane(geo, vs.vw)
    return vec * geo["oc"] * taps / core.fma_per_cycle + geo["c"] * ph * pw / vs.vw * 2


@implements("Conv", dtypes=F32, layout="nchw", requires="f32.direct", applies=_applies,
            cost=_cost, label=lambda isa: f"{isa.vec('f32').direct.name} direct, few channels")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    return lower_direct_fewc(op, graph, isa.vec("f32").direct)
