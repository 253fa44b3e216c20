"""One network layer in hardware: the tensor core with the output stage after it.

::

    weights ─────┐
                 ├─> SparseTensorCore ── results ─┐
    activations ─┘     (hw/core.py)               ├─ join ─> OutputStage ──> codes
    params ───────────────────────────────────────┘          (hw/output_stage.py)

Each result tile of the core (rows x cols accumulators) is joined with one
``params`` beat (bias, multiplier and shift per tile row = output channel, and
a ReLU flag) into one beat of the output stage, whose ``rows*cols`` lanes turn
it into activation codes of the format ``out``. The last layer of a network
gives its logits the same way, with ``out`` a wider format (``int8``) and ReLU
off: no raw-accumulator bypass.

The join is combinational: a beat enters the output stage when the core's
result register and ``params`` are both valid and the stage can advance. The
core's ``results.valid`` is a register and nothing inside the core reads
``results.ready`` combinationally (hw/core.py), and ``params.ready`` depends
on ``codes.ready`` and the core's register only: no loop, and backpressure on
``codes`` reaches the core's inputs through its result register.
"""

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sparsecore.hw.code_table import CodeTable, table_layout
from sparsecore.hw.config import LayerConfig
from sparsecore.hw.core import SparseTensorCore
from sparsecore.hw.output_stage import OutputStage

__all__ = ["SparseLayer", "drive_stage_input"]


def drive_stage_input(m, stage_in, tile, params, relu, rows, cols, row=None):
    """The output stage's input payload from one result tile and its per-row parameters.

    ``tile``: the core's result payload (``rows x cols`` accumulators, row-major);
    ``params``: a view with ``bias``, ``mult`` and ``shift`` arrays of ``rows``
    (output channel i = tile row i); ``relu``: the tile's ReLU flag. Without
    ``row``, a stage of ``rows*cols`` lanes takes the whole tile: lane
    ``i*cols + j`` gets accumulator ``[i][j]`` and row i's parameters. With
    ``row`` (a signal), a stage of ``cols`` lanes takes that row of the tile:
    lane j gets ``[row][j]`` and the row's parameters. Shared by
    :class:`SparseLayer` (whole tiles) and the accelerator (hw/accel.py, a row
    per cycle); the valid/ready join is each one's own.
    """
    m.d.comb += stage_in.p.relu.eq(relu)
    if row is not None:
        m.d.comb += stage_in.p.acc.eq(tile[row].as_value())
        for col in range(cols):
            m.d.comb += [stage_in.p.bias[col].eq(params.bias[row]),
                         stage_in.p.mult[col].eq(params.mult[row]),
                         stage_in.p.shift[col].eq(params.shift[row])]
        return
    m.d.comb += stage_in.p.acc.eq(tile.as_value())   # both row-major: lane i*cols + j
    for i in range(rows):
        for col in range(cols):
            lane = i * cols + col
            m.d.comb += [stage_in.p.bias[lane].eq(params.bias[i]),
                         stage_in.p.mult[lane].eq(params.mult[i]),
                         stage_in.p.shift[lane].eq(params.shift[i])]


class SparseLayer(wiring.Component):
    """SparseTensorCore -> OutputStage: weights and activations in, activation codes out.

    Parameters:
        config: :class:`hw.config.LayerConfig` (the core's fields, ``out``,
            ``mult_bits``, ``shift_bits``).

    Members:
        weights: In, the core's ``weights`` stream (values, meta, dense, last,
            accumulate; docs/core.md).
        activations: In, the core's ``activations`` stream.
        params: In(stream.Signature(params_layout)), one beat per result tile
            of the core (per tile that ends with ``last``), in tile order:

            - ``bias[i]``: signed ``acc_bits``, added to row i's accumulators;
            - ``mult[i]``: unsigned ``mult_bits``, row i's scale multiplier;
            - ``shift[i]``: unsigned ``shift_bits``, row i's right shift;
            - ``relu`` (1 bit): clamp negatives to 0 for this tile.
        codes: Out(stream.Signature(codes_layout)), one beat per tile:
            ``[i][j]`` = the raw ``out`` code (SPEC §1 bit pattern) of
            ``clip(relu?(round_half_even((C[i][j] + bias[i]) * mult[i] / 2**shift[i])))``.

    With ``config.table`` set, a :class:`hw.code_table.CodeTable` follows the stage
    (the table: In, its ``table`` stream, one entry write per beat; write the whole
    table before the job, see hw/code_table.py for which lookups see which writes)
    and ``codes`` carries its entries.

    Latency: :attr:`latency` = the core's latency + the output stage's (+ the
    table's, 1, when there is one), from the
    edge that accepts a tile's last beat to the edge at which its codes can be
    taken, when ``params`` is already there and ``codes`` is ready.

    Throughput: the core's (one K-chunk per cycle); the stage takes a tile per
    cycle, so it never holds the core while ``codes`` is ready and ``params``
    keeps up.
    """

    def __init__(self, config):
        if not isinstance(config, LayerConfig):
            self._MustUse__silence = True   # refused, never meant to be elaborated
            raise ValueError(f"config must be a LayerConfig, not {config!r}")
        self._config = config
        self._core = SparseTensorCore(config.core)
        self._stage = OutputStage(config.output_stage)
        self._table = None if config.table is None else CodeTable(config.code_table)
        # elaborated with the layer; an unused layer warns once, for itself
        self._core._MustUse__silence = self._stage._MustUse__silence = True
        if self._table is not None:
            self._table._MustUse__silence = True
        ports = {
            "weights": In(stream.Signature(self._core.weights_layout)),
            "activations": In(stream.Signature(self._core.acts_layout)),
            "params": In(stream.Signature(self.params_layout)),
            "codes": Out(stream.Signature(self.codes_layout)),
        }
        if self._table is not None:
            ports["table"] = In(stream.Signature(table_layout(config.code_table)))
        super().__init__(ports)

    @property
    def config(self):
        return self._config

    @property
    def params_layout(self):
        c = self._config
        return data.StructLayout({
            "bias": data.ArrayLayout(signed(c.acc_bits), c.rows),
            "mult": data.ArrayLayout(unsigned(c.mult_bits), c.rows),
            "shift": data.ArrayLayout(unsigned(c.shift_bits), c.rows),
            "relu": unsigned(1),
        })

    @property
    def codes_layout(self):
        c = self._config
        return data.ArrayLayout(data.ArrayLayout(unsigned(c.codes_format.bits), c.cols), c.rows)

    @property
    def core_latency(self):
        return self._core.latency

    @property
    def stage_latency(self):
        return self._stage.latency

    @property
    def table_latency(self):
        return 0 if self._table is None else self._table.latency

    @property
    def latency(self):
        """Cycles from accepting a tile's last beat to its codes being valid (no join register)."""
        return self.core_latency + self.stage_latency + self.table_latency

    def manifest_extra(self):
        core = self._core.manifest_extra()
        return {
            **core,
            "latency": self.latency,
            "latency_parts": {"core": self.core_latency, "output_stage": self.stage_latency,
                              "join": 0,
                              **({"code_table": self.table_latency} if self._table else {})},
            "out_format": self._config.out,
            "codes_format": self._config.codes_format.name,
            "params": "one beat per result tile: per-row bias, mult, shift; relu per tile",
            "rounding": "half_to_even",
        }

    def elaborate(self, platform):
        m = Module()
        c = self._config
        m.submodules.core = core = self._core
        m.submodules.stage = stage = self._stage
        wiring.connect(m, wiring.flipped(self.weights), core.weights)
        wiring.connect(m, wiring.flipped(self.activations), core.activations)

        # join: a result tile and its params enter the stage together
        results, params, i = core.results, self.params, stage.i
        m.d.comb += [
            i.valid.eq(results.valid & params.valid),
            results.ready.eq(i.ready & params.valid),
            params.ready.eq(i.ready & results.valid),
        ]
        drive_stage_input(m, i, results.p, params.p, params.p.relu, c.rows, c.cols)

        last = stage.o
        if self._table is not None:
            # the nonlinearity: the stage's codes through the table, lane for lane
            m.submodules.table = table = self._table
            wiring.connect(m, wiring.flipped(self.table), table.table)
            m.d.comb += [table.i.valid.eq(stage.o.valid), stage.o.ready.eq(table.i.ready),
                         table.i.p.eq(stage.o.p.as_value())]
            last = table.o
        m.d.comb += [self.codes.valid.eq(last.valid), last.ready.eq(self.codes.ready),
                     self.codes.p.eq(last.p.as_value())]
        return m
