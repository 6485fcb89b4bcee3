"""Real trained models that ship inside pinned PyPI wheels, fetched once into the cache.

Nobody here wrote these models: PaddleOCR's PP-OCRv4 text detector and recognizer and its
direction classifier (inside `rapidocr-onnxruntime`), and Silero's voice-activity detector
(inside `silero-vad`). `pip download` fetches the pinned wheel (CI may reach PyPI); the
model file is unpacked from it into ~/.cache/megcc-builder/pypi-models/. A model that cannot
be fetched fails the test in CI and skips it elsewhere.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from build_support import in_ci

WHEELS = {
    "rapidocr-onnxruntime": "1.3.24",
    "silero-vad": "6.2.3",
}

# model name -> (package, path inside the wheel)
MODELS = {
    "ppocr_det": ("rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"),
    "ppocr_rec": ("rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"),
    "ppocr_cls": ("rapidocr-onnxruntime",
                  "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"),
    "silero_vad": ("silero-vad", "silero_vad/data/silero_vad.onnx"),
    "silero_vad_16k_sequence": ("silero-vad", "silero_vad/data/silero_vad_16k_sequence.onnx"),
    "silero_vad_openvino_16k": ("silero-vad", "silero_vad/data/silero_vad_openvino_16k.onnx"),
    "silero_vad_16k_op15": ("silero-vad", "silero_vad/data/silero_vad_16k_op15.onnx"),
}

CACHE = Path(os.environ.get("MEGCC_CACHE_DIR", Path.home() / ".cache" / "megcc-builder")) \
    / "pypi-models"


def model_path(name: str) -> str:
    """Path of a cached real model, fetching its wheel on first use."""
    package, member = MODELS[name]
    version = WHEELS[package]
    target = CACHE / f"{package}-{version}" / member
    if target.exists():
        return str(target)
    try:
        _fetch(package, version, CACHE / f"{package}-{version}")
    except (OSError, subprocess.CalledProcessError, zipfile.BadZipFile) as exc:
        message = f"cannot fetch {package}=={version} from PyPI: {exc}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return str(target)


def _fetch(package: str, version: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        f"{package}=={version}", "-d", tmp], check=True, timeout=600)
        wheel = next(Path(tmp).glob("*.whl"))
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(wheel) as z:
            z.extractall(unpacked, [m for m in z.namelist() if m.endswith(".onnx")])
        try:
            os.rename(unpacked, dest)  # atomic: a concurrent fetch keeps the first copy
        except OSError:
            if not dest.exists():
                raise
