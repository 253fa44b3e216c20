"""Fast unit checks of SparseTensorCore in amaranth.sim (the Verilator suite is verif/core/).

Expected values here are plain numpy integer math of SPEC §3, written independently
of sim/ and of the core.
"""

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from sparsecore.hw.config import PRESETS, CoreConfig
from sparsecore.hw.core import SparseTensorCore
from sparsecore.verif.amaranth_streams import get, put, random_pauses


def _random_beat(rng, c, dense):
    wf, af = c.weight_format, c.act_format
    values = rng.integers(wf.min, wf.max + 1, size=(c.rows, 2 * c.groups))
    meta = rng.integers(0, 16, size=(c.rows, c.groups))
    acts = rng.integers(af.min, af.max + 1, size=(4 * c.groups, c.cols))
    return values, meta, acts, dense


def _beat_product(c, values, meta, acts, dense):
    """Plain numpy: one beat's M x N contribution."""
    if dense:
        return values @ acts[:2 * c.groups]
    out = np.zeros((c.rows, c.cols), dtype=np.int64)
    for i in range(c.rows):
        for g in range(c.groups):
            idx0, idx1 = meta[i, g] & 3, meta[i, g] >> 2
            out[i] += (values[i, 2 * g] * acts[4 * g + idx0]
                       + values[i, 2 * g + 1] * acts[4 * g + idx1])
    return out


def _wrap(x, bits):
    x = np.asarray(x, dtype=np.int64) & ((1 << bits) - 1)
    return np.where(x >= 1 << (bits - 1), x - (1 << bits), x)


def _expected(c, tiles):
    """tiles: list of (beats, accumulate) -> list of M x N results."""
    acc = np.zeros((c.rows, c.cols), dtype=np.int64)
    out = []
    for beats, accumulate in tiles:
        if not accumulate:
            acc = np.zeros_like(acc)
        for beat in beats:
            acc = _wrap(acc + _beat_product(c, *beat), c.acc_bits)
        out.append(acc.copy())
    return out


def _run(c, tiles, *, in_gap=0.0, out_stall=0.0, seed=0, max_cycles=20000, sparse=True):
    """Drive tiles into the core; returns (results, accept_cycles, result_cycles, latency)."""
    dut = SparseTensorCore(c, sparse=sparse)
    rng = np.random.default_rng(seed)
    wf, af = c.weight_format, c.act_format
    beats = []
    for beats_of_tile, accumulate in tiles:
        for n, (values, meta, acts, dense) in enumerate(beats_of_tile):
            fields = {"values": (values & wf.mask).tolist(),
                      "last": int(n == len(beats_of_tile) - 1), "accumulate": int(accumulate)}
            if sparse:
                fields.update(meta=meta.tolist(), dense=int(dense))
            else:
                assert dense
                acts = acts[:2 * c.groups]
            beats.append((dut.weights_layout.const(fields),
                          dut.acts_layout.const((acts & af.mask).tolist())))
    results, accept_cycles, result_cycles = [], [], []

    async def drive(ctx):
        accept_cycles.extend(await put(ctx, (dut.weights, dut.activations), beats,
                                       pauses=random_pauses(rng, in_gap)))

    async def sink(ctx):
        for cycle, payload in await get(ctx, dut.results, len(tiles),
                                        stalls=random_pauses(rng, out_stall),
                                        max_cycles=max_cycles):
            results.append(np.array([[payload[i][j] for j in range(c.cols)]
                                     for i in range(c.rows)], dtype=np.int64))
            result_cycles.append(cycle)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(drive)
    sim.add_testbench(sink)
    sim.run()
    return results, accept_cycles, result_cycles, dut.latency


def _random_tiles(rng, c, n_tiles, max_beats=4):
    tiles = []
    for t in range(n_tiles):
        dense = bool(rng.integers(2))
        n = int(rng.integers(1, max_beats + 1))
        tiles.append(([_random_beat(rng, c, dense) for _ in range(n)],
                      bool(t and rng.integers(2))))
    return tiles


@pytest.mark.parametrize("name", ["tiny", "wrap", "ternary_uint4"])
def test_random_tiles_with_stalls(name):
    c = PRESETS[name]
    rng = np.random.default_rng(1)
    tiles = _random_tiles(rng, c, 12)
    got, _, _, _ = _run(c, tiles, in_gap=0.3, out_stall=0.5, seed=2)
    want = _expected(c, tiles)
    assert len(got) == len(want)
    for t, (g, w) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_array_equal(g, w, err_msg=f"tile {t}")


def test_latency_and_full_rate():
    c = CoreConfig(rows=2, cols=3, groups=4, weights="int4", acts="uint8")
    rng = np.random.default_rng(3)
    # One-beat tiles back to back, results always ready: one result per cycle.
    tiles = [([_random_beat(rng, c, bool(t % 3 == 0))], False) for t in range(10)]
    got, accepted, produced, latency = _run(c, tiles)
    for g, w in zip(got, _expected(c, tiles), strict=True):
        np.testing.assert_array_equal(g, w)
    assert np.diff(accepted).tolist() == [1] * 9
    assert [p - a for a, p in zip(accepted, produced, strict=True)] == [latency] * 10


def test_dense_only_variant():
    """The dense-only core (area reference) computes what the sparse-capable one does densely."""
    c = CoreConfig(rows=3, cols=2, groups=2, weights="int8", acts="uint4", acc_bits=20)
    rng = np.random.default_rng(4)
    tiles = [([_random_beat(rng, c, True) for _ in range(int(rng.integers(1, 4)))],
              bool(t and rng.integers(2))) for t in range(10)]
    got, _, _, _ = _run(c, tiles, in_gap=0.3, out_stall=0.4, seed=5, sparse=False)
    for t, (g, w) in enumerate(zip(got, _expected(c, tiles), strict=True)):
        np.testing.assert_array_equal(g, w, err_msg=f"tile {t}")
    dense_only = SparseTensorCore(c, sparse=False)
    assert dense_only.acts_layout.size == 2 * c.groups * c.cols * 4
    assert "meta" not in dict(dense_only.weights_layout)
    assert list(dense_only.manifest_extra()["throughput"]["k_per_cycle"]) == ["dense"]
    Fragment.get(dense_only, None)     # elaborates (and is marked used)


def test_bad_config():
    with pytest.raises(ValueError, match="config must be a CoreConfig"):
        SparseTensorCore("default")
    with pytest.raises(ValueError, match="sparse must be True or False"):
        SparseTensorCore(PRESETS["tiny"], sparse="no")
