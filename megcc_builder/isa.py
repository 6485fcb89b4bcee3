"""Target ISA levels: which kernel families a build may use.

The level is chosen per build (it is a property of the whole kernels.c, which must then be
compiled with matching flags) and travels with the graph into lowering:

    generic     portable C99 only (every target; the default of `megcc compile`)
    x86_64      x86-64 baseline (SSE2): portable C, which the C compiler vectorises
    x86_64-v3   AVX2 + FMA kernels (`*_avx2`): compile kernels.c with -mavx2 -mfma
                (or -march=x86-64-v3 / -march=native on such a machine)
    x86_64-v4   AVX-512 machines: accepted, uses the AVX2+FMA kernels (a subset of v4);
                there are no 512-bit kernels yet
    armv7-neon  32-bit Arm with NEON and VFPv4 (fused multiply-add): `*_neon` kernels;
                compile with -mfpu=neon-vfpv4 -mfloat-abi=hard (toolchains/armv7.json)
    arm64-neon  AArch64 (Advanced SIMD is architectural): the `*_neon` kernels plus the
                ones that need AArch64's 32 vector registers (`neon64`)
    native      the best level this machine supports (host builds: tests, `megcc run`)

Kernels of a level announce it in `Kernel.isa`; kernels.c then refuses (#error) to compile
without the matching instruction set, instead of failing with obscure intrinsic errors or
crashing at run time.
"""
from __future__ import annotations

import os
import platform
from typing import FrozenSet

LEVELS = ("generic", "x86_64", "x86_64-v3", "x86_64-v4", "armv7-neon", "arm64-neon")
ALIASES = {"native": None, "host": None, "portable": "generic", "avx2": "x86_64-v3"}

# The CPU features each level requires (names as in /proc/cpuinfo).
FEATURES = {"generic": frozenset(), "x86_64": frozenset({"sse2"}),
            "x86_64-v3": frozenset({"sse2", "avx", "avx2", "fma"}),
            "x86_64-v4": frozenset({"sse2", "avx", "avx2", "fma", "avx512f", "avx512bw",
                                    "avx512dq", "avx512vl"}),
            # /proc/cpuinfo "Features" names on Arm
            "armv7-neon": frozenset({"neon", "vfpv4"}),
            "arm64-neon": frozenset({"asimd"})}

# Preprocessor test and compile flags for the kernel ISA tags (Kernel.isa).
KERNEL_ISA_GUARD = {
    "avx2": ("defined(__AVX2__) && defined(__FMA__)", "-mavx2 -mfma (or -march=x86-64-v3)"),
    "neon": ("defined(__ARM_NEON) && defined(__ARM_FEATURE_FMA)",
             "NEON with FMA (AArch64, or ARMv7 with -mfpu=neon-vfpv4 -mfloat-abi=hard)"),
    "neon64": ("defined(__ARM_NEON) && defined(__aarch64__)", "an AArch64 target"),
}


def _cpu_flags() -> FrozenSet[str]:
    try:
        with open("/proc/cpuinfo", "r", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def host_level() -> str:
    """The best level the build machine can run (what `native` means)."""
    machine = platform.machine().lower()
    flags = _cpu_flags()
    if machine in ("aarch64", "arm64"):
        return "arm64-neon"
    if machine.startswith("armv7"):
        return "armv7-neon" if FEATURES["armv7-neon"] <= flags else "generic"
    if machine not in ("x86_64", "amd64"):
        return "generic"
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


def has_neon(level: str) -> bool:
    """NEON with fused multiply-add (the `neon` kernels)."""
    return level in ("armv7-neon", "arm64-neon")


def is_aarch64(level: str) -> bool:
    """AArch64's 32 vector registers and lane-indexed FMA (the `neon64` kernels)."""
    return level == "arm64-neon"
