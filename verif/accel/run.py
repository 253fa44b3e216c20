"""Run GEMMs on the Verilated accelerator: the engine behind ``sparsecore gemm --accel``.

:func:`run_accel_gemm` plans C = A x B as one job per block of B's columns
that fits the B buffer (:func:`sim.accel.column_blocks`; one job when B fits
whole), lays out each job's load stream (:func:`sim.accel.load_stream`), builds
the accelerator for the configuration once (:func:`verif.build.build` caches
it), plays the jobs back to back with the cocotb module
:mod:`verif.accel.player` and puts C together from the result beats.

``cycles`` counts clock edges from the edge that takes the first command to
the edge that takes the last result beat, every job included (SPEC §5). The
load stream is always valid and results are always taken, so the time is the
accelerator's own under a load stream of ``load_bytes`` per cycle.
"""

import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsecore.sim.accel import column_blocks, load_stream, operands, split_results
from sparsecore.sim.accel_perf import JOB_GAP, AccelGeometry, predict_job
from sparsecore.verif.gemm import _Progress
from sparsecore.verif.payload import PayloadCodec, bytes_to_words, raw_format, words_to_bytes

__all__ = ["AccelResult", "run_accel_gemm", "JOB_ENV", "JOB_GAP"]

JOB_ENV = "SPARSECORE_ACCEL_JOB"
PLAYER = "sparsecore.verif.accel.player"
_BUILT = {}   # (config, root) -> BuildResult, this process's builds


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
    seconds: float
    build: object

    @property
    def utilization(self):
        return self.macs / (self.cycles * self.peak)

    @property
    def model_cycles(self):
        """sim.accel_perf's figure for the same jobs played back to back."""
        return sum(m for _, _, m in self.jobs) + JOB_GAP * (len(self.jobs) - 1)


def geometry_of(manifest):
    return AccelGeometry.of(manifest)


def run_accel_gemm(config, b, a=None, values=None, meta=None, dense=False, *, progress=True,
                   root=None):
    """C = A x B on the Verilated accelerator for ``config`` (an AccelConfig).

    Operands as :func:`verif.gemm.run_gemm` takes them (values, not codes; A 2:4
    or compressed in sparse mode). ValueError when K does not fit the buffers.
    Returns an :class:`AccelResult`; raises :class:`verif.build.SimulationFailed`
    when the accelerator hangs or the simulator fails.
    """
    from sparsecore.hw.registry import build_name
    from sparsecore.verif.build import build, run

    m, k, values, meta, a, b = operands(b, a=a, values=values, meta=meta, dense=dense)
    n = b.shape[1]
    # plan with the config's own numbers before building; the manifest's are checked below
    draft = AccelGeometry(**{f: getattr(config, f) for f in AccelGeometry.FIELDS}, latency=0)
    blocks = column_blocks(draft, m, n, k, dense=dense)
    name = build_name(config)
    key = (config, str(root))
    built = _BUILT.get(key)
    if built is None:   # emitting the Verilog of large buffers takes seconds: once per process
        with _Progress(f"building the accelerator {name} (once per configuration)",
                       enabled=progress):
            built = _BUILT[key] = build(config, name, root=root)
    geo = geometry_of(built.manifest)
    codec = PayloadCodec(built.manifest["streams"]["cmd"])
    jobs, beats, commands, n_results = [], [], [], []
    for lo, hi in blocks:
        job, job_beats = load_stream(geo, b[:, lo:hi], a=a if dense else None,
                                     values=None if dense else values,
                                     meta=None if dense else meta, dense=dense)
        jobs.append(job)
        beats += job_beats
        commands.append(codec.pack({
            name: (np.array([[int(getattr(job, name))]]), raw_format(codec.fields[name][1]))
            for name in ("m_tiles", "n_tiles", "k_chunks", "dense")})[0])
        n_results.append(job.m_tiles * job.n_tiles * geo.out_beats)
    perfs = [predict_job(geo, job) for job in jobs]
    with tempfile.TemporaryDirectory(prefix="sparsecore-accel-") as folder:
        folder = Path(folder)
        np.savez(folder / "load.npz", beats=words_to_bytes(beats, 8 * geo.load_bytes))
        limit = 4 * sum(p.cycles for p in perfs) + 1000
        (folder / "jobs.json").write_text(json.dumps(
            {"commands": commands, "results": n_results, "limit": limit}))

        def poll():
            try:
                note = json.loads((folder / "progress.json").read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                return "starting the simulator"
            return (f"{note['load']}/{note['loads']} load beats, {note['results']}/"
                    f"{note['n_results']} result beats, {note['cycles']} cycles")

        run_name = f"accel-{os.getpid()}-{threading.get_ident()}"
        try:
            with _Progress(f"{'dense' if dense else 'sparse'} GEMM on {name}", poll,
                           enabled=progress):
                result = run(built, PLAYER, ["play"], extra_env={JOB_ENV: str(folder)},
                             run_name=run_name)
        except KeyboardInterrupt:   # SIGINT/SIGTERM: no run folder left behind (as gemm)
            shutil.rmtree(built.build_dir / "runs" / run_name, ignore_errors=True)
            raise
        info = json.loads((folder / "run.json").read_text())
        words = bytes_to_words(np.load(folder / "results.npy"))
    shutil.rmtree(result.log.parent, ignore_errors=True)
    parts, seen = [], 0
    for (lo, hi), job, count in zip(blocks, jobs, n_results, strict=True):
        parts.append(split_results(geo, job, words[seen:seen + count], m, hi - lo))
        seen += count
    rtl = [end - cmd for end, cmd in zip(info["last_result_edges"], info["cmd_edges"],
                                         strict=True)]
    return AccelResult(
        c=np.concatenate(parts, axis=1), cycles=info["last_result_edges"][-1]
        - info["cmd_edges"][0], mode="dense" if dense else "sparse",
        jobs=[(job, r, p.cycles) for job, r, p in zip(jobs, rtl, perfs, strict=True)],
        load_beats=info["loads_taken"], load_bytes=info["loads_taken"] * geo.load_bytes,
        macs=m * n * k, peak=perfs[0].peak, seconds=info["seconds"], build=built)
