"""The compiler's build signature: what a build system records so that a new or edited
compiler regenerates every model (DESIGN.md, "Options are dependencies").

The SCons tool and the CMake helper both use `compiler_signature`, so the two agree and
neither knows how the compiler is laid out.
"""
from __future__ import annotations

import functools
import hashlib
import os
from typing import Iterator, Tuple

from ._version import __version__
from .resources import PACKAGE_DIR, resource_dir

# targets.py holds build facts (compilers, flags), which reach the generated files only
# through options that are on the command line anyway; _data holds packaged copies of the
# CMake/SCons helpers, not compiler code.
_SKIPPED_MODULES = {"targets.py"}
_SKIPPED_DIRS = {"__pycache__", "_data"}
_RUNTIME_PARTS = ("include", "src", "tools")


def _files(top: str, prefix: str, keep) -> Iterator[Tuple[str, str]]:
    """(relative path with '/' separators under `prefix`, absolute path) of files under top."""
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS]
        for f in files:
            if keep(f):
                path = os.path.join(root, f)
                rel = os.path.relpath(path, top).replace(os.sep, "/")
                yield f"{prefix}/{rel}", path


def signed_files() -> list:
    """Every file the signature covers, as sorted (relative name, absolute path) pairs: the
    package's Python modules and the runtime's sources. Relative names only, so the same
    compiler gives the same signature wherever it is installed."""
    found = list(_files(PACKAGE_DIR, "megcc_builder",
                        lambda f: f.endswith(".py") and f not in _SKIPPED_MODULES))
    runtime = resource_dir("runtime")
    for part in _RUNTIME_PARTS:
        found += _files(os.path.join(runtime, part), f"runtime/{part}",
                        lambda f: f.endswith((".c", ".h")))
    return sorted(found)


@functools.lru_cache(maxsize=None)
def compiler_signature() -> str:
    """"megcc-builder <version> <digest>": the digest covers the relative name and bytes of
    every file in signed_files(). Computed once per process."""
    h = hashlib.sha256()
    for rel, path in signed_files():
        with open(path, "rb") as f:
            data = f.read()
        h.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return f"megcc-builder {__version__} {h.hexdigest()[:16]}"
