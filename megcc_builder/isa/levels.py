"""The ISA levels a build can choose, and how a user's name for one is resolved.

    generic     portable C99 only (every target; the default of `megcc compile`)
    x86_64      x86-64 baseline (SSE2): portable C, which the C compiler vectorises
    x86_64-v3   AVX2 + FMA kernels (`*_avx2`)
    x86_64-v4   AVX-512 machines: the AVX2 + FMA kernels (no 512-bit kernels yet)
    x86_64-vnni AVX-512 + VNNI: x86_64-v4's kernels and int8 ones on vpdpbusd (`*_vnni`)
    armv7-neon  32-bit Arm with NEON and VFPv4: `*_neon` kernels
    arm64-neon  AArch64: the `*_neon` kernels plus the `*_neon64` ones
    arm64-fp16  Armv8.2-A + FP16: arm64-neon's kernels and float16 arithmetic (enable_ioc16)
    arm64-fp16fml  arm64-fp16 + FHM: its float16 conv/FC kernels accumulate in float32 (FMLAL)
    arm64-dot   Armv8.2-A + dot product: arm64-neon's kernels and int8 ones on sdot
                (enable_nchw44_dot)
    arm64-dotfp16  both of the above (a build host with both picks it as native)
    arm64-i8mm  Armv8.6-A + i8mm (and dot product, FP16): arm64-dotfp16's kernels and int8
                ones on smmla
    cortex-m-dsp  Cortex-M4/M7/M33 (DSP extension): int8 kernels on SMLAD (toolchain cortex-m4)
    cortex-m-mve  Cortex-M55/M85 (Helium): the DSP kernels and int8 ones on MVE (cortex-m55)
    native      the best level this machine supports (host builds: tests, `megcc run`)

Nothing here reads the environment: the CLI, SCons and CMake decide which level a build
gets ($MEGCC_ISA is the CLI's default).
"""
from __future__ import annotations

import os
import platform
from typing import Dict, FrozenSet, List, Optional

from . import arm, portable, x86
from .description import IsaSpec, KernelTag


SPECS: Dict[str, IsaSpec] = {s.name: s for s in (
    portable.GENERIC, x86.X86_64, x86.X86_64_V3, x86.X86_64_V4, x86.X86_64_VNNI,
    arm.ARMV7_NEON, arm.ARM64_NEON, arm.ARM64_FP16, arm.ARM64_FP16FML, arm.ARM64_DOT,
    arm.ARM64_DOT_FP16, arm.ARM64_I8MM, arm.CORTEX_M_DSP,
    arm.CORTEX_M_MVE)}
LEVELS = tuple(SPECS)
ALIASES = {"native": None, "host": None, "portable": "generic", "avx2": "x86_64-v3"}


def spec(level: str) -> IsaSpec:
    """The description of a resolved level name; KeyError if unknown."""
    return SPECS[level]


def kernel_tag(name: str) -> KernelTag:
    """The description of a kernel tag (Kernel.isa) some level enables."""
    for s in SPECS.values():
        for t in s.tags:
            if t.name == name:
                return t
    raise KeyError(f"no ISA level has the kernel tag {name!r}")


def f32_vocabularies() -> List:
    """Every distinct f32 vector vocabulary of any level, in a fixed order (emit/ lists
    their shared helpers)."""
    out: List = []
    for s in SPECS.values():
        vs = s.vec("f32")
        for v in (vs.gemm, vs.direct, vs.elementwise):
            if v is not None and v not in out:
                out.append(v)
    return out


def _cpu_flags() -> FrozenSet[str]:
    try:
        with open("/proc/cpuinfo", "r", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _host_arch() -> str:
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return "aarch64"
    if machine.startswith("armv7"):
        return "armv7"
    return "x86_64" if machine in ("x86_64", "amd64") else ""


def under_valgrind() -> bool:
    """MEGCC_VALGRIND=1: host runners run under valgrind memcheck (host.py)."""
    return os.environ.get("MEGCC_VALGRIND", "") not in ("", "0")


def host_level() -> str:
    """The best level the build machine can run (what `native` means): of the levels of
    its architecture whose CPU features it has, the last listed in SPECS (each family lists
    its levels in increasing order); generic if none."""
    arch, flags = _host_arch(), _cpu_flags()
    if arch == "aarch64":  # Advanced SIMD is architectural: no need to read the flags
        flags = flags | {"asimd"}
    if under_valgrind():  # valgrind does not decode AVX-512 (host.py runs runners in it)
        flags = frozenset(f for f in flags if not f.startswith("avx512"))
    best = "generic"
    for s in SPECS.values():
        if s.arch == arch and s.features <= flags:
            best = s.name
    return best


def host_refusal(level: str) -> Optional[str]:
    """Why kernels of a resolved level cannot run on the build machine (None: they can):
    another architecture, or CPU features it lacks."""
    s = SPECS[level]
    arch = _host_arch()
    if s.arch not in ("any", arch):
        return (f"ISA level {level} builds kernels for {s.arch}; this machine is "
                f"{arch or platform.machine() or 'unknown'}")
    missing = s.features - (_cpu_flags() | ({"asimd"} if arch == "aarch64" else set()))
    if missing:
        return (f"this machine's CPU lacks {', '.join(sorted(missing))}, which ISA level "
                f"{level} needs")
    return None


def resolve(level: Optional[str]) -> str:
    """A level name as a user writes it (None: generic; 'native': this machine's best);
    ValueError if unknown."""
    level = (level or "generic").strip().lower()
    if level in ALIASES:
        level = ALIASES[level] or host_level()
    if level not in SPECS:
        raise ValueError(f"unknown ISA level '{level}' (known: {', '.join(LEVELS)}, native)")
    return level
