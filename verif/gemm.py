"""Run a whole GEMM on the Verilated tensor core: the engine behind ``sparsecore gemm``.

:func:`run_gemm` tiles C = A x B with :func:`sim.tiling.tile_gemm`, packs the
beats into the core's payload words (:class:`verif.streams.PayloadCodec`, by
the manifest's layouts), builds the core for the configuration once
(:func:`verif.build.build` caches it: a second run with the same
configuration does not rebuild), streams the beats through it with the cocotb
module :mod:`verif.gemm_tb`, and puts C back together from the result beats.

``cycles`` counts clock edges from the first beat offered (valid raised after
reset) to the edge at which the last result beat is taken; results are always
accepted (no backpressure), so it is the core's own time for the GEMM.

The host and the simulator exchange files in a job folder (:class:`GemmJob`):
operands in, results and cycle counts out, plus a progress note that the host
shows on stderr during long runs.

:func:`run_layer` is the same run on a network layer in hardware
(:class:`hw.layer.SparseLayer`: the core with the output stage after it): the
same beats, plus one ``params`` beat per result tile (each tile row's bias,
multiplier and shift, and the ReLU flag), and activation codes back instead
of accumulators. Its ``cycles`` run to the last code beat taken, so they
include the output stage's latency once per GEMM.
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
from sparsecore.sim.tiling import Geometry, TiledGemm, assemble, explain_mismatch, tile_gemm
from sparsecore.verif.payload import BIT, PayloadCodec, bytes_to_words, raw_format, words_to_bytes

__all__ = ["GemmResult", "GemmJob", "LayerResult", "run_gemm", "run_layer", "core_build_name",
           "pack_beats", "pack_params", "unpack_results", "unpack_codes",
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
    bare_cycles_per_second: float | None = None   # the clock-only loop, when asked for

    @property
    def macs(self):
        """M * N * K of the user's GEMM."""
        return self.tiled.macs

    @property
    def beats(self):
        return len(self.tiled.beats)

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
            per_output = len(self.tiled.beats) // int(self.tiled.final.sum())
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
                    params_width=None):
        """The input words; ``params`` (one word per result) only for a layer design."""
        extra = {} if params is None else {"params": words_to_bytes(params, params_width)}
        np.savez(self.folder / "beats.npz", weights=words_to_bytes(weights, weights_width),
                 acts=words_to_bytes(acts, acts_width), n_results=n_results, **extra)

    def read_beats(self):
        """(weights words, activation words, params words or None, number of results)."""
        with np.load(self.folder / "beats.npz") as f:
            params = bytes_to_words(f["params"]) if "params" in f.files else None
            return (bytes_to_words(f["weights"]), bytes_to_words(f["acts"]), params,
                    int(f["n_results"]))

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

def pack_beats(manifest, config, beats):
    """(weights words, activations words) for :class:`sim.tiling.Beats`, one pair per beat."""
    n = len(beats)

    def flag(bits):
        return bits.reshape(n, 1).astype(np.int64), BIT

    weights = PayloadCodec(manifest["streams"]["weights"]).pack({
        "values": (beats.values.reshape(n, -1), config.weight_format),
        "meta": (beats.meta.reshape(n, -1), META_FORMAT),
        "dense": flag(beats.dense), "last": flag(beats.last),
        "accumulate": flag(beats.accumulate),
    })
    acts = PayloadCodec(manifest["streams"]["activations"]).pack(
        {"": (beats.acts.reshape(n, -1), config.act_format)})
    return weights, acts


def unpack_results(manifest, config, words):
    """(n, rows, cols) int64 results from the core's result words."""
    flat = PayloadCodec(manifest["streams"]["results"]).unpack(
        words, "", acc_format(config.acc_bits))
    return flat.reshape(len(words), config.rows, config.cols)


def _per_row(name, values, m):
    arr = check_integer_array(values, name)
    if arr.shape != (m,):
        raise ValueError(f"{name} must have shape ({m},) (one per row of A), not {arr.shape}")
    return arr


def pack_params(manifest, config, tiled, mult, shift, bias, relu):
    """``params`` words of a layer design, one per result tile of ``tiled``.

    ``mult``, ``shift``, ``bias``: one per row of A (output channel); rows past
    M get 0s (their codes are the format's 0 and are dropped by ``assemble``).
    ``relu``: one flag for every tile. Out-of-range values are refused by the
    packing (ValueError naming the field and the first index).
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
    return PayloadCodec(manifest["streams"]["params"]).pack(fields)


def unpack_codes(manifest, config, words):
    """(n, rows, cols) int64 values of the ``out`` format from a layer's code words."""
    flat = PayloadCodec(manifest["streams"]["codes"]).unpack(words, "", config.out_format)
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
                self._show(f"done in {time.monotonic() - self._start:.1f} s", final=True)

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


def run_gemm(config, a=None, values=None, meta=None, b=None, dense=False, waves=None, *,
             k_parts=1, progress=True, bare_cycles=0, root=None):
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
        progress: show progress on stderr for runs longer than a few seconds.
        bare_cycles: also time a clock-only loop of this many cycles in the same
            simulator run (the speed ceiling, see :mod:`sparsecore.bench.speed`).
        root: folder of build folders (default: :func:`verif.build.build_root`).

    Operands are values, not bit codes; their ranges are checked by the packing
    (ValueError naming the first value out of range). Returns a :class:`GemmResult`;
    raises :class:`verif.build.SimulationFailed` when the core stalls or the
    simulator fails.
    """
    from sparsecore.verif.build import build, waves_requested

    tiled = tile_gemm(Geometry.of(config), b, a=a, values=values, meta=meta, dense=dense,
                      k_parts=k_parts)
    fst = waves is not None and Path(waves).suffix == ".fst"
    if fst and not fst_supported():
        raise ValueError(f"waves: {waves}: FST needs the lz4 and zlib headers, which this "
                         "machine lacks; give a .vcd path")
    # SPARSECORE_WAVES=1 (the testbenches' rerun switch) records into the run folder.
    record = waves is not None or waves_requested()
    name = core_build_name(config, fst=fst)
    with _Progress(f"building the core {name} (once per configuration)", enabled=progress):
        built = build(config, name, waves=record,
                      build_args=["--trace-fst"] if fst else [], root=root)
    manifest = built.manifest
    weights, acts = pack_beats(manifest, config, tiled.beats)
    result, words, info, bare = _stream(built, tiled, weights, acts, None, dense, record,
                                        progress, bare_cycles)
    results = unpack_results(manifest, config, words)
    wave_path = gtkw_path = None
    run_dir = result.log.parent
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
    if waves is not None or not record:
        shutil.rmtree(run_dir, ignore_errors=True)
    return GemmResult(
        c=assemble(tiled, results), cycles=int(info["cycles"]),
        mode="dense" if dense else "sparse", seconds=float(info["seconds"]), tiled=tiled,
        tile_results=results, build=built, waves=wave_path, gtkw=gtkw_path,
        bare_cycles_per_second=(bare["cycles"] / bare["seconds"]) if bare else None)


def _stream(built, tiled, weights, acts, params, dense, record, progress, bare_cycles=0):
    """Stream packed beats through ``built`` with :mod:`verif.gemm_tb` in a job folder.

    Returns (the run's RunResult, output words, run info, bare loop info or None).
    """
    from sparsecore.verif.build import run

    streams = built.manifest["streams"]
    with tempfile.TemporaryDirectory(prefix="sparsecore-gemm-") as folder:
        job = GemmJob(folder)
        job.write_beats(weights, acts, streams["weights"]["payload_width"],
                        streams["activations"]["payload_width"], tiled.beats.n_tiles,
                        params, streams["params"]["payload_width"] if params else None)
        cases = (["clock_loop"] if bare_cycles else []) + ["gemm"]
        env = {JOB_ENV: folder, BARE_CYCLES_ENV: str(bare_cycles)}
        with _Progress(f"{'dense' if dense else 'sparse'} GEMM on {built.name}",
                       _progress_note(job), enabled=progress):
            result = run(built, TB_MODULE, cases, extra_env=env, waves=record,
                         run_name=f"gemm-{os.getpid()}-{threading.get_ident()}")
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


def run_layer(config, a, b, mult, shift, bias, relu, dense=False, *, progress=True,
              root=None):
    """One network layer on the Verilated :class:`hw.layer.SparseLayer` for ``config``
    (a :class:`hw.config.LayerConfig`): codes of ``requantize(A x B, mult, shift, bias)``.

    Arguments:
        a: A (M x K weight values): sparse mode needs A 2:4 (compressed with the
            canonical codes), unless ``dense``.
        b: B (K x N activation values).
        mult, shift, bias: one per row of A (output channel), the output stage's
            fields (``sim.requant``).
        relu: clamp negatives to 0 (every tile).

    Out-of-range values are refused by the packing before the simulator starts.
    Returns a :class:`LayerResult`; raises :class:`verif.build.SimulationFailed`
    when the design stalls or the simulator fails.
    """
    from sparsecore.hw.layer import SparseLayer
    from sparsecore.verif.build import build, waves_requested

    tiled = tile_gemm(Geometry.of(config), b, a=a, dense=dense)
    record = waves_requested()
    from sparsecore.hw.registry import build_name

    name = build_name(config)
    with _Progress(f"building the layer {name} (once per configuration)", enabled=progress):
        built = build(SparseLayer(config), name, waves=record, root=root)
    manifest = built.manifest
    params = pack_params(manifest, config, tiled, mult, shift, bias, relu)
    weights, acts = pack_beats(manifest, config, tiled.beats)
    result, words, info, _ = _stream(built, tiled, weights, acts, params, dense, record,
                                     progress)
    if record:
        print(f"sparsecore: waves of this layer: {result.log.parent / 'dump.vcd'}",
              file=sys.stderr)
    else:
        shutil.rmtree(result.log.parent, ignore_errors=True)
    tile_codes = unpack_codes(manifest, config, words)
    return LayerResult(out=assemble(tiled, tile_codes), cycles=int(info["cycles"]),
                       mode="dense" if dense else "sparse", seconds=float(info["seconds"]),
                       tiled=tiled, tile_codes=tile_codes, build=built)
