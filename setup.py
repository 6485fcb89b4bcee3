"""Packaging beyond pyproject.toml: the wheel carries the non-Python parts the compiler needs
when installed without a repository around it (megcc_builder/resources.py finds them).

The repository keeps runtime/, toolchains/, cmake/ and site_scons/ at its root (users,
samples and docs refer to them there); `build_py` copies them into the build's
megcc_builder/_data/ with the same layout, so cmake/.. and site_scons/../.. still lead
to runtime/ and toolchains/ inside the installed package.
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

# Repository trees shipped as package data, relative to the repository root.
DATA_TREES = ("runtime/include", "runtime/src", "runtime/tools", "toolchains", "cmake",
              "site_scons/site_tools/megcc")
DATA_DIR = os.path.join("megcc_builder", "_data")


class build_py_with_data(build_py):
    def run(self):
        super().run()
        # An editable install runs from the checkout, which has the trees already.
        if getattr(self, "editable_mode", False):
            return
        here = os.path.dirname(os.path.abspath(__file__))
        for tree in DATA_TREES:
            dest = os.path.join(self.build_lib, DATA_DIR, tree)
            if os.path.isdir(dest):
                shutil.rmtree(dest)  # a stale build/ must not ship deleted files
            shutil.copytree(os.path.join(here, tree), dest,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": build_py_with_data})
