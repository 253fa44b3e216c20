"""The output stage's numpy twin: accumulators -> the next layer's activations.

Between two layers each output channel ``c`` (a row of C = A x B) has a real
scale ``s[c]`` and an integer bias ``bias[c]`` (in accumulator units). The
hardware keeps the scale as a fixed-point pair, an unsigned multiplier and a
right shift (``s ~ mult / 2**shift``), and computes, per element::

    total   = acc + bias                              # acc_bits + 1 bits, exact
    product = total * mult                            # exact, no wrap
    y       = round_half_even(product / 2**shift)     # SPEC §2: half to even
    y       = max(y, 0) if relu else y
    out     = clip(y, fmt.min, fmt.max)               # the activation format

Rounding, the way hardware does it with one adder and one shifter::

    shift == 0:  y = product
    shift >= 1:  y = (product + 2**(shift-1) - 1 + lsb) >> shift
                 where lsb = (product >> shift) & 1 and >> is floor (arithmetic)

The ``- 1 + lsb`` turns round-half-up into round-half-to-even: an exact half
rounds up only when the truncated result is odd.

Field widths (``mult_bits``, ``shift_bits``) are parameters; ``bias`` is
``acc_bits`` wide. Everything is computed exactly in int64, so
``acc_bits + 1 + mult_bits`` must stay below 63 (checked by
:func:`check_fields`).

Channels run along axis 0 of ``acc`` (M x N): ``mult``, ``shift`` and ``bias``
have shape (M,).
"""

import numpy as np

from sparsecore.sim.arith import check_real_array
from sparsecore.sim.formats import (
    DEFAULT_MULT_BITS,
    DEFAULT_SHIFT_BITS,
    check_fields,
    check_integer_array,
    get_format,
)

__all__ = [
    "DEFAULT_MULT_BITS", "DEFAULT_SHIFT_BITS", "check_fields", "scale_range",
    "fixed_point_scale", "requantize",
]

def scale_range(mult_bits=DEFAULT_MULT_BITS, shift_bits=DEFAULT_SHIFT_BITS):
    """(smallest, largest) nonzero scale the fixed-point fields hold at full precision.

    Full precision means the multiplier keeps ``mult_bits`` significant bits
    (``mult >= 2**(mult_bits-1)``), so the relative error is at most
    ``2**-mult_bits``. The largest scale is ``2**mult_bits - 1`` with shift 0.
    """
    max_shift = (1 << shift_bits) - 1
    return 2.0 ** (mult_bits - 1 - max_shift), float((1 << mult_bits) - 1)


def fixed_point_scale(scale, mult_bits=DEFAULT_MULT_BITS, shift_bits=DEFAULT_SHIFT_BITS):
    """Real per-channel scales -> (mult, shift) int64 arrays with ``mult / 2**shift ~ scale``.

    The largest shift that keeps ``mult`` within ``mult_bits`` is taken, so the
    multiplier is normalised (``2**(mult_bits-1) <= mult < 2**mult_bits``). A scale
    of exactly 0 gives (0, 0), a channel that outputs the activation of ``bias``
    times 0, i.e. 0 before ReLU and clipping. A negative, non-finite, too large or
    too small scale (see :func:`scale_range`) is a ValueError naming the channel.
    """
    check_fields(1, mult_bits, shift_bits)
    scale = check_real_array(scale, "scale").astype(np.float64)
    if scale.ndim != 1:
        raise ValueError(f"scale must be a 1-D array (one per channel), not shape {scale.shape}")
    lo, hi = scale_range(mult_bits, shift_bits)
    bad = ~np.isfinite(scale) | ((scale != 0) & ((scale < lo) | (scale > hi)))
    if bad.any():
        c = int(np.argmax(bad))
        raise ValueError(
            f"scale {float(scale[c])!r} of channel {c} does not fit the output stage's "
            f"fixed-point fields (mult_bits={mult_bits}, shift_bits={shift_bits}): accepted "
            f"scales are 0 or {lo:.6g}..{hi:.6g}")
    frac, exp = np.frexp(scale)  # scale = frac * 2**exp, frac in [0.5, 1)
    mult = np.rint(np.ldexp(frac, mult_bits)).astype(np.int64)
    shift = (mult_bits - exp).astype(np.int64)
    carry = mult == (1 << mult_bits)  # frac rounded up to 1.0
    mult = np.where(carry, 1 << (mult_bits - 1), mult)
    shift = np.where(carry, shift - 1, shift)
    zero = scale == 0
    return np.where(zero, 0, mult), np.where(zero, 0, shift)


def _check_range(arr, lo, hi, what):
    bad = (arr < lo) | (arr > hi)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{what}: value {int(arr[idx])} at index {idx} is outside {lo}..{hi}")


def requantize(acc, mult, shift, bias, out, relu=True, acc_bits=32,
               mult_bits=DEFAULT_MULT_BITS, shift_bits=DEFAULT_SHIFT_BITS):
    """The output stage on an M x N accumulator array; returns int64 values of format ``out``.

    Arguments:
        acc: M x N integers, each a signed ``acc_bits`` accumulator value.
        mult: (M,) multipliers, 0 .. 2**mult_bits - 1.
        shift: (M,) right shifts, 0 .. 2**shift_bits - 1.
        bias: (M,) biases in accumulator units, signed ``acc_bits``.
        out: activation format name (``int8``, ``uint8``, ``int4``, ``uint4``).
        relu: clamp negatives to 0 before clipping.
    """
    check_fields(acc_bits, mult_bits, shift_bits)
    fmt = get_format(out, "acts")
    acc = check_integer_array(acc, "acc")
    if acc.ndim != 2:
        raise ValueError(f"acc must be a 2-D array (channels x columns), not shape {acc.shape}")
    lo_acc, hi_acc = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    _check_range(acc, lo_acc, hi_acc, "acc")
    params = {}
    for name, arr, lo, hi in (("mult", mult, 0, (1 << mult_bits) - 1),
                              ("shift", shift, 0, (1 << shift_bits) - 1),
                              ("bias", bias, lo_acc, hi_acc)):
        arr = check_integer_array(arr, name)
        if arr.shape != (acc.shape[0],):
            raise ValueError(f"{name} must have shape ({acc.shape[0]},) (one per channel of "
                             f"acc), not {arr.shape}")
        _check_range(arr, lo, hi, name)
        params[name] = arr[:, None]
    product = (acc + params["bias"]) * params["mult"]
    shift = np.broadcast_to(params["shift"], product.shape)
    lsb = (product >> shift) & 1
    half_minus_one = np.where(shift > 0, (np.int64(1) << np.maximum(shift - 1, 0)) - 1, 0)
    y = (product + np.where(shift > 0, half_minus_one + lsb, 0)) >> shift
    if relu:
        y = np.maximum(y, 0)
    return np.clip(y, fmt.min, fmt.max).astype(np.int64)
