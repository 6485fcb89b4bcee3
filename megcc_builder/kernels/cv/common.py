"""What a CV implementation emits (a `CvFunction`: one public C function of tinycv.c) and
the C helpers several of them share (argument checks, rounding, borders).

Invalid arguments: MegCC's functions return void, so a TinyMat whose sizes or channels do
not fit is refused by TINYCV_CHECK: the function returns without writing to dst, after
calling TINYCV_ON_ERROR(function, condition), which by default is an assert (debug builds
stop at it; NDEBUG builds just return). Define TINYCV_ON_ERROR to log instead.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Tuple

from ...ir import Graph, Op
from ...ir.opdefs.cv import CV_DTYPES, CV_OPERATORS, CvOperator

Helper = Tuple[str, str]  # (name, C source); helpers listed before those using them


@dataclass
class CvFunction:
    op: CvOperator
    dtype: str          # "ui8", "f32", "f16"
    source: str         # the definition of op.symbol(dtype)
    helpers: Tuple[Helper, ...] = ()
    isa: str = ""       # kernel tag the source needs ("" = portable C99)
    note: str = ""
    impl: str = ""      # the registered implementation (set by registry.lower)

    @property
    def symbol(self) -> str:
        return self.op.symbol(self.dtype)


def request_of(op: Op, graph: Graph) -> Tuple[CvOperator, str]:
    """(operator, MegCC dtype suffix) of a TinyCV op."""
    cv_op = CV_OPERATORS[op.type.split(".", 1)[1]]
    ir_dtype = graph.tensors[op.inputs[0]].dtype
    return cv_op, next(k for k, v in CV_DTYPES.items() if v == ir_dtype)


def op_types(*names: str) -> List[str]:
    return [CV_OPERATORS[n].op_type for n in names]


def ir_dtypes(*suffixes: str) -> Tuple[str, ...]:
    return tuple(CV_DTYPES[s] for s in suffixes)


def function(op: Op, graph: Graph, body: str, helpers: Tuple[Helper, ...] = (),
             isa: str = "") -> List[CvFunction]:
    """The CvFunction of `op` whose body is `body` (C statements; `FN` in it is the
    function's name as a string literal, for TINYCV_CHECK)."""
    cv_op, dtype = request_of(op, graph)
    body = re.sub(r"\bFN\b", f'"{cv_op.symbol(dtype)}"', body)
    source = f"{cv_op.prototype(dtype)}\n{{\n{body.strip(chr(10))}\n}}\n"
    return [CvFunction(cv_op, dtype, source, (CHECKS,) + tuple(helpers), isa)]


CHECKS = ("tinycv_valid", r"""
#ifndef TINYCV_ON_ERROR
#include <assert.h>
/* Debug builds stop here; NDEBUG builds return without writing dst. */
#define TINYCV_ON_ERROR(function, condition) assert(!"tinycv: invalid argument")
#endif
#define TINYCV_CHECK(function, condition) \
    do { if (!(condition)) { TINYCV_ON_ERROR(function, #condition); return; } } while (0)
/* Largest rows / cols: coordinates stay exact in int arithmetic (fixed point x 1024). */
#define TINYCV_MAX_DIM ((size_t)1 << 20)

static int tinycv_valid(const TinyMat* m, size_t max_channels)
{
    return m != NULL && m->data != NULL && m->rows > 0 && m->cols > 0 &&
           m->rows <= TINYCV_MAX_DIM && m->cols <= TINYCV_MAX_DIM && m->channels > 0 &&
           m->channels <= max_channels;
}
""")

# OpenCV's cvRound / saturate_cast<int>(double): round half to even (lrint in the default
# rounding mode), written out so bare-metal builds need no lrint. x - floor(x) is exact, so
# the halfway test is too (floor(x + 0.5) would round x + 0.5 first).
ROUND = ("tinycv_round", r"""
static int tinycv_round(double x)
{
    const double r = floor(x), f = x - r;
    if (r >= 2147483647.0) return 2147483647;
    if (r < -2147483648.0) return (-2147483647 - 1);
    {
        int i = (int)r;
        if (f > 0.5 || (f == 0.5 && (i & 1))) ++i;
        return i;
    }
}
""")

SAT_U8 = ("tinycv_sat_u8", r"""
static uint8_t tinycv_sat_u8(int v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}
""")

# OpenCV's borderInterpolate: the source index of p in [0, len), -1 for BORDER_CONSTANT
BORDER = ("tinycv_border", r"""
enum { TINYCV_BORDER_CONSTANT = 0, TINYCV_BORDER_REPLICATE = 1, TINYCV_BORDER_REFLECT = 2,
       TINYCV_BORDER_REFLECT_101 = 4 };

static int tinycv_border(int p, int len, int border)
{
    if ((unsigned)p < (unsigned)len) return p;
    if (border == TINYCV_BORDER_REPLICATE) return p < 0 ? 0 : len - 1;
    if (border == TINYCV_BORDER_CONSTANT) return -1;
    if (len == 1) return 0;
    {
        int delta = border == TINYCV_BORDER_REFLECT_101;
        do {
            p = p < 0 ? -p - 1 + delta : len - 1 - (p - len) - delta;
        } while ((unsigned)p >= (unsigned)len);
    }
    return p;
}
""")
