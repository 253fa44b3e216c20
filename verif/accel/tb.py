"""Testbench of the accelerator (hw.accel.SparseAccelerator): sources, sinks, scoreboard, coverage.

Streams, all through :mod:`verif.streams` with random idle/stall patterns:
``cmd`` and ``load`` (sources), ``results`` and ``status`` (sinks, each watched
by a protocol checker). A job is a random GEMM, raw (accumulators out) or
``codes`` (the output stage's codes out, with random per-row bias, multiplier
and shift and a random ReLU flag), whose descriptor, load beats and expected
result beats all come from sim/ (:func:`sim.accel.load_stream`,
:func:`sim.accel.result_beats` of :func:`sim.accel.expected_c`); the expected
status is ``error`` with the model's refusal bits (``AccelJob.refusal``).
Every job's cycles (command transfer to last result transfer) are recorded
beside :func:`sim.accel_perf.predict_job`'s: with no idle and no stall they
must be equal.

Coverage (module-level :data:`COVERAGE`, written to ``accel_coverage.json`` in
the run folder for the pytest entry):

- ``descriptor``: sparse / dense accepted, raw / codes (with and without
  ReLU), each refusal reason, the largest that fit (``k_chunks == a_depth``, B
  exactly ``b_depth`` words, a codes job of ``p_depth`` stripes);
- ``buffers``: load held back because both stripe buffers are full, compute
  starved because a stripe was not loaded in time (a job slower than the model
  predicts with the load stream idle), one-stripe and many-stripe jobs;
- ``mode switches``: the previous accepted job's mode -> this one's, and its
  kind (raw / codes) -> this one's;
- ``stalls``: results and status each held by the sink, load idle while the
  accelerator would take a beat.
"""

import json
from pathlib import Path

import numpy as np

from sparsecore.sim.accel import expected_c, load_stream, result_beats
from sparsecore.sim.accel_perf import AccelGeometry, predict_job
from sparsecore.sim.formats import get_format
from sparsecore.sim.sparsity import prune_2to4
from sparsecore.verif.payload import PayloadCodec, raw_format
from sparsecore.verif.streams import Coverage, Idle
from sparsecore.verif.tb import TestBench

__all__ = ["AccelTB", "COVERAGE", "COVERAGE_FILE", "save_coverage"]

COVERAGE = Coverage()
COVERAGE_FILE = "accel_coverage.json"
REFUSALS = {1: "refused empty", 2: "refused A too big", 4: "refused B too big",
            6: "refused A and B too big", 8: "refused parameters too big"}
MODES = ("sparse", "dense")
KINDS = ("raw", "codes")


def define_coverage(coverage):
    coverage.define("descriptor", ["sparse", "dense", "raw", "codes", "codes with ReLU",
                                   *REFUSALS.values(), "largest A (k_chunks = a_depth)",
                                   "largest B (b_depth words)",
                                   "largest codes job (p_depth stripes)"])
    coverage.define("buffers", ["load held: both stripe buffers full",
                                "compute starved: stripe not loaded in time",
                                "one stripe", "many stripes"])
    coverage.define("mode switches", [f"{p} -> {m}" for p in MODES for m in MODES]
                    + [f"{p} -> {m}" for p in KINDS for m in KINDS])
    coverage.define("stalls", ["results held", "status held", "load idle"])


def save_coverage(path=COVERAGE_FILE):
    Path(path).write_text(json.dumps({"coverage": COVERAGE.groups}, indent=1))


class AccelTB(TestBench):
    """Command and load sources, result and status sinks with protocol checkers, two
    scoreboards (result beats, status beats), per-job cycle records."""

    def __init__(self, dut, name):
        super().__init__(dut, name)
        self.geometry = AccelGeometry.of(self.manifest)
        self.config = self.manifest["config"]
        streams = self.manifest["streams"]
        self.cmd_codec = PayloadCodec(streams["cmd"])
        self.status_codec = PayloadCodec(streams["status"])
        self.idle = {s: Idle(self.random()) for s in ("cmd", "load")}
        self.stall = {s: Idle(self.random()) for s in ("results", "status")}
        self.sources = {s: self.add_source(s, idle) for s, idle in self.idle.items()}
        self.sinks = {s: self.add_sink(s, stall) for s, stall in self.stall.items()}
        self.checkers = {s: self.add_checker(sink, probe_rate=0.02)
                         for s, sink in self.sinks.items()}
        self.results = self.add_scoreboard(lambda w: np.array([w]), self._describe,
                                           "result beats")
        self.status = self.add_scoreboard(self._decode_status, None, "status beats")
        self.jobs = []        # per submitted job: dict (job, mode, perf, cmd and load indices)
        self.beat_owner = []  # per expected result beat: (job index, tile, beat in tile)
        self.prev_mode = self.prev_kind = None
        self._watch = []
        define_coverage(COVERAGE)
        dut._log.info("%s", self.config)

    # -- traffic and reset ---------------------------------------------------------

    def traffic(self, idle=0.0, stall=0.0, burst=1):
        """Idle probability on cmd and load; backpressure on results and status."""
        for gen in self.idle.values():
            gen.probability, gen.burst = idle, burst
        for gen in self.stall.values():
            gen.probability, gen.burst = stall, burst

    def on_reset(self):
        self.jobs.clear()
        self.beat_owner.clear()
        self.prev_mode = self.prev_kind = None

    # -- stimulus --------------------------------------------------------------------

    def random_gemm(self, dense, m=None, n=None, k=None):
        """A (pruned to 2:4 in sparse mode) and B with random values over their formats."""
        cfg, g, rng = self.config, self.geometry, self.rng
        wf, af = get_format(cfg["weights"]), get_format(cfg["acts"])
        kb = g.core.k_per_beat(dense)
        m = m or int(rng.integers(1, 3 * g.rows + 1))
        n = n or int(rng.integers(1, 3 * g.cols + 1))
        k = k or int(rng.integers(1, g.a_depth * kb + 1))
        a = rng.integers(wf.min, wf.max + 1, (m, k))
        if not dense:
            a = prune_2to4(a)
        return a, rng.integers(af.min, af.max + 1, (k, n))

    def random_params(self, m):
        """(bias, mult, shift) for m output rows: biases near the results' scale, any
        multiplier, shifts that keep many codes inside the clip limits."""
        g, rng = self.geometry, self.rng
        return (rng.integers(-(1 << (g.acc_bits - 6)), 1 << (g.acc_bits - 6), m),
                rng.integers(0, 1 << g.mult_bits, m),
                rng.integers(max(0, g.mult_bits - 4), 1 << g.shift_bits, m))

    def submit(self, a, b, dense, params=None, relu=False):
        """Queue one GEMM: its command, load beats, expected results and status; with
        ``params`` (bias, mult, shift per row of A) a codes job."""
        g = self.geometry
        job, beats = load_stream(g, b, a=a, dense=dense, params=params, relu=relu)
        return self._queue(job, beats, expected_c(g, b, a=a, dense=dense), params)

    def submit_descriptor(self, job):
        """Queue a bare descriptor (a refused one: no load beats, no results)."""
        assert job.refusal(self.geometry), "a bare descriptor must be one the model refuses"
        return self._queue(job, [], None)

    def _queue(self, job, beats, c, params=None):
        g = self.geometry
        perf = predict_job(g, job)
        index = len(self.jobs)
        cmd = self.cmd_codec.pack({
            "m_tiles": (np.array([[job.m_tiles]]), _raw(self.cmd_codec, "m_tiles")),
            "n_tiles": (np.array([[job.n_tiles]]), _raw(self.cmd_codec, "n_tiles")),
            "k_chunks": (np.array([[job.k_chunks]]), _raw(self.cmd_codec, "k_chunks")),
            "dense": (np.array([[int(job.dense)]]), _raw(self.cmd_codec, "dense")),
            "codes": (np.array([[int(job.codes)]]), _raw(self.cmd_codec, "codes")),
            "relu": (np.array([[int(job.relu)]]), _raw(self.cmd_codec, "relu")),
        })
        mode = "dense" if job.dense else "sparse"
        kind = "codes" if job.codes else "raw"
        tile_beats = g.tile_beats(job.codes)
        expected = []
        if perf.refused:
            COVERAGE.hit("descriptor", REFUSALS[perf.refused])
        else:
            COVERAGE.hit("descriptor", mode)
            COVERAGE.hit("descriptor", kind)
            if job.codes and job.relu:
                COVERAGE.hit("descriptor", "codes with ReLU")
            if job.codes and job.m_tiles == g.p_depth:
                COVERAGE.hit("descriptor", "largest codes job (p_depth stripes)")
            if job.k_chunks == g.a_depth:
                COVERAGE.hit("descriptor", "largest A (k_chunks = a_depth)")
            if job.n_tiles * job.b_words == g.b_depth:
                COVERAGE.hit("descriptor", "largest B (b_depth words)")
            COVERAGE.hit("buffers", "one stripe" if job.m_tiles == 1 else "many stripes")
            if self.prev_mode is not None:
                COVERAGE.hit("mode switches", f"{self.prev_mode} -> {mode}")
            if self.prev_kind is not None:
                COVERAGE.hit("mode switches", f"{self.prev_kind} -> {kind}")
            self.prev_mode, self.prev_kind = mode, kind
            expected = result_beats(g, job, c, params)
            self.beat_owner += [(index, t // tile_beats, t % tile_beats)
                                for t in range(len(expected))]
        load_at = len(self.sources["load"].queue)
        b_beats = job.n_tiles * job.b_words * g.b_word_beats
        if job.codes:   # the parameter words come between B and A
            b_beats += job.m_tiles * g.p_word_beats
        self.jobs.append({"job": job, "perf": perf, "c": c, "mode": f"{mode} {kind}",
                          "cmd_at": len(self.sources["cmd"].queue),
                          "a_load": (load_at + b_beats, load_at + len(beats)),
                          "beats_at": len(self.results.expected) + self.results.checked,
                          "n_beats": len(expected)})
        self.sources["cmd"].send(cmd)
        self.sources["load"].send(beats)
        self.results.expect([np.array([w]) for w in expected])
        self.status.expect([np.array([int(perf.refused != 0), perf.refused])])
        return perf

    # -- checking ----------------------------------------------------------------------

    def _decode_status(self, word):
        f = self.status_codec.fields
        return np.array([(word >> f[n][0]) & ((1 << f[n][1]) - 1) for n in ("error", "reason")])

    def _describe(self, index, got, want, cycle):
        job_index, tile, beat = self.beat_owner[index]
        info = self.jobs[job_index]
        g, job = self.geometry, info["job"]
        width = 8 * g.out_bytes
        per_tile = g.rows * g.cols
        lane_bits = get_format(g.out).bits if job.codes else g.acc_bits
        diff = int(got[0]) ^ int(want[0])
        bit = tile_bit = beat * width + (diff & -diff).bit_length() - 1
        lane = tile_bit // lane_bits
        i, j = divmod(lane, g.cols) if lane < per_tile else (None, None)
        s, t = divmod(tile, job.n_tiles)
        where = (f"row {s * g.rows + i}, column {t * g.cols + j}" if i is not None
                 else "padding bits")
        return (f"job {job_index} ({info['mode']}, {job}) result beat {beat} of tile {tile} "
                f"(stripe {s}, tile column {t}) at cycle {cycle}: {where} (bit {bit}) "
                f"got {int(got[0]):#x}, expected {int(want[0]):#x}; seed {self.seed}")

    def on_cycle(self, cycle, transfers):
        load, cmd = self.sources["load"], self.sources["cmd"]
        current = [j for j in self.jobs if j["cmd_at"] == len(cmd.sent) - 1]
        if current and load.valid and not load.ports.ready.value:
            lo, hi = current[0]["a_load"]
            if lo <= load._next < hi:
                COVERAGE.hit("buffers", "load held: both stripe buffers full")
        if not load.valid and not load.done and load.ports.ready.value:
            COVERAGE.hit("stalls", "load idle")
        for s, label in (("results", "results held"), ("status", "status held")):
            if self.checkers[s].valid_now and not self.sinks[s].ready:
                COVERAGE.hit("stalls", label)

    async def drain(self, what):
        """Run until every command has its status, then check nothing more comes out;
        record each job's cycles next to the model's."""
        def done():
            self.results.check(self.sinks["results"].beats)
            self.status.check(self.sinks["status"].beats)
            return (all(s.done for s in self.sources.values()) and not self.status.expected
                    and not self.results.expected)

        budget = sum(j["perf"].cycles for j in self.jobs) * 20 + 2000
        self._watch = []
        await self.loop.run(self._watching(done), max_cycles=budget)
        # the longest pipeline, a codes tile's (core + output stage), then a margin
        for _ in range(self.geometry.tile_latency(codes=True) + 4):
            await self.loop.step()
        self.results.check(self.sinks["results"].beats)
        self.status.check(self.sinks["status"].beats)
        self.results.assert_drained()
        self.status.assert_drained()
        timings = self._timings()
        only_load_idle = not any(g.probability for g in self.stall.values())
        for info, cycles in zip(self.jobs, timings, strict=True):
            if only_load_idle and not info["perf"].refused and cycles > info["perf"].cycles:
                COVERAGE.hit("buffers", "compute starved: stripe not loaded in time")
        self.dut._log.info("%s: %d jobs, %d result beats match sim; cycles %s (model %s)",
                           what, len(self.jobs), self.results.checked, timings,
                           [j["perf"].cycles for j in self.jobs])
        self.timings = list(zip([j["perf"].cycles for j in self.jobs], timings, strict=True))
        self.jobs.clear()
        self.beat_owner.clear()
        self.results.clear()
        self.status.clear()
        return self.timings

    def _watching(self, done):
        """Wrap ``done`` so that each cycle's result and status transfers are timestamped."""
        def check():
            for s in ("results", "status"):
                for cycle, _ in self.sinks[s].beats:
                    self._watch.append((s, cycle))
            return done()
        return check

    def _timings(self):
        """Per job: cycles from its command's transfer to its last result transfer (or its
        status transfer, for a refused one)."""
        cmd_sent = self.sources["cmd"].sent[-len(self.jobs):]
        results = [c for s, c in self._watch if s == "results"]
        statuses = [c for s, c in self._watch if s == "status"]
        out, seen = [], 0
        for n, info in enumerate(self.jobs):
            if info["n_beats"]:
                seen += info["n_beats"]
                end = results[seen - 1]
            else:
                end = statuses[n]
            out.append(end - cmd_sent[n])
        return out


def _raw(codec, name):
    return raw_format(codec.fields[name][1])
