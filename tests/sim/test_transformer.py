"""sim.transformer: the integer encoder against plain float math written here."""

import math

import numpy as np
import pytest

from sparsecore.sim.sparsity import is_2to4, prune_2to4
from sparsecore.sim.transformer import (
    LINEAR_NAMES,
    PROB_SCALE,
    QuantEncoder,
    QuantLayer,
    QuantLinear,
    gelu,
    quantize_acts,
    quantize_weights,
)


def test_gelu_is_the_erf_gelu():
    x = np.linspace(-8, 8, 2001)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    assert np.abs(gelu(x) - exact).max() < 2e-6


@pytest.mark.parametrize("fmt,qmax", [("int8", 127), ("int4", 7)])
def test_quantize_weights_per_row(fmt, qmax):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(5, 12)) * np.arange(1, 6)[:, None]
    codes, scale = quantize_weights(w, fmt)
    assert np.array_equal(np.abs(codes).max(axis=1), np.full(5, qmax))
    assert np.allclose(scale, np.abs(w).max(axis=1) / qmax)
    assert np.abs(codes * scale[:, None] - w).max() <= scale.max() / 2 + 1e-12


def test_ternary_weights_are_twn():
    w = np.array([[0.9, -0.1, -0.8, 0.05]])
    codes, scale = quantize_weights(w, "ternary")
    # delta = 0.7 * mean|w| = 0.3325: keeps 0.9 and -0.8, scale = their mean magnitude
    assert codes.tolist() == [[1, 0, -1, 0]]
    assert scale.tolist() == pytest.approx([0.85])


def test_quantize_acts_rounds_half_to_even_and_clips():
    assert quantize_acts([0.5, 1.5, 2.5, -300.0, 300.0], 1.0).tolist() == [0, 2, 2, -128, 127]
    assert quantize_acts([1.0, -0.1], PROB_SCALE, "uint8").tolist() == [255, 0]


def test_quant_linear_refuses_bad_codes():
    with pytest.raises(ValueError, match="2:4"):
        QuantLinear(np.ones((2, 4), dtype=np.int64), np.ones(2), np.zeros(2), 1.0, "int8", True)
    with pytest.raises(ValueError, match="int4"):
        QuantLinear(np.full((2, 4), 8), np.ones(2), np.zeros(2), 1.0, "int4", False)
    with pytest.raises(ValueError, match="act_scale"):
        QuantLinear(np.ones((2, 4), dtype=np.int64), np.ones(2), np.zeros(2), 0.0, "int8",
                    False)


def tiny_encoder(rng, width=16, heads=2, ffn=32, layers=2, weights="int8", sparse=True):
    out = []
    for _ in range(layers):
        linears = {}
        for name in LINEAR_NAMES:
            shape = {"ffn_in": (ffn, width), "ffn_out": (width, ffn)}.get(name, (width, width))
            w = rng.normal(size=shape) / math.sqrt(shape[1])
            codes, scale = quantize_weights(prune_2to4(w) if sparse else w, weights)
            linears[name] = QuantLinear(codes, scale, rng.normal(size=shape[0]) * 0.1,
                                        0.05 if name != "ffn_out" else 0.02, weights, sparse)
        out.append(QuantLayer(linears, heads, 0.04, 0.04, 0.04,
                              (np.ones(width, np.float32), np.zeros(width, np.float32)),
                              (np.ones(width, np.float32), np.zeros(width, np.float32))))
    return QuantEncoder(out)


def fake_quant(x, scale, lo=-128, hi=127):
    return np.clip(np.rint(x / scale), lo, hi) * scale


def reference_forward(enc, hidden):
    """The same network in plain float64 with fake-quantized operands, per sentence."""
    outs = []
    for x in hidden:
        x = np.asarray(x, dtype=np.float64)
        for layer in enc.layers:
            lin = layer.linears

            def dense(name, inp, lin=lin):
                q = lin[name]
                w = q.codes * q.scale[:, None]
                return fake_quant(inp, q.act_scale) @ w.T + q.bias

            def ln(v, p):
                mu = v.mean(-1, keepdims=True)
                return (v - mu) / np.sqrt(v.var(-1, keepdims=True) + 1e-12) * p[0] + p[1]
            q, k, v = dense("query", x), dense("key", x), dense("value", x)
            t, width = x.shape
            d = width // layer.heads
            ctx = np.zeros_like(x)
            for h in range(layer.heads):
                c = slice(h * d, (h + 1) * d)
                s = fake_quant(q[:, c], layer.q_scale) @ fake_quant(k[:, c], layer.k_scale).T
                s = s / math.sqrt(d)
                p = np.exp(s - s.max(1, keepdims=True))
                p = fake_quant(p / p.sum(1, keepdims=True), PROB_SCALE, 0, 255)
                ctx[:, c] = p @ fake_quant(v[:, c], layer.v_scale)
            h1 = ln(dense("attn_out", ctx) + x, layer.ln1)
            a = dense("ffn_in", h1)
            a = 0.5 * a * (1 + np.vectorize(math.erf)(a / math.sqrt(2)))
            x = ln(dense("ffn_out", a) + h1, layer.ln2)
        outs.append(x)
    return outs


def test_forward_matches_plain_float_math():
    rng = np.random.default_rng(7)
    enc = tiny_encoder(rng)
    hidden = [rng.normal(size=(t, 16)).astype(np.float32) for t in (3, 6)]
    got = enc.forward(hidden)
    want = reference_forward(enc, hidden)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        # float32 vs float64 on the host; a rounding boundary crossed would show as more
        assert np.abs(g - w).max() < 2e-3


def test_every_gemm_goes_through_the_hook_with_its_mode_and_formats():
    rng = np.random.default_rng(3)
    enc = tiny_encoder(rng, layers=1)
    hidden = [rng.normal(size=(t, 16)).astype(np.float32) for t in (2, 5)]
    seen = []

    def gemms(jobs, tag):
        seen.append((tag, [(j.a.shape, j.b.shape, j.dense, j.weights, j.acts) for j in jobs]))
        return [j.a @ j.b for j in jobs]
    enc.forward(hidden, gemms=gemms)
    tags = dict(seen)
    assert [t for t, _ in seen] == ["L0.qkv", "L0.scores", "L0.context", "L0.attn_out",
                                    "L0.ffn_in", "L0.ffn_out"]
    # weight GEMMs: all 7 tokens at once, sparse (2:4 codes)
    assert tags["L0.qkv"] == [((16, 16), (16, 7), False, "int8", "int8")] * 3
    assert tags["L0.ffn_in"] == [((32, 16), (16, 7), False, "int8", "int8")]
    # attention: per sentence and head, dense; P.V takes uint8 probabilities
    assert [s[:3] for s in tags["L0.scores"]] == [((2, 8), (8, 2), True)] * 2 + \
        [((5, 8), (8, 5), True)] * 2
    assert [s[:5] for s in tags["L0.context"]] == [((8, 2), (2, 2), True, "int8", "uint8")] * 2 \
        + [((8, 5), (5, 5), True, "int8", "uint8")] * 2


def test_trace_records_every_gemm_and_layer_codes():
    rng = np.random.default_rng(5)
    enc = tiny_encoder(rng)
    enc.forward([rng.normal(size=(4, 16)).astype(np.float32)], record=True)
    tags = [t for t, _ in enc.trace]
    assert tags.count("L1.input_codes") == 1 and "L1.ffn_out" in tags
    codes = dict(enc.trace)["L0.input_codes"]
    assert codes.dtype == np.int64 and np.abs(codes).max() <= 128


def test_weight_bytes_dense_and_compressed():
    enc = tiny_encoder(np.random.default_rng(0), layers=1)
    dense, stored = enc.weight_bytes()
    params = 4 * 16 * 16 + 2 * 16 * 32
    assert dense == params                       # int8: one byte a weight
    assert stored == params / 2 + params / 4 / 2  # half the values + 4 bits per group of 4
    assert all(is_2to4(q.codes) for q in enc.layers[0].linears.values())
