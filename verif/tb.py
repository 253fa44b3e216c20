"""The base of every design's cocotb testbench class (``verif/<design>/tb.py``).

Each design folder under ``verif/`` is laid out the same way:

- ``tb.py``: the design's TB class, a :class:`TestBench`;
- ``tests.py``: the ``@cocotb.test`` functions, run inside the simulator;
- ``test_<design>.py``: the pytest entry, which builds the configurations
  (:func:`sparsecore.verif.build.build`) and runs ``tests.py`` on each.

:class:`TestBench` gives every TB the same set-up:

- the manifest of the build under test and the run's seed (logged, with how to
  rerun it);
- seeded random streams: ``self.rng`` (numpy) is derived from the run's seed
  and the test's name, so a test's stimulus does not depend on which tests ran
  before it; :meth:`random` draws further independent ``random.Random`` streams;
- the clock, started on construction;
- stream sources, sinks, protocol checkers and scoreboards made from the
  manifest's stream names (:meth:`add_source`, :meth:`add_sink`, :meth:`add_checker`,
  :meth:`add_scoreboard`) and registered, so that :meth:`reset` clears every one
  of them: nothing queued, expected or half-seen survives a reset;
- idle and backpressure patterns from any iterator of booleans
  (``source.set_pause(...)``, ``sink.set_pause(...)``), a seeded random
  pattern (:class:`sparsecore.verif.streams.Idle`) by default.
"""

import random
import zlib

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from sparsecore.verif.build import testbench_manifest, testbench_seed
from sparsecore.verif.streams import (
    CycleLoop,
    Idle,
    ProtocolChecker,
    Scoreboard,
    StreamPorts,
    StreamSink,
    StreamSource,
)

__all__ = ["TestBench", "CLOCK_NS"]

CLOCK_NS = 10


class TestBench:
    """Clock, manifest, seeded random streams and a reset that clears every registered part.

    Arguments:
        dut: the cocotb handle of the top module (``clk`` and ``rst`` ports).
        name: the test's name; it seeds this TB's random streams.
    """

    __test__ = False   # a base class, not a pytest test

    def __init__(self, dut, name):
        self.dut = dut
        self.name = name
        self.manifest = testbench_manifest()
        self.seed = testbench_seed()
        self.latency = self.manifest["latency"]
        self.rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
        self._parts = []
        self._loop = None
        dut._log.info("%s on %s (%s), latency %d, seed %d (rerun: SPARSECORE_SEED=%d)",
                      name, self.manifest["top"], self.manifest["design"], self.latency,
                      self.seed, self.seed)
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())

    # -- random streams ----------------------------------------------------------------

    def random(self):
        """A new ``random.Random`` stream, drawn from this TB's seeded numpy stream."""
        return random.Random(int(self.rng.integers(1 << 62)))

    # -- parts ---------------------------------------------------------------------------

    def register(self, part):
        """Have :meth:`reset` clear ``part`` (anything with a ``clear()`` method)."""
        self._parts.append(part)
        self._loop = None
        return part

    def add_source(self, stream, pause=None):
        """A registered :class:`StreamSource` on the manifest's input ``stream``."""
        ports = StreamPorts(self.dut, self.manifest["streams"][stream])
        return self.register(StreamSource(ports, pause or Idle(self.random()), stream))

    def add_sink(self, stream, pause=None):
        """A registered :class:`StreamSink` on the manifest's output ``stream``."""
        ports = StreamPorts(self.dut, self.manifest["streams"][stream])
        return self.register(StreamSink(ports, pause or Idle(self.random()), stream))

    def add_checker(self, sink, probe_rate=0.05):
        """A registered :class:`ProtocolChecker` on the stream of ``sink``."""
        return self.register(ProtocolChecker(sink.ports, sink.name, probe_rate=probe_rate,
                                             rng=self.random()))

    def add_scoreboard(self, decode, describe=None, name="results"):
        """A registered :class:`Scoreboard` logging to the DUT's log."""
        return self.register(Scoreboard(self.dut._log, decode, describe, name))

    def parts(self, kind):
        return [p for p in self._parts if isinstance(p, kind)]

    @property
    def loop(self):
        """The :class:`CycleLoop` over every registered source, sink and checker."""
        if self._loop is None:
            self._loop = CycleLoop(self.dut.clk, self.parts(StreamSource),
                                   self.parts(StreamSink), self.parts(ProtocolChecker),
                                   on_cycle=self.on_cycle, probe_rng=self.random())
        return self._loop

    def on_cycle(self, cycle, transfers):
        """Called by the loop each cycle with what transferred (for coverage); a hook."""

    # -- reset ---------------------------------------------------------------------------

    def quiet_inputs(self):
        """Drive the design's non-stream inputs to their idle values; a hook."""

    def on_reset(self):
        """Clear the TB's own bookkeeping after a reset; a hook."""

    async def reset(self, cycles=2):
        """Synchronous reset for ``cycles`` clock edges.

        Every registered part is cleared: sources drop what is not sent and lower
        valid, sinks lower ready and forget what they took, checkers forget a
        held beat, scoreboards forget what they expected.
        """
        await FallingEdge(self.dut.clk)   # out of any ReadOnly phase a loop left us in
        self.dut.rst.value = 1
        self.quiet_inputs()
        for part in self._parts:
            part.clear()
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        self.on_reset()
