#!/usr/bin/env python
"""Check that two checkouts generate the same model and the same kernel machine code.

For a refactoring that may only change kernels.c *text* (names, comments, declarations)
and so the kernel set id that hashes it. For each build of scripts/generated_digest.py's
set (models x ISA levels x options) both checkouts compile the model; then:

* model.tiny, model.tiny.c, manifest.json, model.tiny.txt and kernels.h must be equal
  once the old kernel set id is replaced by the new one (it names kernels.c's text);
* kernels.c is compiled by both with gcc (or the level's cross gcc) -O2 and the object
  code of every function (objdump -d, addresses stripped, symbols sorted) must be equal.

    python scripts/compare_builds.py --old /tmp/base --new . --only digits
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generated_digest  # noqa: E402  (the models and builds to check)
from megcc_builder.isa import spec  # noqa: E402  (the levels' compiler flags)

# the C compiler of each architecture; the flags are the level's own (isa/)
CC_OF_ARCH = {"any": "gcc", "x86_64": "gcc", "armv7": "arm-linux-gnueabihf-gcc",
              "aarch64": "aarch64-linux-gnu-gcc"}
RUNTIME_INCLUDE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "runtime", "include")
TEXT_FILES = ["model.tiny", "model.tiny.c", "manifest.json", "model.tiny.txt", "kernels.h"]


def compile_model(checkout: str, path: str, level: str, flags: list, out: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(checkout))
    cmd = [sys.executable, "-m", "megcc_builder.cli", "compile", path, "-o", out,
           "--name", "model", "--isa", level, *flags]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=out, env=env)
    if res.returncode:
        return "error: " + (res.stdout + res.stderr).strip()[-200:]
    m = re.search(r"kernel set 0x([0-9a-f]{16})", res.stdout + res.stderr)
    return m.group(1) if m else ""


def object_code(kernels_c: str, level: str) -> dict:
    """function name -> its disassembly (addresses stripped)."""
    isa = spec(level)
    gcc, march = CC_OF_ARCH[isa.arch], list(isa.cflags)
    obj = kernels_c + ".o"
    subprocess.run([gcc, "-std=c99", "-O2", "-fno-strict-aliasing", *march, "-I",
                    RUNTIME_INCLUDE, "-c", kernels_c, "-o", obj], check=True,
                   capture_output=True)
    dump = subprocess.run([gcc.replace("gcc", "objdump"), "-d", "--no-addresses",
                           "--no-show-raw-insn", obj], check=True, capture_output=True,
                          text=True).stdout
    # one block per function (symbol order may follow the source)
    blocks = re.split(r"\n(?=<)", dump.split("Disassembly of section", 1)[-1])
    return {b.split(">", 1)[0].lstrip("<"): b.strip() for b in blocks if b.startswith("<")}


def c_bytes(source: bytes) -> bytes:
    """The header text and the data bytes of a model.tiny.c, as one blob-like string."""
    lines = source.split(b"\n")
    data = [ln for ln in lines if ln.startswith(b"    0x")]
    text = [ln for ln in lines if not ln.startswith(b"    0x")]
    blob = bytes(int(t, 16) for ln in data for t in ln.strip().rstrip(b",").split(b","))
    return blob, b"\n".join(text)


def patch_blob(blob: bytes, old_id: int, new_id: int) -> bytes:
    """The blob with the new kernel set id (header) and so its CRC-32 (bytes 12..16)."""
    blob = blob.replace(old_id.to_bytes(8, "little"), new_id.to_bytes(8, "little"), 1)
    return blob[:12] + zlib.crc32(blob[16:]).to_bytes(4, "little") + blob[16:]


def compare_one(old: str, new: str, key: str, path: str, level: str, flags: list) -> tuple:
    label = f"{key} {level} {' '.join(flags)}".strip()
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        id_a, id_b = (compile_model(old, path, level, flags, a),
                      compile_model(new, path, level, flags, b))
        if id_a.startswith("error") or id_b.startswith("error"):
            same = id_a.startswith("error") and id_b.startswith("error")
            return label, [] if same else [f"refused by one side: {id_a} | {id_b}"], False
        problems = []
        for name in TEXT_FILES:
            if not os.path.exists(os.path.join(a, name)):
                continue
            with open(os.path.join(a, name), "rb") as f:
                da = f.read()
            with open(os.path.join(b, name), "rb") as f:
                db = f.read()
            ia, ib = int(id_a, 16), int(id_b, 16)
            if name == "model.tiny.c":  # the blob as C bytes: compare the bytes as blobs
                (blob_a, text_a), (blob_b, text_b) = c_bytes(da), c_bytes(db)
                da, db = patch_blob(blob_a, ia, ib) + text_a, blob_b + text_b
            elif name == "model.tiny":
                da = patch_blob(da, ia, ib)
            else:
                for x, y in ((id_a.encode(), id_b.encode()), (str(ia).encode(), str(ib).encode())):
                    da = da.replace(x, y)
            if da != db:
                problems.append(f"{name} differs")
        code_a = object_code(os.path.join(a, "kernels.c"), level)
        code_b = object_code(os.path.join(b, "kernels.c"), level)
        if set(code_a) != set(code_b):
            problems.append("kernels.c defines other functions")
        differing = sorted(f for f in set(code_a) & set(code_b) if code_a[f] != code_b[f])
        return label, problems, id_a != id_b, differing, len(code_a)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--only", help="substring of the model keys to keep")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "megcc-digest-mge"))
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    models = {f"onnx_{m}": os.path.join(generated_digest.LIGHT, f"light_{m}.onnx")
              for m in generated_digest.ONNX_MODELS}
    models.update(generated_digest.mge_dumps(args.cache))
    if args.only:
        models = {k: v for k, v in models.items() if args.only in k}
    builds = list(generated_digest.jobs(models))
    bad = ids_changed = functions = 0
    code_differs = {}  # function -> builds where its machine code differs
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for label, problems, changed, differing, n_functions in pool.map(
                lambda j: compare_one(args.old, args.new, *j), builds):
            ids_changed += changed
            functions += n_functions
            for f in differing:
                code_differs.setdefault(f, []).append(label)
            if problems:
                bad += 1
                print(f"{label}: {'; '.join(problems)}")
    for f, labels in sorted(code_differs.items()):
        print(f"object code of {f} differs in {len(labels)} builds (e.g. {labels[0]})")
    n_diff = sum(len(v) for v in code_differs.values())
    print(f"{len(builds)} builds: {len(builds) - bad} with the same blobs/manifests/model C "
          f"(kernel set id changed in {ids_changed}); {functions - n_diff} of {functions} "
          f"functions with identical object code, {len(code_differs)} distinct functions differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
