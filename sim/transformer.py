"""A BERT encoder with every matmul an integer GEMM: the numpy model that the RTL must match.

What is integer and what is not (the split a host + tensor-core system makes):

- Integer, on the core: the six weight GEMMs of each layer (query, key, value,
  attention output, FFN in, FFN out) and the two attention GEMMs (Q.K^T and
  P.V). Each is ``C = A x B`` on int64 values wrapped to ``acc_bits``
  (:func:`sim.gemm.matmul`), A the weight operand, B the activation operand.
- Float32, on the host: dequantizing accumulators (``C * w_scale[row] *
  act_scale``), bias adds, the attention scale 1/sqrt(d), softmax, GELU,
  residual adds and LayerNorm, and quantizing the next GEMM's operands.

Quantizers (round half to even, ``np.rint``, as SPEC §2):

- Weights: symmetric per output channel (per row of A):
  ``scale[c] = max|w[c]| / qmax``, ``q = clip(rint(w / scale), -qmax, qmax)``
  with ``qmax`` = 127 (int8), 7 (int4), 1 (ternary). The codes may be
  overridden by a recovery step (they stay in range and 2:4 where pruned).
- Activations: symmetric per tensor, a static scale from calibration,
  ``q = clip(rint(x / scale), -128, 127)`` (int8).
- Attention probabilities P (softmax output, 0..1): uint8 with scale 1/255.

GEMM shapes (T tokens of one sentence, H heads of size d):

===========  ==========================  =====================  =======
GEMM         A (weights operand)         B (activations)        mode
===========  ==========================  =====================  =======
query ...    W codes, out x in           X codes^T, in x T      sparse if pruned
Q.K^T        Q_h codes, T x d (int8)     K_h codes^T, d x T     dense
P.V          V_h codes^T, d x T (int8)   P_h codes^T, T x T     dense (uint8 B)
===========  ==========================  =====================  =======

Weight GEMMs of all sentences run as one GEMM (their tokens side by side in
B); attention GEMMs are per sentence and head. Every GEMM goes through one
function, ``gemms(jobs, tag) -> [C, ...]`` (a list of :class:`GemmJob`), so the
same forward pass runs on the numpy model (:func:`numpy_gemms`) or on the RTL.
"""

from dataclasses import dataclass, field

import numpy as np

from sparsecore.sim.formats import get_format
from sparsecore.sim.gemm import matmul
from sparsecore.sim.sparsity import is_2to4

__all__ = ["GemmJob", "QuantLinear", "QuantLayer", "QuantEncoder", "numpy_gemms",
           "weight_qmax", "quantize_weights", "quantize_acts", "layer_norm", "gelu", "softmax",
           "ACT_FORMAT", "PROB_FORMAT", "PROB_SCALE", "LINEAR_NAMES"]

ACT_FORMAT = "int8"
PROB_FORMAT = "uint8"
PROB_SCALE = 1.0 / 255.0
LINEAR_NAMES = ("query", "key", "value", "attn_out", "ffn_in", "ffn_out")
_QMAX = {"int8": 127, "int4": 7, "ternary": 1}


@dataclass(frozen=True)
class GemmJob:
    """One integer GEMM C = A x B: A (M x K) weight codes, B (K x N) activation codes."""

    a: np.ndarray
    b: np.ndarray
    dense: bool
    weights: str      # format of A
    acts: str         # format of B

    @property
    def macs(self):
        return self.a.shape[0] * self.a.shape[1] * self.b.shape[1]


def numpy_gemms(jobs, tag, acc_bits=32):
    """The numpy model of a list of GEMMs (``tag`` names them for a runner; unused here)."""
    return [matmul(job.a, job.b, acc_bits) for job in jobs]


def weight_qmax(fmt):
    if fmt not in _QMAX:
        raise ValueError(f"weights must be one of {', '.join(_QMAX)}, not {fmt!r}")
    return _QMAX[fmt]


def quantize_weights(w, fmt):
    """Per-row symmetric quantization: (codes int64, scale float64 per row)."""
    qmax = weight_qmax(fmt)
    w = np.asarray(w, dtype=np.float64)
    if fmt == "ternary":
        # TWN (SPEC §2): threshold 0.7 * mean|w| per row, scale = mean of the kept |w|.
        delta = 0.7 * np.abs(w).mean(axis=1, keepdims=True)
        codes = np.where(np.abs(w) > delta, np.sign(w), 0).astype(np.int64)
        kept = np.maximum(np.abs(codes).sum(axis=1), 1)
        scale = (np.abs(w) * np.abs(codes)).sum(axis=1) / kept
        return codes, np.where(scale > 0, scale, 1.0)
    scale = np.abs(w).max(axis=1) / qmax
    scale = np.where(scale > 0, scale, 1.0)
    codes = np.clip(np.rint(w / scale[:, None]), -qmax, qmax).astype(np.int64)
    return codes, scale


def quantize_acts(x, scale, fmt=ACT_FORMAT):
    """Per-tensor symmetric quantization of activations to ``fmt`` codes (int64)."""
    f = get_format(fmt, "acts")
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) / scale), f.min, f.max).astype(
        np.int64)


def layer_norm(x, gamma, beta, eps=1e-12):
    x = np.asarray(x, dtype=np.float32)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + np.float32(eps)) * gamma + beta).astype(np.float32)


def _erf(x):
    """erf to about 1e-7 (numpy has no erf and scipy is not a dependency)."""
    x = np.asarray(x, dtype=np.float64)
    s = np.sign(x)
    a = np.abs(x)
    # Numerical Recipes erfc (Chebyshev fit), fractional error < 1.2e-7 everywhere.
    t = 1.0 / (1.0 + 0.5 * a)
    poly = (-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (
        0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (
            1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
    return s * (1.0 - t * np.exp(poly))


def gelu(x):
    """Exact (erf) GELU, as BERT's ``hidden_act = "gelu"``."""
    x = np.asarray(x, dtype=np.float32)
    return (0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))).astype(np.float32)


def softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


@dataclass
class QuantLinear:
    """y = x W^T + bias with W as integer codes x per-row scale, x as int8 x act_scale."""

    codes: np.ndarray        # out x in int64
    scale: np.ndarray        # (out,) float64
    bias: np.ndarray         # (out,) float32
    act_scale: float         # of the input x
    weights: str             # format of the codes
    sparse: bool             # 2:4: run in sparse mode

    def __post_init__(self):
        qmax = weight_qmax(self.weights)
        self.codes = np.asarray(self.codes, dtype=np.int64)
        if self.codes.ndim != 2 or np.abs(self.codes).max(initial=0) > qmax:
            raise ValueError(f"codes must be a 2-D matrix of {self.weights} values "
                             f"(|q| <= {qmax})")
        if self.sparse and not is_2to4(self.codes):
            raise ValueError("codes are not 2:4 along the input dimension but sparse=True")
        if not (np.isfinite(self.act_scale) and self.act_scale > 0):
            raise ValueError(f"act_scale must be a positive number, not {self.act_scale!r}")

    def job(self, x_codes):
        return GemmJob(self.codes, x_codes.T.copy(), not self.sparse, self.weights, ACT_FORMAT)

    def input_codes(self, x):
        return quantize_acts(x, self.act_scale)

    def output(self, acc):
        """Dequantized y (T x out) from the accumulators (out x T)."""
        return (acc.T * (self.scale * self.act_scale)).astype(np.float32) + self.bias

    def weight_bytes(self):
        """(dense bytes, stored bytes): compressed 2:4 keeps half the values + 4-bit codes."""
        bits = get_format(self.weights, "weights").bits
        m, k = self.codes.shape
        dense = m * k * bits / 8
        return dense, (m * k / 2 * bits / 8 + m * (k // 4) * 4 / 8) if self.sparse else dense


@dataclass
class QuantLayer:
    """One encoder layer: six QuantLinear, the attention scales, LayerNorm parameters."""

    linears: dict            # LINEAR_NAMES -> QuantLinear
    heads: int
    q_scale: float           # int8 scale of Q (after its bias) for Q.K^T
    k_scale: float
    v_scale: float
    ln1: tuple               # (gamma, beta) after attention
    ln2: tuple               # (gamma, beta) after the FFN
    eps: float = 1e-12


@dataclass
class QuantEncoder:
    """The layers after the (float, host) embeddings; ``forward`` takes their output."""

    layers: list
    acc_bits: int = 32
    trace: list = field(default_factory=list, repr=False)

    def forward(self, hidden, gemms=None, record=False):
        """hidden: list of (T_i x width) float32 embeddings, one per sentence.

        ``gemms(jobs, tag)`` runs a list of :class:`GemmJob` (default: the numpy
        model). With ``record``, ``self.trace`` gets (tag, accumulators) of every
        GEMM and (tag, codes) of every layer's output codes.
        Returns the final hidden states, one (T_i x width) float32 per sentence.
        """
        if gemms is None:
            def gemms(jobs, tag):
                return numpy_gemms(jobs, tag, self.acc_bits)
        self.trace = []
        hidden = [np.asarray(h, dtype=np.float32) for h in hidden]
        for index, layer in enumerate(self.layers):
            hidden = self._layer(index, layer, hidden, gemms, record)
        return hidden

    def _linear(self, lin, x_codes, gemms, tag, record):
        (acc,) = gemms([lin.job(x_codes)], tag)
        if record:
            self.trace.append((tag, acc))
        return lin.output(acc)

    def _layer(self, index, layer, hidden, gemms, record):
        lens = [len(h) for h in hidden]
        splits = np.cumsum(lens)[:-1]
        x = np.concatenate(hidden)
        lin = layer.linears
        x_codes = lin["query"].input_codes(x)
        if record:
            self.trace.append((f"L{index}.input_codes", x_codes))
        # query, key and value read the same input codes (one act_scale for the three)
        # one call for the three (a runner may stream them together)
        accs = gemms([lin[n].job(x_codes) for n in ("query", "key", "value")], f"L{index}.qkv")
        if record:
            self.trace.extend((f"L{index}.{n}", acc) for n, acc in
                              zip(("query", "key", "value"), accs, strict=True))
        q, k, v = (lin[n].output(acc) for n, acc in
                   zip(("query", "key", "value"), accs, strict=True))
        width = q.shape[1]
        d = width // layer.heads
        qc, kc, vc = (quantize_acts(t, s) for t, s in
                      ((q, layer.q_scale), (k, layer.k_scale), (v, layer.v_scale)))
        score_jobs = []
        for qs, ks in zip(np.split(qc, splits), np.split(kc, splits), strict=False):
            for h in range(layer.heads):
                cols = slice(h * d, (h + 1) * d)
                score_jobs.append(GemmJob(qs[:, cols].copy(), ks[:, cols].T.copy(), True,
                                          ACT_FORMAT, ACT_FORMAT))
        scores = gemms(score_jobs, f"L{index}.scores")
        scale = np.float32(layer.q_scale * layer.k_scale / np.sqrt(d))
        probs = [softmax(s.astype(np.float32) * scale) for s in scores]
        p_codes = [quantize_acts(p, PROB_SCALE, PROB_FORMAT) for p in probs]
        ctx_jobs = []
        for i, vs in enumerate(np.split(vc, splits)):
            for h in range(layer.heads):
                cols = slice(h * d, (h + 1) * d)
                ctx_jobs.append(GemmJob(vs[:, cols].T.copy(), p_codes[i * layer.heads + h].T.copy(),
                                        True, ACT_FORMAT, PROB_FORMAT))
        ctx_acc = gemms(ctx_jobs, f"L{index}.context")
        if record:
            self.trace.append((f"L{index}.scores", scores))
            self.trace.append((f"L{index}.context", ctx_acc))
        ctx_scale = np.float32(layer.v_scale * PROB_SCALE)
        ctx = np.concatenate([
            np.concatenate([ctx_acc[i * layer.heads + h].T for h in range(layer.heads)], axis=1)
            for i in range(len(lens))]).astype(np.float32) * ctx_scale
        attn = self._linear(lin["attn_out"], lin["attn_out"].input_codes(ctx), gemms,
                            f"L{index}.attn_out", record)
        h1 = layer_norm(attn + x, *layer.ln1, eps=layer.eps)
        inter = self._linear(lin["ffn_in"], lin["ffn_in"].input_codes(h1), gemms,
                             f"L{index}.ffn_in", record)
        act = gelu(inter)
        out = self._linear(lin["ffn_out"], lin["ffn_out"].input_codes(act), gemms,
                           f"L{index}.ffn_out", record)
        h2 = layer_norm(out + h1, *layer.ln2, eps=layer.eps)
        return np.split(h2, splits)

    def weight_bytes(self):
        """(dense bytes, stored bytes) over every weight matrix."""
        pairs = [lin.weight_bytes() for layer in self.layers for lin in layer.linears.values()]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)
