"""Model embedding with the assembler's .incbin (megcc_builder/embed.py): the object holds
the blob's exact bytes, 64-byte aligned, with the C array's symbols, for every toolchain
family we target; names and paths that cannot be embedded are refused in one line. (The
samples embed this way on every target: tests/test_targets.py runs them.)"""
import subprocess
import sys

import pytest

from build_support import require_target
from megcc_builder.embed import EmbedError, incbin_source


def _symbols(obj: str, nm: str):
    out = subprocess.run([nm, "-S", obj], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            found[parts[3]] = (int(parts[0], 16), int(parts[1], 16), parts[2])
    return found


@pytest.mark.parametrize("target", ["x86_64", "arm64", "cortex-m4"])
def test_object_holds_the_blob_with_the_c_array_symbols(tmp_path, target):
    t = require_target(target)
    blob = bytes((i * 37 + 11) % 256 for i in range(100_003))  # odd size: padding follows
    (tmp_path / "m.tiny").write_bytes(blob)
    (tmp_path / "m.embed.c").write_text(incbin_source(str(tmp_path / "m.tiny"), "net"))
    obj = str(tmp_path / "m.o")
    subprocess.run([t.cc, *t.compile_flags(), "-c", str(tmp_path / "m.embed.c"), "-o", obj],
                   check=True)
    prefix = t.cc[:-3] if t.cc.endswith("gcc") else ""
    syms = _symbols(obj, prefix + "nm")
    addr, size, kind = syms["megcc_model_net"]
    assert size == len(blob) and kind == "R" and addr % 64 == 0
    assert syms["megcc_model_net_size"][1:] == (4, "R")
    section = str(tmp_path / "section.bin")
    subprocess.run([prefix + "objcopy", "-O", "binary",
                    "--only-section=.rodata.megcc_model_net", obj, section], check=True)
    data = open(section, "rb").read()
    assert data[:len(blob)] == blob
    size_at = syms["megcc_model_net_size"][0] - addr
    byteorder = "little"  # every target here is little-endian
    assert int.from_bytes(data[size_at:size_at + 4], byteorder) == len(blob)


def test_same_blob_path_gives_the_same_source():
    assert incbin_source("/a/b/m.tiny", "net") == incbin_source("/a/b/m.tiny", "net")


@pytest.mark.parametrize("name, path, message", [
    ("../net", "/a/m.tiny", "is not a model name"),
    ("net", '/a/"quoted"/m.tiny', "a path with quotes, backslashes or newlines"),
])
def test_refused_names_and_paths(name, path, message):
    with pytest.raises(EmbedError, match=message.replace("(", r"\(")):
        incbin_source(path, name)


def test_command_line_error_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "megcc_builder.embed", "/a/m.tiny", "bad name",
                        str(tmp_path / "x.c")], capture_output=True, text=True)
    assert r.returncode == 1 and not (tmp_path / "x.c").exists()
    assert r.stderr.strip() == "megcc: error: 'bad name' is not a model name"


def test_model_names_that_are_not_c_identifiers_get_the_c_arrays_symbol():
    from megcc_builder.names import model_symbol

    source = incbin_source("/a/my-net.v2.tiny", "my-net.v2")
    assert model_symbol("my-net.v2") == "megcc_model_my_net_v2"
    assert "megcc_model_my_net_v2:" in source and "megcc_model_my_net_v2_size:" in source
