"""The TB class of hw.code_table.CodeTable (its cocotb tests are in ``tests.py``).

Formats, lanes and latency come from the manifest; expected entries come from
sim.code_table only. The TB tracks the table the way the design's timing
contract says (``hw/code_table.py``): at each clock edge, a lookup accepted
reads the table as it stood before the edge, and a write accepted at the same
edge lands after it. So writes and lookups may interleave in any pattern, with
idle cycles on both inputs and backpressure on ``o``, and every beat still has
one exact expectation. The seed is logged; SPARSECORE_SEED reruns it.
"""

import numpy as np

from sparsecore.sim.code_table import lookup, table_size, write_entries
from sparsecore.sim.formats import get_format
from sparsecore.verif.payload import PayloadCodec
from sparsecore.verif.streams import Idle
from sparsecore.verif.tb import TestBench

__all__ = ["CodeTableTB"]


class CodeTableTB(TestBench):
    """Sources on ``i`` and ``table``, sink + protocol checker on ``o``, a scoreboard fed at
    each lookup's acceptance with the table of that edge.

    ``idle`` / ``table_idle``: probability of an idle cycle on ``i`` / ``table``;
    ``stall``: of a stalled ``o`` cycle; in runs of 1..``burst`` cycles.
    """

    memory = None   # the table the previous test in this simulation left in the design

    def __init__(self, dut, name, idle=0.2, stall=0.3, burst=4, table_idle=0.2):
        super().__init__(dut, name)
        cfg = self.manifest["config"]
        self.codes, self.out, self.lanes = cfg["codes"], cfg["out"], cfg["lanes"]
        self.in_fmt, self.out_fmt = get_format(self.codes, "acts"), get_format(self.out, "acts")
        self.size = table_size(self.codes)
        assert self.manifest["table_entries"] == self.size
        streams = self.manifest["streams"]
        self.codec_i = PayloadCodec(streams["i"])
        self.codec_o = PayloadCodec(streams["o"])
        self.codec_table = PayloadCodec(streams["table"])
        # registration order = the order of the loop's transfer flags: i, then table
        self.source = self.add_source("i", Idle(self.random(), idle, burst))
        self.writer = self.add_source("table", Idle(self.random(), table_idle, burst))
        self.sink = self.add_sink("o", Idle(self.random(), stall, burst))
        self.checker = self.add_checker(self.sink)
        self.scoreboard = self.add_scoreboard(self._decode, self._describe, "table entries")
        # the design's table as the contract says, value order: the memory keeps it from
        # test to test in one simulation, and starts as 0 at power-up
        self.table = (CodeTableTB.memory if CodeTableTB.memory is not None
                      else np.zeros(self.size, np.int64))
        self.lookups = []          # code values of each lookup beat queued
        self.writes = []           # (code, entry) of each table beat queued
        self.looked_up = []        # (code values, cycle) of each lookup accepted, in order
        self.write_cycles = []     # cycle of each write accepted
        self.held_writes = 0       # cycles a write was offered and not taken
        dut._log.info("codes=%s out=%s lanes=%d", self.codes, self.out, self.lanes)

    def on_reset(self):
        del self.lookups[self.source._next:]   # what was never accepted is dropped
        del self.writes[self.writer._next:]
        self.looked_up.clear()

    def on_cycle(self, cycle, transfers):
        looked, wrote = transfers
        if looked:   # reads the table of this edge, before this edge's write
            values = self.lookups[self.source._next - 1]
            self.scoreboard.expect([lookup(values, self.table, self.codes, self.out)])
            self.looked_up.append((values, cycle))
        if wrote:
            code, entry = self.writes[self.writer._next - 1]
            self.table = CodeTableTB.memory = write_entries(
                self.table, code, entry, self.codes, self.out)
            self.write_cycles.append(cycle)
        elif self.writer.valid:
            self.held_writes += 1

    def _decode(self, word):
        return self.codec_o.unpack([word], "", self.out_fmt)[0]

    def _describe(self, index, got, want, cycle):
        values, accepted = self.looked_up[index]
        lane = int(np.flatnonzero(got != want)[0])
        return (f"beat {index} lane {lane}: code {values[lane]} accepted at cycle {accepted} "
                f"-> {got[lane]} at cycle {cycle}, expected {want[lane]} (the table after "
                f"{sum(c < accepted for c in self.write_cycles)} writes; seed {self.seed})")

    def load(self, table, order=None):
        """Queue a whole table (value order) as writes, in ``order`` of codes (default
        ascending); it takes effect beat by beat as the design accepts them."""
        codes = np.arange(self.in_fmt.min, self.in_fmt.max + 1)
        if order is not None:
            codes = codes[order]
        self.write(codes, np.asarray(table)[codes - self.in_fmt.min])

    def write(self, codes, entries):
        """Queue single-entry writes: ``codes`` and ``entries`` are 1-D value arrays."""
        codes, entries = np.asarray(codes), np.asarray(entries)
        self.writer.send(self.codec_table.pack({"index": (codes.reshape(-1, 1), self.in_fmt),
                                                "entry": (entries.reshape(-1, 1),
                                                          self.out_fmt)}))
        self.writes.extend(zip(codes.tolist(), entries.tolist(), strict=True))

    def send(self, values):
        """Queue lookup beats: ``values`` is beats x lanes of code values."""
        values = np.asarray(values).reshape(-1, self.lanes)
        self.source.send(self.codec_i.pack({"": (values, self.in_fmt)}))
        self.lookups.extend(values)

    def all_codes(self, repeat=1):
        """Every code in every lane, shuffled, ``repeat`` times: beats x lanes."""
        beats = []
        for _ in range(repeat):
            lanes = [self.rng.permutation(np.arange(self.in_fmt.min, self.in_fmt.max + 1))
                     for _ in range(self.lanes)]
            beats.append(np.stack(lanes, axis=1))
        return np.concatenate(beats)

    def random_table(self):
        return self.rng.integers(self.out_fmt.min, self.out_fmt.max + 1, self.size)

    async def reload_and_look_up(self, table, what):
        """The host's reload: ``table`` once the last job's beats are all accepted (their
        results may still be held in the pipeline by backpressure), checked whole, then
        every code looked up through it."""
        await self.loop.run(lambda: self.source.done, max_cycles=100 * self.size)
        self.load(table)
        await self.loop.run(lambda: self.writer.done, max_cycles=100 * self.size)
        assert (self.table == table).all(), f"the {what} table did not go in whole"
        self.send(self.all_codes())

    async def drain(self, what):
        """Run until every write and lookup went in and every beat came out; check them all
        and that nothing is left over."""
        def done():
            self.scoreboard.check(self.sink.beats)
            return (self.source.done and self.writer.done and not self.scoreboard.expected)
        work = len(self.lookups) + len(self.writes)
        await self.loop.run(done, max_cycles=20 * (work + self.latency) + 100)
        for _ in range(self.latency + 2):  # nothing more may come out
            await self.loop.step()
        self.scoreboard.check(self.sink.beats)
        self.scoreboard.assert_drained()
        assert self.held_writes == 0, f"the table stream was held {self.held_writes} cycles"
        self.dut._log.info("%s: %d beats x %d lanes match sim.code_table (%d writes, %d stall "
                           "cycles on o)", what, self.scoreboard.checked, self.lanes,
                           len(self.write_cycles), self.checker.stalls)
