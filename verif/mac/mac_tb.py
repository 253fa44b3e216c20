"""cocotb testbench for hw.mac.MacUnit (one build per format pair and acc_bits).

Widths, formats, acc_bits and latency come from the manifest; expected values
come from sim.mac only. Each test drives a whole stimulus array, one await per
clock, samples ``acc`` after every edge and compares the trace with
``sim.mac.mac_trace``. The seed is logged; SPARSECORE_SEED reruns it.
"""

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from sparsecore.sim.formats import get_format
from sparsecore.sim.mac import code_values, mac_trace
from sparsecore.verif.build import MISMATCH_MARK, testbench_manifest, testbench_seed

MAX_REPORTED = 5


class TB:
    """Clock, reset and a cycle-by-cycle driver/sampler for MacUnit."""

    def __init__(self, dut, test_id):
        self.dut = dut
        self.manifest = testbench_manifest()
        config = self.manifest["config"]
        self.weights = get_format(config["weights"], "weights")
        self.acts = get_format(config["acts"], "acts")
        self.acc_bits = config["acc_bits"]
        self.latency = self.manifest["latency"]
        ports = {p["name"]: p for p in self.manifest["ports"]}
        assert ports["acc"]["width"] == self.acc_bits and ports["acc"]["signed"]
        self.seed = testbench_seed()
        # Each test has its own stream, so a test's stimulus does not depend on which
        # other tests ran before it.
        self.rng = np.random.default_rng([self.seed, test_id])
        dut._log.info("%s x %s, acc_bits=%d, latency=%d, seed=%d", self.weights.name,
                      self.acts.name, self.acc_bits, self.latency, self.seed)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())

    async def reset(self):
        self.dut.rst.value = 1
        for name in ("w", "a", "valid", "clear"):
            getattr(self.dut, name).value = 0
        for _ in range(2):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

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


@cocotb.test()
async def test_every_code_pair(dut):
    """Every (w code, a code) once with clear each cycle: acc is exactly that product.

    Covers each format's extremes and the reserved ternary code; then up to 4096
    of them again, accumulating (no clear) in a shuffled order.
    """
    tb = TB(dut, 1)
    await tb.reset()
    w, a = np.meshgrid(np.arange(1 << tb.weights.bits), np.arange(1 << tb.acts.bits))
    w, a = w.ravel(), a.ravel()
    n = w.size
    await tb.check(w, a, np.ones(n), np.ones(n), what="every code pair, clear each cycle")
    # Sums of many of them (a sample for the 8-bit x 8-bit pairs; test_random adds more).
    order = tb.rng.permutation(n)[:4096]
    clear = np.zeros(order.size)
    clear[0] = 1
    await tb.check(w[order], a[order], np.ones(order.size), clear,
                   what="code pairs, accumulated")


@cocotb.test()
async def test_random(dut):
    """Several thousand random cycles: random codes, valid 80 %, clear 4 %."""
    tb = TB(dut, 2)
    await tb.reset()
    n = 6000
    w, a = tb.random_codes(n)
    await tb.check(w, a, tb.rng.random(n) < 0.8, tb.rng.random(n) < 0.04, what="random")


@cocotb.test()
async def test_extremes_accumulate(dut):
    """Runs of each extreme product (min/max of both formats) without clearing."""
    tb = TB(dut, 3)
    await tb.reset()
    wf, af = tb.weights, tb.acts
    w_ext = wf.encode([wf.min, wf.max, -1 if wf.signed else 1, 0]).astype(np.int64)
    a_ext = af.encode([af.min, af.max, 1]).astype(np.int64)
    pairs = [(x, y) for x in w_ext for y in a_ext]
    run = 64
    w = np.repeat([p[0] for p in pairs], run)
    a = np.repeat([p[1] for p in pairs], run)
    n = w.size
    clear = np.zeros(n)
    clear[::run * 3] = 1  # start fresh now and then, so sums of one sign build up
    await tb.check(w, a, np.ones(n), clear, what="extreme products")


@cocotb.test()
async def test_clear_controls(dut):
    """clear alone, clear with valid, clear held, valid low between accumulations."""
    tb = TB(dut, 4)
    await tb.reset()
    n = 400
    w, a = tb.random_codes(n)
    # Patterns of (valid, clear) in blocks: accumulate, clear+valid, clear alone,
    # clear held for several cycles, idle, accumulate again.
    pattern = [(1, 0)] * 6 + [(1, 1)] + [(1, 0)] * 5 + [(0, 1)] + [(0, 0)] * 3 + \
              [(1, 1)] * 4 + [(1, 0)] * 4 + [(0, 1)] * 3 + [(1, 0)] * 3 + [(0, 0)] * 2
    reps = -(-n // len(pattern))
    valid, clear = np.array(pattern * reps)[:n].T
    await tb.check(w, a, valid, clear, what="clear patterns")


@cocotb.test()
async def test_reset_mid_run(dut):
    """Reset asserted for 1..3 cycles in the middle of accumulations, inputs still busy."""
    tb = TB(dut, 5)
    await tb.reset()
    n = 1500
    w, a = tb.random_codes(n)
    reset = np.zeros(n, bool)
    for start in tb.rng.choice(np.arange(20, n - 10), 8, replace=False):
        reset[start:start + tb.rng.integers(1, 4)] = True
    valid = tb.rng.random(n) < 0.9
    clear = tb.rng.random(n) < 0.01
    await tb.check(w, a, valid, clear, reset=reset, what="reset mid-run")


@cocotb.test()
async def test_wrap(dut):
    """Runs of the largest positive and negative products until acc wraps both ways.

    Meant for builds with a small acc_bits; the test checks that its own stimulus
    wraps, so it fails rather than passes vacuously when the build cannot wrap.
    """
    tb = TB(dut, 6)
    wf, af = tb.weights, tb.acts
    corners = [(x * y, x, y) for x in (wf.min, wf.max) for y in (af.min, af.max)]
    hi, lo = max(corners), min(corners)
    span = 1 << tb.acc_bits
    cycles = -(-2 * span // min(hi[0], -lo[0])) + 2  # enough to go round twice each way
    if cycles > 200_000:
        raise AssertionError(f"acc_bits={tb.acc_bits} is too wide to wrap {wf.name} x "
                             f"{af.name} in this test; run it on a small-acc_bits build")
    await tb.reset()
    w = np.concatenate([np.full(cycles, wf.encode([hi[1]])[0]),
                        np.full(cycles, wf.encode([lo[1]])[0])]).astype(np.int64)
    a = np.concatenate([np.full(cycles, af.encode([hi[2]])[0]),
                        np.full(cycles, af.encode([lo[2]])[0])]).astype(np.int64)
    n = w.size
    clear = np.zeros(n)
    clear[cycles] = 1
    want = await tb.check(w, a, np.ones(n), clear, what="wrap")
    # The expected trace must wrap (sign flips against the direction of the sums).
    steps = np.diff(want)
    assert (steps[:cycles - 1] < 0).any() and (steps[cycles + 1:] > 0).any(), \
        "stimulus did not wrap the accumulator both ways"
