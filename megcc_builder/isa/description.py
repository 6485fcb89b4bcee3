"""What an ISA level is: the one description every part of the compiler reads.

A level (generic, x86_64-v3, arm64-neon, ...) is a property of a whole build: kernels.c is
compiled once with the level's flags. Its `IsaSpec` says everything the compiler needs to
know about it, in one place:

- the CPU features it requires (names as in /proc/cpuinfo: what `native` checks);
- the compiler flags that enable it (host builds; toolchains/<target>.json name a level);
- the kernel tags it enables (`KernelTag`: `Kernel.isa` values, each with the preprocessor
  guard kernels.c checks, the flags its #error names and the intrinsics header);
- the vector vocabularies of each element type (`VectorSet`: f32 today; f16, s8, s16, s32
  are ready to be filled in by the levels that get such kernels);
- the cost model's constants for the core it runs on (`Core`).

The levels themselves are in portable.py, x86.py and arm.py; levels.py lists them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from ..codegen.vector import Simd, VecOps


# Element types a vector vocabulary can be for (IsaSpec.vectors keys).
ELEMENT_TYPES = ("f32", "f16", "s8", "s16", "s32")


@dataclass(frozen=True)
class KernelTag:
    """An instruction-set extension generated kernels may use (the value of Kernel.isa)."""
    name: str    # also the suffix of the kernels' names (conv_..._avx2)
    guard: str   # preprocessor condition under which such kernels compile
    flags: str   # how to compile kernels.c for them (named by the #error when missing)
    header: str  # the intrinsics header they need


@dataclass(frozen=True)
class VectorSet:
    """The vector vocabularies of one element type on one level (None: portable C only)."""
    gemm: Optional[Simd] = None         # packed GEMM micro-kernels (conv, FC)
    direct: Optional[Simd] = None       # direct window kernels (depthwise, pooling)
    elementwise: Optional[Simd] = None  # element-wise operations and softmax
    math: Optional[VecOps] = None       # exp/tanh/... over the `elementwise` vocabulary


@dataclass(frozen=True)
class Core:
    """What the cost model (kernels/cost.py) assumes of the core a level runs on.

    Only ratios between candidates matter: costs are compared, never reported as time."""
    portable_conv: float       # cycles per multiply-add of the portable conv (im2col + GEMM)
    portable_depthwise: float  # ... of the scalar depthwise loop
    portable_fc: float         # ... of the dot-product FC
    fma_per_cycle: float       # vector FMAs a micro-kernel sustains per cycle (loads included)
    min_k_step: float          # cycles per k of the narrowest GEMM tiles (load-bound)
    stream_bytes: float        # bytes per cycle weights stream from memory
    # cycles per element of (a cheap operation, a libm call such as expf) in portable C and
    # in the vector kernels; None: element-wise ops have no vector kernels on this level
    elementwise_portable: Optional[Tuple[float, float]] = None
    elementwise_vector: Optional[Tuple[float, float]] = None


@dataclass(frozen=True)
class IsaSpec:
    name: str
    summary: str
    arch: str                           # "any", "x86_64", "armv7", "aarch64"
    features: frozenset = frozenset()   # CPU features required (/proc/cpuinfo names)
    cflags: Tuple[str, ...] = ()        # GCC/Clang flags that enable the level
    tags: Tuple[KernelTag, ...] = ()    # kernel tags (Kernel.isa) the level can run
    vectors: Dict[str, VectorSet] = field(default_factory=dict)  # by element type
    core: Optional[Core] = None         # None: only portable kernels, nothing to compare

    def has(self, tag: str) -> bool:
        """Whether kernels tagged `tag` ("" = portable C) run on this level."""
        return tag == "" or any(t.name == tag for t in self.tags)

    def vec(self, elem: str = "f32") -> VectorSet:
        """The vector vocabularies for one element type (empty if the level has none)."""
        if elem not in ELEMENT_TYPES:
            raise ValueError(f"unknown element type {elem!r}")
        return self.vectors.get(elem, NO_VECTORS)


NO_VECTORS = VectorSet()
