"""Command line: `megcc compile | run | inspect`, and MegCC's `mgb-to-tinynn` form.

User errors print one line (`megcc: error: <file>: node '<n>': <what>`) and exit 1.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import List, Optional

import numpy as np

from ._version import __version__
from .ir import CompileError
from .ir.symbolic import Sym
from .targets import TargetError

ISA_HELP = ("kernel ISA level: generic (portable C), x86_64, x86_64-v3 (AVX2+FMA), x86_64-v4, "
            "x86_64-vnni (AVX-512 + VNNI int8), armv7-neon, arm64-neon, native (the best this "
            "machine runs)")
IOC16_HELP = ("compute in float16 where the ISA level has float16 arithmetic (arm64-fp16): "
              "convolutions, FC, pooling, element-wise, softmax; conversions at region edges")
COMPRESS_FP16_HELP = ("store convolution and fully-connected weights as float16 (half the model "
                      "file); kernels widen them to float32 as they read them")
NCHW44_HELP = ("run the convolution region in the NCHW44 (NC4HW4) layout; inputs and outputs "
               "stay NCHW")
FIXED_REQUANT_HELP = ("requantize int8 convolutions and matrix products in fixed point (a Q31 "
                      "multiplier and shift per channel, CMSIS-NN's arithmetic: no float unit "
                      "needed) instead of the model's float requantization")
NCHW88_HELP = ("run the float16 region of --enable-ioc16 in the NCHW88 layout (8 channels per "
               "block, one fp16 register); needs --enable-ioc16 and a level with float16 "
               "arithmetic (arm64-fp16)")
MAX_THREADS_HELP = ("the most threads the compiled model will run on (default: any): kernels "
                    "with a workspace area per thread size that many (at most 4) and split "
                    "into no more parts, whatever threads the network is given; 1 gives the "
                    "smallest arena")
NCHW44_DOT_HELP = ("NCHW44 with Armv8.2 dot-product (sdot/udot) kernels for int8; refused for "
                   "ISA levels without the instructions")
# The per-model compile options (ModelSpec fields; MegCC's config keys), one flag each on
# every command that compiles: (field, help).
MODEL_OPTIONS = (
    ("enable_nchw44", NCHW44_HELP),
    ("enable_nchw44_dot", NCHW44_DOT_HELP),
    ("enable_compress_fp16", COMPRESS_FP16_HELP),
    ("enable_ioc16", IOC16_HELP),
    ("enable_nchw88", NCHW88_HELP),
    ("enable_fixed_point_requant", FIXED_REQUANT_HELP),
)


def _add_model_options(parser, megcc_spelling_first: bool = False) -> None:
    """--enable-nchw44 and --enable_nchw44 (MegCC's spelling) for every model option."""
    for field, help_text in MODEL_OPTIONS:
        spellings = ["--" + field.replace("_", "-"), "--" + field]
        if megcc_spelling_first:
            spellings.reverse()
        parser.add_argument(*spellings, dest=field, action="store_true", help=help_text)
    parser.add_argument("--max-threads", "--max_threads", dest="max_threads", type=_threads,
                        default=0, metavar="N", help=MAX_THREADS_HELP)


def _threads(text: str) -> int:
    """--max-threads' value: a whole number >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not '{text}'")
    return int(text)


def _model_options(args) -> dict:
    """The model options a command line set, as ModelSpec keyword arguments."""
    return {**{field: getattr(args, field) for field, _ in MODEL_OPTIONS},
            "max_threads": args.max_threads}


# mgb-to-tinynn's target flags -> the ISA level of the kernels, and what the user should
# know when that level is not all MegCC's flag promises.
TARGET_FLAGS = {
    "baremetal": ("generic", ""),
    "arm64": ("arm64-neon", ""),
    "armv7": ("armv7-neon", ""),
    "arm64v7": (("arm64-neon", "armv7-neon"), ""),
    "armv7_with_dot": ("armv7-neon", "no dot-product kernels yet: NEON kernels"),
    "arm64_with_i8mm": ("arm64-i8mm", ""),
    "webassembly": ("generic", "portable C99 kernels"),
}


def _fail(message: str) -> int:
    # Names come from the model file and may hold newlines or control bytes: escape them so
    # the error stays one line.
    message = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", message)
    print(f"megcc: error: {message}", file=sys.stderr)
    return 1


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line like every other error (exit 2, as
    argparse does), not the usage block followed by the message."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog.split()[0]} --help)",
              file=sys.stderr)
        sys.exit(2)


def _installation_facts() -> dict:
    """What `megcc --<flag>` prints: where a build finds this installation's parts."""
    from .resources import resource_dir
    from .signature import compiler_signature

    return {
        "scons_toolpath": lambda: os.path.join(resource_dir("site_scons"), "site_tools"),
        "cmake_dir": lambda: resource_dir("cmake"),
        "runtime_dir": lambda: resource_dir("runtime"),
        "signature": compiler_signature,
    }


class _PrintFact(argparse.Action):
    """A flag like --version: print one fact about the installation and exit, whatever
    else is on the command line (so no subcommand is needed)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from .resources import ResourceError

        try:
            print(_installation_facts()[self.dest]())
        except ResourceError as exc:
            sys.exit(_fail(str(exc)))
        sys.exit(0)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _input_files(args) -> str:
    """The files a command was given, to name in an unexpected error."""
    files = [getattr(args, k, None) for k in ("json", "model")] + list(getattr(args, "models",
                                                                            None) or [])
    return ", ".join(f for f in files if f) or "megcc"


def _specs_from_args(models: List[str], shapes: Optional[str], name: Optional[str], fuse: bool,
                     hints: Optional[str] = None, value_caps: Optional[List[str]] = None,
                     **options):
    """ModelSpecs for model files given on the command line; options: MODEL_OPTIONS.
    Symbolic dimensions, their bounds (`W<=2048` in `shapes`) and `hints` ("W=320") keep
    a model's dimensions dynamic (docs/dynamic-shapes.md)."""
    from .compiler import ModelSpec
    from .config import parse_input_shapes, parse_shape_hints, parse_value_caps
    from .frontend.dims import SymbolSpec

    if name and len(models) > 1:
        raise CompileError("--name applies to a single model")
    symbols = SymbolSpec(hints=parse_shape_hints(hints) if hints else {})
    instances = parse_input_shapes(shapes, "--input-shapes", symbols.bounds) if shapes else []
    specs = []
    for path in models:
        model_name = name or os.path.splitext(os.path.basename(path))[0]
        caps = {}
        for text in value_caps or []:
            caps.update(parse_value_caps(text))
        specs.append(ModelSpec(model_name, path, instances, fuse, symbols=symbols,
                               value_caps=caps, **options))
    return specs


def _report(bundle, out_dir: str) -> None:
    print(f"wrote {out_dir}: {len(bundle.kernels)} kernels, kernel set "
          f"0x{bundle.kernel_set_id:016x}")
    for m in bundle.models:
        for p in m.plans:
            mem = p.memory
            ratio = mem.arena_size / mem.lower_bound if mem.lower_bound else 1.0
            print(f"  {m.spec.name} [{p.name}]: {len(p.instrs)} instructions, arena "
                  f"{mem.arena_size} B (liveness lower bound {mem.lower_bound} B, "
                  f"x{ratio:.3f}), model {len(m.blob)} B")
            if p.graph.symbols:  # a dynamic plan: the numbers above are its hints'
                print("    dynamic: " + ", ".join(
                    f"{n} in [{lo}, {hi}] (compiled for {h})"
                    for n, (lo, hi, h) in p.graph.symbols.items())
                      + f"; {len(p.guards)} guard{'s' if len(p.guards) != 1 else ''}")


def cmd_compile(args) -> int:
    from .compiler import compile_bundle
    from .config import load_config

    cv: tuple = ()
    if args.json:
        if args.models:  # the config names its models: a model given too would be ignored
            return _fail(f"{args.models[0]}: give either model files or --json CONFIG "
                         f"({args.json}), not both")
        dump_dir, specs, cv = load_config(args.json)
        out_dir = args.output or dump_dir
    else:
        if not args.models:
            return _fail("give a model file or --json CONFIG")
        if not args.output:
            return _fail("give the output directory with -o DIR")
        specs = _specs_from_args(args.models, args.input_shapes, args.name, not args.no_fuse,
                                 hints=args.shape_hints, value_caps=args.value_cap,
                                 **_model_options(args))
        out_dir = args.output
    bundle = compile_bundle(specs, out_dir, save_c_array=not args.no_c_array, isa=args.isa,
                            cv=_cv_request(cv, args.cv))
    _report(bundle, out_dir)
    return 0


CV_HELP = ('CV operators to generate (tinycv.c, tinycv_c.h), e.g. '
           '"resize_linear:ui8,f32;flip:ui8"; added to the config\'s "cv" section')


def _cv_request(from_config: tuple, flags: Optional[List[str]]) -> tuple:
    from .cv import merge_requests, parse_cv_flag

    return merge_requests(from_config, *(parse_cv_flag(f) for f in flags or []))


def _parse_feeds(items: List[str]):
    feeds = {}
    for item in items or []:
        if "=" not in item:
            raise CompileError(f"--input expects name=file.npy, got '{item}'")
        name, path = item.split("=", 1)
        if not os.path.isfile(path):
            raise CompileError("no such input file", path)
        try:
            feeds[name] = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise CompileError(f"not a .npy array ({exc})", path) from None
    return feeds


def cmd_run(args) -> int:
    if args.threads < 1:
        raise CompileError(f"--threads must be at least 1, not {args.threads}")
    args.isa = _run_isa(args)
    feeds = _parse_feeds(args.input)
    if os.path.isdir(args.model):
        return _run_compiled(args, feeds)
    created = not os.path.exists(args.output_dir)
    try:
        return _run_model(args, feeds)
    except BaseException:  # a refused input or a failed build leaves no output directory
        if created:
            import shutil

            shutil.rmtree(args.output_dir, ignore_errors=True)
        raise


def _run_model(args, feeds) -> int:
    """`megcc run MODEL`: compile for the arrays' (or given) shapes, build, run."""
    from .compiler import ModelSpec, compile_bundle
    from .config import parse_input_shapes
    from .ir.dtypes import numpy_dtype

    shapes = parse_input_shapes(args.input_shapes)[0] if args.input_shapes else {}
    for name, arr in feeds.items():
        shapes.setdefault(name, tuple(arr.shape))
    out_dir = args.output_dir
    build_dir = os.path.join(out_dir, "build")
    # (the first run of a kernel set also builds the runtime: say what is going on)
    print(f"compiling {os.path.basename(args.model)} for ISA level {args.isa}"
          + (f" at {', '.join(f'{n}={tuple(s)}' for n, s in shapes.items())}" if shapes
             else "") + (f", running under {args.target}'s emulator" if args.target else ""),
          flush=True)
    bundle = compile_bundle([ModelSpec("model", args.model, [shapes] if shapes else [],
                                       not args.no_fuse, **_model_options(args))],
                            build_dir, save_c_array=False, isa=args.isa)
    plan = bundle.models[0].plans[0]
    unknown = set(feeds) - set(plan.graph.inputs)
    if unknown:
        raise CompileError(f"--input names '{sorted(unknown)[0]}', which is not an input of "
                           "the model", args.model)
    rng = np.random.default_rng(args.seed)
    ordered = []
    for name in plan.graph.inputs:
        t = plan.graph.tensors[name]
        if name in feeds:
            ordered.append(_given_input(name, feeds[name], numpy_dtype(t.dtype), args.model))
        elif t.dtype.startswith("float"):
            ordered.append(rng.standard_normal(t.shape).astype(numpy_dtype(t.dtype)))
        else:
            ordered.append(rng.integers(0, 2, t.shape).astype(numpy_dtype(t.dtype)))
        print(f"input {name}: {ordered[-1].dtype} {list(ordered[-1].shape)} "
              + ("(--input)" if name in feeds else f"(seeded, --seed {args.seed})"))
    for name, arr in zip(plan.graph.inputs, ordered):
        want = plan.graph.tensors[name].shape
        if tuple(arr.shape) != tuple(want):
            raise CompileError(f"--input '{name}' has shape {tuple(arr.shape)}, the model "
                               f"was compiled for {tuple(want)}", args.model)
    from .host import in_process_supported

    if args.target or args.subprocess or not in_process_supported():
        outs, log = _run_runner(args, bundle.files["kernels_c"], bundle.files["model.tiny"],
                                ordered)
    else:
        outs, log = _run_in_process(args, build_dir, ordered)
    np.savez(os.path.join(out_dir, "outputs.npz"), **dict(zip(plan.output_names, outs)))
    if args.profile:
        _print_profile(log, plan)
    for line in log.splitlines():
        if line.startswith("latency"):
            print(line)
    for name, arr in zip(plan.output_names, outs):
        print(f"{name}: {arr.dtype} {list(arr.shape)}")
    print(f"wrote {os.path.join(out_dir, 'outputs.npz')}")
    return 0


def _given_input(name: str, arr: np.ndarray, want: np.dtype, path: str) -> np.ndarray:
    """An --input array as the model takes it: its dtype must be the input's (a float64
    array for a float32 input is a mistake to report, not to round silently)."""
    if arr.dtype != want:
        raise CompileError(f"--input '{name}' is {arr.dtype}, the model takes {want} "
                           f"(save it with .astype(np.{want.name}))", path)
    return arr


def _run_compiled(args, feeds) -> int:
    """`megcc run DIR`: an already compiled directory (kernels.c + one .tiny) run at the
    arrays' shapes, nothing recompiled: a static plan compiled for them, else a dynamic
    plan (docs/dynamic-shapes.md). A shape no plan accepts is a one-line error, and then
    nothing is written."""
    from .emit.model_blob import read_model
    from .host import in_process_supported
    from .ir.dtypes import numpy_dtype
    from .native import MegccRuntimeError
    from .session import _find_compiled

    if args.input_shapes:
        raise CompileError("--input-shapes does not apply to a compiled directory (the "
                           "arrays' shapes are used)", args.model)
    if not args.target:
        _refuse_foreign_kernels(args.model)
    kernels_c, blob_path = _find_compiled(args.model, None)
    model_name = os.path.basename(blob_path)[:-len(".tiny")]
    with open(blob_path, "rb") as f:
        plan = read_model(f.read())["plans"][0]
    inputs = [plan["tensors"][t] for t in plan["inputs"]]
    names = [t["name"] for t in inputs]
    unknown = sorted(set(feeds) - set(names))
    if unknown:
        raise CompileError(f"--input names '{unknown[0]}', which is not an input of the model "
                           f"(inputs: {', '.join(names)})", blob_path)
    rng = np.random.default_rng(args.seed)
    ordered = []
    for t in inputs:
        dt = numpy_dtype(t["dtype"])
        if t["name"] in feeds:
            ordered.append(np.ascontiguousarray(_given_input(t["name"], feeds[t["name"]], dt,
                                                             blob_path)))
        elif t["dtype"].startswith("float"):
            ordered.append(rng.standard_normal(t["shape"]).astype(dt))
        else:
            ordered.append(rng.integers(0, 2, t["shape"]).astype(dt))
        print(f"input {t['name']}: {ordered[-1].dtype} {list(ordered[-1].shape)} "
              + ("(--input)" if t["name"] in feeds else f"(seeded, --seed {args.seed})"))
    out_names = _output_names(args.model, model_name, plan)
    try:
        if args.target or args.subprocess or not in_process_supported():
            outs, log = _run_runner(args, kernels_c, blob_path, ordered, shapes=True)
        else:
            outs, log = _run_in_process(args, args.model, ordered, model_name)
    except (MegccRuntimeError, RuntimeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # the runtime's own words, whichever way it ran
        msg = re.sub(r" \(status \d+\)$", "", msg.split("input shapes refused: ")[-1])
        msg = msg[len("input shapes: "):] if msg.startswith("input shapes: ") else msg
        shapes = ", ".join(f"{n}={tuple(a.shape)}" for n, a in zip(names, ordered))
        raise CompileError(f"cannot run at {shapes}: {msg}", blob_path) from None
    os.makedirs(args.output_dir, exist_ok=True)
    np.savez(os.path.join(args.output_dir, "outputs.npz"), **dict(zip(out_names, outs)))
    if args.profile:
        _print_kernel_profile(log)
    for line in log.splitlines():
        if line.startswith("latency"):
            print(line)
    for name, arr in zip(out_names, outs):
        print(f"{name}: {arr.dtype} {list(arr.shape)}")
    print(f"wrote {os.path.join(args.output_dir, 'outputs.npz')}")
    return 0


def _print_kernel_profile(log: str) -> None:
    """Per instruction (fastest of the profiled runs), for a compiled directory: the kernel
    names only (the compiler's graph is not at hand)."""
    best = {}
    for line in log.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "profile":
            idx, us = int(parts[1]), float(parts[3])
            if idx not in best or us < best[idx][0]:
                best[idx] = (us, parts[2])
    total = sum(us for us, _ in best.values()) or 1.0
    print(f"{'us':>10} {'%':>6}  instr kernel")
    for idx, (us, name) in sorted(best.items(), key=lambda kv: -kv[1][0]):
        print(f"{us:10.1f} {100 * us / total:6.2f}  #{idx} {name}")


def _output_names(directory: str, model_name: str, plan: dict) -> List[str]:
    """The compiler's output names (manifest.json; outputs sharing a tensor have their own
    names there), else the tensor names of the blob."""
    from .session import _manifest_output_names

    names = [plan["tensors"][t]["name"] for t in plan["outputs"]]
    listed = _manifest_output_names(directory, os.path.join(directory, model_name + ".tiny"))
    return listed[0] if listed and len(listed[0]) == len(names) else names


def _run_in_process(args, build_dir: str, ordered, model_name: str = "model"):
    """Outputs and the runner-style log ("latency_ms ..." / "profile ..." lines) of
    `megcc run`, from the in-process session."""
    from .session import InferenceSession

    # one thread: thread CPU time, like the runner; more: wall-clock time (the CPU time of
    # the calling thread would leave out the workers)
    clock = "thread" if args.cpu_clock and args.threads == 1 else "wall"
    with InferenceSession(build_dir, model_name=model_name, threads=args.threads,
                          clock=clock) as sess:
        net = sess.native_network()
        if any(tuple(a.shape) != i.shape for a, i in zip(ordered, net.inputs)):
            net.set_input_shapes([a.shape for a in ordered])  # a compiled directory
        lines = []
        if args.iterations:
            ms, outs = net.time_forward(ordered, args.warmup, args.iterations, clock)
            n = len(ms)
            median = ms[n // 2] if n % 2 else 0.5 * (ms[n // 2 - 1] + ms[n // 2])
            lines.append(f"latency_ms min={ms[0]:.4f} median={median:.4f}")
        if args.profile:
            best, outs = net.profile(ordered, max(1, args.iterations))
            kernels = net.model.instruction_kernels(net.plan)
            lines += [f"profile {i} {kernels[i]} {ns / 1000:.3f}" for i, ns in enumerate(best)]
        if not args.iterations and not args.profile:
            outs = net.run(ordered)
        return outs, "\n".join(lines)


def _run_runner(args, kernels_c: str, blob_path: str, ordered, shapes: bool = False):
    """Outputs and log of `megcc run` through the standalone runner process: for
    --subprocess and sanitizer builds on the host, and for --target under the target's
    emulator. shapes: run at the arrays' own shapes (a compiled directory)."""
    from .host import build_runner, run_blob_logged

    runner = build_runner(kernels_c, target=args.target)
    extra = (["--profile", "--profile-runs", str(max(1, args.iterations))] if args.profile
             else []) + (["--cpu-clock"] if args.cpu_clock else [])
    if args.iterations:
        extra += ["-w", str(args.warmup), "-t", str(args.iterations)]
    if args.threads != 1:
        extra += ["--threads", str(args.threads)]
    # (a hosted target runs under qemu-user, a bare-metal board under qemu-system)
    return run_blob_logged(runner, blob_path, ordered, extra_args=extra, shapes=shapes,
                           target=args.target)


def _run_isa(args) -> str:
    """The ISA level `megcc run` builds for: --isa, else the target's level, else this
    machine's best. Kernels this machine cannot run are refused before anything is built,
    naming the target whose emulator can run them."""
    from . import targets
    from .compiler import resolve_isa
    from .isa.levels import host_refusal

    level = resolve_isa(args.isa or (targets.load(args.target).isa if args.target
                                     else "native"))
    if args.target:
        targets.load(args.target).check_available()
        return level
    why = host_refusal(level)
    if why:
        raise CompileError(f"cannot run --isa {level} here: {why}{_target_hint(level)}")
    return level


def _target_hint(level: str) -> str:
    """"; add --target T ..." naming a hosted target that runs a level's kernels."""
    from . import targets
    from .isa.levels import spec

    runs_it = [n for n in targets.names() if _hosted_arch(n) == spec(level).arch]
    return f"; add --target {runs_it[0]} to run under its emulator" if runs_it else ""


def _refuse_foreign_kernels(directory: str) -> None:
    """A compiled directory whose kernels this machine cannot run (the ISA levels its
    manifest.json lists) is refused before anything is built, naming a target that can."""
    import json

    from .isa.levels import SPECS, host_refusal

    try:
        with open(os.path.join(directory, "manifest.json")) as f:
            levels = json.load(f)["isa"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # an older or hand-made directory: the build itself will say
    levels = [lv for lv in levels if lv in SPECS]
    refusals = [host_refusal(lv) for lv in levels]
    if levels and all(refusals):
        raise CompileError(f"cannot run here: its kernels are for {', '.join(levels)} "
                           f"({refusals[0]}){_target_hint(levels[0])}", directory)


def _hosted_arch(target_name: str) -> str:
    """The architecture of a hosted target's ISA level ("" for bare-metal or unreadable)."""
    from . import targets
    from .compiler import resolve_isa
    from .isa.levels import spec

    try:
        t = targets.load(target_name)
        return "" if t.baremetal else spec(resolve_isa(t.isa)).arch
    except (TargetError, CompileError, KeyError):
        return ""


def _print_profile(stdout: str, plan) -> None:
    rows = []
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "profile":
            idx = int(parts[1])
            ins = plan.instrs[idx]
            if not ins.outputs or float(parts[3]) >= (2 ** 64 - 1) / 1000:
                continue  # control flow: a jump, or an instruction of a branch not taken
            shape = plan.graph.tensors[ins.outputs[0]].shape
            rows.append((float(parts[3]), idx, parts[2], shape))
    best = {}  # several profiled runs (-n): each instruction's fastest
    for row in rows:
        if row[1] not in best or row[0] < best[row[1]][0]:
            best[row[1]] = row
    rows = list(best.values())
    total = sum(r[0] for r in rows) or 1.0
    print(f"{'us':>10} {'%':>6}  instr kernel (output shape)")
    for us, idx, name, shape in sorted(rows, reverse=True):
        print(f"{us:10.1f} {100 * us / total:6.2f}  #{idx} {name} {list(shape)}")


def cmd_inspect(args) -> int:
    from .compiler import ModelSpec, compile_model, resolve_isa
    from .config import parse_input_shapes

    from .config import parse_shape_hints
    from .frontend.dims import SymbolSpec

    symbols = SymbolSpec(hints=parse_shape_hints(args.shape_hints) if args.shape_hints else {})
    instances = parse_input_shapes(args.input_shapes, "--input-shapes", symbols.bounds) \
        if args.input_shapes else []
    model = compile_model(ModelSpec("model", args.model, instances, not args.no_fuse,
                                    resolve_isa(args.isa), symbols=symbols,
                                    **_model_options(args)))
    for plan in model.plans:
        print(f"== plan {plan.name}")
        if plan.graph.symbols:
            _print_dynamic(plan)
        print(plan.graph.dump())
        if plan.graph.quant_notes:
            print("== quantized model: operators kept in float (between DequantizeLinear and "
                  "QuantizeLinear)")
            for node, op_type, why in plan.graph.quant_notes:
                print(f"  {node} ({op_type}): {why}")
        if plan.graph.fixed_point_notes:
            print("== enable_fixed_point_requant: integer operators kept in float "
                  "requantization")
            for node, op_type, why in plan.graph.fixed_point_notes:
                print(f"  {node} ({op_type}): {why}")
        print("== instructions")
        for i, ins in enumerate(plan.instrs):
            ws = f" workspace={ins.workspace_bytes}B" if ins.workspace_bytes else ""
            impl = f" [{ins.impl}]" if ins.impl else ""  # the registered implementation
            print(f"#{i:<4} {ins.kernel.name}({', '.join(_tagged(plan, n) for n in ins.inputs)})"
                  f" -> {', '.join(_tagged(plan, n) for n in ins.outputs)}{ws}{impl}"
                  + (f"   # {ins.note}" if ins.note else ""))
            if plan.graph.symbols and any(isinstance(p, Sym) for p in ins.params):
                # a dynamic plan: the params recomputed when the shapes change
                print(f"      params: {ins.kernel.params.describe(ins.params)}")
        _print_float16(plan)
        _print_layouts(plan)
        mem = plan.memory
        print(f"== memory: arena {mem.arena_size} B, liveness lower bound {mem.lower_bound} B "
              f"(x{mem.arena_size / max(1, mem.lower_bound):.3f}), {len(mem.buffers)} buffers")
        if plan.graph.symbols:
            print("  (a dynamic plan: offsets are the hints'; buffers are placed when the "
                  "shapes are set, sized by the expressions below)")
        for b in mem.buffers:
            size = f"  size {b.expr!r}" if isinstance(b.expr, Sym) else ""
            print(f"  [{b.offset:>10}, {b.offset + b.size:>10}) live {b.first}..{b.last} "
                  f"{'+'.join(b.members)}{size}")
        if args.plot:
            from .plot import plot_memory_plan

            path = _plot_path(args.plot, model.plans.index(plan), len(model.plans))
            plot_memory_plan(plan, path)
            print(f"wrote {path}")
    return 0


def _print_dynamic(plan) -> None:
    """Symbols, their bounds and hints, and the guards of a dynamic plan."""
    print("== dynamic: " + ", ".join(f"{n} in [{lo}, {hi}] (compiled for {h})"
                                     for n, (lo, hi, h) in plan.graph.symbols.items()))
    for g in plan.guards:
        print(f"  guard: {g.text()}" + (f"   # node {g.node}" if g.node else ""))


def _print_float16(plan) -> None:
    """fp16<->fp32 conversion instructions and the weights by dtype (float16 models,
    enable_compress_fp16)."""
    from .passes.float16_regions import conversion_count

    g = plan.graph
    weights = {}
    for name in {n for ins in plan.instrs for n in ins.inputs if n and g.tensors[n].is_const}:
        t = g.tensors[name]
        count, size = weights.get(t.dtype, (0, 0))
        weights[t.dtype] = (count + 1, size + t.nbytes)
    shown = ", ".join(f"{dt} {c} ({b} B)" for dt, (c, b) in sorted(weights.items()))
    print(f"== float16: {conversion_count(plan.instrs, g)} fp16<->fp32 conversions; "
          f"weights: {shown or 'none'}")


def _print_layouts(plan) -> None:
    """The blocked-layout regions (enable_nchw44 / enable_nchw88): instructions writing each
    layout, and the relayouts at the regions' edges (views move no bytes)."""
    g = plan.graph
    per_layout = {}
    for ins in plan.instrs:
        layout = g.tensors[ins.outputs[0]].layout if ins.outputs and ins.outputs[0] else "nchw"
        if layout != "nchw":
            per_layout[layout] = per_layout.get(layout, 0) + 1
    relayouts = [op for op in g.ops if op.type == "Relayout"]
    if not per_layout and not relayouts:
        return
    views = sum(1 for op in relayouts if op.outputs[0] in plan.views)
    shown = ", ".join(f"{k} {v} instructions" for k, v in sorted(per_layout.items()))
    print(f"== layouts: {shown or 'none'}; {len(relayouts)} relayouts at region edges "
          f"({views} of them views)")
    for op in relayouts:
        src, dst = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        print(f"  {op.inputs[0]} {src.layout} -> {dst.layout}"
              f"{' (view)' if op.outputs[0] in plan.views else ''}")


def _plot_path(path: str, index: int, count: int) -> str:
    """One picture per plan: plan.png, or plan.0.png, plan.1.png, ... for several shapes."""
    if count == 1:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}.{index}{ext or '.png'}"


def _tagged(plan, name: str) -> str:
    """A tensor name for `inspect`, with its layout when it is not plain row-major."""
    if not name:
        return "-"
    layout = plan.graph.tensors[name].layout
    return name if layout == "nchw" else f"{name}[{layout}]"


def cmd_bench(args) -> int:
    from .bench import format_report, run_benchmark
    from .config import parse_input_shapes

    if args.threads < 1:
        raise CompileError(f"--threads must be at least 1, not {args.threads}")
    shapes = parse_input_shapes(args.input_shapes)[0] if args.input_shapes else None
    compare = [c.strip() for c in args.compare.split(",") if c.strip()]
    unknown = set(compare) - {"onnxruntime", "megengine"}
    if unknown:
        raise CompileError(f"--compare: unknown engine '{sorted(unknown)[0]}' "
                           "(onnxruntime, megengine)")
    print(format_report(run_benchmark(args.model, shapes, compare, args.iterations,
                                      args.warmup, isa=args.isa, clock=args.clock,
                                      threads=args.threads, python=args.python,
                                      subprocess=args.subprocess)))
    return 0


def cmd_validate(args) -> int:
    from .config import parse_input_shapes
    from .validate import ensure_readable_model, format_reports, validate

    ensure_readable_model(args.model)
    shapes = parse_input_shapes(args.input_shapes)[0] if args.input_shapes else {}
    reports = validate(args.model, shapes, _parse_feeds(args.input), args.seed, args.isa,
                       args.target, fuse=not args.no_fuse, **_model_options(args))
    print(format_reports(reports, args.tolerance))
    failed = [r.name for r in reports if not r.passes(args.tolerance)]
    if failed:
        return _fail(f"{args.model}: output '{failed[0]}' differs from the reference "
                     f"beyond --tolerance {args.tolerance:g}"
                     + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""))
    print(f"{args.model}: all {len(reports)} outputs within {args.tolerance:g} "
          "of the reference")
    return 0


def cmd_package(args) -> int:
    from .config import load_config
    from .package import make_package

    cv = ()
    if args.json:
        if args.models:
            return _fail(f"{args.models[0]}: give either model files or --json CONFIG "
                         f"({args.json}), not both")
        _, specs, cv = load_config(args.json)
    elif args.models:
        specs = _specs_from_args(args.models, args.input_shapes, args.name, not args.no_fuse,
                                 **_model_options(args))
    else:
        return _fail("give a model file or --json CONFIG")
    top = make_package(specs, args.target, args.output, isa=args.isa,
                       package_name=args.name or (os.path.splitext(os.path.basename(
                           args.json))[0] if args.json else None),
                       cv=_cv_request(cv, args.cv))
    print(f"wrote {args.output}: {top}/ (build it with: tar xzf {os.path.basename(args.output)}"
          f" && sh {top}/build.sh)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="megcc", description="Ahead-of-time compiler for neural "
                                 "networks: MegEngine/ONNX models to C kernels + a tiny runtime")
    ap.add_argument("--version", action="version", version=f"megcc-builder {__version__}")
    ap.add_argument("--verbose", action="store_true", help="show tracebacks of internal errors")
    ap.add_argument("--scons-toolpath", action=_PrintFact,
                    help="print the directory to put in SCons' toolpath for tools=['megcc']")
    ap.add_argument("--cmake-dir", action=_PrintFact,
                    help="print the directory of MegCCConfig.cmake (-DMegCC_DIR=...)")
    ap.add_argument("--runtime-dir", action=_PrintFact,
                    help="print the directory of the C runtime (include/, src/)")
    ap.add_argument("--signature", action=_PrintFact,
                    help="print the compiler's build signature (version + source digest)")
    sub = ap.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="compile models to kernels + model blobs")
    c.add_argument("models", nargs="*", help="model files (.onnx, .mge) compiled into one bundle sharing one kernel set; or --json CONFIG instead")
    c.add_argument("-o", "--output", help="output directory")
    c.add_argument("--json", help="MegCC-style JSON/YAML config (models, shapes, options)")
    c.add_argument("--input-shapes",
                   help='e.g. "data=(1,3,224,224)"; ":" separates instances (each its own '
                        'static plan). Names keep dimensions dynamic, with optional bounds: '
                        '"x=(1,3,48,W);16<=W<=2048" (default bounds [1, 16384]); dimensions '
                        'the model leaves open (dim_param, ?) stay dynamic without this flag')
    c.add_argument("--shape-hints", metavar="SYM=N;...",
                   help='sizes the static part of a dynamic plan is compiled (and its kernels '
                        'chosen) for, e.g. "W=320;N=1" (default: 1 for a leading axis, else 64)')
    c.add_argument("--value-cap", action="append", metavar="NAME=N",
                   help='caps of sizes computed at run time (may repeat; ";" separates): '
                        'TENSOR=bytes for a tensor shaped by a computed Reshape/Expand/Tile/'
                        'ConstantOfShape shape, TENSOR=elements for a Range output, '
                        '"default=bytes" for every computed-shape buffer (default: the '
                        'largest tensor of known size, at least 1 MiB), "range=N" for every '
                        'Range (default 16384)')
    c.add_argument("--name", help="model name (default: file name)")
    c.add_argument("--no-fuse", action="store_true", help="disable operator fusion")
    _add_model_options(c)
    c.add_argument("--no-c-array", action="store_true", help="do not write <model>.tiny.c")
    c.add_argument("--cv", action="append", help=CV_HELP + " (may repeat)")
    # the environment is read here, at the edge: the library below never looks at it
    c.add_argument("--isa", default=os.environ.get("MEGCC_ISA") or None,
                   help=ISA_HELP + " (default: $MEGCC_ISA or generic)")
    c.set_defaults(fn=cmd_compile)

    r = sub.add_parser("run", help="compile, build on the host, run, write outputs.npz; or "
                                   "run an already compiled directory at the arrays' shapes")
    r.add_argument("model", help="model file, or a `megcc compile` output directory")
    r.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                   help="an input's value from a .npy file (repeatable); the array's shape is compiled for, its dtype must be the input's; inputs not given are seeded")
    r.add_argument("--input-shapes", help='e.g. "data=(1,3,224,224)" (first instance is used); default: the arrays\' or the model\'s shapes')
    r.add_argument("--output-dir", required=True,
                   help="where outputs.npz (one array per output) is written")
    r.add_argument("--seed", type=int, default=0, help="seed for inputs not given")
    r.add_argument("--profile", action="store_true", help="time every instruction")
    r.add_argument("-n", "--iterations", type=int, default=0,
                   help="timed iterations (with --profile: profiled runs, fastest kept)")
    r.add_argument("--cpu-clock", action="store_true",
                   help="time in thread CPU time (robust on a loaded machine)")
    r.add_argument("--warmup", type=int, default=1,
                   help="untimed runs before the timed ones (default 1)")
    r.add_argument("--no-fuse", action="store_true", help="disable operator fusion")
    _add_model_options(r)
    r.add_argument("--isa", default=None, help=ISA_HELP + " (default: native on the host, "
                   "the target's level with --target)")
    r.add_argument("--target", help="a target of toolchains/ (arm64, armv7, riscv64, "
                   "cortex-m4, cortex-m55, ...): cross-build the runner and run it under the "
                   "target's emulator (qemu-user, or qemu-system with semihosting)")
    r.add_argument("--threads", type=int, default=1,
                   help="worker threads of the runtime (default 1; timed in wall-clock time "
                        "when more)")
    r.add_argument("--subprocess", action="store_true",
                   help="run in the standalone runner process instead of in-process "
                        "(automatic for MEGCC_SANITIZE / MEGCC_VALGRIND builds)")
    r.set_defaults(fn=cmd_run)

    b = sub.add_parser("bench", help="latency vs onnxruntime / MegEngine Lite, GFLOP/s vs peak")
    b.add_argument("model", help="an .onnx or .mge model")
    b.add_argument("--input-shapes", help='e.g. "data=(1,3,224,224)" (first instance is used)')
    b.add_argument("--compare", default="onnxruntime,megengine",
                   help="comma-separated engines timed beside ours: onnxruntime (.onnx models), megengine (MegEngine Lite, .mge models); an engine that cannot run the model gets a row saying why (default: onnxruntime,megengine)")
    b.add_argument("--threads", type=int, default=1,
                   help="worker threads, ours and onnxruntime's intra-op (more than 1: "
                        "wall-clock time)")
    b.add_argument("--python", action="store_true",
                   help="also time our InferenceSession.run as a Python caller sees it")
    b.add_argument("--subprocess", action="store_true",
                   help="time the standalone runner process instead of the in-process runtime")
    b.add_argument("-n", "--iterations", type=int, default=20,
                   help="timed runs per engine; the median and minimum are printed (default 20)")
    b.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    b.add_argument("--isa", default="native", help=ISA_HELP + " (default: native)")
    b.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="time inferences in process CPU time (default; robust on a shared "
                        "machine) or wall-clock time")
    b.set_defaults(fn=cmd_bench)

    v = sub.add_parser("validate", help="run the compiled model and its reference engine "
                       "(onnxruntime / MegEngine) on the same inputs; print the errors")
    v.add_argument("model", help="an .onnx model (checked against onnxruntime) or an .mge "
                   "model (checked against MegEngine)")
    v.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                   help="an input's value (repeatable); inputs not given are seeded")
    v.add_argument("--input-shapes", help='e.g. "data=(1,3,224,224)" (first instance is used)')
    v.add_argument("--seed", type=int, default=0, help="seed for inputs not given (default 0)")
    v.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest |ours - ref| / max(1, |ref|) accepted (default 1e-4)")
    v.add_argument("--target", help="a hosted target of toolchains/ (arm64, armv7, riscv64): "
                   "cross-build and run under its emulator")
    v.add_argument("--no-fuse", action="store_true", help="disable operator fusion")
    _add_model_options(v)
    v.add_argument("--isa", default=None, help=ISA_HELP + " (default: native on the host, the "
                   "target's level with --target)")
    v.set_defaults(fn=cmd_validate)

    k = sub.add_parser("package", help="one archive for a target: compiled models, kernels, "
                       "runtime sources, CMakeLists.txt and build.sh (builds without Python)")
    k.add_argument("models", nargs="*", help="model files (.onnx, .mge); or --json")
    k.add_argument("--json", help="MegCC-style JSON/YAML config (models, shapes, options)")
    k.add_argument("--target", required=True, help="a target of toolchains/ (x86_64, arm64, "
                   "armv7, riscv64, cortex-m4, ...)")
    k.add_argument("-o", "--output", required=True, metavar="ARCHIVE.tar.gz")
    k.add_argument("--input-shapes", help='e.g. "data=(1,3,224,224)"; ":" separates instances')
    k.add_argument("--name", help="model name (one model) and package name")
    k.add_argument("--no-fuse", action="store_true", help="disable operator fusion")
    _add_model_options(k)
    k.add_argument("--isa", default=None, help=ISA_HELP + " (default: the target's level)")
    k.add_argument("--cv", action="append", help=CV_HELP + " (may repeat; tinycv_c.h and "
                   "tinycv.c go into the package)")
    k.set_defaults(fn=cmd_package)

    i = sub.add_parser("inspect", help="print the optimised graph, kernels and memory plan")
    i.add_argument("model", help="an .onnx or .mge model")
    i.add_argument("--input-shapes", help='e.g. "data=(1,3,224,224)"; ":" separates instances (each printed); names keep dimensions dynamic as in compile ("x=(1,3,48,W);W<=2048")')
    i.add_argument("--shape-hints", metavar="SYM=N;...",
                   help="sizes a dynamic plan is compiled for, as in compile")
    i.add_argument("--plot", metavar="PNG", help="draw the memory plan (several shape "
                   "instances: PNG's name gets the plan's index, e.g. plan.0.png)")
    i.add_argument("--no-fuse", action="store_true", help="disable operator fusion")
    _add_model_options(i)
    i.add_argument("--isa", default=os.environ.get("MEGCC_ISA") or None,
                   help=ISA_HELP + " (default: as compile)")
    i.set_defaults(fn=cmd_inspect)
    return ap


def _guarded(fn, args, verbose: bool) -> int:
    # SIGTERM (a build tool cancelling us) unwinds like Ctrl-C, so temporary files are
    # removed and the previous outputs stay (emit.files.write_all_if_changed).
    import signal

    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return fn(args)
    except CompileError as exc:
        return _fail(exc.one_line())
    except TargetError as exc:  # an unknown or unusable target named by the user
        return _fail(str(exc))
    except (OSError, RuntimeError) as exc:
        if verbose:
            raise
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except KeyboardInterrupt:
        return _fail("interrupted")
    except Exception as exc:  # a compiler bug: still one line, and the file it choked on
        if verbose:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        return _fail(f"{_input_files(args)}: internal error: {type(exc).__name__}: {first} "
                     "(run with --verbose for the traceback)")


def _quiet_flush_to_zero_warnings() -> None:
    """Loading a .mge imports MegEngine, which turns on flush-to-zero for the process; numpy
    (and matplotlib through it) then warns that float64's smallest subnormal is zero on
    every np.finfo. True, harmless for a compiler, and not the user's business."""
    import warnings

    warnings.filterwarnings("ignore", message="The value of the smallest subnormal")


def main(argv: Optional[List[str]] = None) -> int:
    _quiet_flush_to_zero_warnings()
    args = build_parser().parse_args(argv)
    return _guarded(args.fn, args, args.verbose)


def mgb_to_tinynn_main(argv: Optional[List[str]] = None) -> int:
    """MegCC's compiler command line: `<model> <output_dir>` or `--json=<config>`."""
    ap = _Parser(prog="mgb-to-tinynn")
    ap.add_argument("model", nargs="?", help="the model (.mge or .onnx); or --json")
    ap.add_argument("output_dir", nargs="?", help="where the generated files go")
    ap.add_argument("--json", help="MegCC's JSON config (models, shapes, options, cv)")
    ap.add_argument("--dump", help="overrides dump_dir of the JSON config")
    ap.add_argument("--input-shapes", "--input_shapes", dest="input_shapes",
                    help='e.g. "data=(1,3,224,224)"; ":" separates instances')
    for flag, (level, caveat) in TARGET_FLAGS.items():
        what = (f"ISA level {level}" if isinstance(level, str) else
                "ISA levels " + " and ".join(level) + ": one model file carrying both "
                "plan sets, one kernels.c compiling on both architectures")
        ap.add_argument(f"--{flag}", action="store_true",
                        help=f"kernels for {what}" + (f" ({caveat})" if caveat else ""))
    from .config import PENDING_OPTIONS

    for opt in sorted(PENDING_OPTIONS):
        ap.add_argument(f"--{opt}", action="store_true",
                        help="MegCC option, not supported yet: refused with a one-line error")
    ap.add_argument("--mgb_fuse_kernel", action="store_true",
                    help="fuse operators (always on; accepted for compatibility)")
    _add_model_options(ap, megcc_spelling_first=True)
    ap.add_argument("--save-model", "--save_model", dest="save_model", action="store_true",
                    help="also write the model as a C array (<model>.tiny.c)")
    ap.add_argument("--cv", action="append", help=CV_HELP + " (may repeat)")
    ap.add_argument("--verbose", action="store_true",
                    help="show a traceback for internal errors")
    args = ap.parse_args(argv)

    def run(a) -> int:
        from dataclasses import replace

        from .compiler import compile_bundle
        from .config import check_options, load_config

        check_options({k: getattr(a, k) for k in PENDING_OPTIONS}, "mgb-to-tinynn", "")
        cv: tuple = ()
        if a.json:
            dump_dir, specs, cv = load_config(a.json)
            out_dir = a.dump or dump_dir
        else:
            if not a.model or not (a.output_dir or a.dump):
                return _fail("usage: mgb-to-tinynn <model> <output_dir> [options] | --json=CONFIG")
            specs = _specs_from_args([a.model], a.input_shapes, None, True)
            out_dir = a.dump or a.output_dir
        for field, on in _model_options(a).items():  # a flag sets it for every model
            if on:
                specs = [replace(s, **{field: on}) for s in specs]
        chosen = [flag for flag in TARGET_FLAGS if getattr(a, flag)]
        if len(chosen) > 1:
            return _fail(f"give one target flag, not --{chosen[0]} and --{chosen[1]}")
        isa = os.environ.get("MEGCC_ISA") or None
        if chosen:  # an explicit target flag wins over the environment
            isa, caveat = TARGET_FLAGS[chosen[0]]
            if isa == "arm64-neon" and any(s.enable_ioc16 for s in specs):
                # MegCC's --arm64 with enable_ioc16 means an Armv8.2-A + FP16 core
                isa, caveat = "arm64-fp16", "enable_ioc16: Armv8.2-A + FP16 kernels (arm64-fp16)"
            if caveat:
                print(f"mgb-to-tinynn: --{chosen[0]}: {caveat}")
        bundle = compile_bundle(specs, out_dir, save_c_array=a.save_model, isa=isa,
                                cv=_cv_request(cv, a.cv))
        _report(bundle, out_dir)
        return 0

    return _guarded(run, args, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
