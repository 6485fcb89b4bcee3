"""The compile driver: model files + options -> generated files of one build.

frontend -> infer/fold -> passes -> lowering/planning -> one shared kernel set -> emit.
Every model of a bundle (and every shape instance of a model) shares one kernels.c.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ._version import __version__
from .emit.files import recover, write_all_if_changed
from .emit.kernel_set import kernel_set_id
from .emit.kernels_c import kernels_c_source, kernels_h_source, multi_arch_kernels_c_source
from .emit.model_blob import (ARCH_CODES, ARCH_NAMES, BlobInstr, BlobPlan, BlobTensor,
                              c_array_source, write_model)
from .emit.fingerprints import blob_fingerprints
from .emit.signatures import blob_signatures
from .cv import CV_FILES, generate as generate_cv
from .ir import CompileError, Graph
from .ir.graph import clip
from .ir.infer import infer_and_fold
from .ir import symbolic
from .ir.symbolic import Sym, hint
from . import dynamic_plan
from .frontend.dims import SymbolSpec
from .codegen.kernel import Kernel
from .kernels import has_kernel
from .control_lowering import is_control, resolve_jump_targets
from .lowering import Plan, lower_graph
from .names import c_identifier, model_symbol
from .options import CompileOptions, dot_product_refusal, nchw88_refusal
from .passes import optimize
from .passes.compress_fp16 import compress_weights_fp16
from .passes.float16_regions import has_float16_weights
from .passes.ioc16 import compute_in_float16, float16_model_in_float16
from .passes.layout_nchw44 import layout_nchw44, layout_nchw88
from .passes.dynamic_quant import expand_dynamic_quantize_matmul
from .passes.qdq import fuse_qdq
from .passes.fixed_requant import use_fixed_point_requant
from .isa import resolve as _resolve_isa, spec as isa_spec

Shapes = Dict[str, Tuple[int, ...]]


@dataclass
class ModelSpec:
    name: str
    path: str
    shape_instances: List[Shapes] = field(default_factory=list)  # [] = the model's own
    fuse: bool = True
    isa: str = ""  # ISA level (megcc_builder.target); "" = the bundle's
    enable_nchw44: bool = False  # run the conv region in NCHW44 (passes/layout_nchw44.py)
    enable_nchw44_dot: bool = False  # ... with dot-product kernels (options.CompileOptions)
    enable_compress_fp16: bool = False  # weights stored as float16 (passes/compress_fp16.py)
    enable_ioc16: bool = False  # compute in float16 (passes/ioc16.py; arm64-fp16)
    # int8 requantization in fixed point (Q31 + shift; passes/fixed_requant.py)
    enable_fixed_point_requant: bool = False
    enable_nchw88: bool = False  # the float16 region in NCHW88 (needs enable_ioc16)
    # the most threads the model will run on (0: any; options.CompileOptions.max_threads)
    max_threads: int = 0
    # bounds and hints of run-time dimensions (frontend/dims.py; docs/dynamic-shapes.md)
    symbols: SymbolSpec = field(default_factory=SymbolSpec)
    # caps of sizes computed at run time (--value-cap; ir/value_shapes.py): tensor name,
    # "default" or "range" -> bytes (computed shapes) or elements (Range)
    value_caps: Dict[str, int] = field(default_factory=dict)

    def options(self) -> Dict[str, object]:
        """The per-model compile options, as MegCC's config spells them (manifest)."""
        return {"mgb_fuse_kernel": self.fuse, "enable_nchw44": self.enable_nchw44,
                "enable_nchw44_dot": self.enable_nchw44_dot,
                "enable_compress_fp16": self.enable_compress_fp16,
                "enable_ioc16": self.enable_ioc16,
                "enable_fixed_point_requant": self.enable_fixed_point_requant,
                "enable_nchw88": self.enable_nchw88,
                # (only when set: a default build's manifest is unchanged)
                **({"max_threads": self.max_threads} if self.max_threads else {})}

    def compile_options(self) -> CompileOptions:
        """What the pipeline gets (the ISA level resolved: 'native' becomes a level)."""
        level = resolve_isa(self.isa or None)
        if self.enable_nchw44_dot and dot_product_refusal(level):
            raise CompileError(dot_product_refusal(level), self.path)
        if self.enable_nchw88 and nchw88_refusal(level, self.enable_ioc16):
            raise CompileError(nchw88_refusal(level, self.enable_ioc16), self.path)
        return CompileOptions(isa=level, fuse=self.fuse, enable_nchw44=self.enable_nchw44,
                              enable_nchw44_dot=self.enable_nchw44_dot,
                              enable_compress_fp16=self.enable_compress_fp16,
                              enable_ioc16=self.enable_ioc16,
                              enable_fixed_point_requant=self.enable_fixed_point_requant,
                              enable_nchw88=self.enable_nchw88,
                              max_threads=self.max_threads)


@dataclass
class CompiledModel:
    spec: ModelSpec
    plans: List[Plan]
    blob: bytes = b""


@dataclass
class Bundle:
    models: List[CompiledModel]
    kernels: List[Kernel]
    kernel_set_id: int
    files: Dict[str, str] = field(default_factory=dict)  # role -> path
    cv_files: Dict[str, str] = field(default_factory=dict)  # tinycv file name -> text
    # the ISA levels built for: one, or one per architecture of a multi-architecture build
    levels: List[str] = field(default_factory=list)


def load_graph(path: str, shapes: Optional[Shapes] = None,
               symbols: Optional[SymbolSpec] = None) -> Graph:
    lower = path.lower()
    if lower.endswith(".onnx"):
        from .frontend.onnx import load_onnx

        return load_onnx(path, shapes, symbols=symbols)
    if lower.endswith(".mge") or lower.endswith(".mgb"):
        try:
            from .frontend.mge import load_mge
        except ImportError as exc:
            raise CompileError(f"MegEngine models need the megengine package ({exc})", path) \
                from None
        return load_mge(path, shapes, symbols)
    raise CompileError("unknown model format (expected .onnx or .mge)", path)


# The model format stores every size and offset as u32 (docs/model-format.md).
MAX_BYTES = 0xFFFFFFFF


def _check_outputs_exist(graph: Graph) -> None:
    produced = {o for op in graph.ops for o in op.outputs if o}
    for out in graph.outputs:
        if out not in produced and out not in graph.tensors:
            raise CompileError(f"output '{out}' is not produced by any node", graph.source)


def _check_sizes(graph: Graph, names) -> None:
    """Refuse tensors the format cannot address (e.g. 2^40 elements) with the node that
    makes them, before anything tries to allocate, plan or serialize them."""
    producers = graph.producers()
    if graph.symbols:  # sizes that are expressions: checked at the symbols' upper bounds
        dynamic_plan.check_upper_bounds(graph, names, producers)
    for name in names:
        t = graph.tensors[name]
        if not isinstance(t.nbytes, Sym) and t.nbytes > MAX_BYTES:
            raise graph.error(f"tensor '{name}' of shape {tuple(t.shape)} ({t.dtype}) takes "
                              f"{t.nbytes} bytes; a compiled model addresses at most 4 GiB - 1",
                              producers.get(name))


def _check_views(plan: Plan) -> None:
    """A view (Reshape, Flatten, ...) reinterprets its input's bytes, so it must fit in
    them; ONNX shape inference does not check Reshape's element count."""
    graph = plan.graph
    producers = graph.producers()
    for out, view in plan.views.items():
        need = view.byte_offset + graph.tensors[out].nbytes
        have = graph.tensors[view.base].nbytes
        if need > have:
            raise graph.error(f"output '{out}' of shape {tuple(graph.tensors[out].shape)} needs "
                              f"{need} bytes of input '{view.base}', which has {have}: "
                              "inconsistent shapes", producers.get(out))


def build_plan(graph: Graph, name: str, options: CompileOptions = CompileOptions()) -> Plan:
    if options.enable_nchw88 and nchw88_refusal(options.isa, options.enable_ioc16):
        raise CompileError(nchw88_refusal(options.isa, options.enable_ioc16), graph.source)
    _check_outputs_exist(graph)
    _check_sizes(graph, list(graph.inputs))
    expand_dynamic_quantize_matmul(graph)
    fuse_qdq(graph)  # before folding: the quantized weights are still DequantizeLinear inputs
    infer_and_fold(graph, has_kernel)
    _check_sizes(graph, list(graph.tensors))
    float16_model = has_float16_weights(graph)
    optimize(graph, options)
    if options.enable_fixed_point_requant:
        use_fixed_point_requant(graph)
    # NCHW44 before ioc16 keeps its region float32; with NCHW88 the float16 region is laid
    # out first and NCHW44 takes what stays float32
    if options.nchw44 and not options.enable_nchw88:
        layout_nchw44(graph)
    if options.enable_ioc16:
        compute_in_float16(graph, options.isa_spec)
    elif float16_model:  # on a level with float16 arithmetic, in float16 (passes/ioc16.py)
        float16_model_in_float16(graph, options.isa_spec)
    if options.enable_nchw88:
        layout_nchw88(graph)
        if options.nchw44:
            layout_nchw44(graph)
    if options.enable_compress_fp16 or float16_model:  # a float16 model's: exact only
        compress_weights_fp16(graph, exact_only=not options.enable_compress_fp16)
    plan = lower_graph(graph, name, options)
    with symbolic.hint_only():  # symbolic views are exact by construction (Reshape's guard)
        _check_views(plan)
    if plan.memory.arena_size > MAX_BYTES:
        raise CompileError(f"the activations need an arena of {plan.memory.arena_size} bytes; "
                           "a compiled model addresses at most 4 GiB - 1", graph.source)
    return plan


def resolve_isa(level: Optional[str]) -> str:
    try:
        return _resolve_isa(level)
    except ValueError as exc:
        raise CompileError(str(exc)) from None


def shapes_label(graph: Graph) -> str:
    return ";".join(f"{n}={symbolic.shape_text(graph.tensors[n].shape)}" for n in graph.inputs)


def compile_model(spec: ModelSpec, graph_loader=load_graph,
                  kernel_choices: Optional[Dict[str, str]] = None) -> CompiledModel:
    """kernel_choices: node -> implementation to prefer where several apply (tests use the
    choices a dynamic plan made at its hints, `Plan.choices`)."""
    options = spec.compile_options()
    plans = []
    for shapes in spec.shape_instances or [None]:
        try:
            with symbolic.session(replay=kernel_choices) as sess:
                graph = graph_loader(spec.path, shapes, **(
                    {"symbols": spec.symbols} if graph_loader is load_graph else {}))
                sess.bounds.update(dynamic_plan.bounds_of(graph))
                graph.value_caps = dict(spec.value_caps)
                plans.append(build_plan(graph, "", options))
                _check_value_caps(spec, graph)
                plans[-1].choices = dict(sess.choices)
                if graph.symbols:
                    dynamic_plan.refuse_pins(graph, sess.guards)
                    plans[-1].guards = [g for g in sess.guards]
            if graph.symbols:
                _check_at_a_probe(spec, plans[-1], graph_loader, options)
        except CompileError as exc:
            if exc.source or type(exc) is not CompileError:  # NeedsValue carries more
                raise
            # an error raised where the file is not known still names it
            raise CompileError(exc.message, spec.path, exc.node) from None
        plans[-1].name = shapes_label(graph)
    return CompiledModel(spec, plans)


def _check_value_caps(spec: ModelSpec, graph: Graph) -> None:
    """A cap naming no tensor of the model is a typo, not something to ignore."""
    from .ir.value_shapes import DEFAULT_CAP_KEY, RANGE_CAP_KEY

    for name in sorted(spec.value_caps):
        if name not in (DEFAULT_CAP_KEY, RANGE_CAP_KEY) and name not in graph.tensors:
            raise CompileError(f"--value-cap {name}: the model has no tensor '{name}' (name "
                               "a Range output or a tensor shaped at run time, or use "
                               "'default' / 'range')", spec.path)


def _plan_blob(plan: Plan):
    """(BlobPlan, kernel name -> Kernel, kernel names by index) of one plan on its own."""
    kernels = {}
    for ins in plan.instrs:
        kernels.setdefault(ins.kernel.name, ins.kernel)
    names = sorted(kernels)
    blob = plan_to_blob(plan, {n: i for i, n in enumerate(names)}, [], {})
    return blob, kernels, names


def _check_at_a_probe(spec: ModelSpec, plan: Plan, graph_loader, options) -> None:
    """The dynamic plan evaluated at other sizes against a static compile there
    (dynamic_check.py): a safety net for extents specialised without the trace seeing."""
    from . import dynamic_check

    blob, kernels, names = _plan_blob(plan)
    dims = dynamic_check.probe_dims(blob)
    if dims is None:
        return
    shapes = {n: d for n, d in zip(plan.graph.inputs, dims)}
    with symbolic.session(replay=plan.choices):
        graph = graph_loader(spec.path, shapes)
        graph.value_caps = dict(spec.value_caps)
        static = build_plan(graph, "", options)
    sblob, skernels, snames = _plan_blob(static)
    dynamic_check.compare(blob, kernels, names, sblob, skernels, snames, dims,
                          plan.instr_nodes, spec.path)


def shared_kernels(models: List[CompiledModel]) -> List[Kernel]:
    by_name: Dict[str, Kernel] = {}
    for m in models:
        for plan in m.plans:
            for ins in plan.instrs:
                if is_control(ins):  # a built-in of the runtime, no kernel
                    continue
                k = by_name.setdefault(ins.kernel.name, ins.kernel)
                if k.source != ins.kernel.source:
                    raise AssertionError(f"kernel {k.name} generated with two different sources")
    return [by_name[n] for n in sorted(by_name)]


def plan_to_blob(plan: Plan, kernel_index: Dict[str, int], weights: List[bytes],
                 weight_ids: Dict[str, int]) -> BlobPlan:
    graph = plan.graph
    tensors: List[BlobTensor] = []
    index: Dict[str, int] = {}
    # the symbolic values behind what the blob holds as hints (dynamic plans)
    shapes: List[tuple] = []
    view_offsets: Dict[int, object] = {}

    def add_root(name: str) -> int:
        if name in index:
            return index[name]
        t = graph.tensors[name]
        quant = t.quant
        shapes.append(t.shape)
        bt = BlobTensor(name, t.dtype, tuple(hint(d) for d in t.shape), "arena",
                        layout={"nchw": 0, "nchw44": 1, "nchw88": 2}[t.layout],
                        scale=quant.scale if quant else 0.0,
                        zero_point=quant.zero_point if quant else 0)
        if t.is_const:
            bt.storage = "weight"
            if name not in weight_ids:
                weight_ids[name] = len(weights)
                weights.append(t.data.astype(t.data.dtype.newbyteorder("<")).tobytes())
            bt.weight_index = weight_ids[name]
        else:
            bt.offset = plan.memory.offsets[name]
        index[name] = len(tensors)
        tensors.append(bt)
        return index[name]

    def add(name: str) -> int:
        if name in index:
            return index[name]
        root = plan.root(name)
        if root == name:
            return add_root(name)
        base = add_root(root)
        t = graph.tensors[name]
        index[name] = len(tensors)
        shapes.append(t.shape)
        view_offsets[index[name]] = plan.view_offset(name)
        tensors.append(BlobTensor(name, t.dtype, tuple(hint(d) for d in t.shape), "view",
                                  offset=hint(plan.view_offset(name)), base=base))
        return index[name]

    inputs = [add(n) for n in graph.inputs]
    instrs = []
    for i, ins in enumerate(plan.instrs):
        ws = -1
        if i in plan.workspaces:
            ws_name = plan.workspaces[i]
            index[ws_name] = len(tensors)
            shapes.append((ins.workspace_bytes,))
            tensors.append(BlobTensor(ws_name, "uint8", (hint(ins.workspace_bytes),), "arena",
                                      offset=plan.memory.offsets[ws_name]))
            ws = index[ws_name]
        instrs.append(BlobInstr(ins.code if is_control(ins) else kernel_index[ins.kernel.name],
                                [add(n) if n else -1 for n in ins.inputs],
                                [add(n) for n in ins.outputs],
                                [0, ins.target] if is_control(ins) else
                                [hint(p) for p in ins.params], ws))
    resolve_jump_targets(instrs)
    outputs = [add(n) for n in graph.outputs]
    for k, shown in enumerate(plan.output_names):
        tensors[outputs[k]].name = shown
    blob = BlobPlan(plan.name, plan.arch, plan.memory.arena_size, tensors, instrs, inputs,
                    outputs)
    if graph.symbols:
        blob.dynamic = dynamic_plan.build(graph, plan, blob, index, plan.guards, shapes,
                                          view_offsets, [list(i.params) for i in plan.instrs])
    return blob


def serialize_model(model: CompiledModel, kernels: List[Kernel], set_id: int) -> bytes:
    kernel_index = {k.name: i for i, k in enumerate(kernels)}
    weights: List[bytes] = []
    weight_ids: Dict[str, int] = {}
    plans = [plan_to_blob(p, kernel_index, weights, weight_ids) for p in model.plans]
    return write_model(model.spec.name, [k.name for k in kernels], set_id, plans, weights)


# Model names become file names in the output directory (<name>.tiny) and C identifiers:
# nothing that could step out of the directory or hide as a dot-file.
MODEL_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Every file system takes 255-byte names; "<name>.tiny.txt" and the writer's temporaries
# add a few, so 128 leaves margin everywhere.
MODEL_NAME_MAX = 128


def compile_bundle(specs: List[ModelSpec], out_dir: str, save_c_array: bool = True,
                   isa: Union[str, Sequence[str], None] = None, cv: tuple = ()) -> Bundle:
    """isa: the build's ISA level (megcc_builder.target: generic, x86_64, x86_64-v3,
    x86_64-v4, armv7-neon, arm64-neon, native); None = generic. A ModelSpec.isa overrides it
    for its model. Several levels of distinct architectures (MegCC's arm64v7: arm64-neon and
    armv7-neon) make a multi-architecture build: every model carries a plan set per level
    and kernels.c compiles each architecture's kernels on that architecture
    (docs/model-format.md, "Plans for several architectures").
    cv: the CV operators to generate beside the kernels, ((name, dtype), ...)
    (megcc_builder.cv: tinycv.c and tinycv_c.h; none = no CV files)."""
    for s in specs:
        if len(s.name) > MODEL_NAME_MAX:
            raise CompileError(f"model name '{clip(s.name)}' is {len(s.name)} characters, at "
                               f"most {MODEL_NAME_MAX} (it names files in the output directory)",
                               s.path)
        if not MODEL_NAME_RE.fullmatch(s.name):
            raise CompileError(f"model name '{clip(s.name)}' must be letters, digits, '_', '.' "
                               "or '-' (it names files in the output directory)", s.path)
    # A previous run killed while replacing the outputs left a journal: finish it first, so
    # even a compile that fails below leaves one complete set (emit.files).
    recover(out_dir)
    names = [s.name for s in specs]
    levels = bundle_levels(isa)
    level = levels[0]
    if len(set(names)) != len(names):
        raise CompileError(f"two models are named '{[n for n in names if names.count(n) > 1][0]}'")
    if len(levels) == 1:
        specs = [s if s.isa else replace(s, isa=level) for s in specs]
        models = [compile_model(s) for s in specs]
    else:
        models = [compile_for_architectures(s, levels) for s in specs]
    kernels = shared_kernels(models)
    set_id = kernel_set_id((k.name, k.source) for k in kernels)
    bundle = Bundle(models, kernels, set_id, levels=levels)
    for m in models:
        m.blob = serialize_model(m, kernels, set_id)
    bundle.cv_files = generate_cv(tuple(cv), level)
    emit_bundle(bundle, out_dir, save_c_array)
    return bundle


def bundle_levels(isa: Union[str, Sequence[str], None]) -> List[str]:
    """The resolved levels of a build: one, or several of distinct architectures."""
    if isa is None or isinstance(isa, str):
        return [resolve_isa(isa)]
    levels = [resolve_isa(i) for i in isa]
    archs = [isa_spec(lv).arch for lv in levels]
    if len(set(archs)) != len(archs) or "any" in archs or len(levels) < 1:
        raise CompileError(f"a multi-architecture build takes one ISA level per architecture, "
                           f"not {', '.join(levels)}")
    return levels


def compile_for_architectures(spec: ModelSpec, levels: List[str]) -> CompiledModel:
    """One model compiled for each level, its plans concatenated (in level order), each
    tagged with its architecture: the runtime runs the plans whose kernels kernels.c has
    on the architecture it was built for."""
    if spec.isa:
        raise CompileError(f"model '{spec.name}' names its own ISA level ({spec.isa}), which "
                           "a multi-architecture build cannot honour", spec.path)
    plans: List[Plan] = []
    for lv in levels:
        for plan in compile_model(replace(spec, isa=lv)).plans:
            plan.arch = ARCH_CODES[isa_spec(lv).arch]
            plans.append(plan)
    return CompiledModel(spec, plans)


def arena_macro(model_name: str) -> str:
    return f"MEGCC_{c_identifier(model_name).upper()}_ARENA_SIZE"


def io_description(plan: Plan) -> dict:
    g = plan.graph

    def desc(name, shown):
        t = g.tensors[name]
        # a run-time dimension is shown as its expression ("W", "(W + 31)//32")
        return {"name": shown, "dtype": t.dtype,
                "shape": [repr(d) if isinstance(d, Sym) else d for d in t.shape]}

    info = {"name": plan.name,
            **({"arch": ARCH_NAMES[plan.arch]} if plan.arch else {}),
            "inputs": [desc(n, n) for n in g.inputs],
            "outputs": [desc(n, s) for n, s in zip(g.outputs, plan.output_names)],
            "arena_bytes": plan.memory.arena_size,
            "liveness_lower_bound_bytes": plan.memory.lower_bound,
            "instructions": [i.kernel.name for i in plan.instrs]}
    if g.symbols:  # a dynamic plan: the sizes above are those of the hints
        info["symbols"] = [{"name": n, "min": lo, "max": hi, "hint": h}
                           for n, (lo, hi, h) in g.symbols.items()]
        info["guards"] = [dynamic_plan.guard_message(gd) for gd in plan.guards]
    return info


def emit_bundle(bundle: Bundle, out_dir: str, save_c_array: bool = True) -> None:
    """Write the build's files as one step (emit.files.write_all_if_changed): a failure or
    interrupt leaves the previous outputs as they were, and unchanged files keep their
    timestamps."""
    files = bundle.files
    out: List[Tuple[str, object]] = []
    files["kernels_c"] = os.path.join(out_dir, "kernels.c")
    files["kernels_h"] = os.path.join(out_dir, "kernels.h")
    # The signatures come from the blobs themselves: exactly what the loader will compare.
    sigs = blob_signatures([m.blob for m in bundle.models], len(bundle.kernels))
    fingerprints = blob_fingerprints([m.blob for m in bundle.models])
    if len(bundle.levels) > 1:  # each architecture compiles the kernels its plans call
        per_arch = []
        for level in bundle.levels:
            arch = isa_spec(level).arch
            per_arch.append((arch, {ins.kernel.name for m in bundle.models for p in m.plans
                                    if p.arch == ARCH_CODES[arch] for ins in p.instrs
                                    if not is_control(ins)}))
        kernels_c = multi_arch_kernels_c_source(bundle.kernels, sigs, fingerprints, per_arch)
    else:
        kernels_c = kernels_c_source(bundle.kernels, sigs, fingerprints)
    out.append((files["kernels_c"], kernels_c))
    macros = {arena_macro(m.spec.name): max(p.memory.arena_size for p in m.plans)
              for m in bundle.models}
    dynamic = {arena_macro(m.spec.name) for m in bundle.models
               if any(p.graph.symbols for p in m.plans)}
    out.append((files["kernels_h"], kernels_h_source(macros, bundle.kernel_set_id, dynamic)))
    manifest = {"compiler": f"megcc-builder {__version__}", "isa": bundle.levels,
                "kernel_set_id": f"0x{bundle.kernel_set_id:016x}",
                "kernels": [k.name for k in bundle.kernels], "models": []}
    for m in bundle.models:
        base = os.path.join(out_dir, m.spec.name)
        files[f"{m.spec.name}.tiny"] = base + ".tiny"
        out.append((base + ".tiny", m.blob))
        if save_c_array:
            files[f"{m.spec.name}.tiny.c"] = base + ".tiny.c"
            out.append((base + ".tiny.c",
                        c_array_source(m.blob, model_symbol(m.spec.name))))
        info = [io_description(p) for p in m.plans]
        txt = []
        for p in info:
            txt.append(f"plan {p['name']}" + (f" for {p['arch']}" if "arch" in p else ""))
            for kind in ("inputs", "outputs"):
                for io in p[kind]:
                    txt.append(f"  {kind[:-1]} {io['name']} {io['dtype']} "
                               f"({','.join(map(str, io['shape']))})")
            for sym in p.get("symbols", []):
                txt.append(f"  symbol {sym['name']} in [{sym['min']}, {sym['max']}], "
                           f"compiled for {sym['hint']}")
            for guard in p.get("guards", []):
                txt.append(f"  guard {guard}")
        out.append((base + ".tiny.txt", "\n".join(txt) + "\n"))
        manifest["models"].append({"name": m.spec.name, "source": os.path.basename(m.spec.path),
                                   "blob": m.spec.name + ".tiny", "blob_bytes": len(m.blob),
                                   "arena_macro": arena_macro(m.spec.name),
                                   "options": m.spec.options(), "plans": info})
    for name, text in sorted(bundle.cv_files.items()):  # the CV operators asked for
        files[name] = os.path.join(out_dir, name)
        out.append((files[name], text))
    if bundle.cv_files:
        manifest["cv"] = cv_manifest(bundle.cv_files)
    files["manifest"] = os.path.join(out_dir, "manifest.json")
    out.append((files["manifest"], json.dumps(manifest, indent=1, sort_keys=True) + "\n"))
    write_all_if_changed(out)  # manifest last: it marks a complete build
    for name in CV_FILES:  # a build without CV operators leaves no CV files to link
        if name not in bundle.cv_files and os.path.exists(os.path.join(out_dir, name)):
            os.unlink(os.path.join(out_dir, name))


def cv_manifest(cv_files: Dict[str, str]) -> dict:
    """The generated CV functions (manifest.json), read back from tinycv_c.h."""
    protos = re.findall(r"^void (tinycv_\w+)\(", cv_files["tinycv_c.h"], re.M)
    return {"header": "tinycv_c.h", "source": "tinycv.c", "functions": protos}
