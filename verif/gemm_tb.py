"""cocotb side of the GEMM runner (:mod:`verif.gemm`): streams prepared beats through the core.

The host writes a job folder (its path in SPARSECORE_GEMM_JOB, see
:class:`verif.gemm.GemmJob`) with the packed weight and activation words and
the number of result beats to expect; this module drives them into the
Verilated :class:`hw.core.SparseTensorCore` and writes back the packed result
words and the cycle count. For a layer design (:class:`hw.layer.SparseLayer`)
the job also has ``params`` words, driven into the ``params`` stream, and the
words back are those of its one output stream (``codes``); a layer with a code
table also gets its ``table`` words, all written before the job's first beat
(not counted in the job's cycles). Nothing here knows
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


class Source:
    """One input stream: offers its next beat unless stalled this cycle; holds it until taken."""

    def __init__(self, dut, manifest, stream, words, stalls):
        self.valid = _port(dut, manifest, stream, "valid")
        self.ready = _port(dut, manifest, stream, "ready")
        self.payload = _port(dut, manifest, stream, "payload")
        self.words, self.stalls = words, stalls
        self.sent, self.offered = 0, False
        self.valid.value = 0

    def drive(self):
        stall = self.stalls is not None and self.stalls.next()
        if not self.offered and self.sent < len(self.words) and not stall:
            self.payload.value = self.words[self.sent]
            self.valid.value = 1
            self.offered = True

    def observe(self):
        """Right after an edge: whether the beat offered for it was taken."""
        if self.offered and self.ready.value:
            self.sent += 1
            self.offered = False
            self.valid.value = 0
            return True
        return False


@cocotb.test()
async def gemm(dut):
    """The job's beats through the design, cycle by cycle; the same timing and stall
    pattern as the engine's C++ driver (verif/engine_main.cpp)."""
    from sparsecore.verif.engine import cycle_limit

    job = GemmJob.from_env()
    weights, acts, params, n_results = job.read_beats()
    stall_pattern = job.read_stalls()
    manifest = testbench_manifest()

    def stalls(stream):
        if stall_pattern is None:
            return None
        return stall_pattern.stalls(stream, manifest["streams"][stream]["direction"])

    out = next(name for name, s in manifest["streams"].items() if s["direction"] == "out")
    plays = [("weights", weights), ("activations", acts)]
    if params is not None:
        plays.append(("params", params))
    sources = [Source(dut, manifest, stream, words, stalls(stream)) for stream, words in plays]
    r_valid = _port(dut, manifest, out, "valid")
    r_ready = _port(dut, manifest, out, "ready")
    r_payload = _port(dut, manifest, out, "payload")
    r_stalls = stalls(out)
    n_beats = len(weights)
    limit = cycle_limit([len(w) for _, w in plays], [n_results], manifest["latency"],
                        stall_pattern)

    clk = dut.clk
    Clock(clk, CLOCK_PERIOD_NS, unit="ns").start()
    r_ready.value = 1
    await _reset(dut, clk)
    table = job.read_table()
    if table:   # a layer with a code table: the whole table before the job's first beat
        t_valid = _port(dut, manifest, "table", "valid")
        t_ready = _port(dut, manifest, "table", "ready")
        t_payload = _port(dut, manifest, "table", "payload")
        t_valid.value = 1
        for word in table:
            t_payload.value = word
            await RisingEdge(clk)
            while not t_ready.value:
                await RisingEdge(clk)
        t_valid.value = 0

    results = []
    edge = RisingEdge(clk)
    cycles = 0
    next_note = PROGRESS_EVERY

    def drive():
        for source in sources:
            source.drive()
        ready = not (r_stalls is not None and r_stalls.next())
        r_ready.value = int(ready)
        return ready

    start = time.perf_counter()
    ready = drive()
    while True:
        await edge
        cycles += 1
        for source in sources:
            source.observe()
        if ready and r_valid.value:
            results.append(r_payload.value.to_unsigned())
            if len(results) == n_results:
                break
        ready = drive()
        if cycles >= next_note:
            next_note += PROGRESS_EVERY
            job.write_progress(cycles, min(s.sent for s in sources[:2]), n_beats,
                               len(results), n_results)
        if cycles >= limit:
            break
    seconds = time.perf_counter() - start
    job.write_results(results, cycles, seconds)
    for source in sources:
        source.valid.value = 0
    r_ready.value = 1
    for _ in range(TAIL_CYCLES):    # so a waveform shows the last result beat whole
        await edge
    sent = {stream: source.sent for (stream, _), source in zip(plays, sources, strict=True)}
    assert len(results) == n_results, (
        f"the core returned {len(results)} of {n_results} result beats in {cycles} cycles "
        f"(input beats taken: {sent}); it stalled")
    for (stream, words), source in zip(plays, sources, strict=True):
        assert source.sent == len(words), (
            f"all {n_results} results came back after only {source.sent} {stream} beats "
            f"of {len(words)}")
