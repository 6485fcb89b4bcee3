"""Comparing a CV test program's output (tests/cv_cases.py) with OpenCV."""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from cv_cases import CASES, Case

NP = {"ui8": np.uint8, "f16": np.uint16, "f32": np.float32, "i32": np.int32}
TOL = 1e-4  # f32: |ours - ref| / max(1, |ref|)


def parse(stdout: str) -> Dict[str, object]:
    out: Dict[str, object] = {}
    for line in stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["case"] and len(parts) in (2, 3):
            out[parts[1]] = bytes.fromhex(parts[2] if len(parts) == 3 else "")
        elif parts[:1] == ["refused"]:
            out[parts[1]] = (int(parts[2]), int(parts[3]))
        elif parts[:1] == ["guards"]:
            out["__guards__"] = parts[1]
    return out


def problems(stdout: str, cases: List[Case] = CASES) -> List[str]:
    """Every disagreement with OpenCV (empty when all cases pass)."""
    got = parse(stdout)
    bad = []
    if got.get("__guards__") != "ok":
        bad.append(f"guard bytes: {got.get('__guards__')}")
    for c in cases:
        if c.id not in got:
            bad.append(f"{c.id}: no output")
            continue
        if c.refused:
            errors, untouched = got[c.id]
            if errors != 1 or not untouched:
                bad.append(f"{c.id}: not refused cleanly (errors={errors}, untouched={untouched})")
            continue
        if c.check is not None:
            problem = c.check(c.input(), got[c.id])
            if problem:
                bad.append(f"{c.id}: {problem}")
            continue
        ours = np.frombuffer(got[c.id], NP[c.out_dtype]).reshape(c.dst)
        ref = c.expected().astype(NP[c.out_dtype])
        if c.out_dtype == "f32":
            err = float(np.max(np.abs(ours.astype(np.float64) - ref) /
                               np.maximum(1.0, np.abs(ref.astype(np.float64)))))
            if not err <= TOL:
                bad.append(f"{c.id}: f32 error {err:.3g} > {TOL}")
        else:
            diff = np.abs(ours.astype(np.int64) - ref.astype(np.int64))
            if diff.max() > 0:
                bad.append(f"{c.id}: {int((diff > 0).sum())} of {diff.size} differ, max "
                           f"{int(diff.max())} (first at {np.argwhere(diff > 0)[0].tolist()})")
    return bad
