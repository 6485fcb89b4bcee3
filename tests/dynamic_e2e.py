"""Compile a model once with run-time dimensions, then run the one compiled directory at
several input sizes with the C runner (`-s I:D0,D1,...`, nothing recompiled), for the
end-to-end tests of dynamic plans against onnxruntime."""
from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Dict, List, Sequence

import numpy as np

from megcc_builder.compiler import ModelSpec, compile_bundle
from megcc_builder.emit.model_blob import read_model
from megcc_builder.host import _sanitizer_env, build_runner
from megcc_builder.ir import numpy_dtype


class Compiled:
    """One compiled output directory and its runner."""

    def __init__(self, spec: ModelSpec, out_dir: str, isa: str = "native"):
        self.bundle = compile_bundle([spec], out_dir, save_c_array=False, isa=isa)
        self.out_dir = out_dir
        self.blob_path = os.path.join(out_dir, spec.name + ".tiny")
        with open(self.blob_path, "rb") as f:
            self.info = read_model(f.read())
        self.runner = build_runner(os.path.join(out_dir, "kernels.c"))

    def files(self) -> Dict[str, float]:
        """mtime of every generated file (a run must not rewrite any of them)."""
        return {n: os.stat(os.path.join(self.out_dir, n)).st_mtime_ns
                for n in sorted(os.listdir(self.out_dir))}

    def run(self, inputs: Sequence[np.ndarray], plan: int = 0) -> List[np.ndarray]:
        """Outputs of plan `plan` for inputs of any shape the plan accepts."""
        p = self.info["plans"][plan]
        in_descs = [p["tensors"][i] for i in p["inputs"]]
        out_descs = [p["tensors"][i] for i in p["outputs"]]
        with tempfile.TemporaryDirectory(prefix="megcc-dyn-") as tmp:
            in_dir, out_dir = os.path.join(tmp, "in"), os.path.join(tmp, "out")
            os.makedirs(in_dir)
            os.makedirs(out_dir)
            args = []
            for i, (arr, desc) in enumerate(zip(inputs, in_descs)):
                # (asarray: ascontiguousarray would make a 0-d input 1-d)
                arr = np.asarray(arr, dtype=numpy_dtype(desc["dtype"]), order="C")
                arr.astype(arr.dtype.newbyteorder("<")).tofile(
                    os.path.join(in_dir, f"input_{i}.bin"))
                args += ["-s", f"{i}:{','.join(str(d) for d in arr.shape)}"]
            proc = subprocess.run([self.runner, self.blob_path, in_dir, out_dir, "-p",
                                   str(plan), *args], capture_output=True, text=True,
                                  env=_sanitizer_env(), timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr.strip())
            shapes = {}
            for line in proc.stdout.splitlines():
                if line.startswith("output_shape "):
                    _, i, dims = line.split(" ", 2)
                    shapes[int(i)] = tuple(int(d) for d in dims.split(",") if d)
            outs = []
            for i, desc in enumerate(out_descs):
                dt = numpy_dtype(desc["dtype"]).newbyteorder("<")
                data = np.fromfile(os.path.join(out_dir, f"output_{i}.bin"), dtype=dt)
                outs.append(data.reshape(shapes[i]).astype(dt.newbyteorder("=")))
            return outs


def onnxruntime_outputs(path: str, feeds: Dict[str, np.ndarray]) -> List[np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    """max |ours - ref| / max(1, |ref|) (issue 12's measure)."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(ours - ref) / np.maximum(1.0, np.abs(ref)))) if ref.size else 0.0


def with_symbolic_batch(path: str, out_path: str, name: str = "N") -> str:
    """A copy of an ONNX model whose inputs' and outputs' leading dimension is the
    dim_param `name` (onnxruntime then accepts any batch too); the copy's path."""
    import onnx

    model = onnx.load(path)
    inits = {t.name for t in model.graph.initializer}
    for vi in list(model.graph.input) + list(model.graph.output):
        if vi.name in inits:
            continue
        dim = vi.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = name
    del model.graph.value_info[:]
    onnx.save(model, out_path)
    return out_path
