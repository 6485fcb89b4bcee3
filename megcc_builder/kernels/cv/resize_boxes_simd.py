"""crop_and_resize and letterbox with the AVX2 and NEON resize cores: the portable
functions (boxes_generic) calling the vector ISA's strided core, so they are bit-identical
to the portable ones and as fast as resize_linear on the same ISA."""
from __future__ import annotations

from ...ir import Graph, Op
from ..registry import implements
from .boxes_generic import crop_and_resize_function, letterbox_function
from .common import ir_dtypes, op_types
from .resize_linear_avx2_f32 import AVX2_F32_CORE
from .resize_linear_avx2_ui8 import AVX2_U8_CORE, avx2_cost
from .resize_linear_neon_f32 import NEON_F32_CORE
from .resize_linear_neon_ui8 import NEON_U8_CORE, neon_cost

AVX2_CORES = {"ui8": AVX2_U8_CORE, "f32": AVX2_F32_CORE}
NEON_CORES = {"ui8": NEON_U8_CORE, "f32": NEON_F32_CORE}


@implements(*op_types("crop_and_resize"), dtypes=ir_dtypes("ui8", "f32"), requires="avx2",
            cost=avx2_cost, label="AVX2")
def emit_crop_and_resize_avx2(op: Op, graph: Graph):
    return crop_and_resize_function(op, graph, AVX2_CORES, "avx2")


@implements(*op_types("letterbox"), dtypes=ir_dtypes("ui8", "f32"), requires="avx2",
            cost=avx2_cost, label="AVX2")
def emit_letterbox_avx2(op: Op, graph: Graph):
    return letterbox_function(op, graph, AVX2_CORES, "avx2")


@implements(*op_types("crop_and_resize"), dtypes=ir_dtypes("ui8", "f32"), requires="neon",
            cost=neon_cost, label="NEON")
def emit_crop_and_resize_neon(op: Op, graph: Graph):
    return crop_and_resize_function(op, graph, NEON_CORES, "neon")


@implements(*op_types("letterbox"), dtypes=ir_dtypes("ui8", "f32"), requires="neon",
            cost=neon_cost, label="NEON")
def emit_letterbox_neon(op: Op, graph: Graph):
    return letterbox_function(op, graph, NEON_CORES, "neon")
