import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from spec_reference import PROPERTY, matmul_ref, sparse_matmul_ref, sparse_matrices, wrap_ref

from sparsecore.sim import acc_format, compress_2to4, matmul, sparse_matmul, wrap

BITS = st.sampled_from([1, 2, 8, 16, 17, 18, 32, 63, 64])


@given(st.lists(st.integers(-(1 << 63), (1 << 63) - 1), min_size=1, max_size=20), BITS)
@PROPERTY
def test_wrap_matches_modular_formula(xs, bits):
    assert wrap(np.array(xs, dtype=np.int64), bits).tolist() == [wrap_ref(x, bits) for x in xs]


def test_wrap_edges():
    assert wrap(np.array([127, 128, -128, -129, 255, 256]), 8).tolist() == [
        127, -128, -128, 127, -1, 0]
    assert wrap(np.array([1, 2, 3]), 1).tolist() == [-1, 0, -1]
    with pytest.raises(ValueError, match=r"bits must be an integer in 1\.\.64, not 0"):
        wrap(np.array([1]), 0)
    with pytest.raises(ValueError, match="expected an integer array"):
        wrap(np.array([1.0]), 8)


@st.composite
def operands(draw, lo=-128, hi=255):
    m, k, n = draw(st.integers(1, 5)), draw(st.integers(1, 12)), draw(st.integers(1, 4))
    a = draw(hnp.arrays(np.int64, (m, k), elements=st.integers(lo, hi)))
    b = draw(hnp.arrays(np.int64, (k, n), elements=st.integers(lo, hi)))
    return a, b


@given(operands(), BITS)
@PROPERTY
def test_matmul_matches_reference(ab, bits):
    a, b = ab
    assert matmul(a, b, bits).tolist() == matmul_ref(a.tolist(), b.tolist(), bits)


@given(operands(lo=-(1 << 40), hi=1 << 40), st.sampled_from([32, 63, 64]))
@PROPERTY
def test_matmul_exact_beyond_float_precision(ab, bits):
    # Products near 2**80 take the modulo-2**64 integer path, not float64.
    a, b = ab
    assert matmul(a, b, bits).tolist() == matmul_ref(a.tolist(), b.tolist(), bits)


def test_matmul_wraps_at_acc_bits():
    a = np.full((1, 8), -128, dtype=np.int8)
    b = np.full((8, 1), -128, dtype=np.int8)
    assert matmul(a, b, 18).tolist() == [[131072 - 262144]]
    assert matmul(a, b).tolist() == [[131072]]
    assert matmul(a, b).dtype == np.int64


def test_matmul_errors():
    with pytest.raises(ValueError, match=r"a is 2 x 3, b is 4 x 1; b must have 3 rows"):
        matmul(np.zeros((2, 3), np.int64), np.zeros((4, 1), np.int64))
    with pytest.raises(ValueError, match=r"b: expected an integer array, got dtype float64"):
        matmul(np.zeros((2, 3), np.int64), np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"a: expected a 2-D matrix"):
        matmul(np.zeros(3, np.int64), np.zeros((3, 1), np.int64))
    with pytest.raises(ValueError, match=r"acc_bits must be an integer in 1\.\.64, not 65"):
        matmul(np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64), 65)


@st.composite
def compressed_any_code(draw):
    m, g, n = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    k = draw(st.integers(4 * g - 3, 4 * g))
    values = draw(hnp.arrays(np.int64, (m, 2 * g), elements=st.integers(-128, 127)))
    meta = draw(hnp.arrays(np.int64, (m, g), elements=st.integers(0, 15)))
    b = draw(hnp.arrays(np.int64, (k, n), elements=st.integers(-128, 255)))
    return values, meta, b


@given(compressed_any_code(), BITS)
@PROPERTY
def test_sparse_matmul_any_code_matches_spec_formula(case, bits):
    values, meta, b = case
    assert sparse_matmul(values, meta, b, bits).tolist() == sparse_matmul_ref(
        values.tolist(), meta.tolist(), b.tolist(), bits)


@pytest.mark.parametrize("code", range(16))
def test_sparse_matmul_each_code(code):
    b = np.array([[1], [10], [100], [1000]])
    expected = 3 * 10 ** (code & 3) + 5 * 10 ** (code >> 2)
    assert sparse_matmul(np.array([[3, 5]]), np.array([[code]]), b).tolist() == [[expected]]


@given(sparse_matrices(), st.integers(1, 3), st.sampled_from([8, 18, 32]), st.data())
@PROPERTY
def test_sparse_matmul_of_compression_equals_matmul(a, n, bits, data):
    b = data.draw(hnp.arrays(np.int64, (a.shape[1], n), elements=st.integers(-128, 255)))
    values, meta = compress_2to4(a)
    assert sparse_matmul(values, meta, b, bits).tolist() == matmul(a, b, bits).tolist()


def test_sparse_matmul_errors():
    values, meta = np.zeros((2, 4), np.int64), np.full((2, 2), 0b1110)
    with pytest.raises(ValueError, match=r"b must have 5\.\.8 rows, not 4"):
        sparse_matmul(values, meta, np.zeros((4, 1), np.int64))
    with pytest.raises(ValueError, match=r"meta: value -1 at index \(1, 0\)"):
        sparse_matmul(values, np.array([[14, 14], [-1, 14]]), np.zeros((8, 1), np.int64))
    with pytest.raises(ValueError, match=r"values: expected an integer array"):
        sparse_matmul(values.astype(np.float32), meta, np.zeros((8, 1), np.int64))
    with pytest.raises(ValueError, match=r"b: expected a 2-D matrix"):
        sparse_matmul(values, meta, np.zeros(8, np.int64))


def test_acc_format():
    fmt = acc_format(18)
    assert (fmt.bits, fmt.signed, fmt.min, fmt.max) == (18, True, -(1 << 17), (1 << 17) - 1)
