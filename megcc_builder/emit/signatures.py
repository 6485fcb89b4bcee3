"""Instruction signatures: why a hostile blob cannot make a kernel read out of bounds.

Kernels trust their `params` (extents, strides, offsets tables): that is what keeps the hot
loops free of checks. The loader validates every tensor against the blob, the arena and
the weights, but it cannot know what a kernel's params mean, so a structurally valid blob
with, say, an element count larger than the tensor would make the kernel overrun it.

The defence lives in the trusted half of the build, kernels.c, and needs nothing from the
kernel modules: for every kernel the emitter lists the exact instruction *signatures* the
compiler produced for it (operand dtypes and byte sizes, workspace size, params), and the
loader accepts an instruction only if it equals one of its kernel's signatures. Every
generated kernel is correct for the signatures the compiler generated (that is what the
kernel tests check), so a blob can still choose which tensors an instruction uses and in
what order instructions run, but not make any kernel see params or tensor sizes the
compiler did not produce for it. Pointers stay inside their tensors because the loader
already checks each tensor's bytes against the arena, weights or base.

The signatures are read back from the serialized blobs, so they are exactly what the C
loader will compare. Record layout (u32 words; docs/model-format.md, "Instruction
signatures"):

    n_in | n_out << 16, n_params, workspace nbytes (0xFFFFFFFF: none),
    (dtype code, nbytes) per operand, inputs then outputs (0xFFFFFFFF, 0: omitted input),
    per output its alias (0: disjoint from the inputs, k + 1: computed in place over input k),
    params (the i32 bit patterns)

The alias words matter because a blob also chooses where operands live: an output placed
over an input the kernel does not expect to share bytes with breaks kernels that copy
with memcpy or read an input after writing the output (the fuzzer found the first). Any
partial overlap is refused by the structural checks; exact in-place use only where the
compiler produced it.

They are not part of kernel_set_id (the id names the kernel code; a blob whose params the
kernels.c was not generated for gets the same "other kernels" status, with the instruction
named in the message).
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Sequence, Set, Tuple

from ..ir.dtypes import dtype_code
from .model_blob import CONTROL_KERNELS, NONE_U32, output_aliases, read_model

Signature = Tuple[int, ...]


def _operand(tensors: List[dict], ti: int) -> Tuple[int, int]:
    if ti < 0:
        return NONE_U32, 0
    t = tensors[ti]
    return dtype_code(t["dtype"]), t["nbytes"]


def instr_signature(ins: dict, tensors: List[dict]) -> Signature:
    """The signature of one instruction as read_model() returns it."""
    words = [len(ins["inputs"]) | len(ins["outputs"]) << 16, len(ins["params"]),
             NONE_U32 if ins["workspace"] < 0 else tensors[ins["workspace"]]["nbytes"]]
    for ti in list(ins["inputs"]) + list(ins["outputs"]):
        words.extend(_operand(tensors, ti))
    words.extend(output_aliases(tensors, ins["inputs"], ins["outputs"], ins["workspace"]))
    words.extend(p & 0xFFFFFFFF for p in ins["params"])
    return tuple(words)


def blob_signatures(blobs: Iterable[bytes], n_kernels: int) -> List[Set[Signature]]:
    """Per kernel-table index, the set of signatures the blobs use."""
    sigs: List[Set[Signature]] = [set() for _ in range(n_kernels)]
    for blob in blobs:
        for plan in read_model(blob)["plans"]:
            for ins in plan["instrs"]:
                if ins["kernel_index"] in CONTROL_KERNELS:  # runtime built-ins: no kernel
                    continue
                sigs[ins["kernel_index"]].add(instr_signature(ins, plan["tensors"]))
    return sigs


def _record_comment(k: int, rec: Signature, kernel=None) -> str:
    """`kernel 3 conv2d_...: N=1 C=3 ...`: the params of a record named by the kernel's
    schema (codegen/params.py), for readers of kernels.c; the loader reads only the words."""
    if kernel is None:
        return f"kernel {k}"
    n_params = rec[1]
    params = [w - (1 << 32) if w >= 1 << 31 else w for w in rec[len(rec) - n_params:]]
    named = kernel.params.describe(params) if n_params else ""
    if len(named) > MAX_COMMENT:
        named = named[:MAX_COMMENT - 3] + "..."
    return f"kernel {k} {kernel.name}" + (f": {named}" if named else "")


MAX_COMMENT = 160  # characters of named params per record (tables can be long)


def signatures_c_source(sigs: List[Set[Signature]], kernels: Sequence = ()) -> str:
    """The two tables kernels.c defines for the loader (kernel_abi.h), deterministic:
    each kernel's records sorted. With the kernels (Kernel, by table index) each record's
    comment names its params."""
    words: List[int] = []
    index = [0]
    lines = []
    for k, records in enumerate(sigs):
        kernel = kernels[k] if k < len(kernels) else None
        for rec in sorted(records):
            comment = _record_comment(k, rec, kernel).replace("*/", "* /")
            lines.append("    " + ", ".join(f"{w}u" for w in rec) + f",  /* {comment} */")
            words.extend(rec)
        index.append(len(words))
    body = "\n".join(lines) if lines else "    0u"
    return ("/* Instruction signatures this kernel set was generated for: the loader accepts\n"
            " * an instruction only if it equals one of its kernel's records here. */\n"
            f"const uint32_t megcc_kernel_sigs[] = {{\n{body}\n}};\n"
            "const uint32_t megcc_kernel_sig_index[] = {"
            + ", ".join(f"{i}u" for i in index) + "};\n")
