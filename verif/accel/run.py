"""Run GEMMs on the Verilated accelerator: the engine behind ``sparsecore gemm --accel``.

:func:`run_accel_gemm` plans C = A x B as one job per block of B's columns
that fits the B buffer (:func:`sim.accel.column_blocks`; one job when B fits
whole), lays out each job's load stream (:func:`sim.accel.load_stream`) and
command word, and plays the jobs back to back in one simulator run: on the
engine (:mod:`verif.engine`, the default: the C++ driver, no per-cycle Python;
``cmd`` and ``load`` are its input streams, ``results`` and ``status`` its
outputs) or on the cocotb player (:mod:`verif.accel.player`, ``runner="cocotb"``,
per cycle in Python, the same timing and stalls). It puts C together from the
result beats and checks every job's status.

``cycles`` counts clock edges from the edge that takes the first command to
the edge that takes the last result beat, every job included (SPEC §5); both
runners record the edge of every command and result beat. With no stalls (the
default) the load stream is always valid and results are always taken, so the
time is the accelerator's own under a load stream of ``load_bytes`` per cycle,
which :mod:`sim.accel_perf` predicts exactly. The cycle limit comes from that
model (:func:`cycle_limit`): the engine's default, made from beat counts, is
too short for a job whose compute outweighs its beats.
"""

import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsecore.sim.accel import (
    check_params,
    column_blocks,
    load_stream,
    operands,
    split_results,
)
from sparsecore.sim.accel_perf import JOB_GAP, AccelGeometry, predict_job
from sparsecore.verif.build import SimulationFailed
from sparsecore.verif.gemm import _check_runner, _engine_build, _engine_stream, _Progress
from sparsecore.verif.payload import (
    BIT,
    PayloadCodec,
    bytes_to_words,
    raw_format,
    words_to_bytes,
    words_to_words32,
)

__all__ = ["AccelResult", "AccelPlan", "run_accel_gemm", "plan_accel_gemm", "play_engine",
           "cycle_limit", "JOB_ENV", "JOB_GAP"]

JOB_ENV = "SPARSECORE_ACCEL_JOB"
PLAYER = "sparsecore.verif.accel.player"
_BUILT = {}   # (config, root, waves) -> the cocotb runner's BuildResult, this process's


@dataclass(frozen=True)
class AccelResult:
    """What one GEMM on the accelerator gave."""

    c: np.ndarray             # M x N int64
    cycles: int               # first command .. last result beat, every job
    mode: str
    jobs: list                # per job: (AccelJob, rtl cycles, model cycles)
    load_beats: int
    load_bytes: int           # bytes carried by the load stream (padding included)
    macs: int                 # M * N * K of the user's GEMM
    peak: int                 # MACs per cycle at full use in this mode
    seconds: float            # the simulator's own loop (reset .. last status)
    build: object
    waves: Path | None = None   # the run's VCD, when recorded
    gtkw: Path | None = None    # its GTKWave save file, beside it
    runner: str = "engine"
    sim_cycles: int = 0       # cycles the simulator ran in ``seconds`` (reset .. last status)

    @property
    def utilization(self):
        return self.macs / (self.cycles * self.peak)

    @property
    def model_cycles(self):
        """sim.accel_perf's figure for the same jobs played back to back."""
        return sum(m for _, _, m in self.jobs) + JOB_GAP * (len(self.jobs) - 1)

    @property
    def cycles_per_second(self):
        """The simulator's speed on this run."""
        return self.sim_cycles / max(self.seconds, 1e-9)


@dataclass(frozen=True)
class AccelPlan:
    """A GEMM's jobs for one accelerator build: what either runner plays."""

    geometry: AccelGeometry
    blocks: list              # per job: B's (and C's) columns (start, stop)
    jobs: list                # per job: its AccelJob
    commands: list            # per job: the command word (int)
    load: list                # every job's load beats, in order (ints of load_bytes)
    n_results: list           # per job: result beats
    perfs: list               # per job: sim.accel_perf's AccelPerf
    m: int
    k: int


def cycle_limit(perfs, stalls=None):
    """Cycles after which a run of the jobs with these :class:`AccelPerf` counts as stuck:
    four times the model's cycles plus a margin, slowed down by the stall rates."""
    base = 4 * sum(p.cycles for p in perfs) + 1000
    if stalls is not None:
        base /= (1 - stalls.idle) * (1 - stalls.backpressure)
    return int(base)


def plan_accel_gemm(manifest, b, a=None, values=None, meta=None, dense=False, *, params=None,
                    relu=False):
    """The :class:`AccelPlan` of C = A x B on the accelerator of ``manifest`` (its
    geometry, its ``cmd`` stream's layout): operands as :func:`run_accel_gemm` takes them."""
    geo = AccelGeometry.of(manifest)
    m, k, values, meta, a, b = operands(b, a=a, values=values, meta=meta, dense=dense)
    if params is not None:
        params = check_params(geo, params, m)
    blocks = column_blocks(geo, m, b.shape[1], k, dense=dense)
    codec = PayloadCodec(manifest["streams"]["cmd"])
    jobs, load, commands, n_results = [], [], [], []
    for lo, hi in blocks:
        job, job_beats = load_stream(geo, b[:, lo:hi], a=a if dense else None,
                                     values=None if dense else values,
                                     meta=None if dense else meta, dense=dense,
                                     params=params, relu=relu)
        jobs.append(job)
        load += job_beats
        commands.append(codec.pack({
            name: (np.array([[int(getattr(job, name))]]), raw_format(codec.fields[name][1]))
            for name in ("m_tiles", "n_tiles", "k_chunks", "dense", "codes", "relu")})[0])
        n_results.append(job.m_tiles * job.n_tiles * geo.tile_beats(job.codes))
    return AccelPlan(geo, blocks, jobs, commands, load, n_results,
                     [predict_job(geo, job) for job in jobs], m, k)


@dataclass(frozen=True)
class _Played:
    """What a runner gave back: every result beat, each job's status, the edges."""

    results: list             # result beats (ints)
    statuses: list            # one status word per job
    cmd_edges: list           # per job: the edge that took its command
    result_edges: list        # per result beat: the edge that took it
    sim_cycles: int
    seconds: float


def play_engine(built, plan, *, stalls=None, limit=None, vcd=None, progress=False,
                label=None):
    """Play ``plan`` (an :class:`AccelPlan`) on ``built`` (an accelerator's
    :class:`verif.engine.EngineBuild`) in one engine run: the commands and the load
    stream in, every result and status beat out, their edges recorded. ``limit``:
    default :func:`cycle_limit` of the plan. Raises :class:`verif.engine.EngineFailed`
    (one line) when the run does not finish in time or the beat counts disagree."""
    streams = built.manifest["streams"]
    inputs = {"cmd": words_to_words32(plan.commands, streams["cmd"]["payload_width"]),
              "load": words_to_words32(plan.load, streams["load"]["payload_width"])}
    outputs = {"results": sum(plan.n_results), "status": len(plan.jobs)}
    run = _engine_stream(built, inputs, outputs, stalls, vcd,
                         label or f"GEMM on {built.name}", progress,
                         limit=cycle_limit(plan.perfs, stalls) if limit is None else limit,
                         edges=("cmd", "results"))
    return _Played(bytes_to_words(run.outputs["results"]),
                   bytes_to_words(run.outputs["status"]), run.edges["cmd"].tolist(),
                   run.edges["results"].tolist(), run.cycles, run.sim_seconds)


def run_accel_gemm(config, b, a=None, values=None, meta=None, dense=False, *, params=None,
                   relu=False, progress=True, root=None, waves=None, runner="engine",
                   stalls=None):
    """C = A x B on the Verilated accelerator for ``config`` (an AccelConfig).

    Operands as :func:`verif.gemm.run_gemm` takes them (values, not codes; A 2:4
    or compressed in sparse mode). With ``params`` (bias, mult, shift: one per
    row of A) the jobs are ``codes`` jobs and ``c`` holds the output stage's
    codes (their values, ``relu`` applied) instead of the accumulators.
    ``waves``: a .vcd path: the run is recorded there (on a tracing build of its
    own) with a GTKWave save file beside it (``.gtkw``, the streams and the
    sequencer's state grouped), as the core's ``--waves``. ``runner``:
    ``"engine"`` (default, :mod:`verif.engine`) or ``"cocotb"``
    (:mod:`verif.accel.player`); both give the same C and the same cycles.
    ``stalls``: a :class:`verif.engine.StallPattern`, seeded idle cycles on
    ``cmd`` and ``load`` and backpressure on ``results`` and ``status`` (default
    none: the model's cycles).
    ValueError when K does not fit the buffers.
    Returns an :class:`AccelResult`; raises :class:`verif.build.SimulationFailed`
    (one line) when the accelerator hangs, refuses a job, or the simulator fails.
    """
    from sparsecore.hw.accel import model_record
    from sparsecore.hw.registry import build_name

    _check_runner(runner)
    m, k, values, meta, a, b = operands(b, a=a, values=values, meta=meta, dense=dense)
    draft = AccelGeometry.of(model_record(config))
    if params is not None:
        params = check_params(draft, params, m)
    # the config's own numbers refuse a K that does not fit before anything is built
    column_blocks(draft, m, b.shape[1], k, dense=dense)
    record = waves is not None
    if record and Path(waves).suffix != ".vcd":
        raise ValueError(f"waves: {waves}: the accelerator's waveform is a .vcd")
    name = build_name(config)
    mode = "dense" if dense else "sparse"
    operand_args = {"a": a if dense else None, "values": None if dense else values,
                    "meta": None if dense else meta, "dense": dense, "params": params,
                    "relu": relu}
    if runner == "engine":
        built = _engine_build(config, name, record, progress, root, "accelerator")
        plan = plan_accel_gemm(built.manifest, b, **operand_args)
        played = play_engine(built, plan, stalls=stalls, vcd=waves, progress=progress,
                             label=f"{mode} GEMM on {name}")
        gtkw = None
        if record:
            from sparsecore.verif.waves import write_gtkw
            gtkw = write_gtkw(waves, built.manifest)
    else:
        built, plan, played, gtkw = _run_cocotb(config, name, b, operand_args, stalls, waves,
                                                progress, root, mode)
    geo = plan.geometry
    status = PayloadCodec(built.manifest["streams"]["status"])
    errors = status.unpack(played.statuses, "error", BIT)[:, 0]
    if len(played.statuses) != len(plan.jobs) or errors.any():
        bad = int(np.argmax(errors)) if errors.any() else len(played.statuses)
        reason = "gave no status"
        if errors.any():
            bits = int(status.unpack([played.statuses[bad]], "reason",
                                     raw_format(status.fields["reason"][1]))[0, 0])
            reason = f"refused it (reason bits {bits:#x})"
        raise SimulationFailed(f"{name}: job {bad} of {len(plan.jobs)} ({plan.jobs[bad]}): "
                               f"the accelerator {reason}")
    parts, seen, last_edges = [], 0, []
    for (lo, hi), job, count in zip(plan.blocks, plan.jobs, plan.n_results, strict=True):
        parts.append(split_results(geo, job, played.results[seen:seen + count], plan.m,
                                   hi - lo))
        seen += count
        last_edges.append(played.result_edges[seen - 1])
    rtl = [end - cmd for end, cmd in zip(last_edges, played.cmd_edges, strict=True)]
    n_load = len(plan.load)
    return AccelResult(
        c=np.concatenate(parts, axis=1), cycles=last_edges[-1] - played.cmd_edges[0],
        mode=mode, jobs=[(job, r, p.cycles) for job, r, p in zip(plan.jobs, rtl, plan.perfs,
                                                                   strict=True)],
        load_beats=n_load, load_bytes=n_load * geo.load_bytes,
        macs=plan.m * b.shape[1] * plan.k, peak=plan.perfs[0].peak, seconds=played.seconds,
        build=built, waves=Path(waves) if record else None, gtkw=gtkw, runner=runner,
        sim_cycles=played.sim_cycles)


def _run_cocotb(config, name, b, operand_args, stalls, waves, progress, root, mode):
    """The cocotb player's run: (build, plan, _Played, .gtkw path or None)."""
    from sparsecore.verif.build import build, run

    record = waves is not None
    key = (config, str(root), record)
    built = _BUILT.get(key)
    if built is None:   # emitting the Verilog of large buffers takes seconds: once per process
        with _Progress(f"building the accelerator {name} (once per configuration)",
                       enabled=progress):
            built = _BUILT[key] = build(config, name, root=root, waves=record)
    plan = plan_accel_gemm(built.manifest, b, **operand_args)
    geo = plan.geometry
    with tempfile.TemporaryDirectory(prefix="sparsecore-accel-") as folder:
        folder = Path(folder)
        np.savez(folder / "load.npz", beats=words_to_bytes(plan.load, 8 * geo.load_bytes))
        (folder / "jobs.json").write_text(json.dumps(
            {"commands": plan.commands, "results": plan.n_results,
             "limit": cycle_limit(plan.perfs, stalls),
             "stalls": None if stalls is None else stalls.as_dict()}))

        def poll():
            try:
                note = json.loads((folder / "progress.json").read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                return "starting the simulator"
            return (f"{note['load']}/{note['loads']} load beats, {note['results']}/"
                    f"{note['n_results']} result beats, {note['cycles']} cycles")

        run_name = f"accel-{os.getpid()}-{threading.get_ident()}"
        try:
            with _Progress(f"{mode} GEMM on {name}", poll, enabled=progress):
                result = run(built, PLAYER, ["play"], extra_env={JOB_ENV: str(folder)},
                             run_name=run_name, waves=record)
        except KeyboardInterrupt:   # SIGINT/SIGTERM: no run folder left behind (as gemm)
            shutil.rmtree(built.build_dir / "runs" / run_name, ignore_errors=True)
            raise
        info = json.loads((folder / "run.json").read_text())
        words = bytes_to_words(np.load(folder / "results.npy"))
    gtkw = None
    try:
        if record:
            from sparsecore.verif.waves import write_gtkw
            shutil.move(str(result.log.parent / "dump.vcd"), waves)
            gtkw = write_gtkw(waves, built.manifest)
    finally:   # also when storing the waves failed (full disk): no run folder left behind
        shutil.rmtree(result.log.parent, ignore_errors=True)
    if info["loads_taken"] != len(plan.load):
        raise SimulationFailed(f"{name}: every job finished after {info['loads_taken']} of "
                               f"{len(plan.load)} load beats")
    return built, plan, _Played(words, info["statuses"], info["cmd_edges"],
                                info["result_edges"], info["cycles"], info["seconds"]), gtkw
