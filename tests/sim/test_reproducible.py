"""sparsecore.sim.reproducible: exact-sum matmul, exp and cos, against independent expectations.

That the results do not depend on the BLAS kernel or numpy's SIMD targets is tested
across processes in tests/app/test_workflow_check.py.
"""

import math
from fractions import Fraction

import numpy as np
import pytest

from sparsecore.sim.reproducible import cos, exp, mantissa_bits, matmul, tanh


@pytest.mark.parametrize("k", [1, 2, 3, 10, 32, 64, 128, 256, 1000, 2 ** 20])
def test_mantissa_bits_keep_sums_below_2_53(k):
    bits = mantissa_bits(k)
    # k terms of at most 2**bits x 2**bits each: the sum's magnitude stays <= 2**53 ...
    assert k * 2 ** (2 * bits) <= 2 ** 53
    # ... and one more bit would break it (the largest such bits)
    assert k * 2 ** (2 * bits + 2) > 2 ** 53


@pytest.mark.parametrize("k", [0, -1, 2.0, True])
def test_mantissa_bits_refuses_bad_k(k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        mantissa_bits(k)


def test_matmul_of_small_integers_is_the_integer_product():
    rng = np.random.default_rng(0)
    a = rng.integers(-1000, 1001, (17, 64))
    b = rng.integers(-1000, 1001, (64, 9))
    got = matmul(a.astype(float), b.astype(float))
    assert np.array_equal(got, (a @ b).astype(float))  # int64 numpy matmul: no BLAS


def test_matmul_is_the_exact_product_of_its_rounded_operands():
    """Each element equals the exact rational dot product of the operands rounded to
    mantissa_bits(K) bits relative to their row (A) and column (B) maxima."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 32)) * np.logspace(-3, 3, 5)[:, None]
    b = rng.normal(size=(32, 4)) * 1e-4
    bits = mantissa_bits(32)

    def rounded(x, largest):
        exponent = math.frexp(largest)[1]
        return Fraction(round(Fraction(x) * 2 ** (bits - exponent))) / 2 ** (bits - exponent)

    got = matmul(a, b)
    for i in range(5):
        for j in range(4):
            row, col = np.abs(a[i]).max(), np.abs(b[:, j]).max()
            want = sum(rounded(a[i, k], row) * rounded(b[k, j], col) for k in range(32))
            assert Fraction(got[i, j]) == want


def test_matmul_does_not_depend_on_the_order_of_k():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(32, 256)), rng.normal(size=(256, 128))
    perm = rng.permutation(256)
    assert np.array_equal(matmul(a, b), matmul(a[:, perm], b[perm]))
    np.testing.assert_allclose(matmul(a, b), a @ b, rtol=0, atol=1e-5 * np.abs(a @ b).max())


def test_matmul_zero_rows_columns_and_shapes():
    a = np.zeros((3, 4))
    a[1] = [1.5, -2.0, 0.25, 8.0]
    b = np.eye(4)
    assert np.array_equal(matmul(a, b), a)
    assert matmul(np.zeros((2, 0)), np.zeros((0, 3))).shape == (2, 3)
    with pytest.raises(ValueError, match="M x K and K x N"):
        matmul(np.zeros((2, 3)), np.zeros((4, 2)))


def test_exp_within_two_ulp_of_numpy():
    x = np.concatenate([np.linspace(-740, 709, 200001), np.linspace(-1, 1, 10001)])
    want = np.exp(x)
    got = exp(x)
    assert np.all(np.abs(got - want) <= 2 * np.spacing(want))


def test_exp_edges():
    got = exp(np.array([0.0, 1.0, -np.inf, np.inf, np.nan, -2000.0, 800.0]))
    assert got[0] == 1.0
    assert abs(got[1] - math.e) <= math.ulp(math.e)
    assert got[2] == 0.0 and got[3] == np.inf and np.isnan(got[4])
    assert got[5] == 0.0 and got[6] == np.inf


def test_cos_against_math_cos():
    for x in np.linspace(-np.pi, np.pi, 2001):
        assert abs(cos(x) - math.cos(x)) < 1e-15
    assert cos(0.0) == 1.0


def test_cos_refuses_outside_its_range():
    with pytest.raises(ValueError, match=r"x must be in \[-pi, pi\]"):
        cos(4.0)


def test_tanh_close_to_numpy_odd_and_bounded():
    x = np.concatenate([np.linspace(-30, 30, 20001), [0.0, -0.0, 1e-300, 400.0, -400.0]])
    got = tanh(x)
    assert np.all(np.abs(got - np.tanh(x)) <= 1e-15 + 4e-16 * np.abs(np.tanh(x)))
    assert np.array_equal(tanh(-x), -got)                      # odd to the bit
    assert np.all(np.abs(got) <= 1.0)
    assert tanh(400.0) == 1.0 and tanh(-400.0) == -1.0
    assert np.isnan(tanh(np.nan))
