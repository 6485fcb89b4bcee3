"""Einsum: any equation (explicit or implicit output, repeated letters for diagonals,
ellipsis with broadcasting, any number of operands), one portable kernel.

The equation is resolved at compile time into letters with extents, the output's letters
(in output order, row-major) and the summed ones, and per operand an element stride per
letter (0 where the operand lacks the letter or broadcasts it; a repeated letter adds its
axes' strides: a diagonal). The kernel walks the output in order and, per output element,
the summed letters, multiplying the operands' elements; floats accumulate in double,
integers in 64 bits.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

from ...codegen.kernel import Instr, make_kernel, numel, strides_of
from ...codegen.params import i32, schema, table
from ...ir import Graph, Op, c_type
from ...ir.symbolic import known
from ..registry import implements

DTYPES = ("float32", "float64", "int32", "int64")


def resolve(equation: str, shapes: List[Tuple[int, ...]]):
    """(letters, extents, number of output letters, per-operand strides per letter) of an
    equation over operands of the given shapes; raises ValueError on a bad equation."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"{len(terms)} operand terms for {len(shapes)} inputs")
    # an ellipsis stands for the leading axes not named by letters; broadcast right-aligned
    ell_rank = 0
    for term, shape in zip(terms, shapes):
        named = len(term.replace("...", ""))
        if "..." in term:
            ell_rank = max(ell_rank, len(shape) - named)
        elif named != len(shape):
            raise ValueError(f"term '{term}' names {named} axes of a rank-{len(shape)} input")
    ell = [f"@{k}" for k in range(ell_rank)]  # pseudo-letters of the ellipsis axes

    def axes_of(term: str, rank: int) -> List[str]:
        if "..." not in term:
            return list(term)
        head, _, tail = term.partition("...")
        n = rank - len(head) - len(tail)
        return list(head) + ell[ell_rank - n:] + list(tail)

    operand_axes = [axes_of(t, len(s)) for t, s in zip(terms, shapes)]
    extent: Dict[str, int] = {}
    for axes, shape in zip(operand_axes, shapes):
        for a, n in zip(axes, shape):
            if a.startswith("@"):  # broadcast: 1 gives way to any extent
                if extent.get(a, 1) not in (1, n) and n != 1:
                    raise ValueError(f"ellipsis extents {extent[a]} and {n} do not broadcast")
                extent[a] = max(extent.get(a, 1), n)
            elif extent.setdefault(a, n) != n:
                raise ValueError(f"letter '{a}' has extents {extent[a]} and {n}")
    if arrow:
        out = axes_of(rhs, ell_rank + len(rhs.replace("...", ""))) if "..." in rhs \
            else list(rhs)
    else:  # implicit: the ellipsis, then the letters seen once, alphabetically
        counts: Dict[str, int] = {}
        for axes in operand_axes:
            for a in axes:
                counts[a] = counts.get(a, 0) + 1
        out = ell + sorted(a for a, c in counts.items() if c == 1 and not a.startswith("@"))
    unknown = [a for a in out if a not in extent]
    if unknown or len(set(out)) != len(out):
        raise ValueError(f"output '{rhs}' names letters no input has, or one twice")
    summed = [a for a in extent if a not in out]
    letters = out + summed
    strides = []
    for axes, shape in zip(operand_axes, shapes):
        st = dict.fromkeys(letters, 0)
        for a, n, s in zip(axes, shape, strides_of(list(shape))):
            # (a run-time extent is not known to be 1: it keeps its stride, which is
            # right for every value since a letter's extents are equal or guarded so)
            if not known(n, 1) or known(extent[a], 1):
                st[a] += s
        strides.append([st[a] for a in letters])
    return letters, [extent[a] for a in letters], len(out), strides


def _params(n_in: int, n_letters: int):
    return schema(i32("n_out", "output elements"), i32("n_sum", "summed combinations"),
                  table("ext", n_letters, "extent per letter: output letters, then summed"),
                  table("st", n_in * n_letters, "element stride per operand and letter"))


@implements("Einsum", dtypes=DTYPES, typed_inputs=(0, 1, 2, 3))
def emit(op: Op, graph: Graph):
    xs = [graph.tensors[n] for n in op.inputs]
    y = graph.tensors[op.outputs[0]]
    eq = op.attrs["equation"]
    eq = eq.decode() if isinstance(eq, bytes) else eq
    if len({x.dtype for x in xs}) != 1:
        raise graph.error("operands of different types", op)
    try:
        letters, ext, n_out_letters, strides = resolve(eq, [tuple(x.shape) for x in xs])
    except ValueError as e:
        raise graph.error(f"equation '{eq}': {e}", op) from None
    t, n_in = len(letters), len(xs)
    dt = xs[0].dtype
    ct = c_type(dt)
    acc = "double" if dt.startswith("float") else "int64_t"
    params = _params(n_in, max(t, 1))
    if t == 0:  # scalars only: a product
        ext, strides = [1], [[0] for _ in xs]
    n_sum = numel(ext[n_out_letters:]) if t else 1
    name = f"einsum_{dt}_in{n_in}_l{max(t, 1)}_o{n_out_letters}"
    body = f"""    const {ct} *const *x = (const {ct} *const *)in_ptrs;
    {ct} *y = ({ct} *)out_ptrs[0];
    int32_t idx[{max(t, 1)}], o, s, d, k;
    for (d = 0; d < {max(t, 1)}; ++d) idx[d] = 0;
    for (o = 0; o < n_out; ++o) {{
        {acc} acc = 0;
        for (d = {n_out_letters}; d < {max(t, 1)}; ++d) idx[d] = 0;
        for (s = 0; s < n_sum; ++s) {{
            {acc} prod = 1;
            for (k = 0; k < {n_in}; ++k) {{
                int64_t off = 0;
                for (d = 0; d < {max(t, 1)}; ++d) off += (int64_t)idx[d] * st[k * {max(t, 1)} + d];
                prod *= ({acc})x[k][off];
            }}
            acc += prod;
            for (d = {max(t, 1) - 1}; d >= {n_out_letters}; --d) {{  /* next summed combination */
                if (++idx[d] < ext[d]) break;
                idx[d] = 0;
            }}
        }}
        y[o] = ({ct})acc;
        for (d = {n_out_letters - 1}; d >= 0; --d) {{  /* next output element */
            if (++idx[d] < ext[d]) break;
            idx[d] = 0;
        }}
    }}
"""
    kernel = make_kernel(name, body, params)
    packed = params.pack(n_out=y.numel, n_sum=n_sum, ext=ext,
                         st=[v for row in strides for v in row])
    return [Instr(kernel, list(op.inputs), [op.outputs[0]], packed,
                  note=f"'{eq}': letters {''.join(a if len(a) == 1 else '.' for a in letters)}"
                       f", {n_out_letters} in the output")]
