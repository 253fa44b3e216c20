"""Integer inference (sim.inference) against the float quantized forward pass and by hand."""

import dataclasses

import numpy as np
import pytest
from synthetic_data import CLASSES, FEATURES, HIDDEN, synthetic

from sparsecore.nn import Recipe, forward, prepare, train
from sparsecore.sim.inference import (
    IntegerLayer,
    IntegerNetwork,
    integer_network,
    numpy_gemm,
    numpy_layer,
    predict,
    run_network,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(2)
    return (*synthetic(rng, 400), *synthetic(rng, 200))


@pytest.fixture(scope="module")
def variants(data):
    """A trained FP32 net and three quantized variants started from it."""
    x, y = data[0], data[1]
    rng = np.random.default_rng(0)
    fp32 = Recipe("fp32", hidden=HIDDEN)
    base = train(prepare(fp32, None, rng, FEATURES, CLASSES), fp32, x, y, rng, epochs=20)
    out = {}
    for recipe in (Recipe("int4", hidden=HIDDEN, weights="int4", act_bits=4),
                   Recipe("ternary", hidden=HIDDEN, weights="ternary", act_bits=4),
                   Recipe("ternary_2to4", hidden=HIDDEN, weights="ternary", act_bits=4,
                          sparse=True)):
        layers = train(prepare(recipe, base, rng, FEATURES, CLASSES), recipe, x, y, rng,
                       epochs=10)
        out[recipe.name] = (recipe, layers)
    return out


@pytest.mark.parametrize("name", ["int4", "ternary", "ternary_2to4"])
def test_integer_matches_float_forward(data, variants, name):
    """Hidden codes equal the float forward's rint(15 * clip(z, 0, 1)) (training already
    rounds the bias to the accumulator grid; only the fixed-point scale, 16 bits, may move
    a value across a rounding boundary), and the predictions nearly always agree."""
    recipe, layers = variants[name]
    x_test = data[2]
    net = integer_network(recipe, layers, data[0])
    trace = run_network(net, net.input_codes(x_test))
    logits, cache = forward(layers, recipe, x_test)
    float_hidden = np.rint(cache[1][0] * 15).astype(np.int64).T  # layer 2's input, as codes
    assert (trace[0][1] == float_hidden).mean() > 0.999
    # the int8 logits are coarser than the float ones: a close call may tie or flip
    assert (predict(trace[-1][1]) == logits.argmax(axis=1)).mean() > 0.98
    assert trace[-1][1].dtype == np.int64 and trace[-1][1].min() >= -128


def test_sparse_and_dense_paths_agree(data, variants):
    recipe, layers = variants["ternary_2to4"]
    net = integer_network(recipe, layers, data[0])
    assert all(layer.sparse for layer in net.layers)
    codes = net.input_codes(data[2])
    sparse, dense = run_network(net, codes), run_network(net, codes, dense=True)
    for (acc_s, out_s), (acc_d, out_d) in zip(sparse, dense, strict=True):
        assert np.array_equal(acc_s, acc_d) and np.array_equal(out_s, out_d)


def hand_network():
    """Two inputs -> two hidden (uint4) -> two logits (int8), numbers small enough to follow."""
    hidden = IntegerLayer(np.array([[1, -1], [2, 1]]), False, mult=np.array([1, 1]),
                          shift=np.array([1, 0]), bias=np.array([0, -5]), relu=True, out="uint4")
    logits = IntegerLayer(np.array([[1, 0], [-1, 1]]), False, mult=np.array([3, 1]),
                          shift=np.array([0, 0]), bias=np.array([0, 0]), relu=False,
                          out="int8")
    return IntegerNetwork("int4", "uint4", 4, 32, 16, 5, (hidden, logits))


def test_hand_network():
    net = hand_network().check("int4", "uint4", 32)
    x = np.array([[3, 1, 0], [1, 15, 15]])  # K x N: three images
    trace = run_network(net, x)
    # hidden acc: [3-1, 1-15, 0-15] = [2, -14, -15] and [6+1, 2+15, 0+15] = [7, 17, 15]
    assert trace[0][0].tolist() == [[2, -14, -15], [7, 17, 15]]
    # row 0: /2 with ReLU -> 1, 0, 0; row 1: -5 bias -> 2, 12, 10
    assert trace[0][1].tolist() == [[1, 0, 0], [2, 12, 10]]
    # logits: row 0 = 3 * h0, row 1 = h1 - h0
    assert trace[1][1].tolist() == [[3, 0, 0], [1, 12, 10]]
    assert predict(trace[1][1]).tolist() == [0, 1, 1]


@pytest.mark.parametrize("args,match", [
    (("int8", None, None), "the network has int4 weights but the core was built for int8"),
    ((None, "int8", None), "the network has uint4 activations but the core was built for int8"),
    ((None, None, 24), "acc_bits=32 but the core has acc_bits=24"),
])
def test_check_refuses_the_wrong_core(args, match):
    with pytest.raises(ValueError, match=match):
        hand_network().check(*args)


def test_check_refuses_broken_networks():
    net = hand_network()
    hidden, logits = net.layers
    wide = dataclasses.replace(logits, weights=np.ones((2, 3), np.int64))
    with pytest.raises(ValueError, match="layer 0 gives 2 outputs but layer 1 takes 3 inputs"):
        dataclasses.replace(net, layers=(hidden, wide)).check()
    signed = dataclasses.replace(hidden, out="int8")
    with pytest.raises(ValueError, match="layer 0 outputs int8 but the next layer takes uint4"):
        dataclasses.replace(net, layers=(signed, logits)).check()
    big = dataclasses.replace(hidden, weights=np.array([[8, 0], [0, 0]]))
    with pytest.raises(ValueError, match="layer 0 weights: value 8 at index"):
        dataclasses.replace(net, layers=(big, logits)).check()
    dense = dataclasses.replace(hidden, sparse=True, weights=np.array([[1, 1, 1, 0]] * 2))
    with pytest.raises(ValueError, match="layer 0 is marked sparse but its weights are not 2:4"):
        dataclasses.replace(net, layers=(dense, logits)).check()


def test_integer_network_refuses(data, variants):
    recipe, layers = variants["int4"]
    with pytest.raises(ValueError, match="does not fit the output stage's fixed-point fields"):
        integer_network(recipe, layers, data[0], mult_bits=4, shift_bits=2)
    with pytest.raises(ValueError, match="recipe 'fp32' is not quantized"):
        integer_network(Recipe("fp32"), layers, data[0])


def test_numpy_gemm_uses_the_compressed_form():
    layer = IntegerLayer(np.array([[1, 0, 0, -1]]), True, np.ones(1, np.int64),
                         np.zeros(1, np.int64), np.zeros(1, np.int64), True, "uint4")
    b = np.array([[1], [2], [3], [4]])
    assert numpy_gemm(layer, b, 32).tolist() == [[-3]]
    assert numpy_gemm(layer, b, 32, dense=True).tolist() == [[-3]]


def test_numpy_layer_is_gemm_then_output_stage():
    """Worked by hand: acc = 1*1 - 4 = -3 (row 0), 2*2 + 3 = 7 (row 1); then
    (acc + bias) * mult / 2**shift, half to even, ReLU, uint4."""
    layer = IntegerLayer(np.array([[1, 0, 0, -1], [0, 2, 1, 0]]), True, mult=np.array([3, 5]),
                         shift=np.array([1, 2]), bias=np.array([5, -9]), relu=True, out="uint4")
    b = np.array([[1], [2], [3], [4]])
    for dense in (False, True):
        acc, out = numpy_layer(layer, b, 32, 16, 5, dense=dense)
        assert acc.tolist() == [[-3], [7]]
        # row 0: (2 * 3) / 2 = 3; row 1: (-2 * 5) / 4 = -2.5 -> -2 (even) -> ReLU 0
        assert out.tolist() == [[3], [0]]
