"""SCons tool `megcc`: compile neural-network models into a static library per target.

    env = Environment(tools=["default", "megcc"], MEGCC_TARGET="arm64",
                      toolpath=[...])   # the output of `megcc --scons-toolpath`
    net = env.MegccModel("digits", "digits.mge", INPUT_SHAPES="data=(1,1,8,8)")
    prog = env.Program("app", ["main.c", net])        # runtime + kernels + embedded model
    env.MegccSizeReport(prog, net)                     # text/data/bss + arena bytes

What the tool does, and why:

* `MegccCompile` runs `megcc compile` on a model file (.mge, .onnx) or on a MegCC JSON/YAML
  config (several models sharing one kernel set). Its emitter names every generated file
  before the compiler runs (kernels.c, kernels.h, manifest.json and per model `<name>.tiny`,
  `.tiny.c`, `.tiny.txt`), reading the config when the source is one, so SCons can schedule,
  clean and depend on them. The compiler writes only files whose bytes change and SCons
  decides by content, so new weights rebuild the model object but not the kernel objects.
* Build signature: the command line holds every output-affecting option (input shapes,
  flags) and a Value() holds megcc_builder.signature.compiler_signature() (the compiler's
  version and a digest of its sources, the same one the CMake package uses), so
  upgrading or editing the compiler regenerates. The Python interpreter's path is left out
  of the signature ($( $)) so the same build is up to date from another checkout or venv.
* A scanner follows what a model file pulls in: ONNX external-data files, and for a config
  the model files it lists (and their external data).
* `MegccModel` = compile + a static library of the runtime sources, the kernels and (by
  default) the model, embedded with the assembler's .incbin (megcc_builder/embed.py; the
  C array <model>.tiny.c with EMBED="c-array"), compiled for the target with
  -ffunction-sections -fdata-sections; programs link with --gc-sections so unused runtime
  entry points and helpers drop out.
* The target (compiler, flags, link recipe, emulator, kernel ISA level) comes from
  toolchains/<name>.json via megcc_builder.targets — the same description CMake and Python
  read. MEGCC_ISA overrides the ISA level (e.g. "generic" for portable C kernels only).

The tool runs from a checkout (site_scons/ of the repository) or from an installed package
(a copy in megcc_builder/_data/); either way megcc_builder finds the runtime and toolchains
(megcc_builder/resources.py), and the compiler runs as `$MEGCC_PYTHON -m megcc_builder.cli`,
by default the Python running SCons.

Construction variables get defaults with SetDefault; a value the user set is never replaced.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import SCons.Action
import SCons.Builder
import SCons.Errors
import SCons.Node.FS
import SCons.Scanner
import SCons.Util

_HERE = os.path.dirname(os.path.abspath(__file__))


def _megcc_builder_home() -> str:
    """The directory holding the megcc_builder this tool belongs to: the repository root
    (site_scons/site_tools/megcc here) or, for the copy inside an installed package
    (megcc_builder/_data/site_scons/site_tools/megcc), the site-packages directory."""
    d = _HERE
    while not os.path.isfile(os.path.join(d, "megcc_builder", "__init__.py")):
        parent = os.path.dirname(d)
        if parent == d:
            raise SCons.Errors.UserError("megcc: cannot find the megcc_builder package "
                                         "(pip install megcc-builder)")
        d = parent
    return d


try:
    from megcc_builder import targets as _targets
except ImportError:  # tool used straight from a checkout without `pip install -e`
    sys.path.insert(0, _megcc_builder_home())
    from megcc_builder import targets as _targets
from megcc_builder.signature import compiler_signature


# ------------------------------------------------------------------ emitter
def _is_config(path: str) -> bool:
    return path.lower().endswith((".json", ".yaml", ".yml"))


def _read_config(path: str) -> dict:
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    if path.lower().endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text) or {}
    return json.loads(text)


def _model_names(env, source) -> list:
    """Names of the models one compile produces (the config's, or MEGCC_NAME)."""
    src = source[0]
    if _is_config(str(src)):
        cfg = _read_config(src.srcnode().abspath)
        return [m["model_name"] for m in cfg.get("models", [])]
    return [env.subst("$MEGCC_NAME")]


def _cv_flag(cv) -> str:
    """MegccModel's CV= (MegCC's {"resize_linear": ["ui8", "f32"]} or the --cv string
    "resize_linear:ui8,f32;flip:ui8") as the --cv string."""
    if not cv:
        return ""
    if isinstance(cv, dict):
        return ";".join(f"{k}:{','.join([v] if isinstance(v, str) else v)}"
                        for k, v in sorted(cv.items()))
    return str(cv)


def _cv_requested(env, source) -> bool:
    """Whether the compile generates tinycv.c / tinycv_c.h: the config's "cv" section or
    MEGCC_CV name some operator (an invalid list is the compiler's to report)."""
    from megcc_builder.cv import merge_requests, parse_cv_flag
    from megcc_builder.cv.request import check_cv_section
    from megcc_builder.ir import CompileError

    try:
        req = parse_cv_flag(env.subst("$MEGCC_CV"))
        if _is_config(str(source[0])):
            cfg = _read_config(source[0].srcnode().abspath)
            req = merge_requests(req, check_cv_section(cfg.get("cv"), str(source[0])))
    except CompileError:
        return True
    return bool(req)


def _compile_emitter(target, source, env):
    """target[0] is the output directory's kernels.c; every other output is named here."""
    out_dir = target[0].dir
    names = _model_names(env, source)
    if not names or not all(names):
        raise SCons.Errors.UserError(f"megcc: no model name for {source[0]}")
    outs = [out_dir.File("kernels.c"), out_dir.File("kernels.h"),
            out_dir.File("manifest.json")]
    if _cv_requested(env, source):  # the CV operators (megcc_builder/cv): fixed names
        outs += [out_dir.File("tinycv_c.h"), out_dir.File("tinycv.c")]
    c_array = env.get("_MEGCC_C_ARRAY", True)
    for n in names:
        outs += [out_dir.File(f"{n}.tiny"), out_dir.File(f"{n}.tiny.txt")]
        if c_array:
            outs.append(out_dir.File(f"{n}.tiny.c"))
    # The compiler itself is a dependency (version + source digest), like a generator
    # script listed as a source.
    source = list(source) + [env.Value(compiler_signature())]
    return outs, source


# ------------------------------------------------------------------ scanner
def _onnx_external_files(path: str) -> list:
    """Files an ONNX model's initializers keep their data in (external data)."""
    try:
        import onnx
        from onnx.external_data_helper import ExternalDataInfo, uses_external_data
    except ImportError:
        return []
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception:  # the compiler will report a broken model; scanning must not
        return []
    base = os.path.dirname(path)
    found = []
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                tensors.append(attr.t)
    for t in tensors:
        if uses_external_data(t):
            loc = ExternalDataInfo(t).location
            if loc and os.path.join(base, loc) not in found:
                found.append(os.path.join(base, loc))
    return found


def _model_scan(node, env, path):
    src = node.srcnode() if hasattr(node, "srcnode") else node
    if not isinstance(src, SCons.Node.FS.File) or not os.path.isfile(src.abspath):
        return []
    p = src.abspath
    deps = []
    if _is_config(p):
        try:
            cfg = _read_config(p)
        except Exception:
            return []
        for m in cfg.get("models", []):
            mp = os.path.join(os.path.dirname(p), m.get("model_path", ""))
            deps.append(mp)
            if mp.lower().endswith(".onnx") and os.path.isfile(mp):
                deps += _onnx_external_files(mp)
    elif p.lower().endswith(".onnx"):
        deps = _onnx_external_files(p)
    return [env.File(d) for d in deps]


# ------------------------------------------------------------------ runtime objects
# runtime build directory -> its objects: one set per directory for the whole SCons run,
# whichever (cloned) environment asks first
_RUNTIME_OBJECTS = {}


def _runtime_objects(env):
    """The runtime compiled once per runtime build directory (and so per target)."""
    build_dir = env.Dir(env.subst("$MEGCC_RUNTIME_BUILD_DIR"))
    if build_dir.abspath in _RUNTIME_OBJECTS:
        return _RUNTIME_OBJECTS[build_dir.abspath]
    src_dir = env.Dir(env.subst("$MEGCC_RUNTIME_DIR")).Dir("src")
    objs = []
    for name in sorted(os.listdir(src_dir.abspath)):
        if name.endswith(".c"):
            objs += env.Object(build_dir.File(name[:-2] + env.subst("$OBJSUFFIX")),
                               src_dir.File(name))
    _RUNTIME_OBJECTS[build_dir.abspath] = objs
    return objs


def _private_env(env):
    """The environment the runtime, kernels and model arrays compile in: the caller's
    compiler and flags, but none of the macros or include paths the caller added for its
    own code, so an app's `env.Append(CPPDEFINES=...)` rebuilds the app only, never the
    runtime or a model array. MEGCC_CPPDEFINES adds macros for the megcc objects."""
    private = env.Clone()
    target = env["MEGCC_TARGET_INFO"]
    private.Replace(CPPDEFINES=[f[2:] for f in target.compile_flags() if f.startswith("-D")])
    private.Append(CPPDEFINES=list(env.get("MEGCC_CPPDEFINES") or []))
    private.Replace(CPPPATH=[env.Dir(env.subst("$MEGCC_RUNTIME_DIR")).Dir("include")])
    return private


# ------------------------------------------------------------------ memory budget
def _budget_check_action(target, source, env):
    """Before any model C compiles for a bare-metal target: the embedded blobs must fit its
    flash and every arena its RAM, so a model too big for the board stops here with the
    numbers, not after gcc chewed through a huge array and the linker said 'overflowed'."""
    with open(source[0].abspath, "r", encoding="utf-8") as f:
        manifest = json.load(f)
    where = f"{env.subst('$MEGCC_TARGET')} (memory profile {env['_MEGCC_MEMORY_PROFILE']})"
    problem = _targets.memory_budget_problem(manifest, env["_MEGCC_MEMORY_LAYOUT"],
                                             env["_MEGCC_EMBED"], where)
    if problem:
        raise SCons.Errors.BuildError(errstr=f"megcc: {problem}")
    with open(target[0].abspath, "w", encoding="utf-8") as f:
        f.write("fits\n")
    return 0


# ------------------------------------------------------------------ pseudo-builders
def _shapes_flag(shapes) -> str:
    return shapes if isinstance(shapes, str) else ":".join(shapes)


_EMBED_MODES = {True: "incbin", "incbin": "incbin", "c-array": "c-array", False: None,
                None: None}


def _incbin_action(target, source, env):
    from megcc_builder.embed import EmbedError, incbin_source, write_if_changed

    try:
        write_if_changed(target[0].abspath, incbin_source(source[0].abspath,
                                                          env["_MEGCC_MODEL"]))
    except EmbedError as exc:
        raise SCons.Errors.BuildError(errstr=f"megcc: {exc}")
    return 0


def MegccModel(env, name, source, INPUT_SHAPES=None, OPTIONS=None, EMBED=True, GEN_DIR=None,
               CV=None):
    """Compile `source` (model file or config) and return [static library].

    name: library name, and the model name for a single model file.
    INPUT_SHAPES: MegCC shape string, e.g. "data=(1,3,224,224)" (":" separates instances).
    OPTIONS: extra `megcc compile` flags (e.g. ["--no-fuse"]); part of the signature.
    EMBED: put the model(s) into the library (symbols megcc_model_<name>,
           megcc_model_<name>_size) for targets without files: True or "incbin" (the
           assembler copies <name>.tiny in: seconds and flat memory at any size), "c-array"
           (compile the generated <name>.tiny.c, for compilers without .incbin), False
           (the app loads <name>.tiny from a file).
    CV: CV operators to generate, MegCC's {"resize_linear": ["ui8", "f32"]} or
        "resize_linear:ui8,f32;flip:ui8" (added to a config's "cv" section): tinycv.c is
        compiled into the library, tinycv_c.h is in the generated directory.
    The generated directory (kernels.h with MEGCC_<NAME>_ARENA_SIZE) is added to CPPPATH.
    """
    if EMBED not in _EMBED_MODES:
        raise SCons.Errors.UserError(f"megcc: MegccModel({name!r}): EMBED={EMBED!r} "
                                     "(True, 'incbin', 'c-array' or False)")
    embed = _EMBED_MODES[EMBED]
    gen_dir = env.Dir(GEN_DIR or f"{name}.megcc")
    src = env.File(source) if isinstance(source, str) else source
    shapes = _shapes_flag(INPUT_SHAPES) if INPUT_SHAPES else ""
    c_array = embed == "c-array"
    gen = env.MegccCompile(
        gen_dir.File("kernels.c"), src, MEGCC_NAME=name,
        _MEGCC_INPUT="--json $SOURCE" if _is_config(str(src)) else "$SOURCE --name $MEGCC_NAME",
        _MEGCC_SHAPES_FLAG=f'--input-shapes "{shapes}"' if shapes else "",
        MEGCC_CV=_cv_flag(CV), _MEGCC_CV_FLAG='--cv "$MEGCC_CV"' if CV else "",
        _MEGCC_C_ARRAY=c_array, _MEGCC_ARRAY_FLAG="" if c_array else "--no-c-array",
        MEGCC_OPTIONS=list(OPTIONS or []))
    # A failed or interrupted compile must never leave a partial directory behind that a
    # later `scons -c` misses: clean the whole generated directory.
    env.Clean(gen, gen_dir)
    env.AppendUnique(CPPPATH=[gen_dir])  # the app includes kernels.h
    objs = list(_runtime_objects(_private_env(env)))  # shared by every model: no gen_dir
    private = _private_env(env)  # SCons expands flags at build time: a separate copy
    private.AppendUnique(CPPPATH=[gen_dir])
    by_name = {os.path.basename(str(n)): n for n in gen}
    budget = []
    if env["_MEGCC_MEMORY_LAYOUT"]:
        budget = private.Command(gen_dir.File("memory_budget.txt"), by_name["manifest.json"],
                                 SCons.Action.Action(_budget_check_action, None),
                                 _MEGCC_EMBED=bool(embed))
    kernels = private.Object(by_name["kernels.c"])
    private.Depends(kernels, budget)  # a model too big for the board stops before any gcc
    objs += kernels
    if "tinycv.c" in by_name:  # the CV operators asked for
        objs += private.Object(by_name["tinycv.c"])
    for model in _model_names(env.Override({"MEGCC_NAME": name}), [src]) if embed else []:
        if embed == "incbin":
            source_c = private.Command(gen_dir.File(f"{model}.tiny.embed.c"),
                                       by_name[f"{model}.tiny"],
                                       SCons.Action.Action(_incbin_action, None),
                                       _MEGCC_MODEL=model)
            array = private.Object(source_c)
            # the assembler reads the blob: new weights re-assemble the object
            private.Depends(array, by_name[f"{model}.tiny"])
        else:
            array = private.Object(by_name[f"{model}.tiny.c"])
        private.Depends(array, budget)
        objs += array
    # A path string (not a File node) so SCons adds the target's lib prefix and suffix.
    lib = private.StaticLibrary(os.path.join(gen_dir.abspath, f"megcc_{name}"), objs)
    private.Depends(lib, budget)
    env.Depends(lib, by_name["kernels.h"])
    return lib


def _size_rows(env, files):
    size = env.subst("$MEGCC_SIZE")
    out = subprocess.run([size, "-B", "-t", *files], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    if out.returncode != 0:
        raise SCons.Errors.BuildError(errstr=f"{size} failed: {out.stdout.strip()}")
    rows = {}
    for line in out.stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 6:
            rows[parts[5]] = tuple(int(x) for x in parts[:3])
    return rows


def _cv_sizes(env, program: str) -> list:
    """Bytes of each CV function (tinycv) the program links (megcc_builder.cv.sizes)."""
    from megcc_builder.cv.sizes import cv_function_sizes, nm_of

    return cv_function_sizes(nm_of(env.subst("$MEGCC_SIZE")), program)


def _size_report_action(target, source, env):
    program, lib, manifest = (s.abspath for s in source[:3])
    rows = _size_rows(env, [lib])
    text, data, bss = rows.get("(TOTALS)", (0, 0, 0))
    prog_text, prog_data, prog_bss = _size_rows(env, [program]).get("(TOTALS)", (0, 0, 0))
    with open(manifest, "r", encoding="utf-8") as f:
        man = json.load(f)
    lines = [f"megcc size report ({env.subst('$MEGCC_TARGET')})",
             f"  library {os.path.basename(lib)}: text {text} data {data} bss {bss}",
             f"  program {os.path.basename(program)}: text {prog_text} data {prog_data} "
             f"bss {prog_bss}"]
    for m in man["models"]:
        arena = max(p["arena_bytes"] for p in m["plans"])
        lines.append(f"  model {m['name']}: blob {m['blob_bytes']} bytes, arena {arena} bytes "
                     f"({m['arena_macro']})")
    for name, nbytes in _cv_sizes(env, program):
        lines.append(f"  cv {name}: text {nbytes} bytes")
    layout = env.get("_MEGCC_MEMORY_LAYOUT") or {}
    if layout:
        flash, ram = prog_text + prog_data, prog_data + prog_bss
        lines.append(f"  flash {flash} of {layout['flash_size']} bytes, "
                     f"RAM {ram} of {layout['ram_size']} bytes (stack {layout['stack_size']} "
                     f"included in bss)")
    report = "\n".join(lines) + "\n"
    with open(target[0].abspath, "w", encoding="utf-8") as f:
        f.write(report)
    sys.stdout.write(report)
    return 0


def MegccSizeReport(env, program, library):
    """Write `<program>.size.txt` (and print it): text/data/bss of the library and the
    program, arena bytes per model, and flash/RAM use against the budget on bare metal."""
    prog = env.arg2nodes(program)[0]
    lib = env.arg2nodes(library)[0]
    manifest = lib.dir.File("manifest.json")
    return env.Command(prog.abspath + ".size.txt", [prog, lib, manifest],
                       SCons.Action.Action(_size_report_action, "$MEGCC_SIZECOMSTR"))


def MegccRunCommand(env, program, args=()):
    """The command line that runs `program` for the target (emulator included)."""
    prog = env.arg2nodes(program)[0]
    return env["MEGCC_TARGET_INFO"].run_command(prog.abspath, list(args))


# ------------------------------------------------------------------ tool entry points
def _apply_target(env):
    try:
        target = _targets.load(env.subst("$MEGCC_TARGET"))
        memory = env.subst("$MEGCC_MEMORY") or None
        layout = target.memory_layout(memory)
    except _targets.TargetError as exc:  # a mistake in the SConstruct: one line, no traceback
        raise SCons.Errors.UserError(f"megcc: {exc}") from None
    env["MEGCC_TARGET_INFO"] = target
    # Tools and flags of the target. generate() runs before SCons restores the variables
    # the user passed to Environment(), so an explicit CC=... from the user still wins.
    env["CC"] = target.cc
    env["AR"] = target.ar
    env["RANLIB"] = target.ar[:-2] + "ranlib" if target.ar.endswith("ar") else "ranlib"
    # The ISA level: a construction variable (or `scons MEGCC_ISA=...` where the SConstruct
    # passes its variables) wins, then $MEGCC_ISA in the environment, then the target's own.
    env.SetDefault(MEGCC_SIZE=target.size, MEGCC_STRIP=target.strip,
                   MEGCC_ISA=os.environ.get("MEGCC_ISA") or target.isa)
    env.AppendUnique(CPPPATH=[env.Dir(env.subst("$MEGCC_RUNTIME_DIR")).Dir("include")])
    env.Append(CCFLAGS=[f for f in target.compile_flags() if not f.startswith("-D")])
    env.Append(CPPDEFINES=[f[2:] for f in target.compile_flags() if f.startswith("-D")])
    env["_MEGCC_MEMORY_LAYOUT"] = layout
    env["_MEGCC_MEMORY_PROFILE"] = memory or target.default_memory
    env.Append(LINKFLAGS=target.link_flags(memory))
    env.Append(LIBS=list(target.libs))


def generate(env):
    env.SetDefault(
        MEGCC_TARGET="x86_64",
        MEGCC_MEMORY="",
        MEGCC_PYTHON=sys.executable,
        MEGCC_RUNTIME_DIR=_targets.RUNTIME_DIR,
        MEGCC_RUNTIME_BUILD_DIR="megcc_runtime",
        MEGCC_OPTIONS=[],
        MEGCC_NAME="",
        MEGCC_CV="",
        _MEGCC_CV_FLAG="",
        _MEGCC_SHAPES_FLAG="",
        _MEGCC_INPUT="$SOURCE --name $MEGCC_NAME",
        MEGCC="$( $MEGCC_PYTHON $) -m megcc_builder.cli",
        _MEGCC_ARRAY_FLAG="",
        MEGCC_COMPILECOM="$MEGCC compile $_MEGCC_INPUT -o ${TARGET.dir} --isa $MEGCC_ISA "
                         "$_MEGCC_SHAPES_FLAG $_MEGCC_ARRAY_FLAG $_MEGCC_CV_FLAG $MEGCC_OPTIONS",
        MEGCC_COMPILECOMSTR="",
        MEGCC_SIZECOMSTR="megcc: size report of $SOURCE",
    )
    _apply_target(env)
    scanner = SCons.Scanner.Scanner(function=_model_scan, name="MegccModelScanner",
                                    skeys=[".onnx", ".json", ".yaml", ".yml"])
    env["BUILDERS"]["MegccCompile"] = SCons.Builder.Builder(
        action=SCons.Action.Action("$MEGCC_COMPILECOM", "$MEGCC_COMPILECOMSTR"),
        emitter=_compile_emitter,
        source_scanner=scanner,
        )
    env.AddMethod(MegccModel, "MegccModel")
    env.AddMethod(MegccSizeReport, "MegccSizeReport")
    env.AddMethod(MegccRunCommand, "MegccRunCommand")


def exists(env):
    try:
        _targets.load(env.subst("$MEGCC_TARGET") or "x86_64")
        return True
    except _targets.TargetError:
        return False
