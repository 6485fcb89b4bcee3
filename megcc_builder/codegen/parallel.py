"""Kernels whose work is cut into independent parts run by the network's parallel-for
(runtime/include/megcc/parallel.h).

`split_kernel` turns a part body into a kernel: a static `<name>_part` function runs parts
[begin, end) with the kernel's arguments, its params and `part`/`parts` in scope; the kernel
itself computes how many parts to make and calls megcc_parallel_for (with no pool, or one
part, the parts run in the calling thread, in order). A part must write only its own
outputs (and its own slice of the workspace), and compute each output element exactly as
the one-part kernel does, so the results are bitwise identical for every thread count.
"""
from __future__ import annotations

import re

from .kernel import KERNEL_ARG_NAMES, Kernel, make_kernel
from .params import NO_PARAMS, ParamSchema

# Kernels that need one scratch area per part (a padded plane) make at most this many
# parts: their workspace is this many areas whatever the thread count, unless the model is
# compiled for fewer threads (CompileOptions.max_threads, on the graph: scratch_parts).
MAX_SCRATCH_PARTS = 4


def scratch_parts(graph) -> int:
    """The most parts a kernel with a scratch area per part makes in this compile (and so
    how many areas its workspace holds): MAX_SCRATCH_PARTS, or fewer when the model is
    compiled for at most `graph.max_threads` threads (0: any number)."""
    most = graph.max_threads
    return min(MAX_SCRATCH_PARTS, most) if most else MAX_SCRATCH_PARTS


def scratch_tag(most: int) -> str:
    """Kernel-name suffix of a kernel built for at most `most` scratch parts: its C differs
    from the default one's, and two models of one build may be compiled for different
    thread counts (kernel names are unique in a kernel set)."""
    return "" if most == MAX_SCRATCH_PARTS else f"_t{most}"


def parts_with_scratch(limit: str = "", most: int = MAX_SCRATCH_PARTS) -> str:
    """C expression: the parts of a kernel with a scratch area per part (<= the pool's
    threads, <= `most` (scratch_parts), and <= `limit` if given)."""
    if most == 1:  # compiled for one thread: one part whatever the pool has
        return "1"
    most_c = f"(par && par->threads > 1 ? (par->threads < {most} ? par->threads : " \
             f"{most}) : 1)"
    return most_c if not limit else f"({most_c} < ({limit}) ? {most_c} : ({limit}))"


# Each part's scratch area starts a whole number of 128-byte blocks (two cache lines, the
# pair an adjacent-line prefetcher fetches) after the previous one. Packed end to end,
# neighbouring areas shared a line that both threads' padding copies wrote for every
# channel: a parallel depthwise convolution ran about 2x slower on two threads than on one.
SCRATCH_ALIGN_FLOATS = 32


def scratch_stride(floats: str) -> str:
    """C expression: the distance (in floats) between two parts' scratch areas of `floats`
    floats each."""
    a = SCRATCH_ALIGN_FLOATS
    return f"((int64_t)(({floats}) + {a - 1}) / {a} * {a})"


def scratch_bytes(parts, floats):
    """Workspace bytes for `parts` scratch areas of `floats` floats at scratch_stride
    (an upper bound when `floats` is only known at run time)."""
    a = SCRATCH_ALIGN_FLOATS
    stride = -(-floats // a) * a if isinstance(floats, int) else floats + (a - 1)
    return parts * stride * 4


# Element ranges shorter than this stay on one thread (memory-bound loops: waking the
# pool costs more than it saves below some hundred kilobytes).
MIN_RANGE_ELEMENTS = 1 << 16


def range_parts(n: str) -> str:
    """C expression: parts of a loop over `n` elements, one per thread when each gets at
    least MIN_RANGE_ELEMENTS / 2."""
    return (f"(par && par->threads > 1 && ({n}) >= {MIN_RANGE_ELEMENTS} ? par->threads : 1)")


def split_kernel(name: str, part_body: str, parts: str, params: ParamSchema = NO_PARAMS,
                 helpers: tuple = (), isa: str = "", prelude: str = "") -> Kernel:
    """The kernel running `part_body` for each part in [0, parts). part_body sees the kernel
    arguments but `par`, the params it names, `part` and `parts`; `parts` is a C expression
    over the params and `par`, at least 1."""
    body = part_body.rstrip() + "\n"
    arg_names = [a for a in KERNEL_ARG_NAMES if a != "par"]
    used = [a for a in arg_names if re.search(r"\b" + a + r"\b", body)]
    unpack_args = "".join(f"    {decl} = job->{a};\n" for a, decl in (
        ("in_ptrs", "void *const *in_ptrs"), ("out_ptrs", "void *const *out_ptrs"),
        ("p", "const int32_t *p"), ("workspace", "void *workspace")) if a in used or
        (a == "p" and params.unpack(body)))
    uses_parts = re.search(r"\bparts\b", body) is not None
    part_fn = (f"static void {name}_part(void *arg, int32_t begin, int32_t end) {{\n"
               f"    const megcc_kernel_args *job = (const megcc_kernel_args *)arg;\n"
               f"{unpack_args}"
               + ("    const int32_t parts = job->parts;\n" if uses_parts else "")
               + params.unpack(body)
               + "    int32_t part;\n"
               + "    for (part = begin; part < end; ++part) {\n"
               + _indent(body)
               + "    }\n}\n")
    kernel_body = (f"    megcc_kernel_args job;\n"
                   f"    job.in_ptrs = in_ptrs;\n    job.out_ptrs = out_ptrs;\n"
                   f"    job.p = p;\n    job.workspace = workspace;\n"
                   f"    job.parts = {parts};\n"
                   f"    megcc_parallel_for(par, job.parts, {name}_part, &job);\n")
    return make_kernel(name, kernel_body, params, helpers, isa, prelude + part_fn)


def _indent(body: str) -> str:
    return "".join(("    " + line if line.strip() else line) for line in
                   body.splitlines(keepends=True))
