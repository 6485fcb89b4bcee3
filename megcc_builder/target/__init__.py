"""Targets' instruction sets: one description per ISA level (isa.py), the levels (x86.py,
arm.py, portable.py) and how a level is chosen (levels.py)."""
from .isa import Core, IsaSpec, KernelTag, VectorSet  # noqa: F401
from .levels import LEVELS, host_level, kernel_tag, resolve, spec  # noqa: F401
