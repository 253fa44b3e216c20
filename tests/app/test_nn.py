"""Smoke tests of the numpy training (sparsecore.nn) on a small synthetic task (no scikit-learn).

Four classes, 16 features in [0, 1]: noisy copies of four random prototypes.
Small enough to train in well under a second per recipe.
"""

import numpy as np
import pytest
from synthetic_data import CLASSES, FEATURES, HIDDEN, synthetic

from sparsecore.nn import Layer, Recipe, accuracy, forward, prepare, quantized_weights, train
from sparsecore.sim.sparsity import is_2to4, prune_2to4


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    return (*synthetic(rng, 400), *synthetic(rng, 200))


def trained(data, recipe, start=None, seed=0, epochs=20, **kwargs):
    x, y = data[0], data[1]
    rng = np.random.default_rng(seed)
    layers = prepare(recipe, start, rng, FEATURES, CLASSES)
    return train(layers, recipe, x, y, rng, epochs=epochs, **kwargs)


@pytest.fixture(scope="module")
def fp32(data):
    return trained(data, Recipe("fp32", hidden=HIDDEN))


@pytest.mark.parametrize("recipe", [
    Recipe("fp32", hidden=HIDDEN),
    Recipe("int4", hidden=HIDDEN, weights="int4", act_bits=4, init="fp32"),
    Recipe("ternary", hidden=HIDDEN, weights="ternary", act_bits=4, init="fp32"),
    Recipe("ternary_2to4", hidden=HIDDEN, weights="ternary", act_bits=4, sparse=True,
           init="fp32"),
])
def test_recipes_learn(data, fp32, recipe):
    layers = trained(data, recipe, fp32 if recipe.init else None)
    # chance is 0.25; these classes are easy
    assert accuracy(layers, recipe, data[2], data[3]) > 0.9


def test_deterministic(data):
    recipe = Recipe("int4", hidden=HIDDEN, weights="int4", act_bits=4)
    a, b = trained(data, recipe, seed=3, epochs=2), trained(data, recipe, seed=3, epochs=2)
    for la, lb in zip(a, b, strict=True):
        assert np.array_equal(la.w, lb.w) and np.array_equal(la.b, lb.b)
    c = trained(data, recipe, seed=4, epochs=2)
    assert not np.array_equal(a[0].w, c[0].w)


def test_2to4_mask_is_fixed(data, fp32):
    recipe = Recipe("fp32_2to4", hidden=HIDDEN, sparse=True, init="fp32")
    layers = trained(data, recipe, fp32)
    for start, layer in zip(fp32, layers, strict=True):
        kept = prune_2to4(start.w) != 0  # pruned once, from the starting weights
        assert is_2to4(layer.w)
        assert not (layer.w[~kept]).any()
        assert (layer.w[kept] != start.w[kept]).mean() > 0.5  # the kept ones were retrained


def test_quantized_weights_by_hand():
    layer = Layer(np.array([[0.5, -1.0, 0.05, 2.0]]), np.zeros(1), gain=2.0)
    codes, scale, ste = quantized_weights(layer, "int4")
    # w / gain = 0.25, -0.5, 0.025, 1.0 -> rint(7 x) = 2, -4 (-3.5 to even), 0, 7
    assert codes.tolist() == [[2, -4, 0, 7]] and scale == pytest.approx(2 / 7)
    assert ste.tolist() == [[1, 1, 1, 1]]
    layer.gain = 1.0
    assert quantized_weights(layer, "int4")[2].tolist() == [[1, 1, 1, 0]]  # 2.0 was clipped
    codes, alpha, _ = quantized_weights(layer, "ternary")
    # mean |w| = 0.8875, delta = 0.62125: keeps -1.0 and 2.0, alpha = 1.5
    assert codes.tolist() == [[0, -1, 0, 1]] and alpha == pytest.approx(1.5)


def test_forward_quantizes_activations(data, fp32):
    recipe = Recipe("int4", hidden=HIDDEN, weights="int4", act_bits=4)
    layers = prepare(recipe, fp32, None, FEATURES, CLASSES)
    _, cache = forward(layers, recipe, data[0][:50])
    for a, *_ in cache:  # inputs of both layers: multiples of 1/15 in [0, 1]
        assert a.min() >= 0 and a.max() <= 1
        assert np.allclose(a * 15, np.rint(a * 15))


def test_distillation_follows_the_teacher(data):
    """With all weight on the teacher, the student learns the teacher's (permuted) labels."""
    x, y = data[0], data[1]
    permuted = (y + 1) % CLASSES
    teacher_logits = 8.0 * np.eye(CLASSES)[permuted]
    recipe = Recipe("student", hidden=HIDDEN)
    layers = trained(data, recipe, teacher_logits=teacher_logits, distill_weight=1.0)
    assert accuracy(layers, recipe, x, permuted) > 0.9


def test_recipe_refuses():
    with pytest.raises(ValueError, match="weights must be one of fp32, int4, ternary, not 'int2'"):
        Recipe("x", weights="int2", act_bits=4)
    with pytest.raises(ValueError, match="quantize weights and activations together"):
        Recipe("x", weights="int4")
