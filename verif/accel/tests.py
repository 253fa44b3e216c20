"""cocotb tests of hw.accel.SparseAccelerator (run by verif/accel/test_accel.py on one build)."""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from sparsecore.sim.accel_perf import AccelJob
from sparsecore.verif.accel.tb import AccelTB, save_coverage


def _oversized(tb):
    """Descriptors the model refuses: empty, K past a stripe buffer, B past its buffer."""
    g = tb.geometry
    rng = tb.rng
    return [
        AccelJob(0, int(rng.integers(1, 4)), int(rng.integers(1, g.a_depth + 1)), False),
        AccelJob(1, 1, g.a_depth + int(rng.integers(1, 4)), bool(rng.integers(2))),
        AccelJob(2, g.b_depth + 1, 1, False),
        AccelJob(1, g.b_depth, g.a_depth + 1, False),
        AccelJob(g.p_depth + int(rng.integers(1, 3)), 1, 1, bool(rng.integers(2)), codes=True),
    ]


def _submit_random(tb, dense, **shape):
    """A random GEMM, raw or codes (half each; ReLU on half the codes jobs)."""
    a, b = tb.random_gemm(dense, **shape)
    if tb.rng.random() < 0.5:
        return tb.submit(a, b, dense)
    return tb.submit(a, b, dense, tb.random_params(a.shape[0]), bool(tb.rng.integers(2)))


@cocotb.test()
async def test_random_jobs(dut):
    """Random sparse and dense GEMMs, raw and codes, and refused descriptors in random
    order, random idle cycles on cmd and load and backpressure on results and status,
    changing per job."""
    tb = AccelTB(dut, "test_random_jobs")
    await tb.reset()
    refused = _oversized(tb)
    for index in range(60):
        tb.traffic(idle=float(tb.rng.choice([0.0, 0.3, 0.7])),
                   stall=float(tb.rng.choice([0.0, 0.3, 0.6])), burst=int(tb.rng.integers(1, 6)))
        if index % 6 == 5:
            tb.submit_descriptor(refused[(index // 6) % len(refused)])
        else:
            _submit_random(tb, bool(tb.rng.integers(2)))
        if tb.rng.random() < 0.6:   # else queued behind the next job
            await tb.drain(f"job {index}")
    await tb.drain("last jobs")
    save_coverage()


@cocotb.test()
async def test_full_rate_cycles(dut):
    """No idle, no backpressure: every job (the largest that fit, random ones, refused ones)
    takes exactly the cycles sim.accel_perf predicts, from its command to its last result."""
    tb = AccelTB(dut, "test_full_rate_cycles")
    for checker in tb.checkers.values():
        checker.probe_rate = 0.0
    await tb.reset()
    tb.traffic()
    g = tb.geometry
    gemms = [
        (False, tb.random_gemm(False, k=g.a_depth * g.core.k_sparse)),      # k_chunks = a_depth
        (True, tb.random_gemm(True, k=g.a_depth * g.core.k_dense, m=5 * g.rows)),
        (False, tb.random_gemm(False, k=4 * g.core.k_sparse,                # B: all b_depth
                               n=g.b_depth // 4 * g.cols)),
    ]
    gemms += [(d, tb.random_gemm(d)) for d in (False, True, True, False, False)]
    # one chunk per tile: tiles as close as the result beats allow, the most results in
    # flight (the sequencer must never wait for a place for them at full rate)
    gemms += [(d, tb.random_gemm(d, m=3 * g.rows, n=4 * g.cols, k=g.core.k_per_beat(d)))
              for d in (False, True)]
    for dense, (a, b) in gemms:
        tb.submit(a, b, dense)
    # codes jobs: the largest (p_depth stripes), a dense one, a multi-column one, and
    # one of one-chunk tiles
    for dense, shape in ((False, {"m": g.p_depth * g.rows}), (True, {}),
                         (False, {"n": 3 * g.cols}),
                         (False, {"m": g.p_depth * g.rows, "n": 4 * g.cols,
                                  "k": g.core.k_sparse})):
        a, b = tb.random_gemm(dense, **shape)
        tb.submit(a, b, dense, tb.random_params(a.shape[0]), bool(tb.rng.integers(2)))
    for job in _oversized(tb):
        tb.submit_descriptor(job)
    timings = await tb.drain("full rate")
    wrong = [(n, model, rtl) for n, (model, rtl) in enumerate(timings) if model != rtl]
    assert not wrong, (
        f"jobs whose cycles differ from sim.accel_perf (job, model, rtl): {wrong}")
    save_coverage()


@cocotb.test()
async def test_starved_and_held(dut):
    """A slow load stream (compute waits for stripes) and a fast one against a stalled
    result sink (load held while both stripe buffers are full): results still exact."""
    tb = AccelTB(dut, "test_starved_and_held")
    await tb.reset()
    g = tb.geometry
    for idle, stall in ((0.8, 0.0), (0.0, 0.9)):
        tb.traffic(idle=idle, stall=stall, burst=4)
        for dense in (False, True):
            tb.submit(*tb.random_gemm(dense, m=4 * g.rows), dense)
            await tb.drain(f"load idle {idle}, results stall {stall}")
        a, b = tb.random_gemm(False, m=g.p_depth * g.rows)
        tb.submit(a, b, False, tb.random_params(a.shape[0]), True)
        await tb.drain(f"codes job, load idle {idle}, results stall {stall}")
        # one-chunk tiles: the results queue fills while the sink holds
        a, b = tb.random_gemm(False, m=3 * g.rows, n=4 * g.cols, k=g.core.k_sparse)
        tb.submit(a, b, False)
        a, b = tb.random_gemm(False, m=g.p_depth * g.rows, n=4 * g.cols, k=g.core.k_sparse)
        tb.submit(a, b, False, tb.random_params(a.shape[0]), False)
        await tb.drain(f"one-chunk tiles, load idle {idle}, results stall {stall}")
    save_coverage()


@cocotb.test()
async def test_reset_mid_command(dut):
    """Reset while a job is loading and computing: nothing stale comes out after it, the
    accelerator takes a command again at once, and the next jobs are exact."""
    tb = AccelTB(dut, "test_reset_mid_command")
    await tb.reset()
    g = tb.geometry
    tb.traffic(idle=0.1, stall=0.2, burst=2)
    for cut in (10, 40, 120):
        tb.submit(*tb.random_gemm(False, m=4 * g.rows, k=g.a_depth * g.core.k_sparse), False)
        for _ in range(cut):
            await tb.loop.step()
        assert tb.sources["cmd"].sent, "the reset must come with a command in flight"
        await tb.reset()
        await ReadOnly()
        assert dut.cmd__ready.value == 1, "cmd not ready right after reset"
        await RisingEdge(dut.clk)
        for dense in (True, False):
            _submit_random(tb, dense)
        await tb.drain(f"after a reset {cut} cycles into a job")
    # and into a codes job, while its parameters or stripes load and while codes come out
    for cut in (15, 60):
        a, b = tb.random_gemm(False, m=g.p_depth * g.rows, k=2 * g.core.k_sparse)
        tb.submit(a, b, False, tb.random_params(a.shape[0]), True)
        for _ in range(cut):
            await tb.loop.step()
        await tb.reset()
        await ReadOnly()
        assert dut.cmd__ready.value == 1, "cmd not ready right after reset"
        await RisingEdge(dut.clk)
        _submit_random(tb, False)
        await tb.drain(f"after a reset {cut} cycles into a codes job")
    save_coverage()
