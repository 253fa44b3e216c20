"""Product lanes: the one place that knows how to multiply one format by another.

A lane takes two raw codes (the unsigned bit patterns of SPEC §1 that travel on
a bus) and gives their product as a signed value of exactly
``config.product_bits`` bits. Every block that multiplies (the MAC, the tensor
core) asks this module, so no block decodes formats by itself.

How each weight format multiplies:

| weights      | lane                                                            |
|--------------|-----------------------------------------------------------------|
| int8, int4   | a sign-correct multiplier (the unsigned activation formats are  |
|              | zero-extended, the signed ones sign-extended)                   |
| ternary      | no multiplier: a 2:1 add/subtract multiplexer and a zero gate   |

Ternary codes, decoded by their two bits (``code[0]`` says nonzero,
``code[1]`` says negative):

| code | value        | lane gives |
|------|--------------|------------|
| 0b00 | 0            | 0          |
| 0b01 | +1           | +a         |
| 0b11 | -1           | -a         |
| 0b10 | reserved     | 0          |

Use :func:`product` combinationally inside any module; :class:`ProductLane`
wraps it as a component of its own (for lint, area reports and unit tests).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sparsecore.hw.config import MacConfig

__all__ = ["code_shape", "decode", "product", "ProductLane"]


def code_shape(fmt):
    """Shape of a format's raw code on a bus: always unsigned, ``fmt.bits`` wide."""
    return unsigned(fmt.bits)


def decode(fmt, code):
    """Raw code -> its integer value as an Amaranth Value (signed or unsigned per format).

    The reserved ternary code 0b10 decodes to -2 here; only :func:`product` knows
    to treat it as zero, so use this for non-ternary formats.
    """
    code = Value.cast(code)
    if len(code) != fmt.bits:
        raise ValueError(f"{fmt.name} code must be {fmt.bits} bits wide, not {len(code)}")
    return code.as_signed() if fmt.signed else code.as_unsigned()


def _fit(value, shape):
    """``value`` as exactly ``shape`` (signed); the caller guarantees the value fits."""
    width = len(value)
    if width > shape.width:
        value = value[:shape.width]
    elif width < shape.width:
        sign = value[-1] if value.shape().signed else Const(0, 1)
        value = Cat(value, sign.replicate(shape.width - width))
    return value.as_signed()


def product(config, w_code, a_code):
    """The product of a weight code and an activation code, as a combinational Value.

    Arguments:
        config: a :class:`hw.config.MacConfig` (or :class:`~hw.config.CoreConfig`);
            only ``weight_format``, ``act_format`` and ``product_bits`` are used.
        w_code: Value of ``config.weight_format.bits`` bits, the raw weight code.
        a_code: Value of ``config.act_format.bits`` bits, the raw activation code.

    Returns:
        A Value of shape ``signed(config.product_bits)`` equal to
        ``decode(w) * decode(a)``, with the reserved ternary code giving 0.
    """
    wf, af = config.weight_format, config.act_format
    shape = signed(config.product_bits)
    a = decode(af, a_code)
    w_code = Value.cast(w_code)
    if wf.name == "ternary":
        if len(w_code) != wf.bits:
            raise ValueError(f"ternary code must be 2 bits wide, not {len(w_code)}")
        # code[0] = nonzero, code[1] = negative; 0b10 has code[0] = 0, so it adds nothing.
        value = Mux(w_code[0], Mux(w_code[1], -a, a), 0)
    else:
        value = decode(wf, w_code) * a
    return _fit(value, Shape.cast(shape))


class ProductLane(wiring.Component):
    """One product lane as a component (purely combinational, latency 0).

    Parameters:
        config: :class:`hw.config.MacConfig`; formats decide the lane.

    Members:
        w: In(unsigned(weight bits)), raw weight code.
        a: In(unsigned(activation bits)), raw activation code.
        product: Out(signed(config.product_bits)), ``value(w) * value(a)``.
    """

    def __init__(self, config):
        if not isinstance(config, MacConfig):
            raise ValueError(f"config must be a MacConfig, not {config!r}")
        self._config = config
        super().__init__({
            "w": In(code_shape(config.weight_format)),
            "a": In(code_shape(config.act_format)),
            "product": Out(signed(config.product_bits)),
        })

    @property
    def config(self):
        return self._config

    @property
    def latency(self):
        """Cycles from inputs to ``product``: 0, the lane is combinational."""
        return 0

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.product.eq(product(self._config, self.w, self.a))
        return m
