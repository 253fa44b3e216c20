"""sparsecore.sim.tiling against plain numpy integer math (A @ B), written without the model."""

import numpy as np
import pytest

from sparsecore.sim.tiling import (
    Beats,
    BeatTables,
    Geometry,
    assemble,
    expand_runs,
    expected_results,
    explain_mismatch,
    tile_gemm,
)


def _two_to_four(rng, m, k, lo, hi):
    """A random 2:4 matrix: two random positions of every group of four kept."""
    a = rng.integers(lo, hi + 1, size=(m, -(-k // 4) * 4))
    keep = np.argsort(rng.random((m, a.shape[1] // 4, 4)), axis=-1)[..., :2]
    mask = np.zeros((m, a.shape[1] // 4, 4), dtype=bool)
    np.put_along_axis(mask, keep, True, axis=-1)
    return np.where(mask.reshape(a.shape), a, 0)[:, :k]


def _wrap(x, bits):
    half = 1 << (bits - 1)
    return (x + half) % (1 << bits) - half


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("shape", [(1, 1, 1), (9, 37, 6), (4, 64, 4), (13, 5, 11)])
@pytest.mark.parametrize("k_parts", [1, 3])
def test_round_trip_equals_plain_matmul(dense, shape, k_parts):
    rng = np.random.default_rng(sum(shape) + 7 * dense + k_parts)
    m, k, n = shape
    geometry = Geometry(rows=4, cols=3, groups=2, acc_bits=32)
    a = _two_to_four(rng, m, k, -128, 127)
    b = rng.integers(-128, 128, size=(k, n))
    tiled = tile_gemm(geometry, b, a=a, dense=dense, k_parts=k_parts)
    np.testing.assert_array_equal(assemble(tiled, tiled.expected), a @ b)
    assert tiled.macs == m * n * k
    beats = tiled.beats
    k_beat = 4 if dense else 8
    chunks = -(-k // k_beat)
    tiles = -(-m // 4) * -(-n // 3)
    assert len(beats) == tiles * chunks
    assert beats.n_tiles == tiles * min(k_parts, chunks)
    assert beats.last[-1] and beats.dense.all() == dense
    if dense:
        assert not beats.acts[:, 4:].any()       # dense beats use rows 0..2G-1 only
    # accumulate only on parts after the first of an output tile
    assert beats.accumulate.sum() == tiles * (min(k_parts, chunks) - 1)


def test_expand_runs():
    np.testing.assert_array_equal(expand_runs([[5, 3], [0, 0], [2, 2], [5, 1]]),
                                  [5, 6, 7, 2, 3, 5])
    assert expand_runs(np.zeros((0, 2), np.int64)).shape == (0,)
    with pytest.raises(ValueError, match="counts must be >= 0, not -1"):
        expand_runs([[0, -1]])


def test_beat_order_is_one_run_per_output_tile():
    """Beat (tile row i, tile column j, chunk c) is weight row i*chunks + c and activation
    row j*chunks + c, output tiles row-major: the runs spell out exactly that order."""
    geometry = Geometry(rows=2, cols=3, groups=1)
    m, k, n = 5, 13, 7                        # 3 x 3 output tiles, 4 sparse chunks each
    tiled = tile_gemm(geometry, np.ones((k, n), np.int64), a=np.zeros((m, k), np.int64),
                      k_parts=2)
    tables = tiled.tables
    assert len(tables.weight_runs) == len(tables.act_runs) == 9
    want_w = [i * 4 + c for i in range(3) for j in range(3) for c in range(4)]
    want_a = [j * 4 + c for i in range(3) for j in range(3) for c in range(4)]
    np.testing.assert_array_equal(tables.weight_index, want_w)
    np.testing.assert_array_equal(tables.act_index, want_a)
    assert len(tables) == tiled.n_beats == 36


def test_concatenated_tables_play_the_beats_back_to_back():
    rng = np.random.default_rng(8)
    geometry = Geometry(rows=2, cols=3, groups=1)
    parts = [tile_gemm(geometry, rng.integers(-9, 9, size=(k, n)),
                       a=_two_to_four(rng, m, k, -9, 9), dense=dense, k_parts=parts)
             for m, k, n, dense, parts in ((3, 9, 4, False, 1), (2, 5, 7, True, 2),
                                           (4, 16, 3, False, 3))]
    joined = BeatTables.concat([p.tables for p in parts])
    beats = joined.expand()
    want = Beats.concat([p.beats for p in parts])
    assert len(joined) == len(beats) == sum(p.n_beats for p in parts)
    for name in ("values", "meta", "acts", "dense", "last", "accumulate"):
        np.testing.assert_array_equal(getattr(beats, name), getattr(want, name))
    with pytest.raises(ValueError, match="at least one"):
        BeatTables.concat([])


def test_partial_results_of_k_parts_are_prefix_sums():
    rng = np.random.default_rng(5)
    geometry = Geometry(rows=2, cols=2, groups=1, acc_bits=32)
    a = rng.integers(-8, 8, size=(2, 12))
    b = rng.integers(0, 16, size=(12, 2))
    tiled = tile_gemm(geometry, b, a=a, dense=True, k_parts=3)   # 6 chunks of 2 -> 3 parts
    expected = tiled.expected
    for part, k_end in enumerate((4, 8, 12)):
        np.testing.assert_array_equal(expected[part], a[:, :k_end] @ b[:k_end])
    assert tiled.final.tolist() == [False, False, True]


def test_any_code_and_wrap():
    rng = np.random.default_rng(6)
    geometry = Geometry(rows=3, cols=2, groups=2, acc_bits=12)
    values = rng.integers(-128, 128, size=(5, 2 * 6))
    meta = rng.integers(0, 16, size=(5, 6))
    b = rng.integers(-128, 128, size=(23, 4))
    tiled = tile_gemm(geometry, b, values=values, meta=meta)
    # Plain numpy meaning of SPEC §3, B zero-padded to 4G rows.
    b_pad = np.concatenate([b, np.zeros((1, 4), dtype=np.int64)])
    want = np.zeros((5, 4), dtype=np.int64)
    for g in range(6):
        want += np.outer(values[:, 2 * g], 1) * b_pad[4 * g + (meta[:, g] & 3)]
        want += np.outer(values[:, 2 * g + 1], 1) * b_pad[4 * g + (meta[:, g] >> 2)]
    np.testing.assert_array_equal(assemble(tiled, tiled.expected), _wrap(want, 12))


def test_accumulate_across_modes():
    rng = np.random.default_rng(8)
    geometry = Geometry(rows=2, cols=2, groups=1, acc_bits=16)
    a = _two_to_four(rng, 2, 8, -128, 127)
    b = rng.integers(-128, 128, size=(8, 2))
    sparse = tile_gemm(geometry, b, a=a).beats
    dense = tile_gemm(geometry, b, a=a, dense=True).beats
    dense.accumulate[0] = True
    beats = Beats.concat([sparse, dense])
    got = expected_results(beats, geometry)
    np.testing.assert_array_equal(got[0], _wrap(a @ b, 16))
    np.testing.assert_array_equal(got[1], _wrap(2 * (a @ b), 16))


def test_explain_mismatch_names_group_and_code():
    rng = np.random.default_rng(9)
    geometry = Geometry(rows=2, cols=2, groups=2, acc_bits=32)
    values = rng.integers(1, 100, size=(2, 8))
    meta = np.full((2, 4), 0b0100)
    b = np.arange(16 * 2).reshape(16, 2) + 1
    tiled = tile_gemm(geometry, b, values=values, meta=meta)
    # What the core would return if group 3 of row 1 had selected with code 0b1110.
    wrong = meta.copy()
    wrong[1, 3] = 0b1110
    got = int(tile_gemm(geometry, b, values=values, meta=wrong).expected[0][1, 0])
    info = explain_mismatch(tiled.beats, geometry, 0, 1, 0, got)
    assert (info["beat"], info["group"], info["code"]) == (1, 1, 0b0100)
    assert info["explained_by_code"] == 0b1110


@pytest.mark.parametrize("kwargs, message", [
    (dict(a=np.zeros((2, 3), dtype=np.int64)), "does not match b shape"),
    (dict(values=np.zeros((2, 4), dtype=np.int64), meta=np.zeros((2, 2), dtype=np.int64),
          dense=True), "dense mode takes a"),
    (dict(), "give either a, or values and meta"),
    (dict(a=np.ones((1, 4), dtype=np.int64)), "not 2:4"),
    (dict(a=np.zeros((2, 4), dtype=np.int64), k_parts=0), "k_parts must be"),
])
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tile_gemm(Geometry(2, 2, 1), np.zeros((4, 2), dtype=np.int64), **kwargs)


def test_geometry_from_mapping():
    assert Geometry.of({"rows": 4, "cols": 2, "groups": 1, "acc_bits": 20}) == Geometry(4, 2, 1, 20)
    # SPEC §3: a sparse beat is G groups of four, a dense beat the 2G values they keep.
    assert (Geometry(4, 2, 3).k_sparse, Geometry(4, 2, 3).k_dense) == (12, 6)
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        Geometry(2, 2, 0)
    with pytest.raises(ValueError, match="acc_bits missing"):
        Geometry.of({"rows": 4, "cols": 2, "groups": 1})


def test_geometry_from_config_and_manifest():
    from sparsecore.hw.config import CoreConfig

    config = CoreConfig(rows=3, cols=2, groups=3, acc_bits=24)
    assert Geometry.of(config) == Geometry(3, 2, 3, 24)
    manifest = {"config": config.as_dict(), "derived": {"k_sparse": 12, "k_dense": 6}}
    assert Geometry.of(manifest) == Geometry(3, 2, 3, 24)
    manifest["derived"]["k_dense"] = 4
    with pytest.raises(ValueError, match="k_dense is 4 in the config but .* needs 6"):
        Geometry.of(manifest)
