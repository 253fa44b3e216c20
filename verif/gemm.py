"""Run a whole GEMM on the Verilated tensor core: the engine behind ``sparsecore gemm``.

:func:`run_gemm` tiles C = A x B with :func:`sim.tiling.tile_gemm`, packs each
operand beat once into the core's payload words (:class:`verif.payload.PayloadCodec`,
by the manifest's layouts), builds the engine for the configuration once
(:func:`verif.engine.build_engine` caches it: a second run with the same
configuration does not rebuild), plays the job through it in C++ and puts C
back together from the result beats. :class:`GemmEngine` is the same for many
GEMMs: built once, any number of them per simulator run. ``runner="cocotb"``
streams the beats cycle by cycle from Python instead (:mod:`verif.gemm_tb`, the
engine's reference: the same C and the same cycles).

``cycles`` counts clock edges from the first beat offered (valid raised after
reset) to the edge at which the last result beat is taken; with no stalls,
results are always accepted, so it is the core's own time for the GEMM.

The cocotb runner and the host exchange files in a job folder (:class:`GemmJob`):
operands in, results and cycle counts out, plus a progress note that the host
shows on stderr during long runs.

:func:`run_layer` is the same run on a network layer in hardware
(:class:`hw.layer.SparseLayer`: the core with the output stage after it): the
same beats, plus one ``params`` beat per result tile (each tile row's bias,
multiplier and shift, and the ReLU flag), and activation codes back instead
of accumulators. Its ``cycles`` run to the last code beat taken, so they
include the output stage's latency once per GEMM. A layer with a code table
gets the whole table first, not counted in its cycles.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from sparsecore.sim.formats import check_integer_array
from sparsecore.sim.gemm import acc_format
from sparsecore.sim.sparsity import META_FORMAT
from sparsecore.sim.tiling import (
    BeatTables,
    Geometry,
    TiledGemm,
    assemble,
    explain_mismatch,
    tile_gemm,
)
from sparsecore.verif.payload import BIT, PayloadCodec, bytes_to_words, raw_format, words_to_bytes

__all__ = ["GemmResult", "GemmJob", "LayerResult", "GemmEngine", "GemmBatch", "run_gemm",
           "run_layer", "core_build_name",
           "pack_beats", "pack_beat_words", "pack_table_words", "pack_params", "pack_table",
           "unpack_results", "unpack_codes", "RUNNERS",
           "fst_supported", "wave_formats", "JOB_ENV", "BARE_CYCLES_ENV"]

JOB_ENV = "SPARSECORE_GEMM_JOB"
BARE_CYCLES_ENV = "SPARSECORE_BARE_CYCLES"
TB_MODULE = "sparsecore.verif.gemm_tb"
PROGRESS_AFTER_S = 5.0     # quiet for steps shorter than this
PROGRESS_TTY_S = 0.5       # refresh of the progress line on a terminal
PROGRESS_LOG_S = 10.0      # a progress line this often otherwise


@dataclass(frozen=True)
class GemmResult:
    """What one GEMM run on the core gave."""

    c: np.ndarray             # M x N int64
    cycles: int               # first beat offered .. last result taken
    mode: str                 # "sparse" or "dense"
    seconds: float            # wall time of the streaming loop in the simulator
    tiled: TiledGemm          # the beats that were streamed (sim.tiling)
    tile_results: np.ndarray  # (tiles, rows, cols): every result beat, in order
    build: object             # the verif.build.BuildResult that ran
    waves: Path | None = None
    gtkw: Path | None = None
    bare_cycles_per_second: float | None = None   # the reference loop, when asked for
    runner: str = "cocotb"    # "engine" (C++ driver, verif.engine) or "cocotb"
    job_seconds: float | None = None   # tiled GEMM packed .. C in numpy (end to end)

    @property
    def macs(self):
        """M * N * K of the user's GEMM."""
        return self.tiled.macs

    @property
    def beats(self):
        return self.tiled.n_beats

    @property
    def cycles_per_second(self):
        return self.cycles / self.seconds if self.seconds > 0 else float("inf")

    def utilization(self, config):
        """macs / (cycles * peak); peak = multipliers (dense) or 2 x multipliers (sparse)."""
        peak = config.multipliers * (1 if self.mode == "dense" else 2)
        return self.macs / (self.cycles * peak)

    def describe_mismatch(self, expected):
        """None if C equals ``expected`` (from the model), else the first difference, located."""
        bad = np.argwhere(self.c != np.asarray(expected))
        if not len(bad):
            return None
        i, j = (int(x) for x in bad[0])
        g = self.tiled.geometry
        origin = np.array([i - i % g.rows, j - j % g.cols])
        tile = int(np.flatnonzero(self.tiled.final
                                  & (self.tiled.tile_origin == origin).all(axis=1))[0])
        row, col = i % g.rows, j % g.cols
        info = explain_mismatch(self.tiled.beats, g, tile, row, col,
                                int(self.tile_results[tile, row, col]))
        where = f"result tile {tile} [{row}][{col}], beats {info['beats'][0]}..{info['beats'][1]}"
        if "beat" in info:
            beat, group = info["beat"], info["group"]
            # The output tile's beats run over K in order: chunk = beat within them.
            per_output = self.tiled.n_beats // int(self.tiled.final.sum())
            k_beat = g.k_per_beat(info["dense"])
            k0 = (beat % per_output) * k_beat + group * (2 if info["dense"] else 4)
            k1 = k0 + (1 if info["dense"] else 3)
            where += f"; beat {beat} group {group} (K columns {k0}..{k1})"
            if info.get("code") is not None:
                where += f" has code {info['code']:#06b}"
            if "explained_by_code" in info:
                where += f"; code {info['explained_by_code']:#06b} gives the core's value"
        return (f"{len(bad)} of {self.c.size} results differ; first C[{i}, {j}]: core "
                f"{int(self.c[i, j])}, model {int(expected[i, j])} ({where})")


class GemmJob:
    """The folder through which the host and :mod:`verif.gemm_tb` exchange one run."""

    def __init__(self, folder):
        self.folder = Path(folder)

    @classmethod
    def from_env(cls):
        return cls(os.environ[JOB_ENV])

    # host -> simulator
    def write_beats(self, weights, acts, weights_width, acts_width, n_results, params=None,
                    params_width=None, table=None, table_width=None):
        """The input words; ``params`` (one word per result) only for a layer design,
        ``table`` (one word per entry, sent before the job) only for one with a code table."""
        extra = {} if params is None else {"params": words_to_bytes(params, params_width)}
        if table is not None:
            extra["table"] = words_to_bytes(table, table_width)
        np.savez(self.folder / "beats.npz", weights=words_to_bytes(weights, weights_width),
                 acts=words_to_bytes(acts, acts_width), n_results=n_results, **extra)

    def read_beats(self):
        """(weights words, activation words, params words or None, number of results)."""
        with np.load(self.folder / "beats.npz") as f:
            params = bytes_to_words(f["params"]) if "params" in f.files else None
            return (bytes_to_words(f["weights"]), bytes_to_words(f["acts"]), params,
                    int(f["n_results"]))

    def read_table(self):
        """The code table words to write before the job, or None."""
        with np.load(self.folder / "beats.npz") as f:
            return bytes_to_words(f["table"]) if "table" in f.files else None

    def write_stalls(self, stalls):
        """The :class:`verif.engine.StallPattern` of the run (None: full rate)."""
        self._write_json("stalls.json", None if stalls is None else stalls.as_dict())

    def read_stalls(self):
        from sparsecore.verif.engine import StallPattern

        info = self._read_json("stalls.json")
        return None if info is None else StallPattern(**info)

    # simulator -> host
    def write_progress(self, cycles, beats_taken, beats, results, n_results):
        self._write_json("progress.json", {"cycles": cycles, "beats_taken": beats_taken,
                                           "beats": beats, "results": results,
                                           "n_results": n_results})

    def read_progress(self):
        return self._read_json("progress.json")

    def write_results(self, words, cycles, seconds):
        width = max((w.bit_length() for w in words), default=1)
        np.save(self.folder / "results.npy", words_to_bytes(words, width))
        self._write_json("run.json", {"cycles": cycles, "seconds": seconds,
                                      "results": len(words)})

    def read_results(self):
        info = self._read_json("run.json")
        if info is None:
            return None
        return bytes_to_words(np.load(self.folder / "results.npy")), info

    def write_bare_loop(self, cycles, seconds):
        self._write_json("bare_loop.json", {"cycles": cycles, "seconds": seconds})

    def read_bare_loop(self):
        return self._read_json("bare_loop.json")

    def _write_json(self, name, obj):
        tmp = self.folder / f".{name}.tmp"
        tmp.write_text(json.dumps(obj))
        os.replace(tmp, self.folder / name)

    def _read_json(self, name):
        try:
            return json.loads((self.folder / name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None


# -- packing: beats <-> payload words, layouts from the manifest --------------------

def _weight_fields(config, beats):
    """The weights payload fields of :class:`sim.tiling.Beats` (or its weight rows)."""
    n = len(beats)

    def flag(bits):
        return bits.reshape(n, 1).astype(np.int64), BIT

    return {
        "values": (beats.values.reshape(n, -1), config.weight_format),
        "meta": (beats.meta.reshape(n, -1), META_FORMAT),
        "dense": flag(beats.dense), "last": flag(beats.last),
        "accumulate": flag(beats.accumulate),
    }


def _act_fields(config, acts):
    return {"": (acts.reshape(len(acts), -1), config.act_format)}


def pack_beats(manifest, config, beats):
    """(weights words, activations words) for :class:`sim.tiling.Beats`, one pair per beat."""
    return (PayloadCodec(manifest["streams"]["weights"]).pack(_weight_fields(config, beats)),
            PayloadCodec(manifest["streams"]["activations"]).pack(
                _act_fields(config, beats.acts)))


def pack_beat_words(manifest, config, beats):
    """:func:`pack_beats` as uint32 arrays, (beats, ceil(width/32)) each: the engine's form."""
    return (PayloadCodec(manifest["streams"]["weights"]).pack_words(
                _weight_fields(config, beats)),
            PayloadCodec(manifest["streams"]["activations"]).pack_words(
                _act_fields(config, beats.acts)))


def pack_table_words(manifest, config, tables):
    """The engine's inputs for :class:`sim.tiling.BeatTables`: ``(table words, runs)`` for
    the weights and for the activations; each operand beat is packed once, and the order
    is one run of rows per output tile (:func:`verif.engine.run_job`)."""
    weights = PayloadCodec(manifest["streams"]["weights"]).pack_words(
        _weight_fields(config, tables.weight_rows()))
    acts = PayloadCodec(manifest["streams"]["activations"]).pack_words(
        _act_fields(config, tables.acts))
    return (weights, tables.weight_runs), (acts, tables.act_runs)


def _unpack(codec, words, fmt):
    if isinstance(words, np.ndarray) and words.dtype == np.uint32 and words.ndim == 2:
        return codec.unpack_words(words, "", fmt)     # the engine's uint32 rows
    return codec.unpack(words, "", fmt)


def unpack_results(manifest, config, words):
    """(n, rows, cols) int64 results from the core's result words (ints or uint32 rows)."""
    flat = _unpack(PayloadCodec(manifest["streams"]["results"]), words,
                   acc_format(config.acc_bits))
    return flat.reshape(len(words), config.rows, config.cols)


def _per_row(name, values, m):
    arr = check_integer_array(values, name)
    if arr.shape != (m,):
        raise ValueError(f"{name} must have shape ({m},) (one per row of A), not {arr.shape}")
    return arr


def pack_params(manifest, config, tiled, mult, shift, bias, relu, words32=False):
    """``params`` words of a layer design, one per result tile of ``tiled``.

    ``mult``, ``shift``, ``bias``: one per row of A (output channel); rows past
    M get 0s (their codes are the format's 0 and are dropped by ``assemble``).
    ``relu``: one flag for every tile. Out-of-range values are refused by the
    packing (ValueError naming the field and the first index). ``words32``:
    uint32 rows (the engine's form) instead of ints.
    """
    g = tiled.geometry
    m = tiled.shape[0]
    padded = -(-m // g.rows) * g.rows
    rows = tiled.tile_origin[:, :1] + np.arange(g.rows)     # (tiles, rows) row of A
    fields = {}
    for name, values, fmt in (("bias", bias, acc_format(config.acc_bits)),
                              ("mult", mult, raw_format(config.mult_bits)),
                              ("shift", shift, raw_format(config.shift_bits))):
        per_row = np.zeros(padded, np.int64)
        per_row[:m] = _per_row(name, values, m)
        fields[name] = (per_row[rows], fmt)
    fields["relu"] = (np.full((len(rows), 1), int(bool(relu))), BIT)
    codec = PayloadCodec(manifest["streams"]["params"])
    return codec.pack_words(fields) if words32 else codec.pack(fields)


def pack_table(manifest, config, table, words32=False):
    """``table`` words of a layer design with a code table: one entry per word, every code
    of the ``out`` format in value order. The table is checked first (ValueError: wrong
    length or entries outside the table's format). ``words32``: uint32 rows (the
    engine's form) instead of ints."""
    from sparsecore.sim.code_table import check_table

    table = check_table(table, config.out, config.table)
    codes = np.arange(config.out_format.min, config.out_format.max + 1).reshape(-1, 1)
    codec = PayloadCodec(manifest["streams"]["table"])
    fields = {"index": (codes, config.out_format),
              "entry": (table.reshape(-1, 1), config.codes_format)}
    return codec.pack_words(fields) if words32 else codec.pack(fields)


def unpack_codes(manifest, config, words):
    """(n, rows, cols) int64 values of a layer's codes (the code table's entries when it
    has one, else the ``out`` format) from its code words."""
    flat = _unpack(PayloadCodec(manifest["streams"]["codes"]), words, config.codes_format)
    return flat.reshape(len(words), config.rows, config.cols)


# -- building ------------------------------------------------------------------------

def core_build_name(config, fst=False):
    """Build folder / module name of the core for ``config`` (the registry's), ``_fst`` for
    the FST-tracing build."""
    from sparsecore.hw.registry import build_name

    name = build_name(config)
    return f"{name}_fst" if fst else name


@lru_cache(maxsize=1)
def fst_supported():
    """True when the C++ compiler finds the headers Verilator's FST writer needs (lz4, zlib)."""
    cxx = os.environ.get("CXX", "c++")
    try:
        probe = subprocess.run([cxx, "-x", "c++", "-E", "-o", os.devnull, "-"],
                               input="#include <lz4.h>\n#include <zlib.h>\n", text=True,
                               capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def wave_formats():
    """Waveform file suffixes this machine can write: .vcd always, .fst with lz4 and zlib."""
    return (".vcd", ".fst") if fst_supported() else (".vcd",)


# -- running -------------------------------------------------------------------------

class _Progress:
    """Shows a long step's progress on stderr (one updating line on a terminal, else a
    line every PROGRESS_LOG_S); quiet for steps shorter than PROGRESS_AFTER_S."""

    def __init__(self, label, poll=None, enabled=True):
        self.label, self.poll, self.enabled = label, poll, enabled
        self._stop = threading.Event()
        self._thread = None
        self._shown = False
        self._tty = sys.stderr.isatty()

    def __enter__(self):
        self._start = time.monotonic()
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            if self._shown:
                elapsed = time.monotonic() - self._start
                self._show(f"{'stopped after' if exc[0] else 'done in'} {elapsed:.1f} s",
                           final=True)

    def _show(self, text, final=False):
        line = f"sparsecore: {self.label}: {text}"
        if self._tty:
            print(f"\r\033[K{line}", end="\n" if final else "", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)
        self._shown = True

    def _loop(self):
        if self._stop.wait(PROGRESS_AFTER_S):
            return
        while True:
            detail = self.poll() if self.poll else None
            elapsed = time.monotonic() - self._start
            self._show(f"{detail + ', ' if detail else ''}{elapsed:.0f} s")
            if self._stop.wait(PROGRESS_TTY_S if self._tty else PROGRESS_LOG_S):
                return


def _progress_note(job):
    def poll():
        note = job.read_progress()
        if not note:
            return "starting the simulator"
        pct = 100 * note["beats_taken"] / max(note["beats"], 1)
        return (f"{note['beats_taken']}/{note['beats']} beats ({pct:.0f} %), "
                f"{note['results']}/{note['n_results']} tiles, {note['cycles']} cycles")
    return poll


RUNNERS = ("engine", "cocotb")


def _check_runner(runner):
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {', '.join(RUNNERS)}, not {runner!r}")


def _engine_build(design, name, record, progress, root, what):
    """:func:`verif.engine.build_engine`; the first build of a configuration says so on
    stderr when it starts and when it is done, each on its own line."""
    from sparsecore.verif.engine import build_engine

    def starting():
        if progress:
            print(f"sparsecore: building the {what} {name} for the engine (once per "
                  "configuration, then cached)", file=sys.stderr, flush=True)

    built = build_engine(design, name, waves=record, root=root, on_compile=starting)
    if built.rebuilt and progress:
        print(f"sparsecore: built the {what} {name} in {built.build_seconds:.1f} s "
              f"(cached in {built.build_dir})", file=sys.stderr, flush=True)
    return built


def _engine_stream(built, inputs, outputs, stalls, vcd, label, progress, before=(), **job):
    """:func:`verif.engine.run_job` with the progress line (``job``: its other options)."""
    from sparsecore.verif.engine import run_job

    note = {}
    with _Progress(label, lambda: note.get("text", "starting the simulator"),
                   enabled=progress):
        return run_job(built, inputs, outputs, before=before, stalls=stalls, vcd=vcd,
                       progress=lambda text: note.__setitem__("text", text), **job)


def _wave_target(built, waves, kind):
    """Where a run's VCD goes: ``waves``, or the build's runs folder (SPARSECORE_WAVES=1)."""
    if waves is not None:
        return Path(waves)
    folder = built.build_dir / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{kind}-{os.getpid()}-{threading.get_ident()}.vcd"


@dataclass(frozen=True)
class GemmBatch:
    """What one :meth:`GemmEngine.run` gave: one simulator run of one or more GEMMs."""

    c: list                   # per GEMM: M x N int64
    tile_results: list        # per GEMM: (tiles, rows, cols) int64, every result beat
    cycles: int               # first beat offered .. last result taken, all GEMMs
    beats: int                # operand beats streamed, all GEMMs
    sim_seconds: float        # the simulator's own loop
    seconds: float            # end to end: the tiled GEMMs packed .. C in numpy


class GemmEngine:
    """The engine (:mod:`verif.engine`) of one core configuration: built once, then any
    number of GEMMs through it.

    ``GemmEngine(config)`` builds the engine for ``config`` (a
    :class:`hw.config.CoreConfig`), or finds it cached (:func:`verif.engine.build_engine`;
    with ``progress``, the first build of a configuration says so on stderr, on its
    own lines). ``waves``: a tracing build, for :meth:`run`'s ``vcd``. ``root``: the
    folder of build folders.

    :meth:`run` streams GEMMs tiled for this configuration
    (:func:`sim.tiling.tile_gemm`) through the core in one simulator run: several of
    them back to back pay one simulator start (the core keeps no state between
    tiles). ::

        engine = GemmEngine(config, progress=False)
        g = Geometry.of(config)
        batch = engine.run([tile_gemm(g, b1, a=a1), tile_gemm(g, b2, a=a2, dense=True)])
        c1, c2 = batch.c
    """

    def __init__(self, config, *, waves=False, progress=True, root=None):
        self.config, self.progress = config, progress
        self.geometry = Geometry.of(config)
        self.build = _engine_build(config, core_build_name(config), waves, progress, root,
                                   "core")

    @property
    def manifest(self):
        return self.build.manifest

    @property
    def latency(self):
        """The core's latency in cycles, from its manifest."""
        return self.build.manifest["latency"]

    def run(self, tiled, *, stalls=None, vcd=None, label=None):
        """One simulator run of ``tiled``: a :class:`sim.tiling.TiledGemm`, or a list of them
        (played in order). ``stalls``: a :class:`verif.engine.StallPattern`; ``vcd``: record
        the run there (a ``waves`` engine); ``label``: names the run in progress lines.

        Returns a :class:`GemmBatch` with each GEMM's C and result tiles; raises
        :class:`verif.engine.EngineFailed` (one line) when the run fails.
        """
        pieces = [tiled] if isinstance(tiled, TiledGemm) else list(tiled)
        if not pieces:
            raise ValueError("tiled must be a TiledGemm or a non-empty list of them")
        for piece in pieces:
            if not isinstance(piece, TiledGemm) or piece.geometry != self.geometry:
                raise ValueError(f"tiled: every GEMM must be tiled for {self.geometry}, "
                                 f"not {getattr(piece, 'geometry', type(piece).__name__)}")
        start = time.perf_counter()
        tables = (pieces[0].tables if len(pieces) == 1
                  else BeatTables.concat([p.tables for p in pieces]))
        weights, acts = pack_table_words(self.manifest, self.config, tables)
        tiles = [p.n_tiles for p in pieces]
        if label is None:
            modes = sorted({"dense" if p.dense else "sparse" for p in pieces})
            label = (f"{'/'.join(modes)} GEMM{'s' if len(pieces) > 1 else ''} on "
                     f"{self.build.name}")
        run = _engine_stream(self.build, {"weights": weights, "activations": acts},
                             {"results": sum(tiles)}, stalls, vcd, label, self.progress)
        results = unpack_results(self.manifest, self.config, run.outputs["results"])
        split = np.split(results, np.cumsum(tiles)[:-1])
        c = [assemble(p, r) for p, r in zip(pieces, split, strict=True)]
        return GemmBatch(c=c, tile_results=split, cycles=run.cycles, beats=len(tables),
                         sim_seconds=run.sim_seconds, seconds=time.perf_counter() - start)


def run_gemm(config, a=None, values=None, meta=None, b=None, dense=False, waves=None, *,
             k_parts=1, progress=True, bare_cycles=0, root=None, runner="engine",
             stalls=None):
    """C = A x B on the Verilated core for ``config`` (a :class:`hw.config.CoreConfig`).

    Arguments:
        a: A (M x K integer values): dense mode, or sparse mode if A is 2:4.
        values, meta: A compressed (sparse mode): M x 2*ceil(K/4) values, M x
            ceil(K/4) codes, any of the 16 codes.
        b: B (K x N integer values).
        dense: run in dense mode.
        waves: a path ending in .vcd (or .fst, see :func:`wave_formats`): record
            the run's waveform there and a GTKWave save file (.gtkw) beside it.
        k_parts: cut each output tile's K into this many accumulating tiles.
        progress: show progress on stderr for runs longer than a few seconds,
            and the first build of a configuration on its own line.
        bare_cycles: also time a reference loop of this many cycles on the same
            build: the engine's raw C++ loop (:func:`verif.engine.raw_loop`), or
            for the cocotb runner a clock-only cocotb loop (:mod:`sparsecore.bench.speed`).
        root: folder of build folders (default: :func:`verif.build.build_root`).
        runner: ``"engine"`` (default: the C++ driver of :mod:`verif.engine`,
            no per-cycle Python) or ``"cocotb"`` (:mod:`verif.gemm_tb`, per
            cycle in Python). Both give the same C and the same cycle count.
            An .fst waveform needs the cocotb runner (the engine writes VCD).
        stalls: a :class:`verif.engine.StallPattern`: seeded idle cycles on
            the input streams and backpressure on the results (default none).

    Operands are values, not bit codes; their ranges are checked by the packing
    (ValueError naming the first value out of range). Returns a :class:`GemmResult`;
    raises :class:`verif.build.SimulationFailed` when the core stalls or the
    simulator fails.
    """
    from sparsecore.verif.build import waves_requested

    _check_runner(runner)
    tiled = tile_gemm(Geometry.of(config), b, a=a, values=values, meta=meta, dense=dense,
                      k_parts=k_parts)
    fst = waves is not None and Path(waves).suffix == ".fst"
    if fst and not fst_supported():
        raise ValueError(f"waves: {waves}: FST needs the lz4 and zlib headers, which this "
                         "machine lacks; give a .vcd path")
    # SPARSECORE_WAVES=1 (the testbenches' rerun switch) records into the run folder.
    record = waves is not None or waves_requested()
    if runner == "engine" and not fst:
        return _run_gemm_engine(config, tiled, dense, waves, record, progress, bare_cycles,
                                root, stalls)
    return _run_gemm_cocotb(config, tiled, dense, waves, record, fst, progress, bare_cycles,
                            root, stalls)


def _run_gemm_engine(config, tiled, dense, waves, record, progress, bare_cycles, root,
                     stalls):
    from sparsecore.verif.engine import raw_loop

    engine = GemmEngine(config, waves=record, progress=progress, root=root)
    built = engine.build
    wave_path = _wave_target(built, waves, "gemm") if record else None
    mode = "dense" if dense else "sparse"
    batch = engine.run(tiled, stalls=stalls, vcd=wave_path, label=f"{mode} GEMM on {built.name}")
    gtkw_path = None
    if record:
        from sparsecore.verif.waves import write_gtkw
        gtkw_path = write_gtkw(wave_path, built.manifest)
        if waves is None:
            print(f"sparsecore: waves of this GEMM: {wave_path} (gtkwave {gtkw_path})",
                  file=sys.stderr)
    bare = None
    if bare_cycles:
        n, seconds = raw_loop(built, bare_cycles)
        bare = n / seconds
    return GemmResult(
        c=batch.c[0], cycles=batch.cycles, mode=mode, seconds=batch.sim_seconds, tiled=tiled,
        tile_results=batch.tile_results[0], build=built, waves=wave_path, gtkw=gtkw_path,
        bare_cycles_per_second=bare, runner="engine", job_seconds=batch.seconds)


def _run_gemm_cocotb(config, tiled, dense, waves, record, fst, progress, bare_cycles, root,
                     stalls):
    from sparsecore.verif.build import build

    name = core_build_name(config, fst=fst)
    with _Progress(f"building the core {name} (once per configuration)", enabled=progress):
        built = build(config, name, waves=record,
                      build_args=["--trace-fst"] if fst else [], root=root)
    manifest = built.manifest
    start = time.perf_counter()   # as the engine's: from the tiled GEMM, packing included
    weights, acts = pack_beats(manifest, config, tiled.beats)
    result, words, info, bare = _stream(built, tiled, weights, acts, None, dense, record,
                                        progress, bare_cycles, stalls)
    results = unpack_results(manifest, config, words)
    c = assemble(tiled, results)
    job_seconds = time.perf_counter() - start
    wave_path = gtkw_path = None
    run_dir = result.log.parent
    try:
        if record:
            dump = run_dir / ("dump.fst" if fst else "dump.vcd")
            wave_path = Path(waves) if waves is not None else dump
            if waves is not None:
                shutil.move(str(dump), wave_path)
            from sparsecore.verif.waves import verilog_names, write_gtkw
            gtkw_path = write_gtkw(wave_path, manifest, available=verilog_names(
                built.verilog.read_text()) if fst else None)
            if waves is None:
                print(f"sparsecore: waves of this GEMM: {wave_path} (gtkwave {gtkw_path})",
                      file=sys.stderr)
    finally:   # also when storing the waves failed (full disk): no run folder left behind
        if waves is not None or not record:
            shutil.rmtree(run_dir, ignore_errors=True)
    return GemmResult(
        c=c, cycles=int(info["cycles"]),
        mode="dense" if dense else "sparse", seconds=float(info["seconds"]), tiled=tiled,
        tile_results=results, build=built, waves=wave_path, gtkw=gtkw_path,
        bare_cycles_per_second=(bare["cycles"] / bare["seconds"]) if bare else None,
        runner="cocotb", job_seconds=job_seconds)


def _stream(built, tiled, weights, acts, params, dense, record, progress, bare_cycles=0,
            stalls=None, table=None):
    """Stream packed beats through ``built`` with :mod:`verif.gemm_tb` in a job folder.

    Returns (the run's RunResult, output words, run info, bare loop info or None).
    """
    from sparsecore.verif.build import run

    streams = built.manifest["streams"]
    with tempfile.TemporaryDirectory(prefix="sparsecore-gemm-") as folder:
        job = GemmJob(folder)
        job.write_beats(weights, acts, streams["weights"]["payload_width"],
                        streams["activations"]["payload_width"], tiled.n_tiles,
                        params, streams["params"]["payload_width"] if params else None,
                        table, streams["table"]["payload_width"] if table else None)
        job.write_stalls(stalls)
        cases = (["clock_loop"] if bare_cycles else []) + ["gemm"]
        env = {JOB_ENV: folder, BARE_CYCLES_ENV: str(bare_cycles)}
        run_name = f"gemm-{os.getpid()}-{threading.get_ident()}"
        try:
            with _Progress(f"{'dense' if dense else 'sparse'} GEMM on {built.name}",
                           _progress_note(job), enabled=progress):
                result = run(built, TB_MODULE, cases, extra_env=env, waves=record,
                             run_name=run_name)
        except KeyboardInterrupt:   # SIGINT/SIGTERM: no run folder left behind
            shutil.rmtree(built.build_dir / "runs" / run_name, ignore_errors=True)
            raise
        words, info = job.read_results()
        bare = job.read_bare_loop() if bare_cycles else None
    return result, words, info, bare


@dataclass(frozen=True)
class LayerResult:
    """What one layer run (:func:`run_layer`) gave."""

    out: np.ndarray           # M x N int64 values of the layer's ``out`` format
    cycles: int               # first beat offered .. last code beat taken
    mode: str                 # "sparse" or "dense"
    seconds: float            # wall time of the streaming loop in the simulator
    tiled: TiledGemm          # the beats that were streamed (sim.tiling)
    tile_codes: np.ndarray    # (tiles, rows, cols): every code beat, in order
    build: object             # the verif.build.BuildResult that ran

    @property
    def latency(self):
        """The layer design's latency, from its manifest."""
        return self.build.manifest["latency"]


def run_layer(config, a, b, mult, shift, bias, relu, dense=False, *, table=None,
              progress=True, root=None, runner="engine", stalls=None, waves=None):
    """One network layer on the Verilated :class:`hw.layer.SparseLayer` for ``config``
    (a :class:`hw.config.LayerConfig`): codes of ``requantize(A x B, mult, shift, bias)``.

    Arguments:
        a: A (M x K weight values): sparse mode needs A 2:4 (compressed with the
            canonical codes), unless ``dense``.
        b: B (K x N activation values).
        mult, shift, bias: one per row of A (output channel), the output stage's
            fields (``sim.requant``).
        relu: clamp negatives to 0 (every tile).
        table: for a layer with a code table (``config.table``), its entries in value
            order of the ``out`` codes (``sim.code_table``), written in full before the
            job's first beat, at full rate; those cycles are not counted in ``cycles``.
        runner, stalls: as for :func:`run_gemm` (the engine by default).
        waves: a .vcd path for the run's waveform (engine only).

    Out-of-range values are refused by the packing before the simulator starts.
    Returns a :class:`LayerResult`; raises :class:`verif.build.SimulationFailed`
    when the design stalls or the simulator fails.
    """
    from sparsecore.hw.layer import SparseLayer
    from sparsecore.sim.code_table import check_table
    from sparsecore.verif.build import build, waves_requested

    _check_runner(runner)
    if (table is None) != (config.table is None):
        raise ValueError("table must be given exactly when the layer has a code table "
                         f"(config.table={config.table!r})")
    if table is not None:
        check_table(table, config.out, config.table)   # before anything is built or run
    tiled = tile_gemm(Geometry.of(config), b, a=a, dense=dense)
    from sparsecore.hw.registry import build_name

    record = waves is not None or waves_requested()
    name = build_name(config)
    mode = "dense" if dense else "sparse"
    if runner == "engine":
        built = _engine_build(config, name, record, progress, root, "layer")
        manifest = built.manifest
        params = pack_params(manifest, config, tiled, mult, shift, bias, relu, words32=True)
        weights, acts = pack_table_words(manifest, config, tiled.tables)
        inputs = {"weights": weights, "activations": acts, "params": params}
        if table is not None:
            inputs["table"] = pack_table(manifest, config, table, words32=True)
        wave_path = _wave_target(built, waves, "layer") if record else None
        run = _engine_stream(built, inputs, {"codes": tiled.n_tiles}, stalls, wave_path,
                             f"{mode} layer on {built.name}", progress,
                             before=["table"] if table is not None else [])
        if record:
            from sparsecore.verif.waves import write_gtkw
            gtkw = write_gtkw(wave_path, manifest)
            if waves is None:
                print(f"sparsecore: waves of this layer: {wave_path} (gtkwave {gtkw})",
                      file=sys.stderr)
        words, cycles, seconds = run.outputs["codes"], run.cycles, run.sim_seconds
    else:
        if waves is not None:
            raise ValueError("waves: a layer's waveform path needs the engine runner; "
                             "the cocotb runner records with SPARSECORE_WAVES=1")
        with _Progress(f"building the layer {name} (once per configuration)",
                       enabled=progress):
            built = build(SparseLayer(config), name, waves=record, root=root)
        manifest = built.manifest
        params = pack_params(manifest, config, tiled, mult, shift, bias, relu)
        weights, acts = pack_beats(manifest, config, tiled.beats)
        table_words = None if table is None else pack_table(manifest, config, table)
        result, words, info, _ = _stream(built, tiled, weights, acts, params, dense, record,
                                         progress, stalls=stalls, table=table_words)
        if record:
            print(f"sparsecore: waves of this layer: {result.log.parent / 'dump.vcd'}",
                  file=sys.stderr)
        else:
            shutil.rmtree(result.log.parent, ignore_errors=True)
        cycles, seconds = int(info["cycles"]), float(info["seconds"])
    tile_codes = unpack_codes(manifest, config, words)
    return LayerResult(out=assemble(tiled, tile_codes), cycles=cycles, mode=mode,
                       seconds=seconds, tiled=tiled, tile_codes=tile_codes, build=built)
