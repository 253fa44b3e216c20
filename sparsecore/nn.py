"""Training the seeds' digits networks in numpy: FP32, 2:4, WRPN 4-bit, ternary, Apprentice.

A two-layer perceptron ``inputs -> hidden (ReLU) -> 10`` trained with Adam on
softmax cross-entropy. Weights are kept as ``M x K`` matrices (output channel x
input), the orientation of the GEMM ``C = A x B`` the core computes, with the
batch as the columns of B.

A :class:`Recipe` says how a variant trains:

| field      | meaning                                                             |
|------------|---------------------------------------------------------------------|
| hidden     | hidden width (128 or 256 for the 2x-wide variant)                   |
| weights    | ``fp32``; ``int4``: WRPN 4-bit codes -7..7; ``ternary``: TWN codes  |
| act_bits   | None: float ReLU; k: WRPN k-bit activations (inputs included)       |
| sparse     | 2:4: prune the starting weights once by magnitude, mask then fixed  |
| init       | the variant whose trained weights it starts from (None: random)     |
| teacher    | distil from this variant's logits (Apprentice)                      |

Quantization-aware training uses the straight-through estimator: the forward
pass uses the quantized weights and activations, the backward pass treats the
rounding as identity (and the clipping as the clip it is).

How a quantized layer's real weights come from integer codes:

- ``int4`` (WRPN): a fixed per-layer gain ``g`` (the largest magnitude of the
  starting weights) brings the weights into WRPN's [-1, 1]; the codes are
  ``quantize_weights(w / g, 4)`` and the real weight is ``g * code / 7``.
- ``ternary`` (TWN, as Apprentice uses): ``ternarize(w)`` gives codes -1/0/1
  and one scale ``alpha`` per layer; the real weight is ``alpha * code``.
- Activations (WRPN, also the input pixels scaled to [0, 1]): clip to [0, 1],
  code = rint((2**k - 1) * a); real value code / (2**k - 1). The clip at 0 is
  the ReLU.
- Biases of a quantized layer live on its accumulator grid (the real value of
  one accumulator unit, weight scale x activation step), as the integer
  inference adds them to the accumulators; training already uses the rounded
  bias, so the float forward pass and the integer inference agree.

Every function takes an ``np.random.Generator`` where it needs randomness and
is otherwise deterministic, to the bit and on every machine: the matrix
products, ``exp`` and ``cos`` come from :mod:`sparsecore.sim.reproducible` (exact integer
sums in float64, operands rounded to 22-24 bits per row/column), not from the
BLAS and C library, whose results depend on the CPU they run on.
"""

from dataclasses import dataclass

import numpy as np

from sparsecore.sim.quantize import bias_codes, quantize_activations, quantized_weights
from sparsecore.sim.reproducible import cos, exp, matmul
from sparsecore.sim.sparsity import prune_2to4

__all__ = [
    "Recipe", "Layer", "load_digits_split", "init_mlp", "prepare", "prepare_layers",
    "quantized_weights",
    "bias_codes", "forward", "backward",
    "train", "accuracy", "RECIPES", "train_all",
]

WEIGHT_KINDS = ("fp32", "int4", "ternary")


@dataclass(frozen=True)
class Recipe:
    """How one variant is trained (see the module docstring)."""

    name: str
    hidden: int = 128
    weights: str = "fp32"
    act_bits: int | None = None
    sparse: bool = False
    init: str | None = None
    teacher: str | None = None
    description: str = ""

    def __post_init__(self):
        if self.weights not in WEIGHT_KINDS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHT_KINDS)}, "
                             f"not {self.weights!r}")
        if (self.weights == "fp32") != (self.act_bits is None):
            raise ValueError(f"recipe {self.name!r}: quantize weights and activations together "
                             f"(weights={self.weights!r}, act_bits={self.act_bits!r})")

    @property
    def quantized(self):
        return self.weights != "fp32"


@dataclass
class Layer:
    """One fully connected layer: ``z = A_real x a + b`` with A M x K (channels x inputs).

    ``w`` holds the latent float weights; ``gain`` is the int4 layer's fixed
    WRPN gain; ``mask`` the fixed 2:4 mask (None when dense).
    """

    w: np.ndarray
    b: np.ndarray
    gain: float = 1.0
    mask: np.ndarray | None = None


def load_digits_split(test_fraction=0.3, seed=0):
    """scikit-learn's 8 x 8 digits, pixels scaled to [0, 1], split by a fixed permutation.

    Returns ``(x_train, y_train, x_test, y_test)`` with x as float64 N x 64.
    The split is stratified: each class gives the same fraction to the test set.
    """
    from sklearn.datasets import load_digits  # the demo extra; the rest of sim needs no sklearn

    digits = load_digits()
    x = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        test[idx[:round(test_fraction * len(idx))]] = True
    return x[~test], y[~test], x[test], y[test]


def init_mlp(rng, inputs, hidden, classes):
    """He-uniform weights, zero biases."""
    layers = []
    for fan_in, fan_out in ((inputs, hidden), (hidden, classes)):
        limit = np.sqrt(6.0 / fan_in)
        layers.append(Layer(rng.uniform(-limit, limit, (fan_out, fan_in)), np.zeros(fan_out)))
    return layers


def _layer_params(layer, recipe):
    """(real weights, real bias, ste) that the forward pass uses."""
    codes, scale, ste = quantized_weights(layer, recipe.weights)
    if codes is None:
        return (layer.w if layer.mask is None else layer.w * layer.mask), layer.b, ste
    if scale == 0:  # every weight is zero: there is no accumulator grid, keep the bias
        return np.zeros_like(layer.w), layer.b, ste
    codes_b, step = bias_codes(layer.b, scale, recipe.act_bits)
    return scale * codes, step * codes_b, ste


def _quantize_acts(a, bits):
    codes, scale = quantize_activations(a, bits)
    return codes * scale


def forward(layers, recipe, x):
    """Logits (N x classes) and what backprop needs, for inputs x (N x inputs) in [0, 1]."""
    bits = recipe.act_bits
    a = x if bits is None else _quantize_acts(x, bits)
    cache = []
    for i, layer in enumerate(layers):
        w, b, ste = _layer_params(layer, recipe)
        z = matmul(a, w.T) + b
        cache.append((a, w, ste, z))
        if i + 1 < len(layers):
            a = np.maximum(z, 0.0) if bits is None else _quantize_acts(z, bits)
    return z, cache


def _softmax(z):
    e = exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def accuracy(layers, recipe, x, y):
    logits, _ = forward(layers, recipe, x)
    return float((logits.argmax(axis=1) == y).mean())


def _copy(layers):
    return [Layer(lay.w.copy(), lay.b.copy(), lay.gain,
                  None if lay.mask is None else lay.mask.copy()) for lay in layers]


def prepare(recipe, start, rng, inputs, classes):
    """The layers a recipe starts training from: random, or a copy of ``start``,
    pruned to 2:4 (mask fixed) and given its WRPN gain as the recipe says."""
    return prepare_layers(recipe, start, lambda: init_mlp(rng, inputs, recipe.hidden, classes))


def prepare_layers(recipe, start, init):
    """``init()`` (random layers) or a copy of ``start``, then the recipe's fixed 2:4 mask
    and WRPN gain on each layer: the start of every network's training (MLP, CNN, LSTM)."""
    layers = init() if start is None else _copy(start)
    for layer in layers:
        if recipe.sparse and layer.mask is None:
            layer.mask = (prune_2to4(layer.w) != 0).astype(np.float64)
            layer.w = layer.w * layer.mask
        if recipe.weights == "int4":
            layer.gain = float(np.abs(layer.w).max())
    return layers


def backward(cache, grad, recipe):
    """[(dW, db)] per layer from d loss / d logits (N x classes) and :func:`forward`'s
    cache (straight-through: ``ste`` on the weights, the clip's gradient on quantized
    activations). Weights of the cache are those of the forward pass, so updating a
    layer after its gradient is taken does not change the layers below."""
    grads = [None] * len(cache)
    for i in reversed(range(len(cache))):
        a, w, ste, _ = cache[i]
        grads[i] = (matmul(grad.T, a) * ste, grad.sum(axis=0))
        if i > 0:
            back = matmul(grad, w)
            prev_z = cache[i - 1][3]
            if recipe.act_bits is None:
                grad = back * (prev_z > 0)
            else:
                grad = back * ((prev_z > 0) & (prev_z < 1))  # the clip's gradient
    return grads


def train(layers, recipe, x, y, rng, epochs=40, batch=32, lr=3e-3, teacher_logits=None,
          distill_weight=0.5, temperature=1.0):
    """Adam on softmax cross-entropy with a cosine learning-rate decay; updates ``layers``.

    With ``teacher_logits`` (N x classes, one row per training example) the loss is
    ``(1 - distill_weight) * CE(labels) + distill_weight * T**2 * KL(teacher_T || student_T)``.
    The defaults are Apprentice's: the student's two terms weighted 0.5 each, T = 1.
    Masked weights stay zero.
    """
    n = len(y)
    classes = layers[-1].w.shape[0]
    onehot = np.eye(classes)[y]
    moments = [[np.zeros_like(p) for p in (lay.w, lay.b)] for lay in layers]
    squares = [[np.zeros_like(p) for p in (lay.w, lay.b)] for lay in layers]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    steps_per_epoch = -(-n // batch)
    total = epochs * steps_per_epoch
    step = 0
    decay1 = decay2 = 1.0  # beta1**step, beta2**step by products: no libm pow
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            logits, cache = forward(layers, recipe, x[idx])
            grad = (_softmax(logits) - onehot[idx]) / len(idx)
            if teacher_logits is not None:
                soft = (_softmax(logits / temperature)
                        - _softmax(teacher_logits[idx] / temperature)) / len(idx)
                grad = (1 - distill_weight) * grad + distill_weight * temperature * soft
            step += 1
            decay1, decay2 = decay1 * beta1, decay2 * beta2
            rate = lr * 0.5 * (1 + cos(np.pi * (step - 1) / total))
            all_grads = backward(cache, grad, recipe)
            for i in reversed(range(len(layers))):
                layer = layers[i]
                for j, (param, g) in enumerate(zip((layer.w, layer.b), all_grads[i],
                                                   strict=True)):
                    moments[i][j] = beta1 * moments[i][j] + (1 - beta1) * g
                    squares[i][j] = beta2 * squares[i][j] + (1 - beta2) * g * g
                    m_hat = moments[i][j] / (1 - decay1)
                    v_hat = squares[i][j] / (1 - decay2)
                    param -= rate * m_hat / (np.sqrt(v_hat) + eps)
                if layer.mask is not None:
                    layer.w *= layer.mask
    return layers


RECIPES = (
    Recipe("fp32", description="FP32 dense"),
    Recipe("fp32_2x", hidden=256, description="FP32 dense, 2x wide"),
    Recipe("fp32_2to4", sparse=True, init="fp32",
           description="FP32, pruned 2:4 once by magnitude, mask fixed, retrained"),
    Recipe("int4", weights="int4", act_bits=4, init="fp32",
           description="WRPN 4-bit weights and activations"),
    Recipe("int4_2x", hidden=256, weights="int4", act_bits=4, init="fp32_2x",
           description="WRPN 4-bit, 2x wide"),
    Recipe("ternary", weights="ternary", act_bits=4, init="fp32",
           description="ternary weights, 4-bit activations"),
    Recipe("ternary_2x", hidden=256, weights="ternary", act_bits=4, init="fp32_2x",
           description="ternary weights, 4-bit activations, 2x wide"),
    Recipe("ternary_apprentice", weights="ternary", act_bits=4, init="fp32", teacher="fp32_2x",
           description="ternary, distilled from the FP32 2x-wide teacher (Apprentice)"),
    Recipe("int4_2to4", weights="int4", act_bits=4, sparse=True, init="fp32_2to4",
           description="2:4 and WRPN 4-bit"),
    Recipe("ternary_2to4", weights="ternary", act_bits=4, sparse=True, init="fp32_2to4",
           description="2:4 and ternary, 4-bit activations"),
)


def train_all(x_train, y_train, x_test, y_test, rng, recipes=RECIPES, epochs=40, log=None):
    """Train every recipe in order (a recipe's ``init`` and ``teacher`` come first).

    Returns ``{name: (recipe, layers, test_accuracy)}``.
    """
    trained = {}
    classes = int(y_train.max()) + 1
    for recipe in recipes:
        start = trained[recipe.init][1] if recipe.init else None
        layers = prepare(recipe, start, rng, x_train.shape[1], classes)
        teacher = None
        if recipe.teacher:
            t_recipe, t_layers, _ = trained[recipe.teacher]
            teacher = forward(t_layers, t_recipe, x_train)[0]
        train(layers, recipe, x_train, y_train, rng, epochs=epochs, teacher_logits=teacher)
        acc = accuracy(layers, recipe, x_test, y_test)
        trained[recipe.name] = (recipe, layers, acc)
        if log:
            log(f"{recipe.name}: test accuracy {acc:.4f}")
    return trained
