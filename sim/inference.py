"""Integer inference of a quantized network: integer GEMMs and output stages, layer by layer.

A quantized network from :mod:`sparsecore.nn` becomes an :class:`IntegerNetwork`:
each layer is an integer GEMM of weight codes (M x K) by activation codes
(K x N, one column per image) into ``acc_bits`` accumulators, then the
output stage of :mod:`sim.requant`, which rescales each output channel with a
fixed-point multiplier and shift, adds the bias, applies ReLU and rounds and
clips to the next layer's activation format.

Scales, for a layer with real weights ``s_w * codes`` and input activations
``s_x * codes``::

    real pre-activation z = s_w * s_x * (acc + bias_int),  bias_int = rint(b / (s_w * s_x))
                            (sparsecore.nn trains with this rounded bias already)
    hidden layer:  out code = clip(rint(z / s_y), 0, 2**k - 1)   (s_y = the WRPN step 1/(2**k-1))
                   -> scale s_w * s_x / s_y, ReLU on, format = the activation format
    last layer:    int8 logits, out code = clip(rint(z / s_out), -128, 127), ReLU off,
                   s_out = (largest |z| on the calibration inputs) / LOGIT_CODE_MAX

The prediction is the argmax of the last layer's codes (the first index on a tie).
"""

from dataclasses import dataclass

import numpy as np

from sparsecore.sim.formats import get_format
from sparsecore.sim.gemm import matmul, sparse_matmul
from sparsecore.sim.quantize import bias_codes, quantize_activations, quantized_weights
from sparsecore.sim.requant import (
    DEFAULT_MULT_BITS,
    DEFAULT_SHIFT_BITS,
    check_fields,
    fixed_point_scale,
    requantize,
)
from sparsecore.sim.sparsity import compress_2to4, is_2to4

__all__ = ["IntegerLayer", "IntegerNetwork", "LOGIT_FORMAT", "integer_network",
           "numpy_gemm", "numpy_output_stage", "numpy_layer", "run_network", "predict"]

LOGIT_FORMAT = "int8"
# Leave headroom over the calibration set's largest logit so that test logits rarely clip.
LOGIT_CODE_MAX = 96
# Which core format holds a recipe's codes (sparsecore.nn's weight kinds, WRPN activation bits).
ACT_FORMAT_OF_BITS = {4: "uint4", 8: "uint8"}
WEIGHT_FORMAT_OF_KIND = {"int4": "int4", "ternary": "ternary"}


@dataclass(frozen=True)
class IntegerLayer:
    """One layer: integer weight codes and its output stage's per-channel parameters."""

    weights: np.ndarray  # M x K weight values (codes -7..7 or -1/0/1), int64
    sparse: bool         # weights are 2:4: the core runs this layer in sparse mode
    mult: np.ndarray     # (M,) output stage multipliers
    shift: np.ndarray    # (M,) output stage right shifts
    bias: np.ndarray     # (M,) biases in accumulator units
    relu: bool
    out: str             # activation format of the output codes

    @property
    def shape(self):
        return self.weights.shape


@dataclass(frozen=True)
class IntegerNetwork:
    """A network the core plus output stage can run: formats, field widths and layers."""

    weights: str   # weight format name
    acts: str      # activation format of the inputs and the hidden layers
    act_bits: int  # WRPN activation bits (input quantization)
    acc_bits: int
    mult_bits: int
    shift_bits: int
    layers: tuple

    def input_codes(self, x):
        """Inputs in [0, 1] (N x features) -> activation codes, K x N (one column per image)."""
        return quantize_activations(x, self.act_bits)[0].T.copy()

    def check(self, weights=None, acts=None, acc_bits=None):
        """Refuse, with a ValueError, a network the given core cannot run or whose shapes
        do not chain; ``weights``/``acts``/``acc_bits`` are the core's (None: not checked)."""
        if weights is not None and weights != self.weights:
            raise ValueError(f"the network has {self.weights} weights but the core was built "
                             f"for {weights} weights")
        if acts is not None and acts != self.acts:
            raise ValueError(f"the network has {self.acts} activations but the core was built "
                             f"for {acts} activations")
        if acc_bits is not None and acc_bits != self.acc_bits:
            raise ValueError(f"the network's output stages take acc_bits={self.acc_bits} but "
                             f"the core has acc_bits={acc_bits}")
        check_fields(self.acc_bits, self.mult_bits, self.shift_bits)
        wfmt = get_format(self.weights, "weights")
        get_format(self.acts, "acts")
        for i, layer in enumerate(self.layers):
            wfmt.check(layer.weights, f"layer {i} weights")
            if layer.sparse and not is_2to4(layer.weights):
                raise ValueError(f"layer {i} is marked sparse but its weights are not 2:4")
            m, k = layer.shape
            for name in ("mult", "shift", "bias"):
                if getattr(layer, name).shape != (m,):
                    raise ValueError(f"layer {i} {name} must have shape ({m},), not "
                                     f"{getattr(layer, name).shape}")
            if i > 0:
                prev_m = self.layers[i - 1].shape[0]
                if k != prev_m:
                    raise ValueError(f"layer shapes do not chain: layer {i - 1} gives {prev_m} "
                                     f"outputs but layer {i} takes {k} inputs")
            last = i + 1 == len(self.layers)
            if not last and layer.out != self.acts:
                raise ValueError(f"layer {i} outputs {layer.out} but the next layer takes "
                                 f"{self.acts} activations")
            get_format(layer.out, "acts")
        return self


def _weight_codes(layer, kind):
    codes, scale, _ = quantized_weights(layer, kind)
    return codes.astype(np.int64), float(scale)


def integer_network(recipe, layers, x_calib, acc_bits=32, mult_bits=DEFAULT_MULT_BITS,
                    shift_bits=DEFAULT_SHIFT_BITS):
    """The integer form of a quantized variant trained by :mod:`sparsecore.nn`.

    ``x_calib`` (N x features, in [0, 1]) sets the logits' scale; use training data.
    """
    if not recipe.quantized:
        raise ValueError(f"recipe {recipe.name!r} is not quantized: weights={recipe.weights!r}")
    act_bits = recipe.act_bits
    if act_bits not in ACT_FORMAT_OF_BITS:
        raise ValueError(f"act_bits must be one of {', '.join(map(str, ACT_FORMAT_OF_BITS))}, "
                         f"not {act_bits!r}")
    x_step = 1.0 / ((1 << act_bits) - 1)
    codes_in = quantize_activations(x_calib, act_bits)[0].T
    int_layers = []
    for i, layer in enumerate(layers):
        codes, w_scale = _weight_codes(layer, recipe.weights)
        bias, acc_scale = bias_codes(layer.b, w_scale, act_bits)  # acc_scale: one acc unit
        last = i + 1 == len(layers)
        if last:
            z = acc_scale * (matmul(codes, codes_in, acc_bits) + bias[:, None])
            out_scale = max(float(np.abs(z).max()), 1e-12) / LOGIT_CODE_MAX
            out, relu = LOGIT_FORMAT, False
        else:
            out_scale, out, relu = x_step, ACT_FORMAT_OF_BITS[act_bits], True
        mult, shift = fixed_point_scale(np.full(codes.shape[0], acc_scale / out_scale),
                                        mult_bits, shift_bits)
        int_layer = IntegerLayer(codes, layer.mask is not None, mult, shift, bias, relu, out)
        int_layers.append(int_layer)
        if not last:
            codes_in = numpy_output_stage(int_layer, matmul(codes, codes_in, acc_bits),
                                          acc_bits, mult_bits, shift_bits)
    net = IntegerNetwork(WEIGHT_FORMAT_OF_KIND[recipe.weights], ACT_FORMAT_OF_BITS[act_bits],
                         act_bits, acc_bits, mult_bits, shift_bits, tuple(int_layers))
    return net.check()


def numpy_gemm(layer, x_codes, acc_bits, dense=False):
    """The layer's accumulators from the numpy model: sparse_matmul of the compressed
    weights for a 2:4 layer (unless ``dense``), matmul otherwise."""
    if layer.sparse and not dense:
        values, meta = compress_2to4(layer.weights)
        return sparse_matmul(values, meta, x_codes, acc_bits)
    return matmul(layer.weights, x_codes, acc_bits)


def numpy_output_stage(layer, acc, acc_bits, mult_bits, shift_bits):
    return requantize(acc, layer.mult, layer.shift, layer.bias, layer.out, layer.relu,
                      acc_bits, mult_bits, shift_bits)


def numpy_layer(layer, x_codes, acc_bits, mult_bits, shift_bits, dense=False):
    """One layer as the fused hardware layer (``hw/layer.py``) computes it:
    ``(acc, out_codes)`` = :func:`numpy_gemm`, then :func:`numpy_output_stage` on it."""
    acc = numpy_gemm(layer, x_codes, acc_bits, dense)
    return acc, numpy_output_stage(layer, acc, acc_bits, mult_bits, shift_bits)


def run_network(net, x_codes, dense=False):
    """The numpy model, layer by layer: :func:`numpy_layer`.

    ``x_codes``: K x N input activation codes (:meth:`IntegerNetwork.input_codes`).
    Returns the list of ``(acc, out_codes)`` per layer; the last out holds the
    logits' codes. The RTL runs (``verif/workflow.py``) compare with this, layer by layer.
    """
    trace = []
    for layer in net.layers:
        acc, x_codes = numpy_layer(layer, x_codes, net.acc_bits, net.mult_bits, net.shift_bits,
                                   dense)
        trace.append((acc, x_codes))
    return trace


def predict(logit_codes):
    """Class per column of the last layer's codes (argmax; the first index on a tie)."""
    return np.argmax(logit_codes, axis=0)
