"""The TB class of the 2:4 sparse tensor core (cocotb): drivers, monitor, scoreboard, coverage.

Beats come from :mod:`sim.tiling` (plain values); the TB packs them into the
ports by the manifest's field offsets, drives them with random idle cycles,
takes results with random backpressure, checks the stream protocol, and
compares every result beat with :func:`sim.tiling.expected_results`.

Coverage (module-level :data:`COVERAGE`, accumulated over every test of a
simulator run and written to ``core_coverage.json`` in the run folder):

- ``codes x lanes``: every (row, group, code) seen in an accepted sparse beat
  with both kept values nonzero (each bin drives the 2*cols product lanes of
  that row and group through that multiplexer setting);
- ``format extremes``: a product of (weight min|max) x (activation min|max)
  computed, in each mode;
- ``stall patterns``: one input waiting for the other, both idle, inputs held
  by the core (results backpressure reaching the inputs), results stalled for
  1, 2..latency and more than latency cycles, results on consecutive cycles,
  full-rate input runs of at least 32 beats;
- ``mode switches``: (previous tile's mode -> tile's mode) x (start fresh |
  accumulate), and mode changes with no idle cycle between the tiles.
"""

import json
import os
from pathlib import Path

import numpy as np

from sparsecore.sim.formats import get_format
from sparsecore.sim.gemm import acc_format
from sparsecore.sim.sparsity import META_FORMAT
from sparsecore.sim.tiling import Beats, Geometry, expected_results, explain_mismatch
from sparsecore.verif.payload import BIT, PayloadCodec, raw_format
from sparsecore.verif.streams import Coverage, Idle
from sparsecore.verif.tb import TestBench

__all__ = ["CoreTB", "COVERAGE", "STATS", "COVERAGE_FILE", "define_coverage"]

COVERAGE = Coverage()
STATS = {"mac_checks": 0, "tiles_checked": 0, "beats": 0, "cycles": 0}
COVERAGE_FILE = "core_coverage.json"
MACS_ENV = "SPARSECORE_CORE_MACS"   # random MAC checks of test_random_tiles
DEFAULT_MACS = 120_000


def mac_target():
    """The random MAC checks test_random_tiles does: SPARSECORE_CORE_MACS, else 120000."""
    return int(os.environ.get(MACS_ENV, DEFAULT_MACS))
SUMMARY = {}   # pytest side: config name -> {"stats", "coverage", "seed", "build_s", "run_s"}
MODES = ("sparse", "dense")
STALL_BINS = ("weights wait for activations", "activations wait for weights",
              "both inputs idle", "inputs held by core", "results stalled 1",
              "results stalled 2..latency", "results stalled > latency",
              "results back to back", "full-rate run >= 32 beats")


def define_coverage(coverage, geometry):
    """Create every bin for a core of this geometry (so missing bins show as zero)."""
    g = geometry
    coverage.define("codes x lanes", [f"row{i} group{k} code{c:04b}" for i in range(g.rows)
                                      for k in range(g.groups) for c in range(16)])
    coverage.define("format extremes", [f"{m} w{w} x a{a}" for m in MODES
                                        for w in ("min", "max") for a in ("min", "max")])
    coverage.define("stall patterns", STALL_BINS)
    coverage.define("mode switches", [f"{p} -> {m} {'accumulate' if acc else 'fresh'}"
                                      for p in MODES for m in MODES for acc in (0, 1)]
                    + ["sparse -> dense no bubble", "dense -> sparse no bubble"])


class CoreTB(TestBench):
    """Drives one SparseTensorCore under cocotb.

    Arguments:
        dut: the cocotb handle of the top module.
        name: the test's name (seeds the TB's random streams).
    """

    def __init__(self, dut, name):
        super().__init__(dut, name)
        config = self.manifest["config"]
        self.geometry = Geometry.of(config)
        self.wf = get_format(config["weights"], "weights")
        self.af = get_format(config["acts"], "acts")
        self.rf = acc_format(config["acc_bits"])
        streams = self.manifest["streams"]
        self.w_codec = PayloadCodec(streams["weights"])
        self.a_codec = PayloadCodec(streams["activations"])
        self.r_codec = PayloadCodec(streams["results"])
        self.in_idle = [Idle(self.random()), Idle(self.random())]
        self.out_stall = Idle(self.random())
        self.weights = self.add_source("weights", self.in_idle[0])
        self.acts = self.add_source("activations", self.in_idle[1])
        self.results = self.add_sink("results", self.out_stall)
        self.checker = self.add_checker(self.results, probe_rate=0.03)
        self.scoreboard = self.add_scoreboard(self._decode, self._describe)
        define_coverage(COVERAGE, self.geometry)
        self._stall_run = 0
        self._full_rate_run = 0
        self._last_result_cycle = None
        self.result_cycles = []     # cycle of each checked result beat
        self.on_reset()

    def on_reset(self):
        """Count what was accepted before the reset, then forget what was in flight."""
        if hasattr(self, "_history"):
            self._cover_accepted()
        self._history = []          # Beats submitted since reset
        self._accepted = 0          # beats accepted since reset
        self._covered = 0           # beats already counted for coverage
        self._accept_cycles = []    # cycle of each accepted beat since reset
        self._previous = None       # last expected tile result (accumulate chains)
        self._tiles_submitted = 0
        self._tile_k = []           # K of each submitted tile since reset

    def traffic(self, in_idle=0.0, out_stall=0.0, burst=1):
        """Random idle cycles on each input and backpressure on results (probabilities)."""
        for idle in self.in_idle:
            idle.probability, idle.burst = in_idle, burst
        self.out_stall.probability, self.out_stall.burst = out_stall, burst

    # -- traffic ---------------------------------------------------------------------

    def pack(self, beats, reserved=0.0):
        """(weights words, activation words) for ``beats``.

        Fields the core must ignore get random junk: meta and activation rows
        2G.. of dense beats. ``reserved``: for ternary weights, the fraction of
        zero values sent as the reserved code 0b10 (which must add nothing).
        """
        g, n = self.geometry, len(beats)
        meta, acts = beats.meta.copy(), beats.acts.copy()
        dense = beats.dense
        meta[dense] = self.rng.integers(0, 16, size=meta[dense].shape)
        acts[dense, g.k_dense:] = self.rng.integers(
            self.af.min, self.af.max + 1, size=acts[dense, g.k_dense:].shape)
        flags = {f: (getattr(beats, f).astype(np.int64)[:, None], BIT)
                 for f in ("dense", "last", "accumulate")}
        w_words = self.w_codec.pack({
            "values": (beats.values.reshape(n, -1), self.wf),
            "meta": (meta.reshape(n, -1), META_FORMAT), **flags})
        if reserved and self.wf.name == "ternary":
            zero = beats.values.reshape(n, -1) == 0
            swap = zero & (self.rng.random(zero.shape) < reserved)
            extra = self.w_codec.pack({"values": (swap * 0b10, raw_format(2))})
            w_words = [w | e for w, e in zip(w_words, extra, strict=True)]
        a_words = self.a_codec.pack({"": (acts.reshape(n, -1), self.af)})
        return w_words, a_words

    def submit(self, beats, reserved=0.0):
        """Queue ``beats`` (a :class:`sim.tiling.Beats`) and their expected results."""
        if not len(beats):
            return
        w_words, a_words = self.pack(beats, reserved)
        self.weights.send(w_words)
        self.acts.send(a_words)
        expected = expected_results(beats, self.geometry, self._previous)
        if len(expected):
            self._previous = expected[-1]
        self.scoreboard.expect(list(expected))
        self._history.append(beats)
        k = beats.k_of_beat(self.geometry)
        ends = np.flatnonzero(beats.last) + 1
        starts = np.concatenate([[0], ends[:-1]])
        self._tile_k += [int(k[s:e].sum()) for s, e in zip(starts, ends, strict=True)]
        self._tiles_submitted += len(expected)

    async def drain(self, max_cycles=None):
        """Run until every queued beat went in and every expected result came out;
        then a few more cycles (no extra beat may come), check, and record coverage."""
        waiting = len(self.scoreboard.expected)
        pending = len(self.weights.queue) - self.weights._next
        if max_cycles is None:
            slow = 1 + 20 * max(self.in_idle[0].probability * self.in_idle[0].burst,
                                self.out_stall.probability * self.out_stall.burst)
            max_cycles = int((pending + waiting * (self.latency + 2)) * slow) + 1000
        start = self.loop.cycle
        await self.loop.run(lambda: self.weights.done and self.acts.done
                            and len(self.results.beats) >= waiting, max_cycles)
        for _ in range(self.latency + 3):
            await self.loop.step()
        self.result_cycles += [c for c, _ in self.results.beats]
        first = self.scoreboard.checked
        self.scoreboard.check(self.results.beats)
        self.scoreboard.assert_drained()
        g = self.geometry
        checked_k = self._tile_k[first:self.scoreboard.checked]
        STATS["mac_checks"] += sum(checked_k) * g.rows * g.cols
        STATS["tiles_checked"] += len(checked_k)
        STATS["cycles"] += self.loop.cycle - start
        self._cover_accepted()
        save_coverage()

    async def run_until_accepted(self, n_beats, max_cycles=100000):
        """Step until ``n_beats`` beats in total were accepted since reset."""
        await self.loop.run(lambda: self._accepted >= n_beats, max_cycles)

    async def run_cycles(self, n):
        for _ in range(n):
            await self.loop.step()

    @property
    def accepted(self):
        """Beats accepted since reset."""
        return self._accepted

    @property
    def accept_cycles(self):
        """Cycle of each beat accepted since reset."""
        return list(self._accept_cycles)

    # -- monitor callbacks -------------------------------------------------------------

    def on_cycle(self, cycle, transfers):
        w_taken, a_taken = transfers
        if w_taken != a_taken:
            raise AssertionError(f"weights and activations transferred separately at cycle "
                                 f"{cycle} (weights {w_taken}, activations {a_taken})")
        w_shown = w_taken or self.weights.valid
        a_shown = a_taken or self.acts.valid
        hit = COVERAGE.hit
        if w_taken:
            self._accepted += 1
            self._accept_cycles.append(cycle)
            STATS["beats"] += 1
            self._full_rate_run += 1
            if self._full_rate_run == 32:
                hit("stall patterns", "full-rate run >= 32 beats")
        else:
            self._full_rate_run = 0
        work_left = not (self.weights.done and self.acts.done)
        if w_shown and not a_shown:
            hit("stall patterns", "weights wait for activations")
        elif a_shown and not w_shown:
            hit("stall patterns", "activations wait for weights")
        elif not w_shown and not a_shown and work_left:
            hit("stall patterns", "both inputs idle")
        elif w_shown and a_shown and not w_taken:
            hit("stall patterns", "inputs held by core")
        valid = self.checker.valid_now
        ready = self.results.ready
        if valid and not ready:
            self._stall_run += 1
        elif self._stall_run:
            run, self._stall_run = self._stall_run, 0
            hit("stall patterns", "results stalled 1" if run == 1 else
                "results stalled 2..latency" if run <= self.latency else
                "results stalled > latency")
        if valid and ready:
            if self._last_result_cycle == cycle - 1:
                hit("stall patterns", "results back to back")
            self._last_result_cycle = cycle

    def _cover_accepted(self):
        """Coverage of the beats accepted since the last call (codes, extremes, modes)."""
        if self._accepted <= self._covered or not self._history:
            return
        beats = Beats.concat(self._history)
        lo, hi = self._covered, self._accepted
        cycles = np.array(self._accept_cycles)
        fresh = beats.select(slice(lo, hi))
        g = self.geometry
        sparse = fresh.select(~fresh.dense)
        if len(sparse):
            both = (sparse.values[:, :, 0::2] != 0) & (sparse.values[:, :, 1::2] != 0)
            seen = np.zeros((g.rows, g.groups, 16), dtype=np.int64)
            np.add.at(seen, (np.broadcast_to(np.arange(g.rows)[None, :, None], both.shape)[both],
                             np.broadcast_to(np.arange(g.groups)[None, None, :],
                                             both.shape)[both],
                             sparse.meta[both]), 1)
            for i, k, c in np.argwhere(seen):
                COVERAGE.hit("codes x lanes", f"row{i} group{k} code{c:04b}", int(seen[i, k, c]))
        # Products actually computed: (weight, selected activation) per lane.
        for mode, part in (("sparse", sparse), ("dense", fresh.select(fresh.dense))):
            if not len(part):
                continue
            w = part.values[..., None]                       # (n, rows, 2G, 1)
            if mode == "sparse":
                idx = np.stack([part.meta & 3, part.meta >> 2], axis=-1).reshape(
                    len(part), g.rows, 2 * g.groups)
                rows = 4 * (np.arange(2 * g.groups) // 2)[None, None, :] + idx
            else:
                rows = np.broadcast_to(np.arange(2 * g.groups), (len(part), g.rows,
                                                                   2 * g.groups))
            a = np.take_along_axis(part.acts[:, None, :, :],
                                   rows[..., None].repeat(g.cols, axis=-1), axis=2)
            for wn, wv in (("min", self.wf.min), ("max", self.wf.max)):
                for an, av in (("min", self.af.min), ("max", self.af.max)):
                    n_hit = int(((w == wv) & (a == av)).sum())
                    if n_hit:
                        COVERAGE.hit("format extremes", f"{mode} w{wn} x a{an}", n_hit)
        # Tile boundaries among accepted beats (the first beat after reset has no previous).
        for n in range(max(lo, 1), hi):
            if beats.last[n - 1]:
                prev, cur = MODES[int(beats.dense[n - 1])], MODES[int(beats.dense[n])]
                acc = "accumulate" if beats.accumulate[n] else "fresh"
                COVERAGE.hit("mode switches", f"{prev} -> {cur} {acc}")
                if prev != cur and cycles[n] == cycles[n - 1] + 1:
                    COVERAGE.hit("mode switches", f"{prev} -> {cur} no bubble")
        self._covered = hi

    # -- scoreboard helpers ------------------------------------------------------------

    def _decode(self, word):
        g = self.geometry
        return self.r_codec.unpack([word], "", self.rf).reshape(g.rows, g.cols)

    def _describe(self, index, got, want, cycle):
        """First wrong element of result ``index`` since reset, traced to a K group."""
        row, col = (int(x) for x in np.argwhere(got != want)[0])
        beats = Beats.concat(self._history)
        info = explain_mismatch(beats, self.geometry, index, row, col, int(got[row, col]))
        text = (f"tile {index}, row {row}, column {col}: got {int(got[row, col])}, expected "
                f"{int(want[row, col])}; result beat at cycle {cycle}")
        if "beat" in info:
            s = info["beats"][0]
            k0 = int(beats.k_of_beat(self.geometry)[s:info["beat"]].sum())
            span = 2 if info["dense"] else 4
            k_lo = k0 + span * info["group"]
            code = "dense" if info["code"] is None else f"code {info['code']:#06b}"
            text += (f"; K group {info['group']} of beat {info['beat'] - s} "
                     f"(K {k_lo}..{k_lo + span - 1} of the tile), {code}")
            if "explained_by_code" in info:
                text += (f" (the difference is exactly what code "
                         f"{info['explained_by_code']:#06b} would select)")
        return f"{text}; seed {self.seed}"


def save_coverage(path=COVERAGE_FILE):
    """Write the run's coverage and counters (the pytest entry reads them)."""
    Path(path).write_text(json.dumps({"coverage": COVERAGE.groups, "stats": STATS}, indent=1))
