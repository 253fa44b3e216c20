"""The core's throughput targets, measured on the RTL of the default preset."""

from sparsecore.hw.config import PRESETS
from sparsecore.verif.core.bench import benchmark


def test_throughput_targets():
    """Back-to-back tiles with K >= 64: >= 95 % busy in both modes; sparse <= 0.52 x dense."""
    rows = benchmark(PRESETS["default"], shapes=[(16, 16, 64), (8, 8, 256)],
                     name="core_default")
    for r in rows:
        assert r["utilization_sparse"] >= 0.95, r
        assert r["utilization_dense"] >= 0.95, r
        assert r["ratio"] <= 0.52, r
