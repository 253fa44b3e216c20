"""cocotb side of the accelerator runner (:mod:`verif.accel.run`): plays a list of jobs.

The host writes a job folder (SPARSECORE_ACCEL_JOB) with the command words,
the whole load stream and the result beats each job returns; this module
drives them into the Verilated :class:`hw.accel.SparseAccelerator` as fast as
the design takes them (the load stream always valid, results and status always
ready), one command after the previous one's status, and writes back every
result beat, each job's status and the edges at which its command and its last
result moved. One ``await`` per clock cycle; after ``await RisingEdge(clk)``
cocotb shows the values sampled at that edge, so ``valid & ready`` read there
says whether a beat moved at this edge.
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
from sparsecore.verif.payload import bytes_to_words, words_to_bytes

JOB_ENV = "SPARSECORE_ACCEL_JOB"
PROGRESS_EVERY = 1 << 15
RESET_CYCLES = 2


def _ports(dut, manifest, stream):
    ports = manifest["streams"][stream]["ports"]
    return (getattr(dut, ports["valid"]), getattr(dut, ports.get("ready", ports["valid"])),
            getattr(dut, ports["payload"]))


@cocotb.test()
async def play(dut):
    folder = Path(os.environ[JOB_ENV])
    spec = json.loads((folder / "jobs.json").read_text())
    with np.load(folder / "load.npz") as f:
        load = bytes_to_words(f["beats"]) if len(f["beats"]) else []
    manifest = testbench_manifest()
    c_valid, c_ready, c_payload = _ports(dut, manifest, "cmd")
    l_valid, l_ready, l_payload = _ports(dut, manifest, "load")
    r_valid, r_ready, r_payload = _ports(dut, manifest, "results")
    s_valid, s_ready, s_payload = _ports(dut, manifest, "status")
    commands, n_results = spec["commands"], spec["results"]
    clk = dut.clk
    Clock(clk, 10, unit="ns").start()
    c_valid.value = l_valid.value = 0
    r_ready.value = s_ready.value = 1
    dut.rst.value = 1
    for _ in range(RESET_CYCLES):
        await RisingEdge(clk)
    dut.rst.value = 0

    edge = RisingEdge(clk)
    results, statuses, cmd_edges, last_edges = [], [], [], []
    job, li, cycle = 0, 0, 0
    n_load = len(load)
    c_valid.value = 1
    c_payload.value = commands[0]
    if n_load:
        l_valid.value = 1
        l_payload.value = load[0]
    limit = spec["limit"]
    start = time.perf_counter()
    while cycle < limit:
        await edge
        cycle += 1
        if c_valid.value and c_ready.value:
            cmd_edges.append(cycle)
            c_valid.value = 0
        if li < n_load and l_ready.value:
            li += 1
            if li < n_load:
                l_payload.value = load[li]
            else:
                l_valid.value = 0
        if r_valid.value:
            results.append(r_payload.value.to_unsigned())
            last_edges.append(cycle)
        if s_valid.value:
            statuses.append(s_payload.value.to_unsigned())
            job += 1
            if job == len(commands):
                break
            c_valid.value = 1
            c_payload.value = commands[job]
        if cycle % PROGRESS_EVERY == 0:
            _write(folder / "progress.json", {"cycles": cycle, "load": li, "loads": n_load,
                                              "results": len(results), "n_results":
                                              sum(n_results)})
    seconds = time.perf_counter() - start
    ends, seen = [], 0
    for n in n_results[:len(statuses)]:
        seen += n
        ends.append(last_edges[seen - 1] if n else None)
    width = 8 * manifest["config"]["out_bytes"]
    np.save(folder / "results.npy", words_to_bytes(results, width))
    _write(folder / "run.json", {"statuses": statuses, "cmd_edges": cmd_edges,
                                 "last_result_edges": ends, "cycles": cycle,
                                 "seconds": seconds, "loads_taken": li})
    for _ in range(3):   # so a waveform shows the end whole
        await edge
    assert len(statuses) == len(commands), (
        f"{len(statuses)} of {len(commands)} jobs finished in {cycle} cycles "
        f"({li} of {n_load} load beats, {len(results)} result beats): the accelerator hung")


def _write(path, obj):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)
