"""The C runtime in this process, through ctypes: a compiled model (.tiny) loaded by the
shared library `host.build_shared_library` makes of the runtime and its kernels.

`NativeModel` is a loaded model, `NativeNetwork` one runnable instance of it. `run` takes
arrays already checked against the plan (dtype and shape: the session's job) and copies
each input and output at most once:

* inputs: the network reads the caller's array in place (megcc_network_set_input_memory)
  when it is C-contiguous and aligned and no instruction writes into that input's storage
  (a kernel working in place over it would change the caller's array); otherwise one copy
  into the arena;
* outputs: each run returns new arrays (never memory a later run overwrites). A large
  output is allocated before the forward and the network's output pointed at it, so the
  kernels write the result there directly; a small one (at most SMALL_OUTPUT bytes) is
  copied once out of the network's memory after the forward, through a numpy view kept
  from one run to the next (cheaper than binding a new array's address on every call); an
  output that is a view of another tensor, or an input passed straight through, is copied
  once after the forward.
* per input, the address of the array last bound is kept (with a weak reference to that
  array): passing the same array again costs no address look-up.

ctypes releases the GIL around every foreign call, so networks in several Python threads
run concurrently (one network must not be used by two threads at once: the runtime's rule).
"""
from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Dict, List, Optional, Sequence

import numpy as np

from .emit.model_blob import read_model
from .ir.dtypes import dtype_from_code, numpy_dtype

MAX_DIMS = 8
# outputs up to this size are copied out of the network's memory after the forward rather
# than written into a freshly bound array: a copy of 4 KB costs about what looking up a new
# array's address and binding it does
SMALL_OUTPUT = 4096
_c_status = ctypes.c_int


class MegccRuntimeError(RuntimeError):
    """A runtime call failed; the message is the runtime's own."""

    def __init__(self, what: str, status: int, message: str):
        self.status = status
        super().__init__(f"{what}: {message or 'failed'} (status {status})")


class _TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("ndim", ctypes.c_uint32),
                ("dims", ctypes.c_int32 * MAX_DIMS), ("nbytes", ctypes.c_size_t),
                ("layout", ctypes.c_uint32), ("scale", ctypes.c_float),
                ("zero_point", ctypes.c_int32)]


class _Hooks(ctypes.Structure):
    _fields_ = [("user", ctypes.c_void_p), ("alloc", ctypes.c_void_p), ("free", ctypes.c_void_p),
                ("log", ctypes.c_void_p), ("time_ns", ctypes.c_void_p)]


_P = ctypes.c_void_p
_SIGNATURES = {
    # name: (restype, argtypes)
    "megcc_last_error": (ctypes.c_char_p, []),
    "megcc_status_string": (ctypes.c_char_p, [ctypes.c_int]),
    "megcc_model_load_from_memory_ex": (_c_status, [_P, ctypes.c_size_t, ctypes.c_int, _P, _P]),
    "megcc_model_free": (None, [_P]),
    "megcc_model_num_plans": (ctypes.c_uint32, [_P]),
    "megcc_model_plan_name": (ctypes.c_char_p, [_P, ctypes.c_uint32]),
    "megcc_model_plan_num_inputs": (ctypes.c_uint32, [_P, ctypes.c_uint32]),
    "megcc_model_plan_num_outputs": (ctypes.c_uint32, [_P, ctypes.c_uint32]),
    "megcc_model_plan_input_info": (_c_status, [_P, ctypes.c_uint32, ctypes.c_uint32, _P]),
    "megcc_model_plan_output_info": (_c_status, [_P, ctypes.c_uint32, ctypes.c_uint32, _P]),
    "megcc_network_create": (_c_status, [_P, _P, ctypes.c_size_t, _P]),
    "megcc_network_destroy": (None, [_P]),
    "megcc_network_select_plan": (_c_status, [_P, ctypes.c_uint32]),
    "megcc_network_input_data": (_P, [_P, ctypes.c_uint32]),
    "megcc_network_output_data": (_P, [_P, ctypes.c_uint32]),
    "megcc_network_set_input_memory": (_c_status, [_P, ctypes.c_uint32, _P, ctypes.c_size_t]),
    "megcc_network_set_output_memory": (_c_status, [_P, ctypes.c_uint32, _P, ctypes.c_size_t]),
    "megcc_network_forward": (_c_status, [_P]),
    "megcc_network_last_error": (ctypes.c_char_p, [_P]),
    "megcc_session_hooks": (_c_status, [_P, ctypes.c_int]),
    "megcc_session_time_forward": (_c_status, [_P, ctypes.c_int, ctypes.c_uint32,
                                               ctypes.c_uint32, _P]),
    "megcc_session_profile": (_c_status, [_P, ctypes.c_uint32, _P]),
    "megcc_session_run": (_c_status, [_P, ctypes.c_uint32, _P, _P, ctypes.c_uint32, _P, _P]),
    "megcc_network_set_threads": (_c_status, [_P, ctypes.c_uint32]),
    "megcc_model_plan_is_dynamic": (ctypes.c_int, [_P, ctypes.c_uint32]),
    "megcc_model_plan_is_runnable": (ctypes.c_int, [_P, ctypes.c_uint32]),
    "megcc_network_set_input_shape": (_c_status, [_P, ctypes.c_uint32, _P, ctypes.c_uint32]),
    "megcc_network_required_arena_size": (_c_status, [_P, _P]),
    "megcc_network_plan": (ctypes.c_uint32, [_P]),
    "megcc_network_input_info": (_c_status, [_P, ctypes.c_uint32, _P]),
    "megcc_network_output_info": (_c_status, [_P, ctypes.c_uint32, _P]),
    "megcc_network_threads": (ctypes.c_uint32, [_P]),
}

_libraries: Dict[str, ctypes.CDLL] = {}
_libraries_lock = threading.Lock()


def load_library(path: str) -> ctypes.CDLL:
    """The shared library at `path`, loaded once per process, with its signatures set."""
    with _libraries_lock:
        lib = _libraries.get(path)
        if lib is None:
            lib = ctypes.CDLL(path)
            for name, (res, args) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = res, args
            _libraries[path] = lib
        return lib


def _text(b: Optional[bytes]) -> str:
    return b.decode("utf-8", "replace") if b else ""


CLOCKS = {"wall": 0, "thread": 1, "process": 2}


class TensorInfo:
    """One input or output of a plan, as the runtime describes it."""

    def __init__(self, info: _TensorInfo):
        self.name = _text(info.name)
        self.dtype = dtype_from_code(info.dtype)  # megcc dtype name (qint8, float32, ...)
        self.numpy_dtype = numpy_dtype(self.dtype)
        self.shape = tuple(int(info.dims[i]) for i in range(info.ndim))
        self.nbytes = int(info.nbytes)
        self.layout = int(info.layout)
        self.scale, self.zero_point = float(info.scale), int(info.zero_point)

    def __repr__(self) -> str:
        return f"TensorInfo({self.name!r}, {self.dtype}, {self.shape})"


class NativeModel:
    """A compiled model loaded by the runtime of `library` (validated by the runtime).
    clock: the profiling clock ("wall", "thread" CPU time or "process" CPU time)."""

    def __init__(self, library: str, blob: bytes, clock: str = "wall"):
        self.lib = load_library(library)
        self.library = library
        self._handle = None
        hooks = _Hooks()
        self._check_global(self.lib.megcc_session_hooks(ctypes.byref(hooks), CLOCKS[clock]),
                           "default hooks")
        handle = ctypes.c_void_p()
        # copy=1: the runtime keeps its own aligned copy, the bytes object may go
        st = self.lib.megcc_model_load_from_memory_ex(blob, len(blob), 1, ctypes.byref(hooks),
                                                      ctypes.byref(handle))
        self._check_global(st, "cannot load the model")
        self._handle = handle.value
        self._layout = read_model(blob)["plans"]  # tensor records, for the in-place checks
        self.plans = [self._plan_io(p) for p in range(self.lib.megcc_model_num_plans(
            self._handle))]
        # plans whose input shapes may be set at run time (docs/dynamic-shapes.md)
        self.dynamic = [bool(self.lib.megcc_model_plan_is_dynamic(self._handle, p))
                        for p in range(len(self.plans))]
        # plans this library's kernels run (not another architecture's, docs/model-format.md)
        self.runnable = [bool(self.lib.megcc_model_plan_is_runnable(self._handle, p))
                         for p in range(len(self.plans))]

    def _check_global(self, status: int, what: str) -> None:
        if status != 0:
            raise MegccRuntimeError(what, status, _text(self.lib.megcc_last_error()))

    def _plan_io(self, plan: int):
        lib, info = self.lib, _TensorInfo()
        ins, outs = [], []
        for i in range(lib.megcc_model_plan_num_inputs(self._handle, plan)):
            self._check_global(lib.megcc_model_plan_input_info(self._handle, plan, i,
                                                               ctypes.byref(info)), "input info")
            ins.append(TensorInfo(info))
        for i in range(lib.megcc_model_plan_num_outputs(self._handle, plan)):
            self._check_global(lib.megcc_model_plan_output_info(self._handle, plan, i,
                                                                ctypes.byref(info)), "output info")
            outs.append(TensorInfo(info))
        return ins, outs

    def plan_name(self, plan: int) -> str:
        return _text(self.lib.megcc_model_plan_name(self._handle, plan))

    def n_instructions(self, plan: int) -> int:
        return len(self._layout[plan]["instrs"])

    def instruction_kernels(self, plan: int) -> List[str]:
        """The kernel name of every instruction of `plan`."""
        return [ins["kernel"] for ins in self._layout[plan]["instrs"]]

    def zero_copy_inputs(self, plan: int) -> List[bool]:
        """Per input of `plan`: may the network read the caller's array in place, i.e. no
        instruction writes into the input's storage (the tensor or a view of it)."""
        p = self._layout[plan]
        root = [t["base"] if t["storage"] == "view" else i for i, t in enumerate(p["tensors"])]
        written = {root[o] for ins in p["instrs"] for o in ins["outputs"]}
        return [root[t] not in written for t in p["inputs"]]

    def direct_outputs(self, plan: int) -> List[bool]:
        """Per output of `plan`: may the kernels write it straight into the result array.
        Not when the tensor is also an input, or is listed as another output too."""
        p = self._layout[plan]
        seen = list(p["inputs"])
        flags = []
        shaped = self._shaped_at_run_time(plan)
        for t in p["outputs"]:
            # (an output whose shape is computed has no size to bind before the forward:
            # it is read from the network's memory afterwards)
            flags.append(t not in seen and t not in shaped)
            seen.append(t)
        return flags

    def tensor_roots(self, plan: int):
        """(root storage tensor of every input, of every output) of `plan`: the tensor whose
        memory a view lives in."""
        p = self._layout[plan]
        root = [t["base"] if t["storage"] == "view" else i for i, t in enumerate(p["tensors"])]
        return [root[t] for t in p["inputs"]], [root[t] for t in p["outputs"]]

    def _shaped_at_run_time(self, plan: int) -> set:
        """Tensors whose dims read a computed shape extent (docs/dynamic-shapes.md)."""
        from .emit.dynamic import CONST, SYM, VALUE_INPUT, VALUE_SHAPE

        dyn = self._layout[plan].get("dynamic")
        if dyn is None:
            return set()
        syms = {k for k, s in enumerate(dyn.symbols)
                if s.input == VALUE_INPUT and s.axis == VALUE_SHAPE}
        if not syms:
            return set()
        out = set()
        for t, _, e in dyn.dims:
            ex, i = dyn.exprs[e], 0
            while i < len(ex):
                if ex[i] == SYM and ex[i + 1] in syms:
                    out.add(t)
                i += 2 if ex[i] in (CONST, SYM) else 1
        return out

    def close(self) -> None:
        if self._handle:
            self.lib.megcc_model_free(self._handle)
            self._handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: ctypes may be gone already
            pass


def _address(arr: np.ndarray) -> int:
    """Address of a non-empty array's data. The buffer protocol is the cheapest way (a
    third of the array interface's cost, run() calls this per input and output); it wants
    a writable buffer, so read-only arrays take the array interface."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(arr))
    except (TypeError, ValueError):
        return arr.__array_interface__["data"][0]


def _readable_in_place(arr: np.ndarray) -> int:
    """The address of a C-contiguous array aligned to its element size, else 0 (such an
    array is copied instead). from_buffer refuses non-contiguous and read-only arrays."""
    try:
        address = ctypes.addressof(ctypes.c_char.from_buffer(arr))
    except (TypeError, ValueError):
        if not arr.flags.c_contiguous:
            return 0
        address = arr.__array_interface__["data"][0]
    return 0 if address % arr.itemsize else address


class NativeNetwork:
    """One network of a NativeModel (holds a reference to it: the model outlives it)."""

    def __init__(self, model: NativeModel, threads: int = 1):
        self.model, self.lib = model, model.lib
        handle = ctypes.c_void_p()
        model._check_global(self.lib.megcc_network_create(model._handle, None, 0,
                                                          ctypes.byref(handle)),
                            "cannot create the network")
        self._handle = handle.value
        self._run_fn = self.lib["megcc_session_run"]  # a pointer of its own: no argtypes
        self._run_fn.restype = ctypes.c_int
        self.plan = -1
        self.shaped = False  # input shapes set with set_input_shapes (not a plan's own)
        self.select_plan(model.runnable.index(True))  # the model's default plan
        self.threads = 1
        if threads != 1:
            self.set_threads(threads)

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            raise MegccRuntimeError(what, status,
                                    _text(self.lib.megcc_network_last_error(self._handle)))

    def set_threads(self, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self._check(self.lib.megcc_network_set_threads(self._handle, threads), "threads")
        self.threads = threads

    def select_plan(self, plan: int) -> None:
        if plan == self.plan and not self.shaped:
            return
        self._check(self.lib.megcc_network_select_plan(self._handle, plan), "select plan")
        self.shaped = False
        self._configure(plan, *self.model.plans[plan])

    def set_input_shapes(self, shapes: Sequence[Sequence[int]]) -> None:
        """Run at these input shapes (plan input order): the runtime picks the static plan
        compiled for them, else evaluates a dynamic plan (docs/dynamic-shapes.md); raises
        MegccRuntimeError with the runtime's message when no plan accepts them."""
        lib, h = self.lib, self._handle
        for i, shape in enumerate(shapes):
            if len(shape) > MAX_DIMS:
                raise MegccRuntimeError("input shapes", 1, f"input {i}: rank {len(shape)} > 8")
            dims = (ctypes.c_int32 * MAX_DIMS)(*[min(int(d), 2 ** 31 - 1) for d in shape])
            self._check(lib.megcc_network_set_input_shape(h, i, dims, len(shape)), "input shapes")
        size = ctypes.c_size_t()
        self._check(lib.megcc_network_required_arena_size(h, ctypes.byref(size)), "input shapes")
        plan, info = int(lib.megcc_network_plan(h)), _TensorInfo()
        ins, outs = [], []
        for i in range(len(shapes)):
            self._check(lib.megcc_network_input_info(h, i, ctypes.byref(info)), "input info")
            ins.append(TensorInfo(info))
        for i in range(len(self.model.plans[plan][1])):
            self._check(lib.megcc_network_output_info(h, i, ctypes.byref(info)), "output info")
            outs.append(TensorInfo(info))
        for mine, compiled in zip(outs, self.model.plans[plan][1]):
            mine.name = compiled.name  # the session may have renamed them
        self.shaped = True
        self._configure(plan, ins, outs)

    def required_arena_size(self) -> int:
        """Arena bytes the current plan needs at the current input shapes."""
        size = ctypes.c_size_t()
        self._check(self.lib.megcc_network_required_arena_size(self._handle,
                                                               ctypes.byref(size)), "arena size")
        return size.value

    def _configure(self, plan: int, inputs, outputs) -> None:
        self.plan = plan
        self.inputs, self.outputs = inputs, outputs
        n_in, n_out = len(self.inputs), len(self.outputs)
        self._zero_copy = [ok and bool(i.nbytes) for ok, i in
                           zip(self.model.zero_copy_inputs(plan), self.inputs)]
        self._in_user = [False] * n_in  # inputs now pointing at caller memory
        self._in_last = [None] * n_in  # weak reference to the array input i points at
        self._dynamic = self.model.dynamic[plan]  # outputs may be cut after a forward
        direct = [ok and bool(o.nbytes) and (self._dynamic or o.nbytes > SMALL_OUTPUT)
                  for ok, o in zip(self.model.direct_outputs(plan), self.outputs)]
        self._out_specs = [(o.shape, o.numpy_dtype, d) for d, o in zip(direct, self.outputs)]
        self._collect_after = not all(direct)
        self._bind_after = any(direct)  # some output bound to a new array before the forward
        # Outputs copied after the forward from memory that stays where it is from one run
        # to the next (a static plan's arena, not an input's or a bound output's memory):
        # read through a numpy view made at the first forward, None until then.
        in_roots, out_roots = self.model.tensor_roots(plan)
        moving = set(in_roots) | {r for r, d in zip(out_roots, direct) if d}
        self._out_fixed = [not d and not self._dynamic and bool(o.nbytes) and r not in moving
                           for d, o, r in zip(direct, self.outputs, out_roots)]
        self._out_views: List[Optional[np.ndarray]] = [None] * n_out
        # every output one of those, and their views made: run() only copies them
        self._all_views: Optional[List[np.ndarray]] = None
        # argument arrays of megcc_session_run, refilled by every run
        self._in_ptr = (ctypes.c_void_p * max(1, n_in))()
        self._in_size = (ctypes.c_size_t * max(1, n_in))(*[i.nbytes for i in self.inputs])
        self._out_ptr = (ctypes.c_void_p * max(1, n_out))()
        self._out_size = (ctypes.c_size_t * max(1, n_out))(*[o.nbytes for o in self.outputs])
        # megcc_session_run's arguments, all ctypes objects already: called through a
        # function pointer without argtypes, ctypes converts nothing (a third of run()'s
        # overhead on a one-operator model went to converting them)
        self._run_args = (ctypes.c_void_p(self._handle), ctypes.c_uint32(n_in), self._in_ptr,
                          self._in_size, ctypes.c_uint32(n_out), self._out_ptr, self._out_size)

    def _bind_inputs(self, arrays: Sequence[np.ndarray]) -> None:
        """Fill the input pointers of megcc_session_run: the caller's arrays where they can
        be read in place, else NULL after one copy into the arena. The array bound last is
        known by a weak reference: the same array again keeps its address (an array's data
        does not move while a reference to it exists, and a dead reference is no match)."""
        last = self._in_last
        for i, arr in enumerate(arrays):
            ref = last[i]
            if ref is None or ref() is not arr:
                self._bind_input(i, arr)

    def _bind_input(self, i: int, arr: np.ndarray) -> None:
        address = _readable_in_place(arr) if self._zero_copy[i] else 0
        if address:
            self._in_ptr[i] = address
            self._in_user[i] = True
            self._in_last[i] = weakref.ref(arr)
        else:
            self._in_ptr[i] = None
            self._in_last[i] = None
            self._copy_in(i, arr)

    def _copy_in(self, i: int, arr: np.ndarray) -> None:
        lib, h, nbytes = self.lib, self._handle, self.inputs[i].nbytes
        if self._in_user[i]:  # back to the arena
            self._check(lib.megcc_network_set_input_memory(h, i, None, 0), "input")
            self._in_user[i] = False
        if nbytes:
            src = np.ascontiguousarray(arr)
            ctypes.memmove(lib.megcc_network_input_data(h, i), _address(src), nbytes)

    def _bind_outputs(self) -> List[Optional[np.ndarray]]:
        """New result arrays for the outputs written in place (None for those copied after
        the forward), and the output pointers of megcc_session_run at them."""
        ptr, results = self._out_ptr, []
        for i, (shape, dtype, direct) in enumerate(self._out_specs):
            if direct:
                out = np.empty(shape, dtype)
                ptr[i] = _address(out)
                results.append(out)
            else:
                results.append(None)
        return results

    def _collect(self, results: List[Optional[np.ndarray]]) -> None:
        """The outputs the kernels could not write into new arrays directly: copies of the
        network's memory."""
        views = self._out_views
        for i, (shape, dtype, direct) in enumerate(self._out_specs):
            if direct:
                continue
            view = views[i]
            if view is None:
                view = self._output_view(i)
                if self._out_fixed[i]:
                    views[i] = view
            results[i] = view.copy()
        if all(self._out_fixed) and self._out_specs:
            self._all_views = views

    def _output_view(self, i: int) -> np.ndarray:
        """A numpy array over output i in the network's memory (valid after a forward)."""
        shape, dtype, _ = self._out_specs[i]
        nbytes = self.outputs[i].nbytes
        if not nbytes:
            return np.empty(shape, dtype)
        src = self.lib.megcc_network_output_data(self._handle, i)
        if not src:
            self._check(1, "output")
        return np.frombuffer((ctypes.c_char * nbytes).from_address(src),
                             dtype).reshape(shape)

    def _forward(self) -> None:
        status = self._run_fn(*self._run_args)
        if status:
            self._check(status, "forward")

    def run(self, arrays: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Forward the current plan on `arrays` (plan input order, dtype and shape already
        checked); the outputs in plan order, as new arrays."""
        last = self._in_last
        for i, arr in enumerate(arrays):  # (_bind_inputs, inline: this is the hot path)
            ref = last[i]
            if ref is None or ref() is not arr:
                self._bind_input(i, arr)
        views = self._all_views
        if views is not None:  # every output a copy of memory that stays in place
            status = self._run_fn(*self._run_args)
            if status:
                self._check(status, "forward")
            return [v.copy() for v in views]
        results = self._bind_outputs() if self._bind_after else [None] * len(self._out_specs)
        status = self._run_fn(*self._run_args)
        if status:
            self._check(status, "forward")
        if self._collect_after:
            self._collect(results)
        if self._dynamic:
            results = self._computed_shapes(results)
        return results

    def _computed_shapes(self, results: List[np.ndarray]) -> List[np.ndarray]:
        """Outputs whose size an instruction computed (value symbols, docs/dynamic-shapes.md)
        were bound at their cap: cut each to the shape the forward left."""
        info = _TensorInfo()
        for i, arr in enumerate(results):
            self._check(self.lib.megcc_network_output_info(self._handle, i, ctypes.byref(info)),
                        "output info")
            computed = TensorInfo(info)
            shape = computed.shape
            if tuple(shape) != arr.shape:
                n = int(np.prod(shape, dtype=np.int64))
                if n > arr.size:  # shaped at run time: read from the network's memory
                    out = np.empty(shape, arr.dtype)
                    src = self.lib.megcc_network_output_data(self._handle, i)
                    if not src:
                        self._check(1, "output")
                    ctypes.memmove(_address(out), src, out.nbytes)
                    results[i] = out
                    continue
                results[i] = arr.reshape(-1)[:n].reshape(shape).copy()
        return results

    def _bind(self, arrays: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Bind I/O for the timing/profiling loops (which forward without rebinding)."""
        self._bind_inputs(arrays)
        results = self._bind_outputs()
        lib, h = self.lib, self._handle
        for i, p in enumerate(self._in_ptr[:len(self.inputs)]):
            if p:
                self._check(lib.megcc_network_set_input_memory(h, i, p, self._in_size[i]),
                            "input")
        for i, p in enumerate(self._out_ptr[:len(self.outputs)]):
            if p:
                self._check(lib.megcc_network_set_output_memory(h, i, p, self._out_size[i]),
                            "output")
        return results

    def time_forward(self, arrays: Sequence[np.ndarray], warmup: int, iterations: int,
                     clock: str = "wall") -> List[float]:
        """Sorted latencies (ms) of `iterations` forwards after `warmup`, timed in C, and
        the outputs of the last forward."""
        results = self._bind(arrays)  # alive until the forwards are done
        ms = (ctypes.c_double * max(1, iterations))()
        self._check(self.lib.megcc_session_time_forward(self._handle, CLOCKS[clock], warmup,
                                                        iterations, ms), "forward")
        self._collect(results)
        return list(ms[:iterations]), results

    def profile(self, arrays: Sequence[np.ndarray], runs: int = 1) -> List[int]:
        """Per instruction, its fastest time (ns) over `runs` profiled forwards (the clock
        is the model's), and the outputs of the last forward."""
        results = self._bind(arrays)  # alive until the forwards are done
        n = self.model.n_instructions(self.plan)
        best = (ctypes.c_uint64 * max(1, n))(*([2 ** 64 - 1] * max(1, n)))
        self._check(self.lib.megcc_session_profile(self._handle, max(1, runs), best), "profile")
        self._collect(results)
        return list(best[:n]), results

    def close(self) -> None:
        if getattr(self, "_handle", None):
            self.lib.megcc_network_destroy(self._handle)
            self._handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
