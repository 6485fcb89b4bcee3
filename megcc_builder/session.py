"""`InferenceSession`: compile a model once and run it from Python, in this process, with
onnxruntime's interface.

    sess = megcc_builder.InferenceSession("model.onnx", input_shapes={"data": (1, 3, 224, 224)})
    [probs] = sess.run(None, {"data": x})

The model is compiled (or an already compiled output directory is taken), the runtime and
its kernels are built into a shared library (cached by content, `host.build_shared_library`)
and loaded with ctypes (`native.py`); `run` then costs a few foreign calls and no copy the
runtime's zero-copy I/O can avoid. `subprocess=True` (and `target=` for a cross target under
its emulator, and every sanitizer/valgrind build) runs each call in the standalone runner
process instead, which survives a crashing kernel.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .emit.model_blob import read_model
from .host import (build_runner, build_shared_library, emulator_of, in_process_supported,
                   run_blob)
from .ir import CompileError
from .native import MegccRuntimeError, NativeModel, NativeNetwork, TensorInfo

__all__ = ["InferenceSession", "NodeArg", "InvalidInput", "MegccRuntimeError"]

# megcc dtype -> onnxruntime's type string (quantized types show their storage type)
_ORT_TYPES = {"float32": "float", "float16": "float16", "float64": "double", "int8": "int8",
              "uint8": "uint8", "int16": "int16", "uint16": "uint16", "int32": "int32",
              "uint32": "uint32", "int64": "int64", "uint64": "uint64", "bool": "bool",
              "qint8": "int8", "quint8": "uint8", "qint32": "int32", "bfloat16": "bfloat16",
              "float8e4m3fn": "float8e4m3fn", "float8e4m3fnuz": "float8e4m3fnuz",
              "float8e5m2": "float8e5m2", "float8e5m2fnuz": "float8e5m2fnuz",
              "float8e8m0": "float8e8m0", "float4e2m1": "float4e2m1", "int4": "int4",
              "uint4": "uint4", "int2": "int2", "uint2": "uint2"}


class InvalidInput(ValueError):
    """run() was given feeds that do not match the model (name, dtype or shape)."""


class NodeArg:
    """An input or output as onnxruntime describes it: name, shape (list), type."""

    def __init__(self, info: TensorInfo, symbolic: Optional[Sequence] = None):
        self.name = info.name
        self.shape = list(symbolic) if symbolic is not None else list(info.shape)
        self.type = f"tensor({_ORT_TYPES[info.dtype]})"
        self.dtype = info.numpy_dtype  # the numpy dtype run() expects
        self.megcc_dtype = info.dtype

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape})"


# a model file or compiled directory, serialized ONNX, or an onnx.ModelProto
ModelLike = Union[str, os.PathLike, bytes, object]


class InferenceSession:
    """A compiled model, ready to run.

    model: an ONNX/MegEngine model file, an onnx.ModelProto, serialized ONNX bytes, or the
        output directory of `megcc compile` (kernels.c + <name>.tiny; `model_name` picks
        one of several models).
    input_shapes: {input: shape}, or a list of them (one plan per entry; run() picks the
        plan matching the feeds); None = the shapes in the model.
    threads: worker threads of the network's pool (1 = run in the calling thread).
    isa: kernel ISA level (megcc_builder.isa); fuse, enable_nchw44, enable_nchw44_dot,
        enable_compress_fp16, enable_ioc16, enable_nchw88, max_threads: as `megcc compile`.
    subprocess: run every call in the standalone runner process (automatic for sanitizer
        and valgrind builds, and for `target`, a hosted cross target run under its emulator).
    """

    def __init__(self, model: ModelLike, input_shapes=None, threads: int = 1,
                 isa: str = "native", fuse: bool = True, enable_nchw44: bool = False,
                 subprocess: bool = False, target: Optional[str] = None,
                 model_name: Optional[str] = None, clock: str = "wall",
                 enable_nchw44_dot: bool = False, enable_compress_fp16: bool = False,
                 enable_ioc16: bool = False, enable_nchw88: bool = False,
                 max_threads: int = 0):
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self.threads = threads
        self.subprocess = subprocess or target is not None or not in_process_supported()
        if self.subprocess and threads != 1:
            raise ValueError("threads > 1 needs the in-process session")
        self._target = target
        self._workdir: Optional[str] = None
        self._net: Optional[NativeNetwork] = None
        work = tempfile.mkdtemp(prefix="megcc-session-")
        try:
            options = dict(enable_nchw44=enable_nchw44, enable_nchw44_dot=enable_nchw44_dot,
                           enable_compress_fp16=enable_compress_fp16,
                           enable_ioc16=enable_ioc16, enable_nchw88=enable_nchw88,
                           max_threads=max_threads)
            kernels_c, blob_path, names = self._compiled(model, input_shapes, isa, fuse,
                                                         options, model_name, work)
            with open(blob_path, "rb") as f:
                blob = f.read()
            if self.subprocess:
                self._runner = build_runner(kernels_c, target=target)
                self._blob_path = blob_path
                self._workdir, work = work, None  # the runner reads the files at each run
                self._plans = [_plan_infos(p) for p in read_model(blob)["plans"]]
            else:
                self._model = NativeModel(build_shared_library(kernels_c), blob, clock)
                self._net = NativeNetwork(self._model, threads)
                self._plans = self._model.plans
        finally:
            if work:
                shutil.rmtree(work, ignore_errors=True)
        if names and len(names) == len(self._plans) and all(  # (a manifest that fits)
                len(n) == len(outs) for n, (_, outs) in zip(names, self._plans)):
            # the compiler's output names (outputs sharing a tensor share its name in the blob)
            for (_, outs), plan_names in zip(self._plans, names):
                for o, n in zip(outs, plan_names):
                    o.name = n
        layout = read_model(blob)["plans"]
        self._dynamic = [p["dynamic"] is not None for p in layout]
        self._symbolic = [_symbolic_io(p) for p in layout]
        # plans of another architecture (a multi-architecture model) are never chosen
        runnable = self._model.runnable if self._net is not None else \
            [True] * len(self._plans)
        self._set_plan(runnable.index(True))
        self._by_shapes = {tuple(i.shape for i in ins): p for p, (ins, _) in
                           reversed(list(enumerate(self._plans))) if runnable[p]}

    # -- compilation --------------------------------------------------------------------
    @staticmethod
    def _compiled(model, input_shapes, isa, fuse, options, model_name, work):
        """(kernels.c, model blob, output names per plan or None): compiled into `work`, or
        found in a directory. options: the ModelSpec options (enable_nchw44, ...)."""
        if isinstance(model, (str, os.PathLike)) and os.path.isdir(model):
            kernels_c, blob = _find_compiled(os.fspath(model), model_name)
            return kernels_c, blob, _manifest_output_names(os.fspath(model), blob)
        from .compiler import ModelSpec, compile_bundle

        if isinstance(model, (str, os.PathLike)):
            path = os.fspath(model)
            if not os.path.isfile(path):
                raise CompileError("no such model file", path)
        else:
            path = os.path.join(work, "model.onnx")
            with open(path, "wb") as f:
                f.write(model if isinstance(model, bytes) else model.SerializeToString())
        if input_shapes is None:
            instances = []
        elif isinstance(input_shapes, dict):
            instances = [{k: tuple(v) for k, v in input_shapes.items()}]
        else:
            instances = [{k: tuple(v) for k, v in s.items()} for s in input_shapes]
        bundle = compile_bundle([ModelSpec("model", path, instances, fuse, **options)],
                                os.path.join(work, "build"), save_c_array=False, isa=isa)
        return (bundle.files["kernels_c"], bundle.files["model.tiny"],
                [list(p.output_names) for p in bundle.models[0].plans])

    # -- onnxruntime's interface -------------------------------------------------------
    def get_inputs(self) -> List[NodeArg]:
        """As onnxruntime: a run-time dimension of a dynamic plan is named (its symbol, or
        the expression that computes it), not a number."""
        return [NodeArg(i, sym) for i, sym in zip(self._plans[self._plan][0],
                                                   self._symbolic[self._plan][0])]

    def get_outputs(self) -> List[NodeArg]:
        return [NodeArg(o, sym) for o, sym in zip(self._plans[self._plan][1],
                                                  self._symbolic[self._plan][1])]

    def get_providers(self) -> List[str]:
        return ["MegccExecutionProvider"]

    def run(self, output_names: Optional[Sequence[str]], input_feed: Dict[str, np.ndarray],
            run_options=None) -> List[np.ndarray]:
        """The outputs named (None: all, in model order) for the given inputs by name."""
        arrays = self._ordered_feeds(input_feed)
        net = self._net
        if net is not None:
            if output_names is None:  # the common call, kept short
                return net.run(arrays)
            outs = net.run(arrays)
        else:
            try:
                outs = run_blob(self._runner, self._blob_path, arrays, plan=self._plan,
                                emulator=emulator_of(self._target),
                                shapes=self._shapes is not None)
            except RuntimeError as exc:
                if "input shapes refused" not in str(exc):
                    raise
                raise InvalidInput(str(exc).split("input shapes refused: ", 1)[1]) from None
        if output_names is None:
            return outs
        index = self._output_index
        try:
            return [outs[index[n]] for n in output_names]
        except KeyError as exc:
            raise InvalidInput(f"'{exc.args[0]}' is not an output of the model (outputs: "
                               f"{', '.join(index)})") from None

    # -- helpers -------------------------------------------------------------------------
    def _ordered_feeds(self, feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
        """The feeds in plan order, after selecting the plan their shapes match; clear
        errors for a missing, unknown, mistyped or misshapen input."""
        arrays = []
        try:
            for name, shape, dtype in self._signature:  # the common case, kept cheap
                a = feed[name]
                if type(a) is not np.ndarray or a.shape != shape or a.dtype != dtype:
                    return self._ordered_feeds_slow(feed)
                arrays.append(a)
        except (KeyError, TypeError):
            return self._ordered_feeds_slow(feed)
        if len(feed) != len(arrays):
            return self._ordered_feeds_slow(feed)
        return arrays

    def _ordered_feeds_slow(self, feed) -> List[np.ndarray]:
        if not isinstance(feed, dict):
            raise InvalidInput(f"feeds must be a dict of input name -> array, not "
                               f"{type(feed).__name__}")
        inputs = self._plans[self._plan][0]
        self._check_names(feed, inputs)
        arrays = [feed[i.name] for i in inputs]
        arrays = [a if isinstance(a, np.ndarray) else np.asarray(a) for a in arrays]
        # the current shapes: the plan's, or those a dynamic plan was last set to
        if any(a.shape != shape for a, (_, shape, _) in zip(arrays, self._signature)):
            self._select_plan_for(arrays)
            inputs = self._plans[self._plan][0]
        for a, info in zip(arrays, inputs):
            if a.dtype != info.numpy_dtype:
                raise InvalidInput(f"input '{info.name}': expected {info.numpy_dtype} "
                                   f"(tensor({_ORT_TYPES[info.dtype]})), got {a.dtype}")
        return arrays

    @staticmethod
    def _check_names(feed, inputs) -> None:
        names = [i.name for i in inputs]
        for n in names:
            if n not in feed:
                raise InvalidInput(f"missing input '{n}' (the model takes {', '.join(names)})")
        for n in feed:
            if n not in names:
                raise InvalidInput(f"'{n}' is not an input of the model (inputs: "
                                   f"{', '.join(names)})")

    def _select_plan_for(self, arrays: List[np.ndarray]) -> None:
        names = [i.name for i in self._plans[self._plan][0]]
        plan = self._by_shapes.get(tuple(a.shape for a in arrays))
        if (plan is None or [i.name for i in self._plans[plan][0]] != names) and \
                any(self._dynamic):
            self._set_shapes(arrays)
            return
        if plan is None or [i.name for i in self._plans[plan][0]] != names:
            for a, info in zip(arrays, self._plans[self._plan][0]):
                if a.shape != info.shape:
                    compiled = " or ".join(str(tuple(ins[names.index(info.name)].shape))
                                           for ins, _ in self._plans)
                    raise InvalidInput(f"input '{info.name}': shape {tuple(a.shape)} was not "
                                       f"compiled (compiled: {compiled})")
        self._set_plan(plan)

    def _set_plan(self, plan: int) -> None:
        self._plan = plan
        self._shapes = None
        self._signature = [(i.name, i.shape, i.numpy_dtype) for i in self._plans[plan][0]]
        self._output_index = {o.name: i for i, o in enumerate(self._plans[plan][1])}
        if self._net is not None:
            self._net.select_plan(plan)

    def _set_shapes(self, arrays: List[np.ndarray]) -> None:
        """Shapes no static plan was compiled for: a dynamic plan runs them (nothing is
        recompiled); the runtime's message names what it refuses."""
        shapes = [tuple(a.shape) for a in arrays]
        names = [i.name for i in self._plans[self._plan][0]]
        if self._net is not None:
            try:
                self._net.set_input_shapes(shapes)
            except MegccRuntimeError as exc:
                given = ", ".join(f"{n}={s}" for n, s in zip(names, shapes))
                raise InvalidInput(f"input shapes {given} refused: {exc}") from None
            self._plan = self._net.plan
            inputs = self._net.inputs
        else:  # the runner sets them at each run (host.run_blob)
            self._plan = self._dynamic.index(True)
            inputs = self._plans[self._plan][0]
        self._shapes = shapes
        self._signature = [(i.name, s, i.numpy_dtype) for i, s in zip(inputs, shapes)]
        self._output_index = {o.name: i for i, o in enumerate(self._plans[self._plan][1])}

    # -- lifetime ---------------------------------------------------------------------
    def close(self) -> None:
        if self._net is not None:
            self._net.close()
            self._model.close()
            self._net = None
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- beyond onnxruntime: timing in C, per-instruction profile ---------------------
    def native_network(self) -> NativeNetwork:
        if self._net is None:
            raise RuntimeError("the subprocess session has no in-process network")
        return self._net


def _symbolic_io(plan: dict):
    """Per input and output of a plan read from the blob: its shape with every run-time
    dimension named (a symbol, or its expression in the symbols), None for a static plan."""
    from .emit.dynamic import describe

    dyn = plan["dynamic"]
    if dyn is None:
        return [None] * len(plan["inputs"]), [None] * len(plan["outputs"])
    names = [s.name for s in dyn.symbols]
    bound = {(t, a): describe(dyn.exprs[e], names) for t, a, e in dyn.dims}

    def shape(ti):
        return [bound.get((ti, a), d) for a, d in enumerate(plan["tensors"][ti]["shape"])]

    return [shape(t) for t in plan["inputs"]], [shape(t) for t in plan["outputs"]]


def _plan_infos(plan: dict):
    """Input/output TensorInfo-like records of one plan read from the blob (subprocess)."""
    from types import SimpleNamespace

    from .ir.dtypes import numpy_dtype

    def info(ti):
        t = plan["tensors"][ti]
        return SimpleNamespace(name=t["name"], dtype=t["dtype"], shape=tuple(t["shape"]),
                               numpy_dtype=numpy_dtype(t["dtype"]), nbytes=t["nbytes"])

    return [info(t) for t in plan["inputs"]], [info(t) for t in plan["outputs"]]


def _manifest_output_names(directory: str, blob_path: str) -> Optional[List[List[str]]]:
    """The compiler's output names per plan, from manifest.json (two outputs that are one
    tensor have their own names there, one name in the blob); None if it is not there."""
    import json

    name = os.path.basename(blob_path)[:-len(".tiny")]
    try:
        with open(os.path.join(directory, "manifest.json")) as f:
            for m in json.load(f)["models"]:
                if m["name"] == name:
                    return [[o["name"] for o in p["outputs"]] for p in m["plans"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _find_compiled(directory: str, model_name: Optional[str]):
    kernels_c = os.path.join(directory, "kernels.c")
    if not os.path.isfile(kernels_c):
        raise CompileError("not a compiled output directory (no kernels.c)", directory)
    blobs = sorted(f[:-5] for f in os.listdir(directory) if f.endswith(".tiny"))
    if model_name is not None:
        if model_name not in blobs:
            raise CompileError(f"no model '{model_name}' (has: {', '.join(blobs) or 'none'})",
                               directory)
        blobs = [model_name]
    if len(blobs) != 1:
        raise CompileError("no compiled model (.tiny)" if not blobs else
                           f"several models ({', '.join(blobs)}): give model_name", directory)
    return kernels_c, os.path.join(directory, blobs[0] + ".tiny")
