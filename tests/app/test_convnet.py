"""sparsecore.convnet: im2col against a direct convolution, its adjoint, the backward pass
against finite differences, the integer CNN against its float model."""

import numpy as np
import pytest
from finite_differences import assert_gradients, softmax_cross_entropy
from synthetic_data import synthetic_images

import sparsecore.convnet as convnet_module
from sparsecore.convnet import (
    ConvRecipe,
    _backward,
    col2im,
    forward,
    im2col,
    integer_convnet,
    prepare_convnet,
    to_maps,
    train,
)
from sparsecore.sim.inference import predict


def test_im2col_is_a_convolution():
    rng = np.random.default_rng(0)
    x = rng.integers(-5, 6, (2, 3, 6, 6))
    w = rng.integers(-3, 4, (4, 3, 3, 3))
    got = to_maps(w.reshape(4, -1) @ im2col(x), 2)
    want = np.zeros((2, 4, 4, 4), np.int64)
    for n in range(2):
        for o in range(4):
            for y in range(4):
                for xx in range(4):
                    want[n, o, y, xx] = (x[n, :, y:y + 3, xx:xx + 3] * w[o]).sum()
    assert np.array_equal(got, want)


def test_col2im_is_the_adjoint():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 2, 5, 5))
    cols = rng.normal(size=(2 * 9, 3 * 9))
    assert np.isclose((im2col(x) * cols).sum(), (x * col2im(cols, x.shape)).sum())


@pytest.mark.parametrize("shape,k", [((1, 1, 2, 2), 3), ((1, 1, 8, 2), 3), ((1, 1, 8, 8), 9)])
def test_kernel_larger_than_input_is_refused(shape, k):
    with pytest.raises(ValueError, match=f"kernel {k}x{k} is larger than the input"):
        im2col(np.zeros(shape), k)


def test_backward_matches_finite_differences(monkeypatch):
    # full float64 products: the training's operands rounded to 22 bits
    # (sim.reproducible.matmul) would drown a 1e-6 step; the calculus is what is checked
    monkeypatch.setattr(convnet_module, "matmul", np.matmul)
    rng = np.random.default_rng(2)
    recipe = ConvRecipe("fp32", 1)
    layers = prepare_convnet(recipe, None, rng)
    x = rng.uniform(0, 1, (3, 64))
    y = np.array([1, 4, 7])

    logits, cache = forward(layers, recipe, x)
    dlogits = softmax_cross_entropy(logits, y)[1]
    grads = _backward(cache, dlogits, recipe)
    assert_gradients(lambda: forward(layers, recipe, x)[0], layers, y, grads,
                     ((0, (2, 5)), (1, (3, 17)), (2, (9, 30))))


@pytest.mark.parametrize("kind,sparse", [("ternary", False), ("int4", True)])
def test_integer_cnn_agrees_with_its_float_model(kind, sparse):
    x, y = synthetic_images(np.random.default_rng(3), 300)
    rng = np.random.default_rng(3)
    fp = ConvRecipe("fp32", 1)
    layers = train(prepare_convnet(fp, None, rng), fp, x, y, rng, epochs=3)
    recipe = ConvRecipe(kind, 1, kind, 4, sparse=sparse)
    q = train(prepare_convnet(recipe, layers, rng), recipe, x, y, rng, epochs=2)
    net = integer_convnet(recipe, q, x)
    trace = net.run(net.input_maps(x))
    agree = (predict(trace[-1][1]) == forward(q, recipe, x)[0].argmax(axis=1)).mean()
    assert agree > 0.95
    assert all(layer.sparse == sparse for layer in net.layers)
    assert [layer.shape for layer in net.layers] == [(4, 9), (8, 36), (10, 128)]
