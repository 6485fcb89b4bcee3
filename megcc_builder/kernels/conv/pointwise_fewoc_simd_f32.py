"""1x1 convolution with few output channels (NCHW, float32), straight from the input: output
positions in the vector lanes, weights broadcast, nothing packed.

The packed-GEMM convolution (gemm_simd_f32.py) packs the whole input (K x positions) into
NR-column panels before its micro-kernel runs. With few output channels each packed float
feeds only OC multiply-adds: a MobileNetV2 projection 96 -> 16 at 80x80 (detector_320)
copies 2.4 MB to do 9.8 M multiply-adds, and took 273 us against onnxruntime's 173.
Here the NCHW input rows are already the "panels": a tile of TILE positions (sized to stay
in L1 over all K rows) is read by every block of oc_block() output channels; each step keeps
oc_block() x PIXEL_VECTORS accumulators, and per input channel loads PIXEL_VECTORS vectors
and broadcasts oc_block() weights. Bias, a fused residual (y = act(conv + bias + r)) and a
clamp run in the store. Positions past the last whole vector are computed in scalar code.

Parts (threads) take ranges of tiles; a tile is computed the same way in every part, so
the output is bitwise identical for every thread count. The positions (N, H, W) are
run-time params: symbolic extents are supported.
"""
from __future__ import annotations

from typing import Optional

from ...codegen import packed_gemm as g
from ...codegen.kernel import Instr, c_float
from ...codegen.parallel import split_kernel
from ...codegen.vector import Simd
from ...ir import Graph, Op
from ...ir.symbolic import hint, is_sym
from ...isa import IsaSpec
from ..cost import PACKED_CONV_CALL
from ..elementwise.activation import activation_tag
from ..registry import F32, implements
from .gemm_simd_f32 import is_pointwise
from .geometry import bias_of, conv_head_values, conv_problem, conv_schema, vector_conv_rejection

PARAMS = conv_schema()

MAX_OUTPUT_CHANNELS = 32  # above, the GEMM's 6-row tiles fill and its packing amortizes
PIXEL_VECTORS = 2         # output vectors per step, times oc_block(isa) output channels
TILE_BYTES = 16 * 1024    # input bytes of one tile (K rows): L1-resident across OC blocks
MAX_TILE = 256            # positions per tile at most


def oc_block(isa: IsaSpec) -> int:
    """Output channels per step: 2 x 8 accumulators where the level has 32 vector registers
    (AArch64; AVX2 code built for AVX-512 levels), else 2 x 6 (16 registers, with the two
    input vectors and the broadcast weight). 96 -> 16 at 80x80 with a residual, x86_64-vnni:
    4 channels 216 us, 6 198, 8 189 (packed GEMM 276)."""
    return 8 if isa.arch == "aarch64" or "avx512f" in isa.features else 6


def tile_positions(c: int, vw: int) -> int:
    """Positions per tile: a multiple of one step's PIXEL_VECTORS x vw, the tile's C rows
    within TILE_BYTES."""
    step = PIXEL_VECTORS * vw
    return max(step, min(MAX_TILE, TILE_BYTES // (4 * c)) // step * step)


def _step(s: Simd, ocs: int, pvs: int, c: int, residual: bool, clamp: bool) -> str:
    """C block: output vectors q .. q + pvs - 1 of channels o .. o + ocs - 1."""
    code = [f"{s.vtype} " + ", ".join(f"a{j}_{p} = {s.set1(f'bias ? bias[o + {j}] : 0.0f')}"
                                      for j in range(ocs) for p in range(pvs)) + ";",
            f"{s.vtype} v0" + "".join(f", v{p}" for p in range(1, pvs)) + ", wv;",
            "const float *xk = xn + q, *wk = w + (int64_t)o * C;",
            f"for (k = 0; k < {c}; ++k, xk += S, ++wk) {{"]
    for p in range(pvs):
        code.append(f"    v{p} = {s.load(f'xk + {p * s.vw}')};{s.keep(f'v{p}')}")
    for j in range(ocs):
        code.append(f"    wv = {s.dup(f'wk + {j} * C')};")
        code += [f"    a{j}_{p} = {s.fma(f'a{j}_{p}', f'v{p}', 'wv')};" for p in range(pvs)]
    code.append("}")
    for j in range(ocs):
        for p in range(pvs):
            a = f"a{j}_{p}"
            at = f"(int64_t)(o + {j}) * S + q + {p * s.vw}"
            if residual:
                code.append(f"{a} = {s.add(a, s.load(f'rn + {at}'))};")
            if clamp:
                code.append(f"{a} = {s.min('hi', s.max('lo', a))};")
            code.append(f"{s.store(f'yn + {at}', a)};")
    return "{\n" + "\n".join("    " + line for line in code) + "\n}"


def _block(s: Simd, ocs: int, c: int, residual: bool, clamp: bool) -> str:
    """C: the tile's positions [q0, q1) for channels o .. o + ocs - 1."""
    full = PIXEL_VECTORS * s.vw
    return f"""for (q = q0; q + {full} <= q1; q += {full})
    {_step(s, ocs, PIXEL_VECTORS, c, residual, clamp).replace(chr(10), chr(10) + "    ")}
for (; q + {s.vw} <= q1; q += {s.vw})
    {_step(s, ocs, 1, c, residual, clamp).replace(chr(10), chr(10) + "    ")}"""


def lower_pointwise_fewoc(op: Op, graph: Graph, s: Simd, ocb: int):
    geo = conv_problem(op, graph)
    act = op.attrs.get("activation")
    has_bias, bias_tag = bias_of(op)
    residual = bool(op.attrs.get("residual"))
    c, oc = geo["c"], geo["oc"]
    clamp, _ = g.vector_clamp(act, c_float)
    lo, hi = clamp or ("0.0f", "0.0f")
    tile = tile_positions(c, s.vw)
    name = (f"conv2d_1x1_fewoc_c{c}_oc{oc}_b{ocb}_f32{bias_tag}{'_residual' if residual else ''}"
            f"{activation_tag(act)}_{s.name}")
    full_blocks, rest = divmod(oc, ocb)
    ind = " " * 12

    def blocks() -> str:
        code = ""
        if full_blocks:
            code += (f"        for (o = 0; o < {full_blocks * ocb}; o += {ocb}) {{\n"
                     f"{ind}{_block(s, ocb, c, residual, bool(clamp)).replace(chr(10), chr(10) + ind)}\n"
                     "        }\n")
        if rest:
            code += (f"        o = {full_blocks * ocb};  /* the last {rest} channels */\n"
                     f"        {{\n{ind}{_block(s, rest, c, residual, bool(clamp)).replace(chr(10), chr(10) + ind)}\n"
                     "        }\n")
        return code

    scalar_clamp = "v = v < lo1 ? lo1 : v > hi1 ? hi1 : v;" if clamp else ""
    body = f"""    const float *x = (const float *)in_ptrs[0];
    const float *w = (const float *)in_ptrs[1];
    const float *bias = {"(const float *)in_ptrs[2]" if has_bias else "0"};
    const float *res = {"(const float *)in_ptrs[3]" if residual else "0"};
    float *y = (float *)out_ptrs[0];
    const int64_t S = (int64_t)OH * OW;
    const int64_t tiles = (S + {tile - 1}) / {tile};
    const int64_t t0 = tiles * part / parts, t1 = tiles * (part + 1) / parts;
    const float lo1 = {lo}, hi1 = {hi};
{f"    const {s.vtype} lo = {s.set1(lo)}, hi = {s.set1(hi)};{chr(10)}" if clamp else ""}\
    int32_t n, o, k;
    int64_t t, q;
    (void)lo1; (void)hi1; (void)res;
    for (n = 0; n < N; ++n) {{
        const float *xn = x + (int64_t)n * {c} * S;
        const float *rn = res ? res + (int64_t)n * {oc} * S : 0;
        float *yn = y + (int64_t)n * {oc} * S;
        (void)rn;
        for (t = t0; t < t1; ++t) {{
        const int64_t q0 = t * {tile}, q1 = q0 + {tile} < S ? q0 + {tile} : S;
{blocks()}        /* positions past the last whole vector (only in the last tile): every output
           channel at once, independent sums */
        for (; q < q1; ++q) {{
            float acc[{oc}];
            for (o = 0; o < {oc}; ++o) acc[o] = bias ? bias[o] : 0.0f;
            for (k = 0; k < {c}; ++k) {{
                const float xv = xn[(int64_t)k * S + q];
                for (o = 0; o < {oc}; ++o) acc[o] += xv * w[(int64_t)o * {c} + k];
            }}
            for (o = 0; o < {oc}; ++o) {{
                float v = acc[o];
                {"v += rn[(int64_t)o * S + q];" if residual else ""}
                {scalar_clamp}
                yn[(int64_t)o * S + q] = v;
            }}
        }}
        }}
    }}
"""
    tiles = f"(((int64_t)OH * OW + {tile - 1}) / {tile})"
    parts = (f"(par && par->threads > 1 ? (par->threads < {tiles} ? par->threads : "
             f"(int32_t){tiles}) : 1)")
    kernel = split_kernel(name, body, parts, PARAMS, ("math",), isa=s.isa)
    params = PARAMS.pack(**conv_head_values(geo))
    inputs = [op.inputs[0], op.inputs[1], op.inputs[2] if has_bias else ""]
    if residual:
        inputs.append(op.inputs[3])
    return [Instr(kernel, inputs, [op.outputs[0]], params,
                  note=f"{s.label} 1x1 convolution for {oc} output channels from the NCHW "
                       f"input: tiles of {tile} positions, {PIXEL_VECTORS} vectors x "
                       f"{ocb} channels per step, weights broadcast")]


def _applies(op: Op, graph: Graph, isa: IsaSpec) -> Optional[str]:
    reason = vector_conv_rejection(op, graph)
    if reason:
        return reason
    geo = conv_problem(op, graph)
    if not is_pointwise(geo):
        return "not a 1x1 stride-1 unpadded convolution"
    if geo["group"] != 1:
        return "grouped"
    # channels are compiled in; positions (N, H, W) are run-time params
    if any(is_sym(geo[k]) or not isinstance(geo[k], int) for k in ("c", "oc")):
        return "channels known only at run time"
    if geo["oc"] > MAX_OUTPUT_CHANNELS:
        return f"more than {MAX_OUTPUT_CHANNELS} output channels"
    if graph.tensors[op.inputs[1]].dtype != "float32":
        return "float16 weights"
    if op.attrs.get("prelu"):
        return "a fused PReLU"
    _, act_pass = g.vector_clamp(op.attrs.get("activation"), c_float)
    if act_pass:
        return "an activation other than a clamp"
    return None


def _cost(op: Op, graph: Graph, isa: IsaSpec) -> float:
    """Vector FMAs (one per output vector, output and input channel) at FMA_CYCLES each,
    plus streaming each position's input and output channels, plus the scalar tail; in
    the packed GEMM's modelled cycles (kernels/cost.py gemm_cycles). Fitted on this host
    (x86_64-vnni, process CPU time, about 5.7 modelled Mcycles per ms for the GEMM),
    detector_320's layers (GEMM -> this): 16 -> 8 at 160x160 122 -> 81 us, 48 -> 16 at
    80x80 131 -> 93, 96 -> 16 at 80x80 with a residual 276 -> 189, 96 -> 16 at 40x40
    67 -> 52, 192 -> 32 at 20x20 with a residual 54 -> 51."""
    geo, vs, core = conv_problem(op, graph), isa.vec("f32").direct, isa.core
    positions = hint(geo["n"]) * hint(geo["oh"]) * hint(geo["ow"])
    vectors, tail = divmod(positions, vs.vw)
    c, oc = geo["c"], geo["oc"]
    streamed = c + oc * (2 if op.attrs.get("residual") else 1)
    # a last block of few channels has few FMA chains and the same loads: it costs as a
    # block of at least half the width (40 -> 17 at 9x11 in blocks 8 + 8 + 1: 2.9 us, the
    # GEMM 2.6)
    ocb = oc_block(isa)
    full, rest = divmod(oc, ocb)
    lanes = full * ocb + (max(rest, ocb // 2) if rest else 0)
    return (vectors * lanes * c * FMA_CYCLES / core.fma_per_cycle
            + positions * streamed * STREAM_CYCLES + tail * oc * c + PACKED_CONV_CALL)


FMA_CYCLES = 0.7      # per vector FMA (at fma_per_cycle 1): 12-16 chains, loads, broadcasts
STREAM_CYCLES = 0.3   # per float of a position's input and output channels


@implements("Conv", dtypes=F32, layout="nchw", requires="f32.direct", applies=_applies,
            cost=_cost,
            label=lambda isa: f"{isa.vec('f32').direct.name} 1x1, few output channels")
def emit(op: Op, graph: Graph, isa: IsaSpec):
    return lower_pointwise_fewoc(op, graph, isa.vec("f32").direct, oc_block(isa))
