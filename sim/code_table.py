"""The code table's numpy twin: a nonlinearity as a table indexed by an activation code.

The hardware unit (``hw/code_table.py``) maps every code coming out of the
output stage through a table loaded at run time. A table for input format
``codes`` (``int8``, ``uint8``, ``int4``, ``uint4``) has exactly one entry per
code, ``2**bits`` entries, each a value of the output format ``out``::

    out_value = table[code - codes.min]        # table in value order

so ``table[0]`` belongs to the smallest code (-128 for ``int8``, 0 for
``uint8``). The hardware indexes its memory with the raw bit pattern of the
code (SPEC §1): :func:`raw_order` gives the table in that order
(``raw[code & mask] = table[code - codes.min]``).

Tables of real functions (:func:`function_table`): the input code ``v``
stands for the real ``x = v * in_scale``; the entry is the output code::

    entry(v) = clip(round_half_even(f(v * in_scale) / out_scale), out.min, out.max)

with ``f`` one of :data:`FUNCTIONS` (``sigmoid``, ``tanh``, ``gelu``: the erf
form, ``x * (1 + erf(x / sqrt 2)) / 2``). Rounding is half to even (SPEC §2).
The same hardware serves every function: only the table changes.

Writes (:func:`write_entries`) replace entries by code, in order; the
hardware's timing contract (which lookups see which writes) is in
``hw/code_table.py``.
"""

import math

import numpy as np

from sparsecore.sim.arith import check_real_array
from sparsecore.sim.formats import check_integer_array, get_format

__all__ = ["FUNCTIONS", "table_size", "check_table", "lookup", "function_table", "raw_order",
           "write_entries"]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _gelu(x):
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


FUNCTIONS = {"sigmoid": _sigmoid, "tanh": np.tanh, "gelu": _gelu}


def table_size(codes):
    """Entries of a table indexed by format ``codes``: one per code, ``2**bits``."""
    return 1 << get_format(codes, "acts").bits


def check_table(table, codes, out):
    """``table`` as int64 if it has one entry per ``codes`` code, each an ``out`` value;
    else ValueError naming the problem (length, dimension or the first bad entry)."""
    size = table_size(codes)
    out_fmt = get_format(out, "acts")
    arr = check_integer_array(table, "table")
    if arr.ndim != 1 or len(arr) != size:
        raise ValueError(f"table must have {size} entries (one per {codes} code), "
                         f"not shape {arr.shape}")
    return out_fmt.check(arr, f"table entries ({out} values)")


def lookup(code_values, table, codes, out):
    """Map every value of format ``codes`` through ``table`` (value order); int64, same shape."""
    table = check_table(table, codes, out)
    fmt = get_format(codes, "acts")
    values = fmt.check(code_values, f"{codes} codes")
    return table[values - fmt.min]


def function_table(name, in_scale, out_scale, codes="int8", out="int8"):
    """The table of nonlinearity ``name`` (:data:`FUNCTIONS`) between two code grids."""
    if name not in FUNCTIONS:
        raise ValueError(f"function must be one of {', '.join(FUNCTIONS)}, not {name!r}")
    for what, scale in (("in_scale", in_scale), ("out_scale", out_scale)):
        s = float(check_real_array(scale, what))
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"{what} must be a positive finite number, not {scale!r}")
    fmt, out_fmt = get_format(codes, "acts"), get_format(out, "acts")
    x = np.arange(fmt.min, fmt.max + 1, dtype=np.float64) * float(in_scale)
    y = np.rint(FUNCTIONS[name](x) / float(out_scale))
    return np.clip(y, out_fmt.min, out_fmt.max).astype(np.int64)


def raw_order(table, codes, out):
    """The table as the hardware memory holds it: entry ``i`` for the code whose raw bit
    pattern is ``i`` (two's complement for signed formats)."""
    table = check_table(table, codes, out)
    fmt = get_format(codes, "acts")
    values = np.arange(fmt.min, fmt.max + 1)
    raw = np.empty_like(table)
    raw[values & fmt.mask] = table
    return raw


def write_entries(table, code_values, entries, codes, out):
    """A copy of ``table`` with ``table[code] = entry`` for each pair, applied in order
    (a later write to the same code wins)."""
    table = check_table(table, codes, out).copy()
    fmt, out_fmt = get_format(codes, "acts"), get_format(out, "acts")
    keys = fmt.check(np.atleast_1d(code_values), f"{codes} codes")
    vals = out_fmt.check(np.atleast_1d(entries), f"table entries ({out} values)")
    if keys.shape != vals.shape:
        raise ValueError(f"codes and entries must have the same shape, not {keys.shape} "
                         f"and {vals.shape}")
    for k, v in zip(keys.tolist(), vals.tolist(), strict=True):
        table[k - fmt.min] = v
    return table
