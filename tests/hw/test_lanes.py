# amaranth: UnusedElaboratable=no
"""Product lanes against plain integer math, exhaustively over every code pair."""

import itertools

import pytest
from amaranth.hdl import Signal, unsigned
from amaranth.sim import Simulator

from sparsecore.hw.config import MacConfig
from sparsecore.hw.lanes import ProductLane, product
from sparsecore.sim.formats import ACTIVATION_FORMATS, WEIGHT_FORMATS

PAIRS = list(itertools.product(WEIGHT_FORMATS, ACTIVATION_FORMATS))


def plain_value(name, code):
    """SPEC §1 written out by hand: bits, signedness, reserved ternary code -> 0."""
    bits, signed = {"int8": (8, True), "uint8": (8, False), "int4": (4, True),
                    "uint4": (4, False), "ternary": (2, True)}[name]
    if name == "ternary" and code == 0b10:
        return 0
    if signed and code >= 1 << (bits - 1):
        return code - (1 << bits)
    return code


@pytest.mark.parametrize("weights,acts", PAIRS)
def test_lane_exhaustive(weights, acts):
    config = MacConfig(weights, acts)
    dut = ProductLane(config)
    assert dut.product.shape().signed and len(dut.product) == config.product_bits
    wbits, abits = config.weight_format.bits, config.act_format.bits
    mismatches = []

    async def bench(ctx):
        for w, a in itertools.product(range(1 << wbits), range(1 << abits)):
            ctx.set(dut.w, w)
            ctx.set(dut.a, a)
            got = ctx.get(dut.product)
            want = plain_value(weights, w) * plain_value(acts, a)
            if got != want:
                mismatches.append((w, a, got, want))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert not mismatches, f"first mismatch (w code, a code, got, want): {mismatches[0]}"


def test_product_rejects_wrong_code_width():
    config = MacConfig("int8", "int4")
    with pytest.raises(ValueError, match="int8 code must be 8 bits wide, not 4"):
        product(config, Signal(unsigned(4)), Signal(unsigned(4)))
    with pytest.raises(ValueError, match="ternary code must be 2 bits wide, not 3"):
        product(MacConfig("ternary", "int4"), Signal(3), Signal(4))


def test_lane_rejects_non_config():
    with pytest.raises(ValueError, match="config must be a MacConfig"):
        ProductLane(("int8", "int8"))
