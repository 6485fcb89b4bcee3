"""`onnx.backend.base.Backend` on top of the compiler, so ONNX's own test suite runs us.

`prepare` compiles the model for the shapes its inputs declare, builds the runner (cached
by kernel set) and returns a rep whose `run` executes the compiled plan on the host.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Dict, List, Sequence

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep, namedtupledict

from .compiler import ModelSpec, compile_bundle
from .host import build_runner, run_blob


class MegccRep(BackendRep):
    def __init__(self, workdir: str, blob: str, runner: str, input_names: List[str],
                 output_names: List[str]):
        self.workdir, self.blob, self.runner = workdir, blob, runner
        self.input_names, self.output_names = input_names, output_names

    def run(self, inputs: Any, **kwargs) -> Any:
        if isinstance(inputs, dict):
            ordered = [inputs[n] for n in self.input_names]
        elif isinstance(inputs, (list, tuple)):
            ordered = list(inputs)
        else:
            ordered = [inputs]
        outs = run_blob(self.runner, self.blob, [np.asarray(x) for x in ordered])
        return namedtupledict("Outputs", self.output_names)(*outs)

    def __del__(self):
        shutil.rmtree(getattr(self, "workdir", ""), ignore_errors=True)


class MegccBackend(Backend):
    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs) -> MegccRep:
        super().prepare(model, device, **kwargs)
        workdir = tempfile.mkdtemp(prefix="megcc-backend-")
        try:
            path = os.path.join(workdir, "model.onnx")
            onnx.save(model, path)
            bundle = compile_bundle([ModelSpec("model", path)], workdir, save_c_array=False)
            plan = bundle.models[0].plans[0]
            runner = build_runner(bundle.files["kernels_c"])
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        return MegccRep(workdir, bundle.files["model.tiny"], runner, list(plan.graph.inputs),
                        list(plan.output_names))

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
