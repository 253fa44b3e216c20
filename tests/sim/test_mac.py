"""sparsecore.sim.mac against a plain Python loop with Python integers, written from SPEC §1."""

import numpy as np
import pytest

from sparsecore.sim.mac import code_values, mac_products, mac_trace


def loop_reference(products, valid, clear, reset, acc_bits):
    acc, out = 0, []
    for p, v, c, r in zip(products, valid, clear, reset, strict=True):
        acc = (0 if c else acc) + (int(p) if v else 0)
        acc %= 1 << acc_bits
        if acc >= 1 << (acc_bits - 1):
            acc -= 1 << acc_bits
        if r:
            acc = 0
        out.append(acc)
    return out


@pytest.mark.parametrize("acc_bits", [5, 9, 16, 32, 63, 64])
def test_trace_matches_loop(acc_bits):
    rng = np.random.default_rng(acc_bits)
    n = 3000
    products = rng.integers(-(1 << 15), 1 << 15, n)
    if acc_bits >= 63:  # drive the running sum past int64 so its overflow is exercised
        products = rng.integers(-(1 << 62), 1 << 62, n) * 2
    valid = rng.random(n) < 0.8
    clear = rng.random(n) < 0.05
    reset = rng.random(n) < 0.01
    got = mac_trace(products, valid, clear, acc_bits, reset=reset)
    assert got.dtype == np.int64
    assert got.tolist() == loop_reference(products, valid, clear, reset, acc_bits)


def test_trace_small_cases():
    # clear with valid starts at this product; clear alone gives 0; no reset given.
    assert mac_trace([3, 4, 5, 6, 7], [1, 1, 1, 0, 1], [0, 0, 1, 1, 0], 8).tolist() == \
        [3, 7, 5, 0, 7]
    # 4-bit accumulator: 7 + 1 wraps to -8.
    assert mac_trace([7, 1, -1], [1, 1, 1], [0, 0, 0], 4).tolist() == [7, -8, 7]
    assert mac_trace(np.zeros(0, np.int64), [], [], 8).tolist() == []


def test_code_values_by_hand():
    assert code_values([0, 1, 2, 3], "ternary").tolist() == [0, 1, 0, -1]
    assert code_values([0, 7, 8, 15], "int4").tolist() == [0, 7, -8, -1]
    assert code_values([0, 15], "uint4").tolist() == [0, 15]
    assert code_values([127, 128, 255], "int8").tolist() == [127, -128, -1]
    assert code_values([128, 255], "uint8").tolist() == [128, 255]
    with pytest.raises(ValueError, match="code 4 at index \\(1,\\) is not a 2-bit ternary code"):
        code_values([1, 4], "ternary")
    with pytest.raises(ValueError, match="expected an integer array"):
        code_values([0.5], "int8")


def test_products():
    assert mac_products([-128, 127, -1], [255, 255, 0], "int8", "uint8").tolist() == \
        [-32640, 32385, 0]
    with pytest.raises(ValueError, match="outside ternary range"):
        mac_products([2], [1], "ternary", "int8")
    with pytest.raises(ValueError, match="same shape"):
        mac_products([1, 1], [1], "int8", "int8")


def test_trace_rejects_bad_input():
    with pytest.raises(ValueError, match="acc_bits must be an integer in 1..64, not 0"):
        mac_trace([1], [1], [0], 0)
    with pytest.raises(ValueError, match="clear must be a 1-D array"):
        mac_trace([1, 2], [1, 1], [0], 8)
