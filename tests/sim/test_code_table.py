"""sim.code_table against plain Python: math's functions, round(), bit patterns by hand."""

import math

import numpy as np
import pytest

from sparsecore.sim.code_table import (
    check_table,
    function_table,
    lookup,
    raw_order,
    table_size,
    write_entries,
)

PLAIN = {"sigmoid": lambda x: 1 / (1 + math.exp(-x)), "tanh": math.tanh,
         "gelu": lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2)))}


@pytest.mark.parametrize("name", list(PLAIN))
def test_function_table_matches_plain_python(name):
    in_scale, out_scale = 1 / 32, 1 / 127
    table = function_table(name, in_scale, out_scale, "int8", "int8")
    want = [max(-128, min(127, round(PLAIN[name](v * in_scale) / out_scale)))
            for v in range(-128, 128)]   # Python's round() is half to even
    assert table.tolist() == want


def test_function_table_rounds_half_to_even_and_clips():
    # tanh(x)/out_scale lands on exact halves only by accident; use a unsigned-out sigmoid
    # at x = 0: 0.5 / (1/3) = 1.5 -> 2 (even), and clip at the format's ends
    table = function_table("sigmoid", 1.0, 1 / 3, "uint4", "uint4")
    assert table[0] == 2   # code 0 of uint4 is x = 0
    big = function_table("sigmoid", 1.0, 1 / 300, "int4", "uint8")
    assert big.max() == 255 and big.min() >= 0


def test_lookup_indexes_by_value():
    table = -1 - np.arange(-128, 128)      # entry = -1 - code (bitwise not)
    codes = np.array([[-128, -1], [0, 127]])
    assert lookup(codes, table, "int8", "int8").tolist() == [[127, 0], [-1, -128]]


def test_raw_order_is_the_bit_pattern():
    table = np.arange(-128, 128)           # identity on int8
    raw = raw_order(table, "int8", "int8")
    assert raw[0] == 0 and raw[127] == 127 and raw[128] == -128 and raw[255] == -1
    uraw = raw_order(np.arange(16), "uint4", "uint4")
    assert uraw.tolist() == list(range(16))


def test_write_entries_in_order():
    table = np.zeros(16, np.int64)
    out = write_entries(table, [3, 3, 5], [1, 2, 7], "uint4", "uint4")
    assert out[3] == 2 and out[5] == 7 and out.sum() == 9
    assert table.sum() == 0   # a copy


@pytest.mark.parametrize("codes,size", [("int8", 256), ("uint8", 256), ("int4", 16),
                                        ("uint4", 16)])
def test_table_of_wrong_length_is_refused(codes, size):
    assert table_size(codes) == size
    with pytest.raises(ValueError, match=f"table must have {size} entries"):
        check_table(np.zeros(size - 1, np.int64), codes, "int8")
    with pytest.raises(ValueError, match=f"table must have {size} entries"):
        lookup([0], np.zeros(size + 1, np.int64), codes, "int8")


def test_bad_entries_and_codes_are_refused():
    with pytest.raises(ValueError, match="outside uint4"):
        check_table(np.full(16, 16), "uint4", "uint4")
    with pytest.raises(ValueError, match="integer array"):
        check_table(np.zeros(16), "uint4", "uint4")
    with pytest.raises(ValueError, match="outside int4"):
        lookup([8], np.zeros(16, np.int64), "int4", "uint4")
    with pytest.raises(ValueError, match="function must be one of"):
        function_table("relu6", 1.0, 1.0)
    with pytest.raises(ValueError, match="in_scale must be a positive"):
        function_table("tanh", 0.0, 1.0)
