"""A timing harness: every port of a design registered, so that place and route
measures the design's own register-to-register paths and needs four pins.

The designs have hundreds of input and output bits (the default core's ports
are over 900 bits wide), more than any iCE40 or ECP5 package has pins, and a
path from a pin says little about the design. The harness feeds every input
bit from one long shift register (serial in on ``din``) and captures every
output bit in a register, then folds the captured bits into ``dout`` with a
pipelined XOR tree (a register after every level of four-input XORs, so that
the harness's own paths stay one LUT deep). Nothing is constant and nothing is
unobserved, so synthesis keeps all of the design.

The design is a submodule named ``dut``; synthesis keeps its hierarchy so the
area counts of the design alone can be read off it (:mod:`bench.synth`).
"""

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TimingHarness", "XOR_FAN_IN"]

XOR_FAN_IN = 4  # one LUT4 per XOR of four bits


class TimingHarness(wiring.Component):
    """Registered ports around ``dut`` (a :class:`wiring.Component`).

    Members:
        din: In(1), shifted into the register chain that drives every input bit.
        dout: Out(1), the XOR of every output bit, a few cycles later.

    ``config`` and ``latency`` are the design's, so :func:`hw.emit.emit` can
    write the harness like any design.
    """

    din: In(1)
    dout: Out(1)

    def __init__(self, dut):
        if not isinstance(dut, wiring.Component):
            raise ValueError(f"dut must be a wiring.Component, not {dut!r}")
        self._dut = dut
        super().__init__()

    @property
    def dut(self):
        return self._dut

    @property
    def config(self):
        return self._dut.config

    @property
    def latency(self):
        return self._dut.latency

    def _ports(self):
        inputs, outputs = [], []
        for _path, member, value in self._dut.signature.flatten(self._dut):
            (inputs if member.flow == In else outputs).append(Value.cast(value))
        return inputs, outputs

    @property
    def input_bits(self):
        return sum(len(v) for v in self._ports()[0])

    @property
    def output_bits(self):
        return sum(len(v) for v in self._ports()[1])

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self._dut
        inputs, outputs = self._ports()

        chain = Signal(max(1, sum(len(v) for v in inputs)))
        m.d.sync += chain.eq(Cat(self.din, chain[:-1]))
        offset = 0
        for value in inputs:
            m.d.comb += value.eq(chain[offset:offset + len(value)])
            offset += len(value)

        level = Signal(max(1, sum(len(v) for v in outputs)))
        m.d.sync += level.eq(Cat(*outputs))
        while len(level) > 1:
            parts = [level[i:i + XOR_FAN_IN].xor() for i in range(0, len(level), XOR_FAN_IN)]
            folded = Signal(len(parts))
            m.d.sync += folded.eq(Cat(*parts))
            level = folded
        m.d.comb += self.dout.eq(level[0])
        return m
