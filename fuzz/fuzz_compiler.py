"""Compiler-side fuzzer (atheris, coverage-guided over megcc_builder's Python code): the
ONNX reader and the whole compile pipeline behind it, the MegEngine reader, and the
JSON/YAML config reader.

    python fuzz/fuzz_compiler.py [atheris/libFuzzer flags] CORPUS_DIR... 
    python fuzz/fuzz_compiler.py --make-seeds DIR     (seed corpus: real models, configs)

Input: byte 0 picks the reader (0-4 ONNX, 5 MegEngine, 6 JSON config, 7 YAML config, by
value mod 8); the rest is the file. A user-causable problem must come out as CompileError
(the one-line message the CLI prints); any other exception -- an internal error, a
RecursionError, a MemoryError below the RSS limit -- is a finding, and so is a hang
(-timeout). By default the readers run (model file -> Graph IR, config -> model specs);
with MEGCC_FUZZ_COMPILE=1 parsed models are compiled in full (shape inference and
folding, passes, kernels, blob and its read_model self-check) -- deeper, and for now it
finds a bug within minutes (fuzz/README.md, results), so CI smokes the readers.

atheris is pinned in requirements.txt (2.3.0, wheels for CPython 3.10).
"""
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# MEGCC_FUZZ_MGE=1 includes the MegEngine reader: MegEngine's native loader segfaults on
# some corrupt files (a finding we cannot fix in our code: fuzz/README.md), which ends a
# run, so by default byte value 5 reads ONNX too.
KINDS = ["onnx"] * 5 + ["mge" if os.environ.get("MEGCC_FUZZ_MGE") == "1" else "onnx",
                        "json", "yaml"]
# MEGCC_FUZZ_COMPILE=1: compile parsed models in full (frontend, passes, kernels, blob);
# default: the readers only (model file -> Graph IR, config -> specs), what CI smokes.
COMPILE = os.environ.get("MEGCC_FUZZ_COMPILE") == "1"
GOOD_CONFIG_MODEL = "good.onnx"
WORK = tempfile.mkdtemp(prefix="megcc-fuzz-compiler-")


def _write(name: str, data: bytes) -> str:
    path = os.path.join(WORK, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def one_input(data: bytes) -> None:
    from megcc_builder.compiler import ModelSpec, compile_model, serialize_model
    from megcc_builder.config import load_config
    from megcc_builder.ir import CompileError

    if not data:
        return
    kind, payload = KINDS[data[0] % len(KINDS)], data[1:]
    try:
        if kind in ("json", "yaml"):
            load_config(_write(f"config.{kind}", payload))
            return
        path = _write(f"model.{kind}", payload)
        if not COMPILE:
            from megcc_builder.frontend.mge import load_mge
            from megcc_builder.frontend.onnx import load_onnx

            (load_onnx if kind == "onnx" else load_mge)(path)
            return
        model = compile_model(ModelSpec("fuzz", path))
        if kind == "onnx":
            serialize_model(model, _kernels_of(model), 0)
    except CompileError as exc:
        line = exc.one_line()
        if "\n" in line or len(line) > 4000:
            raise AssertionError(f"error message is not one short line: {line[:300]!r}")


def _kernels_of(model):
    from megcc_builder.compiler import shared_kernels

    return shared_kernels([model])


def make_seeds(out: str) -> None:
    """Seed corpus: the fuzz seed models (make_seeds.py), the digits sample, configs."""
    import json

    import onnx

    sys.path.insert(0, os.path.join(ROOT, "fuzz"))
    import make_seeds as ms

    os.makedirs(out, exist_ok=True)
    for name, (make, _) in ms.ONNX_SEEDS.items():
        with open(os.path.join(out, f"onnx_{name}"), "wb") as f:
            f.write(b"\0" + make().SerializeToString())
    with open(ms.DIGITS, "rb") as src, open(os.path.join(out, "mge_digits"), "wb") as f:
        f.write(b"\5" + src.read())
    cfg = {"dump_dir": "out", "models": [{"model_name": "m", "model_path": GOOD_CONFIG_MODEL,
                                          "input_shape_str": "x=(1,2,8,8):x=(2,2,8,8)",
                                          "enable_nchw44": False, "mgb_fuse_kernel": True}]}
    with open(os.path.join(out, "json_config"), "wb") as f:
        f.write(b"\6" + json.dumps(cfg).encode())
    yaml_text = ("dump_dir: out\nmodels:\n  - model_name: m\n    model_path: good.onnx\n"
                 "    input_shape_str: \"x=(1,2,8,8)\"\n    enable_nchw44: false\n")
    with open(os.path.join(out, "yaml_config"), "wb") as f:
        f.write(b"\7" + yaml_text.encode())


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--make-seeds":
        make_seeds(sys.argv[2])
        return
    import atheris

    sys.path.insert(0, os.path.join(ROOT, "fuzz"))
    import make_seeds as ms
    import onnx

    onnx.save(ms.cnn(), os.path.join(WORK, GOOD_CONFIG_MODEL))  # what configs point at
    with atheris.instrument_imports(include=["megcc_builder"]):
        import megcc_builder.compiler  # noqa: F401
        import megcc_builder.config  # noqa: F401
        import megcc_builder.frontend.mge  # noqa: F401
        import megcc_builder.frontend.onnx  # noqa: F401
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
