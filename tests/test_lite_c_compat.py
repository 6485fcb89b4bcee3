"""Our lite-c headers against MegEngine Lite 1.13's C API: every function, with the struct
layouts and enum values of Lite's own binding.

The oracle is MegEngine Lite itself where it is installed (the `megenginelite` package that
ships with the pinned megengine wheel): its shared library's exported `LITE_*` functions and
its ctypes structures (the layouts Lite's Python binding passes to that library). The list
of functions is also kept here as data, so the check stays meaningful where megengine is
not installed; a test keeps the two in step.
"""
from __future__ import annotations

import ctypes
import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from build_support import in_ci

ROOT = Path(__file__).resolve().parent.parent
HEADERS = sorted((ROOT / "runtime" / "include" / "lite-c").glob("*.h"))

# MegEngine Lite 1.13's C functions (the exports of liblite_shared).
LITE_FUNCTIONS = set("""
    LITE_clear_last_error LITE_clear_memory_pair LITE_destroy_network LITE_destroy_tensor
    LITE_dump_layout_transform_model LITE_dump_persistent_cache LITE_dump_tensor_rt_cache
    LITE_enable_global_layout_transform LITE_enable_io_bin_dump LITE_enable_io_txt_dump
    LITE_enable_profile_performance LITE_extra_configure LITE_forward LITE_get_all_input_name
    LITE_get_all_output_name LITE_get_cpu_threads_number LITE_get_device_count LITE_get_device_id
    LITE_get_device_type LITE_get_discrete_tensor LITE_get_input_name LITE_get_io_tensor
    LITE_get_last_error LITE_get_last_error_code LITE_get_log_level LITE_get_model_extra_info
    LITE_get_model_io_info_by_memory LITE_get_model_io_info_by_path LITE_get_output_name
    LITE_get_static_memory_alloc_info LITE_get_stream_id LITE_get_tensor_device_id
    LITE_get_tensor_device_type LITE_get_tensor_layout LITE_get_tensor_memory
    LITE_get_tensor_memory_with_index LITE_get_tensor_total_size_in_byte LITE_get_version
    LITE_is_cpu_inplace_mode LITE_is_memory_continue LITE_is_pinned_host LITE_load_model_from_mem
    LITE_load_model_from_path LITE_lookup_physic_ptr LITE_make_default_network LITE_make_network
    LITE_make_network_config LITE_make_tensor LITE_register_decryption_and_key
    LITE_register_memory_pair LITE_register_parse_info_func LITE_reset_tensor
    LITE_reset_tensor_memory LITE_set_async_callback LITE_set_async_callback_with_userdata
    LITE_set_cpu_inplace_mode LITE_set_cpu_threads_number LITE_set_device_id
    LITE_set_finish_callback LITE_set_finish_callback_with_userdata LITE_set_loader_lib_path
    LITE_set_log_level LITE_set_memory_allocator LITE_set_network_algo_fastrun_config
    LITE_set_network_algo_policy LITE_set_network_algo_workspace_limit LITE_set_persistent_cache
    LITE_set_runtime_thread_affinity LITE_set_start_callback LITE_set_start_callback_with_userdata
    LITE_set_stream_id LITE_set_tensor_layout LITE_set_tensor_rt_cache LITE_share_runtime_memroy
    LITE_shared_weight_with_network LITE_tensor_concat LITE_tensor_copy LITE_tensor_fill_zero
    LITE_tensor_reshape LITE_tensor_share_memory_with LITE_tensor_slice
    LITE_try_coalesce_all_free_memory LITE_update_decryption_or_key LITE_use_tensorrt LITE_wait
""".split())

# ours beyond Lite: MegCC's lite-c has the first, the second sets the bare-metal hooks
EXTENSIONS = {"LITE_load_model_with_shared_mem", "LITE_megcc_set_hooks"}


def _declared_functions():
    text = "\n".join(h.read_text() for h in HEADERS)
    return set(re.findall(r"LITE_API\s+[^;()]*?\b(LITE_\w+)\s*\(", text))


def test_every_lite_function_is_declared():
    declared = _declared_functions()
    assert not LITE_FUNCTIONS - declared, sorted(LITE_FUNCTIONS - declared)
    assert declared - LITE_FUNCTIONS == EXTENSIONS, sorted(declared - LITE_FUNCTIONS)


def _megenginelite():
    try:
        import megenginelite
    except Exception as exc:  # not installed, or its library fails to load
        if in_ci():
            pytest.fail(f"megenginelite is needed as the oracle in CI: {exc}")
        pytest.skip(f"megenginelite not available: {exc}")
    return megenginelite


def test_function_list_is_lite_1_13s():
    lite = _megenginelite()
    libs = glob.glob(os.path.join(os.path.dirname(lite.__file__), "libs", "liblite*"))
    assert libs, "megenginelite ships no library"
    if not shutil.which("nm"):
        pytest.fail("nm (binutils) is needed")
    out = subprocess.run(["nm", "-D", "--defined-only", libs[0]], capture_output=True,
                         text=True, check=True).stdout
    exported = {line.split()[-1] for line in out.splitlines()
                if re.search(r" T LITE_\w+$", line)}
    assert exported == LITE_FUNCTIONS


def _layout_probe(tmp_path, structs):
    """sizeof and offsetof of every field, as our headers lay them out."""
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "lite-c/global_c.h"',
             "int main(void) {"]
    for c_name, fields in structs.items():
        lines.append(f'    printf("{c_name} size %lu\\n", (unsigned long)sizeof({c_name}));')
        for f in fields:
            lines.append(f'    printf("{c_name}.{f} %lu\\n", '
                         f'(unsigned long)offsetof({c_name}, {f}));')
    lines += ["    return 0;", "}"]
    src = tmp_path / "probe.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "probe"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-I", str(ROOT / "runtime" / "include"),
                    str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return dict(line.rsplit(" ", 1) for line in out.splitlines())


def test_struct_layouts_match_lites(tmp_path):
    lite = _megenginelite()
    from megenginelite import network, tensor

    classes = {"LiteOptions": network.LiteOptions, "LiteConfig": network.LiteConfig,
               "LiteIO": network.LiteIO, "LiteNetworkIO": network._LiteNetworkIO,
               "LiteExtraConfig": network.LiteExtraConfig, "LiteLayout": tensor.LiteLayout,
               "LiteTensorDesc": tensor._LiteTensorDesc}
    structs = {c: [f[0].lstrip("_") for f in cls._fields_] for c, cls in classes.items()}
    ours = _layout_probe(tmp_path, structs)
    for c_name, cls in classes.items():
        assert int(ours[f"{c_name} size"]) == ctypes.sizeof(cls), c_name
        for field, _ in cls._fields_:
            want = getattr(cls, field).offset
            assert int(ours[f"{c_name}.{field.lstrip('_')}"]) == want, (c_name, field)
    assert lite  # the oracle was used


def test_enum_values_match_lites(tmp_path):
    _megenginelite()
    from megenginelite import struct as st

    enums = {}
    for name in ("LiteAlgoSelectStrategy", "LiteBackend", "LiteDeviceType", "LiteIOType",
                 "LiteLogLevel", "LiteTensorPhase", "LiteDataType"):
        enums.update({k: int(v) for k, v in getattr(st, name).__members__.items()})
    # Lite's Python binding numbers LITE_UINT16 as 6; Lite's C header (common_enum_c.h) has
    # LITE_UINT = 6, LITE_UINT16 = 7, LITE_INT64 = 8, which C programs compile against.
    enums.pop("LITE_UINT16")
    enums.update({"LITE_UINT": 6, "LITE_UINT16": 7, "LITE_INT64": 8, "OK": 0,
                  "LITE_INTERNAL_ERROR": 1, "LITE_UNKNOWN_ERROR": 2})
    src = tmp_path / "enums.c"
    src.write_text('#include <stdio.h>\n#include "lite-c/global_c.h"\nint main(void) {\n'
                   + "".join(f'    printf("{k} %d\\n", (int){k});\n' for k in sorted(enums))
                   + "    return 0;\n}\n")
    exe = tmp_path / "enums"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-I", str(ROOT / "runtime" / "include"),
                    str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    ours = {k: int(v) for k, v in (line.split() for line in out.splitlines())}
    assert ours == enums


def test_lite_application_agrees_with_megengine_lite(tmp_path):
    """A program written only against Lite's C API (tests/runtime/lite_digits_app.c), linked
    with our runtime and the compiled digits model, against MegEngine Lite running the same
    .mge on real digits (sklearn's load_digits): same outputs within 1e-4, same classes."""
    _megenginelite()
    from megenginelite import LiteNetwork
    from sklearn.datasets import load_digits

    import numpy as np

    model = ROOT / "samples" / "digits" / "digits.mge"
    out = tmp_path / "compiled"
    subprocess.run([sys.executable, "-m", "megcc_builder.cli", "compile", str(model), "-o",
                    str(out)], check=True, capture_output=True)
    app = tmp_path / "lite_app"
    sources = sorted(str(p) for p in (ROOT / "runtime" / "src").glob("*.c"))
    subprocess.run(["gcc", "-std=c99", "-O1", "-I", str(ROOT / "runtime" / "include"),
                    *sources, str(out / "kernels.c"),
                    str(ROOT / "tests" / "runtime" / "lite_digits_app.c"), "-o", str(app),
                    "-lm", "-lpthread"], check=True)
    tiny = next(out.glob("*.tiny"))

    lite = LiteNetwork()
    lite.load(str(model))
    images = load_digits().images[:20].astype(np.float32)  # 0..16 grey levels, 8x8
    agree = 0
    for i, image in enumerate(images):
        x = image.reshape(1, 1, 8, 8)
        (tmp_path / "x.bin").write_bytes(x.tobytes())
        r = subprocess.run([str(app), str(tiny), str(tmp_path / "x.bin"), str(tmp_path / "y.bin")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        ours = np.fromfile(tmp_path / "y.bin", np.float32)
        lite.get_io_tensor(lite.get_input_name(0)).set_data_by_copy(x)
        lite.forward()
        lite.wait()
        ref = lite.get_io_tensor(lite.get_output_name(0)).to_numpy().reshape(-1)
        assert ours.shape == ref.shape
        err = np.max(np.abs(ours - ref) / np.maximum(1, np.abs(ref)))
        assert err <= 1e-4, (i, err)
        agree += int(np.argmax(ours) == np.argmax(ref))
    assert agree == len(images)
