"""cocotb side of :func:`verif.output_stage.run.run_output_stage`: stream a job's beats.

No expected values here: the host compares. The beats go in back to back and
the output is always ready, so ``cycles`` is the stage's own time; a protocol
checker still watches the output stream, and the run ends drained (every beat
in, exactly as many out).
"""

import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from verif.build import testbench_manifest
from verif.output_stage.run import JOB_ENV
from verif.streams import (
    CycleLoop,
    ProtocolChecker,
    StreamPorts,
    StreamSink,
    StreamSource,
    bytes_to_words,
    words_to_bytes,
)


@cocotb.test()
async def run_job(dut):
    folder = Path(os.environ[JOB_ENV])
    manifest = testbench_manifest()
    streams = manifest["streams"]
    words = bytes_to_words(np.load(folder / "beats.npy"))
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    source = StreamSource(StreamPorts(dut, streams["i"]), name="i")
    out_ports = StreamPorts(dut, streams["o"])
    sink = StreamSink(out_ports, name="o")
    checker = ProtocolChecker(out_ports, "o", probe_rate=0.0)
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    loop = CycleLoop(dut.clk, [source], [sink], [checker])
    source.send(words)
    await loop.run(lambda: len(sink.beats) == len(words),
                   max_cycles=len(words) + 10 * manifest["latency"] + 100)
    cycles = sink.beats[-1][0] - source.sent[0] + 1 if words else 0
    for _ in range(manifest["latency"] + 2):     # nothing more may come out
        await loop.step()
    assert source.done and len(sink.beats) == len(words), (
        f"{len(words)} beats in, {len(sink.beats)} out: a beat was doubled or invented")
    np.save(folder / "out.npy", words_to_bytes([w for _, w in sink.beats],
                                               streams["o"]["payload_width"]))
    np.save(folder / "cycles.npy", np.int64(cycles))
    dut._log.info("%d beats through the output stage in %d cycles", len(words), cycles)
