"""MacUnit: one product lane feeding a wrapping accumulator."""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sparsecore.hw.config import MacConfig
from sparsecore.hw.lanes import ProductLane, code_shape

__all__ = ["MacUnit"]


class MacUnit(wiring.Component):
    """Multiply-accumulate: ``acc += value(w) * value(a)``, wrapping modulo ``2**acc_bits``.

    The product comes from :class:`hw.lanes.ProductLane` (a multiplier, or for
    ternary weights an add/subtract/zero multiplexer); the accumulator is the
    only state.

    Parameters:
        config: :class:`hw.config.MacConfig` (weight format, activation format,
            ``acc_bits``); it validates its own fields.

    Members:
        w: In(unsigned(weight bits)), raw weight code (SPEC §1).
        a: In(unsigned(activation bits)), raw activation code.
        valid: In(1), add this cycle's product.
        clear: In(1), start fresh: drop the old sum before adding.
        acc: Out(signed(acc_bits)), the running sum, registered.

    At every rising edge of the ``sync`` clock::

        acc <= (0 if clear else acc) + (product(w, a) if valid else 0)   (mod 2**acc_bits)

    so ``clear`` with ``valid`` starts a new sum at this cycle's product, and
    ``clear`` alone zeroes it. Reset (``rst``, synchronous) zeroes ``acc``.

    Latency: :attr:`latency` = 1 cycle from the inputs to ``acc``.
    Throughput: one product per cycle.
    """

    def __init__(self, config):
        if not isinstance(config, MacConfig):
            raise ValueError(f"config must be a MacConfig, not {config!r}")
        self._config = config
        super().__init__({
            "w": In(code_shape(config.weight_format)),
            "a": In(code_shape(config.act_format)),
            "valid": In(1),
            "clear": In(1),
            "acc": Out(signed(config.acc_bits)),
        })

    @property
    def config(self):
        return self._config

    @property
    def latency(self):
        """Cycles from an input edge to its effect on ``acc``."""
        return 1

    def manifest_extra(self):
        return {"throughput": {"products_per_cycle": 1}}

    def elaborate(self, platform):
        m = Module()
        m.submodules.lane = lane = ProductLane(self._config)
        m.d.comb += [lane.w.eq(self.w), lane.a.eq(self.a)]

        base = Mux(self.clear, 0, self.acc)
        addend = Mux(self.valid, lane.product, 0)
        # Truncating to acc_bits on assignment is the modulo-2**acc_bits wrap.
        m.d.sync += self.acc.eq(base + addend)
        return m
