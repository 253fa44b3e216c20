"""Quantizers of the seed papers (SPEC §2): WRPN weights and activations, TWN ternary.

Each returns integer codes (int64) and a scale: the real value is
``scale * code``. Rounding is half to even (``np.rint``) everywhere, so
0.5 -> 0 and 1.5 -> 2.

Which hardware format holds the codes:

| quantizer                        | codes         | format    |
|----------------------------------|---------------|-----------|
| ``quantize_weights(w, 2)``       | -1..1         | `ternary` |
| ``quantize_weights(w, 3..4)``    | -3..3, -7..7  | `int4`    |
| ``quantize_weights(w, 5..8)``    | up to -127..127 | `int8`  |
| ``ternarize(w)``                 | -1, 0, 1      | `ternary` |
| ``quantize_activations(a, 1..4)``| 0..15 at most | `uint4`   |
| ``quantize_activations(a, 5..8)``| 0..255 at most| `uint8`   |
"""

import numpy as np

from sparsecore.sim.arith import check_real_array

__all__ = ["quantize_weights", "quantize_activations", "ternarize", "quantized_weights",
           "bias_codes"]


def _check_bits(bits, lo, hi):
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not lo <= bits <= hi:
        raise ValueError(f"bits must be an integer in {lo}..{hi}, not {bits!r}")
    return int(bits)


def _real(values, what):
    """``values`` as float64; refuse bool, complex, non-numeric, NaN and infinities."""
    arr = check_real_array(values, what).astype(np.float64)
    bad = np.argwhere(~np.isfinite(arr))
    if len(bad):
        idx = tuple(int(i) for i in bad[0])
        raise ValueError(f"{what}: non-finite value {arr[idx]} at index {idx}")
    return arr


def quantize_weights(w, bits):
    """WRPN weights: clip to [-1, 1], code = rint((2**(bits-1) - 1) * w).

    ``bits`` in 2..8. Returns ``(codes, scale)`` with scale = 1 / (2**(bits-1) - 1);
    codes are symmetric, so the format's most negative code never comes out.
    """
    bits = _check_bits(bits, 2, 8)
    levels = (1 << (bits - 1)) - 1
    codes = np.rint(np.clip(_real(w, "w"), -1.0, 1.0) * levels).astype(np.int64)
    return codes, 1.0 / levels


def quantize_activations(a, bits):
    """WRPN activations: clip to [0, 1], code = rint((2**bits - 1) * a).

    ``bits`` in 1..8. Returns ``(codes, scale)`` with scale = 1 / (2**bits - 1).
    """
    bits = _check_bits(bits, 1, 8)
    levels = (1 << bits) - 1
    codes = np.rint(np.clip(_real(a, "a"), 0.0, 1.0) * levels).astype(np.int64)
    return codes, 1.0 / levels


def ternarize(w):
    """TWN ternary weights (as Apprentice uses them), one scale for the whole tensor.

    delta = 0.7 * mean(|w|); code = sign(w) where |w| > delta, else 0;
    alpha = mean(|w|) over the kept weights (0.0 when none is kept).
    Returns ``(codes, alpha)``; w ~ alpha * codes.
    """
    arr = _real(w, "w")
    if arr.size == 0:
        raise ValueError("w: empty array, the threshold mean(|w|) is undefined")
    magnitude = np.abs(arr)
    delta = 0.7 * magnitude.mean()
    kept = magnitude > delta
    codes = (np.sign(arr) * kept).astype(np.int64)
    alpha = float(magnitude[kept].mean()) if kept.any() else 0.0
    return codes, alpha


# Weight kinds of a trained layer (sparsecore.nn.Recipe.weights) and their WRPN bits.
WEIGHT_BITS = {"int4": 4}


def quantized_weights(layer, kind):
    """(codes, scale, ste) of a layer's weights: real = scale * codes; ``ste`` is the
    straight-through gradient mask (0 where a clip stopped the weight)."""
    w = layer.w if layer.mask is None else layer.w * layer.mask
    if kind == "fp32":
        return None, 1.0, np.ones_like(w)
    if kind == "ternary":
        codes, alpha = ternarize(w)
        return codes, alpha, np.ones_like(w)
    normalised = w / layer.gain
    codes, step = quantize_weights(normalised, WEIGHT_BITS[kind])
    return codes, layer.gain * step, (np.abs(normalised) <= 1.0).astype(np.float64)


def bias_codes(b, w_scale, act_bits):
    """A quantized layer's bias on its accumulator grid: integers, ``b ~ codes * step``
    with ``step = w_scale / (2**act_bits - 1)``, the real value of one accumulator unit."""
    step = w_scale / ((1 << act_bits) - 1)
    if not step > 0:
        raise ValueError(f"the layer's weight scale is {w_scale!r}: all its weights are zero")
    return np.rint(b / step).astype(np.int64), step
