"""Static memory planning: one arena, offsets chosen at compile time.

Every activation buffer (graph inputs, intermediate and output tensors, kernel workspaces)
gets a live interval over the instruction list. Buffers are placed greedily, largest first,
at the lowest offset that does not overlap any already-placed buffer whose interval
intersects ("greedy by size", the strategy TFLite and MegCC use). Views share their base's
storage and extend its interval. Element-wise outputs may reuse an input that dies at that
instruction (in place).

The liveness lower bound is the largest total of bytes live at one instruction; no
placement can use less, so `arena / lower_bound` measures how good the plan is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

ALIGN = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Buffer:
    name: str
    size: int
    first: int  # first instruction index that touches it (-1: before the first, inputs)
    last: int  # last instruction index that reads it
    offset: int = -1
    members: List[str] = field(default_factory=list)  # tensors stored here (in-place reuse)


@dataclass
class MemoryPlan:
    offsets: Dict[str, int]  # arena tensor / workspace name -> byte offset
    arena_size: int
    lower_bound: int
    buffers: List[Buffer]


def _place(ordered: List[Buffer]) -> Dict[str, int]:
    """First fit: each buffer at the lowest offset clear of time-overlapping placed ones."""
    placed: List[Tuple[int, Buffer]] = []
    offsets: Dict[str, int] = {}
    for buf in ordered:
        overlapping = sorted(((off, p) for off, p in placed
                              if p.first <= buf.last and buf.first <= p.last),
                             key=lambda item: item[0])
        offset = 0
        for off, p in overlapping:
            if offset + buf.size <= off:
                break
            offset = max(offset, off + p.size)
        offsets[buf.name] = offset
        placed.append((offset, buf))
    return offsets


def _crosses_loop(buf: Buffer, i: int, loops: Sequence[Tuple[int, int]]) -> bool:
    """Whether `buf` was made before a loop that instruction i is in: its value is needed
    again in the next iteration, so no instruction may take it over in place."""
    return any(first <= i <= last and buf.first < first for first, last in loops)


def _extend_over_loops(buffers: List[Buffer], loops: Sequence[Tuple[int, int]]) -> None:
    """A buffer live both inside a loop and outside it (defined before and read inside, or
    written inside and read after) must survive every iteration: widen its interval to
    the whole loop. Nested loops: repeat until nothing changes."""
    changed = bool(loops)
    while changed:
        changed = False
        for first, last in loops:
            for b in buffers:
                inside = b.first <= last and first <= b.last
                if inside and (b.first < first or b.last > last) and \
                        (b.first > first or b.last < last):
                    b.first, b.last = min(b.first, first), max(b.last, last)
                    changed = True


def plan_memory(steps: List[Tuple[List[str], List[str], Optional[Tuple[str, int]], List[str]]],
                sizes: Dict[str, int], graph_inputs: List[str], graph_outputs: List[str],
                loops: Sequence[Tuple[int, int]] = ()) -> MemoryPlan:
    """Place every arena tensor.

    steps: per instruction (reads, writes, (workspace name, bytes) or None, the reads
           whose buffer the write may take over)
    sizes: bytes of every arena tensor (views already resolved to their base by the caller)
    loops: (first, last) instruction of every loop (control flow): a buffer that a loop
           touches and that lives outside it stays alive over the whole loop (back edge)
    """
    end = len(steps)
    buffers: Dict[str, Buffer] = {}
    owner: Dict[str, str] = {}  # tensor -> buffer name

    for name in graph_inputs:
        if name in sizes:
            buffers[name] = Buffer(name, _align(sizes[name]), -1, -1, members=[name])
            owner[name] = name
    last_read: Dict[str, int] = {}
    for i, (reads, _, _, _) in enumerate(steps):
        for r in reads:
            last_read[r] = i

    for i, (reads, writes, workspace, in_place) in enumerate(steps):
        for r in reads:
            if r in owner:
                buf = buffers[owner[r]]
                buf.last = max(buf.last, i)
        for w in writes:
            if w in owner:  # written twice (not expected) - keep the first buffer
                continue
            reuse = None
            if in_place:
                for r in reads:
                    if r not in in_place:
                        continue
                    b = buffers.get(owner.get(r, ""))
                    if (b is not None and last_read.get(r) == i and b.size == _align(sizes[w])
                            and not _crosses_loop(b, i, loops)
                            and r not in graph_outputs and r not in graph_inputs
                            and all(last_read.get(m, -1) <= i for m in b.members)):
                        reuse = b
                        break
            if reuse is not None:
                reuse.members.append(w)
                owner[w] = reuse.name
            else:
                buffers[w] = Buffer(w, _align(sizes[w]), i, i, members=[w])
                owner[w] = w
        if workspace is not None:
            ws_name, ws_bytes = workspace
            buffers[ws_name] = Buffer(ws_name, _align(ws_bytes), i, i, members=[ws_name])
            owner[ws_name] = ws_name
    for name in graph_outputs:
        if name in owner:
            buffers[owner[name]].last = end
    for buf in buffers.values():
        for m in buf.members:
            buf.last = max(buf.last, last_read.get(m, buf.first))
        if buf.first == -1 and buf.last < 0:
            buf.last = 0
    _extend_over_loops(list(buffers.values()), loops)

    # Greedy placement is a heuristic; a few orders cost little at compile time and the
    # smallest arena wins (ties keep the first order, so the result is deterministic).
    orders = [
        lambda b: (-b.size, b.first, b.name),                       # greedy by size
        lambda b: (-(b.last - b.first), -b.size, b.name),           # longest-lived first
        lambda b: (-b.size * (b.last - b.first + 1), b.name),       # largest area first
        lambda b: (b.first, -b.size, b.name),                       # in execution order
    ]
    best = None
    for key in orders:
        offsets = _place(sorted(buffers.values(), key=key))
        size = max((offsets[b.name] + b.size for b in buffers.values()), default=0)
        if best is None or size < best[0]:
            best = (size, offsets)
    for buf in buffers.values():
        buf.offset = best[1][buf.name]
    placed = list(buffers.values())

    arena = max((b.offset + b.size for b in placed), default=0)
    lower = 0
    for t in range(-1, end + 1):
        lower = max(lower, sum(b.size for b in placed if b.first <= t <= b.last))
    offsets = {m: buffers[owner[m]].offset for m in owner}
    return MemoryPlan(offsets, arena, lower, sorted(placed, key=lambda b: b.offset))
