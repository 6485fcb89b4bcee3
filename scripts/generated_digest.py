#!/usr/bin/env python
"""Digests of every generated file for a fixed set of models x ISA levels x options.

A restructuring of the compiler must not change what it generates (or must explain each
difference). Run this before and after, on the two checkouts, and diff the JSON:

    PYTHONPATH=/path/to/old .venv/bin/python scripts/generated_digest.py -o old.json
    .venv/bin/python scripts/generated_digest.py -o new.json
    .venv/bin/python scripts/generated_digest.py --diff old.json new.json

The compiler runs as a user runs it (`python -m megcc_builder.cli compile`), in a
subprocess whose PYTHONPATH is this process's, so the checkout under test is the one
PYTHONPATH (or the installed package) names; it runs in a temporary directory, since
`python -m` would import a megcc_builder found in the working directory first. Models: the benchmark set of ONNX models
shipped with the `onnx` package and the MegEngine test models (tests/mge_zoo.py), dumped
plain, optimised+fused and in MegEngine's NCHW44 format.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
ONNX_MODELS = ["resnet50", "squeezenet", "shufflenet", "inception_v1", "inception_v2",
               "densenet121", "vgg19"]
MGE_MODELS = ["mobilenet_v1", "mobilenet_v2", "resnet18", "shufflenet_v2", "digits", "opzoo"]
LEVELS = ["generic", "x86_64", "x86_64-v3", "x86_64-v4", "armv7-neon", "arm64-neon"]
NCHW44_LEVELS = ["generic", "armv7-neon", "arm64-neon"]


def mge_dumps(cache: str) -> dict:
    """name -> .mge path (dumped once into `cache`)."""
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
    import mge_zoo

    os.makedirs(cache, exist_ok=True)
    out = {}
    for name in MGE_MODELS:
        out[f"mge_{name}"] = mge_zoo.dump_model(name, os.path.join(cache, f"{name}.mge"), False)
        out[f"mge_{name}_opt"] = mge_zoo.dump_model(name, os.path.join(cache, f"{name}_opt.mge"),
                                                    True)
    for name in ("resnet18", "mobilenet_v2"):
        out[f"mge_{name}_nchw44"] = mge_zoo.dump_model(
            name, os.path.join(cache, f"{name}_nchw44.mge"), True, nchw44=True)
    return out


def jobs(models: dict):
    for key, path in sorted(models.items()):
        big = "vgg19" in key
        for level in LEVELS:
            yield key, path, level, []
            if key.startswith("mge_") and "nchw44" not in key and not big \
                    and level in NCHW44_LEVELS:
                yield key, path, level, ["--enable-nchw44"]
        if not big:
            yield key, path, "x86_64-v3", ["--no-fuse"]


def digest_one(key: str, path: str, level: str, flags: list) -> tuple:
    with tempfile.TemporaryDirectory(prefix="digest-") as out:
        cmd = [sys.executable, "-m", "megcc_builder.cli", "compile", path, "-o", out,
               "--name", "model", "--isa", level, *flags]
        # run outside any checkout: `python -m` puts the working directory first on sys.path
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=out)
        label = f"{key} {level} {' '.join(flags)}".strip()
        if res.returncode:
            return label, {"error": (res.stdout + res.stderr).strip()[-300:]}
        files = {}
        for name in sorted(os.listdir(out)):
            with open(os.path.join(out, name), "rb") as f:
                files[name] = hashlib.sha256(f.read()).hexdigest()
        return label, files


def diff(old_path: str, new_path: str) -> int:
    with open(old_path) as f:
        old = json.load(f)
    with open(new_path) as f:
        new = json.load(f)
    same = changed = 0
    for label in sorted(set(old) | set(new)):
        a, b = old.get(label), new.get(label)
        if a == b:
            same += 1
            continue
        changed += 1
        if a is None or b is None:
            print(f"{label}: only in {'new' if a is None else 'old'}")
            continue
        for name in sorted(set(a) | set(b)):
            if a.get(name) != b.get(name):
                print(f"{label}: {name} differs")
    print(f"{same} identical, {changed} different")
    return 1 if changed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", help="write the digests here (JSON)")
    ap.add_argument("--diff", nargs=2, metavar=("OLD", "NEW"))
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "megcc-digest-mge"))
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--only", help="substring of the model keys to keep")
    args = ap.parse_args(argv)
    if args.diff:
        return diff(*args.diff)
    models = {f"onnx_{m}": os.path.join(LIGHT, f"light_{m}.onnx") for m in ONNX_MODELS}
    models.update(mge_dumps(args.cache))
    if args.only:
        models = {k: v for k, v in models.items() if args.only in k}
    result = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for label, files in pool.map(lambda j: digest_one(*j), list(jobs(models))):
            result[label] = files
    text = json.dumps(result, indent=1, sort_keys=True) + "\n"
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    print(f"{len(result)} builds, {sum('error' in v for v in result.values())} refused",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
