"""Build and run compiled models on this machine (the oracle loop of the tests and the
`megcc run` command).

The runtime is compiled once into a static library (cached by the hash of its sources and
flags); each kernel set is compiled and linked once (cached by the hash of kernels.c) into
a shared library loaded into this process (build_shared_library, native.py: the default
way to run on the host) or into the runner executable (build_runner: cross targets under
their emulator, sanitizer and valgrind builds, and on request), so a test suite that
compiles many models pays gcc only for new kernels.
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .emit.model_blob import read_model
from .ir import CompileError
from .ir.dtypes import numpy_dtype
from .resources import resource_dir
from .isa import host_level, spec
from .isa.levels import under_valgrind  # noqa: F401 (host.under_valgrind is public)

RUNTIME_DIR = resource_dir("runtime")
DEFAULT_CC = os.environ.get("CC", "gcc")
DEFAULT_CFLAGS = ["-std=c99", "-O3", "-march=native", "-fno-strict-aliasing"]
# MEGCC_SANITIZE=1 builds the runtime, kernels and runner with AddressSanitizer + UBSan, so
# every host run of the test suites doubles as a memory-safety check: any report makes the
# runner exit non-zero (UBSan does not recover), which run_blob turns into an exception.
SANITIZE_CFLAGS = ["-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                   "-fno-omit-frame-pointer"]


# MEGCC_VALGRIND=1 runs every runner under valgrind memcheck instead (no leaks, no invalid
# access, no use of uninitialised values); -g, and -march=native capped at x86-64-v3:
# valgrind executes AVX2/FMA (the x86_64-v3 kernels) but not AVX-512.
VALGRIND_CMD = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite"]


def sanitizing() -> bool:
    return os.environ.get("MEGCC_SANITIZE", "") not in ("", "0")


def _with_sanitizers(cflags: List[str]) -> List[str]:
    """cflags, plus the sanitizer flags when MEGCC_SANITIZE is set (-O1 after -O3 wins);
    for MEGCC_VALGRIND, -march=native capped at x86-64-v3, and -g."""
    if sanitizing() and under_valgrind():
        raise RuntimeError("MEGCC_SANITIZE and MEGCC_VALGRIND exclude each other")
    if under_valgrind():
        # valgrind does not decode AVX-512: at most the x86-64-v3 level's own flags
        level = host_level()
        arch = list(spec("x86_64-v3" if level in ("x86_64-v4", "x86_64-vnni") else level).cflags)
        return [f for f in cflags if f != "-march=native"] + arch + ["-g"]
    return cflags + SANITIZE_CFLAGS if sanitizing() else cflags


def cache_dir() -> str:
    d = os.environ.get("MEGCC_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "megcc-builder")
    os.makedirs(d, exist_ok=True)
    return d


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def runtime_sources() -> List[str]:
    return sorted(glob.glob(os.path.join(RUNTIME_DIR, "src", "*.c")))


def _run(cmd: Sequence[str], what: str) -> None:
    proc = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        out = proc.stdout.decode(errors="replace")
        # the first line is what a one-line report shows: the compiler's first error
        first = next((ln.strip() for ln in out.splitlines() if "error" in ln.lower()),
                     out.strip().splitlines()[0] if out.strip() else
                     f"exit status {proc.returncode}")
        raise RuntimeError(f"{what} failed: {first}\n{' '.join(cmd)}\n{out[-6000:]}")


def _publish(tmp_dir: str, final_dir: str) -> None:
    """Move a finished build into the cache; a concurrent identical build may win."""
    try:
        os.replace(tmp_dir, final_dir)
    except OSError:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _runtime_library(cc: str, cflags: List[str], ar: str = "ar", tool: str = "megcc_runner"
                     ) -> str:
    """The runtime + one tool's objects (runtime/tools/<tool>.c: the runner, or the session
    support of a shared library) as one static library, built once per source hash."""
    sources = runtime_sources() + [os.path.join(RUNTIME_DIR, "tools", tool + ".c")]
    headers = sorted(glob.glob(os.path.join(RUNTIME_DIR, "include", "**", "*.h"), recursive=True)
                     + glob.glob(os.path.join(RUNTIME_DIR, "src", "*.h")))
    contents = []
    for p in sources + headers:
        with open(p, "rb") as f:
            contents.append(os.path.relpath(p, RUNTIME_DIR).encode() + b"\0" + f.read())
    final = os.path.join(cache_dir(), "runtime", _digest(cc, cflags, *contents))
    lib = os.path.join(final, f"lib{tool}.a")
    if os.path.exists(lib):
        return lib
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".build-", dir=os.path.dirname(final))
    objects = []
    for src in sources:
        obj = os.path.join(tmp, os.path.basename(src)[:-2] + ".o")
        _run([cc, *cflags, "-I", os.path.join(RUNTIME_DIR, "include"), "-c", src, "-o", obj],
             "building the runtime")
        objects.append(obj)
    _run([ar, "rcs", os.path.join(tmp, f"lib{tool}.a"), *objects], "archiving the runtime")
    _publish(tmp, final)
    return lib


def build_runner(kernels_c: str, cc: str = DEFAULT_CC,
                 cflags: Optional[Sequence[str]] = None, target: Optional[str] = None) -> str:
    """Path of a megcc_runner executable linking the given kernels.c (built if needed).
    target: a target of toolchains/ (e.g. arm64): cross-built with its compiler and flags,
    to be run by `run_blob(..., target=target)`; None = this machine. A bare-metal target's
    runner is linked for its 'board' memory profile and reads and writes the host's files
    through semihosting (the emulator's file system)."""
    ar, libs, ldflags = "ar", ["-lm", *_THREAD_LIBS], []
    if target is not None:
        t = _runnable_target(target)
        cc, ar, libs = t.cc, t.ar, t.link_libs()
        cflags = [*t.compile_flags(), "-O3"]
        if t.baremetal:  # the runner's libc hooks (malloc, files) go through semihosting
            cflags = [f for f in cflags if f != "-DMEGCC_NO_LIBC_HOOKS"] + ["-DMEGCC_NO_THREADS"]
            ldflags = [f for f in t.link_flags("board") if f not in t.machine_flags]
            libs = [*libs, "-lm"]
    else:
        cflags = _with_sanitizers(list(DEFAULT_CFLAGS if cflags is None else cflags))
    lib = _runtime_library(cc, cflags, ar)
    return _link_cached("runners", "megcc_runner", lib, kernels_c, lambda src, out: [
        cc, *cflags, *ldflags, "-I", os.path.join(RUNTIME_DIR, "include"), "-o", out, src,
        lib, *libs], "building the runner")


def _link_cached(kind: str, artifact: str, lib: str, kernels_c: str, link_cmd,
                 what: str) -> str:
    """Link a kernels.c with a runtime library once per (library, kernels) content, into
    the cache's `kind` directory; link_cmd(kernels_c copy, output path) is the command."""
    with open(kernels_c, "rb") as f:
        kernels_bytes = f.read()
    final = os.path.join(cache_dir(), kind, _digest(lib, kernels_bytes))
    out = os.path.join(final, artifact)
    if os.path.exists(out):
        return out
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".build-", dir=os.path.dirname(final))
    src = os.path.join(tmp, "kernels.c")
    shutil.copy(kernels_c, src)
    _run(link_cmd(src, os.path.join(tmp, artifact)), what)
    _publish(tmp, final)
    return out


def in_process_supported() -> bool:
    """Whether host runs can load the model into this process: not when the build is
    instrumented (ASan needs its runtime loaded first; valgrind watches a process of its
    own), where the runner subprocess is the way."""
    return not sanitizing() and not under_valgrind()


def build_shared_library(kernels_c: str, cc: str = DEFAULT_CC,
                         cflags: Optional[Sequence[str]] = None) -> str:
    """Path of a shared library holding the runtime, the session support
    (runtime/tools/megcc_session_support.c) and the given kernels.c, for loading into this
    process (megcc_builder.native). Everything is position-independent; cached like the
    runners, by the runtime library and the kernels' content. -Bsymbolic binds the runtime's
    references to this library's own kernel table, so several of these libraries (one per
    kernel set) live side by side in one process."""
    if not in_process_supported():
        raise RuntimeError("sanitizer/valgrind builds run in a subprocess, not in-process")
    cflags = list(DEFAULT_CFLAGS if cflags is None else cflags) + ["-fPIC"]
    lib = _runtime_library(cc, cflags, tool="megcc_session_support")
    # --whole-archive: the library must export every runtime entry point, used or not
    return _link_cached("shared", "libmegcc_model.so", lib, kernels_c, lambda src, out: [
        cc, *cflags, "-shared", "-Wl,-Bsymbolic", "-I", os.path.join(RUNTIME_DIR, "include"),
        "-o", out, src, "-Wl,--whole-archive", lib, "-Wl,--no-whole-archive", "-lm",
        *_THREAD_LIBS], "building the shared library")


# Libraries the runtime's thread pool needs on POSIX hosts.
_THREAD_LIBS = ["-lpthread"]


def _hosted_target(name: str):
    from . import targets

    t = targets.load(name)
    if t.baremetal:
        raise RuntimeError(f"target {name} has no file system for the runner; "
                           "bare-metal targets run through the SCons/CMake samples")
    t.check_available()
    return t


def _runnable_target(name: str):
    """A target whose runner this machine can build and run (hosted under qemu-user, or
    bare metal under qemu-system with semihosting)."""
    from . import targets

    t = targets.load(name)
    t.check_available()
    return t


def emulator_of(target: Optional[str]) -> List[str]:
    """The command prefix that runs a runner built for `target` here ([] = run directly)."""
    if target is None:
        return []
    return _hosted_target(target).emulator()


def _sanitizer_env() -> Optional[Dict[str, str]]:
    """Leak checking on and a distinctive exit code for ASan reports (None: inherit)."""
    if not sanitizing():
        return None
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:exitcode=86")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def run_blob(runner: str, blob_path: str, inputs: Sequence[np.ndarray], plan: int = 0,
             extra_args: Sequence[str] = (), emulator: Sequence[str] = (),
             shapes: bool = False, target: Optional[str] = None) -> List[np.ndarray]:
    """Run plan `plan` of a compiled model with inputs in plan order; outputs in order.
    shapes: run at the inputs' own shapes (a dynamic plan, docs/dynamic-shapes.md).
    target: a bare-metal target whose emulator runs the runner (instead of `emulator`)."""
    return run_blob_logged(runner, blob_path, inputs, plan, extra_args, emulator, shapes,
                           target)[0]


def run_blob_logged(runner: str, blob_path: str, inputs: Sequence[np.ndarray], plan: int = 0,
                    extra_args: Sequence[str] = (), emulator: Sequence[str] = (),
                    shapes: bool = False, target: Optional[str] = None
                    ) -> Tuple[List[np.ndarray], str]:
    """run_blob, plus what the runner printed (timings, --profile lines)."""
    bare = _runnable_target(target) if target is not None else None
    if bare is not None and not bare.baremetal:
        emulator, bare = bare.emulator(), None
    with open(blob_path, "rb") as f:
        info = read_model(f.read())
    p = info["plans"][plan]
    out_descs = [p["tensors"][i] for i in p["outputs"]]
    arrays = _plan_arrays(info, plan, inputs, blob_path, check_shapes=not shapes)
    if shapes:
        extra_args = [*extra_args, *[a for i, arr in enumerate(arrays)
                                     for a in ("-s", f"{i}:{','.join(map(str, arr.shape))}")]]
    with tempfile.TemporaryDirectory(prefix="megcc-run-") as tmp:
        in_dir, out_dir = os.path.join(tmp, "in"), os.path.join(tmp, "out")
        os.makedirs(in_dir)
        os.makedirs(out_dir)
        for i, arr in enumerate(arrays):
            # (np.array, not ascontiguousarray, which makes 0-d arrays 1-d)
            arr.astype(arr.dtype.newbyteorder("<"), copy=False).tofile(
                os.path.join(in_dir, f"input_{i}.bin"))
        checker = VALGRIND_CMD if under_valgrind() and not emulator and not bare else []
        # plan 0 asks for the model's default plan: the first one this build can run
        # (a multi-architecture model's other plans are another architecture's)
        args = [blob_path, in_dir, out_dir, *(["-p", str(plan)] if plan else []), *extra_args]
        cmd = bare.run_command(runner, args) if bare else [*emulator, *checker, runner, *args]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=_sanitizer_env())
        if proc.returncode != 0:
            said = proc.stderr if not bare else proc.stdout  # semihosting: one stream
            raise RuntimeError(f"runner failed ({proc.returncode}): "
                               f"{said.decode(errors='replace').strip()}")
        log = proc.stdout.decode(errors="replace")
        got = {int(i): tuple(int(d) for d in dims.split(",") if d) for i, dims in
               re.findall(r"^output_shape (\d+) ([\d,]*)$", log, re.M)}
        outs = []
        for i, desc in enumerate(out_descs):
            dt = numpy_dtype(desc["dtype"]).newbyteorder("<")
            data = np.fromfile(os.path.join(out_dir, f"output_{i}.bin"), dtype=dt)
            outs.append(data.reshape(got.get(i, desc["shape"])).astype(dt.newbyteorder("=")))
        return outs, log


def _plan_arrays(info: dict, plan: int, inputs: Sequence[np.ndarray], blob_path: str,
                 check_shapes: bool = True) -> List[np.ndarray]:
    """The inputs converted to the plan's dtypes (C order), shapes checked (unless the
    runtime checks them: a dynamic plan)."""
    p = info["plans"][plan]
    in_descs = [p["tensors"][i] for i in p["inputs"]]
    if len(inputs) != len(in_descs):
        raise CompileError(f"the model takes {len(in_descs)} inputs, got {len(inputs)}",
                           blob_path)
    arrays = []
    for arr, desc in zip(inputs, in_descs):
        arr = np.array(arr, dtype=numpy_dtype(desc["dtype"]), order="C")
        if check_shapes and tuple(arr.shape) != tuple(desc["shape"]):
            raise CompileError(f"input '{desc['name']}' must have shape "
                               f"{tuple(desc['shape'])}, got {arr.shape}", blob_path)
        arrays.append(arr)
    return arrays


def run_in_process(kernels_c: str, blob_path: str, inputs: Sequence[np.ndarray], plan: int = 0,
                   threads: int = 1) -> List[np.ndarray]:
    """run_blob's result, computed in this process: the kernels and the runtime built into
    a shared library (build_shared_library) and called through ctypes (native.py)."""
    from .native import NativeModel, NativeNetwork

    with open(blob_path, "rb") as f:
        blob = f.read()
    info = read_model(blob)
    dynamic = info["plans"][plan]["dynamic"] is not None
    arrays = _plan_arrays(info, plan, inputs, blob_path, check_shapes=not dynamic)
    model = NativeModel(build_shared_library(kernels_c), blob)
    try:
        net = NativeNetwork(model, threads)
        try:
            # plan 0: the model's default (its first plan this build runs)
            net.select_plan(plan or model.runnable.index(True))
            if dynamic:  # at the arrays' shapes (the same plan at its hint, or another)
                net.set_input_shapes([a.shape for a in arrays])
            return net.run(arrays)
        finally:
            net.close()
    finally:
        model.close()


def run_compiled(kernels_c: str, blob_path: str, inputs: Sequence[np.ndarray], plan: int = 0,
                 target: Optional[str] = None) -> List[np.ndarray]:
    """Run plan `plan` of a compiled model (inputs and outputs in plan order): in this
    process when it can (the host, no sanitizer/valgrind build), else in the runner
    process (under the target's emulator for a cross target)."""
    if target is None and in_process_supported():
        return run_in_process(kernels_c, blob_path, inputs, plan)
    return run_blob(build_runner(kernels_c, target=target), blob_path, inputs, plan,
                    target=target)


def compile_and_run(path: str, inputs: Dict[str, np.ndarray],
                    shapes: Optional[Dict[str, tuple]] = None, out_dir: Optional[str] = None,
                    fuse: bool = True, isa: str = "native",
                    target: Optional[str] = None) -> Dict[str, np.ndarray]:
    """Compile one model for the given input shapes, build, run; outputs by name.
    isa: the kernels' ISA level; by default the best this machine runs (megcc_builder.isa).
    target: run on a hosted target of toolchains/ under its emulator (isa must suit it)."""
    from .compiler import ModelSpec, compile_bundle

    shapes = dict(shapes or {})
    for name, arr in inputs.items():
        shapes.setdefault(name, tuple(np.asarray(arr).shape))
    own_dir = out_dir is None
    out_dir = out_dir or tempfile.mkdtemp(prefix="megcc-out-")
    try:
        bundle = compile_bundle([ModelSpec("model", path, [shapes] if shapes else [], fuse)],
                                out_dir, save_c_array=False, isa=isa)
        plan = bundle.models[0].plans[0]
        ordered = []
        for name in plan.graph.inputs:
            if name not in inputs:
                raise CompileError(f"no value given for input '{name}'", path)
            ordered.append(inputs[name])
        outs = run_compiled(bundle.files["kernels_c"], bundle.files["model.tiny"], ordered,
                            target=target)
        return dict(zip(plan.output_names, outs))
    finally:
        if own_dir:
            shutil.rmtree(out_dir, ignore_errors=True)


def run_onnx(model, inputs: Dict[str, np.ndarray], isa: str = "native",
             target: Optional[str] = None) -> List[np.ndarray]:
    """Compile an in-memory ONNX model and run it; outputs in the model's output order."""
    import onnx

    with tempfile.TemporaryDirectory(prefix="megcc-onnx-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        onnx.save(model, path)
        result = compile_and_run(path, inputs, isa=isa, target=target)
        return [result[o.name] for o in model.graph.output]
