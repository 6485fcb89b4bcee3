"""The size report CMake prints after linking an app with a megcc model library:

    python megcc_size_report.py SIZE_TOOL LIBRARY PROGRAM MANIFEST

one line each for the library's and the program's text/data/bss totals, one per model
with its blob and arena bytes (the per-object table `size -t` prints is left out) and one
per CV function (tinycv) the program links, with its text bytes."""
import json
import subprocess
import sys


def totals(size_tool: str, path: str, per_object_total: bool):
    args = [size_tool, "-B"] + (["-t"] if per_object_total else []) + [path]
    out = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    if out.returncode != 0:
        sys.exit(f"megcc size report: {size_tool} failed: {out.stdout.strip()}")
    text, data, bss = (int(x) for x in out.stdout.strip().splitlines()[-1].split()[:3])
    return text, data, bss


def main(argv):
    size_tool, library, program, manifest = argv
    lib = totals(size_tool, library, True)
    prog = totals(size_tool, program, False)
    with open(manifest, "r", encoding="utf-8") as f:
        models = json.load(f)["models"]
    print(f"megcc size report: library text {lib[0]} data {lib[1]} bss {lib[2]}; "
          f"program text {prog[0]} data {prog[1]} bss {prog[2]}")
    for m in models:
        arena = max(p["arena_bytes"] for p in m["plans"])
        print(f"megcc size report: model {m['name']} blob {m['blob_bytes']} bytes, "
              f"arena {arena} bytes ({m['arena_macro']})")
    try:
        from megcc_builder.cv.sizes import cv_function_sizes, nm_of
    except ImportError:  # an older megcc_builder: no CV functions to report
        return
    for name, nbytes in cv_function_sizes(nm_of(size_tool), program):
        print(f"megcc size report: cv {name}: text {nbytes} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
