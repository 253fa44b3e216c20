"""The TB class of hw.mac.MacUnit (one build per format pair and acc_bits).

Widths, formats, acc_bits and latency come from the manifest; expected values
come from sim.mac only. A test drives a whole stimulus array, one await per
clock, samples ``acc`` after every edge and compares the trace with
``sim.mac.mac_trace``. The MAC has plain valid/clear inputs, not streams, so
the TB registers no stream parts; its reset holds those inputs low.
"""

import numpy as np
from cocotb.triggers import RisingEdge

from sparsecore.sim.formats import get_format
from sparsecore.sim.mac import code_values, mac_trace
from sparsecore.verif.build import MISMATCH_MARK
from sparsecore.verif.tb import TestBench

MAX_REPORTED = 5


class MacTB(TestBench):
    """A cycle-by-cycle driver and sampler for MacUnit."""

    def __init__(self, dut, name):
        super().__init__(dut, name)
        config = self.manifest["config"]
        self.weights = get_format(config["weights"], "weights")
        self.acts = get_format(config["acts"], "acts")
        self.acc_bits = config["acc_bits"]
        ports = {p["name"]: p for p in self.manifest["ports"]}
        assert ports["acc"]["width"] == self.acc_bits and ports["acc"]["signed"]

    def quiet_inputs(self):
        for name in ("w", "a", "valid", "clear"):
            getattr(self.dut, name).value = 0

    def random_codes(self, n):
        """Uniform over every code of each format (the reserved ternary code included)."""
        w = self.rng.integers(0, 1 << self.weights.bits, n)
        a = self.rng.integers(0, 1 << self.acts.bits, n)
        return w, a

    async def drive(self, w, a, valid, clear, reset=None):
        """Apply one stimulus per cycle; return ``acc`` for each cycle's inputs.

        A read right after ``RisingEdge`` sees the values from just before that
        edge, so the result of the inputs of cycle t (visible ``latency`` edges
        later) is read after edge t + latency.
        """
        n = len(w)
        reset = np.zeros(n, bool) if reset is None else reset
        stim = np.stack([np.asarray(x, np.int64) for x in (w, a, valid, clear, reset)], 1)
        idle = [[0, 0, 0, 0, 0]] * self.latency  # flushes the last inputs through
        dut = self.dut
        port_w, port_a, port_v, port_c, port_r = dut.w, dut.a, dut.valid, dut.clear, dut.rst
        acc, clk = dut.acc, dut.clk
        seen = []
        for wt, at, vt, ct, rt in stim.tolist() + idle:
            port_w.value = wt
            port_a.value = at
            port_v.value = vt
            port_c.value = ct
            port_r.value = rt
            await RisingEdge(clk)
            seen.append(acc.value.to_signed())
        return np.array(seen[self.latency:], np.int64)

    async def check(self, w, a, valid, clear, reset=None, what="run"):
        """Drive the stimulus and compare ``acc`` with sim.mac; return the expected trace."""
        n = len(w)
        valid = np.asarray(valid, bool)
        clear = np.asarray(clear, bool)
        reset = np.zeros(n, bool) if reset is None else np.asarray(reset, bool)
        products = code_values(w, self.weights) * code_values(a, self.acts)
        want = mac_trace(products, valid, clear, self.acc_bits, reset=reset)
        got = await self.drive(w, a, valid, clear, reset)
        bad = np.flatnonzero(got != want)
        for t in bad[:MAX_REPORTED]:
            self.dut._log.error(
                "%s %s cycle %d: w=%#x a=%#x valid=%d clear=%d rst=%d acc=%d expected %d",
                MISMATCH_MARK, what, t, w[t], a[t], valid[t], clear[t], reset[t],
                got[t], want[t])
        assert not bad.size, (
            f"{what}: {bad.size} of {n} cycles differ, first at cycle {bad[0]}: "
            f"acc={got[bad[0]]} expected {want[bad[0]]} (seed {self.seed})")
        self.dut._log.info("%s: %d cycles match sim.mac", what, n)
        return want
