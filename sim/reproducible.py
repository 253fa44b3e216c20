"""Float64 arithmetic whose results do not depend on the CPU, the BLAS or its thread count.

Training (:mod:`sparsecore.nn`) used ``a @ b`` and ``np.exp``. Both pick machine code by
the CPU they run on: OpenBLAS chooses a dgemm kernel per CPU (``OPENBLAS_CORETYPE``
overrides it), whose blocking and FMA use order the sums differently, and numpy
dispatches ``exp`` to an AVX-512 loop where the CPU has one and to the C library
elsewhere. The results differ in the last bits; quantization-aware training
turns such a bit into a flipped weight or activation code and ends in a
different network (``docs/workflow.md``, "Reproducibility", has the numbers).

What is here uses only operations that IEEE 754 rounds exactly and numpy runs
element by element (``+ - * /``, ``rint``, ``ldexp``, comparisons), and BLAS
only where every partial sum is an exact integer:

- :func:`matmul`: each row of ``a`` and each column of ``b`` is scaled by a power
  of two and rounded to an integer of ``bits`` bits, with ``2 * bits + ceil(log2 K)
  <= 53``; every product and every partial sum is then an integer below 2**53,
  exact in float64 whatever order, blocking or FMA a BLAS uses. The result is the
  exact product of the rounded operands, scaled back (exact). ``bits`` is 22 to
  24 for the training's K (<= 256): about float32's precision, relative to the
  largest element of each row or column.
- :func:`exp`: Cody-Waite range reduction and a degree-13 Taylor polynomial
  (error below 2 ulp), instead of ``np.exp``.
- :func:`cos`: a Taylor series on ``[-pi, pi]`` for the learning-rate schedule,
  instead of the C library's ``cos``.
- :func:`tanh`: from :func:`exp` and exact operations (the LSTM's gates), instead of
  numpy's ``tanh``, which also dispatches per CPU.
"""

import numpy as np

__all__ = ["matmul", "mantissa_bits", "exp", "cos", "tanh"]

_FLOAT64_BITS = 53  # significand bits, the implicit one included


def mantissa_bits(k):
    """Integer bits per operand such that a K-term dot product of them is exact in float64."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, not {k!r}")
    return (_FLOAT64_BITS - int(k - 1).bit_length()) // 2


def _to_integers(x, axis, bits):
    """(integers, exponents): ``x ~ integers * 2**(exponents - bits)`` along ``axis``,
    |integers| <= 2**bits, one exponent per row (axis=1) or column (axis=0)."""
    largest = np.abs(x).max(axis=axis, keepdims=True)
    _, exponent = np.frexp(largest)  # largest < 2**exponent (exponent 0 where all zero)
    return np.rint(np.ldexp(x, bits - exponent)), exponent


def matmul(a, b):
    """``a @ b`` for 2-D float64 arrays, the same bits on every machine (see module doc)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul needs 2-D arrays M x K and K x N, not {a.shape} and {b.shape}")
    k = a.shape[1]
    if k == 0:
        return np.zeros((a.shape[0], b.shape[1]))
    bits = mantissa_bits(k)
    int_a, exp_a = _to_integers(a, 1, bits)   # exp_a: M x 1
    int_b, exp_b = _to_integers(b, 0, bits)   # exp_b: 1 x N
    exact = int_a @ int_b                     # integers < 2**53: exact in any order
    return np.ldexp(exact, exp_a + exp_b - 2 * bits)


# Cody-Waite split of ln 2 (fdlibm): LN2_HI has 32 significant bits, so k * LN2_HI is
# exact for the |k| <= 1100 that float64 arguments need.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_EXP_TERMS = 13  # r**14 / 14! < 2**-60 for |r| <= ln(2) / 2


def exp(x):
    """``e**x`` elementwise for float64 ``x``, the same bits on every machine.

    Below -1100 the result is 0, above 710 it is inf (as ``np.exp`` gives); NaN stays NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    nan = np.isnan(x)
    clipped = np.clip(np.where(nan, 0.0, x), -1100.0, 710.0)
    k = np.rint(clipped * _INV_LN2)
    r = (clipped - k * _LN2_HI) - k * _LN2_LO  # |r| <= ln(2) / 2 (plus rounding)
    poly = np.ones_like(r)
    for n in range(_EXP_TERMS, 0, -1):         # Horner on 1 + r/1 (1 + r/2 (1 + ...))
        poly = 1.0 + (r / n) * poly
    with np.errstate(over="ignore"):  # 710 -> inf, as np.exp
        out = np.ldexp(poly, k.astype(np.int64))
    return np.where(nan, x, out)


_COS_TERMS = 18  # pi**36 / 36! < 1e-25


def cos(x):
    """``cos(x)`` of one float in ``[-pi, pi]`` (the learning-rate schedule's range),
    the same bits on every machine; absolute error below 1e-15."""
    x = float(x)
    if not -np.pi <= x <= np.pi:
        raise ValueError(f"x must be in [-pi, pi], not {x!r}")
    x2 = x * x
    term = 1.0
    for n in range(_COS_TERMS, 0, -1):  # Horner on 1 - x2/(1*2) (1 - x2/(3*4) (1 - ...))
        term = 1.0 - x2 / ((2 * n - 1) * (2 * n)) * term
    return term


def tanh(x):
    """``tanh(x)`` elementwise for float64 ``x``, the same bits on every machine:
    ``sign(x) (1 - e) / (1 + e)`` with ``e = exp(-2|x|)`` (:func:`exp`), so odd to the bit
    and never above 1 in magnitude; relative error a few ulp (more near 0, where
    ``1 - e`` cancels: absolute error below 1e-16). NaN stays NaN."""
    x = np.asarray(x, dtype=np.float64)
    e = exp(-2.0 * np.abs(x))
    return np.copysign((1.0 - e) / (1.0 + e), x)
