"""Reference GEMM: dense and 2:4-compressed, wrapped to ``acc_bits`` (SPEC §1, §3).

Pure integer functions: operands must be integer arrays (nothing is cast from
floats), the products are exact and the sums wrap to ``acc_bits``-bit two's
complement like the hardware accumulators. Format ranges are not checked here;
``sim.formats.Format.check`` does that where a format is known.
"""

import numpy as np

from sparsecore.sim.arith import check_acc_bits, wrap
from sparsecore.sim.formats import Format, check_integer_array
from sparsecore.sim.sparsity import GROUP, check_compressed, scatter_pairs

__all__ = ["matmul", "sparse_matmul", "acc_format"]

# float64 holds every integer below 2**53 exactly, so BLAS is exact while the
# largest possible partial sum stays below it.
_FLOAT_EXACT = 1 << 53


def acc_format(acc_bits):
    """The ``acc_bits``-wide two's complement field of one result, for packing results."""
    acc_bits = check_acc_bits(acc_bits)
    return Format(f"acc{acc_bits}", acc_bits, True, -(1 << (acc_bits - 1)),
                  (1 << (acc_bits - 1)) - 1)


def _largest_magnitude(arr):
    return max(-int(arr.min()), int(arr.max())) if arr.size else 0


def _exact_matmul(a, b):
    """a @ b for int64 matrices, exact modulo 2**64."""
    bound = _largest_magnitude(a) * _largest_magnitude(b) * a.shape[1]
    if bound < _FLOAT_EXACT:
        return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    # Unsigned arithmetic wraps modulo 2**64 by definition; signed would overflow.
    return (a.view(np.uint64) @ b.view(np.uint64)).view(np.int64)


def _matrix(values, what):
    arr = check_integer_array(values, what)
    if arr.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D matrix, got shape {arr.shape}")
    return arr


def matmul(a, b, acc_bits=32):
    """C = A x B for integer A (M x K) and B (K x N), wrapped to ``acc_bits``; int64 M x N."""
    acc_bits = check_acc_bits(acc_bits)
    a, b = _matrix(a, "a"), _matrix(b, "b")
    if a.shape[1] != b.shape[0]:
        raise ValueError(
            f"shapes do not agree: a is {a.shape[0]} x {a.shape[1]}, b is "
            f"{b.shape[0]} x {b.shape[1]}; b must have {a.shape[1]} rows")
    return wrap(_exact_matmul(a, b), acc_bits)


def sparse_matmul(values, meta, b, acc_bits=32):
    """C = A x B with A given compressed, for any of the 16 codes (the hardware meaning).

    Group g of row m adds ``values[m, 2g] * B[4g + (code & 3)]`` and
    ``values[m, 2g+1] * B[4g + (code >> 2)]`` with ``code = meta[m, g]``;
    a code naming one position twice adds both products. ``values`` is
    M x 2G, ``meta`` M x G (codes 0..15), ``b`` K x N with ceil(K/4) == G;
    B is zero-padded to 4G rows. Result int64 M x N, wrapped to ``acc_bits``.
    """
    acc_bits = check_acc_bits(acc_bits)
    values, meta = check_compressed(values, meta)
    b = _matrix(b, "b")
    m, g = meta.shape
    k = b.shape[0]
    if -(-k // GROUP) != g:
        raise ValueError(
            f"shapes do not agree: meta has {g} groups per row, so b must have "
            f"{max(GROUP * g - GROUP + 1, 0)}..{GROUP * g} rows, not {k}")
    b = np.concatenate([b, np.zeros((GROUP * g - k, b.shape[1]), np.int64)])
    # Each code routes its two values to positions of its group; the sums
    # there form the dense matrix the hardware effectively multiplies.
    routed = scatter_pairs(values, meta).reshape(m, GROUP * g)
    return wrap(_exact_matmul(routed, b), acc_bits)
