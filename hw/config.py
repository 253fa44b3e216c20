"""The config records that decide everything a design is, and the named presets.

Everything else (port widths, multiplier counts, K per cycle) is derived here,
once; the Verilog manifest carries these numbers to the testbenches and the CLI.
"""

import dataclasses
from dataclasses import dataclass

from sparsecore.sim.formats import (
    ACTIVATION_FORMATS,
    DEFAULT_MULT_BITS,
    DEFAULT_SHIFT_BITS,
    check_fields,
    get_format,
)

__all__ = ["MacConfig", "CoreConfig", "OutputStageConfig", "LayerConfig", "PRESETS",
           "preset", "signed_bits_for"]

MAX_ACC_BITS = 64  # the numpy model accumulates in int64


def signed_bits_for(lo, hi):
    """Smallest two's complement width that holds every integer in [lo, hi]."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


@dataclass(frozen=True)
class MacConfig:
    """One multiply-accumulate lane: weight format x activation format into acc_bits."""

    weights: str = "int8"
    acts: str = "int8"
    acc_bits: int = 32

    def __post_init__(self):
        get_format(self.weights, "weights")
        get_format(self.acts, "acts")
        _check_positive_int("acc_bits", self.acc_bits)
        needed = self.min_acc_bits
        if not needed <= self.acc_bits <= MAX_ACC_BITS:
            raise ValueError(
                f"acc_bits must be in {needed}..{MAX_ACC_BITS} for {self.weights} x "
                f"{self.acts}{self._acc_bits_reason()}, not {self.acc_bits!r}")

    def _acc_bits_reason(self):
        return ""

    @property
    def min_acc_bits(self):
        return self.product_bits

    @property
    def weight_format(self):
        return get_format(self.weights, "weights")

    @property
    def act_format(self):
        return get_format(self.acts, "acts")

    @property
    def product_range(self):
        w, a = self.weight_format, self.act_format
        corners = [x * y for x in (w.min, w.max) for y in (a.min, a.max)]
        return min(corners), max(corners)

    @property
    def product_bits(self):
        return signed_bits_for(*self.product_range)

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CoreConfig(MacConfig):
    """A 2:4 sparse tensor core producing a rows x cols output tile.

    Per cycle it consumes a K-chunk of 4*groups in sparse mode (2 of every 4
    weights kept, with 2-bit indices) or 2*groups in dense mode, on the same
    rows*cols*2*groups multipliers.
    """

    rows: int = 4
    cols: int = 4
    groups: int = 2

    def __post_init__(self):
        for name in ("rows", "cols", "groups"):
            _check_positive_int(name, getattr(self, name))
        super().__post_init__()

    def _acc_bits_reason(self):
        return f" with groups={self.groups} (one K-chunk's sum)"

    @property
    def min_acc_bits(self):
        return self.chunk_sum_bits

    @property
    def products_per_lane(self):
        """Multipliers per output element: 2 kept values per group."""
        return 2 * self.groups

    @property
    def multipliers(self):
        return self.rows * self.cols * self.products_per_lane

    @property
    def k_sparse(self):
        """K consumed per cycle in sparse mode."""
        return 4 * self.groups

    @property
    def k_dense(self):
        """K consumed per cycle in dense mode."""
        return 2 * self.groups

    @property
    def chunk_sum_bits(self):
        lo, hi = self.product_range
        n = self.products_per_lane
        return signed_bits_for(n * lo, n * hi)


@dataclass(frozen=True)
class OutputStageConfig:
    """The output stage between a core's accumulators and the next layer.

    Fields:
        acc_bits: width of the accumulators coming in (the core's ``acc_bits``).
        acts: activation format going out (``int8``, ``uint8``, ``int4``, ``uint4``).
        lanes: accumulators per beat.
        mult_bits: width of the unsigned fixed-point scale multiplier.
        shift_bits: width of the right-shift field (shifts 0 .. 2**shift_bits - 1).

    The bias is ``acc_bits`` wide (accumulator units). The arithmetic is in
    ``sim/requant.py``, which also validates the widths.
    """

    acc_bits: int = 32
    acts: str = "uint4"
    lanes: int = 4
    mult_bits: int = DEFAULT_MULT_BITS
    shift_bits: int = DEFAULT_SHIFT_BITS

    def __post_init__(self):
        get_format(self.acts, "acts")
        _check_positive_int("lanes", self.lanes)
        check_fields(self.acc_bits, self.mult_bits, self.shift_bits)

    @classmethod
    def for_core(cls, core, acts=None, **fields):
        """The output stage after ``core``: its acc_bits, one result tile (rows x cols
        accumulators) per beat, and its activation format unless ``acts`` names another
        (the last layer's logits, say)."""
        if not isinstance(core, CoreConfig):
            raise ValueError(f"core must be a CoreConfig, not {core!r}")
        fields.setdefault("lanes", core.rows * core.cols)
        return cls(acc_bits=core.acc_bits, acts=core.acts if acts is None else acts, **fields)

    @property
    def act_format(self):
        return get_format(self.acts, "acts")

    @property
    def bias_bits(self):
        return self.acc_bits

    @property
    def sum_bits(self):
        """acc + bias, exact."""
        return self.acc_bits + 1

    @property
    def product_bits(self):
        """(acc + bias) * mult, exact (mult is unsigned)."""
        return self.sum_bits + self.mult_bits

    @property
    def max_shift(self):
        return (1 << self.shift_bits) - 1

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LayerConfig(CoreConfig):
    """One network layer in hardware: a core and the output stage after it (hw/layer.py).

    The core's fields, plus:
        out: activation format of the output codes (default: the core's ``acts``,
            a hidden layer feeding the next one; e.g. ``int8`` for logits).
        mult_bits, shift_bits: the output stage's fixed-point fields.

    :attr:`core` and :attr:`output_stage` are the two records the layer builds
    its blocks from; nothing else decides a width.
    """

    out: str | None = None
    mult_bits: int = DEFAULT_MULT_BITS
    shift_bits: int = DEFAULT_SHIFT_BITS

    def __post_init__(self):
        super().__post_init__()
        if self.out is None:
            object.__setattr__(self, "out", self.acts)
        if self.out not in ACTIVATION_FORMATS:
            raise ValueError(f"out must be one of {', '.join(ACTIVATION_FORMATS)}, "
                             f"not {self.out!r}")
        check_fields(self.acc_bits, self.mult_bits, self.shift_bits)

    @classmethod
    def of(cls, core, **fields):
        """The layer around the core ``core`` (a CoreConfig) with output stage ``fields``."""
        if not isinstance(core, CoreConfig):
            raise ValueError(f"core must be a CoreConfig, not {core!r}")
        return cls(**MacConfig.as_dict(core), **fields)

    @property
    def core(self):
        return CoreConfig(**{f.name: getattr(self, f.name)
                             for f in dataclasses.fields(CoreConfig)})

    @property
    def output_stage(self):
        return OutputStageConfig.for_core(self.core, acts=self.out, mult_bits=self.mult_bits,
                                          shift_bits=self.shift_bits)

    @property
    def out_format(self):
        return get_format(self.out, "acts")


PRESETS = {
    "tiny": CoreConfig(rows=2, cols=2, groups=1),
    "default": CoreConfig(),
    "ternary_uint4": CoreConfig(weights="ternary", acts="uint4"),
    "int4_int4": CoreConfig(weights="int4", acts="int4"),
    "wrap": CoreConfig(rows=2, cols=2, groups=1, acc_bits=18),
}


def preset(name):
    if name not in PRESETS:
        raise ValueError(f"config must be one of {', '.join(PRESETS)}, not {name!r}")
    return PRESETS[name]
