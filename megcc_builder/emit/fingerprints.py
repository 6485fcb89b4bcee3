"""Dynamic-plan fingerprints: why a blob cannot hand kernels parameters the compiler did not
mean (docs/dynamic-shapes.md, "Trust").

A dynamic plan's kernel parameters are computed at run time from its expressions, so the
instruction signatures of docs/model-format.md cannot list them. Instead the trusted
kernels.c lists, word for word, every dynamic plan the compiler produced (its tensors,
instruction stream and DynPlan content: everything that decides what kernels see), and the
loader refuses a dynamic plan whose fingerprint is not one of them. Names and guard
messages are left out (they never reach a kernel), and so are weight offsets (where the
writer put a weight says nothing about the kernels).

The fingerprint is computed from the serialised blob, exactly as loader.c computes it.
"""
from __future__ import annotations

import struct
from typing import Iterable, List, Tuple

from .model_blob import TENSOR_SIZE, read_model

Fingerprint = Tuple[int, ...]
_M = 0xFFFFFFFF


def plan_fingerprint(blob: bytes, plan: dict) -> Fingerprint:
    """The fingerprint words of one dynamic plan (`plan` as read_model returns it)."""
    dyn = plan["dynamic"]
    words: List[int] = [len(plan["tensors"])]
    for ti, t in enumerate(plan["tensors"]):
        rec = list(struct.unpack_from("<16I", blob, plan["tensors_offset"] + TENSOR_SIZE * ti))
        rec[0] = 0                       # name
        if t["storage"] == "weight":
            rec[10] = 0                  # offset in the weights section
        words += rec
    words.append(len(plan["instrs"]))
    words += struct.unpack_from(f"<{plan['instrs_size'] // 4}I", blob, plan["instrs_offset"])
    words.append(len(dyn.symbols))
    for s in dyn.symbols:
        words += [s.min & _M, s.max & _M, s.input, s.axis]
    words.append(len(dyn.exprs))
    for e in dyn.exprs:
        words += [len(e), *e]
    for rows in (dyn.dims, dyn.view_offsets, dyn.params):
        words.append(len(rows))
        for row in rows:
            words += row
    words.append(len(dyn.guards))
    words += [e for e, _ in dyn.guards]
    words.append(len(dyn.buffers))
    for b in dyn.buffers:
        words += [b.size, b.first & _M, b.last, len(b.members), *b.members]
    if dyn.values:  # value symbols (absent: the fingerprint of a plan without them)
        words.append(len(dyn.values))
        for v in dyn.values:
            words += [v.symbol, v.instr, v.tensor, v.element, v.bound]
    return tuple(words)


def blob_fingerprints(blobs: Iterable[bytes]) -> List[Fingerprint]:
    """Every dynamic plan of the blobs, deduplicated and sorted (deterministic kernels.c)."""
    found = set()
    for blob in blobs:
        for plan in read_model(blob)["plans"]:
            if plan["dynamic"] is not None:
                found.add(plan_fingerprint(blob, plan))
    return sorted(found)


def fingerprints_c_source(fingerprints: List[Fingerprint]) -> str:
    """The three definitions kernels.c provides to the loader (kernel_abi.h); emitted for
    every build (count 0 for static models) so the runtime always links."""
    lines, index, n = [], [0], 0
    for k, fp in enumerate(fingerprints):
        body = ", ".join(f"{w}u" for w in fp)
        lines.append(f"    /* dynamic plan {k} */\n    {body},")
        n += len(fp)
        index.append(n)
    body = "\n".join(lines) if lines else "    0u"
    return ("/* Dynamic plans this kernel set was generated for (fingerprints): the loader\n"
            " * accepts a dynamic plan only if it equals one of them. */\n"
            f"const uint32_t megcc_dynamic_plans[] = {{\n{body}\n}};\n"
            "const uint32_t megcc_dynamic_plan_index[] = {"
            + ", ".join(f"{i}u" for i in index) + "};\n"
            f"const uint32_t megcc_dynamic_plan_count = {len(fingerprints)}u;\n")
