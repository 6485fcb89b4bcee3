"""Where the compiler's non-Python files are: the C runtime, the toolchain descriptions, the
CMake package and the SCons tool.

In a checkout (editable install, or the repository on PYTHONPATH) they are the repository's
own `runtime/`, `toolchains/`, `cmake/` and `site_scons/` next to the package, so edits take
effect at once. A wheel carries copies in `megcc_builder/_data/` (setup.py puts them there),
with the same layout, so an installed package needs no repository. Everything that looks
for these directories asks `resource_dir`, so a checkout and an installation never mix.
"""
from __future__ import annotations

import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
PACKAGED_DATA_DIR = os.path.join(PACKAGE_DIR, "_data")
# The trees setup.py copies into the wheel (a subset of each, see DATA_TREES there).
RESOURCES = ("runtime", "toolchains", "cmake", "site_scons")


class ResourceError(RuntimeError):
    """A resource directory is missing: a broken installation (one line for the CLI)."""


def _checkout_root() -> str | None:
    """The repository root when the package runs from a checkout, else None. The marker is
    the project file beside the package: a site-packages directory has none."""
    root = os.path.dirname(PACKAGE_DIR)
    return root if os.path.isfile(os.path.join(root, "pyproject.toml")) else None


def resource_dir(name: str) -> str:
    """Absolute path of resource directory `name` (one of RESOURCES): the checkout's copy
    when running from a checkout, else the copy packaged with the wheel."""
    if name not in RESOURCES:
        raise ValueError(f"unknown resource {name!r} (one of {', '.join(RESOURCES)})")
    root = _checkout_root()
    path = os.path.join(root if root else PACKAGED_DATA_DIR, name)
    if not os.path.isdir(path):
        raise ResourceError(f"{path} is missing: megcc-builder is installed incompletely "
                            "(reinstall it with pip)")
    return path
