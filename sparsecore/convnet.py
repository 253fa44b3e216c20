"""A small CNN on the 8 x 8 digits, trained in numpy; convolutions as GEMMs through im2col.

Network (``width`` w scales the filter counts, WRPN's widening)::

    8x8x1 --conv 3x3, 4w filters, ReLU--> 6x6x4w --conv 3x3, 8w filters, ReLU--> 4x4x8w
          --fully connected--> 10 logits

No padding, stride 1. Every layer is a GEMM ``C = A x B`` the core can run:

- a convolution's A is its filters, ``C_out x (C_in * 3 * 3)``, and B is
  :func:`im2col` of its input, ``(C_in * 3 * 3) x (images * H_out * W_out)``:
  row ``(c, dy, dx)``, column ``(image, y, x)``; C's column ``(image, y, x)`` is
  output pixel (y, x) of that image, so C reshapes straight back into feature
  maps (:func:`to_maps`);
- the classifier's B is the feature maps flattened per image
  (``(c, y, x)`` order), one column per image.

2:4 applies along A's rows, i.e. across ``(c, dy, dx)``: four consecutive
taps of one filter. Training (STE quantization, WRPN 4-bit, TWN ternary,
fixed 2:4 masks, Apprentice distillation) follows ``sparsecore/nn.py``, whose helpers
it uses; only the layer shapes and the im2col plumbing differ. As there, every matrix
product, ``exp`` and ``cos`` of training comes from :mod:`sparsecore.sim.reproducible`,
so the trained weights are the same bits on every machine, BLAS kernel and thread count.
"""

from dataclasses import dataclass

import numpy as np

from sparsecore.nn import Layer, _layer_params, _quantize_acts, _softmax, prepare_layers
from sparsecore.sim.reproducible import cos, matmul

__all__ = ["IMAGE", "KERNEL", "ConvRecipe", "im2col", "col2im", "to_maps", "init_convnet",
           "prepare_convnet", "forward", "train", "accuracy", "conv_shapes", "IntegerConvNet",
           "integer_convnet"]

IMAGE = 8
KERNEL = 3
BASE_FILTERS = (4, 8)   # the 1x network's filter counts


def conv_shapes(width):
    """(C1, C2) filters at ``width`` x."""
    return tuple(width * c for c in BASE_FILTERS)


@dataclass(frozen=True)
class ConvRecipe:
    """How one CNN variant is trained (the fields of :class:`sparsecore.nn.Recipe`, with
    ``width`` the filter multiplier instead of a hidden width).

    ``scratch``: a distilled student starts from random weights (Apprentice
    scheme B) instead of the trained FP32 net of its width (scheme C).
    """

    name: str
    width: int = 1
    weights: str = "fp32"
    act_bits: int | None = None
    sparse: bool = False
    init: str | None = None
    teacher: str | None = None
    scratch: bool = False
    epochs: int | None = None
    description: str = ""

    @property
    def quantized(self):
        return self.weights != "fp32"


def im2col(x, k=KERNEL):
    """(N, C, H, W) -> (C*k*k, N*Ho*Wo) columns of k x k patches (valid, stride 1).

    Rows are ``(c, dy, dx)``, columns ``(n, y, x)``. A kernel larger than the input is
    refused (ValueError); works on integer and real arrays alike (it only moves data).
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must be a 4-D array (images, channels, height, width), "
                         f"not shape {x.shape}")
    n, c, h, w = x.shape
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"kernel must be a positive integer, not {k!r}")
    if k > h or k > w:
        raise ValueError(f"kernel {k}x{k} is larger than the input {h}x{w}")
    ho, wo = h - k + 1, w - k + 1
    cols = np.empty((c, k, k, n, ho, wo), dtype=x.dtype)
    for dy in range(k):
        for dx in range(k):
            cols[:, dy, dx] = x[:, :, dy:dy + ho, dx:dx + wo].transpose(1, 0, 2, 3)
    return cols.reshape(c * k * k, n * ho * wo)


def col2im(cols, shape, k=KERNEL):
    """The adjoint of :func:`im2col`: columns back onto an (N, C, H, W) array, overlaps summed."""
    n, c, h, w = shape
    ho, wo = h - k + 1, w - k + 1
    cols = cols.reshape(c, k, k, n, ho, wo)
    x = np.zeros((c, n, h, w), dtype=cols.dtype)
    for dy in range(k):
        for dx in range(k):
            x[:, :, dy:dy + ho, dx:dx + wo] += cols[:, dy, dx]
    return x.transpose(1, 0, 2, 3)


def to_maps(z, images):
    """A conv GEMM's C, (C_out, images*Ho*Wo), as square feature maps (images, C_out, Ho, Wo)."""
    m, p = z.shape
    side = int(round(np.sqrt(p // images)))
    return z.reshape(m, images, side, side).transpose(1, 0, 2, 3)


def init_convnet(rng, width, classes=10):
    """He-uniform weights, zero biases: conv1, conv2, classifier (all A matrices M x K)."""
    c1, c2 = conv_shapes(width)
    side = IMAGE - 2 * (KERNEL - 1)
    layers = []
    for fan_in, fan_out in ((KERNEL * KERNEL, c1), (KERNEL * KERNEL * c1, c2),
                            (side * side * c2, classes)):
        limit = np.sqrt(6.0 / fan_in)
        layers.append(Layer(rng.uniform(-limit, limit, (fan_out, fan_in)), np.zeros(fan_out)))
    return layers


def prepare_convnet(recipe, start, rng, classes=10):
    """Random layers or a copy of ``start``; 2:4 masks and WRPN gains as nn.prepare gives."""
    return prepare_layers(recipe, start, lambda: init_convnet(rng, recipe.width, classes))


def _act(z, bits):
    return np.maximum(z, 0.0) if bits is None else _quantize_acts(z, bits)


def forward(layers, recipe, x):
    """Logits (N x classes) and the cache backprop needs, for images x (N x 64) in [0, 1]."""
    bits = recipe.act_bits
    n = len(x)
    a = (x if bits is None else _quantize_acts(x, bits)).reshape(n, 1, IMAGE, IMAGE)
    cache = []
    for i, layer in enumerate(layers):
        w, b, ste = _layer_params(layer, recipe)
        last = i + 1 == len(layers)
        cols = a.reshape(n, -1).T if last else im2col(a)
        z = matmul(w, cols) + b[:, None]
        cache.append((cols, w, ste, z, a.shape))
        if not last:
            a = to_maps(_act(z, bits), n)
    return z.T, cache


def accuracy(layers, recipe, x, y):
    return float((forward(layers, recipe, x)[0].argmax(axis=1) == y).mean())


def _backward(cache, grad, recipe):
    """Gradients [(dW, db)] per layer from d loss / d logits (N x classes)."""
    n = grad.shape[0]
    gz = grad.T
    grads = [None] * len(cache)
    for i in reversed(range(len(cache))):
        cols, w, ste, z, in_shape = cache[i]
        grads[i] = (matmul(gz, cols.T) * ste, gz.sum(axis=1))
        if i == 0:
            break
        back = matmul(w.T, gz)
        last = i + 1 == len(cache)
        back = back.T.reshape(in_shape) if last else col2im(back, in_shape)
        prev_z = to_maps(cache[i - 1][3], n)
        if recipe.act_bits is None:
            back = back * (prev_z > 0)
        else:
            back = back * ((prev_z > 0) & (prev_z < 1))  # the clip's gradient
        gz = back.transpose(1, 0, 2, 3).reshape(back.shape[1], -1)
    return grads


class _Adam:
    def __init__(self, layers, lr, total):
        self.layers = layers
        self.m = [[np.zeros_like(p) for p in (lay.w, lay.b)] for lay in layers]
        self.v = [[np.zeros_like(p) for p in (lay.w, lay.b)] for lay in layers]
        self.lr, self.total, self.step_count = lr, total, 0
        self.decay1 = self.decay2 = 1.0  # 0.9**t, 0.999**t by products: no libm pow

    def step(self, grads):
        self.step_count += 1
        t = self.step_count
        self.decay1, self.decay2 = self.decay1 * 0.9, self.decay2 * 0.999
        rate = self.lr * 0.5 * (1 + cos(np.pi * (t - 1) / self.total))
        for i, layer in enumerate(self.layers):
            for j, (param, g) in enumerate(zip((layer.w, layer.b), grads[i], strict=True)):
                self.m[i][j] = 0.9 * self.m[i][j] + 0.1 * g
                self.v[i][j] = 0.999 * self.v[i][j] + 0.001 * g * g
                m_hat = self.m[i][j] / (1 - self.decay1)
                v_hat = self.v[i][j] / (1 - self.decay2)
                param -= rate * m_hat / (np.sqrt(v_hat) + 1e-8)
            if layer.mask is not None:
                layer.w *= layer.mask


def _loss_grad(logits, onehot, teacher, distill_weight, temperature):
    """d loss / d logits: CE with the labels, plus Apprentice's distillation term."""
    n = len(logits)
    grad = (_softmax(logits) - onehot) / n
    if teacher is not None:
        soft = (_softmax(logits / temperature) - _softmax(teacher / temperature)) / n
        grad = (1 - distill_weight) * grad + distill_weight * temperature * soft
    return grad


def train(layers, recipe, x, y, rng, epochs=20, batch=32, lr=3e-3, teacher_logits=None,
          distill_weight=0.5, temperature=1.0, forward_fn=forward, backward_fn=None,
          joint_teacher=None):
    """Adam, cosine learning rate, softmax cross-entropy; updates ``layers`` in place.

    ``teacher_logits`` (N x classes): Apprentice's fixed teacher (schemes B, C).
    ``joint_teacher`` = (teacher layers, teacher recipe): Apprentice scheme A, the
    teacher trained in the same loop on its labels, the student distilled from the
    teacher's current logits (the distillation term updates the student only).
    ``forward_fn``/``backward_fn``: the network's passes (default: this CNN's).
    """
    backward_fn = backward_fn or _backward
    n = len(y)
    onehot = np.eye(layers[-1].w.shape[0])[y]
    total = epochs * -(-n // batch)
    opt = _Adam(layers, lr, total)
    t_opt = _Adam(joint_teacher[0], lr, total) if joint_teacher else None
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            teacher = None if teacher_logits is None else teacher_logits[idx]
            if joint_teacher:
                t_layers, t_recipe = joint_teacher
                t_logits, t_cache = forward_fn(t_layers, t_recipe, x[idx])
                t_opt.step(backward_fn(t_cache, _loss_grad(t_logits, onehot[idx], None, 0, 1),
                                       t_recipe))
                teacher = t_logits
            logits, cache = forward_fn(layers, recipe, x[idx])
            grad = _loss_grad(logits, onehot[idx], teacher, distill_weight, temperature)
            opt.step(backward_fn(cache, grad, recipe))
    return layers


# -- integer inference --------------------------------------------------------------------

@dataclass(frozen=True)
class IntegerConvNet:
    """The integer form of a quantized CNN: :class:`sim.inference.IntegerLayer` per layer
    (conv1, conv2, classifier) and the formats and output-stage fields they share."""

    weights: str
    acts: str
    act_bits: int
    acc_bits: int
    mult_bits: int
    shift_bits: int
    layers: tuple

    def input_maps(self, x):
        """Images in [0, 1] (N x 64) -> activation codes as maps (N, 1, 8, 8)."""
        from sparsecore.sim.quantize import quantize_activations
        return quantize_activations(x, self.act_bits)[0].reshape(len(x), 1, IMAGE, IMAGE)

    def check(self, weights=None, acts=None, acc_bits=None):
        """Refuse (ValueError) a net the given core cannot run or whose shapes do not chain:
        formats, 2:4 marks, per-channel fields, conv2's K = 9 x conv1's filters, the
        classifier's K = 4 x 4 x conv2's filters."""
        from sparsecore.sim.inference import IntegerNetwork
        # formats, fields and per-layer checks of the fully connected case, layer by layer
        for i, layer in enumerate(self.layers):
            IntegerNetwork(self.weights, self.acts, self.act_bits, self.acc_bits,
                           self.mult_bits, self.shift_bits, (layer,)).check(
                               weights, acts, acc_bits)
            if i + 1 < len(self.layers) and layer.out != self.acts:
                raise ValueError(f"layer {i} outputs {layer.out} but the next layer takes "
                                 f"{self.acts} activations")
        c1, c2, fc = (layer.shape for layer in self.layers)
        side = IMAGE - 2 * (KERNEL - 1)
        for name, k, want in (("conv1", c1[1], KERNEL * KERNEL),
                              ("conv2", c2[1], KERNEL * KERNEL * c1[0]),
                              ("classifier", fc[1], side * side * c2[0])):
            if k != want:
                raise ValueError(f"{name} takes K={k} inputs but the layer before gives "
                                 f"{want}")
        return self

    def run(self, maps, layer_fn=None):
        """Integer inference of input maps (N, 1, 8, 8); ``layer_fn(i, layer, b) -> codes``
        runs layer i's GEMM and output stage on B (default: the numpy model,
        :func:`sim.inference.numpy_layer`). Returns [(B, out codes)] per layer; the last
        out is the logits' codes, classes x N."""
        from sparsecore.sim.inference import numpy_layer
        if layer_fn is None:
            def layer_fn(_i, layer, b):
                return numpy_layer(layer, b, self.acc_bits, self.mult_bits,
                                   self.shift_bits)[1]
        n = len(maps)
        trace = []
        a = maps
        for i, layer in enumerate(self.layers):
            last = i + 1 == len(self.layers)
            b = a.reshape(n, -1).T.copy() if last else im2col(a)
            out = layer_fn(i, layer, b)
            trace.append((b, out))
            if not last:
                a = to_maps(out, n)
        return trace


def integer_convnet(recipe, layers, x_calib, acc_bits=32, mult_bits=None, shift_bits=None):
    """The integer form of a quantized CNN variant; ``x_calib`` (N x 64) sets the logits'
    scale (use training images), as :func:`sim.inference.integer_network` does for MLPs."""
    from sparsecore.sim.inference import (
        ACT_FORMAT_OF_BITS,
        LOGIT_CODE_MAX,
        LOGIT_FORMAT,
        WEIGHT_FORMAT_OF_KIND,
        IntegerLayer,
        numpy_layer,
    )
    from sparsecore.sim.quantize import bias_codes, quantized_weights
    from sparsecore.sim.requant import DEFAULT_MULT_BITS, DEFAULT_SHIFT_BITS, fixed_point_scale

    mult_bits = mult_bits or DEFAULT_MULT_BITS
    shift_bits = shift_bits or DEFAULT_SHIFT_BITS
    if not recipe.quantized:
        raise ValueError(f"recipe {recipe.name!r} is not quantized: weights={recipe.weights!r}")
    act_bits = recipe.act_bits
    acts = ACT_FORMAT_OF_BITS[act_bits]
    x_step = 1.0 / ((1 << act_bits) - 1)
    int_layers = []
    shell = IntegerConvNet(WEIGHT_FORMAT_OF_KIND[recipe.weights], acts, act_bits, acc_bits,
                           mult_bits, shift_bits, ())
    a = shell.input_maps(x_calib)
    n = len(x_calib)
    for i, layer in enumerate(layers):
        codes, w_scale, _ = quantized_weights(layer, recipe.weights)
        codes = codes.astype(np.int64)
        bias, acc_scale = bias_codes(layer.b, float(w_scale), act_bits)
        last = i + 1 == len(layers)
        b = a.reshape(n, -1).T.copy() if last else im2col(a)
        if last:
            from sparsecore.sim.gemm import matmul
            z = acc_scale * (matmul(codes, b, acc_bits) + bias[:, None])
            out_scale = max(float(np.abs(z).max()), 1e-12) / LOGIT_CODE_MAX
            out, relu = LOGIT_FORMAT, False
        else:
            out_scale, out, relu = x_step, acts, True
        mult, shift = fixed_point_scale(np.full(codes.shape[0], acc_scale / out_scale),
                                        mult_bits, shift_bits)
        int_layer = IntegerLayer(codes, layer.mask is not None, mult, shift, bias, relu, out)
        int_layers.append(int_layer)
        if not last:
            a = to_maps(numpy_layer(int_layer, b, acc_bits, mult_bits, shift_bits)[1], n)
    net = IntegerConvNet(shell.weights, acts, act_bits, acc_bits, mult_bits, shift_bits,
                         tuple(int_layers))
    return net.check()
