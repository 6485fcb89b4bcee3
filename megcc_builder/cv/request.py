"""Parsing and checking a build's CV request (config section or --cv flag)."""
from __future__ import annotations

from typing import Iterable, Tuple

from ..ir import CompileError
from ..ir.opdefs.cv import CV_OPERATORS

CvRequest = Tuple[Tuple[str, str], ...]  # sorted ((operator, dtype), ...)


def _entry(name: object, dtypes: object, source: str, where: str) -> CvRequest:
    if not isinstance(name, str) or name not in CV_OPERATORS:
        raise CompileError(f"{where}unknown CV operator '{name}' (known: "
                           f"{', '.join(sorted(CV_OPERATORS))})", source)
    op = CV_OPERATORS[name]
    if isinstance(dtypes, str):
        dtypes = [dtypes]
    if not isinstance(dtypes, (list, tuple)) or not dtypes:
        raise CompileError(f"{where}CV operator '{name}' needs a non-empty list of dtypes "
                           f"({', '.join(op.dtypes)})", source)
    out = []
    for dt in dtypes:
        if dt not in op.dtypes:
            raise CompileError(f"{where}CV operator '{name}' has no dtype '{dt}' (it has "
                               f"{', '.join(op.dtypes)})", source)
        out.append((name, dt))
    return tuple(out)


def check_cv_section(section: object, source: str) -> CvRequest:
    """The config's `"cv": {"resize_linear": ["ui8", "f32"], ...}` (JSON or YAML)."""
    if section is None or section == {}:
        return ()
    if not isinstance(section, dict):
        raise CompileError("field 'cv' must be an object of operator: [dtypes]", source)
    out = []
    for name, dtypes in section.items():
        out.extend(_entry(name, dtypes, source, f"cv.{name}: "))
    return tuple(sorted(set(out)))


def parse_cv_flag(text: str, source: str = "--cv") -> CvRequest:
    """`resize_linear:ui8,f32;flip:ui8` (the dtype list may be omitted: every dtype)."""
    out = []
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        name, _, dtypes = part.partition(":")
        name = name.strip()
        dts = [d.strip() for d in dtypes.split(",") if d.strip()]
        if not dts and name in CV_OPERATORS:
            dts = list(CV_OPERATORS[name].dtypes)
        out.extend(_entry(name, dts, source, f"'{part.strip()}': "))
    return tuple(sorted(set(out)))


def merge_requests(*requests: Iterable[Tuple[str, str]]) -> CvRequest:
    return tuple(sorted({entry for r in requests for entry in r}))
