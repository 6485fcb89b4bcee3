"""Generated kernels are clean C99: warning-free under gcc and clang with -Werror, for
models that together use every kernel family."""
import glob
import os
import subprocess

import onnx
import pytest

from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.host import RUNTIME_DIR

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wno-overlength-strings"]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("kernels"))
    models = ["squeezenet", "resnet50", "inception_v2", "densenet121", "shufflenet"]
    specs = [ModelSpec(m, os.path.join(LIGHT, f"light_{m}.onnx")) for m in models]
    compile_bundle(specs, out, save_c_array=False)
    return out


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_kernels_compile_without_warnings(bundle_dir, cc):
    r = subprocess.run([cc, *FLAGS, "-I", os.path.join(RUNTIME_DIR, "include"), "-c",
                        os.path.join(bundle_dir, "kernels.c"), "-o",
                        os.path.join(bundle_dir, f"kernels_{cc}.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_runtime_compiles_without_warnings(tmp_path, cc):
    for src in sorted(glob.glob(os.path.join(RUNTIME_DIR, "src", "*.c"))):
        r = subprocess.run([cc, *FLAGS, "-I", os.path.join(RUNTIME_DIR, "include"), "-c", src,
                            "-o", str(tmp_path / "x.o")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-4000:]
