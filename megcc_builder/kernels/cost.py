"""Compile-time kernel choice by a cost model (not first match).

For an op, every variant the build's ISA level allows (and that applies to the op) gets an
estimated cost in cycles from a small analytic model; the cheapest is lowered, and its
instruction note records the estimate and the rejected alternatives (`megcc inspect`).

The model counts what dominates on an out-of-order core with two FMA pipes:
- packed GEMM: micro-kernel k-steps (an MR x NR tile takes one cycle per vector FMA, at
  least min_k_step, per k at ~85 % issue efficiency; AVX2 6x16: max(2*mr, 4); right-edge
  tiles pay for their full width), plus packing the runtime operand, plus reloading C once
  per extra K block;
- Winograd F(4,3) / F(2,3) (3x3 stride 1, AVX2): 36 / 16 packed GEMMs over blocks of 4x4 /
  2x2 output tiles, plus the input/output transforms per tile and channel, plus streaming
  the 4x / 1.8x larger transformed weights (what puts 7x7x512 layers, 4 tiles of 4x4, on
  F(2,3));
- depthwise direct: one vector FMA + one load per tap per output vector, plus building the
  padded plane;
- portable C: multiply-adds at the rate the auto-vectorised portable loops reach.
The x86 constants were calibrated once with `megcc run --profile` on ResNet-50 /
MobileNetV2 layers (Winograd's on ResNet-18/50 and VGG-19 3x3 layers); only their ratios
matter, since candidates are compared with each other.
The Arm constants (ARM64, ARMV7 below) are estimates for Cortex-A-class cores (AArch64: two
128-bit FMA pipes, A72/A76-like), not measurements: NEON kernels only run under qemu here,
which does not model timing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional

from ..ir import Graph, Op
from ..isa import has_avx2, has_neon
from . import avx2_winograd, reduce, simd, simd_conv, simd_elementwise, simd_fc, simd_pool

# cycles per multiply-add of the portable kernels (im2col + auto-vectorised GEMM loops, the
# scalar depthwise loop, dot-product FC)
PORTABLE_CONV = 0.45
PORTABLE_DEPTHWISE = 1.0
PORTABLE_FC = 0.5
UKR_EFFICIENCY = 0.85


@dataclass(frozen=True)
class Core:
    """What the cost model assumes of the core a level runs on."""
    portable_conv: float  # cycles per multiply-add of the portable kernels (see above)
    portable_depthwise: float
    portable_fc: float
    fma_per_cycle: float  # vector FMAs a micro-kernel sustains per cycle (loads included)
    min_k_step: float     # cycles per k of the narrowest tiles (load-bound)
    stream_bytes: float   # bytes per cycle weights stream from memory


# x86: two 256-bit FMA pipes, of which the micro-kernel was measured to sustain about one
# FMA per cycle once loads and broadcasts are counted.
X86_V3 = Core(PORTABLE_CONV, PORTABLE_DEPTHWISE, PORTABLE_FC, 1.0, 4.0, 8.0)
# Estimates (see the module doc). AArch64 (A72/A76): two 128-bit FMA pipes, assumed used as
# efficiently as on x86 (one FMA per cycle: the 8x12 tile's 24 FMAs in ~24 cycles per k);
# portable C is auto-vectorised 4 wide, so it loses more to the packed GEMM than on x86.
# ARMv7 builds run on 32-bit cores (Cortex-A7/A9/A53 in AArch32) with a 64-bit NEON
# datapath: a 128-bit FMA issues every other cycle, and memory is slower.
ARM64 = Core(0.55, 1.2, 0.6, 1.0, 3.0, 8.0)
ARMV7 = Core(0.9, 2.0, 1.0, 0.5, 6.0, 4.0)


def core_of(isa: str) -> Core:
    if has_neon(isa):
        return ARM64 if simd.gemm_simd(isa) is simd.NEON64 else ARMV7
    return X86_V3


@dataclass
class Candidate:
    label: str
    cycles: float
    lower: Callable[[], list]


def _mcyc(c: float) -> str:
    return f"{c / 1e6:.3f} Mcyc"


def gemm_cycles(m: int, n: int, k: int, pack_per_elem: float, groups: int = 1,
                s: simd.Simd = simd.AVX2, core: Core = X86_V3) -> float:
    """Packed MR x NR GEMM: micro-kernel steps + packing the runtime operand + C reloads."""
    full, tail = divmod(m, s.mr)
    edge = n % s.nr
    panels_n = n // s.nr + (s.vw / s.nr if 0 < edge <= s.vw else 1 if edge else 0)  # edge tiles

    def step(rows: int) -> float:  # cycles per k of a rows x NR tile
        return max(rows * s.nv / core.fma_per_cycle, core.min_k_step)

    per_k = full * step(s.mr) + (step(tail) if tail else 0)
    ukr = panels_n * k * per_k / UKR_EFFICIENCY
    nkb = -(-k // 320)
    reload = (nkb - 1) * m * n / s.vw * 2
    return groups * (ukr + k * n * pack_per_elem + reload)


# Winograd, per variant: cycles per (channel, tile) of the input transform and per (output
# channel, tile) of the output transform (these model cycles are the GEMM model's: about two
# of the machine's); bytes per cycle the transformed weight matrices stream at from memory
# (they are read once per block of tiles). Calibrated on the 3x3 layers of ResNet-18/50 and
# VGG-19 (56x56x64 ... 7x7x512, 224x224x64 ... 14x14x512) with `megcc run --profile`.
WINO_INPUT = {"f43": 60.0, "f23": 25.0}
WINO_OUTPUT = {"f43": 65.0, "f23": 25.0}
WINO_STREAM = 1.5
LLC_BYTES = 4 << 20  # weights up to this size are re-read from L3, larger ones from memory


def winograd_cycles(geo, variant: str = "f43") -> float:
    """One image: XI GEMMs per block of tiles (M = OC, N = tiles in the block, K = C) plus
    the transforms (the input one redone per output-channel block when C needs several
    channel blocks) plus streaming the transformed weights (XI/9 x the direct ones): what
    makes small feature maps with many channels (7x7x512: 4 tiles of 4x4) slower with
    F(4,3) than with F(2,3) or even im2col."""
    v = avx2_winograd.VARIANTS[variant]
    tb, kb, mb = avx2_winograd.blocking(geo, v)
    tx, ty = avx2_winograd.tiles(geo, v)
    t, c, oc = tx * ty, geo["c"], geo["oc"]
    full, last = divmod(t, tb)
    blocks = [tb] * full + ([last] if last else [])
    nkb, nmb = -(-c // kb), -(-oc // mb)
    gemm = v.xi * sum(gemm_cycles(oc, n, c, 0.0) + (nkb - 1) * oc * n / 8 * 2 for n in blocks)
    redo = nmb if nkb > 1 else 1
    transforms = t * (c * WINO_INPUT[variant] * redo + oc * WINO_OUTPUT[variant])
    wbytes = v.xi * oc * c * 4
    # in a whole model the weights are cold: they come from memory once, and again for
    # every further block of tiles if they do not stay in the cache
    stream = wbytes / WINO_STREAM * (1 if wbytes <= LLC_BYTES else len(blocks))
    compute = gemm + transforms
    return max(compute, stream) + 0.1 * min(compute, stream)  # mostly overlapped


def _conv_candidates(op: Op, graph: Graph, isa: str) -> List[Candidate]:
    geo = simd_conv._common(op, graph)
    core, gs, vs = core_of(isa), simd.gemm_simd(isa), simd.vector_simd(isa)
    macs = geo["n"] * geo["oc"] * geo["oh"] * geo["ow"] * (geo["c"] // geo["group"]) \
        * geo["kh"] * geo["kw"]
    dw = (geo["group"] == geo["c"] and geo["group"] > 1 and geo["oc"] % geo["c"] == 0)
    out = [Candidate("portable C", macs * (core.portable_depthwise if dw else core.portable_conv),
                     lambda: None)]
    if gs is None or not simd_conv.applicable(op, graph):
        return out
    m, s, k = simd_conv.gemm_shape(geo)
    if simd_conv.is_pointwise(geo):
        pack = 0.15
    elif geo["sw"] == 1:
        pack = 0.3
    else:
        pack = 0.8
    out.append(Candidate(f"{gs.name} packed GEMM {gs.mr}x{gs.nr}",
                         geo["n"] * gemm_cycles(m, s, k, pack, geo["group"], gs, core),
                         lambda: simd_conv.lower_gemm_conv(op, graph, gs)))
    if has_avx2(isa) and avx2_winograd.applicable(geo):
        for variant, label in (("f43", "F(4,3)"), ("f23", "F(2,3)")):
            out.append(Candidate(f"avx2 Winograd {label}", geo["n"] * winograd_cycles(geo, variant),
                                 lambda v=variant: avx2_winograd.lower_winograd(op, graph, v)))
    if dw and simd_conv.depthwise_ok(geo):
        ph, pw = simd_conv.plane(geo, vs.vw)
        vec = geo["oh"] * -(-geo["ow"] // vs.vw)
        per_tap = (1.0 if geo["sw"] == 1 else 1.6) / core.fma_per_cycle
        cyc = geo["n"] * geo["oc"] * (vec * geo["kh"] * geo["kw"] * per_tap + ph * pw / vs.vw)
        out.append(Candidate(f"{vs.name} depthwise direct", cyc,
                             lambda: simd_conv.lower_depthwise(op, graph, vs)))
    return out


def _fc_candidates(op: Op, graph: Graph, isa: str) -> List[Candidate]:
    core, gs = core_of(isa), simd.gemm_simd(isa)
    prob = simd_fc.fc_problem(op, graph) if gs is not None else None
    if prob is None:
        return []
    m, n, k = prob[:3]
    stream = k * n * 4 / core.stream_bytes  # either way the weights stream from memory

    def overlapped(compute: float) -> float:  # loads and FMAs overlap, imperfectly
        return max(compute, stream) + 0.25 * min(compute, stream)

    out = [Candidate("portable C", overlapped(m * n * k * core.portable_fc), lambda: None)]
    out.append(Candidate(f"{gs.name} packed GEMM {gs.mr}x{gs.nr}",
                         overlapped(gemm_cycles(m, n, k, 0.0 if m == 1 else 0.5, 1, gs, core)),
                         lambda: simd_fc.lower_fc(op, graph, gs)))
    return out


def _pool_candidates(op: Op, graph: Graph, isa: str) -> List[Candidate]:
    vs = simd.vector_simd(isa)
    geo = simd_pool.pool_geometry(op, graph) if vs is not None else None
    if geo is None:
        return []
    taps = geo["kh"] * geo["kw"]
    planes = geo["n"] * geo["c"]
    ph, pw = simd_conv.plane(geo, vs.vw)
    vec = geo["oh"] * -(-geo["ow"] // vs.vw) * taps * (1.5 if geo["sw"] == 1 else 2.5)
    if op.type == "MaxPool":
        label, lower = "plane max", simd_pool.lower_maxpool
    else:
        label, lower = "plane average", simd_pool.lower_avgpool
    return [Candidate("portable C", planes * geo["oh"] * geo["ow"] * taps * 2.0, lambda: None),
            Candidate(f"{vs.name} {label}", planes * (vec + ph * pw / 4),
                      lambda: lower(op, graph, vs))]


# Element-wise ops, per ISA level: cycles per element of (a cheap operation, a libm call
# (expf, tanhf)) in (portable C, the vector kernel). ARMv7's portable float code is scalar
# VFP (simd_elementwise.py), so every vector operation pays; AArch64 and x86 compilers
# vectorise the portable loops themselves (equal cheap-op costs: the vector kernel's per-row
# overhead leaves them portable) but call libm once per element.
# x86: from `megcc run --profile` over 1x256x56x56 (glibc expf ~11 cycles per element, tanhf
# ~55, the vector kernels ~1.6 for one exp: memory-bound); the libm figure is the cheap
# end, so that a single exp decides. The Arm figures are estimates (qemu does not model
# timing).
ELEMENTWISE = {"armv7-neon": ((1.0, 40.0), (0.3, 6.0)),
               "arm64-neon": ((0.25, 20.0), (0.25, 3.0)),
               "x86_64-v3": ((0.15, 12.0), (0.15, 1.5)),
               "x86_64-v4": ((0.15, 12.0), (0.15, 1.5))}


def elementwise_simd(isa: str) -> Optional[simd.Simd]:
    """The vector flavour of element-wise ops and softmax (AArch64 gets vector division)."""
    if has_avx2(isa):
        return simd.AVX2
    if has_neon(isa):
        return simd.NEON64 if simd.gemm_simd(isa) is simd.NEON64 else simd.NEON
    return None


def _elementwise_cost(expr, n: int, costs) -> float:
    heavy = simd_elementwise.op_count(expr, transcendental=True)
    cheap = max(1, simd_elementwise.op_count(expr)) - heavy
    return n * (cheap * costs[0] + heavy * costs[1])


def _elementwise_candidates(op: Op, graph: Graph, isa: str) -> List[Candidate]:
    vs = elementwise_simd(isa)
    if isa not in ELEMENTWISE or vs is None or not simd_elementwise.applicable(op, graph, vs):
        return []
    portable, vector = ELEMENTWISE[isa]
    n = 1
    for d in graph.tensors[op.outputs[0]].shape:
        n *= d
    expr = simd_elementwise.expression_of(op)
    return [Candidate("portable C", _elementwise_cost(expr, n, portable), lambda: None),
            Candidate(f"{vs.name} element-wise", _elementwise_cost(expr, n, vector) + 8,
                      lambda: simd_elementwise.lower_elementwise(op, graph, vs))]


def _softmax_candidates(op: Op, graph: Graph, isa: str) -> List[Candidate]:
    """Softmax / LogSoftmax: per element one exp, a max, a sum and a scale (or subtract)."""
    vs = elementwise_simd(isa)
    shape = reduce.softmax_vector_shape(op, graph, vs) if isa in ELEMENTWISE and vs else None
    if shape is None:
        return []
    n = shape[0] * shape[1] * shape[2]
    portable, vector = ELEMENTWISE[isa]
    return [Candidate("portable C", n * (3 * portable[0] + portable[1]), lambda: None),
            Candidate(f"{vs.name} softmax", n * (3 * vector[0] + vector[1]) + 8 * shape[0],
                      lambda: reduce.lower_softmax_vector(op, graph, vs))]


CANDIDATES = {"Conv": _conv_candidates, "Gemm": _fc_candidates, "MatMul": _fc_candidates,
              "MaxPool": _pool_candidates, "AveragePool": _pool_candidates}
CANDIDATES.update(Softmax=_softmax_candidates, LogSoftmax=_softmax_candidates)
CANDIDATES.update((t, _elementwise_candidates)
                  for t in simd_elementwise.OP_TYPES + ["FusedElementwise"])


def lower_op(op: Op, graph: Graph, portable: Callable[[Op, Graph], list]) -> list:
    """The instructions of the cheapest variant of `op` (the portable lowering if no
    optimised variant applies); the chosen instruction's note explains the choice."""
    isa = getattr(graph, "isa", "generic")
    make: Optional[Callable] = CANDIDATES.get(op.type)
    cands = make(op, graph, isa) if make else []
    if len(cands) < 2:
        return portable(op, graph)
    ranked = sorted(enumerate(cands), key=lambda ic: (ic[1].cycles, ic[0]))
    best = ranked[0][1]
    items = best.lower() or portable(op, graph)
    why = (f"cost model [{isa}]: {best.label} ~{_mcyc(best.cycles)}; rejected "
           + ", ".join(f"{c.label} ~{_mcyc(c.cycles)}" for _, c in ranked[1:]))
    for item in items:
        if hasattr(item, "note"):
            item.note = f"{item.note}; {why}" if item.note else why
    return items
