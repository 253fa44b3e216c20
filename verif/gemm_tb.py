"""cocotb side of the GEMM runner (:mod:`verif.gemm`): streams prepared beats through the core.

The host writes a job folder (its path in SPARSECORE_GEMM_JOB, see
:class:`verif.gemm.GemmJob`) with the packed weight and activation words and
the number of result beats to expect; this module drives them into the
Verilated :class:`hw.core.SparseTensorCore` and writes back the packed result
words and the cycle count. For a layer design (:class:`hw.layer.SparseLayer`)
the job also has ``params`` words, driven into the ``params`` stream, and the
words back are those of its one output stream (``codes``). Nothing here knows
the model: packing and the expected values are the host's.

Speed matters here (a GEMM is millions of cycles): one ``await`` per clock
cycle for all three streams together, whole packed words written to the wide
payload ports, handles looked up once. After ``await RisingEdge(clk)`` cocotb
shows the values sampled at that edge, so ``valid & ready`` read there says
whether a beat moved at this edge; what is written then applies to the next.
"""

import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from sparsecore.verif.build import testbench_manifest
from sparsecore.verif.gemm import BARE_CYCLES_ENV, GemmJob

CLOCK_PERIOD_NS = 10
RESET_CYCLES = 2
PROGRESS_EVERY = 1 << 14    # cycles between progress notes to the host
TAIL_CYCLES = 3


def _port(dut, manifest, stream, role):
    return getattr(dut, manifest["streams"][stream]["ports"][role])


async def _reset(dut, clk):
    dut.rst.value = 1
    for _ in range(RESET_CYCLES):
        await RisingEdge(clk)
    dut.rst.value = 0


@cocotb.test()
async def clock_loop(dut):
    """The ceiling for :func:`gemm`: the same one await per cycle, with nothing driven."""
    cycles = int(os.environ.get(BARE_CYCLES_ENV, "0"))
    clk = dut.clk
    Clock(clk, CLOCK_PERIOD_NS, unit="ns").start()
    edge = RisingEdge(clk)
    start = time.perf_counter()
    for _ in range(cycles):
        await edge
    seconds = time.perf_counter() - start
    GemmJob.from_env().write_bare_loop(cycles, seconds)


@cocotb.test()
async def gemm(dut):
    job = GemmJob.from_env()
    weights, acts, params, n_results = job.read_beats()
    manifest = testbench_manifest()
    out = next(name for name, s in manifest["streams"].items() if s["direction"] == "out")
    w_valid = _port(dut, manifest, "weights", "valid")
    w_ready = _port(dut, manifest, "weights", "ready")
    w_payload = _port(dut, manifest, "weights", "payload")
    a_valid = _port(dut, manifest, "activations", "valid")
    a_ready = _port(dut, manifest, "activations", "ready")
    a_payload = _port(dut, manifest, "activations", "payload")
    r_valid = _port(dut, manifest, out, "valid")
    r_ready = _port(dut, manifest, out, "ready")
    r_payload = _port(dut, manifest, out, "payload")
    n_params = len(params) if params is not None else 0
    if n_params:
        p_valid = _port(dut, manifest, "params", "valid")
        p_ready = _port(dut, manifest, "params", "ready")
        p_payload = _port(dut, manifest, "params", "payload")
        p_valid.value = 0

    n_beats = len(weights)
    # A stuck core must not hang the run: the pipeline needs latency cycles per
    # tile at worst, and a beat per cycle otherwise.
    limit = 2 * n_beats + (n_results + 1) * (manifest["latency"] + 4) + 100

    clk = dut.clk
    Clock(clk, CLOCK_PERIOD_NS, unit="ns").start()
    w_valid.value = 0
    a_valid.value = 0
    r_ready.value = 1       # results are always taken: no backpressure in a run
    await _reset(dut, clk)

    results = []
    wi = ai = pi = 0
    w_valid.value = a_valid.value = 1
    w_payload.value = weights[0]
    a_payload.value = acts[0]
    if n_params:
        p_valid.value = 1
        p_payload.value = params[0]
    edge = RisingEdge(clk)
    cycles = 0
    next_note = PROGRESS_EVERY
    start = time.perf_counter()
    while True:
        await edge
        cycles += 1
        if wi < n_beats and w_ready.value:
            wi += 1
            if wi < n_beats:
                w_payload.value = weights[wi]
            else:
                w_valid.value = 0
        if ai < n_beats and a_ready.value:
            ai += 1
            if ai < n_beats:
                a_payload.value = acts[ai]
            else:
                a_valid.value = 0
        if pi < n_params and p_ready.value:
            pi += 1
            if pi < n_params:
                p_payload.value = params[pi]
            else:
                p_valid.value = 0
        if r_valid.value:
            results.append(r_payload.value.to_unsigned())
            if len(results) == n_results:
                break
        if cycles >= next_note:
            next_note += PROGRESS_EVERY
            job.write_progress(cycles, min(wi, ai), n_beats, len(results), n_results)
            if cycles > limit:
                break
    seconds = time.perf_counter() - start
    job.write_results(results, cycles, seconds)
    for _ in range(TAIL_CYCLES):    # so a waveform shows the last result beat whole
        await edge
    assert len(results) == n_results, (
        f"the core returned {len(results)} of {n_results} result beats in {cycles} cycles "
        f"({min(wi, ai)} of {n_beats} input beats taken); it stalled")
    assert pi == n_params, f"{pi} of {n_params} params beats taken for {n_results} results"
    assert wi == ai == n_beats, (
        f"all {n_results} results came back after only {wi} weight and {ai} activation "
        f"beats of {n_beats}")
