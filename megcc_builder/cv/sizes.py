"""What the CV functions cost in a linked program: text bytes per tinycv function, from its
symbol table (the SCons and CMake size reports print them)."""
from __future__ import annotations

import subprocess
from typing import List, Tuple


def nm_of(size_tool: str) -> str:
    """The binutils nm beside a size tool (arm-none-eabi-size -> arm-none-eabi-nm)."""
    return size_tool[:-len("size")] + "nm" if size_tool.endswith("size") else "nm"


def cv_function_sizes(nm: str, program: str) -> List[Tuple[str, int]]:
    """[(function, text bytes)] of each public tinycv function the program links, then
    ("(shared helpers)", bytes) of their static helpers; [] when it links none."""
    out = subprocess.run([nm, "-S", "--defined-only", program], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    public, helpers = {}, 0
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        parts = line.split()
        if len(parts) == 4 and parts[3].startswith("tinycv_") and parts[2] in "TtWw":
            if parts[2] in "TW":
                public[parts[3]] = int(parts[1], 16)
            else:
                helpers += int(parts[1], 16)
    rows = sorted(public.items())
    return rows + [("(shared helpers)", helpers)] if rows else []
