"""`onnx.backend.base.Backend` on top of the compiler, so ONNX's own test suite runs us.

The compiler produces static plans, so the backend compiles lazily, like a JIT:

* `prepare` compiles at once when every input has a static shape in the model;
  otherwise (dim_params, unknown dims) the first `run` compiles for the shapes it is given.
* Inputs whose *values* the compiler needs (a Reshape's shape, a Reduce's axes, TopK's K,
  given as graph inputs) make the compiler raise `NeedsValue`; the backend then compiles a
  plan specialised on that input's value and guards it: every run compares the value and
  recompiles when it changes, so results are right for any input. The `megcc compile` CLI
  has no values and refuses such models with the same one-line error.

Plans are cached per (input shapes, specialised values), each an in-process
`InferenceSession` (its shared library cached per kernel set by `host.build_shared_library`;
sanitizer and valgrind builds run the runner process instead).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.base import Backend, BackendRep, namedtupledict

from .compiler import ModelSpec, compile_bundle
from .ir import CompileError, NeedsValue
from .session import InferenceSession

# At most this many specialised plans per prepared model (a guard that keeps failing
# would otherwise compile forever).
MAX_PLANS = 16


class _Compiled:
    def __init__(self, workdir: str, session: InferenceSession, outputs: List[str]):
        self.workdir, self.session = workdir, session
        self.inputs = [(i.name, i.dtype) for i in session.get_inputs()]
        # the plan's names: two outputs that are one tensor have one name in the blob
        self.outputs = outputs

    def run(self, arrays: Dict[str, np.ndarray]) -> List[np.ndarray]:
        # the backend API converts like the runner did (np.asarray to the compiled dtype)
        return self.session.run(None, {n: np.asarray(arrays[n], dtype=dt)
                                       for n, dt in self.inputs})

    def __del__(self):
        if hasattr(self, "session"):
            self.session.close()
        shutil.rmtree(getattr(self, "workdir", ""), ignore_errors=True)


def _static_shape(vi) -> Optional[Tuple[int, ...]]:
    if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in vi.type.tensor_type.shape.dim:
        if not d.HasField("dim_value") or d.dim_value <= 0:
            return None
        dims.append(d.dim_value)
    return tuple(dims)


def _compile(model: onnx.ModelProto, shapes: Dict[str, Tuple[int, ...]],
             values: Dict[str, np.ndarray]) -> _Compiled:
    """Compile `model` for the given input shapes, with `values` bound as constants."""
    if values:
        model = _bind_inputs(model, values)
    workdir = tempfile.mkdtemp(prefix="megcc-backend-")
    try:
        path = os.path.join(workdir, "model.onnx")
        onnx.save(model, path)
        shapes = {k: v for k, v in shapes.items() if k not in values}
        spec = ModelSpec("model", path, [shapes] if shapes else [])
        bundle = compile_bundle([spec], os.path.join(workdir, "build"), save_c_array=False)
        session = InferenceSession(os.path.dirname(bundle.files["model.tiny"]))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return _Compiled(workdir, session, list(bundle.models[0].plans[0].output_names))


def _bind_inputs(model: onnx.ModelProto, values: Dict[str, np.ndarray]) -> onnx.ModelProto:
    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    keep = [vi for vi in bound.graph.input if vi.name not in values]
    del bound.graph.input[:]
    bound.graph.input.extend(keep)
    for name, value in values.items():
        bound.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return bound


class MegccRep(BackendRep):
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        inits = {t.name for t in model.graph.initializer}
        self.input_infos = [vi for vi in model.graph.input if vi.name not in inits]
        self.input_names = [vi.name for vi in self.input_infos]
        self.output_names = [vi.name for vi in model.graph.output]
        self.value_inputs: List[str] = []  # inputs the compiler needs the values of
        self._plans: Dict[tuple, _Compiled] = {}

    # -- compilation ----------------------------------------------------------------
    def _key(self, shapes, arrays) -> tuple:
        vals = tuple((n, arrays[n].dtype.str, arrays[n].shape, arrays[n].tobytes())
                     for n in self.value_inputs)
        return tuple(sorted(shapes.items())), vals

    def _plan_for(self, shapes: Dict[str, Tuple[int, ...]],
                  arrays: Optional[Dict[str, np.ndarray]]) -> _Compiled:
        while True:
            if self.value_inputs and arrays is None:
                raise _Deferred()
            key = self._key(shapes, arrays or {})
            if key in self._plans:
                return self._plans[key]
            if len(self._plans) >= MAX_PLANS:
                self._plans.pop(next(iter(self._plans)))
            values = {n: arrays[n] for n in self.value_inputs} if self.value_inputs else {}
            try:
                compiled = _compile(self.model, shapes, values)
            except NeedsValue as exc:
                if exc.tensor in self.input_names and exc.tensor not in self.value_inputs:
                    self.value_inputs.append(exc.tensor)  # specialise on it and retry
                    continue
                raise
            self._plans[key] = compiled
            return compiled

    def try_compile_now(self) -> None:
        shapes = {}
        for vi in self.input_infos:
            shape = _static_shape(vi)
            if shape is None:
                return  # shapes come with the first run
            shapes[vi.name] = shape
        try:
            self._plan_for(shapes, None)
        except _Deferred:
            pass

    # -- execution ------------------------------------------------------------------
    def run(self, inputs: Any, **kwargs) -> Any:
        if isinstance(inputs, dict):
            given = [inputs[n] for n in self.input_names]
        elif isinstance(inputs, (list, tuple)):
            given = list(inputs)
        else:
            given = [inputs]
        if len(given) != len(self.input_names):
            raise CompileError(f"the model takes {len(self.input_names)} inputs, got "
                               f"{len(given)}")
        for vi in self.input_infos:
            if not vi.type.HasField("tensor_type"):
                raise CompileError(f"input '{vi.name}' is not a tensor (sequences, maps and "
                                   "optionals are not supported)")
        arrays = {n: np.asarray(x) for n, x in zip(self.input_names, given)}
        shapes = {n: tuple(a.shape) for n, a in arrays.items()}
        compiled = self._plan_for(shapes, arrays)
        outs = compiled.run(arrays)
        by_name = dict(zip(compiled.outputs, outs))
        return namedtupledict("Outputs", self.output_names)(
            *[by_name[n] for n in self.output_names])


class _Deferred(Exception):
    """The plan needs input values; compile at the first run."""


class MegccBackend(Backend):
    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs) -> MegccRep:
        super().prepare(model, device, **kwargs)
        rep = MegccRep(model)
        rep.try_compile_now()
        return rep

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU",
                  **kwargs) -> Any:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs, device: str = "CPU", outputs_info=None, **kwargs):
        raise NotImplementedError("megcc compiles whole models; run_node is not provided")

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


prepare = MegccBackend.prepare
run_model = MegccBackend.run_model
supports_device = MegccBackend.supports_device
