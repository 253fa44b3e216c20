"""The MAC reference: products and wrapping accumulation, in numpy integer math.

What :class:`hw.mac.MacUnit` computes, cycle by cycle (SPEC §1)::

    acc[t] = wrap((0 if clear[t] else acc[t-1]) + (w[t] * a[t] if valid[t] else 0), acc_bits)
    acc[t] = 0                     where reset[t]
    acc[-1] = 0

Raw codes as a bus carries them go through :func:`code_values` first, which
gives the value hardware sees: the format's two's complement or unsigned value,
and 0 for the reserved ternary code ``0b10``.
"""

import numpy as np

from sparsecore.sim.arith import check_acc_bits, wrap
from sparsecore.sim.formats import check_integer_array, get_format

__all__ = ["code_values", "mac_products", "mac_trace"]


def code_values(codes, fmt):
    """Raw codes -> the integer values hardware multiplies by (int64 array).

    Unlike ``Format.decode`` this accepts the reserved ternary code and gives it
    0, because hardware must do something with every code (SPEC §1).
    """
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    arr = check_integer_array(codes, "codes")
    bad = (arr < 0) | (arr > fmt.mask)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"codes: code {int(arr[idx])} at index {idx} is not a "
                         f"{fmt.bits}-bit {fmt.name} code")
    if fmt.reserved_code is not None:
        arr = np.where(arr == fmt.reserved_code, 0, arr)
    if fmt.signed:
        arr = np.where(arr > fmt.mask >> 1, arr - (1 << fmt.bits), arr)
    return arr.astype(np.int64)


def mac_products(w, a, weights, acts):
    """Elementwise ``w * a`` (int64) for values in the ``weights`` and ``acts`` formats."""
    w = get_format(weights, "weights").check(w, "w")
    a = get_format(acts, "acts").check(a, "a")
    if w.shape != a.shape:
        raise ValueError(f"w and a must have the same shape, not {w.shape} and {a.shape}")
    return w * a


def mac_trace(products, valid, clear, acc_bits, reset=None):
    """The accumulator after each cycle, as an int64 array of ``acc_bits``-bit values.

    Arguments:
        products: int array, the lane's product in each cycle.
        valid, clear, reset: bool (or 0/1) arrays of the same length; ``reset``
            is optional (a reset cycle leaves 0, whatever else is asserted).
        acc_bits: accumulator width (1..64); sums wrap modulo ``2**acc_bits``.
    """
    acc_bits = check_acc_bits(acc_bits)
    products = check_integer_array(products, "products")
    n = products.shape[0]
    controls = {}
    for what, arr in (("valid", valid), ("clear", clear), ("reset", reset)):
        arr = np.zeros(n, bool) if arr is None else np.asarray(arr)
        if arr.shape != products.shape or products.ndim != 1:
            raise ValueError(f"{what} must be a 1-D array shaped like products {products.shape}, "
                             f"not {arr.shape}")
        controls[what] = arr.astype(bool)
    # A reset cycle is a clear that adds nothing.
    add = np.where(controls["valid"] & ~controls["reset"], products, 0)
    start = controls["clear"] | controls["reset"]
    # Running sum; int64 overflow is harmless: wrap() reduces modulo 2**64 first.
    with np.errstate(over="ignore"):
        total = np.cumsum(add)
        before = total - add  # sum of the cycles before t
        last_start = np.maximum.accumulate(np.where(start, np.arange(n), -1))
        base = np.where(last_start >= 0, before[np.maximum(last_start, 0)], 0)
        return wrap(total - base, acc_bits)
