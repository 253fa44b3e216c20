"""sim.perf against cycle counts worked out by hand and against the tiler's beat count."""

import numpy as np
import pytest

from sparsecore.sim.perf import peak_macs_per_cycle, predict_gemm
from sparsecore.sim.tiling import Geometry, tile_gemm

CORE = Geometry(rows=4, cols=4, groups=2)   # 8 of K per beat sparse, 4 dense


@pytest.mark.parametrize("m, n, k, dense, latency, beats", [
    # 16 x 16 outputs = 16 tiles; K = 256 is 32 sparse chunks, 64 dense ones.
    (16, 16, 256, False, 4, 16 * 32),
    (16, 16, 256, True, 4, 16 * 64),
    # One tile, one chunk.
    (4, 4, 8, False, 5, 1),
    (1, 1, 1, True, 0, 1),
    # Padding: 5 rows -> 2 tile rows, 6 cols -> 2 tile cols, K = 9 -> 2 sparse / 3 dense chunks.
    (5, 6, 9, False, 3, 4 * 2),
    (5, 6, 9, True, 3, 4 * 3),
])
def test_cycles_by_hand(m, n, k, dense, latency, beats):
    perf = predict_gemm(CORE, m, n, k, dense=dense, latency=latency)
    assert perf.beats == beats
    assert perf.cycles == beats + latency
    assert perf.macs == m * n * k
    peak = 4 * 4 * (4 if dense else 8)
    assert perf.peak == peak
    assert perf.utilization == pytest.approx(m * n * k / ((beats + latency) * peak))


def test_sparse_twice_dense_for_long_k():
    sparse = predict_gemm(CORE, 64, 64, 1024, dense=False, latency=4)
    dense = predict_gemm(CORE, 64, 64, 1024, dense=True, latency=4)
    # 256 tiles x 128 chunks + 4 against 256 x 256 + 4.
    assert (sparse.cycles, dense.cycles) == (32772, 65540)
    assert sparse.macs_per_cycle / dense.macs_per_cycle == pytest.approx(65540 / 32772)


@pytest.mark.parametrize("shape", [(1, 1, 1), (9, 7, 37), (8, 8, 64)])
@pytest.mark.parametrize("dense", [False, True])
def test_beats_equal_the_tilers(shape, dense):
    m, n, k = shape
    rng = np.random.default_rng(m * n * k)
    a = np.zeros((m, k), dtype=np.int64)
    a[:, ::4] = rng.integers(-3, 4, size=a[:, ::4].shape)   # 2:4 (one per group)
    b = rng.integers(-3, 4, size=(k, n))
    tiled = tile_gemm(CORE, b, a=a, dense=dense)
    assert predict_gemm(CORE, m, n, k, dense=dense, latency=2).beats == len(tiled.beats)


def test_geometry_from_a_manifest_config():
    config = {"rows": 2, "cols": 3, "groups": 1, "acc_bits": 32, "weights": "int8"}
    assert peak_macs_per_cycle(config, dense=False) == 2 * 3 * 4
    assert predict_gemm(config, 2, 3, 4, dense=False, latency=1).cycles == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"m": 0}, "m must be a positive integer, not 0"),
    ({"k": 2.0}, "k must be a positive integer, not 2.0"),
    ({"latency": -1}, "latency must be a non-negative integer, not -1"),
])
def test_bad_sizes(kwargs, message):
    args = {"m": 4, "n": 4, "k": 8, "latency": 3, **kwargs}
    latency = args.pop("latency")
    with pytest.raises(ValueError, match=message):
        predict_gemm(CORE, **args, dense=False, latency=latency)
