"""Run `megcc compile` for a CMake build, but only when its inputs really changed.

    python megcc_compile.py STAMP OUTPUT... -- megcc compile args...
    python megcc_compile.py --external-data MODEL.onnx   (lists its external-data files)

Make and Ninja decide by timestamps, while megcc writes only the files whose bytes change.
So after a `touch model.mge`, a plain rule would rerun the compiler on every build (its
unchanged outputs stay older than the model). This wrapper keeps, next to STAMP, a digest
of what determines the outputs — the command line, the bytes of every input file named on
it (model or config and the files a config lists are read by megcc itself; ONNX external
data is hashed when found beside the model) and the compiler's signature
(megcc_builder.signature: its version and a digest of its sources) —
and skips the compiler when the digest is unchanged and every output exists. Either way
it touches STAMP, the rule's declared output, so the build tool sees the rule as done.
"""
import hashlib
import os
import subprocess
import sys


def compiler_signature() -> str:
    """megcc_builder.signature.compiler_signature, the one the SCons tool uses too."""
    try:
        from megcc_builder.signature import compiler_signature as signature
    except ImportError:  # the command below runs this Python too: it would fail the same way
        sys.exit(f"megcc_compile.py: {sys.executable} cannot import megcc_builder "
                 "(set MEGCC_PYTHON to the Python that has megcc-builder installed)")
    return signature()


def input_files(args):
    """Existing files named on the command line, plus ONNX external data beside them."""
    found = []
    for a in args:
        if os.path.isfile(a):
            found.append(a)
            if a.lower().endswith(".onnx"):
                found += external_data(a)
    return found


def external_data(path):
    try:
        import onnx
        from onnx.external_data_helper import ExternalDataInfo, uses_external_data

        model = onnx.load(path, load_external_data=False)
    except Exception:
        return []
    base = os.path.dirname(path)
    return sorted({os.path.join(base, ExternalDataInfo(t).location)
                   for t in model.graph.initializer if uses_external_data(t)})


def main(argv):
    if argv[:1] == ["--external-data"]:  # for megcc.cmake: the files to depend on
        for path in argv[1:]:
            for f in external_data(os.path.abspath(path)):
                print(f)
        return
    if "--" not in argv or argv.index("--") < 1 or argv.index("--") == len(argv) - 1:
        sys.exit("usage: megcc_compile.py STAMP OUTPUT... -- COMMAND...")
    sep = argv.index("--")
    stamp, outputs, cmd = argv[0], argv[1:sep], argv[sep + 1:]
    h = hashlib.sha256(compiler_signature().encode() + b"\0")
    for a in cmd[1:]:  # cmd[0] (the Python path) does not change what is generated
        h.update(a.encode() + b"\0")
    for f in input_files(cmd[1:]):
        with open(f, "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    digest = h.hexdigest()
    digest_file = stamp + ".sha256"
    try:
        with open(digest_file) as f:
            same = f.read().strip() == digest
    except OSError:
        same = False
    if not (same and all(os.path.exists(o) for o in outputs)):
        rc = subprocess.call(cmd)
        if rc:
            sys.exit(rc)
        with open(digest_file, "w") as f:
            f.write(digest + "\n")
    with open(stamp, "a"):
        os.utime(stamp, None)


if __name__ == "__main__":
    main(sys.argv[1:])
