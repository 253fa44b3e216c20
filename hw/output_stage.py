"""The output stage: accumulators -> the next layer's activation codes.

Per lane (the arithmetic and its rounding are defined in ``sim/requant.py``,
the bit-exact numpy twin)::

    out = clip(relu?(round_half_even((acc + bias) * mult / 2**shift)), fmt.min, fmt.max)

Pipeline (one register after each step; the whole pipeline stalls together
when the output is held, so a beat is never dropped or doubled)::

    stage 1: total   = acc + bias                        sum_bits = acc_bits + 1
    stage 2: product = total * mult                      product_bits = sum_bits + mult_bits
             (``split_mult``: 2a lo = total * mult[:h], hi = total * mult[h:];
              2b product = lo + (hi << h): one stage more)
    stage 3: rounded = product + rounding term           (2**(shift-1) - 1 + product[shift])
             (``split_shift``: the term's masks, bit ``shift``, bit ``shift-1`` and the
              bits below it, decoded from the shift in stage 2 and registered beside
              the product; stage 3 picks ``product[shift]`` with the first and adds
              one of the others: no shifter in front of the adder)
    stage 4: y = rounded >> shift, ReLU, clip to the activation format -> code
             (``split_shift``: 4a y = rounded >> shift; 4b ReLU, clip -> code: one
              stage more)

Latency: 4 cycles, plus one for each of ``split_mult`` and ``split_shift``
(:attr:`OutputStage.latency`, and ``latency`` in the manifest).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sparsecore.hw.config import OutputStageConfig

__all__ = ["OutputStage", "input_layout", "output_layout"]


def input_layout(config):
    """Payload of the input stream: ``lanes`` accumulators with their per-lane parameters.

    Fields (packed in this order, low bits first; arrays are element i at
    bits [i*w, (i+1)*w), SPEC §4):

    | field | shape                                 | meaning                          |
    |-------|---------------------------------------|----------------------------------|
    | acc   | lanes x signed(acc_bits)              | accumulators from the core       |
    | bias  | lanes x signed(acc_bits)              | bias, accumulator units          |
    | mult  | lanes x unsigned(mult_bits)           | scale multiplier                 |
    | shift | lanes x unsigned(shift_bits)          | scale right shift                |
    | relu  | 1                                     | clamp negatives to 0 (this beat) |
    """
    lanes = config.lanes
    return data.StructLayout({
        "acc": data.ArrayLayout(signed(config.acc_bits), lanes),
        "bias": data.ArrayLayout(signed(config.bias_bits), lanes),
        "mult": data.ArrayLayout(unsigned(config.mult_bits), lanes),
        "shift": data.ArrayLayout(unsigned(config.shift_bits), lanes),
        "relu": unsigned(1),
    })


def output_layout(config):
    """Payload of the output stream: ``lanes`` raw activation codes (SPEC §1 bit patterns)."""
    return data.ArrayLayout(unsigned(config.act_format.bits), config.lanes)


class OutputStage(wiring.Component):
    """Per-channel fixed-point rescale, bias, ReLU, round and clip, as a stream pipeline.

    Parameters:
        config: :class:`hw.config.OutputStageConfig`.

    Members:
        i: In(stream.Signature(input_layout(config))), accumulators and parameters.
        o: Out(stream.Signature(output_layout(config))), activation codes.

    Latency and throughput: a beat accepted on ``i`` in cycle t appears on ``o``
    in cycle t + :attr:`latency` when ``o`` is not stalled; one beat per cycle.
    ``i.ready`` is high whenever the output register is empty or being read.
    """

    LATENCY = 4   # one more with each of split_mult and split_shift

    def __init__(self, config):
        if not isinstance(config, OutputStageConfig):
            self._MustUse__silence = True   # refused, never meant to be elaborated
            raise ValueError(f"config must be an OutputStageConfig, not {config!r}")
        self._config = config
        super().__init__({
            "i": In(stream.Signature(input_layout(config))),
            "o": Out(stream.Signature(output_layout(config))),
        })

    @property
    def config(self):
        return self._config

    @property
    def latency(self):
        """Cycles from a beat accepted on ``i`` to its result valid on ``o``."""
        return self.LATENCY + int(self._config.split_mult) + int(self._config.split_shift)

    @property
    def throughput(self):
        """Beats per cycle when ``o`` is always ready."""
        return 1

    def manifest_extra(self):
        return {"throughput": {"beats_per_cycle": self.throughput, "lanes": self._config.lanes},
                "rounding": "half_to_even"}

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        fmt = cfg.act_format
        lanes = range(cfg.lanes)
        # a shifted-in half can be as wide as the shift range
        round_bits = max(cfg.product_bits, cfg.max_shift) + 1

        # every stage moves on together when the output register can take a beat
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        # stages before the output register: bias, multiply (two with split_mult), round,
        # and with split_shift the shift
        mult_extra, shift_extra = int(cfg.split_mult), int(cfg.split_shift)
        depth = 3 + mult_extra + shift_extra
        valid = [Signal(name=f"valid{s}") for s in range(1, depth + 1)]
        total = [Signal(signed(cfg.sum_bits), name=f"total{n}") for n in lanes]
        product = [Signal(signed(cfg.product_bits), name=f"product{n}") for n in lanes]
        rounded = [Signal(signed(round_bits), name=f"rounded{n}") for n in lanes]
        # shift and relu travel alongside the data (the shift as far as the shift step).
        # Lanes often get the same multiplier and shift (a layer row's): odd lanes' copies
        # reset to all ones, even lanes' to zero (never used before a beat), so synthesis
        # keeps two copies, each wired to half the lanes' multipliers, not one for all.
        def copy(shape, n, name):
            return Signal(shape, name=name, init=0 if n % 2 == 0 else (1 << shape.width) - 1)
        mult1 = [copy(unsigned(cfg.mult_bits), n, f"mult1_{n}") for n in lanes]
        shift = [[copy(unsigned(cfg.shift_bits), n, f"shift{s}_{n}") for n in lanes]
                 for s in range(1, depth + 1 - shift_extra)]
        relu = [Signal(name=f"relu{s}") for s in range(1, depth + 1)]
        half_bits = cfg.mult_bits // 2   # split_mult: the multiplier's low half
        round_stage = 1 + mult_extra     # index of the shift register beside the product

        payload = self.i.payload
        with m.If(advance):
            m.d.sync += [valid[0].eq(self.i.valid), self.o.valid.eq(valid[-1]),
                         relu[0].eq(payload.relu)]
            m.d.sync += [valid[s].eq(valid[s - 1]) for s in range(1, depth)]
            m.d.sync += [relu[s].eq(relu[s - 1]) for s in range(1, depth)]
            for n in lanes:
                # stage 1: bias
                m.d.sync += [total[n].eq(payload.acc[n] + payload.bias[n]),
                             mult1[n].eq(payload.mult[n]), shift[0][n].eq(payload.shift[n])]
                # stage 2: scale multiplier
                if mult_extra:
                    lo = Signal(signed(cfg.sum_bits + half_bits + 1), name=f"product_lo{n}")
                    hi = Signal(signed(cfg.product_bits), name=f"product_hi{n}")
                    m.d.sync += [lo.eq(total[n] * mult1[n][:half_bits]),
                                 hi.eq(total[n] * mult1[n][half_bits:]),
                                 shift[1][n].eq(shift[0][n])]
                    m.d.sync += product[n].eq(lo + (hi << half_bits))
                else:
                    m.d.sync += product[n].eq(total[n] * mult1[n])
                m.d.sync += shift[round_stage][n].eq(shift[round_stage - 1][n])
                # stage 3: round half to even: add 2**(shift-1) - 1 + the bit that lands on lsb
                s = shift[round_stage][n]
                if shift_extra:
                    # the shift's masks decoded beside the product, a stage early: pick is
                    # bit s (the lsb-to-be), half bit s-1; below the bits under s-1
                    s_early = shift[round_stage - 1][n]
                    top = cfg.max_shift
                    pick = Signal(top + 1, name=f"round_pick{n}")
                    half = Signal(top, name=f"round_half{n}")
                    below = Signal(top, name=f"round_below{n}")
                    m.d.sync += [pick.eq(Cat(s_early == k for k in range(top + 1))),
                                 half.eq(Cat(s_early == k + 1 for k in range(top))),
                                 below.eq(Cat(s_early > k + 1 for k in range(top - 1)))]
                    # sign-filled like numpy's >>: a shift past the product picks its sign
                    wide = Signal(signed(round_bits), name=f"product_wide{n}")
                    m.d.comb += wide.eq(product[n])
                    lsb = (wide & pick).any()
                    # lsb 1: 2**(s-1); lsb 0: 2**(s-1) - 1; shift 0: both masks are 0
                    m.d.sync += rounded[n].eq(product[n] + Mux(lsb, half, below))
                else:
                    half = (Const(1, cfg.max_shift + 1) << s)[1:]
                    lsb = (product[n] >> s)[0]  # sign-filled, like numpy's >>
                    m.d.sync += rounded[n].eq(product[n] + Mux(s == 0, 0, half - 1 + lsb))
                m.d.sync += shift[round_stage + 1][n].eq(s)
                # stage 4: shift (split_shift: registered, then 5: ReLU and clip), keep the
                # code's bits
                y = rounded[n] >> shift[round_stage + 1][n]
                if shift_extra:
                    scaled = Signal(signed(round_bits), name=f"scaled{n}")
                    m.d.sync += scaled.eq(y)
                    y = scaled
                y = Mux(relu[-1] & (y < 0), 0, y)
                y = Mux(y > fmt.max, fmt.max, Mux(y < fmt.min, fmt.min, y))
                m.d.sync += self.o.payload[n].eq(y[:fmt.bits])
        return m
