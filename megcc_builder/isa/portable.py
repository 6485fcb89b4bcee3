"""The portable level: C99 only, on every target (the default of `megcc compile`)."""
from __future__ import annotations

from .description import IsaSpec


GENERIC = IsaSpec("generic", "portable C99 (every target)", "any")
