"""cocotb tests of hw.layer.SparseLayer, run in the simulator by verif/layer/test_layer.py."""

import cocotb
import numpy as np

from sparsecore.verif.layer.tb import LayerTB


@cocotb.test()
async def test_random_layers(dut):
    """Random sparse and dense layers back to back, mixed parameters, idle cycles on all
    three inputs and backpressure on codes, traffic changing from layer to layer."""
    tb = LayerTB(dut, "test_random_layers")
    await tb.reset()
    for index in range(150):
        dense = bool(index % 2)
        tb.traffic(idle=float(tb.rng.choice([0.0, 0.3])),
                   params_idle=float(tb.rng.choice([0.0, 0.3, 0.8])),
                   stall=float(tb.rng.choice([0.0, 0.3, 0.6])), burst=int(tb.rng.integers(1, 6)))
        tb.submit(*tb.random_layer(dense), dense)
        await tb.drain(f"layer {index} ({'dense' if dense else 'sparse'})")
    inside = float(np.mean(tb.inside))
    assert inside > 0.2, f"only {inside:.0%} of expected codes inside the format: weak stimulus"


@cocotb.test()
async def test_small_shifts_round(dut):
    """Every row with a shift of 1 to 3 and a small multiplier, on short K: the rounding
    term (half - 1, plus the kept bit) of every lane shows in codes inside the format.
    Random rows rarely have such shifts (fixed_point_scale gives shifts near mult_bits)."""
    tb = LayerTB(dut, "test_small_shifts_round")
    await tb.reset()
    tb.traffic(idle=0.2, params_idle=0.3, stall=0.3, burst=2)
    g = tb.geometry
    for index in range(12):
        dense = bool(index % 2)
        weights, acts, _mult, _shift, _bias, relu = tb.random_layer(
            dense, m=2 * g.rows, k=4 * g.groups, n=2 * g.cols)
        rows = len(weights)
        mult = tb.rng.integers(1, 3, rows)
        shift = tb.rng.integers(1, 4, rows)
        bias = tb.rng.integers(-8, 9, rows)
        tb.submit(weights, acts, mult, shift, bias, relu, dense)
        await tb.drain(f"small shifts {index} ({'dense' if dense else 'sparse'})")
    inside = float(np.mean(tb.inside))
    assert inside > 0.5, f"only {inside:.0%} of expected codes inside the format: weak stimulus"


@cocotb.test()
async def test_swapped_index_codes(dut):
    """Sparse layers whose groups come with their two values and indices in the other
    order (a first index above the second, 3 among them): the same codes."""
    tb = LayerTB(dut, "test_swapped_index_codes")
    await tb.reset()
    tb.traffic(idle=0.2, params_idle=0.2, stall=0.2, burst=2)
    for index in range(8):
        tb.submit(*tb.random_layer(False), False, swap_indices=True)
        await tb.drain(f"swapped indices {index}")


@cocotb.test()
async def test_queued_layers(dut):
    """Several layers queued at once (modes switching between tiles with no gap), params
    much later than the accumulators or far ahead of them."""
    tb = LayerTB(dut, "test_queued_layers")
    await tb.reset()
    for params_idle, idle in ((0.9, 0.0), (0.0, 0.7)):
        tb.traffic(idle=idle, params_idle=params_idle, stall=0.2, burst=8)
        for index in range(4):
            dense = bool(index % 2)
            tb.submit(*tb.random_layer(dense), dense)
        await tb.drain(f"params idle {params_idle}, inputs idle {idle}")


@cocotb.test()
async def test_full_rate_latency(dut):
    """No idle, no backpressure: a beat every cycle, and each tile's codes come exactly
    ``latency`` (core + output stage) after the edge that accepts the tile's last beat."""
    tb = LayerTB(dut, "test_full_rate_latency")
    tb.checker.probe_rate = 0.0
    await tb.reset()
    tb.traffic()
    last_beats = []
    for dense in (False, True, False, True):
        layer = tb.random_layer(dense)
        before = len(tb.sources["weights"].queue)
        tb.submit(*layer, dense)
        last_beats += (before + np.flatnonzero(_last_flags(tb, before))).tolist()
    tiles = len(tb.scoreboard.expected)
    await tb.loop.run(lambda: len(tb.sink.beats) == tiles, 10 * len(last_beats) + 1000)
    sent = np.array(tb.sources["weights"].sent)
    came = np.array([cycle for cycle, _ in tb.sink.beats])
    assert (np.diff(sent) == 1).all(), "the layer left a bubble between input beats"
    lag = came - sent[last_beats]
    assert (lag == tb.latency).all(), (
        f"codes lag {sorted(set(lag.tolist()))} cycles, manifest latency {tb.latency}")
    await tb.drain("full rate")


def _last_flags(tb, start):
    """``last`` flags of the weights words queued from index ``start`` (from the manifest)."""
    offset = tb.manifest["streams"]["weights"]["fields"]["last"]["offset"]
    return [(w >> offset) & 1 for w in tb.sources["weights"].queue[start:]]


@cocotb.test()
async def test_reset_midway(dut):
    """Reset with tiles in the core and the stage and params queued: nothing stale comes
    out after it, and the next layers are exact."""
    tb = LayerTB(dut, "test_reset_midway")
    await tb.reset()
    tb.traffic(idle=0.2, params_idle=0.5, stall=0.3, burst=3)
    for dense in (False, True):
        tb.submit(*tb.random_layer(dense, m=2 * tb.geometry.rows, k=40), dense)
    for _ in range(int(tb.rng.integers(20, 60))):
        await tb.loop.step()
    assert tb.sources["weights"].sent, "the reset must come with beats in flight"
    await tb.reset()
    for dense in (True, False):
        tb.submit(*tb.random_layer(dense), dense)
    await tb.drain("after reset")
