"""The code table: a programmable nonlinearity after the output stage.

Each lane maps an activation code through a table held in a memory that is
written at run time, one entry per beat of the ``table`` stream. The same
hardware computes sigmoid, tanh, GELU or any other function of one code:
only the table changes. The numpy twin, with the tables of those functions, is
``sim/code_table.py``.

::

    table (index, entry) ──> memory [2**in_bits x out_bits], one write port
                                │ lanes read ports (one per lane)
    i (lanes x code) ──────────>┴──> o (lanes x entry)

Timing contract (what a lookup sees): a beat accepted on ``i`` at clock edge t
reads every entry as written by the ``table`` beats accepted at edges before
t; a write accepted at the same edge t is not seen by it (read before write).
A result held on ``o`` by backpressure keeps the entries it read. So a host
reloads the table between two jobs by sending the new entries before the next
job's first beat; entries written while beats are in flight never change a
beat already accepted.

Reset clears the pipeline (``o.valid``), not the table: the memory has no
reset, its contents at power-up are 0.
"""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsecore.hw.config import CodeTableConfig

__all__ = ["CodeTable", "table_layout", "codes_layout", "entries_layout"]


def table_layout(config):
    """Payload of the ``table`` stream: one entry write.

    | field | shape                 | meaning                                   |
    |-------|-----------------------|-------------------------------------------|
    | index | unsigned(in bits)     | the raw code (SPEC §1 bit pattern)         |
    | entry | unsigned(out bits)    | the raw output code for it                 |
    """
    return data.StructLayout({"index": unsigned(config.in_format.bits),
                              "entry": unsigned(config.out_format.bits)})


def codes_layout(config):
    """Payload of ``i``: ``lanes`` raw input codes (element i at bits [i*w, (i+1)*w))."""
    return data.ArrayLayout(unsigned(config.in_format.bits), config.lanes)


def entries_layout(config):
    """Payload of ``o``: ``lanes`` raw output codes."""
    return data.ArrayLayout(unsigned(config.out_format.bits), config.lanes)


class CodeTable(wiring.Component):
    """Per-lane table lookup of activation codes, the table written through a stream.

    Parameters:
        config: :class:`hw.config.CodeTableConfig` (``codes``, ``out``, ``lanes``).

    Members:
        table: In(stream.Signature(table_layout(config))), one entry per beat;
            ``ready`` is always high (a write per cycle, never held).
        i: In(stream.Signature(codes_layout(config))), codes to map.
        o: Out(stream.Signature(entries_layout(config))), ``o[n] = table[i[n]]``.

    Latency and throughput: a beat accepted on ``i`` at edge t is valid on ``o``
    after edge t + :attr:`latency` - 1, i.e. :attr:`latency` cycles later, when
    ``o`` is not stalled; one beat per cycle. ``i.ready`` is high whenever the
    output register is empty or being read. Which writes a lookup sees: see the
    module docstring.
    """

    LATENCY = 1

    def __init__(self, config):
        if not isinstance(config, CodeTableConfig):
            self._MustUse__silence = True   # refused, never meant to be elaborated
            raise ValueError(f"config must be a CodeTableConfig, not {config!r}")
        self._config = config
        super().__init__({
            "table": In(stream.Signature(table_layout(config))),
            "i": In(stream.Signature(codes_layout(config))),
            "o": Out(stream.Signature(entries_layout(config))),
        })

    @property
    def config(self):
        return self._config

    @property
    def latency(self):
        """Cycles from a beat accepted on ``i`` to its entries valid on ``o``."""
        return self.LATENCY

    @property
    def throughput(self):
        """Beats per cycle on ``i`` when ``o`` is always ready."""
        return 1

    def manifest_extra(self):
        cfg = self._config
        return {"throughput": {"beats_per_cycle": self.throughput, "lanes": cfg.lanes},
                "table_entries": cfg.entries,
                "table_order": "raw code bit pattern (SPEC §1)",
                "read_during_write": "a lookup accepted with a write sees the old entry"}

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.memory = memory = Memory(
            shape=unsigned(cfg.out_format.bits), depth=cfg.entries, init=[])
        write = memory.write_port()
        # not transparent: a lookup at the edge of a write reads the old entry
        reads = [memory.read_port(transparent_for=()) for _ in range(cfg.lanes)]

        m.d.comb += [self.table.ready.eq(1), write.en.eq(self.table.valid),
                     write.addr.eq(self.table.p.index), write.data.eq(self.table.p.entry)]

        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i.valid)
        for lane, read in enumerate(reads):
            # the read register holds its entry while o is stalled
            m.d.comb += [read.en.eq(advance), read.addr.eq(self.i.p[lane]),
                         self.o.p[lane].eq(read.data)]
        return m
