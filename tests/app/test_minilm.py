"""sparsecore.minilm: model loading, the FP32 encoder vs sentence-transformers, SparseGPT,
bad input, and a tiny encoder bit-exact on the RTL."""

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sparsecore.sim.sparsity import is_2to4, prune_2to4

minilm = pytest.importorskip("sparsecore.minilm")
safetensors_numpy = pytest.importorskip("safetensors.numpy")
tokenizers = pytest.importorskip("tokenizers")

FIXTURE = Path(__file__).parents[1] / "data" / "minilm_reference.json"
HAVE_MODEL = importlib.util.find_spec("all_minilm_l6_v2") is not None


def synthetic_zip(path, rng, width=8, heads=2, ffn=16, layers=1, vocab=None, drop=None):
    """A model.zip shaped like all-MiniLM-L6-v2's, tiny: random weights, a word-level
    tokenizer over a few words."""
    words = vocab or ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "core", "is", "sparse"]
    w = {"embeddings.word_embeddings.weight": rng.normal(size=(len(words), width)),
         "embeddings.position_embeddings.weight": rng.normal(size=(32, width)),
         "embeddings.token_type_embeddings.weight": rng.normal(size=(2, width)),
         "embeddings.LayerNorm.weight": np.ones(width), "embeddings.LayerNorm.bias":
         np.zeros(width)}
    for i in range(layers):
        keys = minilm._layer_keys(i)
        for name in ("query", "key", "value", "attn_out", "ffn_in", "ffn_out"):
            shape = {"ffn_in": (ffn, width), "ffn_out": (width, ffn)}.get(name, (width, width))
            w[keys[name] + ".weight"] = rng.normal(size=shape) / np.sqrt(shape[1])
            w[keys[name] + ".bias"] = rng.normal(size=shape[0]) * 0.1
        for name in ("ln1", "ln2"):
            w[keys[name] + ".weight"] = np.ones(width)
            w[keys[name] + ".bias"] = np.zeros(width)
    w = {k: v.astype(np.float32) for k, v in w.items() if k != drop}
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    config = {"hidden_size": width, "num_attention_heads": heads, "num_hidden_layers": layers,
              "intermediate_size": ffn, "layer_norm_eps": 1e-12}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model.safetensors", safetensors_numpy.save(w))
        zf.writestr("tokenizer.json", tok.to_str())
        zf.writestr("config.json", json.dumps(config))
    return w


def test_load_model_and_fp32_encoder_on_a_synthetic_archive(tmp_path):
    rng = np.random.default_rng(0)
    w = synthetic_zip(tmp_path / "model.zip", rng)
    model = minilm.load_model(tmp_path / "model.zip")
    (ids,) = minilm.tokenize(model, ["the core is sparse"])
    assert ids.tolist() == [2, 4, 5, 6, 7, 3]
    got = minilm.Fp32Encoder(model).encode([ids])[0]
    # the same BERT layer in plain float64, written here
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"]
         [:6] + w["embeddings.token_type_embeddings.weight"][0]).astype(np.float64)

    def ln(v):
        return (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-12)
    x = ln(x)
    k = minilm._layer_keys(0)

    def lin(name, v):
        return v @ w[k[name] + ".weight"].T + w[k[name] + ".bias"]
    q, kk, v = lin("query", x), lin("key", x), lin("value", x)
    ctx = np.zeros_like(x)
    for h in range(2):
        c = slice(4 * h, 4 * h + 4)
        s = q[:, c] @ kk[:, c].T / 2.0
        p = np.exp(s - s.max(1, keepdims=True))
        ctx[:, c] = (p / p.sum(1, keepdims=True)) @ v[:, c]
    h1 = ln(lin("attn_out", ctx) + x)
    from math import erf, sqrt
    a = lin("ffn_in", h1)
    a = 0.5 * a * (1 + np.vectorize(erf)(a / sqrt(2)))
    want = ln(lin("ffn_out", a) + h1).mean(axis=0)
    assert np.abs(got - want).max() < 1e-4


def test_bad_archives_are_one_line_errors(tmp_path):
    bad = tmp_path / "corrupt.zip"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(minilm.ModelError, match="not a readable model archive"):
        minilm.load_model(bad)
    synthetic_zip(tmp_path / "m.zip", np.random.default_rng(1),
                  drop="encoder.layer.0.output.dense.weight")
    with pytest.raises(minilm.ModelError, match="encoder.layer.0.output.dense.weight missing"):
        minilm.load_model(tmp_path / "m.zip")
    with pytest.raises(minilm.ModelError, match="no such file"):
        minilm.load_model(tmp_path / "absent.zip")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "sparsecore.minilm", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("case", ["corrupt", "empty", "unknown variant"])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, case):
    sentences = tmp_path / "s.txt"
    sentences.write_text("one sentence here\nand another one\nand a third\n")
    args = ["--out", str(tmp_path / "out"), "--sentences", str(sentences)]
    if case == "corrupt":
        (tmp_path / "m.zip").write_bytes(b"garbage")
        args += ["--model", str(tmp_path / "m.zip")]
    elif case == "empty":
        sentences.write_text("\n  \n")
    else:
        args += ["--variants", "int9 dense"]
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minilm: error:"), r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_sparsegpt_beats_magnitude_pruning_on_the_outputs():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 32)) @ rng.normal(size=(32, 32))   # correlated inputs
    w = rng.normal(size=(16, 32))
    scale = minilm.row_scales(w, "int8", True)
    codes = minilm.sparsegpt(w, x.T @ x, "int8", True, scale)
    assert is_2to4(codes) and np.abs(codes).max() <= 127
    magnitude, mscale = minilm.compress_weights(w, minilm.Variant("m", "int8", True, False))
    err = np.linalg.norm(x @ (codes * scale[:, None] - w).T)
    err_magnitude = np.linalg.norm(x @ (magnitude * mscale[:, None] - w).T)
    assert err < 0.8 * err_magnitude
    # without pruning it is GPTQ: no zeros forced, and a smaller error than rounding alone
    dscale = minilm.row_scales(w, "int8", False)
    dense = minilm.sparsegpt(w, x.T @ x, "int8", False, dscale)
    rounded = np.clip(np.rint(w / dscale[:, None]), -127, 127)
    assert np.count_nonzero(dense) > np.count_nonzero(prune_2to4(w))
    assert np.linalg.norm(x @ ((dense - rounded) * dscale[:, None]).T) > 0
    assert (np.linalg.norm(x @ (dense * dscale[:, None] - w).T)
            <= np.linalg.norm(x @ (rounded * dscale[:, None] - w).T))


@pytest.mark.skipif(not HAVE_MODEL, reason="the model package is not installed")
def test_fp32_matches_sentence_transformers():
    ref = json.loads(FIXTURE.read_text())
    model = minilm.load_model()
    got = minilm.Fp32Encoder(model).encode(minilm.tokenize(model, ref["sentences"]))
    cos = minilm.cosine_rows(got, np.asarray(ref["embeddings"]))
    assert cos.min() >= 0.9999, cos


def test_sentences_come_from_the_fortune_packages():
    sentences = minilm.load_sentences()
    assert len(sentences) >= 300
    assert "Make each program do one thing well." in sentences
    evaluation, calibration = minilm.split_sentences(sentences)
    assert len(evaluation) >= 200 and not set(evaluation) & set(calibration)


def test_tiny_encoder_bit_exact_on_the_rtl(tmp_path):
    """Every GEMM of a 1-layer, 2-head encoder (int8 2:4, recovered) on a 2 x 2, G = 1 core:
    sparse weight GEMMs, dense attention (int8 x int8 and int8 x uint8 cores); every
    result, every traced code and the final hidden states equal the numpy model's."""
    synthetic_zip(tmp_path / "model.zip", np.random.default_rng(2))
    model = minilm.load_model(tmp_path / "model.zip")
    ids = minilm.tokenize(model, ["the core is sparse", "sparse is the core the core",
                                  "the sparse core"])
    variant = {v.name: v for v in minilm.VARIANTS}["int8 2:4 +rec"]
    enc = minilm.build_variant(model, variant, ids, log=lambda m: None)
    geometry = {"rows": 2, "cols": 2, "groups": 1}
    got = minilm.run_on_rtl(enc, [minilm.embed(model, i) for i in ids[:2]], log=lambda m: None,
                            geometry=geometry)
    assert got["gemms"] == 3 + 2 * 2 * 2 + 3          # qkv, 2 sentences x 2 heads x 2, 3 more
    assert got["results_checked"] > 0 and got["gemm_mismatches"] == 0, got["first_mismatch"]
    assert got["trace_values_unequal"] == 0 and got["final_hidden_equal"]
    assert got["cycles"] == got["predicted_cycles"]


def test_nn_agreement_and_cosine():
    a = np.eye(4) + 0.1
    assert minilm.nn_agreement(a, a) == 1.0
    assert minilm.cosine_rows(a, 2 * a) == pytest.approx(np.ones(4))


def fake_run(variant_rows, rtl=None):
    rows = {name: dict(weights="int8", acts="int8", sparse=sparse, recovery=rec,
                       mean_cosine=mean, min_cosine=mean - 0.1, nn_agreement=nn,
                       weight_bytes_dense=1e6, weight_bytes_stored=0.5625e6 if sparse else 1e6,
                       build_seconds=1.0, eval_seconds=1.0)
            for name, (sparse, rec, mean, nn) in variant_rows.items()}
    return {"date": "d", "machine": "m", "threads": {}, "tools": {"numpy": "x"}, "commit": "c",
            "core": {"rows": 8, "cols": 8, "groups": 4, "latency": 4}, "model": "m",
            "sentences": {"source": "s", "evaluation": 200, "calibration": 100,
                          "mean_tokens": 20.0},
            "fixture": {"sentences": 8, "min_cosine": 0.99995, "mean_cosine": 1.0,
                        "versions": {"sentence-transformers": "5", "torch": "2"}},
            "fp32_seconds": 1.0,
            "cycles_per_sentence": {"weights_sparse": 1000.0, "weights_dense": 1990.0,
                                    "attention": 50.0},
            "sparse_over_dense": 1000 / 1990, "rows": rows, "rtl": rtl, "seconds": 60.0}


def test_report_from_json_with_an_rtl_record(tmp_path):
    numpy_run = fake_run({"int8 dense": (False, False, 0.985, 0.8),
                          "int8 2:4 +rec": (True, True, 0.96, 0.91)})
    rtl = {"variant": "int8 2:4 +rec", "sentences": 32, "tokens": 500, "gemms": 10, "runs": 3,
           "results_checked": 1000, "gemm_mismatches": 0, "first_mismatch": None,
           "trace_values_compared": 50, "trace_values_unequal": 0, "first_unequal": None,
           "final_hidden_equal": True, "cycles": 9, "predicted_cycles": 9, "seconds": 5.0,
           "simulator_seconds": 4.0}
    (tmp_path / "a.json").write_text(json.dumps(numpy_run))
    (tmp_path / "c.json").write_text(json.dumps(fake_run({"int4 2:4": (True, False, 0.5, 0.2)})))
    (tmp_path / "b.json").write_text(json.dumps(fake_run({"int8 2:4 +rec": (True, True, 1, 1)},
                                                          rtl)))
    assert minilm.main(["--report-from", str(tmp_path / "a.json"), str(tmp_path / "c.json"),
                        "--rtl-from", str(tmp_path / "b.json"), "--out",
                        str(tmp_path / "out")]) == 0
    info = json.loads((tmp_path / "out" / "minilm.json").read_text())
    assert list(info["rows"]) == ["int8 dense", "int8 2:4 +rec", "int4 2:4"]
    met = {k: t["met"] for k, t in info["targets"].items()}
    assert met == {"fp32_vs_sentence_transformers": True, "int8_dense": False,
                   "int8_2to4_recovered": True, "sparse_cycles": True, "rtl_bit_exact": True,
                   "rtl_sentences": True}
    text = (tmp_path / "out" / "minilm.md").read_text()
    assert "| int8 2:4 +rec | int8 x int8 | 0.9600 |" in text and "**NOT MET**" in text
    assert (tmp_path / "out" / "minilm.png").stat().st_size > 1000
    rtl["gemm_mismatches"] = 1
    (tmp_path / "b.json").write_text(json.dumps(fake_run({}, rtl)))
    assert minilm.main(["--report-from", str(tmp_path / "a.json"), "--rtl-from",
                        str(tmp_path / "b.json"), "--out", str(tmp_path / "out")]) == 0
    info = json.loads((tmp_path / "out" / "minilm.json").read_text())
    assert info["targets"]["rtl_bit_exact"]["met"] is False
