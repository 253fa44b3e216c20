"""sparsecore.verif.streams.PayloadCodec (manifest offsets + sim.packing) against Amaranth's own
packing of the same layouts, and the pure parts of the stream helpers."""

import random

import numpy as np
import pytest
from amaranth.hdl import Const

from sparsecore.hw.config import PRESETS, CoreConfig
from sparsecore.hw.core import SparseTensorCore
from sparsecore.hw.emit import emit
from sparsecore.sim.formats import get_format
from sparsecore.sim.gemm import acc_format
from sparsecore.sim.sparsity import META_FORMAT
from sparsecore.verif.payload import BIT, PayloadCodec, bytes_to_words, raw_format, words_to_bytes
from sparsecore.verif.streams import Coverage, Idle


@pytest.mark.parametrize("config", [PRESETS["default"], PRESETS["ternary_uint4"],
                                    CoreConfig(rows=3, cols=2, groups=1, weights="int4",
                                               acts="uint8", acc_bits=21)])
def test_codec_matches_amaranth_layouts(tmp_path, config):
    core = SparseTensorCore(config)
    manifest = emit(core, tmp_path, "core")
    rng = np.random.default_rng(0)
    wf, af, rf = config.weight_format, config.act_format, acc_format(config.acc_bits)
    m, n, g = config.rows, config.cols, config.groups
    values = rng.integers(wf.min, wf.max + 1, size=(5, m, 2 * g))
    meta = rng.integers(0, 16, size=(5, m, g))
    flags = rng.integers(0, 2, size=(5, 3))
    acts = rng.integers(af.min, af.max + 1, size=(5, 4 * g, n))
    results = rng.integers(-(1 << (config.acc_bits - 1)), 1 << (config.acc_bits - 1),
                           size=(5, m, n))

    w_codec = PayloadCodec(manifest["streams"]["weights"])
    words = w_codec.pack({
        "values": (values.reshape(5, -1), wf), "meta": (meta.reshape(5, -1), META_FORMAT),
        "dense": (flags[:, :1], BIT), "last": (flags[:, 1:2], BIT),
        "accumulate": (flags[:, 2:], BIT)})
    a_words = PayloadCodec(manifest["streams"]["activations"]).pack(
        {"": (acts.reshape(5, -1), af)})
    r_codec = PayloadCodec(manifest["streams"]["results"])
    r_words = r_codec.pack({"": (results.reshape(5, -1), rf)})
    for b in range(5):
        want = core.weights_layout.const({
            "values": (values[b] & wf.mask).tolist(), "meta": meta[b].tolist(),
            "dense": int(flags[b, 0]), "last": int(flags[b, 1]),
            "accumulate": int(flags[b, 2])})
        assert words[b] == Const.cast(want).value
        assert a_words[b] == Const.cast(core.acts_layout.const((acts[b] & af.mask).tolist())).value
        r_const = Const.cast(core.results_layout.const(results[b].tolist()))
        assert r_words[b] == r_const.value & ((1 << len(r_const)) - 1)
    np.testing.assert_array_equal(r_codec.unpack(r_words, "", rf).reshape(5, m, n), results)
    np.testing.assert_array_equal(w_codec.unpack(words, "meta", META_FORMAT).reshape(5, m, g),
                                  meta)


def test_codec_refuses_wrong_sizes(tmp_path):
    manifest = emit(SparseTensorCore(PRESETS["tiny"]), tmp_path, "core")
    codec = PayloadCodec(manifest["streams"]["weights"])
    int8 = get_format("int8")
    with pytest.raises(ValueError, match="field 'values' is 32 bits wide"):
        codec.pack({"values": (np.zeros((1, 3), dtype=np.int64), int8)})
    with pytest.raises(ValueError, match="payload has no field 'bogus'"):
        codec.pack({"bogus": (np.zeros((1, 1), dtype=np.int64), BIT)})
    extra = codec.pack({"values": (np.array([[0, 2, 0, 0]]), raw_format(8))})
    assert extra == [2 << 8]


def test_idle_bursts_and_coverage():
    idle = Idle(random.Random(1), probability=1.0, burst=3)
    assert all(next(idle) for _ in range(20))
    never = Idle(random.Random(1))
    assert not any(next(never) for _ in range(20))
    cov = Coverage()
    cov.define("g", ["a", "b"])
    cov.hit("g", "a")
    assert cov.missing() == {"g": ["b"]}
    with pytest.raises(KeyError):
        cov.hit("g", "c")
    other = Coverage()
    other.define("g", ["a", "b"])
    other.hit("g", "b", 2)
    cov.merge(other)
    assert cov.missing() == {} and cov.groups["g"] == {"a": 1, "b": 2}


@pytest.mark.parametrize("width", [1, 8, 9, 130])
def test_words_bytes_round_trip(width):
    rng = random.Random(width)
    words = [0, (1 << width) - 1] + [rng.getrandbits(width) for _ in range(20)]
    rows = words_to_bytes(words, width)
    assert rows.dtype == np.uint8 and rows.shape == (len(words), -(-width // 8))
    assert int.from_bytes(rows[1].tobytes(), "little") == (1 << width) - 1
    assert bytes_to_words(rows) == words
    assert bytes_to_words(words_to_bytes([], width)) == []
