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

__all__ = ["MacConfig", "CoreConfig", "OutputStageConfig", "LayerConfig", "AccelConfig",
           "CodeTableConfig",
           "PRESETS", "preset", "signed_bits_for", "MAX_ACC_BITS", "MAX_MULTIPLIERS",
           "MAX_PORT_BITS"]

MAX_ACC_BITS = 64  # the numpy model accumulates in int64
# Generator limits: far above the presets and the bench sweep (8 x 8 x G1, 128 multipliers),
# below what Amaranth elaborates and Verilator compiles in minutes. A core needs both.
MAX_MULTIPLIERS = 1024    # rows * cols * 2 * groups
MAX_PORT_BITS = 8192      # the widest stream payload (see CoreConfig.port_bits)


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
        # Before anything derives from them: a huge rows would otherwise reach Amaranth.
        if self.multipliers > MAX_MULTIPLIERS:
            raise ValueError(
                f"rows * cols * 2 * groups (the multiplier count) must be at most "
                f"{MAX_MULTIPLIERS}, not {self.multipliers} (rows={self.rows}, "
                f"cols={self.cols}, groups={self.groups})")
        super().__post_init__()
        widest = max(self.port_bits.items(), key=lambda item: item[1])
        if widest[1] > MAX_PORT_BITS:
            raise ValueError(f"the {widest[0]} port would be {widest[1]} bits wide; the "
                             f"widest port must be at most {MAX_PORT_BITS} bits")

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
    def port_bits(self):
        """Payload width of each stream of the sparse core: {"weights", "activations",
        "results"} (the manifest's ``payload_width``; tests cross-check the two)."""
        w, a = self.weight_format.bits, self.act_format.bits
        return {
            # per row: 2G values, G 4-bit codes; then the dense, last, accumulate flags
            "weights": self.rows * (self.products_per_lane * w + 4 * self.groups) + 3,
            "activations": self.k_sparse * self.cols * a,
            "results": self.rows * self.cols * self.acc_bits,
        }

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
        split_mult: multiply in two pipeline stages (the multiplier's low and high
            halves, then their sum): one cycle more latency, half the multiplier
            depth on the clock's path (the accelerator's stage, placed across a
            large device, needs it; hw/accel.py).
        split_shift: the last step in two pipeline stages, the variable right shift
            registered, then ReLU and clip; and the rounding term's masks decoded
            from the shift a stage early (registered beside the product), so the
            rounding add has no shifter in front of it: one cycle more latency (the
            accelerator's stage uses it too).

    The bias is ``acc_bits`` wide (accumulator units). The arithmetic is in
    ``sim/requant.py``, which also validates the widths.
    """

    acc_bits: int = 32
    acts: str = "uint4"
    lanes: int = 4
    mult_bits: int = DEFAULT_MULT_BITS
    shift_bits: int = DEFAULT_SHIFT_BITS
    split_mult: bool = False
    split_shift: bool = False

    def __post_init__(self):
        get_format(self.acts, "acts")
        _check_positive_int("lanes", self.lanes)
        for name in ("split_mult", "split_shift"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be True or False, not {value!r}")
        check_fields(self.acc_bits, self.mult_bits, self.shift_bits)
        if self.lanes * self.acc_bits > MAX_PORT_BITS:
            raise ValueError(f"the accumulators port would be {self.lanes * self.acc_bits} "
                             f"bits wide (lanes={self.lanes} x acc_bits={self.acc_bits}); the "
                             f"widest port must be at most {MAX_PORT_BITS} bits")

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
        table: None, or the format of the entries of a code table after the output
            stage (``hw/code_table.py``: a nonlinearity loaded at run time); the
            layer's codes are then the table's entries.

    :attr:`core` and :attr:`output_stage` are the two records the layer builds
    its blocks from; nothing else decides a width.
    """

    out: str | None = None
    mult_bits: int = DEFAULT_MULT_BITS
    shift_bits: int = DEFAULT_SHIFT_BITS
    table: str | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.out is None:
            object.__setattr__(self, "out", self.acts)
        if self.out not in ACTIVATION_FORMATS:
            raise ValueError(f"out must be one of {', '.join(ACTIVATION_FORMATS)}, "
                             f"not {self.out!r}")
        if self.table is not None and self.table not in ACTIVATION_FORMATS:
            raise ValueError(f"table must be None or one of {', '.join(ACTIVATION_FORMATS)}, "
                             f"not {self.table!r}")
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

    @property
    def code_table(self):
        """The code table's config (None without a table): the stage's codes in."""
        if self.table is None:
            return None
        return CodeTableConfig(codes=self.out, out=self.table, lanes=self.rows * self.cols)

    @property
    def codes_format(self):
        """Format of the layer's output codes: the table's entries, else ``out``."""
        return get_format(self.table or self.out, "acts")


@dataclass(frozen=True)
class CodeTableConfig:
    """The code table after the output stage (hw/code_table.py): a nonlinearity by lookup.

    Fields:
        codes: activation format of the codes looked up (the output stage's ``out``);
            the table has one entry per code, ``2**bits`` entries.
        out: activation format of the table's entries (what comes out).
        lanes: codes per beat (one read port each).
    """

    codes: str = "int8"
    out: str = "int8"
    lanes: int = 4

    def __post_init__(self):
        if self.codes not in ACTIVATION_FORMATS:
            raise ValueError(f"codes must be one of {', '.join(ACTIVATION_FORMATS)}, "
                             f"not {self.codes!r}")
        if self.out not in ACTIVATION_FORMATS:
            raise ValueError(f"out must be one of {', '.join(ACTIVATION_FORMATS)}, "
                             f"not {self.out!r}")
        _check_positive_int("lanes", self.lanes)

    @property
    def in_format(self):
        return get_format(self.codes, "acts")

    @property
    def out_format(self):
        return get_format(self.out, "acts")

    @property
    def entries(self):
        """Table entries: one per input code."""
        return 1 << self.in_format.bits

    def as_dict(self):
        return dataclasses.asdict(self)


def _bytes(bits):
    return -(-bits // 8)


@dataclass(frozen=True)
class AccelConfig(CoreConfig):
    """The accelerator (hw/accel.py): a core, its on-chip buffers and tile sequencer.

    The core's fields, plus:
        load_bytes: width of the one external load stream, bytes per cycle.
        out_bytes: width of the result stream, bytes per cycle.
        a_depth: words in each of the two weight-stripe buffers (ping-pong), one
            word per K-chunk of a ``rows``-row stripe of A: the longest K the
            accelerator takes is ``a_depth`` chunks (``a_depth * k_sparse``
            sparse, ``a_depth * k_dense`` dense).
        b_depth: words in the activation buffer, one word per ``k_sparse`` rows
            of K by ``cols`` columns of B: all of a job's B must fit
            (``ceil(K / k_sparse) * ceil(N / cols) <= b_depth``).
        count_bits: width of the descriptor's counts (``m_tiles``, ``n_tiles``,
            ``k_chunks``): wide enough to state jobs the buffers refuse.
        out: activation format of the output codes a ``codes`` job returns (default:
            the core's ``acts``, a hidden layer feeding the next one).
        mult_bits, shift_bits: the output stage's fixed-point fields.
        p_depth: words in the output-stage parameter buffer, one word (bias, mult,
            shift of each of the ``rows`` output channels) per stripe: the most
            stripes a ``codes`` job takes.

    Buffer sizes, word widths and the beats a word takes on the load stream are
    derived here (and so land in the manifest's ``derived``); the output stage is
    :attr:`output_stage`'s record.
    """

    load_bytes: int = 16
    out_bytes: int = 16
    a_depth: int = 384
    b_depth: int = 6144
    count_bits: int = 16
    out: str | None = None
    mult_bits: int = DEFAULT_MULT_BITS
    shift_bits: int = DEFAULT_SHIFT_BITS
    p_depth: int = 512

    def __post_init__(self):
        super().__post_init__()
        for name in ("load_bytes", "out_bytes", "a_depth", "b_depth", "count_bits",
                     "p_depth"):
            _check_positive_int(name, getattr(self, name))
        if self.count_bits > 32:
            raise ValueError(f"count_bits must be in 1..32, not {self.count_bits!r}")
        if self.out is None:
            object.__setattr__(self, "out", self.acts)
        if self.out not in ACTIVATION_FORMATS:
            raise ValueError(f"out must be one of {', '.join(ACTIVATION_FORMATS)}, "
                             f"not {self.out!r}")
        check_fields(self.acc_bits, self.mult_bits, self.shift_bits)

    @classmethod
    def of(cls, core, **fields):
        """The accelerator around the core ``core`` (a CoreConfig) with buffer ``fields``."""
        if not isinstance(core, CoreConfig):
            raise ValueError(f"core must be a CoreConfig, not {core!r}")
        return cls(**{f.name: getattr(core, f.name) for f in dataclasses.fields(CoreConfig)},
                   **fields)

    @property
    def core(self):
        return CoreConfig(**{f.name: getattr(self, f.name)
                             for f in dataclasses.fields(CoreConfig)})

    @property
    def a_word_bits(self):
        """One K-chunk of a stripe: rows x 2G weight codes, then rows x G 4-bit codes."""
        return (self.rows * self.products_per_lane * self.weight_format.bits
                + self.rows * self.groups * 4)

    @property
    def b_word_bits(self):
        """``k_sparse`` rows of B by ``cols`` activation codes (two dense chunks)."""
        return self.k_sparse * self.cols * self.act_format.bits

    @property
    def result_bits(self):
        return self.rows * self.cols * self.acc_bits

    @property
    def a_word_beats(self):
        """Load beats per A word: its bytes rounded up to whole beats."""
        return -(-_bytes(self.a_word_bits) // self.load_bytes)

    @property
    def b_word_beats(self):
        return -(-_bytes(self.b_word_bits) // self.load_bytes)

    @property
    def out_beats(self):
        """Result-stream beats per output tile."""
        return -(-_bytes(self.result_bits) // self.out_bytes)

    @property
    def output_stage(self):
        """The output stage behind the core (a ``codes`` job's path): ``cols`` lanes, one
        row of a result tile per beat (a tile takes ``rows`` cycles; the core gives one
        every ``k_chunks`` or more, so a whole-tile stage would idle at ``rows`` times
        the multipliers)."""
        return OutputStageConfig.for_core(self.core, acts=self.out, mult_bits=self.mult_bits,
                                          shift_bits=self.shift_bits, lanes=self.cols,
                                          split_mult=True, split_shift=True)

    @property
    def codes_period(self):
        """Fewest cycles between a codes job's tiles: its code beats, its rows through the
        stage, and 3 (the parameter buffer's registered address moves on at a stripe's
        last tile, its word shows an edge later and is registered at the next)."""
        return max(self.code_beats, self.rows, 3)

    @property
    def out_format(self):
        return get_format(self.out, "acts")

    @property
    def p_word_bits(self):
        """One stripe's output-stage parameters: rows biases (``acc_bits``), then rows
        multipliers (``mult_bits``), then rows shifts (``shift_bits``)."""
        return self.rows * (self.acc_bits + self.mult_bits + self.shift_bits)

    @property
    def p_word_beats(self):
        return -(-_bytes(self.p_word_bits) // self.load_bytes)

    @property
    def code_bits(self):
        """One output tile of codes: rows x cols codes of the ``out`` format."""
        return self.rows * self.cols * self.out_format.bits

    @property
    def code_beats(self):
        """Result-stream beats per output tile of a ``codes`` job."""
        return -(-_bytes(self.code_bits) // self.out_bytes)

    @property
    def p_buffer_bits(self):
        return self.p_depth * self.p_word_bits

    @property
    def a_buffer_bits(self):
        """Both weight-stripe buffers."""
        return 2 * self.a_depth * self.a_word_bits

    @property
    def b_buffer_bits(self):
        return self.b_depth * self.b_word_bits


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
