"""The output stage's numpy twin against plain Python integer arithmetic.

The reference below uses exact fractions and Python's round(), which rounds
half to even: no shifts, no rounding tricks, written apart from sim/requant.py.
"""

import os
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsecore.sim.requant import check_fields, fixed_point_scale, requantize, scale_range

SEED = int(os.environ.get("SPARSECORE_SEED", "20261125"))

RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int4": (-8, 7), "uint4": (0, 15)}


def reference(acc, mult, shift, bias, out, relu):
    """One element, exactly: round_half_even((acc + bias) * mult / 2**shift), ReLU, clip."""
    y = round(Fraction((acc + bias) * mult, 2 ** shift))
    if relu:
        y = max(y, 0)
    lo, hi = RANGES[out]
    return min(max(y, lo), hi)


def reference_array(acc, mult, shift, bias, out, relu):
    return np.array([[reference(int(a), int(mult[c]), int(shift[c]), int(bias[c]), out, relu)
                      for a in row] for c, row in enumerate(acc)], dtype=np.int64)


def random_case(rng, acc_bits, mult_bits, shift_bits, m, n):
    lo, hi = -(1 << (acc_bits - 1)), 1 << (acc_bits - 1)
    # small accumulators as well as full-range ones, so that outputs land inside the range
    small = rng.integers(-300, 300, (m, n))
    acc = np.where(rng.random((m, n)) < 0.5, small, rng.integers(lo, hi, (m, n)))
    acc = np.clip(acc, lo, hi - 1)
    bias = np.clip(rng.integers(-200, 200, m), lo, hi - 1)
    mult = rng.integers(0, 1 << mult_bits, m)
    shift = rng.integers(0, 1 << shift_bits, m)
    return acc, mult, shift, bias


@pytest.mark.parametrize("out", list(RANGES))
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("acc_bits,mult_bits,shift_bits", [(32, 16, 5), (12, 4, 3), (45, 16, 6)])
def test_random_against_reference(out, relu, acc_bits, mult_bits, shift_bits):
    rng = np.random.default_rng([SEED, acc_bits, mult_bits, shift_bits, relu, len(out)])
    acc, mult, shift, bias = random_case(rng, acc_bits, mult_bits, shift_bits, 16, 12)
    got = requantize(acc, mult, shift, bias, out, relu, acc_bits, mult_bits, shift_bits)
    want = reference_array(acc, mult, shift, bias, out, relu)
    bad = np.argwhere(got != want)
    assert bad.size == 0, (f"first mismatch at {tuple(bad[0])}: got {got[tuple(bad[0])]}, "
                           f"want {want[tuple(bad[0])]} (SPARSECORE_SEED={SEED})")


def test_exact_halves_round_to_even():
    # (acc + bias) * mult = k * 2**(shift-1) with k odd: an exact half every time
    shift = np.array([1, 2, 3, 4, 5])
    k = np.arange(-41, 42, 2)
    acc = k[None, :] * (1 << (shift[:, None] - 1))
    got = requantize(acc, np.ones(5, np.int64), shift, np.zeros(5, np.int64), "int8", False)
    want = np.rint(k / 2).astype(np.int64)  # half to even, done by numpy on exact halves
    assert (got == np.broadcast_to(want, got.shape)).all()
    # the plain numbers, written out: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0, -1.5 -> -2
    one = requantize(np.array([[1, 3, 5, -1, -3, 7]]), np.array([1]), np.array([1]),
                     np.array([0]), "int8", False)
    assert one.tolist() == [[0, 2, 2, 0, -2, 4]]


def test_corners():
    acc_bits, mult_bits, shift_bits = 32, 16, 5
    lo, hi = -(1 << 31), (1 << 31) - 1
    acc = np.array([[lo, hi, 0, -1, 1, lo, hi]] * 6)
    mult = np.array([0, 1, 65535, 65535, 32768, 1])
    shift = np.array([0, 0, 31, 0, 31, 31])
    bias = np.array([0, hi, lo, hi, lo, -1])
    for out in RANGES:
        for relu in (False, True):
            got = requantize(acc, mult, shift, bias, out, relu, acc_bits, mult_bits, shift_bits)
            assert (got == reference_array(acc, mult, shift, bias, out, relu)).all(), (out, relu)


def test_relu_and_clip_by_hand():
    acc = np.array([[-20, -1, 0, 7, 15, 16, 300]])
    one, zero = np.array([1]), np.array([0])
    assert requantize(acc, one, zero, zero, "uint4", True).tolist() == [[0, 0, 0, 7, 15, 15, 15]]
    assert requantize(acc, one, zero, zero, "int4", False).tolist() == [[-8, -1, 0, 7, 7, 7, 7]]
    assert requantize(acc, one, zero, zero, "int4", True).tolist() == [[0, 0, 0, 7, 7, 7, 7]]
    assert requantize(acc, one, zero, zero, "int8", False).tolist() == [[-20, -1, 0, 7, 15, 16,
                                                                          127]]


@settings(max_examples=200, deadline=None)
@given(acc=st.integers(-(1 << 31), (1 << 31) - 1), bias=st.integers(-(1 << 31), (1 << 31) - 1),
       mult=st.integers(0, 65535), shift=st.integers(0, 31),
       out=st.sampled_from(list(RANGES)), relu=st.booleans())
def test_property_against_reference(acc, bias, mult, shift, out, relu):
    got = requantize(np.array([[acc]]), np.array([mult]), np.array([shift]), np.array([bias]),
                     out, relu)
    assert int(got[0, 0]) == reference(acc, mult, shift, bias, out, relu)


def test_fixed_point_scale_precision():
    rng = np.random.default_rng(SEED)
    for mult_bits, shift_bits in [(16, 5), (8, 4), (20, 6)]:
        lo, hi = scale_range(mult_bits, shift_bits)
        scale = np.exp(rng.uniform(np.log(lo), np.log(hi), 500))
        scale = np.concatenate([scale, [lo, hi, 0.0, 1.0, 0.5]])
        mult, shift = fixed_point_scale(scale, mult_bits, shift_bits)
        assert ((0 <= shift) & (shift < 1 << shift_bits)).all()
        assert ((0 <= mult) & (mult < 1 << mult_bits)).all()
        nz = scale != 0
        assert (mult[nz] >= 1 << (mult_bits - 1)).all()  # normalised: full precision
        approx = mult[nz] / 2.0 ** shift[nz]
        assert (np.abs(approx / scale[nz] - 1) <= 2.0 ** -mult_bits).all()
        assert mult[~nz].tolist() == [0] and shift[~nz].tolist() == [0]


def test_fixed_point_scale_by_hand():
    mult, shift = fixed_point_scale(np.array([1.0, 0.75, 3.0]), 4, 3)
    # 1.0 = 8/8, 0.75 = 12/16, 3.0 = 12/4
    assert mult.tolist() == [8, 12, 12] and shift.tolist() == [3, 4, 2]


@pytest.mark.parametrize("scale,match", [
    ([0.1, 70000.0], "channel 1 does not fit"),
    ([1e-9], "channel 0 does not fit"),
    ([-0.5], "channel 0 does not fit"),
    ([float("nan")], "channel 0 does not fit"),
    ([[0.5]], "1-D array"),
    # would otherwise be cast to a real scale without a word
    ([True], "scale: expected an integer or real array, got dtype bool"),
    ([0.5 + 1j], "scale: expected an integer or real array, got dtype complex128"),
])
def test_fixed_point_scale_refuses(scale, match):
    with pytest.raises(ValueError, match=match):
        fixed_point_scale(np.array(scale))


@pytest.mark.parametrize("kwargs,match", [
    ({"acc": np.zeros((2, 3), np.float32)}, "acc: expected an integer array"),
    ({"acc": np.zeros(3, np.int64)}, "acc must be a 2-D array"),
    ({"acc": np.full((2, 3), 1 << 31)}, r"acc: value 2147483648 at index \(0, 0\)"),
    ({"mult": np.zeros(3, np.int64)}, r"mult must have shape \(2,\)"),
    ({"mult": np.array([0, 65536])}, r"mult: value 65536 at index \(1,\)"),
    ({"shift": np.array([32, 0])}, r"shift: value 32 at index \(0,\) is outside 0..31"),
    ({"bias": np.array([0.5, 0])}, "bias: expected an integer array"),
    ({"out": "ternary"}, "acts must be one of int8, uint8, int4, uint4, not 'ternary'"),
    ({"mult_bits": 0}, "mult_bits must be a positive integer, not 0"),
    ({"acc_bits": 50}, "mult_bits must be in 1..11 with acc_bits=50"),
])
def test_requantize_refuses(kwargs, match):
    args = {"acc": np.zeros((2, 3), np.int64), "mult": np.ones(2, np.int64),
            "shift": np.zeros(2, np.int64), "bias": np.zeros(2, np.int64), "out": "uint4"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        requantize(**args)


def test_check_fields_refuses_wide_shift():
    with pytest.raises(ValueError, match="shift_bits must be in 1..6, not 7"):
        check_fields(32, 16, 7)


def test_check_fields_bounds_acc_bits():
    # acc + bias (acc_bits + 1) times a mult of at least 1 bit must fit 62 bits
    check_fields(60, 1, 5)
    with pytest.raises(ValueError, match=r"acc_bits must be in 1\.\.60 .*, not 61"):
        check_fields(61, 1, 5)
    with pytest.raises(ValueError, match=r"mult_bits must be in 1\.\.1 with acc_bits=60"):
        check_fields(60, 2, 5)
