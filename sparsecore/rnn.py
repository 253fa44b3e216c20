"""A low-precision LSTM on sequential digits: each 8 x 8 image is 8 time steps of 8 pixels.

Why sequential digits (and not character-level language modelling): the same
data as the MLP and CNN results, so accuracies compare across the three; it
trains on a CPU in seconds per variant; and its 8 steps keep the per-step RTL
runs affordable. (A character model would need tens of steps per sample and a
vocabulary-wide classifier per step.)

Float model (FP32 variant), hidden width H, rows of W ordered ``[i; f; g; o]``::

    z_t = W [x_t; h_{t-1}] + b                      (4H x (8 + H)) x (8 + H)
    i, f, o = sigmoid(z_i, z_f, z_o);  g = tanh(z_g)
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t);  logits = V h_8 + d

Integer model (quantized variants; ``k`` activation bits, Q = 2**(k-1) - 1).
Everything after the GEMM is integer arithmetic with round half to even
(:func:`round_div`):

- B = [X; Hc]: pixel codes X = rint(Q * pixel) in 0..Q and hidden codes Hc in
  -Q..Q, one scale 1/Q for both (so one accumulator scale per row).
- Gates: the GEMM W_codes x B, then the output stage (bias, scale, round, clip)
  to an int8 code q on the grid 1/16 (``GATE_STEP``); the sigmoid rows are
  scaled by 1/2 more, because ``sigmoid(x) = (1 + tanh(x/2)) / 2``. Then one
  table, ``T[q] = rint(127 * tanh(q / 16))`` (``sim.code_table``), for every
  row: this is what the code table unit computes in hardware.
- Gate values: sigmoid gates S = 127 + T in 0..254 (value S/254); g = G = T
  in -127..127 (value G/127).
- Cell, int16 on the grid 2**-12: ``C' = clip(round_div(127 F C + 4096 I G, 254 * 127))``.
- tanh of the cell, by the same table: qc = clip(round_div(C', 256)) (grid
  1/16), Tc = T[qc].
- Hidden: ``Hc' = clip(round_div(O * Tc * Q, 254 * 127), -Q, Q)``.
- Logits: the GEMM V_codes x Hc_8 and the output stage to int8, as in
  ``sim/inference.py``.

Quantization-aware training uses the straight-through estimator on the same
grids (weights as in ``sparsecore/nn.py``; the gate inputs rounded to 1/16 and
clipped, the tables' outputs rounded to their grids, the cell rounded to
2**-12, hidden values to 1/Q), so the float training pass and the integer
model agree up to where the rounding happens. Every matrix product, ``exp``, ``tanh``
and ``cos`` of training comes from :mod:`sparsecore.sim.reproducible` (as in
``sparsecore/nn.py``), so the trained weights are the same bits on every machine.
"""

from dataclasses import dataclass

import numpy as np

from sparsecore.nn import Layer, _softmax, prepare_layers
from sparsecore.sim.quantize import bias_codes, quantized_weights
from sparsecore.sim.reproducible import cos, exp, matmul, tanh

__all__ = ["STEPS", "PIXELS", "GATE_STEP", "CELL_BITS", "RnnRecipe", "sequences",
           "init_lstm", "prepare_lstm", "forward", "train", "accuracy", "round_div",
           "gate_table", "IntegerLstm", "integer_lstm"]

STEPS = 8            # rows of an image
PIXELS = 8           # pixels per row
GATE_STEP = 1 / 16   # grid of the int8 gate codes (covers -8 .. 7.94)
CELL_BITS = 12       # the cell state's grid is 2**-12, int16
CELL_MIN, CELL_MAX = -(1 << 15), (1 << 15) - 1
TABLE_MAX = 127      # tanh entries -127..127


@dataclass(frozen=True)
class RnnRecipe:
    """How one LSTM variant is trained (fields as :class:`sparsecore.nn.Recipe`)."""

    name: str
    hidden: int = 16
    weights: str = "fp32"
    act_bits: int | None = None
    sparse: bool = False
    init: str | None = None
    description: str = ""

    @property
    def quantized(self):
        return self.weights != "fp32"


def sequences(x):
    """Images (N x 64) -> (steps, N, pixels): row t of every image is step t."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != STEPS * PIXELS:
        raise ValueError(f"x must be N x {STEPS * PIXELS} images, not shape {x.shape}")
    if len(x) == 0:
        raise ValueError("x holds no image: a sequence batch of length 0")
    return x.reshape(len(x), STEPS, PIXELS).transpose(1, 0, 2)


def init_lstm(rng, hidden, classes=10):
    """[gates (4H x (8+H)), classifier (classes x H)]; forget-gate bias 1."""
    k = PIXELS + hidden
    limit = np.sqrt(6.0 / (k + 4 * hidden))
    gates = Layer(rng.uniform(-limit, limit, (4 * hidden, k)), np.zeros(4 * hidden))
    gates.b[hidden:2 * hidden] = 1.0
    limit = np.sqrt(6.0 / hidden)
    return [gates, Layer(rng.uniform(-limit, limit, (classes, hidden)), np.zeros(classes))]


def prepare_lstm(recipe, start, rng, classes=10):
    """Random layers or a copy of ``start``, with 2:4 masks and WRPN gains (nn.prepare)."""
    return prepare_layers(recipe, start, lambda: init_lstm(rng, recipe.hidden, classes))


def _params(layer, recipe):
    """(real weights, real bias, ste) of a layer; the bias on its accumulator grid."""
    codes, scale, ste = quantized_weights(layer, recipe.weights)
    if codes is None:
        return (layer.w if layer.mask is None else layer.w * layer.mask), layer.b, ste
    q = (1 << (recipe.act_bits - 1)) - 1
    step = scale / q
    return scale * codes, step * np.rint(layer.b / step), ste


def _sigmoid(x):
    return 1.0 / (1.0 + exp(-x))


def _grid(x, step, lo, hi):
    """Round to the grid ``step`` (half to even) and clip to [lo, hi]: the forward value
    of an STE quantizer (its gradient passes where not clipped)."""
    return np.clip(np.rint(x / step), lo, hi) * step


def forward(layers, recipe, x):
    """Logits (N x classes) and the cache backprop needs; x is N x 64 in [0, 1]."""
    seq = sequences(x)
    gates, head = layers
    w, b, ste_g = _params(gates, recipe)
    v, d, ste_v = _params(head, recipe)
    hidden = head.w.shape[1]
    n = seq.shape[1]
    quant = recipe.quantized
    q = (1 << (recipe.act_bits - 1)) - 1 if quant else None
    h = np.zeros((n, hidden))
    c = np.zeros((n, hidden))
    steps = []
    for t in range(STEPS):
        xt = _grid(seq[t], 1 / q, 0, q) if quant else seq[t]
        inp = np.concatenate([xt, h], axis=1)
        z = matmul(inp, w.T) + b
        zi, zf, zg, zo = np.split(z, 4, axis=1)
        if quant:
            # gate inputs on the int8 grid (sigmoid rows at half scale), table outputs
            # on their grids: the integer model's roundings, STE through them
            zs = [_grid(zz / 2, GATE_STEP, -128, 127) * 2 for zz in (zi, zf, zo)]
            zgq = _grid(zg, GATE_STEP, -128, 127)
            i, f, o = (_grid((1 + tanh(zz / 2)) / 2, 1 / 254, 0, 254) for zz in zs)
            g = _grid(tanh(zgq), 1 / 127, -127, 127)
            c_new = _grid(f * c + i * g, 2.0 ** -CELL_BITS, CELL_MIN, CELL_MAX)
            cq = _grid(c_new, GATE_STEP, -128, 127)
            tc = _grid(tanh(cq), 1 / 127, -127, 127)
            h_new = _grid(o * tc, 1 / q, -q, q)
            masks = [np.abs(zz / 2) < 8 for zz in (zi, zf, zo)] + [np.abs(zg) < 8]
            cmask = np.abs(c_new) < 8
        else:
            i, f, o = _sigmoid(zi), _sigmoid(zf), _sigmoid(zo)
            g = tanh(zg)
            c_new = f * c + i * g
            tc = tanh(c_new)
            h_new = o * tc
            masks = [1.0] * 4
            cmask = 1.0
        steps.append((inp, i, f, g, o, c, c_new, tc, masks, cmask))
        h, c = h_new, c_new
    logits = matmul(h, v.T) + d
    return logits, (steps, w, ste_g, v, ste_v, h)


def _backward(cache, grad):
    """[(dW, db) gates, (dV, dd) classifier] from d loss / d logits (N x classes)."""
    steps, w, ste_g, v, ste_v, h_last = cache
    hidden = v.shape[1]
    dv = matmul(grad.T, h_last) * ste_v
    dd = grad.sum(axis=0)
    dh = matmul(grad, v)
    dc = np.zeros_like(dh)
    dw = np.zeros_like(w)
    db = np.zeros(w.shape[0])
    for inp, i, f, g, o, c_prev, _, tc, masks, cmask in reversed(steps):
        do = dh * tc
        dc = dc + dh * o * (1 - tc * tc) * cmask
        di, df, dg = dc * g, dc * c_prev, dc * i
        dz = np.concatenate([di * i * (1 - i) * masks[0], df * f * (1 - f) * masks[1],
                             dg * (1 - g * g) * masks[3], do * o * (1 - o) * masks[2]], axis=1)
        dw += matmul(dz.T, inp)
        db += dz.sum(axis=0)
        dh = matmul(dz, w)[:, PIXELS:]
        dc = dc * f
    return [(dw * ste_g, db), (dv, dd)], hidden


def accuracy(layers, recipe, x, y):
    return float((forward(layers, recipe, x)[0].argmax(axis=1) == y).mean())


def train(layers, recipe, x, y, rng, epochs=30, batch=32, lr=5e-3):
    """Adam with a cosine rate on softmax cross-entropy, gradient norm clipped at 5."""
    n = len(y)
    onehot = np.eye(layers[-1].w.shape[0])[y]
    m = [[np.zeros_like(p) for p in (lay.w, lay.b)] for lay in layers]
    s = [[np.zeros_like(p) for p in (lay.w, lay.b)] for lay in layers]
    total = epochs * -(-n // batch)
    step = 0
    decay1 = decay2 = 1.0  # 0.9**step, 0.999**step by products: no libm pow
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            logits, cache = forward(layers, recipe, x[idx])
            grads, _ = _backward(cache, (_softmax(logits) - onehot[idx]) / len(idx))
            norm = np.sqrt(sum(float((g * g).sum()) for pair in grads for g in pair))
            scale = min(1.0, 5.0 / max(norm, 1e-12))
            step += 1
            decay1, decay2 = decay1 * 0.9, decay2 * 0.999
            rate = lr * 0.5 * (1 + cos(np.pi * (step - 1) / total))
            for li, layer in enumerate(layers):
                for j, (param, g) in enumerate(zip((layer.w, layer.b), grads[li], strict=True)):
                    g = g * scale
                    m[li][j] = 0.9 * m[li][j] + 0.1 * g
                    s[li][j] = 0.999 * s[li][j] + 0.001 * g * g
                    param -= rate * (m[li][j] / (1 - decay1)) / (
                        np.sqrt(s[li][j] / (1 - decay2)) + 1e-8)
                if layer.mask is not None:
                    layer.w *= layer.mask
    return layers


# -- integer inference --------------------------------------------------------------------

def round_div(num, den):
    """``num / den`` rounded half to even, exactly, on int64 arrays (``den`` > 0)."""
    num = np.asarray(num, dtype=np.int64)
    q, r = np.divmod(num, den)            # floor division: 0 <= r < den
    twice = 2 * r
    up = (twice > den) | ((twice == den) & (q % 2 == 1))
    return q + up


def gate_table():
    """The one table every nonlinearity of the integer LSTM uses: int8 code q (grid 1/16)
    -> rint(127 * tanh(q / 16)), int8 entries -127..127 (``sim.code_table``)."""
    from sparsecore.sim.code_table import function_table
    return function_table("tanh", GATE_STEP, 1 / TABLE_MAX, "int8", "int8")


@dataclass(frozen=True)
class IntegerLstm:
    """The integer form of a quantized LSTM: the gate layer and the classifier as
    :class:`sim.inference.IntegerLayer` (GEMM + output stage), the gate table, and the
    hidden codes' range Q (-Q..Q)."""

    weights: str
    acts: str            # the core's activation format carrying X and Hc (int8)
    act_bits: int
    acc_bits: int
    mult_bits: int
    shift_bits: int
    layers: tuple        # (gates: 4H x (8 + H) -> int8 codes, classifier -> int8 logits)
    table: np.ndarray    # gate_table(), value order of int8 codes

    @property
    def q(self):
        return (1 << (self.act_bits - 1)) - 1

    @property
    def hidden(self):
        return self.layers[1].shape[1]

    def input_codes(self, x):
        """(steps, pixels, N) pixel codes rint(Q * pixel), one column per image."""
        seq = sequences(x)
        return np.clip(np.rint(seq * self.q), 0, self.q).astype(np.int64).transpose(0, 2, 1)

    def check(self, weights=None, acts=None, acc_bits=None):
        from sparsecore.sim.code_table import check_table
        from sparsecore.sim.inference import IntegerNetwork
        for layer in self.layers:
            IntegerNetwork(self.weights, self.acts, self.act_bits, self.acc_bits,
                           self.mult_bits, self.shift_bits, (layer,)).check(
                               weights, acts, acc_bits)
        gates, head = self.layers
        h = head.shape[1]
        if gates.shape != (4 * h, PIXELS + h):
            raise ValueError(f"the gate layer must be {4 * h} x {PIXELS + h} for hidden "
                             f"width {h}, not {gates.shape}")
        check_table(self.table, gates.out, "int8")
        return self

    def step(self, gate_codes, c):
        """The elementwise part of one time step, exactly: table outputs of the gate
        layer (4H x N, int8 tanh codes, rows [i; f; g; o]) and the cell C (H x N) ->
        (C', the cell's int8 codes qc for the table). Then :meth:`hidden` with T[qc]."""
        t_i, t_f, t_g, _ = np.split(np.asarray(gate_codes, np.int64), 4)
        i, f, g = TABLE_MAX + t_i, TABLE_MAX + t_f, t_g
        c_new = round_div(TABLE_MAX * f * c + (i * g << CELL_BITS), 2 * TABLE_MAX * TABLE_MAX)
        c_new = np.clip(c_new, CELL_MIN, CELL_MAX)
        qc = np.clip(round_div(c_new, 1 << (CELL_BITS - 4)), -128, 127)
        return c_new, qc

    def hidden_codes(self, gate_codes, tanh_c):
        """Hc' = clip(rint(O * Tc * Q / (254 * 127)), -Q, Q) from the o rows' table codes
        and the table codes of the cell."""
        o = TABLE_MAX + np.split(np.asarray(gate_codes, np.int64), 4)[3]
        return np.clip(round_div(o * tanh_c * self.q, 2 * TABLE_MAX * TABLE_MAX),
                       -self.q, self.q)

    def run(self, x_codes, gate_fn=None, table_fn=None, head_fn=None):
        """Integer inference over the steps of ``x_codes`` (steps, pixels, N).

        ``gate_fn(t, layer, b)`` -> the gate layer's table codes (4H x N) for B =
        [X_t; Hc]; ``table_fn(t, qc)`` -> T[qc]; ``head_fn(layer, b)`` -> the logits'
        codes. Defaults: the numpy model. Returns the logit codes (classes x N) and the
        trace [(B, gate codes, qc, Tc, Hc)] per step.
        """
        from sparsecore.sim.code_table import lookup
        from sparsecore.sim.inference import numpy_layer
        if x_codes.shape[0] == 0:
            raise ValueError("the sequence has length 0: nothing to run")
        fields = (self.acc_bits, self.mult_bits, self.shift_bits)
        gates, head = self.layers
        if gate_fn is None:
            def gate_fn(_t, layer, b):
                return lookup(numpy_layer(layer, b, *fields)[1], self.table, "int8", "int8")
        if table_fn is None:
            def table_fn(_t, qc):
                return lookup(qc, self.table, "int8", "int8")
        if head_fn is None:
            def head_fn(layer, b):
                return numpy_layer(layer, b, *fields)[1]
        n = x_codes.shape[2]
        h = np.zeros((self.hidden, n), np.int64)
        c = np.zeros((self.hidden, n), np.int64)
        trace = []
        for t in range(x_codes.shape[0]):
            b = np.concatenate([x_codes[t], h])
            codes = gate_fn(t, gates, b)
            c, qc = self.step(codes, c)
            tanh_c = table_fn(t, qc)
            h = self.hidden_codes(codes, tanh_c)
            trace.append((b, codes, qc, tanh_c, h))
        return head_fn(head, h), trace


def integer_lstm(recipe, layers, x_calib, acc_bits=32):
    """The integer form of a quantized LSTM variant; ``x_calib`` (N x 64) sets the logits'
    scale (use training images)."""
    from sparsecore.sim.gemm import matmul
    from sparsecore.sim.inference import (
        LOGIT_CODE_MAX,
        LOGIT_FORMAT,
        WEIGHT_FORMAT_OF_KIND,
        IntegerLayer,
    )
    from sparsecore.sim.requant import DEFAULT_MULT_BITS, DEFAULT_SHIFT_BITS, fixed_point_scale

    if not recipe.quantized:
        raise ValueError(f"recipe {recipe.name!r} is not quantized: weights={recipe.weights!r}")
    q = (1 << (recipe.act_bits - 1)) - 1
    int_layers = []
    for i, layer in enumerate(layers):
        codes, w_scale, _ = quantized_weights(layer, recipe.weights)
        codes = codes.astype(np.int64)
        # bias on the accumulator grid: w_scale * (1/Q), as the float training used
        bias, acc_scale = bias_codes(layer.b, float(w_scale) * ((1 << recipe.act_bits) - 1)
                                     / q, recipe.act_bits)
        m = codes.shape[0]
        if i == 0:
            # sigmoid rows (i, f, o) at half scale: T = tanh(x/2) gives sigmoid = (1+T)/2
            h = m // 4
            scale = np.full(m, acc_scale / GATE_STEP)
            scale[:2 * h] /= 2
            scale[3 * h:] /= 2
            out, relu = "int8", False
        else:
            scale = None
            out, relu = LOGIT_FORMAT, False
        if scale is None:
            net = IntegerLstm(WEIGHT_FORMAT_OF_KIND[recipe.weights], "int8", recipe.act_bits,
                              acc_bits, DEFAULT_MULT_BITS, DEFAULT_SHIFT_BITS,
                              (int_layers[0], IntegerLayer(codes, False, np.zeros(m, np.int64),
                                                           np.zeros(m, np.int64), bias, False,
                                                           out)), gate_table())
            _, trace = net.run(net.input_codes(x_calib))
            z = acc_scale * (matmul(codes, trace[-1][4], acc_bits) + bias[:, None])
            scale = np.full(m, acc_scale / (max(float(np.abs(z).max()), 1e-12)
                                            / LOGIT_CODE_MAX))
        mult, shift = fixed_point_scale(scale, DEFAULT_MULT_BITS, DEFAULT_SHIFT_BITS)
        int_layers.append(IntegerLayer(codes, layer.mask is not None, mult, shift, bias,
                                       relu, out))
    return IntegerLstm(WEIGHT_FORMAT_OF_KIND[recipe.weights], "int8", recipe.act_bits,
                       acc_bits, DEFAULT_MULT_BITS, DEFAULT_SHIFT_BITS, tuple(int_layers),
                       gate_table()).check()
