import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from spec_reference import PROPERTY

from sparsecore.sim import quantize_activations, quantize_weights, ternarize

REALS = hnp.arrays(np.float64, st.integers(1, 40),
                   elements=st.floats(-3, 3, allow_nan=False, allow_subnormal=False))


def clip(x, lo, hi):
    return min(max(x, lo), hi)


@given(REALS, st.integers(2, 8))
@PROPERTY
def test_weights_match_formula_in_range_and_idempotent(w, bits):
    codes, scale = quantize_weights(w, bits)
    levels = 2 ** (bits - 1) - 1
    # Python's round() is round-half-even too.
    assert codes.tolist() == [round(levels * clip(x, -1.0, 1.0)) for x in w.tolist()]
    assert codes.dtype == np.int64 and scale == 1 / levels
    assert np.all(np.abs(codes) <= levels)
    again, scale2 = quantize_weights(codes * scale, bits)
    assert again.tolist() == codes.tolist() and scale2 == scale


@given(REALS, st.integers(1, 8))
@PROPERTY
def test_activations_match_formula_in_range_and_idempotent(a, bits):
    codes, scale = quantize_activations(a, bits)
    levels = 2 ** bits - 1
    assert codes.tolist() == [round(levels * clip(x, 0.0, 1.0)) for x in a.tolist()]
    assert np.all((codes >= 0) & (codes <= levels)) and scale == 1 / levels
    assert quantize_activations(codes * scale, bits)[0].tolist() == codes.tolist()


def test_round_half_to_even():
    # 3 levels each side at 3 bits: 0.5/3 -> 0.5 -> 0, 1.5/3 -> 1.5 -> 2, 2.5/3 -> 2.5 -> 2
    codes, _ = quantize_weights(np.array([0.5, 1.5, 2.5, -0.5, -1.5]) / 3, 3)
    assert codes.tolist() == [0, 2, 2, 0, -2]
    codes, _ = quantize_activations(np.array([0.5, 1.0, -2.0, 7.0]), 1)
    assert codes.tolist() == [0, 1, 0, 1]
    codes, _ = quantize_weights(np.array([-5.0, 5.0, 0.0]), 2)
    assert codes.tolist() == [-1, 1, 0]


@given(REALS)
@PROPERTY
def test_ternarize_matches_twn(w):
    codes, alpha = ternarize(w)
    xs = w.tolist()
    delta = 0.7 * (sum(abs(x) for x in xs) / len(xs))
    expected = [(1 if x > 0 else -1) if abs(x) > delta else 0 for x in xs]
    assert codes.tolist() == expected
    kept = [abs(x) for x in xs if abs(x) > delta]
    assert alpha == pytest.approx(sum(kept) / len(kept) if kept else 0.0)
    assert set(codes.tolist()) <= {-1, 0, 1}
    assert ternarize(codes)[0].tolist() == codes.tolist()


def test_ternarize_example():
    codes, alpha = ternarize(np.array([[0.1, -0.9], [0.5, 0.0]]))
    # mean |w| = 0.375, delta = 0.2625: keeps -0.9 and 0.5
    assert codes.tolist() == [[0, -1], [1, 0]] and alpha == pytest.approx(0.7)
    assert ternarize(np.zeros(3))[1] == 0.0


@pytest.mark.parametrize("fn, bits", [(quantize_weights, 1), (quantize_weights, 9),
                                      (quantize_activations, 0), (quantize_activations, 2.0),
                                      (quantize_weights, True)])
def test_bits_out_of_range(fn, bits):
    with pytest.raises(ValueError, match=r"bits must be an integer in \d\.\.8"):
        fn(np.zeros(2), bits)


@pytest.mark.parametrize("bad, message", [
    (np.array([0.0, np.nan]), r"w: non-finite value nan at index \(1,\)"),
    (np.array([np.inf]), r"w: non-finite value inf"),
    (np.array([True]), r"expected an integer or real array, got dtype bool"),
    (np.array([1j]), r"got dtype complex128"),
])
def test_refuses_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        quantize_weights(bad, 4)
    with pytest.raises(ValueError, match=message):
        ternarize(bad)
