
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from spec_reference import (
    ALL_PATTERNS,
    LEGAL,
    PROPERTY,
    decompress_ref,
    prune_ref,
    sparse_matrices,
    spec_codes,
)

from sparsecore.sim import CANONICAL_CODES, compress_2to4, decompress_2to4, is_2to4, prune_2to4

SPEC = spec_codes()


def test_table_in_code_is_the_spec_table():
    assert CANONICAL_CODES == SPEC
    assert sorted(SPEC) == sorted(LEGAL)


@pytest.mark.parametrize("pattern", LEGAL)
def test_compress_gives_spec_code_for_every_pattern(pattern):
    group = np.array([[7 * (p + 1) if c == "1" else 0 for p, c in enumerate(pattern)]])
    values, meta = compress_2to4(group)
    code = SPEC[pattern]
    idx0, idx1 = code & 3, code >> 2
    assert idx0 < idx1
    assert meta.tolist() == [[code]]
    assert values.tolist() == [[int(group[0, idx0]), int(group[0, idx1])]]


@pytest.mark.parametrize("pattern, code, slots", [
    # one nonzero x = 5: which slot of the pair holds it
    ("0000", 0b1110, [0, 0]),
    ("1000", 0b1000, [5, 0]),
    ("0100", 0b1001, [5, 0]),
    ("0010", 0b1110, [5, 0]),
    ("0001", 0b1110, [0, 5]),
])
def test_fewer_than_two_nonzeros(pattern, code, slots):
    group = np.array([[5 if c == "1" else 0 for c in pattern]])
    values, meta = compress_2to4(group)
    assert meta.tolist() == [[code]] and values.tolist() == [slots]


@pytest.mark.parametrize("pattern", [p for p in ALL_PATTERNS if p.count("1") > 2])
def test_compress_refuses_dense_group_naming_row_and_group(pattern):
    a = np.zeros((4, 12), dtype=np.int8)
    a[2, 4:8] = [3 if c == "1" else 0 for c in pattern]
    with pytest.raises(ValueError, match=r"row 2, group 1 .*has [34] nonzeros"):
        compress_2to4(a)
    assert not is_2to4(a)


def test_compress_shapes_and_padding():
    a = np.array([[1, 0, 0, 0, 0, 2], [0, 0, 0, 0, 0, 0]], dtype=np.int16)
    values, meta = compress_2to4(a)
    assert values.shape == (2, 4) and meta.shape == (2, 2)
    assert values.dtype == np.int64 and meta.dtype == np.int64
    # Second group is 0, 2, (pad), (pad): pattern 0100 -> 0b1001.
    assert meta.tolist() == [[0b1000, 0b1001], [0b1110, 0b1110]]
    assert values.tolist() == [[1, 0, 2, 0], [0, 0, 0, 0]]
    assert decompress_2to4(values, meta, k=6).tolist() == a.tolist()


@pytest.mark.parametrize("bad", [np.ones((2, 4)), np.ones((2, 4), dtype=bool), [[1.5, 0]]])
def test_compress_refuses_non_integer(bad):
    with pytest.raises(ValueError, match="expected an integer array"):
        compress_2to4(bad)


def test_compress_refuses_non_matrix():
    with pytest.raises(ValueError, match=r"2-D matrix"):
        compress_2to4(np.zeros(8, dtype=np.int64))


@given(sparse_matrices())
@PROPERTY
def test_round_trip(a):
    values, meta = compress_2to4(a)
    assert values.shape == (a.shape[0], 2 * -(-a.shape[1] // 4))
    assert decompress_2to4(values, meta, k=a.shape[1]).tolist() == a.tolist()
    padded = decompress_ref(values, meta)
    assert [row[:a.shape[1]] for row in padded] == a.tolist()
    assert all(v == 0 for row in padded for v in row[a.shape[1]:])


@given(sparse_matrices(max_k=16))
@PROPERTY
def test_compressed_codes_are_canonical(a):
    values, meta = compress_2to4(a)
    g = meta.shape[1]
    padded = np.concatenate([a, np.zeros((a.shape[0], 4 * g - a.shape[1]), a.dtype)], axis=1)
    for i, j in np.ndindex(meta.shape):
        pattern = "".join("1" if x else "0" for x in padded[i, 4 * j:4 * j + 4])
        assert meta[i, j] == SPEC[pattern]


@pytest.mark.parametrize("code", [c for c in range(16) if (c & 3) >= (c >> 2)])
def test_decompress_refuses_codes_outside_table(code):
    meta = np.full((3, 2), 0b1110)
    meta[1, 1] = code
    with pytest.raises(ValueError, match=rf"code {code:#06b} at row 1, group 1 .*canonical"):
        decompress_2to4(np.ones((3, 4), dtype=np.int64), meta)


def test_decompress_accepts_table_code_with_zero_values():
    # A kept value may be zero (quantized away); the code still places the other one.
    dense = decompress_2to4(np.array([[0, 9]]), np.array([[0b0100]]))
    assert dense.tolist() == [[0, 9, 0, 0]]
    values, meta = compress_2to4(dense)
    assert meta.tolist() == [[0b1001]] and values.tolist() == [[9, 0]]


def test_decompress_errors():
    values, meta = np.zeros((2, 4), np.int64), np.full((2, 2), 0b1110)
    with pytest.raises(ValueError, match=r"values shape \(2, 3\) does not match meta shape"):
        decompress_2to4(values[:, :3], meta)
    with pytest.raises(ValueError, match=r"meta: value 16 at index \(0, 1\) is outside meta"):
        decompress_2to4(values, np.array([[14, 16], [14, 14]]))
    with pytest.raises(ValueError, match="expected an integer array"):
        decompress_2to4(values.astype(float), meta)
    with pytest.raises(ValueError, match=r"k must be an integer in 5\.\.8"):
        decompress_2to4(values, meta, k=4)
    spill = np.array([[0, 0, 0, 7], [0, 0, 0, 0]])
    with pytest.raises(ValueError, match=r"row 0, group 1 puts a nonzero at column 7, beyond k=6"):
        decompress_2to4(spill, meta, k=6)


@given(hnp.arrays(np.int64, st.tuples(st.integers(1, 4), st.integers(1, 11)),
                  elements=st.integers(-4, 4)))
@PROPERTY
def test_prune_matches_reference_and_is_2to4(w):
    pruned = prune_2to4(w)
    assert pruned.dtype == w.dtype and pruned.shape == w.shape
    assert pruned.tolist() == [prune_ref(row) for row in w.tolist()]
    assert is_2to4(pruned)
    # Already 2:4 input comes back unchanged.
    assert prune_2to4(pruned).tolist() == pruned.tolist()


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 9)),
                  elements=st.floats(-10, 10, allow_nan=False)))
@PROPERTY
def test_prune_keeps_largest_magnitudes_of_reals(w):
    pruned = prune_2to4(w)
    for row, out in zip(w, pruned, strict=True):
        for s in range(0, len(row), 4):
            kept = [abs(x) for x, y in zip(row[s:s + 4], out[s:s + 4], strict=True) if y != 0]
            dropped = [abs(x) for x, y in zip(row[s:s + 4], out[s:s + 4], strict=True) if y == 0]
            assert len(kept) <= 2
            assert not kept or not dropped or min(kept) >= max(dropped)


def test_prune_ties_and_extremes():
    w = np.array([[3, -3, 3, -3, -128, 127, 0, -127, 1, 1, 1]], dtype=np.int8)
    assert prune_2to4(w).tolist() == [[3, -3, 0, 0, -128, 127, 0, 0, 1, 1, 0]]
    assert prune_2to4(np.arange(24).reshape(2, 3, 4)).tolist() == [
        [[0, 0, 2, 3], [0, 0, 6, 7], [0, 0, 10, 11]],
        [[0, 0, 14, 15], [0, 0, 18, 19], [0, 0, 22, 23]]]


def test_prune_refuses_bad_input():
    with pytest.raises(ValueError, match=r"NaN at index \(0, 2\)"):
        prune_2to4(np.array([[1.0, 2.0, np.nan]]))
    with pytest.raises(ValueError, match="integer or real"):
        prune_2to4(np.ones(4, dtype=bool))
    with pytest.raises(ValueError, match="scalar"):
        prune_2to4(3)


def test_is_2to4():
    assert is_2to4(np.array([[1, 1, 0, 0, 0, 0, 0, 1, 1]]))
    assert not is_2to4(np.array([[1, 1, 0, 0, 0, 1, 1, 1, 1]]))
    assert not is_2to4(np.array([0.0, 0.5, 0.5, 0.5]))
    assert is_2to4(np.zeros((2, 3, 5)))
