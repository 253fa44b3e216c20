"""Golden vector sets: seeded GEMM cases with their expected results, as .npz.

A set is made for one configuration: weight and activation formats,
``acc_bits``, ``groups`` (G: a sparse K-chunk is 4G) and optionally the tile
``rows`` x ``cols``, which M and N are made multiples of. K is always a
multiple of 4G. Cases (``cases`` lists those present):

| case       | what it covers                                                    |
|------------|-------------------------------------------------------------------|
| `random`   | random 2:4 A (random legal pattern per group) and B, full ranges  |
| `dense`    | random A that is not 2:4 (dense mode only)                        |
| `extremes` | every (weight extreme, activation extreme) pair, max-size sums    |
| `patterns` | all 11 legal group patterns (0000 included) in every row and group lane |
| `codes`    | all 16 metadata codes in every row and group lane (sparse only)   |
| `zeros`    | an all-zero A                                                     |
| `wrap`     | sums past +2**(acc_bits-1) (even rows) and -2**(acc_bits-1) (odd rows) |

Row lane = row mod ``rows``, group lane = group mod ``groups``. Each case
holds ``b`` (K x N) and ``c`` (M x N, wrapped to ``acc_bits``) and:
``a`` (M x K) when A has a dense form (dense mode), ``values``/``meta``
(M x K/2, M x K/4) when it has a compressed one (sparse mode). Where both
exist, ``c == matmul(a, b) == sparse_matmul(values, meta, b)``.

The `wrap` case needs K of about 2**acc_bits / (largest product); it is
left out when that exceeds ``max_wrap_k`` (``wrap_needs_k`` records the K it
would take), e.g. int8 x int8 with 32-bit accumulators needs K ~ 2.6e5.

In the .npz file a case's arrays are keys ``<case>.<name>``; operands are
stored in int8/uint8 (they fit every format), ``c`` in int64, and
``load_golden_vectors`` gives everything back as int64.
"""

import numpy as np

from sparsecore.sim.arith import check_acc_bits, check_positive_int
from sparsecore.sim.formats import get_format
from sparsecore.sim.gemm import matmul, sparse_matmul
from sparsecore.sim.sparsity import CANONICAL_CODES, GROUP, compress_2to4

__all__ = ["golden_vectors", "write_golden_vectors", "load_golden_vectors"]

# Nonzero flags of the 11 legal group patterns, position 0 first.
_PATTERNS = np.array([[int(f) for f in p] for p in CANONICAL_CODES], dtype=bool)
_TWO_NONZERO = _PATTERNS[_PATTERNS.sum(axis=1) == 2]
_CONFIG_KEYS = ("weights", "acts", "acc_bits", "groups", "rows", "cols", "wrap_needs_k")
_DEFAULT_MAX_WRAP_K = 1 << 19


def _round_up(x, multiple):
    return -(-x // multiple) * multiple


def _param(name, explicit, config, default=None):
    value = explicit if explicit is not None else getattr(config, name, default)
    if value is None:
        raise ValueError(f"{name} must be given, directly or as an attribute of config")
    return value


def _uniform(rng, fmt, shape):
    return rng.integers(fmt.min, fmt.max, size=shape, endpoint=True, dtype=np.int64)


def _nonzero(rng, fmt, shape):
    choices = np.arange(fmt.min, fmt.max + 1, dtype=np.int64)
    return rng.choice(choices[choices != 0], size=shape)


def _from_patterns(flags, values):
    """M x G x 4 flags and values -> the M x 4G dense matrix with values where flags are set."""
    return np.where(flags, values, 0).reshape(flags.shape[0], -1)


def _sparse_case(a, b, acc_bits):
    values, meta = compress_2to4(a)
    return {"a": a, "values": values, "meta": meta, "b": b, "c": matmul(a, b, acc_bits)}


def _wrap_products(fw, fa):
    """(weight, activation) pairs giving the largest and the most negative product."""
    corners = [(w, x) for w in (fw.min, fw.max) for x in (fa.min, fa.max)]
    return max(corners, key=lambda p: p[0] * p[1]), min(corners, key=lambda p: p[0] * p[1])


def golden_vectors(rng, config=None, *, weights=None, acts=None, acc_bits=None, groups=None,
                   rows=None, cols=None, max_wrap_k=_DEFAULT_MAX_WRAP_K):
    """Make a golden vector set: ``{"weights", "acts", ..., "cases": {case: {array: ...}}}``.

    ``rng`` is a ``np.random.Generator``. ``config`` is any object with
    ``weights``, ``acts``, ``acc_bits``, ``groups`` (and optionally ``rows``,
    ``cols``) attributes, such as a CoreConfig; keyword arguments override it.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
    fw = get_format(_param("weights", weights, config), "weights")
    fa = get_format(_param("acts", acts, config), "acts")
    acc_bits = check_acc_bits(_param("acc_bits", acc_bits, config))
    groups = check_positive_int("groups", _param("groups", groups, config))
    rows = check_positive_int("rows", _param("rows", rows, config, 1))
    cols = check_positive_int("cols", _param("cols", cols, config, 1))
    max_wrap_k = check_positive_int("max_wrap_k", max_wrap_k)
    chunk = GROUP * groups
    cases = {}

    m, n, g = 2 * rows, 2 * cols, 8 * groups
    flags = _PATTERNS[rng.integers(0, len(_PATTERNS), size=(m, g))]
    a = _from_patterns(flags, _uniform(rng, fw, (m, g, GROUP)))
    cases["random"] = _sparse_case(a, _uniform(rng, fa, (GROUP * g, n)), acc_bits)

    a = _uniform(rng, fw, (m, GROUP * g))
    b = _uniform(rng, fa, (GROUP * g, n))
    cases["dense"] = {"a": a, "b": b, "c": matmul(a, b, acc_bits)}

    # Rows 0/1 hold only the weight min/max, columns 0/1 only the activation
    # min/max: C[0:2, 0:2] meets every extreme pair with all products alike.
    m, n, g = _round_up(4, rows), _round_up(4, cols), 4 * groups
    w_ext = np.array([fw.min, fw.max])
    x_ext = np.array([fa.min, fa.max])
    a_vals = rng.choice(w_ext, size=(m, g, GROUP))
    a_vals[:2] = w_ext[:2, None, None]
    lanes = np.add.outer(np.arange(m), np.arange(g)) % len(_TWO_NONZERO)
    b = rng.choice(x_ext, size=(GROUP * g, n))
    b[:, :2] = x_ext
    cases["extremes"] = _sparse_case(_from_patterns(_TWO_NONZERO[lanes], a_vals), b, acc_bits)

    # Row r, group j gets pattern (r // rows + j) mod 11: for each row lane and
    # group lane, the rows r // rows = 0..10 run through all 11 patterns.
    m, n, g = len(_PATTERNS) * rows, _round_up(4, cols), 2 * groups
    lanes = np.add.outer(np.arange(m) // rows, np.arange(g)) % len(_PATTERNS)
    a = _from_patterns(_PATTERNS[lanes], _nonzero(rng, fw, (m, g, GROUP)))
    cases["patterns"] = _sparse_case(a, _uniform(rng, fa, (GROUP * g, n)), acc_bits)

    # The same for the 16 codes, canonical or not; no dense form exists.
    m, n, g = 16 * rows, _round_up(4, cols), 2 * groups
    meta = np.add.outer(np.arange(m) // rows, np.arange(g)) % 16
    values = _nonzero(rng, fw, (m, 2 * g))
    b = _uniform(rng, fa, (GROUP * g, n))
    cases["codes"] = {"values": values, "meta": meta, "b": b,
                      "c": sparse_matmul(values, meta, b, acc_bits)}

    a = np.zeros((rows, 2 * chunk), dtype=np.int64)
    cases["zeros"] = _sparse_case(a, _uniform(rng, fa, (2 * chunk, _round_up(4, cols))),
                                  acc_bits)

    # Even rows x even columns repeat the largest product, odd x odd the most
    # negative one, two per group, until the sum leaves the acc_bits range.
    (w_pos, x_pos), (w_neg, x_neg) = _wrap_products(fw, fa)
    terms = max((2 ** (acc_bits - 1) - 1) // (w_pos * x_pos),
                2 ** (acc_bits - 1) // -(w_neg * x_neg)) + 1
    wrap_k = _round_up(GROUP * -(-terms // 2), chunk)
    if wrap_k <= max_wrap_k:
        m, n, g = _round_up(2, rows), _round_up(2, cols), wrap_k // GROUP
        a_vals = np.where(np.arange(m)[:, None, None] % 2 == 0, w_pos, w_neg)
        lanes = np.add.outer(np.arange(m), np.arange(g)) % len(_TWO_NONZERO)
        a = _from_patterns(_TWO_NONZERO[lanes], np.broadcast_to(a_vals, (m, g, GROUP)))
        b = np.broadcast_to(np.where(np.arange(n) % 2 == 0, x_pos, x_neg), (wrap_k, n))
        cases["wrap"] = _sparse_case(a, np.array(b), acc_bits)

    for case in cases.values():
        for name in ("a", "values"):
            if name in case:
                fw.check(case[name], name)
        fa.check(case["b"], "b")
    return {"weights": fw.name, "acts": fa.name, "acc_bits": acc_bits, "groups": groups,
            "rows": rows, "cols": cols, "wrap_needs_k": wrap_k, "cases": cases}


def write_golden_vectors(path, rng, config=None, **params):
    """Make a golden vector set (arguments as ``golden_vectors``) and save it as .npz."""
    vectors = golden_vectors(rng, config, **params)
    b_dtype = np.int8 if get_format(vectors["acts"]).signed else np.uint8
    dtypes = {"a": np.int8, "values": np.int8, "meta": np.uint8, "b": b_dtype, "c": np.int64}
    arrays = {key: np.array(vectors[key]) for key in _CONFIG_KEYS}
    arrays["cases"] = np.array(list(vectors["cases"]))
    for case, contents in vectors["cases"].items():
        for name, array in contents.items():
            arrays[f"{case}.{name}"] = array.astype(dtypes[name])
    np.savez_compressed(path, **arrays)
    return path


def load_golden_vectors(path):
    """Read a file written by ``write_golden_vectors``; same structure as ``golden_vectors``."""
    with np.load(path, allow_pickle=False) as data:
        vectors = {key: data[key].item() for key in _CONFIG_KEYS}
        vectors["cases"] = {}
        for case in data["cases"]:
            prefix = f"{case}."
            vectors["cases"][str(case)] = {
                key[len(prefix):]: data[key].astype(np.int64)
                for key in data.files if key.startswith(prefix)}
    return vectors
