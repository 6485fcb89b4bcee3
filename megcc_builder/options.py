"""Compile options: one object that travels through the pipeline, frontend to emit.

Only the CLI, the config reader, SCons and CMake build it from what a user wrote (flags,
JSON/YAML, $MEGCC_ISA); below them nothing reads the environment or looks for options on
the IR. Every field changes the generated files, so every field is part of a build's
signature (the build systems put the flags that set them on the compiler's command line).
"""
from __future__ import annotations

from dataclasses import dataclass

from .isa import IsaSpec, resolve, spec


@dataclass(frozen=True)
class CompileOptions:
    isa: str = "generic"          # an ISA level (isa.levels; "native": this machine's best)
    fuse: bool = True             # fuse bias/activation and element-wise chains (passes/fuse.py)
    enable_nchw44: bool = False   # run the conv region in NCHW44 (passes/layout_nchw44.py)
    # store conv/GEMM weights as float16, widened in the kernels (passes/compress_fp16.py)
    enable_compress_fp16: bool = False
    # compute fully-connected layers in float16 (passes/ioc16.py; levels with f16 arithmetic)
    enable_ioc16: bool = False
    # MegCC's enable_nchw44_dot: NCHW44 with Armv8.2 dot-product kernels; only levels that
    # have the instructions accept it (dot_product_refusal)
    enable_nchw44_dot: bool = False
    # requantize integer convolutions / matrix products in fixed point (Q31 multiplier and
    # shift, no float unit needed: microcontrollers; passes/fixed_requant.py)
    enable_fixed_point_requant: bool = False
    # run the float16 region of enable_ioc16 in NCHW88 (passes/layout_nchw44.layout_nchw88);
    # needs enable_ioc16 and a level with float16 arithmetic (nchw88_refusal)
    enable_nchw88: bool = False
    # the most threads the compiled model will run on (0: any). Kernels with a workspace
    # area per part (codegen/parallel.scratch_parts) size that many areas, at most
    # MAX_SCRATCH_PARTS, and never make more parts whatever threads the network has;
    # 1 also drops the threaded GEMM's larger packed-B area (outputs are the same)
    max_threads: int = 0

    def __post_init__(self):
        object.__setattr__(self, "isa", resolve(self.isa))  # ValueError if unknown
        if isinstance(self.max_threads, bool) or not isinstance(self.max_threads, int) \
                or self.max_threads < 0:
            raise ValueError(f"max_threads must be a whole number >= 1 (0: any), not "
                             f"{self.max_threads!r}")

    @property
    def nchw44(self) -> bool:
        """Whether the conv region runs in NCHW44 (either option asks for it)."""
        return self.enable_nchw44 or self.enable_nchw44_dot

    @property
    def isa_spec(self) -> IsaSpec:
        return spec(self.isa)

    @property
    def workspace_threads(self) -> int:
        """The thread count the kernels size their per-thread areas for (graph.max_threads):
        max_threads; unset, 1 on the Cortex-M levels (bare metal: the runtime has no pool
        there), else 0 (any). (The portable level also builds for bare metal, but for
        hosted targets too: there only an explicit max_threads=1 shrinks the workspace.)"""
        if self.max_threads:
            return self.max_threads
        return 1 if self.isa_spec.arch == BARE_METAL_ARCH else 0


# the architecture of the ISA levels that only build for bare metal (isa/arm.py)
BARE_METAL_ARCH = "cortex-m"

# /proc/cpuinfo's name of the Armv8.2 dot-product extension (sdot/udot)
DOT_PRODUCT_FEATURE = "asimddp"


def dot_product_refusal(level: str) -> str:
    """Why enable_nchw44_dot cannot build for ISA level `level` ("" if it can)."""
    if DOT_PRODUCT_FEATURE in spec(level).features:
        return ""
    return (f"option enable_nchw44_dot needs the Armv8.2 dot-product instructions (sdot/udot), "
            f"which ISA level '{level}' does not have")


def nchw88_refusal(level: str, enable_ioc16: bool) -> str:
    """Why enable_nchw88 cannot build for ISA level `level` ("" if it can). NCHW88 is the
    float16 layout (MegCC's): it only exists for float16 compute, so it needs enable_ioc16,
    and a level with float16 arithmetic."""
    if spec(level).vec("f16").gemm is None:
        return (f"option enable_nchw88 computes in float16, and ISA level '{level}' has no "
                "float16 arithmetic (Armv8.2-A with FP16 has: --isa arm64-fp16)")
    if not enable_ioc16:
        return ("option enable_nchw88 is the layout of float16 compute: it needs "
                "enable_ioc16 too")
    return ""
