"""A small synthetic classification set for the training and inference tests."""

import numpy as np

FEATURES, CLASSES, HIDDEN = 16, 4, 16


def synthetic(rng, n):
    prototypes = np.random.default_rng(7).random((CLASSES, FEATURES))
    y = rng.integers(0, CLASSES, n)
    x = np.clip(prototypes[y] + rng.normal(0, 0.25, (n, FEATURES)), 0, 1)
    return x, y


def synthetic_images(rng, n, classes=10):
    """8 x 8 'images' (N x 64) for the CNN and LSTM tests: a fixed random prototype per
    class plus noise, in [0, 1]."""
    prototypes = np.random.default_rng(7).random((classes, 64))
    y = rng.integers(0, classes, n)
    return np.clip(prototypes[y] + rng.normal(0, 0.25, (n, 64)), 0, 1), y
