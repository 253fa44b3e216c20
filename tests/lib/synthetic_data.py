"""A small synthetic classification set for the training and inference tests."""

import numpy as np

FEATURES, CLASSES, HIDDEN = 16, 4, 16


def synthetic(rng, n):
    prototypes = np.random.default_rng(7).random((CLASSES, FEATURES))
    y = rng.integers(0, CLASSES, n)
    x = np.clip(prototypes[y] + rng.normal(0, 0.25, (n, FEATURES)), 0, 1)
    return x, y
