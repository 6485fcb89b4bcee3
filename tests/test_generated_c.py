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


@pytest.mark.parametrize("nchw44", [False, True])
def test_prelu_nhwc_and_split_kernels_compile_without_warnings(tmp_path, nchw44):
    """The PReLU epilogues, the NHWC-reading convs and the kernels split across threads
    (issue 14 part 3), at AVX2 and portable levels: the NHWC packed conv once emitted an unused
    padding helper."""
    import sys

    from megcc_builder.isa import host_level, spec

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "benchmarks"))
    import small_models
    from test_threads import _split_kernels_model

    paths = {}
    for name, m in (("face", small_models.face_cnn()), ("split", _split_kernels_model())):
        paths[name] = str(tmp_path / f"{name}.onnx")
        onnx.save(m, paths[name])
    levels = ["generic"] + (["x86_64-v3"] if spec("x86_64-v3").features
                            <= spec(host_level()).features else [])
    for level in levels:
        out = str(tmp_path / level)
        compile_bundle([ModelSpec(k, p, enable_nchw44=nchw44) for k, p in paths.items()], out,
                       save_c_array=False, isa=level)
        for cc in ("gcc", "clang"):
            flags = FLAGS + (["-mavx2", "-mfma"] if level != "generic" else [])
            r = subprocess.run([cc, *flags, "-I", os.path.join(RUNTIME_DIR, "include"), "-c",
                                os.path.join(out, "kernels.c"), "-o", os.path.join(out, "k.o")],
                               capture_output=True, text=True)
            assert r.returncode == 0, f"{level} {cc}: {r.stderr[-3000:]}"
