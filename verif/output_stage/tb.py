"""The TB class of hw.output_stage.OutputStage (one build per configuration).

Widths, formats, lanes and latency come from the manifest; expected codes come
from sparsecore.sim.requant only. Beats go in through a StreamSource with random idle
cycles and come out through a StreamSink with random backpressure, a
ProtocolChecker watches the output stream and a Scoreboard compares each beat
in order. The seed is logged; SPARSECORE_SEED reruns it.
"""

import numpy as np

from sparsecore.sim.formats import get_format
from sparsecore.sim.requant import requantize
from sparsecore.verif.output_stage.payload import pack_input, unpack_output
from sparsecore.verif.streams import Idle
from sparsecore.verif.tb import TestBench


class OutputStageTB(TestBench):
    """Source on ``i``, sink + protocol checker on ``o``, a scoreboard of output codes.

    ``idle`` / ``stall``: probability of an idle input cycle / a stalled output
    cycle, in runs of 1..``burst`` cycles.
    """

    def __init__(self, dut, name, idle=0.2, stall=0.3, burst=4):
        super().__init__(dut, name)
        cfg = self.manifest["config"]
        self.acc_bits, self.lanes = cfg["acc_bits"], cfg["lanes"]
        self.mult_bits, self.shift_bits = cfg["mult_bits"], cfg["shift_bits"]
        self.out = get_format(cfg["acts"], "acts")
        self.source = self.add_source("i", Idle(self.random(), idle, burst))
        self.sink = self.add_sink("o", Idle(self.random(), stall, burst))
        self.checker = self.add_checker(self.sink)
        self.scoreboard = self.add_scoreboard(self._decode, self._describe, "output codes")
        self.beats = []  # (acc, bias, mult, shift, relu) per beat sent, for mismatch reports
        dut._log.info("out=%s lanes=%d acc_bits=%d mult_bits=%d shift_bits=%d",
                      self.out.name, self.lanes, self.acc_bits, self.mult_bits,
                      self.shift_bits)

    def on_reset(self):
        self.beats.clear()

    def _decode(self, word):
        return unpack_output(self.manifest, [word], self.out)[0]

    def _describe(self, index, got, want, cycle):
        acc, bias, mult, shift, relu = self.beats[index]
        lane = int(np.flatnonzero(got != want)[0])
        return (f"beat {index} lane {lane} cycle {cycle}: acc={acc[lane]} bias={bias[lane]} "
                f"mult={mult[lane]} shift={shift[lane]} relu={relu} -> {got[lane]}, "
                f"expected {want[lane]} (seed {self.seed})")

    def expected(self, acc, bias, mult, shift, relu):
        """sparsecore.sim.requant on every lane of every beat; ``relu`` is per beat."""
        args = (acc.reshape(-1, 1), mult.reshape(-1), shift.reshape(-1), bias.reshape(-1),
                self.out.name)
        fields = (self.acc_bits, self.mult_bits, self.shift_bits)
        on = requantize(*args, True, *fields).reshape(acc.shape)
        off = requantize(*args, False, *fields).reshape(acc.shape)
        return np.where(relu[:, None].astype(bool), on, off)

    def send(self, acc, bias, mult, shift, relu):
        """Queue beats (arrays beats x lanes; relu per beat) and their expected codes."""
        self.source.send(pack_input(self.manifest, acc, bias, mult, shift, relu))
        self.scoreboard.expect(list(self.expected(acc, bias, mult, shift, relu)))
        self.beats.extend(zip(acc.tolist(), bias.tolist(), mult.tolist(), shift.tolist(),
                              relu.tolist(), strict=True))

    async def drain(self, what):
        """Run until every beat came out; check them all and that nothing is left over."""
        def done():
            self.scoreboard.check(self.sink.beats)
            return self.source.done and not self.scoreboard.expected
        await self.loop.run(done, max_cycles=20 * (len(self.beats) + self.latency) + 100)
        for _ in range(self.latency + 2):  # nothing more may come out
            await self.loop.step()
        self.scoreboard.check(self.sink.beats)
        self.scoreboard.assert_drained()
        self.dut._log.info("%s: %d beats x %d lanes match sim.requant (%d stall cycles on o)",
                           what, self.scoreboard.checked, self.lanes, self.checker.stalls)

    def random_beats(self, n):
        """Random parameters over the full fields; accumulators full-range, or aimed so that
        the result lands in or just around the format."""
        rng, lanes = self.rng, self.lanes
        lo, hi = -(1 << (self.acc_bits - 1)), 1 << (self.acc_bits - 1)
        mult = rng.integers(0, 1 << self.mult_bits, (n, lanes))
        shift = rng.integers(0, 1 << self.shift_bits, (n, lanes))
        full = rng.integers(lo, hi, (n, lanes))
        bias = np.where(rng.random((n, lanes)) < 0.2, rng.integers(lo, hi, (n, lanes)),
                        rng.integers(-64, 64, (n, lanes)))
        # aimed: (acc + bias) * mult / 2**shift lands in the format or a quarter span beyond
        span = self.out.max - self.out.min + 1
        target = rng.uniform(self.out.min - span / 4, self.out.max + span / 4, (n, lanes))
        aimed = np.rint(np.ldexp(target, shift) / np.maximum(mult, 1)) - bias
        aimed = np.clip(aimed, lo, hi - 1).astype(np.int64)
        acc = np.where(rng.random((n, lanes)) < 0.3, full, aimed)
        # a tenth of the lanes get an exact half (k odd) to round to even
        halves = rng.random((n, lanes)) < 0.1
        half_shift = rng.integers(1, min(1 << self.shift_bits, self.acc_bits - 6), (n, lanes))
        k = 2 * rng.integers(-16, 16, (n, lanes)) + 1
        acc = np.where(halves, k << (half_shift - 1), acc)
        bias = np.where(halves, 0, bias)
        mult = np.where(halves, 1, mult)
        shift = np.where(halves, half_shift, shift)
        relu = rng.integers(0, 2, n)
        return acc, bias, mult, shift, relu

    def corner_beats(self):
        """Field extremes, exact halves, clip edges, ReLU on and off: one value per lane row."""
        lo, hi = -(1 << (self.acc_bits - 1)), (1 << (self.acc_bits - 1)) - 1
        max_mult, max_shift = (1 << self.mult_bits) - 1, (1 << self.shift_bits) - 1
        rows = []
        for acc in (lo, hi, 0, -1, 1):
            for bias in (lo, hi, 0, -1):
                for mult in (0, 1, max_mult):
                    for shift in (0, 1, max_shift):
                        rows.append((acc, bias, mult, shift))
        # exact halves: (acc + bias) * mult = k * 2**(shift-1), k odd, both signs
        for shift in range(1, min(max_shift, self.acc_bits - 4) + 1):
            for k in (-5, -3, -1, 1, 3, 5):
                rows.append((k << (shift - 1), 0, 1, shift))
        # just inside / outside the format and just around zero
        for value in (self.out.min - 1, self.out.min, -1, 0, 1, self.out.max, self.out.max + 1):
            rows.append((value, 0, 1, 0))
        rows = np.array(rows, dtype=np.int64)
        pad = -len(rows) % self.lanes
        rows = np.concatenate([rows, rows[:pad]])
        beats = rows.reshape(-1, self.lanes, 4)
        acc, bias, mult, shift = (beats[..., i] for i in range(4))
        # every beat once with ReLU and once without
        twice = [np.concatenate([x, x]) for x in (acc, bias, mult, shift)]
        relu = np.concatenate([np.ones(len(acc), np.int64), np.zeros(len(acc), np.int64)])
        return (*twice, relu)
