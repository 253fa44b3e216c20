"""MacUnit in Amaranth's simulator against sim.mac (the Verilator suite is verif/mac/)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from sparsecore.hw.config import MacConfig
from sparsecore.hw.mac import MacUnit
from sparsecore.sim.mac import code_values, mac_trace


@pytest.mark.parametrize("weights,acts,acc_bits", [
    ("int8", "uint8", 32), ("ternary", "int4", 5), ("int4", "uint4", 9)])
def test_mac_unit_matches_model(weights, acts, acc_bits):
    config = MacConfig(weights, acts, acc_bits)
    dut = MacUnit(config)
    rng = np.random.default_rng(11)
    n = 300
    w = rng.integers(0, 1 << config.weight_format.bits, n)
    a = rng.integers(0, 1 << config.act_format.bits, n)
    valid = rng.random(n) < 0.8
    clear = rng.random(n) < 0.1
    want = mac_trace(code_values(w, weights) * code_values(a, acts), valid, clear, acc_bits)
    seen = []

    async def bench(ctx):
        # ctx.get() after a tick reads the post-edge value: the result of the inputs
        # applied before tick t shows after tick t + latency - 1.
        for t in range(n + dut.latency - 1):
            if t < n:
                ctx.set(dut.w, int(w[t]))
                ctx.set(dut.a, int(a[t]))
                ctx.set(dut.valid, int(valid[t]))
                ctx.set(dut.clear, int(clear[t]))
            else:
                ctx.set(dut.valid, 0)
                ctx.set(dut.clear, 0)
            await ctx.tick()
            seen.append(ctx.get(dut.acc))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert dut.latency == 1
    assert seen[dut.latency - 1:] == want.tolist()
