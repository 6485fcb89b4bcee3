"""Shared pieces of the cost model that picks an implementation (registry.lower).

Every implementation that can compete with another estimates its cost in cycles from a
small analytic model; only ratios matter, since candidates are compared with each other.
The per-core constants live in the ISA level's description (isa.Core); this module has
what several implementations share. What dominates on an out-of-order core with two FMA
pipes:
- packed GEMM: micro-kernel k-steps (an MR x NR tile takes one cycle per vector FMA, at
  least min_k_step, per k at ~85 % issue efficiency; AVX2 6x16: max(2*mr, 4); right-edge
  tiles pay for their full width), plus packing the runtime operand, plus reloading C once
  per extra K block;
- direct window kernels: one vector operation and one load per tap per output vector, plus
  building the padded plane;
- portable C: multiply-adds at the rate the auto-vectorised portable loops reach.
The x86 constants were calibrated once with `megcc run --profile` on ResNet-50 /
MobileNetV2 layers; the Arm ones are estimates (isa/arm.py).
"""
from __future__ import annotations

from ..codegen.vector import Simd
from ..isa import Core


UKR_EFFICIENCY = 0.85

# What a packed-GEMM convolution call costs beyond its arithmetic (per image): the packing
# job set-up, the block loops and the staged edge tiles of a tiny output. It decides the tiny
# convolutions (a few channels on a few pixels: digits-sized CNNs, the late layers of small
# models), where the portable im2col/1x1 loop, with almost no set-up, is faster: measured
# with benchmarks/instr_overhead.py (1x1 conv 4->4 on 2x2: packed AVX2 150 ns a call,
# portable 75-110 ns).
PACKED_CONV_CALL = 150.0


def gemm_cycles(m: int, n: int, k: int, pack_per_elem: float, groups: int, s: Simd,
                core: Core) -> float:
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


def overlapped(compute: float, stream: float, overlap: float) -> float:
    """Time of work that overlaps with streaming memory, imperfectly: the larger of the
    two plus `overlap` of the smaller."""
    return max(compute, stream) + overlap * min(compute, stream)
