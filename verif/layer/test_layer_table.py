# amaranth: UnusedElaboratable=no
"""The layer design with a code table after its output stage (``LayerConfig(table=...)``),
through the GEMM runner (``verif.gemm.run_layer``): a GEMM per job, the table reloaded
between jobs, every code equal to sim.code_table.lookup of sim.inference.numpy_layer.

The code table alone, under idle cycles, backpressure and writes interleaved with
lookups, is verified in verif/code_table/.
"""

import numpy as np
import pytest

from sparsecore.hw.config import LayerConfig
from sparsecore.hw.layer import SparseLayer
from sparsecore.sim.code_table import function_table, lookup
from sparsecore.sim.inference import IntegerLayer, numpy_layer
from sparsecore.sim.sparsity import prune_2to4
from sparsecore.verif.build import coverage_requested
from sparsecore.verif.engine import StallPattern
from sparsecore.verif.gemm import run_layer

# A coverage campaign (SPARSECORE_COVERAGE=1) runs the jobs on the cocotb runner: the
# engine's C++ model has no coverage build, so its runs would leave no coverage.dat.
RUNNER = "cocotb" if coverage_requested() else "engine"
CONFIG = LayerConfig(rows=2, cols=2, groups=1, weights="ternary", acts="int8", out="int8",
                     table="int8")


def test_latency_includes_the_table():
    layer = SparseLayer(CONFIG)
    assert layer.latency == layer.core_latency + layer.stage_latency + 1
    assert LayerConfig.of(CONFIG.core, out="int8").code_table is None
    assert CONFIG.code_table.entries == 256


def test_layer_with_table_reloaded_between_jobs():
    """Six jobs, sparse and dense in turn, each with its own table and parameters: three
    function tables, then a random table, its bitwise complement and it again (every bit
    of the table's memory written both ways); ReLU on every third job; idle inputs and
    backpressure on every other job (nearly always stalled on one); per job, two rows
    (the first tile's) with multiplier, shift and bias anywhere in their fields and four
    rows scaled so that most codes land inside int8."""
    rng = np.random.default_rng(16)
    m, k, n = 6, 24, 10
    cfg = CONFIG
    noise = rng.integers(-128, 128, 256)
    tables = [function_table(name, 1 / 16, 1 / 127) for name in ("tanh", "sigmoid", "gelu")]
    tables += [noise, ~noise, noise]     # ~x of an int8 is an int8
    inside = 0
    for job, table in enumerate(tables):
        dense, relu = bool(job % 2), job % 3 == 1
        a = rng.integers(-1, 2, (m, k))
        a = a if dense else prune_2to4(a)
        mult = rng.integers(1 << 12, 1 << 14, m)
        # the scaled rows' top bit set on the second row tile and clear on the third: a job
        # is one simulation, so that each multiplier bit falls within one
        mult[2:4] |= 1 << 13
        mult[4:] &= ~(1 << 13)
        shift = rng.integers(15, 18, m)    # scale 1/32 .. 1/2: most codes inside int8
        bias = rng.integers(-50, 50, m)
        wild = np.arange(m) < 2
        mult[wild] = rng.integers(0, 1 << cfg.mult_bits, 2)
        shift[wild] = rng.integers(0, 1 << cfg.shift_bits, 2)
        bias[wild] = rng.integers(-(1 << (cfg.acc_bits - 1)), 1 << (cfg.acc_bits - 1), 2)
        layer = IntegerLayer(a, not dense, mult, shift, bias, relu, "int8")
        b = rng.integers(-128, 128, (k, n))
        codes = numpy_layer(layer, b, cfg.acc_bits, cfg.mult_bits, cfg.shift_bits, dense)[1]
        want = lookup(codes, table, "int8", "int8")
        # job 4 stalls the codes nearly always, so that the table's output fills and the
        # stall reaches back through the stage into the core
        stalls = (StallPattern(idle=0.2, backpressure=0.9 if job == 4 else 0.3, seed=job)
                  if job % 2 == 0 else None)
        run = run_layer(cfg, a, b, mult, shift, bias, relu, dense, table=table, progress=False,
                        stalls=stalls, runner=RUNNER)
        assert np.array_equal(run.out, want), f"job {job}: first mismatch at " \
            f"{np.argwhere(run.out != want)[0].tolist()}"
        scaled = codes[~wild]
        inside += int(((scaled > -128) & (scaled < 127)).sum())
    assert inside > 0.4 * len(tables) * (m - 2) * n, "the stimulus mostly clipped"


@pytest.mark.parametrize("table,match", [
    (np.zeros(255, np.int64), "table must have 256 entries"),
    (np.full(256, 128), "outside int8"),
    (None, "table must be given exactly when the layer has a code table"),
])
def test_bad_table_refused_before_anything_runs(table, match, tmp_path):
    a = np.ones((2, 4), np.int64)
    with pytest.raises(ValueError, match=match):
        run_layer(CONFIG, a, np.ones((4, 2), np.int64), [1, 1], [0, 0], [0, 0], False, True,
                  table=table, progress=False, root=tmp_path)
    assert not any(tmp_path.iterdir()), "something was built before the table was checked"
