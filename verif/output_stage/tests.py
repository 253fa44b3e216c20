"""cocotb tests of hw.output_stage.OutputStage, run in the simulator by
verif/output_stage/test_output_stage.py; expected codes come from sim.requant only.
"""

import cocotb
import numpy as np

from sparsecore.verif.output_stage.tb import OutputStageTB


@cocotb.test()
async def test_corners(dut):
    """Every combination of field extremes, exact halves at each shift, clip edges."""
    tb = OutputStageTB(dut, "test_corners")
    await tb.reset()
    tb.send(*tb.corner_beats())
    await tb.drain("corners")


@cocotb.test()
async def test_random(dut):
    """Random beats with random idle cycles and backpressure."""
    tb = OutputStageTB(dut, "test_random")
    await tb.reset()
    beats = tb.random_beats(3000)
    tb.send(*beats)
    # the stimulus must reach the inside of the format, not only its clip values
    want = tb.expected(*beats)
    inside = ((want > tb.out.min) & (want < tb.out.max)).mean()
    assert inside > 0.2, f"only {inside:.0%} of expected codes are inside the format"
    await tb.drain("random")


@cocotb.test()
async def test_full_rate(dut):
    """No idle, no backpressure: a beat per cycle in, each out exactly ``latency`` later."""
    tb = OutputStageTB(dut, "test_full_rate", idle=0.0, stall=0.0)
    tb.checker.probe_rate = 0.0
    await tb.reset()
    n = 200
    tb.send(*tb.random_beats(n))
    await tb.loop.run(lambda: len(tb.sink.beats) == n, max_cycles=n + 4 * tb.latency)
    sent = np.array(tb.source.sent)
    came = np.array([cycle for cycle, _ in tb.sink.beats])
    assert (np.diff(sent) == 1).all(), "the input stalled although the output never did"
    assert (came - sent == tb.latency).all(), (
        f"latency {sorted(set((came - sent).tolist()))} cycles, manifest says {tb.latency}")
    await tb.drain("full rate")


@cocotb.test()
async def test_reset_midway(dut):
    """Reset with beats in flight: nothing stale comes out after, the next beats are exact."""
    tb = OutputStageTB(dut, "test_reset_midway")
    await tb.reset()
    tb.send(*tb.random_beats(50))
    for _ in range(30):
        await tb.loop.step()
    await tb.reset()   # clears the sink, the scoreboard and the TB's beat log
    assert not tb.sink.beats and not tb.scoreboard.expected and not tb.beats
    tb.send(*tb.random_beats(100))
    await tb.drain("after reset")
