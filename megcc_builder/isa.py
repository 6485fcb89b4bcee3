"""Target ISA levels: which kernel families a build may use.

The level is chosen per build (it is a property of the whole kernels.c, which must then be
compiled with matching flags) and travels with the graph into lowering:

    generic     portable C99 only (every target; the default of `megcc compile`)
    x86_64      x86-64 baseline (SSE2): portable C, which the C compiler vectorises
    x86_64-v3   AVX2 + FMA kernels (`*_avx2`): compile kernels.c with -mavx2 -mfma
                (or -march=x86-64-v3 / -march=native on such a machine)
    x86_64-v4   AVX-512 machines: accepted, uses the AVX2+FMA kernels (a subset of v4);
                there are no 512-bit kernels yet
    native      the best level this machine supports (host builds: tests, `megcc run`)

Kernels of a level announce it in `Kernel.isa`; kernels.c then refuses (#error) to compile
without the matching instruction set, instead of failing with obscure intrinsic errors or
crashing at run time.
"""
from __future__ import annotations

import os
import platform
from typing import FrozenSet

LEVELS = ("generic", "x86_64", "x86_64-v3", "x86_64-v4")
ALIASES = {"native": None, "host": None, "portable": "generic", "avx2": "x86_64-v3"}

# The CPU features each level requires (names as in /proc/cpuinfo).
FEATURES = {"generic": frozenset(), "x86_64": frozenset({"sse2"}),
            "x86_64-v3": frozenset({"sse2", "avx", "avx2", "fma"}),
            "x86_64-v4": frozenset({"sse2", "avx", "avx2", "fma", "avx512f", "avx512bw",
                                    "avx512dq", "avx512vl"})}

# Preprocessor test and compile flags for the kernel ISA tags (Kernel.isa).
KERNEL_ISA_GUARD = {
    "avx2": ("defined(__AVX2__) && defined(__FMA__)", "-mavx2 -mfma (or -march=x86-64-v3)"),
}


def _cpu_flags() -> FrozenSet[str]:
    try:
        with open("/proc/cpuinfo", "r", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def host_level() -> str:
    """The best level the build machine can run (what `native` means)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "generic"
    flags = _cpu_flags()
    best = "x86_64"
    for level in ("x86_64-v3", "x86_64-v4"):
        if FEATURES[level] <= flags:
            best = level
    return best


def resolve(level: str | None) -> str:
    """A level name from a user/option (None: $MEGCC_ISA or generic); ValueError if unknown."""
    if level is None:
        level = os.environ.get("MEGCC_ISA", "generic")
    level = level.strip().lower()
    if level in ALIASES:
        level = ALIASES[level] or host_level()
    if level not in LEVELS:
        raise ValueError(f"unknown ISA level '{level}' (known: {', '.join(LEVELS)}, native)")
    return level


def has_avx2(level: str) -> bool:
    return level in ("x86_64-v3", "x86_64-v4")
