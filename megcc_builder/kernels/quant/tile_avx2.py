"""The int16-pair multiply-add tile the AVX2 int8 GEMM kernels share (im2col conv, the
(tap, channel pair) conv, the integer Winograd): MR rows of 16 int32 accumulators
(c{r}0: columns 0-7, c{r}1: 8-15); per reduction step one int32 (an int16 pair) of row r
broadcast and `vpmaddwd` against the two 16-column vectors b0, b1 (exact in int32 for
operands within [-255, 255] or the Winograd's transformed ones)."""
from __future__ import annotations

from typing import Callable, List


def zero_accumulators(mr: int, indent: str) -> List[str]:
    return [f"{indent}__m256i c{r}0 = _mm256_setzero_si256(), c{r}1 = _mm256_setzero_si256();"
            for r in range(mr)]


def madd_step(mr: int, pair_of_row: Callable[[int], str], indent: str,
              columns: int = 16) -> List[str]:
    """C statements of one reduction step (`av` declared, b0 and b1 loaded by the caller):
    row r's pair is the int32 expression pair_of_row(r). columns=8: b0 and c{r}0 only."""
    lines = []
    for r in range(mr):
        lines += [f"{indent}av = _mm256_set1_epi32({pair_of_row(r)});",
                  f"{indent}c{r}0 = _mm256_add_epi32(c{r}0, _mm256_madd_epi16(av, b0));"]
        if columns == 16:
            lines.append(f"{indent}c{r}1 = _mm256_add_epi32(c{r}1, _mm256_madd_epi16(av, b1));")
    return lines
