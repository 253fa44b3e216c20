import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from spec_reference import decompress_ref, sparse_matmul_ref, spec_codes, wrap_ref

from sparsecore.hw.config import PRESETS
from sparsecore.sim import golden_vectors, load_golden_vectors, write_golden_vectors

# SPEC §1, restated for independence from sim.formats.
RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int4": (-8, 7), "uint4": (0, 15),
          "ternary": (-1, 1)}
PAIRS = list(itertools.product(["int8", "int4", "ternary"], ["int8", "uint8", "int4", "uint4"]))


def reference_c(a, b, bits):
    exact = (a.astype(np.int64)[:, :, None] * b.astype(np.int64)[None]).sum(axis=1)
    return [[wrap_ref(x, bits) for x in row] for row in exact.tolist()], exact


def make(pair, acc_bits=20, seed=1, **kw):
    config = SimpleNamespace(weights=pair[0], acts=pair[1], acc_bits=acc_bits, groups=2,
                             rows=3, cols=2)
    return golden_vectors(np.random.default_rng(seed), config, **kw)


@pytest.mark.parametrize("pair", PAIRS, ids="-".join)
def test_every_case_against_independent_math(pair):
    vectors = make(pair)
    bits, (wlo, whi), (alo, ahi) = 20, RANGES[pair[0]], RANGES[pair[1]]
    assert set(vectors["cases"]) == {"random", "dense", "extremes", "patterns", "codes",
                                     "zeros", "wrap"}
    for name, case in vectors["cases"].items():
        b, c = case["b"], case["c"]
        assert alo <= b.min() and b.max() <= ahi, name
        assert b.shape[0] % 8 == 0 and b.shape[1] % 2 == 0, name  # K by 4G, N by cols
        assert c.shape[0] % 3 == 0, name  # M by rows
        if "a" in case:
            assert wlo <= case["a"].min() and case["a"].max() <= whi, name
            assert c.tolist() == reference_c(case["a"], b, bits)[0], name
        if "values" in case:
            assert wlo <= case["values"].min() and case["values"].max() <= whi, name
            if b.shape[0] <= 64:
                assert c.tolist() == sparse_matmul_ref(case["values"], case["meta"], b, bits)
            if "a" in case:
                assert decompress_ref(case["values"], case["meta"]) == case["a"].tolist()


def lanes(meta_or_patterns, rows, groups):
    """{(row lane, group lane): set of entries} over an M x G array."""
    seen = {}
    for (i, j), x in np.ndenumerate(meta_or_patterns):
        seen.setdefault((i % rows, j % groups), set()).add(x)
    return seen


def test_patterns_and_codes_reach_every_lane():
    vectors = make(("int4", "uint4"))
    a = vectors["cases"]["patterns"]["a"]
    m, k = a.shape
    patterns = np.array(["".join("1" if x else "0" for x in a[i, 4 * j:4 * j + 4])
                         for i in range(m) for j in range(k // 4)]).reshape(m, k // 4)
    legal = set(spec_codes())
    assert len(legal) == 11
    assert all(seen == legal for seen in lanes(patterns, 3, 2).values())
    assert len(lanes(patterns, 3, 2)) == 6
    codes = lanes(vectors["cases"]["codes"]["meta"], 3, 2)
    assert len(codes) == 6 and all(seen == set(range(16)) for seen in codes.values())


@pytest.mark.parametrize("pair", PAIRS, ids="-".join)
def test_extremes_meet_every_extreme_pair(pair):
    case = make(pair)["cases"]["extremes"]
    a, b = case["a"], case["b"]
    rows, ks = np.nonzero(a)
    met = {(int(a[i, t]), int(b[t, j])) for i, t in zip(rows, ks, strict=True) for j in range(2)}
    wanted = set(itertools.product(RANGES[pair[0]], RANGES[pair[1]]))
    assert wanted <= met


@pytest.mark.parametrize("pair", PAIRS, ids="-".join)
def test_wrap_case_wraps_both_ways(pair):
    vectors = make(pair)
    case = vectors["cases"]["wrap"]
    c, exact = reference_c(case["a"], case["b"], 20)
    assert exact.max() > 2 ** 19 - 1 and exact.min() < -(2 ** 19)
    assert case["b"].shape[0] == vectors["wrap_needs_k"]


def test_zeros_case():
    case = make(("ternary", "int8"))["cases"]["zeros"]
    assert not case["a"].any() and not case["values"].any() and not case["c"].any()
    assert (case["meta"] == 0b1110).all()


def test_wrap_left_out_beyond_max_wrap_k():
    vectors = make(("int8", "int8"), acc_bits=32, max_wrap_k=1 << 12)
    assert "wrap" not in vectors["cases"]
    # The negative side needs more: 2**31 // (128 * 127) + 1 = 132105 products,
    # two per group of four -> 66053 groups, K = 264212, rounded up to 4G = 8.
    assert vectors["wrap_needs_k"] == 264216


def test_core_config_and_file_round_trip(tmp_path):
    config = PRESETS["wrap"]
    path = write_golden_vectors(tmp_path / "v.npz", np.random.default_rng(7), config)
    loaded = load_golden_vectors(path)
    made = golden_vectors(np.random.default_rng(7), config)
    for key in ("weights", "acts", "acc_bits", "groups", "rows", "cols", "wrap_needs_k"):
        assert loaded[key] == made[key] == getattr(config, key, made[key])
    assert loaded["cases"].keys() == made["cases"].keys()
    for name, case in made["cases"].items():
        assert loaded["cases"][name].keys() == case.keys()
        for key, array in case.items():
            assert loaded["cases"][name][key].dtype == np.int64
            assert np.array_equal(loaded["cases"][name][key], array), (name, key)
    with np.load(path) as raw:
        assert raw["random.a"].dtype == np.int8 and raw["random.meta"].dtype == np.uint8


def test_seeded():
    first, again, other = make(("int8", "int4"), seed=3), make(("int8", "int4"), seed=3), \
        make(("int8", "int4"), seed=4)
    assert np.array_equal(first["cases"]["random"]["b"], again["cases"]["random"]["b"])
    assert not np.array_equal(first["cases"]["random"]["b"], other["cases"]["random"]["b"])


@pytest.mark.parametrize("kwargs, message", [
    ({"rng": 3}, "rng must be a numpy.random.Generator, not int"),
    ({"acts": "ternary"}, "acts must be one of int8, uint8, int4, uint4, not 'ternary'"),
    ({"weights": "uint8"}, "weights must be one of int8, int4, ternary, not 'uint8'"),
    ({"groups": 0}, "groups must be a positive integer, not 0"),
    ({"acc_bits": 0}, r"acc_bits must be an integer in 1\.\.64, not 0"),
])
def test_bad_parameters(kwargs, message):
    params = {"weights": "int8", "acts": "int8", "acc_bits": 16, "groups": 1}
    rng = kwargs.pop("rng", np.random.default_rng(0))
    params.update(kwargs)
    with pytest.raises(ValueError, match=message):
        golden_vectors(rng, **params)


def test_missing_parameter():
    with pytest.raises(ValueError, match="weights must be given"):
        golden_vectors(np.random.default_rng(0), acts="int8", acc_bits=16, groups=1)
