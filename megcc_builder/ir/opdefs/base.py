"""The operator-definition record, the registry and the helpers that use it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..graph import Graph, Op, Tensor
from ..symbolic import same_shape

REQUIRED = object()  # the default of an attribute every op must set


@dataclass(frozen=True)
class Attr:
    name: str
    meaning: str
    default: object = REQUIRED


@dataclass(frozen=True)
class OpDef:
    type: str
    doc: str
    attrs: Tuple[Attr, ...]
    # (graph, op) -> the op's output tensors (name, shape, dtype, layout), from its inputs
    # and attributes; the inputs must already be in graph.tensors.
    infer: Callable[[Graph, Op], List[Tensor]]
    # an op a pass rewrites into other ops before kernels are chosen (so it has no kernel):
    # "module.function" of that pass, below megcc_builder
    expanded_by: str = ""

    def attr(self, name: str) -> Optional[Attr]:
        return next((a for a in self.attrs if a.name == name), None)


OPDEFS: Dict[str, OpDef] = {}


def define(op_type: str, doc: str, attrs: Sequence[Attr],
           infer: Callable[[Graph, Op], List[Tensor]], expanded_by: str = "") -> OpDef:
    if op_type in OPDEFS:
        raise ValueError(f"operator {op_type} is defined twice")
    OPDEFS[op_type] = OpDef(op_type, doc, tuple(attrs), infer, expanded_by)
    return OPDEFS[op_type]


def lookup(op_type: str) -> Optional[OpDef]:
    """The definition of a non-ONNX operator, or None (an ONNX op, or unknown)."""
    return OPDEFS.get(op_type)


def check_attrs(op: Op) -> List[str]:
    """What is wrong with `op`'s attributes against its definition ([] when nothing).
    Attributes starting with "_" are private annotations of passes and always allowed."""
    opdef = OPDEFS[op.type]
    problems = [f"unknown attribute '{k}'" for k in op.attrs
                if not k.startswith("_") and opdef.attr(k) is None]
    problems += [f"missing attribute '{a.name}'" for a in opdef.attrs
                 if a.default is REQUIRED and a.name not in op.attrs]
    return problems


def infer_outputs(graph: Graph, op: Op) -> List[Tensor]:
    return OPDEFS[op.type].infer(graph, op)


def _same(a: Tensor, b: Tensor) -> bool:
    return same_shape(a.shape, b.shape) and (a.dtype, a.layout) == (b.dtype, b.layout)


def create(graph: Graph, op_type: str, inputs: List[str], outputs: List[str], attrs: dict,
           name: str = "") -> Op:
    """A new `op_type` op, checked against its definition. Outputs not yet in the graph get
    their tensors from the definition; outputs that exist must agree with it (a pass that
    declared them otherwise has a bug)."""
    op = Op(op_type, inputs, outputs, attrs, name)
    check(graph, op, add_missing=True)
    return op


def check(graph: Graph, op: Op, add_missing: bool = False) -> None:
    """Raise if `op` does not match its definition (attributes, output tensors)."""
    problems = check_attrs(op)
    if problems:
        raise graph.error("internal error: " + "; ".join(problems), op)
    for t in infer_outputs(graph, op):
        old = graph.tensors.get(t.name)
        if old is None and add_missing:
            graph.add_tensor(t)
        elif old is None or not _same(old, t):
            have = "none" if old is None else f"{tuple(old.shape)} {old.dtype} {old.layout}"
            raise graph.error(f"internal error: output '{t.name}' is {have}, its definition "
                              f"gives {tuple(t.shape)} {t.dtype} {t.layout}", op)
