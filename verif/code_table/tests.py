"""cocotb tests of hw.code_table.CodeTable, on the TB of ``tb.py``."""

import cocotb
import numpy as np

from sparsecore.sim.code_table import FUNCTIONS, function_table
from sparsecore.verif.code_table.tb import CodeTableTB


def _function_tables(tb):
    """sigmoid, tanh and GELU tables between the TB's code formats (sim.code_table)."""
    span = tb.in_fmt.max - tb.in_fmt.min + 1
    in_scale = 8.0 / span          # the codes cover [-4, 4) (a signed format)
    out_scale = 1.0 / max(abs(tb.out_fmt.min), tb.out_fmt.max)
    return {name: function_table(name, in_scale, out_scale, tb.codes, tb.out)
            for name in FUNCTIONS}


@cocotb.test()
async def test_functions_reloaded(dut):
    """sigmoid, tanh, GELU: one table per job, reloaded between jobs with the previous job's
    beats still in flight, idle cycles on both inputs and backpressure on o."""
    tb = CodeTableTB(dut, "functions_reloaded")
    await tb.reset()
    tables = _function_tables(tb)
    assert len({tuple(t) for t in tables.values()}) == len(tables), "tables must differ"
    for name, table in tables.items():
        await tb.reload_and_look_up(table, name)
    await tb.drain("sigmoid, tanh, GELU jobs")
    assert tb.scoreboard.checked == len(tables) * tb.size


@cocotb.test()
async def test_interleaved_writes(dut):
    """Random single writes interleaved with lookups at random: the contract says which
    lookups see which writes (same edge: the old entry)."""
    tb = CodeTableTB(dut, "interleaved_writes", idle=0.3, stall=0.3, table_idle=0.5)
    await tb.reset()
    tb.load(tb.random_table(), order=tb.rng.permutation(tb.size))
    n = 600
    tb.send(tb.rng.integers(tb.in_fmt.min, tb.in_fmt.max + 1, (n, tb.lanes)))
    # hot codes: writes hit codes that are being looked up
    hot = tb.rng.integers(tb.in_fmt.min, tb.in_fmt.max + 1, 8)
    tb.send(tb.rng.choice(hot, (n, tb.lanes)))
    tb.write(tb.rng.choice(hot, 3 * n),
             tb.rng.integers(tb.out_fmt.min, tb.out_fmt.max + 1, 3 * n))
    await tb.drain("interleaved writes")
    same_edge = len(set(c for _, c in tb.looked_up) & set(tb.write_cycles))
    assert same_edge > 10, f"only {same_edge} edges had a write and a lookup together"


@cocotb.test()
async def test_every_cell_both_ways(dut):
    """A random table, its bitwise complement, then it again, each read back whole: every
    bit of every entry is written 1 and 0 (a stuck or shorted cell shows)."""
    tb = CodeTableTB(dut, "every_cell_both_ways")
    await tb.reset()
    table = tb.random_table()
    complement = tb.out_fmt.min + tb.out_fmt.max - table   # ~x in the format's bits
    for name, values in (("random", table), ("complement", complement), ("again", table)):
        await tb.reload_and_look_up(values, name)
    await tb.drain("random table, complement, again")
    assert tb.scoreboard.checked == 3 * tb.size


@cocotb.test()
async def test_full_rate(dut):
    """No idle, no backpressure: a beat per cycle in, each out exactly ``latency`` later,
    and the table stream never held."""
    tb = CodeTableTB(dut, "full_rate", idle=0.0, stall=0.0, table_idle=0.0)
    tb.checker.probe_rate = 0.0
    await tb.reset()
    tb.load(tb.random_table())
    await tb.drain("table load")
    first = len(tb.sink.beats)
    n = 300
    tb.send(tb.all_codes(repeat=-(-n // tb.size))[:n])
    await tb.loop.run(lambda: len(tb.sink.beats) - first >= n, max_cycles=n + 4 * tb.latency)
    sent = np.array(tb.source.sent)
    came = np.array([cycle for cycle, _ in tb.sink.beats])
    assert (np.diff(sent) == 1).all(), "the input stalled although the output never did"
    assert (came - sent == tb.latency).all(), (
        f"latency {sorted(set((came - sent).tolist()))} cycles, manifest says {tb.latency}")
    assert (np.diff(tb.write_cycles) == 1).all(), "the table took less than a write per cycle"
    await tb.drain("full rate")


@cocotb.test()
async def test_reset_midway(dut):
    """Reset with beats in flight: nothing stale comes out after, and the table survives
    the reset (the contract: reset clears the pipeline, not the memory)."""
    tb = CodeTableTB(dut, "reset_midway")
    await tb.reset()
    tb.load(tb.random_table())
    await tb.drain("table load")
    tb.send(tb.all_codes())
    for _ in range(40):
        await tb.loop.step()
    await tb.reset()
    tb.sink.beats.clear()
    tb.scoreboard.clear()
    tb.looked_up.clear()
    tb.send(tb.all_codes())
    await tb.drain("after reset, the table loaded before it")
