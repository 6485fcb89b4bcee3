"""Vector vocabularies: the types of the small sets of C intrinsics that the vector kernels
are written against once.

- `Simd`: float32 vectors (load, store, FMA, max, ...) plus the GEMM micro-tile that suits
  a register file: the packed GEMM (packed_gemm.py), convolutions, fully-connected layers
  and pooling (kernels/**/*_simd_f32.py) use it;
- `VecOps`: the further float32 operations the transcendental helpers (vmath.py) and the
  vector element-wise kernels use (integer lanes, compares, selects).

The spellings themselves (AVX2, NEON, AArch64 NEON) belong to the ISA levels that have
them: isa/x86.py and isa/arm.py, listed per element type in `isa.VectorSet`.
"""
from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True)
class VecOps:
    """The intrinsic spellings the transcendental helpers and vector expressions use."""
    simd: Simd
    itype: str
    _fma: str      # a * b + c
    _sub: str
    _div: str      # "" = via the reciprocal helper (ARMv7)
    _as_i: str
    _as_f: str
    _add_i: str
    _sub_i: str
    _set1_i: str
    _srai1: str    # arithmetic >> 1
    _shl23: str
    _clamp: str    # min(max(x, lo), hi), NaN x stays NaN
    _abs: str
    _neg: str
    _lt: str
    _ge: str
    _gt: str
    _select: str   # m ? a : b, lane-wise
    _copysign: str  # |mag| with the sign of x (mag has a clear sign bit)
    _max: str      # NaN if either operand is NaN (megcc_maxf)
    _min: str
    _relu: str     # max(x, 0), NaN stays NaN
    _mant: str = ""     # the bits of x with exponent field 126: a float in [0.5, 1)
    _expo: str = ""     # the exponent field of x (an int vector, biased)
    _i2f: str = ""      # int lanes to float
    _eq: str = ""
    mtype: str = ""     # the type of compare results

    @property
    def name(self) -> str:
        return self.simd.name

    @property
    def vtype(self) -> str:
        return self.simd.vtype

    def c(self, x: str) -> str:
        return self.simd.set1(x)

    def add(self, a, b):
        return self.simd.add(a, b)

    def mul(self, a, b):
        return self.simd.mul(a, b)

    def fma(self, a, b, c):
        return self._fma.format(a=a, b=b, c=c)

    def sub(self, a, b):
        return self._sub.format(a=a, b=b)

    def div(self, a, b):
        if self._div:
            return self._div.format(a=a, b=b)
        return f"megcc_{self.name}_vdiv({a}, {b})"

    def __getattr__(self, key):  # the remaining one-template operations: v.abs(x), ...
        tmpl = self.__dict__.get("_" + key) if not key.startswith("_") else None
        if tmpl is None:
            raise AttributeError(key)
        return lambda *args: tmpl.format(*args)

    def fn(self, f: str) -> str:
        return f"megcc_{self.name}_v{f}"
