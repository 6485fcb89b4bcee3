"""The Arm levels: ARMv7 with NEON + VFPv4, and AArch64 (Advanced SIMD is architectural).

- armv7-neon: `*_neon` kernels; 16 q registers, a 6x8 GEMM tile (12 accumulators, 2 for B,
  1 broadcast of A);
- arm64-neon: the `*_neon` kernels plus the ones that need AArch64's 32 vector registers
  (`*_neon64`): an 8x12 GEMM tile (24 accumulators, 3 for B, 2 vectors of A) whose FMAs take
  their A operand from a vector lane (`vfmaq_laneq_f32`), so no broadcasts; vector division.

The cost constants are estimates for Cortex-A-class cores, not measurements: NEON kernels
only run under qemu here, which does not model timing.
"""
from __future__ import annotations

from ..codegen.vector import Simd, VecOps
from .description import Core, IsaSpec, KernelTag, VectorSet


NEON_TAG = KernelTag("neon", "defined(__ARM_NEON) && defined(__ARM_FEATURE_FMA)",
                     "NEON with FMA (AArch64, or ARMv7 with -mfpu=neon-vfpv4 -mfloat-abi=hard)",
                     "arm_neon.h")
NEON64_TAG = KernelTag("neon64", "defined(__ARM_NEON) && defined(__aarch64__)",
                       "an AArch64 target", "arm_neon.h")

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

_NEON_COMMON = dict(
    itype="int32x4_t", _fma="vfmaq_f32({c}, {a}, {b})", _sub="vsubq_f32({a}, {b})",
    _as_i="vreinterpretq_s32_f32({0})", _as_f="vreinterpretq_f32_s32({0})",
    _add_i="vaddq_s32({0}, {1})", _sub_i="vsubq_s32({0}, {1})", _set1_i="vdupq_n_s32({0})",
    _srai1="vshrq_n_s32({0}, 1)", _shl23="vshlq_n_s32({0}, 23)",
    # NEON max/min return NaN when an operand is NaN
    _clamp="vminq_f32(vmaxq_f32({0}, {1}), {2})", _abs="vabsq_f32({0})", _neg="vnegq_f32({0})",
    _lt="vcltq_f32({0}, {1})", _ge="vcgeq_f32({0}, {1})", _gt="vcgtq_f32({0}, {1})",
    _select="vbslq_f32({0}, {1}, {2})",
    _copysign="vbslq_f32(vdupq_n_u32(0x80000000u), {1}, {0})",
    _max="vmaxq_f32({0}, {1})", _min="vminq_f32({0}, {1})",
    _relu="vmaxq_f32({0}, vdupq_n_f32(0.0f))",
    _mant="vreinterpretq_f32_u32(vorrq_u32(vandq_u32(vreinterpretq_u32_f32({0}), "
          "vdupq_n_u32(0x807fffffu)), vdupq_n_u32(0x3f000000u)))",
    _expo="vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_f32({0}), 23))",
    _i2f="vcvtq_f32_s32({0})", _eq="vceqq_f32({0}, {1})", mtype="uint32x4_t")
NEON_MATH = VecOps(NEON, _div="", **_NEON_COMMON)
NEON64_MATH = VecOps(NEON64, _div="vdivq_f32({a}, {b})", **_NEON_COMMON)


# AArch64 (A72/A76): two 128-bit FMA pipes, assumed used as efficiently as on x86 (one FMA
# per cycle: the 8x12 tile's 24 FMAs in ~24 cycles per k); portable C is auto-vectorised 4
# wide, so it loses more to the packed GEMM than on x86.
ARM64_CORE = Core(portable_conv=0.55, portable_depthwise=1.2, portable_fc=0.6,
                  fma_per_cycle=1.0, min_k_step=3.0, stream_bytes=8.0,
                  elementwise_portable=(0.25, 20.0), elementwise_vector=(0.25, 3.0))
# ARMv7 builds run on 32-bit cores (Cortex-A7/A9/A53 in AArch32) with a 64-bit NEON datapath:
# a 128-bit FMA issues every other cycle, and memory is slower. Its portable float code is
# scalar VFP (GCC does not vectorise float code for ARMv7 NEON), so every vector op pays.
ARMV7_CORE = Core(portable_conv=0.9, portable_depthwise=2.0, portable_fc=1.0,
                  fma_per_cycle=0.5, min_k_step=6.0, stream_bytes=4.0,
                  elementwise_portable=(1.0, 40.0), elementwise_vector=(0.3, 6.0))

ARMV7_NEON = IsaSpec("armv7-neon", "32-bit Arm with NEON and VFPv4 (*_neon kernels)", "armv7",
                     frozenset({"neon", "vfpv4"}),
                     ("-march=armv7-a", "-mfpu=neon-vfpv4", "-mfloat-abi=hard"), (NEON_TAG,),
                     {"f32": VectorSet(gemm=NEON, direct=NEON, elementwise=NEON,
                                       math=NEON_MATH)}, ARMV7_CORE)
ARM64_NEON = IsaSpec("arm64-neon", "AArch64 (*_neon and *_neon64 kernels)", "aarch64",
                     frozenset({"asimd"}), ("-march=armv8-a",), (NEON_TAG, NEON64_TAG),
                     {"f32": VectorSet(gemm=NEON64, direct=NEON, elementwise=NEON64,
                                       math=NEON64_MATH)}, ARM64_CORE)


# Armv8.2-A with half-precision arithmetic (FEAT_FP16: Cortex-A55/A75 and later): the
# arm64-neon kernels, plus float16 ones (`*_neon64fp16`, enable_ioc16) whose FMAs work on 8
# halves per register (`fmla v.8h`). The f16 vocabularies say which float16 kernel families
# the level has (conv/FC `gemm`, depthwise/pooling `direct`, `elementwise`/softmax); those
# kernels are written for this one spelling (kernels/**/*_neon64fp16_f16.py).
NEON64_FP16_TAG = KernelTag("neon64fp16", "defined(__ARM_NEON) && defined(__aarch64__) && "
                            "defined(__ARM_FEATURE_FP16_VECTOR_ARITHMETIC)",
                            "-march=armv8.2-a+fp16", "arm_neon.h")
NEON64_F16 = Simd("neon64fp16", "neon64fp16", "NEON fp16", 8, "float16x8_t", 8, 16, True,
                  "vdupq_n_f16(0)", "vld1q_f16({p})", "vst1q_f16({p}, {v})", "vdupq_n_f16({x})",
                  "vld1q_dup_f16({p})", "vfmaq_f16({c}, {a}, {b})", "vaddq_f16({a}, {b})",
                  "vmaxq_f16({a}, {b})", "vminq_f16({a}, {b})", "vld2q_f16({p}).val[0]", True,
                  _mul="vmulq_f16({a}, {b})", _odd="vld2q_f16({p}).val[1]")
ARM64_FP16 = IsaSpec("arm64-fp16", "Armv8.2-A + FP16: the arm64-neon kernels and float16 "
                     "arithmetic (*_neon64fp16 kernels, enable_ioc16)", "aarch64",
                     frozenset({"asimd", "fphp", "asimdhp"}), ("-march=armv8.2-a+fp16",),
                     (NEON_TAG, NEON64_TAG, NEON64_FP16_TAG),
                     {"f32": ARM64_NEON.vectors["f32"], "f16": VectorSet(gemm=NEON64_F16, direct=NEON64_F16,
                                                                   elementwise=NEON64_F16)},
                     ARM64_CORE)


# Armv8.2-A + FP16 + FHM (FEAT_FHM, /proc/cpuinfo `asimdfhm`: Cortex-A55/A76 and later,
# Neoverse N1): arm64-fp16's kernels, with the float16 convolutions (packed GEMM, direct
# 3x3) and FC layers accumulating in float32 through the widening FMAs FMLAL/FMLAL2
# (vfmlalq_*_f16: 4 float32 lanes per instruction, half fmla .8h's rate). The level is the
# accumulation choice: arm64-fp16 accumulates in float16 (faster, an error that grows with
# the reduction length K), arm64-fp16fml in float32 (docs/float16.md has the measured error).
NEON64_FP16FML_TAG = KernelTag("neon64fp16fml", "defined(__ARM_NEON) && defined(__aarch64__) && "
                               "defined(__ARM_FEATURE_FP16_VECTOR_ARITHMETIC) && "
                               "defined(__ARM_FEATURE_FP16_FML)",
                               "-march=armv8.2-a+fp16+fp16fml", "arm_neon.h")
ARM64_FP16FML = IsaSpec("arm64-fp16fml", "Armv8.2-A + FP16 + FHM: arm64-fp16's kernels, the "
                        "float16 convolutions and FC accumulating in float32 (FMLAL)",
                        "aarch64", ARM64_FP16.features | {"asimdfhm"},
                        ("-march=armv8.2-a+fp16+fp16fml",),
                        ARM64_FP16.tags + (NEON64_FP16FML_TAG,), dict(ARM64_FP16.vectors),
                        ARM64_CORE)


def accumulates_f16_in_f32(isa) -> bool:
    """Whether the level's float16 conv/FC kernels accumulate in float32 (FMLAL)."""
    return "asimdfhm" in isa.features

# Armv8.2-A with the dot-product extension (FEAT_DotProd, /proc/cpuinfo `asimddp`:
# Cortex-A55/A75/A76 and later): the arm64-neon kernels plus int8 ones (`*_neon64dot`) on
# `sdot` (vdotq_laneq_s32: four 4-way int8 dot products into int32 lanes per instruction),
# MegCC's enable_nchw44_dot. No float16 arithmetic is assumed (that is arm64-fp16).
NEON64_DOT_TAG = KernelTag("neon64dot", "defined(__ARM_NEON) && defined(__aarch64__) && "
                           "defined(__ARM_FEATURE_DOTPROD)", "-march=armv8.2-a+dotprod",
                           "arm_neon.h")
ARM64_DOT = IsaSpec("arm64-dot", "Armv8.2-A + dot product: the arm64-neon kernels and int8 "
                    "ones on sdot (*_neon64dot kernels, enable_nchw44_dot)", "aarch64",
                    frozenset({"asimd", "asimddp"}), ("-march=armv8.2-a+dotprod",),
                    (NEON_TAG, NEON64_TAG, NEON64_DOT_TAG),
                    {"f32": ARM64_NEON.vectors["f32"]}, ARM64_CORE)


# Armv8.2-A with both the dot product and FP16 (Cortex-A55/A75/A76/A78, Neoverse N1...: most
# cores with one have the other): arm64-dot's kernels and arm64-fp16's together, so a build
# host with asimddp and asimdhp keeps its float16 kernels when `native` picks this level.
ARM64_DOT_FP16 = IsaSpec("arm64-dotfp16", "Armv8.2-A + dot product + FP16: arm64-dot's int8 "
                         "and arm64-fp16's float16 kernels", "aarch64",
                         ARM64_DOT.features | ARM64_FP16.features,
                         ("-march=armv8.2-a+fp16+dotprod",),
                         (NEON_TAG, NEON64_TAG, NEON64_FP16_TAG, NEON64_DOT_TAG),
                         {"f32": ARM64_NEON.vectors["f32"], "f16": ARM64_FP16.vectors["f16"]},
                         ARM64_CORE)


# Armv8.6-A int8 matrix multiply (FEAT_I8MM, /proc/cpuinfo `i8mm`: Cortex-A510/A710/X2,
# Neoverse V1/N2 and later, which all have the dot product and FP16 too): arm64-dotfp16's
# kernels plus int8 ones on `smmla` (`*_neon64i8mm`: vmmlaq_s32, a 2 x 8 by 8 x 2 int8
# product into a 2 x 2 int32 block, 32 multiply-adds per instruction).
NEON64_I8MM_TAG = KernelTag("neon64i8mm", "defined(__ARM_NEON) && defined(__aarch64__) && "
                            "defined(__ARM_FEATURE_MATMUL_INT8)", "-march=armv8.6-a+i8mm",
                            "arm_neon.h")
ARM64_I8MM = IsaSpec("arm64-i8mm", "Armv8.6-A + i8mm (with dot product and FP16): "
                     "arm64-dotfp16's kernels and int8 ones on smmla (*_neon64i8mm kernels)",
                     "aarch64", ARM64_DOT_FP16.features | {"i8mm"},
                     ("-march=armv8.2-a+fp16+dotprod+i8mm",),
                     ARM64_DOT_FP16.tags + (NEON64_I8MM_TAG,),
                     dict(ARM64_DOT_FP16.vectors), ARM64_CORE)


# Cortex-M (bare metal, toolchains/cortex-m4.json, cortex-m55.json). No float vectors: the
# float kernels stay portable C (scalar FPU code); the int8 kernels get their own code.
# - cortex-m-dsp: the Armv7E-M / Armv8-M DSP extension (Cortex-M4, M7, M33, M55):
#   `*_dsp` kernels on SMLAD (two 16 x 16 multiply-adds into a 32-bit sum per instruction)
#   with SXTB16 to widen int8 pairs (arm_acle.h's __smlad, __sxtb16).
# - cortex-m-mve: Armv8.1-M Helium (M-profile Vector Extension: Cortex-M55, M85): the
#   `*_dsp` kernels plus `*_mve` ones on 128-bit vectors (arm_mve.h: vmladavaq_s8 sums 16
#   int8 products into a scalar, vmlaq_n_s32 on 4 int32 lanes, tail predication).
# -mcpu= names the core, so these levels add no flag of their own (the toolchain's -mcpu
# enables them; kernels.c's guard checks the ACLE macros).
CORTEX_M_DSP_TAG = KernelTag("dsp", "defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32)",
                             "-mcpu=cortex-m4 (or another core with the DSP extension)",
                             "arm_acle.h")
CORTEX_M_MVE_TAG = KernelTag("mve", "defined(__ARM_FEATURE_MVE)",
                             "-mcpu=cortex-m55 (or another core with Helium)", "arm_mve.h")
# Scalar cores: the float kernels are portable C on one FPU pipe (only ratios matter; the
# int8 kernels' costs are in the portable kernel's units, kernels/quant/conv_dsp_s8.py).
CORTEX_M_CORE = Core(portable_conv=1.0, portable_depthwise=1.0, portable_fc=1.0,
                     fma_per_cycle=0.5, min_k_step=8.0, stream_bytes=2.0)
CORTEX_M_DSP = IsaSpec("cortex-m-dsp", "Cortex-M with the DSP extension (M4, M7, M33): int8 "
                       "kernels on SMLAD (*_dsp)", "cortex-m", frozenset({"dsp"}), (),
                       (CORTEX_M_DSP_TAG,), {}, CORTEX_M_CORE)
CORTEX_M_MVE = IsaSpec("cortex-m-mve", "Cortex-M with Helium (M55, M85): the *_dsp kernels and "
                       "int8 kernels on MVE vectors (*_mve)", "cortex-m",
                       frozenset({"dsp", "mve"}), (), (CORTEX_M_DSP_TAG, CORTEX_M_MVE_TAG), {},
                       CORTEX_M_CORE)
