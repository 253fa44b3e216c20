"""cocotb tests of hw.mac.MacUnit, run in the simulator by verif/mac/test_mac.py.

Each test drives a whole stimulus array through :class:`MacTB` and compares
every cycle's ``acc`` with sim.mac. The seed is logged; SPARSECORE_SEED reruns it.
"""

import cocotb
import numpy as np

from sparsecore.verif.mac.tb import MacTB


@cocotb.test()
async def test_every_code_pair(dut):
    """Every (w code, a code) once with clear each cycle: acc is exactly that product.

    Covers each format's extremes and the reserved ternary code; then up to 4096
    of them again, accumulating (no clear) in a shuffled order.
    """
    tb = MacTB(dut, "test_every_code_pair")
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
    tb = MacTB(dut, "test_random")
    await tb.reset()
    n = 6000
    w, a = tb.random_codes(n)
    await tb.check(w, a, tb.rng.random(n) < 0.8, tb.rng.random(n) < 0.04, what="random")


@cocotb.test()
async def test_extremes_accumulate(dut):
    """Runs of each extreme product (min/max of both formats) without clearing."""
    tb = MacTB(dut, "test_extremes_accumulate")
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
    tb = MacTB(dut, "test_clear_controls")
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
    tb = MacTB(dut, "test_reset_mid_run")
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
    tb = MacTB(dut, "test_wrap")
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
