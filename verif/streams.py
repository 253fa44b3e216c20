"""Shared cocotb stream machinery: sources, sinks, protocol checker, scoreboard, coverage.

Every valid/ready stream of every design is driven and watched through these
classes. Port names and payload field offsets come from the design's manifest
(``hw.emit``), never from hand-derived numbers.

Timing model (one coroutine, :class:`CycleLoop`, for all streams of a TB): at
each falling clock edge every source and sink decides what it presents for the
coming rising edge (valid + payload, or ready), then in the ``ReadOnly`` phase
everything settles and the loop reads all handshakes; a beat with valid and
ready high there transfers at the next rising edge. Nothing is sampled at the
rising edge itself, so the result does not depend on the simulator's ordering
of edge callbacks, and ``ready`` that depends combinationally on ``valid``
(allowed for an input stream) is seen as the DUT will see it.

Rules checked by :class:`ProtocolChecker` on a stream the DUT drives:

- valid never waits for ready: a probe flips ``ready`` inside one cycle and
  ``valid`` (and the payload) must not follow it;
- while valid is high and ready low, valid stays high and the payload stays
  the same on the next cycle;
- every transfer is seen once (counted, so the scoreboard can tell a lost or
  doubled beat from a wrong one).
"""

import itertools
import os
import random
from dataclasses import dataclass, field

import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly, ReadWrite

__all__ = [
    "StreamPorts",
    "Idle", "StreamSource", "StreamSink",
    "ProtocolChecker", "ProtocolError", "Scoreboard", "Coverage", "CycleLoop", "FAIL_FAST_ENV",
]

# Set (to 1) for mutation runs: a Scoreboard raises at the first mismatch.
FAIL_FAST_ENV = "SPARSECORE_FAIL_FAST"


class StreamPorts:
    """The valid/ready/payload handles of one stream, looked up by the manifest's names."""

    def __init__(self, dut, stream):
        ports = stream["ports"]
        self.valid = getattr(dut, ports["valid"])
        self.ready = getattr(dut, ports["ready"])
        self.payload = getattr(dut, ports["payload"])


class Idle:
    """A seeded random pause pattern: an endless iterator of booleans, True = hold this cycle.

    ``probability``: chance of each cycle being idle; ``burst``: maximum
    length of an idle run (runs of 1..burst cycles, so long stalls happen too).
    Both may be changed while it runs. Sources and sinks take any iterator of
    booleans as their pause pattern; this is the default one.
    """

    def __init__(self, rng, probability=0.0, burst=1):
        self.rng = rng
        self.probability = probability
        self.burst = burst
        self._left = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self._left:
            self._left -= 1
            return True
        if self.probability and self.rng.random() < self.probability:
            self._left = self.rng.randint(1, self.burst) - 1
            return True
        return False


class StreamSource:
    """Drives beats into a DUT input stream, with idle cycles between them.

    ``idle``: the pause pattern, any iterator of booleans (True: present nothing
    this cycle); :meth:`set_pause` replaces it. Default: never idle.
    """

    def __init__(self, ports, idle=None, name="source"):
        self.ports = ports
        self.set_pause(idle)
        self.name = name
        self.queue = []
        self._next = 0
        self.valid = False
        self.sent = []          # cycle of each transfer
        ports.valid.value = 0

    def set_pause(self, pattern):
        """Idle while ``pattern`` yields True (any iterable of booleans; None: never)."""
        self.idle = iter(pattern) if pattern is not None else itertools.repeat(False)

    def send(self, words):
        self.queue.extend(words)

    def clear(self):
        """Drop what is not yet sent (after a reset) and lower valid."""
        del self.queue[self._next:]
        self.valid = False
        self.ports.valid.value = 0

    @property
    def idle_now(self):
        return not self.valid

    @property
    def done(self):
        return self._next == len(self.queue) and not self.valid

    def drive(self, cycle):
        if self.valid:       # holding a beat until it is taken
            return
        if self._next < len(self.queue) and not next(self.idle, False):
            self.ports.payload.value = self.queue[self._next]
            self.ports.valid.value = 1
            self.valid = True

    def observe(self, cycle):
        """In ReadOnly: True when the presented beat transfers at the next edge."""
        if self.valid and self.ports.ready.value:
            self.sent.append(cycle)
            self._next += 1
            self.valid = False   # valid is lowered at the next falling edge
            return True
        return False


class StreamSink:
    """Takes beats from a DUT output stream with backpressure.

    ``stall``: the backpressure pattern, any iterator of booleans (True: ready
    low this cycle); :meth:`set_pause` replaces it. Default: always ready.
    """

    def __init__(self, ports, stall=None, name="sink"):
        self.ports = ports
        self.set_pause(stall)
        self.name = name
        self.beats = []          # (cycle, payload int)
        self.ready = False
        ports.ready.value = 0

    def set_pause(self, pattern):
        """Hold ready low while ``pattern`` yields True (None: never)."""
        self.stall = iter(pattern) if pattern is not None else itertools.repeat(False)

    def clear(self):
        """Forget what was taken and lower ready (after a reset)."""
        self.beats.clear()
        self.ready = False
        self.ports.ready.value = 0

    def drive(self, cycle):
        self.ready = not next(self.stall, False)
        self.ports.ready.value = int(self.ready)

    def observe(self, cycle):
        if self.ready and self.ports.valid.value:
            self.beats.append((cycle, int(self.ports.payload.value)))
            return True
        return False


class ProtocolError(AssertionError):
    pass


class ProtocolChecker:
    """Watches a DUT-driven stream (see the module docstring for the rules)."""

    def __init__(self, ports, name, probe_rate=0.05, rng=None):
        self.ports = ports
        self.name = name
        self.probe_rate = probe_rate
        self.rng = rng or random.Random(0)
        self.transfers = 0
        self.stalls = 0          # cycles with valid high and ready low
        self.valid_now = False   # this cycle's valid (for coverage of stall patterns)
        self.probes = 0
        self._held = None        # payload that must still be there next cycle

    def observe(self, cycle):
        valid = self.valid_now = bool(self.ports.valid.value)
        ready = bool(self.ports.ready.value)
        if self._held is not None:
            if not valid:
                raise ProtocolError(f"{self.name}: valid dropped at cycle {cycle} while the "
                                    f"beat was stalled (not taken)")
            if int(self.ports.payload.value) != self._held:
                raise ProtocolError(f"{self.name}: payload changed at cycle {cycle} while "
                                    f"stalled")
        self._held = None
        if valid and ready:
            self.transfers += 1
        elif valid:
            self.stalls += 1
            self._held = int(self.ports.payload.value)

    def clear(self):
        """Forget a held beat (after a reset: the pipeline is empty)."""
        self._held = None

    reset = clear

    async def probe(self, sink_ready):
        """In ReadWrite of a falling edge: flip ready and check valid does not follow it."""
        self.probes += 1
        before = (bool(self.ports.valid.value), self.ports.payload.value)
        self.ports.ready.value = int(not sink_ready)
        await ReadWrite()
        after = (bool(self.ports.valid.value), self.ports.payload.value)
        self.ports.ready.value = int(sink_ready)
        await ReadWrite()
        if before != after:
            raise ProtocolError(f"{self.name}: valid or payload depends on ready "
                                f"(combinationally): {before[0]} -> {after[0]}")


@dataclass
class Mismatch:
    index: int
    cycle: int
    detail: str


class Scoreboard:
    """Compares what a sink received with expected results, in order.

    ``expected``: a list of numpy arrays (one per beat, from sim/);
    ``decode(word) -> array`` turns a payload int into the same shape;
    ``describe(index, got, want, cycle) -> str`` explains a mismatch
    (tile, row, column, K group, code, cycle). The first mismatch is logged
    with the ``MISMATCH`` mark that :mod:`verif.build` collects.
    """

    def __init__(self, log, decode, describe=None, name="results"):
        self.log = log
        self.decode = decode
        self.describe = describe
        self.name = name
        self.expected = []
        self.checked = 0         # beats checked since the last clear()
        self.total_checked = 0
        self.mismatches = []

    def clear(self):
        """Forget what is expected (after a reset); indices restart at 0."""
        self.expected.clear()
        self.checked = 0

    def expect(self, arrays):
        self.expected.extend(arrays)

    def check(self, beats):
        """Compare the sink's (cycle, word) beats with the queue; consumes both in order."""
        for cycle, word in beats:
            if not self.expected:
                self._fail(Mismatch(self.checked, cycle,
                                    f"{self.name}: unexpected extra beat at cycle {cycle} "
                                    f"(a transfer doubled or invented)"))
                continue
            want = self.expected.pop(0)
            got = self.decode(word)
            if not np.array_equal(got, want):
                detail = (self.describe(self.checked, got, want, cycle) if self.describe
                          else f"got {got.tolist()}, expected {want.tolist()}")
                self._fail(Mismatch(self.checked, cycle, detail))
            self.checked += 1
            self.total_checked += 1
        beats.clear()

    def _fail(self, mismatch):
        self.mismatches.append(mismatch)
        if len(self.mismatches) == 1:
            self.log.error("MISMATCH %s", mismatch.detail)
        if os.environ.get(FAIL_FAST_ENV, "") not in ("", "0"):
            # mutation runs: the first mismatch decides, the rest of the test is wasted time
            raise AssertionError(f"first mismatching {self.name} beat: {mismatch.detail}")

    def assert_drained(self):
        if self.mismatches:
            first = self.mismatches[0]
            raise AssertionError(f"{len(self.mismatches)} mismatching {self.name} beats; "
                                 f"first: {first.detail}")
        if self.expected:
            raise AssertionError(f"{len(self.expected)} expected {self.name} beats never "
                                 f"came (a transfer lost); {self.checked} checked")


@dataclass
class Coverage:
    """Functional coverage: named groups of bins, each counted; every bin must be hit."""

    groups: dict = field(default_factory=dict)   # group -> {bin: count}

    def define(self, group, bins):
        g = self.groups.setdefault(group, {})
        for b in bins:
            g.setdefault(str(b), 0)

    def hit(self, group, bin_, count=1):
        g = self.groups.setdefault(group, {})
        key = str(bin_)
        if key not in g:
            raise KeyError(f"coverage group {group!r} has no bin {key!r}")
        g[key] += count

    def merge(self, other):
        for group, bins in (other.groups if isinstance(other, Coverage) else other).items():
            mine = self.groups.setdefault(group, {})
            for b, n in bins.items():
                mine[b] = mine.get(b, 0) + n

    def missing(self):
        return {g: [b for b, n in bins.items() if not n]
                for g, bins in self.groups.items() if any(not n for n in bins.values())}

    def summary(self):
        lines = []
        for g, bins in self.groups.items():
            hit = sum(1 for n in bins.values() if n)
            lines.append(f"{g}: {hit}/{len(bins)} bins hit, {sum(bins.values())} hits")
            empty = [b for b, n in bins.items() if not n]
            if empty:
                lines.append(f"  missing: {', '.join(empty[:12])}"
                             f"{' ...' if len(empty) > 12 else ''}")
        return "\n".join(lines)


class CycleLoop:
    """Runs every source, sink and checker of a TB once per clock cycle (see module doc).

    ``on_cycle(cycle)``, if given, runs in ReadOnly after all observations
    (for coverage of handshake patterns). ``cycle`` counts falling edges
    since the loop started.
    """

    def __init__(self, clk, sources=(), sinks=(), checkers=(), on_cycle=None,
                 probe_rng=None):
        self.clk = clk
        self.sources = list(sources)
        self.sinks = list(sinks)
        self.checkers = list(checkers)
        self.on_cycle = on_cycle
        self.cycle = 0
        self.probe_rng = probe_rng or random.Random(0)

    async def step(self):
        await FallingEdge(self.clk)
        self.cycle += 1
        for s in self.sources:
            if not s.valid:
                s.ports.valid.value = 0
            s.drive(self.cycle)
        for s in self.sinks:
            s.drive(self.cycle)
        for checker, sink in zip(self.checkers, self.sinks, strict=False):
            if checker.probe_rate and self.probe_rng.random() < checker.probe_rate:
                await checker.probe(sink.ready)
        await ReadOnly()
        transfers = [s.observe(self.cycle) for s in self.sources]
        for c in self.checkers:
            c.observe(self.cycle)
        for s in self.sinks:
            s.observe(self.cycle)
        if self.on_cycle:
            self.on_cycle(self.cycle, transfers)

    async def run(self, until, max_cycles):
        """Step until ``until()`` is true; fail after ``max_cycles`` cycles (a hang)."""
        start = self.cycle
        while not until():
            if self.cycle - start >= max_cycles:
                raise AssertionError(f"no progress after {max_cycles} cycles (hang?)")
            await self.step()
