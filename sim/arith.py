"""Two's complement and parameter checks shared by the numpy model.

Accumulators are ``acc_bits`` wide and wrap modulo ``2**acc_bits`` (SPEC §1);
``wrap`` is the one place that says how. The ``check_*`` helpers are the one
way the model refuses a bad size or a non-numeric array (ValueError naming
the parameter, the value and what is accepted).
"""

import numpy as np

from sparsecore.sim.formats import check_integer_array, check_positive_int

__all__ = ["MAX_WRAP_BITS", "check_acc_bits", "check_positive_int", "check_real_array", "wrap"]

MAX_WRAP_BITS = 64  # the model computes in 64-bit integers


def check_real_array(values, what="values"):
    """``values`` as an array of integers or reals, unconverted; bool, complex and
    non-numeric dtypes raise ValueError (they would be cast silently otherwise)."""
    arr = np.asarray(values)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer)
                                     or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{what}: expected an integer or real array, got dtype {arr.dtype}")
    return arr


def check_acc_bits(acc_bits, name="acc_bits"):
    """Return ``acc_bits`` if it is an integer in 1..64, else raise ValueError."""
    if (isinstance(acc_bits, bool) or not isinstance(acc_bits, (int, np.integer))
            or not 1 <= acc_bits <= MAX_WRAP_BITS):
        raise ValueError(f"{name} must be an integer in 1..{MAX_WRAP_BITS}, not {acc_bits!r}")
    return int(acc_bits)


def wrap(x, bits):
    """Reduce integers to ``bits``-bit two's complement, as an int64 array.

    ``wrap(x, b) == ((x + 2**(b-1)) mod 2**b) - 2**(b-1)``. Inputs are taken
    modulo 2**64 first (int64 arithmetic that overflowed stays correct), which
    is exact for every ``bits`` <= 64.
    """
    bits = check_acc_bits(bits, "bits")
    arr = check_integer_array(x, "x")
    u = arr.view(np.uint64)
    if bits == 64:
        return u.view(np.int64).copy()
    sign = np.uint64(1 << (bits - 1))
    low = u & np.uint64((1 << bits) - 1)
    # (low ^ sign) - sign sign-extends from bit bits-1; both fit int64 for bits < 64.
    return (low ^ sign).astype(np.int64) - np.int64(1 << (bits - 1))
