"""cocotb side of the core benchmark (see verif/core/bench.py): GEMMs back to back.

For each shape in ``SPARSECORE_BENCH_SHAPES`` (JSON ``[[M, N, K], ...]``) the
same 2:4 GEMM runs in sparse and in dense mode with no idle input cycle and no
results backpressure; every result is checked against sim/ as in the tests.
Cycles count from the cycle the first beat is taken to the cycle the last
result is taken, both included. Results go to ``bench.json`` in the run folder.
"""

import json
import os
from pathlib import Path

import cocotb
import numpy as np

from sparsecore.sim.formats import get_format
from sparsecore.sim.sparsity import prune_2to4
from sparsecore.sim.tiling import tile_gemm
from sparsecore.verif.core.tb import CoreTB

SHAPES_ENV = "SPARSECORE_BENCH_SHAPES"
BENCH_FILE = "bench.json"


@cocotb.test()
async def bench_gemms(dut):
    tb = CoreTB(dut, "bench_gemms")
    await tb.reset()
    tb.traffic(0.0, 0.0)
    wf = get_format(tb.manifest["config"]["weights"], "weights")
    af = get_format(tb.manifest["config"]["acts"], "acts")
    rows = []
    for m, n, k in json.loads(os.environ[SHAPES_ENV]):
        a = prune_2to4(tb.rng.integers(wf.min, wf.max + 1, size=(m, k)))
        b = tb.rng.integers(af.min, af.max + 1, size=(k, n))
        for dense in (False, True):
            tiled = tile_gemm(tb.geometry, b, a=a, dense=dense)
            await tb.reset()
            tb.submit(tiled.beats)
            await tb.drain()
            first = tb.accept_cycles[0]
            cycles = tb.result_cycles[-1] - first + 1
            rows.append({"m": m, "n": n, "k": k, "mode": "dense" if dense else "sparse",
                         "beats": len(tiled.beats), "tiles": tiled.beats.n_tiles,
                         "cycles": int(cycles), "macs": tiled.macs})
            tb.result_cycles.clear()
    Path(BENCH_FILE).write_text(json.dumps(rows, indent=1))
    dut._log.info("bench: %s", rows)
    assert np.all([r["cycles"] >= r["beats"] for r in rows])
