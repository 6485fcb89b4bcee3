"""The vector instruction sets the optimised kernels are generated for, as data.

The packed GEMM, the convolutions, fully-connected layers and max pooling (packed_gemm.py,
simd_conv.py, simd_fc.py, simd_pool.py) are written once against this small vocabulary of
C intrinsics; each `Simd` spells it for one ISA and fixes the GEMM micro-tile that suits
its register file:

- AVX2+FMA (x86-64-v3): 16 ymm registers, a 6x16 tile (12 accumulators, A broadcast per row);
- NEON on ARMv7 (VFPv4 fused multiply-add): 16 q registers, a 6x8 tile (12 accumulators,
  2 for B, 1 broadcast of A);
- NEON on AArch64: 32 q registers, an 8x12 tile (24 accumulators, 3 for B, 2 vectors of A)
  whose FMAs take their A operand from a vector lane (`vfmaq_laneq_f32`), so no broadcasts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..isa import has_avx2, has_neon, is_aarch64


@dataclass(frozen=True)
class Simd:
    name: str       # C symbol prefix (megcc_<name>_...) and kernel-name suffix
    isa: str        # Kernel.isa tag (isa.KERNEL_ISA_GUARD)
    label: str      # for notes and the cost model
    vw: int         # floats per vector
    vtype: str
    mr: int         # GEMM micro-tile rows ...
    nr: int         # ... and columns (a multiple of vw)
    lane_fma: bool  # full tiles load A as vectors and FMA by lane (else broadcast per row)
    zero: str
    _load: str
    _store: str
    _set1: str
    _dup: str       # load one float into every lane
    _fma: str       # c + a * b
    _add: str
    _max: str       # must return a NaN operand (v) unchanged: clamps keep NaN
    _min: str
    _even: str      # the vw even-indexed floats of p[0 .. 2*vw-1] (stride-2 access)
    max_keeps_nan: bool  # max(x, NaN) is NaN (else max pooling tracks NaN separately)
    # output vectors a direct window kernel (depthwise, pooling) computes per step: on
    # in-order cores (Cortex-A53/A55/A7) independent chains hide the FMA/max latency
    row_unroll: int = 1
    _mul: str = ""
    _odd: str = ""  # the vw odd-indexed floats of p[0 .. 2*vw-1]
    # a statement keeping a loaded vector {v} in a register (see megcc_avx2_keep)
    _keep: str = ""
    # half vectors (vw / 2 floats): the plane copies of short rows (7x7 maps)
    _hload: str = ""
    _hstore: str = ""
    _heven: str = ""
    _hodd: str = ""

    def mul(self, a: str, b: str) -> str:
        return self._mul.format(a=a, b=b)

    @property
    def nv(self) -> int:
        """Vectors per micro-tile row."""
        return self.nr // self.vw

    def load(self, p: str) -> str:
        return self._load.format(p=p)

    def store(self, p: str, v: str) -> str:
        return self._store.format(p=p, v=v)

    def set1(self, x: str) -> str:
        return self._set1.format(x=x)

    def dup(self, p: str) -> str:
        return self._dup.format(p=p)

    def fma(self, c: str, a: str, b: str) -> str:
        return self._fma.format(c=c, a=a, b=b)

    def fma_lane(self, c: str, b: str, a: str, lane: int) -> str:
        return f"vfmaq_laneq_f32({c}, {b}, {a}, {lane})"

    def add(self, a: str, b: str) -> str:
        return self._add.format(a=a, b=b)

    def max(self, a: str, b: str) -> str:
        return self._max.format(a=a, b=b)

    def min(self, a: str, b: str) -> str:
        return self._min.format(a=a, b=b)

    def even(self, p: str) -> str:
        return self._even.format(p=p)

    def odd(self, p: str) -> str:
        return self._odd.format(p=p)

    def keep(self, v: str) -> str:
        return " " + self._keep.format(v=v) if self._keep else ""

    def hload(self, p: str) -> str:
        return self._hload.format(p=p)

    def hstore(self, p: str, v: str) -> str:
        return self._hstore.format(p=p, v=v)

    def heven(self, p: str) -> str:
        return self._heven.format(p=p)

    def hodd(self, p: str) -> str:
        return self._hodd.format(p=p)


AVX2 = Simd("avx2", "avx2", "AVX2", 8, "__m256", 6, 16, False, "_mm256_setzero_ps()",
            "_mm256_loadu_ps({p})", "_mm256_storeu_ps({p}, {v})", "_mm256_set1_ps({x})",
            "_mm256_broadcast_ss({p})", "_mm256_fmadd_ps({a}, {b}, {c})",
            "_mm256_add_ps({a}, {b})", "_mm256_max_ps({a}, {b})", "_mm256_min_ps({a}, {b})",
            "megcc_avx2_even8({p})", False, _mul="_mm256_mul_ps({a}, {b})",
            _odd="megcc_avx2_odd8({p})", _keep="megcc_avx2_keep({v});", _hload="_mm_loadu_ps({p})",
            _hstore="_mm_storeu_ps({p}, {v})",
            _heven="_mm_shuffle_ps(_mm_loadu_ps({p}), _mm_loadu_ps({p} + 4), 0x88)",
            _hodd="_mm_shuffle_ps(_mm_loadu_ps({p}), _mm_loadu_ps({p} + 4), 0xDD)")

_NEON_OPS = dict(zero="vdupq_n_f32(0.0f)", _load="vld1q_f32({p})", _store="vst1q_f32({p}, {v})",
                 _set1="vdupq_n_f32({x})", _dup="vld1q_dup_f32({p})",
                 _fma="vfmaq_f32({c}, {a}, {b})", _add="vaddq_f32({a}, {b})",
                 _max="vmaxq_f32({a}, {b})", _min="vminq_f32({a}, {b})",
                 _even="vld2q_f32({p}).val[0]", max_keeps_nan=True, row_unroll=2,
                 _mul="vmulq_f32({a}, {b})", _odd="vld2q_f32({p}).val[1]",
                 _hload="vld1_f32({p})", _hstore="vst1_f32({p}, {v})",
                 _heven="vld2_f32({p}).val[0]", _hodd="vld2_f32({p}).val[1]")

# ARMv7 and AArch64 alike (vector kernels other than the GEMM use it on both)
NEON = Simd("neon", "neon", "NEON", 4, "float32x4_t", 6, 8, False, **_NEON_OPS)
NEON64 = Simd("neon64", "neon64", "NEON AArch64", 4, "float32x4_t", 8, 12, True, **_NEON_OPS)

ALL = (AVX2, NEON, NEON64)


def gemm_simd(level: str) -> Optional[Simd]:
    """The packed-GEMM flavour of an ISA level (None: portable C only)."""
    if has_avx2(level):
        return AVX2
    if is_aarch64(level):
        return NEON64
    return NEON if has_neon(level) else None


def vector_simd(level: str) -> Optional[Simd]:
    """The flavour of the direct vector kernels (depthwise, pooling) of an ISA level."""
    if has_avx2(level):
        return AVX2
    return NEON if has_neon(level) else None
