"""Compile-time kernel choice by a cost model (not first match).

For an op, every variant the build's ISA level allows (and that applies to the op) gets an
estimated cost in cycles from a small analytic model; the cheapest is lowered, and its
instruction note records the estimate and the rejected alternatives (`megcc inspect`).

The model counts what dominates on an out-of-order core with two FMA pipes:
- packed GEMM: micro-kernel k-steps (a 6x16 tile takes max(2*mr, 4) cycles per k at ~85 %
  issue efficiency, right-edge tiles pay for 16 columns), plus packing the runtime operand,
  plus reloading C once per extra K block;
- Winograd F(4,3) / F(2,3) (3x3 stride 1): 36 / 16 packed GEMMs over blocks of 4x4 / 2x2
  output tiles, plus the input/output transforms per tile and channel, plus streaming the
  4x / 1.8x larger transformed weights (what puts 7x7x512 layers, 4 tiles of 4x4, on F(2,3));
- depthwise direct: one 8-wide FMA + one load per tap per output vector, plus building the
  padded plane;
- portable C: multiply-adds at the rate the auto-vectorised portable loops reach.
The constants were calibrated once with `megcc run --profile` on ResNet-50 / MobileNetV2
layers (Winograd's on ResNet-18/50 and VGG-19 3x3 layers); only their ratios matter, since
candidates are compared with each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional

from ..ir import Graph, Op
from ..isa import has_avx2
from . import avx2_conv, avx2_fc, avx2_pool, avx2_winograd

# cycles per multiply-add of the portable kernels (im2col + auto-vectorised GEMM loops, the
# scalar depthwise loop, dot-product FC)
PORTABLE_CONV = 0.45
PORTABLE_DEPTHWISE = 1.0
PORTABLE_FC = 0.5
UKR_EFFICIENCY = 0.85


@dataclass
class Candidate:
    label: str
    cycles: float
    lower: Callable[[], list]


def _mcyc(c: float) -> str:
    return f"{c / 1e6:.3f} Mcyc"


def gemm_cycles(m: int, n: int, k: int, pack_per_elem: float, groups: int = 1) -> float:
    """Packed 6x16 GEMM: micro-kernel steps + packing the runtime operand + C reloads."""
    full, tail = divmod(m, 6)
    panels_n = n // 16 + (0.5 if 0 < n % 16 <= 8 else 1 if n % 16 else 0)  # 6x8 edge tiles
    per_k = full * 12 + (max(2 * tail, 4) if tail else 0)
    ukr = panels_n * k * per_k / UKR_EFFICIENCY
    nkb = -(-k // 320)
    reload = (nkb - 1) * m * n / 8 * 2
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
    geo = avx2_conv._common(op, graph)
    macs = geo["n"] * geo["oc"] * geo["oh"] * geo["ow"] * (geo["c"] // geo["group"]) \
        * geo["kh"] * geo["kw"]
    dw = (geo["group"] == geo["c"] and geo["group"] > 1 and geo["oc"] % geo["c"] == 0)
    out = [Candidate("portable C", macs * (PORTABLE_DEPTHWISE if dw else PORTABLE_CONV),
                     lambda: None)]
    if not has_avx2(isa) or not avx2_conv.applicable(op, graph):
        return out
    m, s, k = avx2_conv.gemm_shape(geo)
    if avx2_conv.is_pointwise(geo):
        pack = 0.15
    elif geo["sw"] == 1:
        pack = 0.3
    else:
        pack = 0.8
    out.append(Candidate("avx2 packed GEMM 6x16",
                         geo["n"] * gemm_cycles(m, s, k, pack, geo["group"]),
                         lambda: avx2_conv.lower_gemm_conv(op, graph)))
    if avx2_winograd.applicable(geo):
        out.append(Candidate("avx2 Winograd F(4,3)", geo["n"] * winograd_cycles(geo, "f43"),
                             lambda: avx2_winograd.lower_winograd(op, graph, "f43")))
        out.append(Candidate("avx2 Winograd F(2,3)", geo["n"] * winograd_cycles(geo, "f23"),
                             lambda: avx2_winograd.lower_winograd(op, graph, "f23")))
    if dw and avx2_conv.depthwise_ok(geo):
        ph, pw = avx2_conv._plane(geo)
        vec = geo["oh"] * -(-geo["ow"] // 8)
        per_tap = 1.0 if geo["sw"] == 1 else 1.6
        cyc = geo["n"] * geo["oc"] * (vec * geo["kh"] * geo["kw"] * per_tap + ph * pw / 8)
        out.append(Candidate("avx2 depthwise direct", cyc,
                             lambda: avx2_conv.lower_depthwise(op, graph)))
    return out


def _fc_candidates(op: Op, graph: Graph, isa: str) -> List[Candidate]:
    prob = avx2_fc.fc_problem(op, graph) if has_avx2(isa) else None
    if prob is None:
        return []
    m, n, k = prob[:3]
    stream = k * n * 4 / 8  # either way the weights stream from memory: ~8 bytes per cycle

    def overlapped(compute: float) -> float:  # loads and FMAs overlap, imperfectly
        return max(compute, stream) + 0.25 * min(compute, stream)

    out = [Candidate("portable C", overlapped(m * n * k * PORTABLE_FC), lambda: None)]
    out.append(Candidate("avx2 packed GEMM 6x16",
                         overlapped(gemm_cycles(m, n, k, 0.0 if m == 1 else 0.5)),
                         lambda: avx2_fc.lower_fc(op, graph)))
    return out


def _pool_candidates(op: Op, graph: Graph, isa: str) -> List[Candidate]:
    geo = avx2_pool.pool_geometry(op, graph) if has_avx2(isa) else None
    if geo is None:
        return []
    taps = geo["kh"] * geo["kw"]
    planes = geo["n"] * geo["c"]
    ph, pw = avx2_conv._plane(geo)
    vec = geo["oh"] * -(-geo["ow"] // 8) * taps * (1.5 if geo["sw"] == 1 else 2.5)
    return [Candidate("portable C", planes * geo["oh"] * geo["ow"] * taps * 2.0, lambda: None),
            Candidate("avx2 plane max", planes * (vec + ph * pw / 4),
                      lambda: avx2_pool.lower_maxpool(op, graph))]


CANDIDATES = {"Conv": _conv_candidates, "Gemm": _fc_candidates, "MatMul": _fc_candidates,
              "MaxPool": _pool_candidates}


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
