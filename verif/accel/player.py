"""cocotb side of the accelerator runner (:mod:`verif.accel.run`, ``runner="cocotb"``).

The host writes a job folder (SPARSECORE_ACCEL_JOB) with the command words,
the whole load stream, the result beats each job returns, a cycle limit and an
optional stall pattern; this module plays them into the Verilated
:class:`hw.accel.SparseAccelerator` cycle by cycle with the timing and the
seeded stalls of the engine's C++ driver (``verif/engine_main.cpp``, the
default runner): every input stream (the commands one after the other, the
load stream) offers its next beat unless its stall generator says no this
cycle, and holds it until taken; every output stream (results, status) holds
ready low when its generator says so. The accelerator takes a command only
when idle, so the next command moves the edge after the previous status, as
when it is offered only then. It writes back every result beat, each job's
status and the edges at which each command and each result moved. One
``await`` per clock cycle; after ``await RisingEdge(clk)`` cocotb shows the
values sampled at that edge, so ``valid & ready`` read there says whether a
beat moved at this edge. The engine gives the same beats and edges
(``tests/verif/test_accel_runner.py`` checks it).
"""

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from sparsecore.verif.build import testbench_manifest
from sparsecore.verif.engine import StallPattern
from sparsecore.verif.gemm_tb import CLOCK_PERIOD_NS, RESET_CYCLES, TAIL_CYCLES, Source
from sparsecore.verif.payload import bytes_to_words, words_to_bytes

JOB_ENV = "SPARSECORE_ACCEL_JOB"
PROGRESS_EVERY = 1 << 15


class _Sink:
    """One output stream: ready unless stalled this cycle; records what moved and when."""

    def __init__(self, dut, manifest, stream, stalls):
        ports = manifest["streams"][stream]["ports"]
        self.valid, self.ready, self.payload = (getattr(dut, ports[r]) for r in
                                                ("valid", "ready", "payload"))
        self.stalls, self.taking = stalls, True
        self.words, self.edges = [], []
        self.ready.value = 1

    def drive(self):
        self.taking = not (self.stalls is not None and self.stalls.next())
        self.ready.value = int(self.taking)

    def observe(self, cycle):
        if self.taking and self.valid.value:
            self.words.append(self.payload.value.to_unsigned())
            self.edges.append(cycle)
            return True
        return False


@cocotb.test()
async def play(dut):
    folder = Path(os.environ[JOB_ENV])
    spec = json.loads((folder / "jobs.json").read_text())
    with np.load(folder / "load.npz") as f:
        load = bytes_to_words(f["beats"]) if len(f["beats"]) else []
    manifest = testbench_manifest()
    pattern = StallPattern(**spec["stalls"]) if spec.get("stalls") else None

    def stalls(stream):
        return None if pattern is None else pattern.stalls(
            stream, manifest["streams"][stream]["direction"])

    commands, n_results = spec["commands"], spec["results"]
    cmd = Source(dut, manifest, "cmd", commands, stalls("cmd"))
    loader = Source(dut, manifest, "load", load, stalls("load"))
    results = _Sink(dut, manifest, "results", stalls("results"))
    status = _Sink(dut, manifest, "status", stalls("status"))
    clk = dut.clk
    Clock(clk, CLOCK_PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    for _ in range(RESET_CYCLES):
        await RisingEdge(clk)
    dut.rst.value = 0

    def drive():
        cmd.drive()
        loader.drive()
        results.drive()
        status.drive()

    edge = RisingEdge(clk)
    cmd_edges, cycle = [], 0
    limit, n_load, total = spec["limit"], len(load), sum(n_results)
    start = time.perf_counter()
    drive()
    while cycle < limit:
        await edge
        cycle += 1
        if cmd.observe():
            cmd_edges.append(cycle)
        loader.observe()
        results.observe(cycle)
        if status.observe(cycle) and len(status.words) == len(commands):
            break
        drive()
        if cycle % PROGRESS_EVERY == 0:
            _write(folder / "progress.json", {"cycles": cycle, "load": loader.sent,
                                              "loads": n_load, "results": len(results.words),
                                              "n_results": total})
    seconds = time.perf_counter() - start
    width = 8 * manifest["config"]["out_bytes"]
    np.save(folder / "results.npy", words_to_bytes(results.words, width))
    _write(folder / "run.json", {"statuses": status.words, "cmd_edges": cmd_edges,
                                 "result_edges": results.edges, "cycles": cycle,
                                 "seconds": seconds, "loads_taken": loader.sent})
    for s in (cmd, loader):
        s.valid.value = 0
    results.ready.value = status.ready.value = 1
    for _ in range(TAIL_CYCLES):   # so a waveform shows the end whole
        await edge
    assert len(status.words) == len(commands), (
        f"{len(status.words)} of {len(commands)} jobs finished in {cycle} cycles "
        f"({loader.sent} of {n_load} load beats, {len(results.words)} result beats): "
        "the accelerator hung")


def _write(path, obj):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)
