"""Writer and reader of the compiled model format (`.tiny`).

docs/model-format.md is the contract; runtime/src/loader.c is the other implementation.
The reader applies the same structural checks as the C loader (everything except what
needs the linked kernel table), so `megcc inspect` and the tests see the same verdict the
device would. The writer is deterministic: same arguments, same bytes. Plans with run-time
dimensions (BlobPlan.dynamic) add the format 1.1 DynPlan records of docs/dynamic-shapes.md;
a model without any is a 1.0 file, byte for byte.
"""
from __future__ import annotations

import bisect
import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from megcc_builder.ir.dtypes import DTYPES, dtype_code, dtype_from_code, itemsize

from .dynamic import (BINARY, CONST, MAX_EXPR_WORDS, MAX_STACK, SYM, VALUE_INPUT, VALUE_SHAPE,
                      VALUE_SIZE,
                      Buffer, DynamicPlan, Value)

MAGIC = b"MGCC"
VERSION_MAJOR = 1
VERSION_MINOR = 0          # a model without dynamic plans is a 1.0 file, byte for byte
VERSION_MINOR_DYNAMIC = 1  # format 1.1: header word 60 = dynamic_offset (docs/dynamic-shapes.md)
DYNPLAN_SIZE = 64
SYMBOL_SIZE = 20
BUFFER_SIZE = 20
HEADER_SIZE = 64
PLAN_SIZE = 48
TENSOR_SIZE = 64
MAX_DIMS = 8
NONE_U32 = 0xFFFFFFFF
WEIGHT_ALIGN = 64          # writer's alignment of the weights section and of each weight
WEIGHT_MIN_ALIGN = 16      # what the loader insists on (SIMD loads)
STORAGE = {"arena": 0, "weight": 1, "view": 2}
STORAGE_NAMES = {v: k for k, v in STORAGE.items()}
ARCH_NAMES = {0: "portable", 1: "x86_64", 2: "arm64", 3: "armv7", 4: "riscv64", 5: "cortex-m"}
# A plan's arch in a multi-architecture build, by the ISA level's architecture
# (megcc_builder.isa: IsaSpec.arch); single-architecture builds write 0.
ARCH_CODES = {"x86_64": 1, "aarch64": 2, "armv7": 3}
LAYOUT_NAMES = {0: "plain", 1: "nchw44", 2: "nchw88"}
_U32_MAX = 0xFFFFFFFF


@dataclass
class BlobTensor:
    name: str
    dtype: str
    shape: tuple
    storage: str                # 'arena' | 'weight' | 'view'
    offset: int = 0             # arena offset / byte offset into base (view); filled for weights
    base: int = -1              # view only
    weight_index: int = -1      # weight only: index into write_model's `weights`
    layout: int = 0
    scale: float = 0.0
    zero_point: int = 0

    @property
    def nbytes(self) -> int:
        n = itemsize(self.dtype)
        for d in self.shape:
            n *= int(d)
        return n


@dataclass
class BlobInstr:
    kernel_index: int
    inputs: List[int]           # -1 = omitted optional input
    outputs: List[int]
    params: List[int] = field(default_factory=list)   # int32; floats via float_param()
    workspace: int = -1


@dataclass
class BlobPlan:
    name: str
    arch: int
    arena_size: int
    tensors: List[BlobTensor]
    instrs: List[BlobInstr]
    inputs: List[int]
    outputs: List[int]
    # run-time dimensions (docs/dynamic-shapes.md); None for a static plan. The fields
    # above hold the plan's hint instance either way.
    dynamic: Optional["DynamicPlan"] = None


def float_param(x: float) -> int:
    """Bit-cast a float32 to the signed int32 a kernel reads back with memcpy."""
    return struct.unpack("<i", struct.pack("<f", float(x)))[0]


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


class _Strings:
    """Deduplicated NUL-terminated strings, in first-use order (deterministic)."""

    def __init__(self) -> None:
        self._off: Dict[str, int] = {}
        self._buf = bytearray()

    def add(self, s: str) -> int:
        if s not in self._off:
            raw = s.encode("utf-8")
            if b"\0" in raw:
                raise ValueError(f"string {s!r} contains NUL")
            self._off[s] = len(self._buf)
            self._buf += raw + b"\0"
        return self._off[s]

    def data(self) -> bytes:
        return bytes(self._buf)


def _u32(v: int, what: str) -> int:
    if not (0 <= v <= _U32_MAX):
        raise ValueError(f"{what} = {v} does not fit in u32")
    return v


def _i32(v: int, what: str) -> int:
    if not (-(1 << 31) <= v < (1 << 31)):
        raise ValueError(f"{what} = {v} does not fit in i32 (bit-cast floats with float_param)")
    return v


def _tensor_index(v: int, n: int, what: str, allow_none: bool = False) -> int:
    if v == -1 and allow_none:
        return NONE_U32
    if not (0 <= v < n):
        raise ValueError(f"{what}: tensor index {v} out of range (plan has {n} tensors)")
    return v


def write_model(model_name: str, kernel_names: Sequence[str], kernel_set_id: int,
                plans: Sequence[BlobPlan], weights: Sequence[bytes]) -> bytes:
    """Serialise a model. Raises ValueError on inconsistent input; the result is re-read
    with read_model() before it is returned, so a blob that leaves here passes the loader's
    structural checks."""
    if not plans:
        raise ValueError("a model needs at least one plan")
    if not (0 <= kernel_set_id < (1 << 64)):
        raise ValueError("kernel_set_id must be an unsigned 64-bit value")
    strings = _Strings()
    strings.add("")
    name_off = strings.add(model_name)
    kernel_name_offs = [strings.add(k) for k in kernel_names]

    # Weights: deduplicated by content, each 64-byte aligned inside the section.
    weight_data = bytearray()
    weight_off_by_content: Dict[bytes, int] = {}
    weight_offs: List[int] = []
    for w in weights:
        w = bytes(w)
        off = weight_off_by_content.get(w)
        if off is None:
            weight_data += b"\0" * (_align(len(weight_data), WEIGHT_ALIGN) - len(weight_data))
            off = len(weight_data)
            weight_off_by_content[w] = off
            weight_data += w
        weight_offs.append(off)

    # Layout: header | kernel name table | plan offset table | plan records |
    #         per plan: tensors, inputs, outputs, instruction stream | strings | weights
    pos = HEADER_SIZE
    kernels_offset = pos
    pos += 4 * len(kernel_names)
    plans_offset = pos
    pos += 4 * len(plans)
    plan_rec_offsets = []
    for _ in plans:
        plan_rec_offsets.append(pos)
        pos += PLAN_SIZE

    body = bytearray()          # everything after the plan records, before strings
    body_base = pos
    plan_fields = []
    for pi, plan in enumerate(plans):
        n_t = len(plan.tensors)
        tensors_offset = body_base + len(body)
        for ti, t in enumerate(plan.tensors):
            body += _pack_tensor(t, ti, n_t, plan, pi, weights, weight_offs, strings)
        inputs_offset = body_base + len(body)
        for i in plan.inputs:
            body += struct.pack("<I", _tensor_index(i, n_t, f"plan {pi} input"))
        outputs_offset = body_base + len(body)
        for i in plan.outputs:
            body += struct.pack("<I", _tensor_index(i, n_t, f"plan {pi} output"))
        instrs_offset = body_base + len(body)
        for ii, ins in enumerate(plan.instrs):
            body += _pack_instr(ins, n_t, len(kernel_names), f"plan {pi} instr {ii}")
        instrs_size = body_base + len(body) - instrs_offset
        plan_fields.append(struct.pack(
            "<12I", strings.add(plan.name), _u32(plan.arch, "arch"),
            _u32(plan.arena_size, f"plan {pi} arena_size"), n_t, tensors_offset,
            len(plan.instrs), instrs_offset, instrs_size, len(plan.inputs), inputs_offset,
            len(plan.outputs), outputs_offset))

    dynamic_offset = 0
    if any(p.dynamic is not None for p in plans):
        dynamic_offset = body_base + len(body)
        body += _pack_dynamic_section(plans, dynamic_offset, strings)

    strings_offset = body_base + len(body)
    sdata = strings.data()
    strings_size = len(sdata)
    weights_offset = _align(strings_offset + strings_size, WEIGHT_ALIGN)
    file_size = weights_offset + len(weight_data)
    _u32(file_size, "file size")

    out = bytearray(HEADER_SIZE)
    out += b"".join(struct.pack("<I", o) for o in kernel_name_offs)
    out += b"".join(struct.pack("<I", o) for o in plan_rec_offsets)
    out += b"".join(plan_fields)
    out += body
    out += sdata
    out += b"\0" * (weights_offset - len(out))
    out += weight_data
    assert len(out) == file_size
    minor = VERSION_MINOR_DYNAMIC if dynamic_offset else VERSION_MINOR
    struct.pack_into("<4sHHIIQ9II", out, 0, MAGIC, VERSION_MAJOR, minor, file_size, 0,
                     kernel_set_id, strings_offset, strings_size, weights_offset,
                     len(weight_data), plans_offset, len(plans), kernels_offset,
                     len(kernel_names), name_off, dynamic_offset)
    struct.pack_into("<I", out, 12, zlib.crc32(memoryview(out)[16:]) & _U32_MAX)
    blob = bytes(out)
    read_model(blob)            # self-check: the writer never emits what the loader rejects
    return blob


def _pack_tensor(t: BlobTensor, ti: int, n_t: int, plan: BlobPlan, pi: int,
                 weights: Sequence[bytes], weight_offs: List[int], strings: _Strings) -> bytes:
    what = f"plan {pi} tensor {ti} ({t.name})"
    if t.dtype not in DTYPES:
        raise ValueError(f"{what}: unknown dtype {t.dtype!r}")
    if t.storage not in STORAGE:
        raise ValueError(f"{what}: unknown storage {t.storage!r}")
    if t.layout not in LAYOUT_NAMES:
        raise ValueError(f"{what}: unknown layout {t.layout}")
    shape = tuple(int(d) for d in t.shape)
    if len(shape) > MAX_DIMS or any(d < 0 or d >= (1 << 31) for d in shape):
        raise ValueError(f"{what}: bad shape {shape}")
    nbytes = _u32(t.nbytes, f"{what} nbytes")
    offset, base = t.offset, NONE_U32
    if t.storage == "weight":
        if not (0 <= t.weight_index < len(weights)):
            raise ValueError(f"{what}: weight_index {t.weight_index} out of range")
        if len(weights[t.weight_index]) != nbytes:
            raise ValueError(f"{what}: weight has {len(weights[t.weight_index])} bytes, "
                             f"shape/dtype say {nbytes}")
        offset = weight_offs[t.weight_index]
    elif t.storage == "view":
        if not (0 <= t.base < ti):
            raise ValueError(f"{what}: view base {t.base} must be an earlier tensor")
        base = t.base
    dims = list(shape) + [0] * (MAX_DIMS - len(shape))
    return struct.pack("<IBBBB8iIIIfiI", strings.add(t.name), dtype_code(t.dtype), len(shape),
                       STORAGE[t.storage], t.layout,
                       *dims, _u32(offset, f"{what} offset"), nbytes, base,
                       float(t.scale), _i32(int(t.zero_point), f"{what} zero_point"), 0)


# Control flow (docs/model-format.md, "Control flow"): built-in instructions of the runtime
# at reserved kernel indices; params = [target byte offset in the stream, target index].
CONTROL_JUMP, CONTROL_BRANCH_IF_ZERO = 0xFFFFFF00, 0xFFFFFF01
CONTROL_KERNELS = {CONTROL_JUMP: "<jump>", CONTROL_BRANCH_IF_ZERO: "<branch_if_zero>"}


def _pack_instr(ins: BlobInstr, n_t: int, n_kernels: int, what: str) -> bytes:
    if not (0 <= ins.kernel_index < n_kernels) and ins.kernel_index not in CONTROL_KERNELS:
        raise ValueError(f"{what}: kernel index {ins.kernel_index} out of range")
    if len(ins.inputs) > 0xFFFF or len(ins.outputs) > 0xFFFF:
        raise ValueError(f"{what}: too many operands")
    ws = NONE_U32 if ins.workspace == -1 else _tensor_index(ins.workspace, n_t, f"{what} workspace")
    idx = [_tensor_index(i, n_t, f"{what} input", allow_none=True) for i in ins.inputs]
    idx += [_tensor_index(i, n_t, f"{what} output") for i in ins.outputs]
    params = [_i32(int(p), f"{what} param") for p in ins.params]
    return (struct.pack("<IHHII", ins.kernel_index, len(ins.inputs), len(ins.outputs),
                        len(params), ws)
            + struct.pack(f"<{len(idx)}I", *idx) + struct.pack(f"<{len(params)}i", *params))


def _sorted_bindings(items, key_len: int, what: str) -> list:
    """Bindings in increasing key order, each key once: the loader then finds duplicates
    (and a tensor's bindings) in one pass instead of a quadratic search."""
    out = sorted(tuple(int(v) for v in it) for it in items)
    for a, b in zip(out, out[1:]):
        if a[:key_len] == b[:key_len]:
            raise ValueError(f"{what} {a[:key_len]} is bound twice")
    return out


def _pack_dynamic_section(plans: Sequence[BlobPlan], base: int, strings: _Strings) -> bytes:
    """The dynamic-plan table (one u32 per plan: 0 or its DynPlan record) and the records
    with their arrays (docs/dynamic-shapes.md, "DynPlan record")."""
    buf = bytearray(4 * len(plans))
    for pi, plan in enumerate(plans):
        dyn = plan.dynamic
        if dyn is None:
            continue
        what = f"plan {pi} dynamic"
        rec_off = base + len(buf)
        struct.pack_into("<I", buf, 4 * pi, rec_off)
        buf += bytes(DYNPLAN_SIZE)
        fields = []

        def array(count: int, data: bytes) -> None:
            fields.extend((count, base + len(buf)))
            buf.extend(data)

        sym = b"".join(struct.pack("<IiiII", strings.add(s.name), _i32(s.min, f"{what} min"),
                                   _i32(s.max, f"{what} max"), _u32(s.input, f"{what} input"),
                                   _u32(s.axis, f"{what} axis")) for s in dyn.symbols)
        array(len(dyn.symbols), sym)
        table_at = base + len(buf)
        buf += bytes(4 * len(dyn.exprs))
        for ei, e in enumerate(dyn.exprs):
            if not 1 <= len(e) <= MAX_EXPR_WORDS:
                raise ValueError(f"{what} expression {ei}: {len(e)} words (1..{MAX_EXPR_WORDS})")
            struct.pack_into("<I", buf, table_at - base + 4 * ei, base + len(buf))
            buf += struct.pack(f"<I{len(e)}I", len(e), *(_u32(w, f"{what} expr word")
                                                         for w in e))
        fields.extend((len(dyn.exprs), table_at))
        dims = _sorted_bindings(dyn.dims, 2, f"{what}: (tensor, axis)")
        array(len(dims), b"".join(struct.pack("<3I", *d) for d in dims))
        views = _sorted_bindings(dyn.view_offsets, 1, f"{what}: view")
        array(len(views), b"".join(struct.pack("<2I", *v) for v in views))
        params = _sorted_bindings(dyn.params, 2, f"{what}: (instr, param)")
        array(len(params), b"".join(struct.pack("<3I", *p) for p in params))
        array(len(dyn.guards), b"".join(struct.pack("<2I", e, strings.add(msg))
                                        for e, msg in dyn.guards))
        members_at = base + len(buf) + BUFFER_SIZE * len(dyn.buffers)
        recs, members = bytearray(), bytearray()
        for b in dyn.buffers:
            recs += struct.pack("<IiIII", b.size, _i32(b.first, f"{what} buffer first"),
                                _u32(b.last, f"{what} buffer last"), len(b.members),
                                members_at + len(members))
            members += b"".join(struct.pack("<I", m) for m in b.members)
        array(len(dyn.buffers), bytes(recs) + bytes(members))
        if dyn.values:  # words 56/60 (0, 0 without value symbols: the older record)
            values = sorted(dyn.values, key=lambda v: (v.instr, v.symbol))
            if any(b.symbol <= a.symbol for a, b in zip(values, values[1:])):
                raise ValueError(f"{what}: value symbols not numbered in definition order")
            array(len(values), b"".join(struct.pack("<5I", v.symbol, v.instr, v.tensor,
                                                    v.element, v.bound) for v in values))
        else:
            fields.extend((0, 0))
        struct.pack_into("<16I", buf, rec_off - base, *fields)
    return bytes(buf)


# ----------------------------------------------------------------------------- reader

class _Reader:
    def __init__(self, data: bytes) -> None:
        self.d = data
        self.n = len(data)
        self._strings: Dict[int, str] = {}
        self.array_budget = len(data)   # file bytes not yet claimed by a plan's arrays

    def need(self, off: int, size: int, what: str) -> None:
        if off < 0 or size < 0 or off + size > self.n:
            raise ValueError(f"{what}: [{off}, {off + size}) outside file of {self.n} bytes")

    def u32(self, off: int, what: str = "field") -> int:
        self.need(off, 4, what)
        return struct.unpack_from("<I", self.d, off)[0]

    def string(self, strings_offset: int, strings_size: int, rel: int, what: str) -> str:
        """The string starting at `rel`, each decoded once (names often repeat); offsets
        must start a string, so distinct strings never share bytes and the total work is
        bounded by the section size (docs/model-format.md, "Limits")."""
        cached = self._strings.get(rel)
        if cached is not None:
            return cached
        if rel >= strings_size:
            raise ValueError(f"{what}: string offset {rel} outside strings section "
                             f"({strings_size} bytes)")
        start = strings_offset + rel
        if rel and self.d[start - 1] != 0:
            raise ValueError(f"{what}: string offset {rel} is inside another string")
        end = self.d.find(b"\0", start, strings_offset + strings_size)
        if end < 0:
            raise ValueError(f"{what}: string at {rel} is not NUL-terminated inside the section")
        try:
            text = self.d[start:end].decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{what}: string is not UTF-8: {e}") from None
        self._strings[rel] = text
        return text


def read_model(data: bytes) -> dict:
    """Parse and validate a blob; raises ValueError naming the first problem found."""
    data = bytes(data)
    r = _Reader(data)
    if r.n < HEADER_SIZE:
        raise ValueError(f"file of {r.n} bytes is shorter than the {HEADER_SIZE}-byte header")
    (magic, vmaj, vmin, file_size, crc, ks_id, s_off, s_size, w_off, w_size, p_off, n_plans,
     k_off, n_kernels, name_off, dyn_off) = struct.unpack_from("<4sHHIIQ9II", data, 0)
    if magic != MAGIC:
        raise ValueError(f"bad magic {magic!r} (want {MAGIC!r})")
    if vmaj != VERSION_MAJOR:
        raise ValueError(f"format version {vmaj}.{vmin} not supported (want {VERSION_MAJOR}.x)")
    if file_size != r.n:
        raise ValueError(f"header file_size {file_size} != actual size {r.n}")
    actual_crc = zlib.crc32(memoryview(data)[16:]) & _U32_MAX
    if crc != actual_crc:
        raise ValueError(f"CRC-32 mismatch: header {crc:#010x}, data {actual_crc:#010x}")
    r.need(s_off, s_size, "strings section")
    r.need(w_off, w_size, "weights section")
    if w_off % WEIGHT_ALIGN:
        raise ValueError(f"weights_offset {w_off} is not a multiple of {WEIGHT_ALIGN}")
    if n_plans < 1:
        raise ValueError("model has no plans")
    r.need(p_off, 4 * n_plans, "plan table")
    r.need(k_off, 4 * n_kernels, "kernel table")
    if p_off % 4 or k_off % 4:
        raise ValueError("plan/kernel tables are not 4-byte aligned")

    def string(rel: int, what: str) -> str:
        return r.string(s_off, s_size, rel, what)

    kernels = [string(r.u32(k_off + 4 * i), f"kernel {i} name") for i in range(n_kernels)]
    plans = []
    for pi in range(n_plans):
        rec_off = r.u32(p_off + 4 * pi)
        if pi and rec_off <= r.u32(p_off + 4 * (pi - 1)):
            # a plan listed twice is refused, not validated twice (same rule as loader.c)
            raise ValueError(f"plan {pi}: record offset {rec_off} not after plan {pi - 1}'s "
                             "(plan table must list distinct records in file order)")
        plans.append(_read_plan(r, string, rec_off, pi, n_kernels, w_off, w_size, kernels))
    if dyn_off:
        if dyn_off % 4:
            raise ValueError(f"dynamic_offset {dyn_off} is not 4-byte aligned")
        r.need(dyn_off, 4 * n_plans, "dynamic plan table")
        for pi, plan in enumerate(plans):
            rec = r.u32(dyn_off + 4 * pi)
            plan["dynamic"] = _read_dynamic(r, string, rec, pi, plan) if rec else None
    else:
        for plan in plans:
            plan["dynamic"] = None
    return {
        "version": (vmaj, vmin), "file_size": file_size, "crc32": crc,
        "kernel_set_id": ks_id, "model_name": string(name_off, "model name"),
        "kernels": kernels, "weights_offset": w_off, "weights_size": w_size, "plans": plans,
        "dynamic_offset": dyn_off,
    }


def arena_range(tensors: List[dict], ti: int) -> Optional[Tuple[int, int]]:
    """(start, end) bytes of tensor ti in the arena; None for weights, views of weights,
    omitted operands (-1) and empty tensors, which cannot overlap anything written."""
    if ti < 0:
        return None
    t = tensors[ti]
    start = t["offset"]
    if t["storage"] == "view":
        base = tensors[t["base"]]
        if base["storage"] != "arena":
            return None
        start += base["offset"]
    elif t["storage"] != "arena":
        return None
    return (start, start + t["nbytes"]) if t["nbytes"] else None


def output_aliases(tensors: List[dict], inputs: List[int], outputs: List[int],
                   workspace: int) -> List[int]:
    """Per output: 0 if its bytes are disjoint from every input's, k + 1 if they are exactly
    input k's (computed in place). Raises ValueError for any other overlap of what an
    instruction writes (outputs, workspace) with its other operands: kernels may use
    memcpy and assume disjoint buffers, and the compiler never produces such overlaps.
    The C loader applies the same rule (docs/model-format.md)."""
    ins = [arena_range(tensors, t) for t in inputs]
    outs = [arena_range(tensors, t) for t in outputs]
    ws = arena_range(tensors, workspace)

    def overlap(a, b):
        return a is not None and b is not None and a[0] < b[1] and b[0] < a[1]

    # Sorting keeps this O(n log n): an instruction may list 65535 operands, and pairwise
    # checks would make a small file cost billions of steps (docs/model-format.md, "Limits").
    for k, x in enumerate(ins):
        if overlap(ws, x):
            raise ValueError(f"the workspace overlaps input {k}")
    placed = sorted((o[0], o[1], j) for j, o in enumerate(outs) if o is not None)
    for (s0, e0, j0), (s1, e1, j1) in zip(placed, placed[1:]):
        if s1 < e0:     # sorted by start: any overlapping pair implies an adjacent one
            raise ValueError(f"outputs {min(j0, j1)} and {max(j0, j1)} overlap")
    first_input: Dict[Tuple[int, int], int] = {}
    for k, x in enumerate(ins):
        if x is not None:
            first_input.setdefault(x, k)
    ranges = sorted(first_input)
    starts = [x[0] for x in ranges]
    reach, high = [], -1          # reach[i]: max end over ranges[:i + 1]
    for x in ranges:
        high = max(high, x[1])
        reach.append(high)
    aliases = []
    for j, o in enumerate(outs):
        if o is None:
            aliases.append(0)
            continue
        if overlap(o, ws):
            raise ValueError(f"output {j} overlaps the workspace")
        lo, hi = bisect.bisect_left(starts, o[0]), bisect.bisect_left(starts, o[1])
        partial = (lo and reach[lo - 1] > o[0]) or hi - lo > 1 or \
            (hi - lo == 1 and ranges[lo] != o)
        if partial:
            k = next(k for k, x in enumerate(ins) if overlap(o, x) and x != o)
            raise ValueError(f"output {j} partly overlaps input {k}")
        aliases.append(first_input[o] + 1 if o in first_input else 0)
    return aliases


def _read_plan(r: _Reader, string, off: int, pi: int, n_kernels: int, w_off: int, w_size: int,
               kernels: List[str]) -> dict:
    what = f"plan {pi}"
    if off % 4:
        raise ValueError(f"{what}: record offset {off} is not 4-byte aligned")
    r.need(off, PLAN_SIZE, f"{what} record")
    (name, arch, arena, n_t, t_off, n_i, i_off, i_size, n_in, in_off, n_out,
     out_off) = struct.unpack_from("<12I", r.d, off)
    for o, n in ((t_off, n_t * TENSOR_SIZE), (in_off, 4 * n_in), (out_off, 4 * n_out),
                 (i_off, i_size)):
        if o % 4:
            raise ValueError(f"{what}: array at {o} is not 4-byte aligned")
        r.need(o, n, f"{what} arrays")
    claim = n_t * TENSOR_SIZE + 4 * (n_in + n_out) + i_size
    if claim > r.array_budget:
        raise ValueError(f"{what}: the plans' arrays together exceed the file size "
                         "(arrays shared between plans)")
    r.array_budget -= claim
    tensors = []
    for ti in range(n_t):
        tensors.append(_read_tensor(r, string, t_off + ti * TENSOR_SIZE, ti, tensors, arena,
                                    w_off, w_size, f"{what} tensor {ti}"))

    def writable(ti: int) -> bool:
        t = tensors[ti]
        if t["storage"] == "view":
            t = tensors[t["base"]]
        return t["storage"] == "arena"

    def io(o: int, n: int, kind: str) -> List[int]:
        idx = [r.u32(o + 4 * k) for k in range(n)]
        for k, ti in enumerate(idx):
            if ti >= n_t:
                raise ValueError(f"{what} {kind} {k}: tensor index {ti} >= {n_t}")
            if not writable(ti):
                raise ValueError(f"{what} {kind} {k}: tensor {ti} is not in the arena")
        return idx

    inputs = io(in_off, n_in, "input")
    outputs = io(out_off, n_out, "output")
    instrs = []
    record_at: List[int] = []  # byte offset of every record (control flow targets)
    pos, end = i_off, i_off + i_size
    for ii in range(n_i):
        w = f"{what} instr {ii}"
        if end - pos < 16:
            raise ValueError(f"{w}: header runs past the instruction stream")
        k, nin, nout, npar, ws = struct.unpack_from("<IHHII", r.d, pos)
        pos_of_record = pos - i_off
        record_at.append(pos_of_record)
        pos += 16
        if k >= n_kernels and k not in CONTROL_KERNELS:
            raise ValueError(f"{w}: kernel index {k} >= {n_kernels}")
        if (end - pos) // 4 < nin + nout + npar:
            raise ValueError(f"{w}: operands run past the instruction stream")
        idx = list(struct.unpack_from(f"<{nin + nout}I", r.d, pos))
        pos += 4 * (nin + nout)
        params = list(struct.unpack_from(f"<{npar}i", r.d, pos))
        pos += 4 * npar
        for j, ti in enumerate(idx):
            if ti == NONE_U32 and j < nin:
                continue
            if ti >= n_t:
                raise ValueError(f"{w}: operand {j} tensor index {ti} >= {n_t}")
            if j >= nin and not writable(ti):
                raise ValueError(f"{w}: output tensor {ti} is not in the arena")
        if ws != NONE_U32:
            if ws >= n_t or tensors[ws]["storage"] != "arena":
                raise ValueError(f"{w}: workspace {ws} is not an arena tensor")
            if tensors[ws]["offset"] % 16:
                raise ValueError(f"{w}: workspace {ws} not 16-byte aligned")
        in_idx = [-1 if i == NONE_U32 else i for i in idx[:nin]]
        try:
            output_aliases(tensors, in_idx, idx[nin:], -1 if ws == NONE_U32 else ws)
        except ValueError as exc:
            raise ValueError(f"{w}: {exc}") from None
        if k in CONTROL_KERNELS:
            _check_control(w, k, in_idx, idx[nin:], params, ws, tensors)
        instrs.append({"kernel_index": k,
                       "kernel": CONTROL_KERNELS[k] if k in CONTROL_KERNELS else kernels[k],
                       "inputs": [-1 if i == NONE_U32 else i for i in idx[:nin]],
                       "outputs": idx[nin:], "params": params,
                       "workspace": -1 if ws == NONE_U32 else ws})
    if pos != end:
        raise ValueError(f"{what}: {end - pos} trailing bytes in the instruction stream")
    record_at.append(i_size)
    for ii, ins in enumerate(instrs):
        if ins["kernel_index"] in CONTROL_KERNELS:
            offset, index = ins["params"]
            if not (0 <= index <= n_i and record_at[index] == offset):
                raise ValueError(f"{what} instr {ii}: jump target (offset {offset}, "
                                 f"instruction {index}) is not the start of a record")
    return {"name": string(name, f"{what} name"), "arch": arch, "arena_size": arena,
            "tensors": tensors, "instrs": instrs, "inputs": inputs, "outputs": outputs,
            "tensors_offset": t_off, "instrs_offset": i_off, "instrs_size": i_size}


def check_program(words: Sequence[int], n_symbols: int) -> None:
    """Structural check of an expression program (what the loader checks once, so that
    evaluation can only fail on values: overflow, a non-positive divisor)."""
    depth, i = 0, 0
    while i < len(words):
        op = words[i]
        if op in (CONST, SYM):
            if i + 1 >= len(words):
                raise ValueError(f"opcode {op} at word {i} lacks its operand")
            if op == SYM and words[i + 1] >= n_symbols:
                raise ValueError(f"symbol {words[i + 1]} >= {n_symbols} symbols")
            depth += 1
            i += 2
        elif op in BINARY:
            if depth < 2:
                raise ValueError(f"stack underflow at word {i}")
            depth -= 1
            i += 1
        else:
            raise ValueError(f"unknown opcode {op} at word {i}")
        if depth > MAX_STACK:
            raise ValueError(f"stack deeper than {MAX_STACK}")
    if depth != 1:
        raise ValueError("the program does not leave exactly one value")


def _read_dynamic(r: _Reader, string, off: int, pi: int, plan: dict) -> DynamicPlan:
    """A DynPlan record, checked as loader.c checks it (docs/dynamic-shapes.md)."""
    from .dynamic import Symbol
    what = f"plan {pi} dynamic"
    if off % 4:
        raise ValueError(f"{what}: record offset {off} is not 4-byte aligned")
    r.need(off, DYNPLAN_SIZE, f"{what} record")
    f = struct.unpack_from("<16I", r.d, off)
    if bool(f[14]) != bool(f[15]):
        raise ValueError(f"{what}: value symbols: count and offset must be both 0 or not")
    tensors, instrs, n_t = plan["tensors"], plan["instrs"], len(plan["tensors"])

    def claim(o: int, size: int, name: str) -> None:
        # like the plans' arrays: never shared, so checking costs at most the file size
        if o % 4:
            raise ValueError(f"{what}: {name} at {o} is not 4-byte aligned")
        r.need(o, size, f"{what} {name}")
        if size > r.array_budget:
            raise ValueError(f"{what}: arrays together exceed the file size (shared arrays)")
        r.array_budget -= size

    claim(off, DYNPLAN_SIZE, "record")
    n_sym, sym_off, n_e, e_off, n_d, d_off, n_v, v_off, n_p, p_off, n_g, g_off, n_b, b_off = f[:14]
    claim(sym_off, SYMBOL_SIZE * n_sym, "symbols")
    claim(e_off, 4 * n_e, "expression table")
    claim(d_off, 12 * n_d, "dims")
    claim(v_off, 8 * n_v, "view offsets")
    claim(p_off, 12 * n_p, "params")
    claim(g_off, 8 * n_g, "guards")
    claim(b_off, BUFFER_SIZE * n_b, "buffers")
    symbols = []
    for k in range(n_sym):
        name, lo, hi, inp, axis = struct.unpack_from("<IiiII", r.d, sym_off + SYMBOL_SIZE * k)
        w = f"{what} symbol {k}"
        if not 0 <= lo <= hi:
            raise ValueError(f"{w}: bounds [{lo}, {hi}] are not 0 <= min <= max")
        if inp == VALUE_INPUT:
            if axis not in (0, VALUE_SHAPE):
                raise ValueError(f"{w}: a value symbol's axis field is not 0 or 1")
        elif inp >= len(plan["inputs"]):
            raise ValueError(f"{w}: input {inp} >= {len(plan['inputs'])} inputs")
        elif axis >= len(tensors[plan["inputs"][inp]]["shape"]):
            raise ValueError(f"{w}: axis {axis} >= the input's rank")
        symbols.append(Symbol(string(name, f"{w} name"), lo, hi, inp, axis))
    exprs = []
    for k in range(n_e):
        eo = r.u32(e_off + 4 * k)
        r.need(eo, 4, f"{what} expression {k}")
        n_words = r.u32(eo)
        if not 1 <= n_words <= MAX_EXPR_WORDS:
            raise ValueError(f"{what} expression {k}: {n_words} words (1..{MAX_EXPR_WORDS})")
        claim(eo, 4 + 4 * n_words, f"expression {k}")
        words = struct.unpack_from(f"<{n_words}I", r.d, eo + 4)
        try:
            check_program(words, n_sym)
        except ValueError as exc:
            raise ValueError(f"{what} expression {k}: {exc}") from None
        exprs.append(tuple(words))

    def expr(e: int, w: str) -> int:
        if e >= n_e:
            raise ValueError(f"{w}: expression {e} >= {n_e}")
        return e

    def increasing(rows, key_len: int, w: str) -> None:
        for a, b in zip(rows, rows[1:]):
            if b[:key_len] <= a[:key_len]:
                raise ValueError(f"{w}: bindings not in increasing order or bound twice")

    dims = [struct.unpack_from("<3I", r.d, d_off + 12 * k) for k in range(n_d)]
    for t, axis, e in dims:
        w = f"{what} dims ({t}, {axis})"
        if t >= n_t or tensors[t]["storage"] == "weight":
            raise ValueError(f"{w}: not an activation tensor")
        if axis >= len(tensors[t]["shape"]):
            raise ValueError(f"{w}: axis >= rank")
        expr(e, w)
    increasing(dims, 2, f"{what} dims")
    views = [struct.unpack_from("<2I", r.d, v_off + 8 * k) for k in range(n_v)]
    for t, e in views:
        if t >= n_t or tensors[t]["storage"] != "view":
            raise ValueError(f"{what} view offset of tensor {t}: not a view")
        expr(e, f"{what} view offset of tensor {t}")
    increasing(views, 1, f"{what} view offsets")
    params = [struct.unpack_from("<3I", r.d, p_off + 12 * k) for k in range(n_p)]
    for ii, par, e in params:
        w = f"{what} param ({ii}, {par})"
        if ii >= len(instrs) or par >= len(instrs[ii]["params"]):
            raise ValueError(f"{w}: no such instruction parameter")
        expr(e, w)
    increasing(params, 2, f"{what} params")
    guards = []
    for k in range(n_g):
        e, msg = struct.unpack_from("<2I", r.d, g_off + 8 * k)
        guards.append((expr(e, f"{what} guard {k}"), string(msg, f"{what} guard {k} message")))
    member_of: Dict[int, int] = {}
    buffers = []
    for k in range(n_b):
        size, first, last, n_m, m_off = struct.unpack_from("<IiIII", r.d,
                                                            b_off + BUFFER_SIZE * k)
        w = f"{what} buffer {k}"
        expr(size, w)
        if not -1 <= first or first > last or last > len(instrs):
            raise ValueError(f"{w}: interval [{first}, {last}] outside [-1, {len(instrs)}]")
        claim(m_off, 4 * n_m, f"buffer {k} members")
        members = struct.unpack_from(f"<{n_m}I", r.d, m_off)
        for t in members:
            if t >= n_t or tensors[t]["storage"] != "arena":
                raise ValueError(f"{w}: member {t} is not an arena tensor")
            if t in member_of:
                raise ValueError(f"{w}: tensor {t} is already in buffer {member_of[t]}")
            member_of[t] = k
        buffers.append(Buffer(size, first, last, tuple(members)))
    for t, rec in enumerate(tensors):
        if rec["storage"] == "arena" and t not in member_of:
            raise ValueError(f"{what}: arena tensor {t} is in no buffer")
    values = _read_values(r, f[14], f[15], claim, symbols, exprs, tensors, instrs, dims, what)
    bound = {(t, a): e for t, a, e in dims}
    for k, s in enumerate(symbols):
        if s.input == VALUE_INPUT:
            continue
        e = bound.get((plan["inputs"][s.input], s.axis))
        if e is None or exprs[e] != (SYM, k):
            raise ValueError(f"{what} symbol {k} ({s.name}): its input dimension is not "
                             f"bound to the symbol")
    return DynamicPlan(symbols=symbols, exprs=exprs, dims=[tuple(d) for d in dims],
                       view_offsets=[tuple(v) for v in views],
                       params=[tuple(p) for p in params], guards=guards, buffers=buffers,
                       values=values)


VALUE_DTYPES = ("int32", "int64")


def _read_values(r: _Reader, n: int, off: int, claim, symbols, exprs, tensors, instrs, dims,
                 what: str) -> List[Value]:
    """Value records (docs/dynamic-shapes.md, "Value symbols"), checked as loader.c does."""
    claim(off, VALUE_SIZE * n, "values") if n else None
    values, defined = [], set()
    bound_tensors = {t for t, _, _ in dims}
    for k in range(n):
        v = Value(*struct.unpack_from("<5I", r.d, off + VALUE_SIZE * k))
        w = f"{what} value {k}"
        if v.symbol >= len(symbols) or symbols[v.symbol].input != VALUE_INPUT or \
                v.symbol in defined:
            raise ValueError(f"{w}: symbol {v.symbol} is not a value symbol defined once")
        defined.add(v.symbol)
        # symbols strictly increasing, instructions non-decreasing (definition order)
        if values and (v.symbol <= values[-1].symbol or v.instr < values[-1].instr):
            raise ValueError(f"{w}: records not in increasing (instr, symbol) order")
        if v.instr >= len(instrs) or v.tensor not in instrs[v.instr]["outputs"]:
            raise ValueError(f"{w}: tensor {v.tensor} is not an output of instruction "
                             f"{v.instr}")
        t = tensors[v.tensor]
        if t["dtype"] not in VALUE_DTYPES or t["storage"] == "weight" or \
                v.tensor in bound_tensors:
            raise ValueError(f"{w}: tensor {v.tensor} is not a static int32/int64 activation")
        numel = 1
        for d in t["shape"]:
            numel *= d
        if v.element >= numel:
            raise ValueError(f"{w}: element {v.element} >= {numel}")
        if v.bound >= len(exprs) or any(
                symbols[s].input == VALUE_INPUT for s in _syms_read(exprs[v.bound])):
            raise ValueError(f"{w}: bound expression missing or reading a value symbol")
        values.append(v)
    for k, s in enumerate(symbols):
        if s.input == VALUE_INPUT and k not in defined:
            raise ValueError(f"{what} symbol {k} ({s.name}): a value symbol no value defines")
    return values


def _syms_read(words) -> List[int]:
    out, i = [], 0
    while i < len(words):
        if words[i] in (CONST, SYM):
            if words[i] == SYM:
                out.append(words[i + 1])
            i += 2
        else:
            i += 1
    return out


def _check_control(w: str, k: int, inputs, outputs, params, ws, tensors) -> None:
    want_in = 1 if k == CONTROL_BRANCH_IF_ZERO else 0
    if len(inputs) != want_in or outputs or len(params) != 2 or ws != NONE_U32:
        raise ValueError(f"{w}: malformed {CONTROL_KERNELS[k]} record")
    if want_in and (inputs[0] < 0 or tensors[inputs[0]]["dtype"] != "bool"
                    or tensors[inputs[0]]["nbytes"] != 1):
        raise ValueError(f"{w}: the branch condition must be a one-byte bool tensor")


def _read_tensor(r: _Reader, string, off: int, ti: int, prev: List[dict], arena: int,
                 w_off: int, w_size: int, what: str) -> dict:
    rec = struct.unpack_from("<IBBBB8iIIIfiI", r.d, off)
    name, code, ndim, storage, layout = rec[:5]
    dims = rec[5:13]
    t_offset, nbytes, base, scale, zp, reserved = rec[13:]
    try:
        dtype = dtype_from_code(code)
    except KeyError:
        raise ValueError(f"{what}: unknown dtype code {code}") from None
    if ndim > MAX_DIMS:
        raise ValueError(f"{what}: ndim {ndim} > {MAX_DIMS}")
    if storage not in STORAGE_NAMES:
        raise ValueError(f"{what}: unknown storage {storage}")
    if layout not in LAYOUT_NAMES:
        raise ValueError(f"{what}: unknown layout {layout}")
    if reserved:
        raise ValueError(f"{what}: reserved field is not 0")
    if any(d < 0 for d in dims[:ndim]) or any(d != 0 for d in dims[ndim:]):
        raise ValueError(f"{what}: bad dims {dims}")
    want = itemsize(dtype) * math.prod(dims[:ndim])
    if want != nbytes:
        raise ValueError(f"{what}: nbytes {nbytes} != dims product x itemsize = {want}")
    isz = itemsize(dtype)
    sname = STORAGE_NAMES[storage]
    if sname == "arena":
        if t_offset + nbytes > arena:
            raise ValueError(f"{what}: [{t_offset}, {t_offset + nbytes}) outside arena of {arena}")
        if t_offset % isz:
            raise ValueError(f"{what}: arena offset {t_offset} not aligned to {isz}")
    elif sname == "weight":
        if t_offset + nbytes > w_size:
            raise ValueError(f"{what}: [{t_offset}, {t_offset + nbytes}) outside weights of "
                             f"{w_size}")
        if t_offset % WEIGHT_MIN_ALIGN:
            raise ValueError(f"{what}: weight offset {t_offset} not {WEIGHT_MIN_ALIGN}-aligned")
    else:
        if base >= ti:
            raise ValueError(f"{what}: view base {base} is not an earlier tensor")
        b = prev[base]
        if b["storage"] == "view":
            raise ValueError(f"{what}: view base {base} is itself a view")
        if t_offset + nbytes > b["nbytes"]:
            raise ValueError(f"{what}: view [{t_offset}, {t_offset + nbytes}) outside base of "
                             f"{b['nbytes']} bytes")
        if (b["offset"] + t_offset) % isz:
            raise ValueError(f"{what}: view address not aligned to {isz}")
    if sname != "view" and base != NONE_U32:
        raise ValueError(f"{what}: base must be 0xFFFFFFFF for a non-view")
    return {"name": string(name, f"{what} name"), "dtype": dtype, "shape": tuple(dims[:ndim]),
            "storage": sname, "layout": layout, "offset": t_offset, "nbytes": nbytes,
            "base": -1 if sname != "view" else base, "scale": scale, "zero_point": zp}


# ----------------------------------------------------------------------------- C array

def _hex_table():
    import numpy as np
    tab = np.zeros((256, 5), dtype=np.uint8)
    for b in range(256):
        tab[b] = np.frombuffer(f"0x{b:02x},".encode(), dtype=np.uint8)
    return tab


_BYTES_PER_LINE = 16


def c_array_source(blob: bytes, symbol: str) -> str:
    """A C file defining `const unsigned char SYMBOL[]` (64-byte aligned where the compiler
    allows; load with copy=1 otherwise) and `const unsigned int SYMBOL_size`.
    Vectorised with numpy: ~1 s and ~6x the blob in memory for 100 MB."""
    import numpy as np
    if not symbol.isidentifier() or not symbol.isascii():
        raise ValueError(f"{symbol!r} is not a C identifier")
    n = len(blob)
    arr = np.frombuffer(bytes(blob), dtype=np.uint8)
    cells = _hex_table()[arr]                             # (n, 5): "0xAB,"
    full = n // _BYTES_PER_LINE * _BYTES_PER_LINE
    rows = cells[:full].reshape(-1, _BYTES_PER_LINE * 5)
    lines = np.empty((rows.shape[0], 4 + rows.shape[1] + 1), dtype=np.uint8)
    lines[:, :4] = ord(" ")
    lines[:, 4:-1] = rows
    lines[:, -1] = ord("\n")
    tail = cells[full:].reshape(-1)
    body = lines.tobytes() + ((b"    " + tail.tobytes() + b"\n") if len(tail) else b"")
    head = (
        "/* Generated by megcc_builder.emit.model_blob: a compiled model (.tiny) embedded as\n"
        " * data, for targets without a file system. Pass it to megcc_model_load_from_memory\n"
        " * (copy=0 uses the weights in place; that needs the 64-byte alignment below). */\n"
        "#if defined(__GNUC__) || defined(__clang__)\n"
        "#define MEGCC_BLOB_ALIGNED __attribute__((aligned(64)))\n"
        "#elif defined(_MSC_VER)\n"
        "#define MEGCC_BLOB_ALIGNED __declspec(align(64))\n"
        "#else\n"
        "#define MEGCC_BLOB_ALIGNED /* unknown compiler: load with copy=1 */\n"
        "#endif\n"
        f"const unsigned int {symbol}_size = {n}u;\n"
        f"MEGCC_BLOB_ALIGNED const unsigned char {symbol}[{max(n, 1)}] = {{\n"
    )
    # An empty initializer list is not C99; a zero-length blob is invalid anyway.
    return head + (body.decode("ascii") if n else "    0\n") + "};\n"
