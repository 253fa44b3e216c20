"""A cocotb module that fails on purpose: verif.build.run must report it usefully."""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from sparsecore.verif.build import MISMATCH_MARK, testbench_manifest, testbench_seed


@cocotb.test()
async def test_reports_a_mismatch(dut):
    manifest = testbench_manifest()
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await RisingEdge(dut.clk)
    dut._log.error("%s cycle 3: acc=1 expected 2 (design %s, seed %d)", MISMATCH_MARK,
                   manifest["top"], testbench_seed())
    raise AssertionError("acc=1 expected 2")


@cocotb.test()
async def test_passes(dut):
    assert testbench_manifest()["design"] == "MacUnit"
