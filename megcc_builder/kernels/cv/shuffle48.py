"""SSSE3 byte shuffles of one 48-byte block (16 RGB pixels) as C: deinterleaving RGB into
three 16-byte planes and interleaving them back, generated from the permutation instead
of written out by hand (each output register ORs pshufb of the input registers it needs)."""
from __future__ import annotations

from typing import List, Sequence


def shuffle_code(src_of: Sequence[int], ins: Sequence[str], outs: Sequence[str]) -> str:
    """C statements setting each `outs[k]` (16 bytes) from `ins` (16 bytes each):
    output byte j (of the 48) is input byte src_of[j]."""
    lines: List[str] = []
    for oc, out in enumerate(outs):
        terms = []
        for ic, name in enumerate(ins):
            mask = []
            for j in range(16):
                s = src_of[oc * 16 + j]
                mask.append(s - ic * 16 if ic * 16 <= s < ic * 16 + 16 else -1)
            if any(m >= 0 for m in mask):
                terms.append(f"_mm_shuffle_epi8({name}, _mm_setr_epi8({', '.join(map(str, mask))}))")
        expr = terms[0]
        for t in terms[1:]:
            expr = f"_mm_or_si128({expr},\n            {t})"
        lines.append(f"{out} = {expr};")
    return "\n".join(lines)


DEINTERLEAVE = [3 * i + p for p in range(3) for i in range(16)]  # planes from RGBRGB...
INTERLEAVE = [16 * (j % 3) + j // 3 for j in range(48)]          # RGBRGB... from planes
