"""Target descriptions: which compiler, flags, ISA features, link recipe and emulator a
build for `x86_64`, `arm64`, `armv7`, `riscv64`, `cortex-m4`, `cortex-m55` or `cortex-m3`
uses.

The facts live in `toolchains/<name>.json` (plus `toolchains/common.json` for the flags
every target gets) so that the SCons tool, the CMake toolchain files and Python read the
same description: a flag changed there changes every build system at once.

    python -m megcc_builder.targets              # list targets and whether they are usable
    python -m megcc_builder.targets show arm64   # the resolved description as JSON
    python -m megcc_builder.targets check-budget manifest.json cortex-m4 mcu 1
                                                 # does a compiled bundle fit the board?
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .resources import resource_dir
from .isa import resolve as isa_resolve, spec as isa_spec

# MEGCC_TOOLCHAIN_DIR: descriptions of one's own targets, instead of the shipped ones.
TOOLCHAIN_DIR = os.environ.get("MEGCC_TOOLCHAIN_DIR") or resource_dir("toolchains")
RUNTIME_DIR = resource_dir("runtime")


class TargetError(Exception):
    """Unknown target, malformed description, or a tool of the target is not installed."""


@dataclass(frozen=True)
class Target:
    name: str
    summary: str
    os: str                       # "linux" (hosted, runs under qemu-user) or "baremetal"
    arch: str                     # model-format arch name (portable C kernels for all today)
    isa_features: List[str]
    isa: str                      # kernel ISA level builds for it compile with (megcc_builder.isa)
    cc: str
    ar: str
    size: str
    strip: str
    machine_flags: List[str]      # compile *and* link (-mcpu, -mfloat-abi, --specs, ...)
    defines: List[str]            # preprocessor macros for the runtime and the application
    ldflags: List[str]            # link only
    libs: List[str]
    run: List[str]                # emulator command template; [] = run directly
    packages: List[str]           # Debian packages that provide the tools
    sysroot: str = ""
    memory: Dict[str, Dict[str, object]] = field(default_factory=dict)
    default_memory: str = ""
    common_cflags: List[str] = field(default_factory=list)
    common_ldflags: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    @property
    def baremetal(self) -> bool:
        return self.os == "baremetal"

    def compile_flags(self) -> List[str]:
        """Everything gcc needs to compile a C file for this target (no -I, no warnings)."""
        return [*self.common_cflags, *self.machine_flags, *(f"-D{d}" for d in self.defines)]

    def memory_layout(self, profile: Optional[str] = None) -> Dict[str, object]:
        """Flash/RAM origins and sizes of a bare-metal memory profile ({} when hosted)."""
        if not self.memory:
            return {}
        profile = profile or self.default_memory
        if profile not in self.memory:
            raise TargetError(f"target {self.name} has no memory profile '{profile}' "
                              f"(has {', '.join(sorted(self.memory))})")
        return dict(self.memory[profile])

    def link_flags(self, memory: Optional[str] = None) -> List[str]:
        """Flags for the final link (machine flags, link recipe, memory map, gc-sections)."""
        flags = [*self.machine_flags, *self.ldflags, *self.common_ldflags]
        layout = self.memory_layout(memory)
        # picolibc's linker script (picolibc.ld) takes the memory map from these symbols;
        # the linker then refuses a program that does not fit the budget.
        for key in ("flash", "flash_size", "ram", "ram_size", "stack_size"):
            if key in layout:
                flags.append(f"-Wl,--defsym=__{key}={layout[key]}")
        return flags

    def link_libs(self) -> List[str]:
        return [f"-l{lib}" for lib in self.libs]

    def emulator(self) -> List[str]:
        """The command prefix a hosted program runs behind, then its own arguments
        (qemu-user; [] = runs directly). Bare-metal programs are named inside the emulator's
        command line instead: run_command."""
        if "{program}" in " ".join(self.run):
            raise TargetError(f"{self.name}: the emulator takes the program inside its "
                              "command line, not as a prefix")
        return [part.replace("{sysroot}", self.sysroot) for part in self.run]

    def run_command(self, program: str, args: Sequence[str] = ()) -> List[str]:
        """The command that runs `program` for this target on the build machine."""
        if "{program}" not in " ".join(self.run):
            return [*self.emulator(), os.path.abspath(program), *args]
        cmd = [part.replace("{sysroot}", self.sysroot).replace("{program}",
                                                               os.path.abspath(program))
               for part in self.run]
        if args:
            # Semihosting passes the command line through QEMU's arg= options (picolibc's
            # semihosting crt0 makes them argv[1:]); a comma in a value is written twice.
            at = [i for i, part in enumerate(cmd) if part.startswith("enable=on") and
                  i > 0 and cmd[i - 1] == "-semihosting-config"]
            if not at:
                raise TargetError(f"{self.name}: programs take no command-line arguments")
            cmd[at[0]] += "".join(",arg=" + str(a).replace(",", ",,") for a in args)
        return cmd

    def tools(self) -> List[str]:
        """Executables a build-and-run for this target needs."""
        return [self.cc, self.ar, self.size] + ([self.run[0]] if self.run else [])

    def missing_tools(self) -> List[str]:
        missing = [t for t in self.tools() if shutil.which(t) is None]
        if self.sysroot and not os.path.isdir(self.sysroot):
            missing.append(self.sysroot)
        return missing

    def check_available(self) -> None:
        missing = self.missing_tools()
        if missing:
            raise TargetError(f"target {self.name} needs {', '.join(missing)} (Debian packages: "
                              f"{' '.join(self.packages)}; scripts/setup.sh installs them)")


def names() -> List[str]:
    return sorted(f[:-5] for f in os.listdir(TOOLCHAIN_DIR)
                  if f.endswith(".json") and f != "common.json")


def _read_json(path: str) -> dict:
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except ValueError as exc:
        raise TargetError(f"{path}: not valid JSON ({exc})") from None


def memory_budget_problem(manifest: dict, layout: Dict[str, object], embedded: bool,
                          where: str) -> Optional[str]:
    """Why a compiled bundle (its manifest.json) does not fit a bare-metal memory profile,
    or None. Checked by the build tools right after the compiler ran, before any C is
    compiled: the embedded model data must fit the flash, every plan's arena the RAM left
    after the stack."""
    blobs = sum(m["blob_bytes"] for m in manifest["models"]) if embedded else 0
    arena = max((p["arena_bytes"] for m in manifest["models"] for p in m["plans"]), default=0)
    flash = int(layout["flash_size"])
    ram = int(layout["ram_size"]) - int(layout.get("stack_size", 0))
    if blobs > flash:
        return (f"the embedded model data ({blobs:,} bytes) does not fit the flash of "
                f"{where}: {flash:,} bytes")
    if arena > ram:
        return (f"the model's activation arena ({arena:,} bytes) does not fit the RAM of "
                f"{where}: {ram:,} bytes after the stack")
    return None


def load(name: str) -> Target:
    path = os.path.join(TOOLCHAIN_DIR, f"{name}.json")
    if not os.path.isfile(path):
        raise TargetError(f"unknown target '{name}' (known: {', '.join(names())})")
    d = _read_json(path)
    common = _read_json(os.path.join(TOOLCHAIN_DIR, "common.json"))
    try:
        target = Target(
            name=d["name"], summary=d["summary"], os=d["os"], arch=d["arch"],
            isa_features=list(d["isa_features"]), isa=d.get("isa", "generic"), cc=d["cc"], ar=d["ar"], size=d["size"],
            strip=d["strip"], machine_flags=list(d["cflags"]), defines=list(d["defines"]),
            ldflags=list(d["ldflags"]), libs=list(d["libs"]), run=list(d["run"]),
            packages=list(d["packages"]), sysroot=d.get("sysroot", ""),
            memory=d.get("memory", {}), default_memory=d.get("default_memory", ""),
            common_cflags=list(common["cflags"]), common_ldflags=list(common["ldflags"]),
            warnings=list(common["warnings"]))
    except KeyError as exc:
        raise TargetError(f"{path}: missing field {exc}") from None
    _check_isa_level(target, path)
    return target


def _check_isa_level(target: Target, path: str) -> None:
    """A toolchain names its ISA level (isa/levels.py), whose description says which
    compiler flags enable it: the toolchain's flags must include them, or kernels.c would
    stop at its #error guard."""
    try:
        level = isa_spec(isa_resolve(target.isa))
    except ValueError as exc:
        raise TargetError(f"{path}: {exc}") from None
    missing = [f for f in level.cflags if f not in target.machine_flags]
    if missing:
        raise TargetError(f"{path}: ISA level '{level.name}' needs the flags "
                          f"{' '.join(missing)} in \"cflags\"")


def describe(target: Target) -> dict:
    return {"name": target.name, "summary": target.summary, "os": target.os,
            "arch": target.arch, "isa_features": target.isa_features, "isa": target.isa,
            "cc": target.cc,
            "compile_flags": target.compile_flags(), "link_flags": target.link_flags(),
            "libs": target.link_libs(), "run": target.run_command("PROGRAM"),
            "missing": target.missing_tools()}


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["show"] and len(argv) == 2:
        print(json.dumps(describe(load(argv[1])), indent=1))
        return 0
    if argv[:1] == ["check-budget"] and len(argv) == 5:  # for the CMake package
        manifest_path, name, profile, embedded = argv[1:]
        try:
            target = load(name)
            profile = profile or target.default_memory
            layout = target.memory_layout(profile)
            with open(manifest_path, "r", encoding="utf-8") as f:
                manifest = json.load(f)
        except (TargetError, OSError, ValueError) as exc:
            print(f"megcc: error: {exc}", file=sys.stderr)
            return 1
        problem = memory_budget_problem(manifest, layout, embedded == "1",
                                        f"{name} (memory profile {profile})")
        if problem:
            print(f"megcc: error: {problem}", file=sys.stderr)
            return 1
        return 0
    if argv:
        print("usage: python -m megcc_builder.targets [show NAME | check-budget MANIFEST "
              "TARGET PROFILE EMBEDDED(0|1)]", file=sys.stderr)
        return 2
    for n in names():
        t = load(n)
        missing = t.missing_tools()
        state = "ok" if not missing else "missing " + ", ".join(missing)
        print(f"{n:10} {state:40} {t.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
