"""Instruction-set levels: what one is (description.py: IsaSpec), the levels themselves
(portable.py, x86.py, arm.py) and how a build's level is chosen (levels.py). Toolchains
(targets.py, toolchains/*.json) name the level their builds use."""
from .description import Core, IsaSpec, KernelTag, VectorSet  # noqa: F401
from .levels import LEVELS, host_level, kernel_tag, resolve, spec  # noqa: F401
