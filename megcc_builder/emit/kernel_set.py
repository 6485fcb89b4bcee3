"""Identity of a kernel set: the number a model blob carries so the runtime can refuse a
blob compiled against other kernels (docs/model-format.md, header field `kernel_set_id`).

FNV-1a 64 over, for each kernel sorted by name: the UTF-8 name, a NUL byte, the UTF-8
source, a NUL byte. The NULs keep ("ab", "c") and ("a", "bc") apart. Sorting makes the id
independent of the order the caller happened to collect kernels in; the *table order* is
still part of the contract, which is why the loader also compares every kernel name.
"""
from typing import Iterable, Tuple

FNV64_OFFSET = 0xCBF29CE484222325
FNV64_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1


def fnv1a64(data: bytes, h: int = FNV64_OFFSET) -> int:
    for b in data:
        h ^= b
        h = (h * FNV64_PRIME) & _MASK64
    return h


def kernel_set_id(names_and_sources: Iterable[Tuple[str, str]]) -> int:
    items = sorted(names_and_sources, key=lambda ns: ns[0])
    seen = set()
    h = FNV64_OFFSET
    for name, source in items:
        if name in seen:
            raise ValueError(f"kernel {name!r} listed twice")
        seen.add(name)
        h = fnv1a64(name.encode("utf-8") + b"\0", h)
        h = fnv1a64(source.encode("utf-8") + b"\0", h)
    return h
