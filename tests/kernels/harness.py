"""Per-operator kernel tests: cases written once per family, run against every registered
implementation that applies to them, on every platform that can execute it.

A family's `cases.py` fills a `Book` with `Case`s (one ONNX node, optionally followed by an
epilogue chain such as a bias-free activation, plus a reference: onnxruntime by default, a
NumPy function, or "onnx" for the onnx package's reference evaluator). Its test module
parametrizes over `book.params()`: one test per (implementation, platform, case) where the
registry says the implementation applies to the case's op as compiled for that platform
(`registry.candidates` on the planned graph). Cases are batched: the applicable cases of one
(implementation, platform, opset, layout option) compile into ONE model (one C build, one
run, under qemu for the ARM targets) with `registry.only(implementation)`; each test then
asserts that its op was computed by that implementation (`Instr.impl`) and compares.

Platforms: portable implementations run on the host at level "generic"; the others on every
platform whose level provides what they require: the host at x86_64-v3 (AVX2; a host without
it skips locally and FAILS in CI), the host at x86_64-vnni for the `vnni` implementations
(AVX512-VNNI `vpdpbusd`; same rule), arm64-neon and armv7-neon under qemu, arm64-dot
(Armv8.2-A dot product, qemu -cpu max) / arm64-i8mm (Armv8.6-A int8 matrix multiply) for
the implementations that need `sdot` / `smmla`,
arm64fp16 (Armv8.2-A + FP16, qemu -cpu max) for the float16 kernels (its cases,
`ioc16=True`, are float32 models compiled with enable_ioc16, so the op runs in float16
between two conversions, and their reference is NumPy float16 arithmetic), and the
Cortex-M4 (cortex-m-dsp) and Cortex-M55 (cortex-m-mve) boards under qemu-system-arm for the
`dsp` / `mve` implementations.
"""
from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from build_support import in_ci, require_target
from megcc_builder.compiler import ModelSpec, build_plan, compile_bundle
from megcc_builder.frontend.onnx import load_onnx
from megcc_builder.host import run_compiled
from megcc_builder.kernels import registry
from megcc_builder.options import CompileOptions
from megcc_builder.isa import host_level, spec

TOL = 1e-4  # |ours - ref| / max(1, |ref|), DESIGN.md's float32 rule


@dataclass(frozen=True)
class Platform:
    name: str
    level: str
    target: Optional[str]  # hosted target run under its emulator; None = this machine


PLATFORMS = {p.name: p for p in [Platform("generic", "generic", None),
                                  Platform("avx2", "x86_64-v3", None),
                                  Platform("vnni", "x86_64-vnni", None),
                                  Platform("arm64", "arm64-neon", "arm64"),
                                  Platform("armv7", "armv7-neon", "armv7"),
                                  Platform("arm64dot", "arm64-dot", "arm64-dot"),
                                  Platform("arm64fp16", "arm64-fp16", "arm64-fp16"),
                                  Platform("cortexm4", "cortex-m-dsp", "cortex-m4"),
                                  Platform("cortexm55", "cortex-m-mve", "cortex-m55"),
                                  Platform("arm64i8mm", "arm64-i8mm", "arm64-i8mm")]}
# platforms that run only the implementations needing their own extensions (the rest of what
# their level runs is the same code as on the platform of the level below; the Cortex-M
# platforms are bare metal under qemu-system-arm, the runner reading files by semihosting)
EXTENSION_ONLY = {"vnni": ("vnni",), "arm64dot": ("neon64dot",), "arm64i8mm": ("neon64i8mm",),
                  "arm64fp16": ("f16.gemm", "f16.direct", "f16.elementwise"),
                  "cortexm4": ("dsp",), "cortexm55": ("dsp", "mve")}
# the platform of enable_ioc16 cases (and only of them)
IOC16_PLATFORM = "arm64fp16"


def platforms_of(impl: registry.Implementation) -> List[str]:
    """Where an implementation runs: portable C on the host; else every platform whose level
    provides its requirement (a vocabulary is generated per level: each is a distinct code
    path)."""
    if not impl.requires:
        return ["generic"]
    return [p.name for p in PLATFORMS.values() if p.name != "generic"
            and registry.provides(spec(p.level), impl.requires)
            and impl.requires in EXTENSION_ONLY.get(p.name, (impl.requires,))]


def require_platform(platform: Platform) -> None:
    if platform.target is not None:
        require_target(platform.target)
    elif not spec(platform.level).features <= spec(host_level()).features:
        msg = f"host ({host_level()}) cannot run {platform.level} kernels"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)


def uniform_source(seed: int) -> Callable:
    """rand(*shape, dtype, low, high): floats uniform in [low, high), integers in
    [low, high], from one generator of this seed (each family keeps the seed its old test
    file used, so its cases hold the same numbers)."""
    rng = np.random.default_rng(seed)

    def rand(*shape, dtype=np.float32, low=-3.0, high=3.0):
        if np.dtype(dtype).kind == "f":
            return np.asarray(rng.uniform(low, high, shape)).astype(dtype)
        return rng.integers(int(low), int(high) + 1, shape).astype(dtype)

    return rand


class Const:
    """An input given as an initializer (compile-time constant)."""

    def __init__(self, value):
        self.value = np.asarray(value)


@dataclass
class Case:
    id: str
    op: str
    inputs: list  # np.ndarray = runtime input, Const = initializer, None = omitted
    attrs: Dict = field(default_factory=dict)
    opset: int = 17
    n_out: int = 1
    ref: Optional[Callable] = None  # NumPy reference (of the whole chain), "onnx", None = ORT
    # epilogue: (op, extra inputs, attrs) applied in turn to output 0 (fused activations)
    post: Sequence[Tuple[str, list, Dict]] = ()
    nchw44: bool = False  # compile with enable_nchw44 (the conv region in NCHW44)
    # compile with enable_compress_fp16: the op's weights must reach its kernel as float16
    # (give them values float16 represents, so the float32 reference is exact)
    compress_fp16: bool = False
    # compile with enable_ioc16 on arm64-fp16 (the op computed in float16; IOC16_PLATFORM)
    ioc16: bool = False
    # with ioc16: compile with enable_nchw88 too (the float16 region in NCHW88)
    nchw88: bool = False
    # prologue: (op, extra inputs, attrs) applied in turn to input 0 before the node (an
    # NCHW88 case's identity conv, which starts the NCHW88 region the op follows)
    pre: Sequence[Tuple[str, list, Dict]] = ()
    exact: Optional[bool] = None  # None = the book's rule
    tol: float = TOL
    # platform -> (kernel-name prefix, suffix) the cost model picks without restriction
    expect: Dict[str, Tuple[str, str]] = field(default_factory=dict)

    # cases with different tags never share a model (a workaround for a compiler bug where
    # batching breaks the build: the case's comment says which)
    batch: str = ""
    domain: str = ""  # the node's operator domain ("com.microsoft" for onnxruntime's ops)

    @property
    def group(self):
        return (self.opset, self.nchw44, self.batch, self.compress_fp16, self.ioc16,
                self.nchw88)

    def values(self):
        return [v.value if isinstance(v, Const) else v for v in self.inputs]


def build_model(cases: List[Case]) -> onnx.ModelProto:
    """The cases as independent branches of one model: case k's node is named `case{k}`."""
    nodes, graph_inputs, inits, outputs = [], [], [], []

    def name_of(v, name):
        if v is None:
            return ""
        if isinstance(v, Const):
            inits.append(numpy_helper.from_array(v.value, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape))
        return name

    for k, c in enumerate(cases):
        names = [name_of(v, f"c{k}_in{i}") for i, v in enumerate(c.inputs)]
        for j, (op, extra, attrs) in enumerate(c.pre):
            ins = [names[0]] + [name_of(v, f"c{k}_q{j}_{i}") for i, v in enumerate(extra)]
            nodes.append(helper.make_node(op, ins, [f"c{k}_pre{j}"], name=f"case{k}_pre{j}",
                                          **attrs))
            names[0] = f"c{k}_pre{j}"
        outs = [f"c{k}_out{j}" for j in range(c.n_out)]
        outputs += [helper.make_empty_tensor_value_info(o) for o in outs]
        first = [f"c{k}_t0"] + outs[1:] if c.post else outs
        nodes.append(helper.make_node(c.op, names, first, name=f"case{k}", domain=c.domain,
                                      **c.attrs))
        src = first[0]
        for j, (op, extra, attrs) in enumerate(c.post):
            dst = outs[0] if j == len(c.post) - 1 else f"c{k}_t{j + 1}"
            ins = [src] + [name_of(v, f"c{k}_p{j}_{i}") for i, v in enumerate(extra)]
            nodes.append(helper.make_node(op, ins, [dst], name=f"case{k}_post{j}", **attrs))
            src = dst
    graph = helper.make_graph(nodes, "cases", graph_inputs, outputs, inits)
    opsets = [helper.make_opsetid("", cases[0].opset)]
    opsets += [helper.make_opsetid(d, 1) for d in sorted({c.domain for c in cases} - {""})]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def shapes_of(cases: List[Case]) -> Dict[str, tuple]:
    """The runtime inputs' shapes (a 0-sized dimension reads as dynamic in an ONNX model)."""
    return {n: tuple(v.shape) for n, v in feeds(cases).items()}


def plan_cases(cases: List[Case], level: str, nchw44: bool, compress_fp16: bool = False,
               ioc16: bool = False, nchw88: bool = False):
    return build_plan(load_onnx(build_model(cases), shapes_of(cases)), "cases",
                      CompileOptions(isa=level, enable_nchw44=nchw44,
                                     enable_compress_fp16=compress_fp16, enable_ioc16=ioc16,
                                     enable_nchw88=nchw88))


def feeds(cases: List[Case]) -> Dict[str, np.ndarray]:
    """The runtime inputs by name: the node's, then the epilogue's."""
    out = {}
    for k, c in enumerate(cases):
        out.update({f"c{k}_in{i}": v for i, v in enumerate(c.inputs)
                    if isinstance(v, np.ndarray)})
        out.update({f"c{k}_p{j}_{i}": v for j, (_, extra, _) in enumerate(c.post)
                    for i, v in enumerate(extra) if isinstance(v, np.ndarray)})
    return out


def reference(cases: List[Case]) -> List[list]:
    """Per case, its reference outputs."""
    result: Dict[int, list] = {}
    by_group: Dict[tuple, List[int]] = {}
    for k, c in enumerate(cases):
        if c.ref == "onnx":
            from onnx.reference import ReferenceEvaluator

            result[k] = ReferenceEvaluator(build_model([c])).run(None, feeds([c]))
        elif c.ref is not None:
            result[k] = list(c.ref(*c.values()))
        else:
            by_group.setdefault(c.opset, []).append(k)
    for ks in by_group.values():
        sub = [cases[k] for k in ks]
        sess = ort.InferenceSession(build_model(sub).SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        out = sess.run(None, feeds(sub))
        i = 0
        for k in ks:
            result[k] = out[i:i + cases[k].n_out]
            i += cases[k].n_out
    return [result[k] for k in range(len(cases))]


def _case_ops(graph, n_cases: int) -> Dict[int, object]:
    """case index -> its op in a planned graph: the node named case<k>, or, where the
    epilogue fused into it (a FusedElementwise chain takes its last node's name), the
    case<k>_post<j> op writing the case's output. A case folded at compile time has none."""
    found, fused = {}, {}
    for op in graph.ops:
        if not op.name.startswith("case"):
            continue
        head, _, post = op.name[4:].partition("_post")
        if not head.isdigit() or int(head) >= n_cases:
            continue
        if not post:
            found[int(head)] = op
        elif {f"c{head}_out0", f"c{head}_out0_f16", f"c{head}_out0_f16_nchw88"} \
                & set(op.outputs):  # (ioc16: its shadow; nchw88: the shadow's blocked copy)
            fused[int(head)] = op
    return {**fused, **found}


def _restriction(name: str, nchw88: bool) -> Tuple[str, ...]:
    """The implementations a run of `name` allows. An NCHW88 element-wise kernel serves the
    same op types as the NCHW float16 ones, and enable_ioc16 decides an op's float16 form
    on the NCHW op, before the layout pass: those stay allowed so that the op reaches the
    NCHW88 region; the cost model then picks, and `check` asserts `name` ran."""
    impl = next(i for impls in registry.REGISTRY.values() for i in impls if i.name == name) \
        if name != "folded" else None
    if not nchw88 or impl is None or impl.layout != "nchw88":
        return (name,)
    twins = {i.name for op in impl.ops for i in registry.implementations(op)
             if i.dtypes and "float16" in i.dtypes and i.layout != "nchw88"}
    return (name, *sorted(twins))


class Book:
    """A family's cases. `exact`: data movement must be bit-exact; arithmetic within tol."""

    def __init__(self, family: str, exact: bool = False):
        self.family = family
        self.exact = exact
        self.cases: List[Case] = []
        self._by_id: Dict[str, Case] = {}
        self._results = functools.lru_cache(maxsize=None)(self._run)
        self._applicable = functools.lru_cache(maxsize=None)(self._plan_applicable)

    def add(self, id_, *args, **kwargs) -> Case:
        c = Case(id_, *args, **kwargs)
        assert id_ not in self._by_id, f"duplicate case id {id_}"
        self.cases.append(c)
        self._by_id[id_] = c
        return c

    # ------------------------------------------------------------- which impl applies where
    def _plan_applicable(self, platform: str, group) -> Dict[str, Tuple[str, ...]]:
        """case id -> names of the implementations the registry would allow for its op when
        compiled for `platform` (candidates on the planned graph); () = folded away."""
        level = PLATFORMS[platform].level
        cases = [c for c in self.cases if c.group == group]
        if group[4] != (platform == IOC16_PLATFORM):  # ioc16 cases run there, and only they
            return {c.id: () for c in cases}
        plan = plan_cases(cases, level, group[1], group[3], group[4], group[5])
        ops = _case_ops(plan.graph, len(cases))
        isa = spec(level)
        out = {}
        for k, c in enumerate(cases):
            if k not in ops:
                out[c.id] = ()
                continue
            ok, _ = registry.candidates(ops[k], plan.graph, isa)
            out[c.id] = tuple(impl.name for impl in ok)
        return out

    @functools.lru_cache(maxsize=None)
    def _chosen(self, platform: str, group) -> Dict[str, List[str]]:
        """case id -> the kernels of the instructions computing its op, unrestricted."""
        cases = [c for c in self.cases if c.group == group]
        plan = plan_cases(cases, PLATFORMS[platform].level, group[1], group[3], group[4],
                          group[5])
        ops = _case_ops(plan.graph, len(cases))
        return {c.id: [i.kernel.name for i in plan.instrs
                       if k in ops and set(ops[k].outputs) & set(i.outputs)]
                for k, c in enumerate(cases)}

    def applicable(self, case: Case, platform: str) -> Tuple[str, ...]:
        return self._applicable(platform, case.group)[case.id]

    def runs(self) -> List[Tuple[str, str, str]]:
        """(implementation, platform, case id) for every applicable combination; a case
        folded away at compile time runs once on the portable platform (impl "folded")."""
        names = {impl.name: impl for impls in registry.REGISTRY.values() for impl in impls}
        result = []
        for c in self.cases:
            seen = False
            for name in sorted({n for p in PLATFORMS for n in self.applicable(c, p)}):
                for platform in platforms_of(names[name]):
                    if name in self.applicable(c, platform):
                        result.append((name, platform, c.id))
                        seen = True
            if not seen and not any(self.applicable(c, p) for p in PLATFORMS):
                result.append(("folded", "generic", c.id))
        return result

    def params(self):
        return [pytest.param(name, platform, cid, id=f"{name}-{platform}-{cid}")
                for name, platform, cid in self.runs()]

    # ------------------------------------------------------------------------- running
    def _run(self, name: str, platform: str, group) -> Dict[str, tuple]:
        p = PLATFORMS[platform]
        cases = [self._by_id[cid] for n, pl, cid in self.runs()
                 if n == name and pl == platform and self._by_id[cid].group == group]
        model = build_model(cases)
        with tempfile.TemporaryDirectory(prefix="megcc-optest-") as tmp:
            path = os.path.join(tmp, "model.onnx")
            onnx.save(model, path)
            shapes = shapes_of(cases)
            ms = ModelSpec("model", path, [shapes] if shapes else [], True, p.level, group[1],
                           enable_compress_fp16=group[3], enable_ioc16=group[4],
                           enable_nchw88=group[5])
            if name == "folded":
                bundle = compile_bundle([ms], tmp, save_c_array=False, isa=p.level)
            else:
                with registry.only(*_restriction(name, group[5])):
                    bundle = compile_bundle([ms], tmp, save_c_array=False, isa=p.level)
            plan = bundle.models[0].plans[0]
            ran = self._ran_by(plan, cases)
            f = feeds(cases)
            # in this process on the host; the runner under the emulator for a cross target
            outs = run_compiled(bundle.files["kernels_c"], bundle.files["model.tiny"],
                                [f[n] for n in plan.graph.inputs], target=p.target)
        by_name = dict(zip(plan.output_names, outs))
        refs = reference(cases)
        return {c.id: ([by_name[f"c{k}_out{j}"] for j in range(c.n_out)], refs[k], ran[c.id])
                for k, c in enumerate(cases)}

    @staticmethod
    def _ran_by(plan, cases) -> Dict[str, tuple]:
        """case id -> (the implementations of the instructions computing its op (the ones
        writing the op's outputs), {"view"} if the op became a view, {"folded"} if gone;
        the dtypes of the constants they read)."""
        ops = _case_ops(plan.graph, len(cases))
        result = {}
        for k, c in enumerate(cases):
            if k not in ops:
                result[c.id] = ({"folded"}, set())
                continue
            outs = set(ops[k].outputs)
            impls = {i.impl for i in plan.instrs if outs & set(i.outputs)}
            if not impls and outs <= set(plan.views):
                impls = {"view"}
            # the dtypes of the constant operands those instructions read
            weights = {plan.graph.tensors[n].dtype for i in plan.instrs if outs & set(i.outputs)
                       for n in i.inputs if n and plan.graph.tensors[n].is_const}
            result[c.id] = (impls, weights)
        return result

    def check(self, name: str, platform: str, case_id: str) -> None:
        require_platform(PLATFORMS[platform])
        case = self._by_id[case_id]
        ours, ref, (ran, weights) = self._results(name, platform, case.group)[case_id]
        if case.compress_fp16:
            assert "float16" in weights, f"{case_id}: weights reached the kernel as {weights}"
        if name == "folded":
            assert ran == {"folded"}, ran
        elif ran == {"view"}:
            assert name == "data.views.lower_view", (name, ran)
        else:
            assert ran == {name}, f"{case_id}: computed by {ran}, not {name}"
        exact = self.exact if case.exact is None else case.exact
        assert len(ours) == len(ref)
        for a, b in zip(ours, ref):
            b = np.asarray(b)
            # a NumPy reference may compute a float32 result in float64 (a better oracle)
            wide = callable(case.ref) and a.dtype == np.float32 and b.dtype == np.float64
            assert (a.dtype == b.dtype or wide) and a.shape == b.shape, \
                (a.dtype, a.shape, b.dtype, b.shape)
            narrow = a.dtype.type.__module__.startswith("ml_dtypes")  # bfloat16, float8...
            if a.dtype.kind == "f" and not exact and not narrow:
                err = np.abs(a.astype(np.float64) - b) / np.maximum(1.0, np.abs(b))
                assert np.array_equal(np.isnan(a), np.isnan(b)), "NaN positions differ"
                worst = np.nanmax(err, initial=0.0)
                assert worst <= case.tol, f"{case_id} on {platform}: max error {worst}"
            elif narrow:  # the same NaNs, else the same bits
                nan_a, nan_b = np.isnan(a.astype(np.float32)), np.isnan(b.astype(np.float32))
                np.testing.assert_array_equal(nan_a, nan_b)
                bits = np.uint16 if a.dtype.itemsize == 2 else np.uint8
                np.testing.assert_array_equal(a.view(bits)[~nan_a], b.view(bits)[~nan_b])
            else:
                np.testing.assert_array_equal(a, b)


def check_choice(book: Book, platform: str, case_id: str) -> None:
    """Without restriction, the cost model picks the kernel the case expects (no C build)."""
    case = book._by_id[case_id]
    prefix, suffix = case.expect[platform]  # suffix "!x": must not end with x
    kernels = book._chosen(platform, case.group)[case_id]
    assert len(kernels) == 1 and kernels[0].startswith(prefix), (case_id, platform, kernels)
    if suffix.startswith("!"):
        assert not kernels[0].endswith(suffix[1:]), (case_id, platform, kernels, suffix)
    else:
        assert kernels[0].endswith(suffix), (case_id, platform, kernels, suffix)


def choice_params(book: Book):
    return [pytest.param(p, c.id, id=f"{p}-{c.id}") for c in book.cases for p in c.expect]


def every_impl_name() -> List[str]:
    return sorted({impl.name for impls in registry.REGISTRY.values() for impl in impls})
