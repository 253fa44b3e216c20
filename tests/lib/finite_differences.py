"""Backward passes against central finite differences of the cross-entropy loss."""

import numpy as np


def softmax_cross_entropy(logits, y):
    """(mean loss, its gradient with respect to ``logits``), in plain float64 numpy."""
    z = logits - logits.max(axis=1, keepdims=True)
    loss = float((np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]).mean())
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return loss, (p - np.eye(logits.shape[1])[y]) / len(y)


def assert_gradients(logits_of, layers, y, grads, picks, step=1e-6):
    """Each ``(layer, (i, j))`` of ``picks``: the weight's gradient in ``grads`` (per
    layer, weight gradient first) equals the loss's central difference."""
    for li, (i, j) in picks:
        w = layers[li].w
        old = w[i, j]
        w[i, j] = old + step
        up = softmax_cross_entropy(logits_of(), y)[0]
        w[i, j] = old - step
        down = softmax_cross_entropy(logits_of(), y)[0]
        w[i, j] = old
        assert np.isclose(grads[li][0][i, j], (up - down) / (2 * step), rtol=1e-4, atol=1e-8)
