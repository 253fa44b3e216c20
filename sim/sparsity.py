"""2:4 structured sparsity of the weight operand A (SPEC §3).

A (M x K) is cut into groups of four consecutive elements along K; it is 2:4
when no group has more than two nonzeros. K that is not a multiple of 4 counts
as zero-padded on the right. The compressed form is

- ``values``: M x 2G (G = ceil(K/4)), the two kept elements of each group in
  ascending position order;
- ``meta``: M x G, one 4-bit code per group, ``idx0 | idx1 << 2``, the
  positions (0..3) in the group that ``values[:, 2g]`` and ``values[:, 2g+1]``
  came from.

Canonical codes (SPEC §3, the same as PyTorch's semi-structured / CUTLASS
conversion). The pattern is the group's nonzero flags, position 0 first. With
fewer than two nonzeros a zero position is named too, so the code is always
two distinct ascending positions:

    pattern  code    idx0 idx1   values (x = the nonzero)
    0000     0b1110   2    3     0, 0
    0001     0b1110   2    3     0, x
    0010     0b1110   2    3     x, 0
    0100     0b1001   1    2     x, 0
    1000     0b1000   0    2     x, 0
    1100     0b0100   0    1
    1010     0b1000   0    2
    1001     0b1100   0    3
    0110     0b1001   1    2
    0101     0b1101   1    3
    0011     0b1110   2    3

Patterns with three or four nonzeros have no code: ``compress_2to4`` refuses
them. The hardware gives every one of the 16 codes a meaning (see
``sim.gemm.sparse_matmul``); ``decompress_2to4`` accepts only the six codes of
this table (two distinct positions, ascending), since the others either pick
one position twice or list positions out of order and have no dense matrix.
The kept values may be zero (a kept weight can quantize to 0), so a table code
need not be the canonical one for the pattern its values make.
"""

import numpy as np

from sparsecore.sim.arith import check_real_array
from sparsecore.sim.formats import Format, check_integer_array

__all__ = [
    "GROUP", "CANONICAL_CODES", "TABLE_CODES", "META_FORMAT",
    "is_2to4", "prune_2to4", "compress_2to4", "decompress_2to4",
    "check_compressed", "scatter_pairs",
]

GROUP = 4

CANONICAL_CODES = {
    "0000": 0b1110, "0001": 0b1110, "0010": 0b1110, "0100": 0b1001,
    "1000": 0b1000, "1100": 0b0100, "1010": 0b1000, "1001": 0b1100,
    "0110": 0b1001, "0101": 0b1101, "0011": 0b1110,
}
# The codes decompress accepts: exactly those the table produces.
TABLE_CODES = tuple(sorted(set(CANONICAL_CODES.values())))

# The 4-bit metadata field as it travels on a bus or sits in a file.
META_FORMAT = Format("meta", 4, False, 0, 15)


def _code_of_pattern():
    """Lookup array: pattern number (bit p = position p nonzero) -> code, -1 if not 2:4."""
    table = np.full(16, -1, dtype=np.int64)
    for pattern, code in CANONICAL_CODES.items():
        table[sum(int(flag) << p for p, flag in enumerate(pattern))] = code
    return table


_CODE_OF_PATTERN = _code_of_pattern()


def _real_array(values, what):
    """``values`` as an array of integers or reals (not bool, not complex)."""
    arr = check_real_array(values, what)
    if arr.ndim < 1:
        raise ValueError(f"{what}: expected at least one axis, got a scalar")
    return arr


def _groups(arr):
    """Zero-pad the last axis to a multiple of 4 and split it into (..., G, 4)."""
    k = arr.shape[-1]
    pad = -k % GROUP
    if pad:
        arr = np.concatenate([arr, np.zeros(arr.shape[:-1] + (pad,), arr.dtype)], axis=-1)
    return arr.reshape(arr.shape[:-1] + (arr.shape[-1] // GROUP, GROUP))


def _patterns(groups):
    """Pattern number of each group of four: bit p set when position p is nonzero."""
    nonzero = (groups != 0).view(np.uint8)
    return (nonzero[..., 0] | nonzero[..., 1] << 1 | nonzero[..., 2] << 2
            | nonzero[..., 3] << 3)


def _gather_positions(groups, *positions):
    """Index (..., G, 4) groups with (..., G) position arrays; the flat form is the fast one."""
    base = np.arange(0, groups.size, GROUP).reshape(groups.shape[:-1])
    flat = groups.reshape(-1)
    return [flat[base + p] for p in positions]


def is_2to4(a):
    """True when no group of four along the last axis has more than two nonzeros."""
    arr = _real_array(a, "a")
    return bool((_CODE_OF_PATTERN[_patterns(_groups(arr))] >= 0).all())


def prune_2to4(w):
    """Zero all but the two largest magnitudes of each group of four along the last axis.

    Ties go to the lower index. Any K: a last partial group counts as
    zero-padded. Works on integer or real arrays of any rank; the result has
    the shape and dtype of ``w``. NaN is refused (it has no magnitude order).
    """
    arr = _real_array(w, "w")
    if np.issubdtype(arr.dtype, np.floating):
        nan = np.argwhere(np.isnan(arr))
        if len(nan):
            raise ValueError(f"w: NaN at index {tuple(int(i) for i in nan[0])}")
        magnitude = np.abs(arr)
    elif np.issubdtype(arr.dtype, np.unsignedinteger):
        magnitude = arr.astype(np.uint64)
    else:
        # |int64 min| overflows to itself; its uint64 view is the true magnitude.
        magnitude = np.abs(arr.astype(np.int64)).view(np.uint64)
    mag = _groups(magnitude)
    # Rank of position p in its group: how many others beat it (larger, or equal
    # and at a lower index). The two with rank 0 and 1 are kept.
    keep = np.empty(mag.shape, dtype=bool)
    for p in range(GROUP):
        beaten_by = np.zeros(mag.shape[:-1], dtype=np.int64)
        for q in range(GROUP):
            if q < p:
                beaten_by += mag[..., q] >= mag[..., p]
            elif q > p:
                beaten_by += mag[..., q] > mag[..., p]
        keep[..., p] = beaten_by < 2
    k = arr.shape[-1]
    kept = np.where(keep, _groups(arr), 0).reshape(arr.shape[:-1] + (-1,))[..., :k]
    return kept.astype(arr.dtype, copy=False)


def compress_2to4(a):
    """Compress a 2:4 integer matrix A (M x K) into ``(values, meta)``.

    ``values`` is M x 2*ceil(K/4), ``meta`` is M x ceil(K/4) with the canonical
    code of each group (table above); both int64. A group with three or four
    nonzeros raises ValueError naming its row and group.
    """
    arr = check_integer_array(a, "a")
    if arr.ndim != 2:
        raise ValueError(f"a: expected a 2-D matrix (M x K), got shape {arr.shape}")
    groups = _groups(arr)
    meta = _CODE_OF_PATTERN[_patterns(groups)]
    dense = np.argwhere(meta < 0)
    if len(dense):
        row, group = (int(i) for i in dense[0])
        count = int(np.count_nonzero(groups[row, group]))
        raise ValueError(
            f"a is not 2:4: row {row}, group {group} (columns {GROUP * group}.."
            f"{GROUP * group + GROUP - 1}) has {count} nonzeros, at most 2 allowed")
    values = np.empty(meta.shape + (2,), dtype=np.int64)
    values[..., 0], values[..., 1] = _gather_positions(groups, meta & 3, meta >> 2)
    return values.reshape(arr.shape[0], -1), meta


def check_compressed(values, meta):
    """Validate a compressed pair's dtypes, shapes and code range; return both as int64."""
    values = check_integer_array(values, "values")
    meta = META_FORMAT.check(meta, "meta")
    if meta.ndim != 2:
        raise ValueError(f"meta: expected a 2-D matrix (M x G), got shape {meta.shape}")
    m, g = meta.shape
    if values.shape != (m, 2 * g):
        raise ValueError(
            f"values shape {values.shape} does not match meta shape {meta.shape}: "
            f"expected (M, 2G) = {(m, 2 * g)}")
    return values, meta


def scatter_pairs(values, meta):
    """M x G x 4 groups holding, at each position, the sum of the values whose code names it.

    For table codes this is the dense matrix; for a code naming one position
    twice both values land there, which is what the hardware multiplies.
    Sums wrap modulo 2**64 like all int64 model arithmetic.
    """
    m, g = meta.shape
    out = np.zeros((m, g, GROUP), dtype=np.int64)
    base = np.arange(0, out.size, GROUP).reshape(m, g)
    flat = out.reshape(-1).view(np.uint64)
    pairs = values.reshape(m, g, 2).view(np.uint64)
    flat[base + (meta & 3)] = pairs[..., 0]
    # One group's two indices may coincide, so the second value is added.
    flat[base + (meta >> 2)] += pairs[..., 1]
    return out


def decompress_2to4(values, meta, k=None):
    """Rebuild the dense M x K matrix from ``(values, meta)``.

    ``k`` defaults to 4G; a smaller ``k`` (4G-3..4G) drops the padding
    columns, which must be zero. Only the six table codes are accepted (two
    distinct ascending positions); any other code raises ValueError naming the
    row and group.
    """
    values, meta = check_compressed(values, meta)
    m, g = meta.shape
    idx0, idx1 = meta & 3, meta >> 2
    bad = np.argwhere(idx0 >= idx1)
    if len(bad):
        row, group = (int(i) for i in bad[0])
        code = int(meta[row, group])
        accepted = ", ".join(f"{c:#06b}" for c in TABLE_CODES)
        raise ValueError(
            f"meta: code {code:#06b} at row {row}, group {group} is not a canonical 2:4 code "
            f"(positions {code & 3} and {code >> 2}); accepted codes: {accepted}")
    full_k = GROUP * g
    if k is None:
        k = full_k
    elif (isinstance(k, bool) or not isinstance(k, (int, np.integer))
          or not max(full_k - GROUP + 1, 0) <= k <= full_k):
        raise ValueError(
            f"k must be an integer in {max(full_k - GROUP + 1, 0)}..{full_k} for "
            f"{g} groups, not {k!r}")
    dense = scatter_pairs(values, meta).reshape(m, full_k)
    spill = np.argwhere(dense[:, k:] != 0)
    if len(spill):
        row, col = int(spill[0][0]), k + int(spill[0][1])
        raise ValueError(
            f"values: row {row}, group {col // GROUP} puts a nonzero at column {col}, "
            f"beyond k={k}")
    return dense[:, :k]
