"""Build descriptions: MegCC's `--input-shapes` strings and its JSON config (YAML too).

Shape string: `data=(1,3,224,224);mask=(1,1)` gives several inputs of one instance;
`:` separates shape instances of the same model (each becomes its own plan).
"""
from __future__ import annotations

import json
import os
import re
from typing import Dict, List, Optional, Tuple

from .compiler import MODEL_NAME_MAX, MODEL_NAME_RE, ModelSpec
from .cv.request import check_cv_section
from .frontend.dims import SymbolSpec
from .frontend.model_file import require_regular_file
from .ir import CompileError
from .ir.graph import clip

# Per-model options MegCC accepts; the ones we do not implement yet are refused loudly
# rather than silently ignored, because they change what the user gets.
SUPPORTED_OPTIONS = {"mgb_fuse_kernel", "enable_nchw44", "enable_nchw44_dot",
                     "enable_compress_fp16", "enable_ioc16", "enable_fixed_point_requant",
                     "enable_nchw88"}
PENDING_OPTIONS = {"add_nhwc2nchw_to_input"}
MODEL_KEYS = {"model_name", "model_path", "input_shape_str", "shape_hints", "value_caps",
              "max_threads"} \
    | SUPPORTED_OPTIONS \
    | PENDING_OPTIONS

_INPUT = re.compile(r"\s*([^=;:]+?)\s*=\s*\(\s*([0-9A-Za-z_,\s]*)\)\s*")
# a bound on a symbolic dimension: "W<=2048", "16<=W", "16<=W<=2048", "W>=16"
_BOUND = re.compile(r"\s*(?:(\d+)\s*<=\s*)?([A-Za-z_]\w*)\s*(?:<=\s*(\d+)|>=\s*(\d+))?\s*")
_SYMBOL = re.compile(r"[A-Za-z_]\w*")


def parse_input_shapes(text: str, source: str = "--input-shapes",
                       bounds: Optional[Dict[str, Tuple[int, int]]] = None
                       ) -> List[Dict[str, tuple]]:
    """MegCC's shape string: `name=(d0,d1,...)` per input, ';' between inputs, ':' between
    shape instances. With `bounds` (a dict filled in place) a dimension may be a symbol
    name (`x=(1,3,H,W)`, kept dynamic; docs/dynamic-shapes.md) and an item may bound one
    (`W<=2048`, `16<=W<=2048`); without it only numbers are accepted."""
    instances = []
    for inst_text in text.split(":"):
        shapes: Dict[str, tuple] = {}
        for part in inst_text.split(";"):
            if not part.strip():
                continue
            if bounds is not None and "(" not in part and ("<" in part or ">" in part):
                _parse_bound(part, bounds, source)
                continue
            m = _INPUT.fullmatch(part)
            if not m:
                raise CompileError(f"bad input shape '{clip(part.strip())}' (expected "
                                   "name=(d0,d1,...))", source)
            dims = tuple(_dim(d, m.group(1), bounds, source)
                         for d in m.group(2).replace(" ", "").split(",") if d)
            if m.group(1) in shapes:
                raise CompileError(f"input '{clip(m.group(1))}' given twice in one instance "
                                   "(';' separates inputs of one instance, ':' separates "
                                   "shape instances)", source)
            shapes[m.group(1)] = dims
        if not shapes:
            if bounds is not None and inst_text.strip():
                continue  # an instance of bounds only
            raise CompileError(f"empty shape instance in '{clip(text)}'", source)
        instances.append(shapes)
    if not instances:
        raise CompileError(f"no input shape in '{clip(text)}'", source)
    return instances


def _dim(text: str, inp: str, bounds, source: str):
    if text.isdigit():
        if int(text) <= 0:
            raise CompileError(f"input '{clip(inp)}' has a non-positive dimension", source)
        return int(text)
    if bounds is not None and _SYMBOL.fullmatch(text):
        return text
    if _SYMBOL.fullmatch(text):
        raise CompileError(f"input '{clip(inp)}' has a symbolic dimension '{clip(text)}': "
                           "only `megcc compile` keeps dimensions dynamic", source)
    raise CompileError(f"input '{clip(inp)}' has a bad dimension '{clip(text)}'", source)


def _parse_bound(part: str, bounds: Dict[str, Tuple[int, int]], source: str) -> None:
    from .ir.symbolic import DEFAULT_MAX, DEFAULT_MIN

    m = _BOUND.fullmatch(part)
    if not m or not (m.group(1) or m.group(3) or m.group(4)) or (m.group(1) and m.group(4)):
        raise CompileError(f"bad bound '{clip(part.strip())}' (expected e.g. W<=2048, "
                           "16<=W<=2048 or W>=16)", source)
    name = m.group(2)
    lo, hi = bounds.get(name, (DEFAULT_MIN, DEFAULT_MAX))
    if m.group(1) or m.group(4):
        lo = int(m.group(1) or m.group(4))
    if m.group(3):
        hi = int(m.group(3))
    if not 1 <= lo <= hi <= 0x7FFFFFFF:
        raise CompileError(f"bound '{clip(part.strip())}' leaves {name} no value in "
                           f"[1, 2^31 - 1] (min {lo}, max {hi})", source)
    bounds[name] = (lo, hi)


def parse_shape_hints(text: str, source: str = "--shape-hints") -> Dict[str, int]:
    """`W=320;H=640`: the sizes a dynamic plan's static part is compiled for."""
    hints: Dict[str, int] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not _SYMBOL.fullmatch(name) or not value.isdigit() or int(value) <= 0:
            raise CompileError(f"bad shape hint '{clip(part.strip())}' (expected e.g. W=320)",
                               source)
        hints[name] = int(value)
    return hints


def parse_value_caps(text: str, source: str = "--value-cap") -> Dict[str, int]:
    """`range=4096;default=8388608;grid=65536`: caps of sizes computed at run time
    (docs/dynamic-shapes.md, "Caps"): a tensor name -> bytes placed for it (a computed
    shape) or elements (a Range output); `default` the bytes of every computed-shape
    buffer not named, `range` the length of every Range not named."""
    caps: Dict[str, int] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        name, eq, value = part.rpartition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name or not value.isdigit() or not 0 < int(value) <= 0x7FFFFFFF:
            raise CompileError(f"bad value cap '{clip(part.strip())}' (expected NAME=N with "
                               "0 < N < 2^31, e.g. range=4096)", source)
        caps[name] = int(value)
    return caps


def check_options(options: Dict[str, object], source: str, where: str = "") -> Dict[str, bool]:
    """The model's options ({"fuse": .., "enable_nchw44": ..}); refuses values that are not
    booleans (0/1 pass) and options that are not implemented yet."""
    for key, value in options.items():
        if not isinstance(value, bool) and value not in (0, 1):
            # clip, never serialise: the value may be an arbitrarily large structure
            raise CompileError(f"{where}option '{clip(key)}' must be true or false, not "
                               f"{clip(value)}", source)
        if key in PENDING_OPTIONS and value:
            raise CompileError(f"{where}option '{clip(key)}' is not supported yet", source)
    return {"fuse": bool(options.get("mgb_fuse_kernel", True)),
            "enable_nchw44": bool(options.get("enable_nchw44", False)),
            "enable_nchw44_dot": bool(options.get("enable_nchw44_dot", False)),
            "enable_compress_fp16": bool(options.get("enable_compress_fp16", False)),
            "enable_ioc16": bool(options.get("enable_ioc16", False)),
            "enable_fixed_point_requant": bool(options.get("enable_fixed_point_requant",
                                                           False)),
            "enable_nchw88": bool(options.get("enable_nchw88", False))}


def _yaml_without_aliases(text: str):
    """yaml.safe_load, refusing aliases (`*name`): a few hundred bytes of nested aliases
    expand to gigabytes wherever the value is walked (an error message serialising it hung
    the compiler), and a build description has no need for them. Without aliases the
    document's size bounds every structure built from it."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise CompileError(f"YAML aliases are not supported (alias "
                                   f"'*{clip(event.anchor, 40)}' at line "
                                   f"{event.start_mark.line + 1})")
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=NoAliasLoader)


def _load_config_file(path: str) -> dict:
    require_regular_file(path, "config")
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise CompileError(f"not UTF-8 text (byte {exc.start})", path) from None
    try:
        if path.lower().endswith((".yaml", ".yml")):
            data = _yaml_without_aliases(text)
        else:
            data = json.loads(text)
    except CompileError as exc:
        raise CompileError(exc.message, path) from None
    except (ValueError, Exception) as exc:  # json/yaml parse errors
        line = getattr(exc, "lineno", None) or getattr(getattr(exc, "problem_mark", None),
                                                       "line", None)
        where = f" at line {line}" if line else ""
        raise CompileError(f"not valid {'YAML' if path.endswith(('.yaml', '.yml')) else 'JSON'}"
                           f"{where}: {clip(str(exc).splitlines()[0], 200)}", path) from None
    if not isinstance(data, dict):
        raise CompileError("the config must be an object with 'models'", path)
    _string_keys(data, "", path)
    return data


def _string_keys(obj: dict, where: str, path: str) -> None:
    """YAML allows any key (4: false); every field name here is a string."""
    for key in obj:
        if not isinstance(key, str):
            raise CompileError(f"{where}field name {clip(key)} is not a string", path)


def load_config(path: str) -> Tuple[str, List[ModelSpec], tuple]:
    """(dump_dir, model specs, cv section) from a MegCC-style JSON or YAML config."""
    data = _load_config_file(path)
    base = os.path.dirname(os.path.abspath(path))
    unknown = set(data) - {"dump_dir", "models", "cv"}
    if unknown:
        raise CompileError(f"unknown field '{clip(sorted(unknown)[0])}'", path)
    models = data.get("models")
    if not isinstance(models, list) or not models:
        raise CompileError("field 'models' must be a non-empty list", path)
    specs = []
    for i, m in enumerate(models):
        where = f"models[{i}]: "
        if not isinstance(m, dict):
            raise CompileError(f"{where}must be an object", path)
        _string_keys(m, where, path)
        bad = set(m) - MODEL_KEYS
        if bad:
            raise CompileError(f"{where}unknown field '{clip(sorted(bad)[0])}'", path)
        for key in ("model_name", "model_path"):
            if not isinstance(m.get(key), str) or not m[key]:
                raise CompileError(f"{where}field '{key}' must be a non-empty string", path)
        if len(m["model_name"]) > MODEL_NAME_MAX:
            raise CompileError(f"{where}field 'model_name' is {len(m['model_name'])} characters, "
                               f"at most {MODEL_NAME_MAX} (it names the output files)", path)
        if not MODEL_NAME_RE.fullmatch(m["model_name"]):
            raise CompileError(f"{where}field 'model_name' must be letters, digits, '_', '.' "
                               "or '-' (it names the output files)", path)
        shapes = m.get("input_shape_str", "")
        if not isinstance(shapes, str):
            raise CompileError(f"{where}field 'input_shape_str' must be a string", path)
        opts = check_options({k: v for k, v in m.items() if k in SUPPORTED_OPTIONS
                              | PENDING_OPTIONS}, path, where)
        hints = m.get("shape_hints", "")
        if not isinstance(hints, str):
            raise CompileError(f"{where}field 'shape_hints' must be a string", path)
        symbols = SymbolSpec(hints=parse_shape_hints(hints, path))
        max_threads = m.get("max_threads", 0)
        if "max_threads" in m and (isinstance(max_threads, bool) or
                                   not isinstance(max_threads, int) or max_threads < 1):
            raise CompileError(f"{where}field 'max_threads' must be a whole number >= 1, not "
                               f"{clip(max_threads)}", path)
        caps = m.get("value_caps", "")
        if not isinstance(caps, str):
            raise CompileError(f"{where}field 'value_caps' must be a string", path)
        specs.append(ModelSpec(m["model_name"], os.path.join(base, m["model_path"]),
                               parse_input_shapes(shapes, path, symbols.bounds)
                               if shapes.strip() else [],
                               opts["fuse"], enable_nchw44=opts["enable_nchw44"],
                               enable_nchw44_dot=opts["enable_nchw44_dot"],
                               enable_compress_fp16=opts["enable_compress_fp16"],
                               enable_ioc16=opts["enable_ioc16"],
                               enable_fixed_point_requant=opts["enable_fixed_point_requant"],
                               enable_nchw88=opts["enable_nchw88"], max_threads=max_threads,
                               symbols=symbols, value_caps=parse_value_caps(caps, path)))
    seen = [s.name for s in specs]
    for i, name in enumerate(seen):
        if name in seen[:i]:
            raise CompileError(f"models[{i}]: model_name '{clip(name)}' is used twice", path)
    dump_dir = data.get("dump_dir", "./")
    if not isinstance(dump_dir, str):
        raise CompileError("field 'dump_dir' must be a string", path)
    # the CV operators to generate (megcc_builder/cv): validated, as ((name, dtype), ...)
    cv = check_cv_section(data.get("cv"), path)
    return os.path.join(base, dump_dir), specs, cv
