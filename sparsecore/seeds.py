"""`make seeds`: the seeds' remaining claims on our RTL: WRPN on convolutions, Apprentice
where a student has accuracy to win back (and, with the code table, recurrent networks).

1. Train, for several seeds (numpy, seeded, bit-reproducible through
   ``sim/reproducible.py``, two processes), the CNN variants of :data:`CNN_RECIPES`
   (``sparsecore/convnet.py``), the narrow-MLP Apprentice variants of
   :data:`MLP_RECIPES` (``sparsecore/nn.py``) and the LSTMs of :data:`RNN_RECIPES`
   (``sparsecore/rnn.py``).
2. Integer inference of every quantized variant in numpy on the whole test split
   (accuracy per seed).
3. For the first seed, run every quantized variant on the RTL, layer by layer
   (:func:`run_layer_rtl`: the fused core + output stage), convolutions through
   im2col on the host, on the first ``--rtl-images`` test images; every output
   code is compared with the numpy integer model, and the 2:4 variants run in
   dense and in sparse mode.
4. Write ``docs/seeds.md``, ``docs/seeds.json`` and ``docs/seeds.png`` (stamped by
   :mod:`sparsecore.verif.stamp`).
5. Record for ``sparsecore seeds --check`` (:mod:`sparsecore.seeds_check`): the first
   seed's integer networks (``docs/seeds_nets.npz``), their codes and predictions, a
   short training's weight digests, and what that training costs with BLAS operations.

Run: ``sparsecore seeds [--out docs] [--seeds 5] [--rtl-images N] [--cache PKL] [--quick]``.
"""

import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from sparsecore.convnet import ConvRecipe, conv_shapes, integer_convnet, prepare_convnet
from sparsecore.convnet import accuracy as cnn_accuracy
from sparsecore.convnet import forward as cnn_forward
from sparsecore.convnet import train as cnn_train
from sparsecore.nn import Recipe, load_digits_split
from sparsecore.rnn import RnnRecipe, integer_lstm, prepare_lstm
from sparsecore.rnn import accuracy as rnn_accuracy
from sparsecore.rnn import train as rnn_train
from sparsecore.safe_io import (
    ArgumentParser,
    atomic_output,
    check_distinct,
    check_output_file,
    check_output_files,
    make_dirs,
    worker_pool,
    write_json,
)
from sparsecore.sim.inference import integer_network, numpy_layer, predict, run_network
from sparsecore.workflow_check import codes_digest, net_arrays, net_from_arrays, weights_digest

__all__ = ["main", "CNN_RECIPES", "MLP_RECIPES", "RNN_RECIPES", "run_layer_rtl",
           "run_net_on_rtl", "train_cnns", "train_mlps", "train_rnns", "check_record",
           "short_training", "blas_timing", "save_nets", "load_nets", "integer_net",
           "final_codes", "layer_latency", "lstm_configs", "SHORT"]

CNN_EPOCHS = 20          # FP32 from scratch, and Apprentice scheme B students
CNN_FINE_EPOCHS = 10     # quantized / pruned variants starting from a trained net
MLP_EPOCHS = 40
RTL_IMAGES = 48
# The Apprentice student: an MLP with 12 hidden units, and its distillation weight.
# Searched (40 epochs, seed 2-5 each): 16 hidden lost 0.9 points to ternary; 4 and 6 are
# unstable in FP32 already (83 +- 2, 87 +- 3 %); 8 loses 6.4 but plain ternary's sd
# between seeds is 2.6; 12 loses 3.7 with an sd of 1.2. At 12, scheme C with T = 1 gained
# 1.04 (weight 0.5 on the distillation term), 1.60 (0.9) and 1.52 points (1.0); T = 2 less.
MLP_HIDDEN = 12
DISTILL_WEIGHT = 0.9
_M = f"mlp{MLP_HIDDEN}"
RTL_WORKERS = 4
QUICK_RTL = ("ternary_2x_2to4", f"{_M}_ternary", "rnn_ternary_4x_2to4")   # --quick's RTL runs
# What `make seeds` runs on the RTL (--rtl-all: every quantized variant): the variants the
# targets name. Each RTL run is a simulator start per layer (per time step for the LSTM),
# seconds each; numpy integer inference runs every variant on every test image.
RTL_DEFAULT = ("int4_2x", "ternary_2x", "ternary_3x", "int4_2x_2to4", "ternary_2x_2to4",
               "ternary", f"{_M}_ternary", f"{_M}_ternary_apprentice",
               "rnn_ternary_4x_2to4")
TEACHER = "fp32_3x"

CNN_RECIPES = (
    ConvRecipe("fp32", 1, description="FP32, 1x filters"),
    ConvRecipe("fp32_2x", 2, description="FP32, 2x filters"),
    ConvRecipe("fp32_3x", 3, description="FP32, 3x filters (also the Apprentice teacher)"),
    ConvRecipe("int4", 1, "int4", 4, init="fp32", description="WRPN 4-bit, 1x"),
    ConvRecipe("int4_2x", 2, "int4", 4, init="fp32_2x", description="WRPN 4-bit, 2x"),
    ConvRecipe("int4_3x", 3, "int4", 4, init="fp32_3x", description="WRPN 4-bit, 3x"),
    ConvRecipe("ternary", 1, "ternary", 4, init="fp32",
               description="ternary weights, 4-bit activations, 1x"),
    ConvRecipe("ternary_2x", 2, "ternary", 4, init="fp32_2x", description="ternary, 2x"),
    ConvRecipe("ternary_3x", 3, "ternary", 4, init="fp32_3x", description="ternary, 3x"),
    ConvRecipe("fp32_2x_2to4", 2, sparse=True, init="fp32_2x",
               description="FP32 2x, pruned 2:4 once, mask fixed, retrained"),
    ConvRecipe("int4_2x_2to4", 2, "int4", 4, sparse=True, init="fp32_2x_2to4",
               description="2:4 and WRPN 4-bit, 2x"),
    ConvRecipe("ternary_2x_2to4", 2, "ternary", 4, sparse=True, init="fp32_2x_2to4",
               description="2:4 and ternary, 2x"),
    ConvRecipe("ternary_apprentice", 1, "ternary", 4, init="fp32", teacher=TEACHER,
               description="ternary 1x, distilled from FP32 3x (Apprentice scheme C: "
                           "starts from the trained FP32 1x)"),
    ConvRecipe("ternary_apprentice_b", 1, "ternary", 4, teacher=TEACHER, scratch=True,
               epochs=CNN_EPOCHS,
               description="ternary 1x, distilled from FP32 3x (Apprentice scheme B: "
                           "from scratch)"),
    ConvRecipe("ternary_scratch", 1, "ternary", 4, scratch=True, epochs=CNN_EPOCHS,
               description="ternary 1x from scratch, no teacher (scheme B's plain "
                           "counterpart)"),
    ConvRecipe("int4_apprentice", 1, "int4", 4, init="fp32", teacher=TEACHER,
               description="WRPN 4-bit 1x, distilled from FP32 3x (scheme C)"),
)

_TERNARY = {"hidden": MLP_HIDDEN, "weights": "ternary", "act_bits": 4}
MLP_TEACHER = "mlp_fp32_teacher"
MLP_RECIPES = (
    Recipe(MLP_TEACHER, hidden=128, description="FP32 MLP, 128 hidden (the teacher)"),
    Recipe(f"{_M}_fp32", hidden=MLP_HIDDEN, description=f"FP32 MLP, {MLP_HIDDEN} hidden"),
    Recipe(f"{_M}_int4", hidden=MLP_HIDDEN, weights="int4", act_bits=4, init=f"{_M}_fp32",
           description=f"WRPN 4-bit, {MLP_HIDDEN} hidden, from the trained FP32 net"),
    Recipe(f"{_M}_ternary", init=f"{_M}_fp32", **_TERNARY,
           description=f"ternary, {MLP_HIDDEN} hidden, from the trained FP32 net (scheme C's "
                       "plain counterpart)"),
    Recipe(f"{_M}_ternary_apprentice", init=f"{_M}_fp32", teacher=MLP_TEACHER, **_TERNARY,
           description=f"ternary, {MLP_HIDDEN} hidden, distilled from the trained FP32 "
                       "128-hidden MLP, starting from the trained FP32 student (scheme C)"),
    Recipe(f"{_M}_ternary_scratch", **_TERNARY,
           description=f"ternary, {MLP_HIDDEN} hidden, from random weights (schemes A and "
                       "B's plain counterpart)"),
    Recipe(f"{_M}_ternary_apprentice_b", teacher=MLP_TEACHER, **_TERNARY,
           description=f"ternary, {MLP_HIDDEN} hidden, from random weights, distilled from "
                       "the trained FP32 teacher (scheme B)"),
    Recipe(f"{_M}_ternary_apprentice_a", teacher=MLP_TEACHER, **_TERNARY,
           description=f"ternary, {MLP_HIDDEN} hidden, from random weights, teacher (FP32 "
                       "128 hidden, random start) trained jointly (scheme A)"),
    Recipe(f"{_M}_int4_apprentice", hidden=MLP_HIDDEN, weights="int4", act_bits=4,
           init=f"{_M}_fp32", teacher=MLP_TEACHER,
           description=f"WRPN 4-bit, {MLP_HIDDEN} hidden, distilled (scheme C)"),
)
# Scheme A: the teacher is not the trained one but a fresh FP32 net of its recipe,
# trained in the same loop as the student (``convnet.train(joint_teacher=...)``)
JOINT = (f"{_M}_ternary_apprentice_a",)

# The 1x LSTM's hidden width. At 16 the 1x ternary LSTM was 3.3 points below FP32 with a
# 2 sd of 3.6 (not measurably worse); at 8 (2 seeds) it is 12 points below, and the 2x
# and 4x widths (16, 32) are above the 1x FP32 net.
RNN_HIDDEN = 8
RNN_EPOCHS = 20          # FP32 from scratch
RNN_FINE_EPOCHS = 10     # quantized variants, from the trained FP32 net of their width
RNN_RTL_IMAGES = 16
RNN_RECIPES = tuple(
    [RnnRecipe(f"rnn_fp32{s}", RNN_HIDDEN * w, description=f"FP32 LSTM, {RNN_HIDDEN * w} hidden")
     for w, s in ((1, ""), (2, "_2x"), (4, "_4x"))]
    + [RnnRecipe(f"rnn_{kind}{s}", RNN_HIDDEN * w, kind, 4, init=f"rnn_fp32{s}",
                 description=f"{label}, {RNN_HIDDEN * w} hidden")
       for kind, label in (("int4", "WRPN 4-bit weights, 4-bit activations"),
                           ("ternary", "ternary weights, 4-bit activations"))
       for w, s in ((1, ""), (2, "_2x"), (4, "_4x"))]
    # 2:4 at 4x: at 2x (16 hidden) the gate GEMM (64 x 24) is so small that the pipeline's
    # fixed latency kept sparse at 0.57x dense cycles (a --quick run, 4 images)
    + [RnnRecipe(f"rnn_{kind}_4x_2to4", RNN_HIDDEN * 4, kind, 4, sparse=True,
                 init="rnn_fp32_4x", description=f"2:4 (pruned once from FP32 4x) and {kind}, "
                                                 f"{RNN_HIDDEN * 4} hidden")
       for kind in ("int4", "ternary")])
# which LSTM variants run on the RTL (each is 17 layer runs: 8 steps x (gates, tanh of the
# cell) + the classifier); numpy integer inference runs all of them on every image
RNN_RTL = ("rnn_ternary", "rnn_ternary_4x_2to4")   # with --rtl-all

# (student, plain counterpart) pairs the Apprentice target compares
APPRENTICE_PAIRS = (
    ("cnn", "ternary_apprentice", "ternary"),
    ("cnn", "ternary_apprentice_b", "ternary_scratch"),
    ("cnn", "int4_apprentice", "int4"),
    ("mlp", f"{_M}_ternary_apprentice", f"{_M}_ternary"),
    ("mlp", f"{_M}_ternary_apprentice_b", f"{_M}_ternary_scratch"),
    ("mlp", f"{_M}_ternary_apprentice_a", f"{_M}_ternary_scratch"),
    ("mlp", f"{_M}_int4_apprentice", f"{_M}_int4"),
)


class RtlMismatch(AssertionError):
    """The RTL disagreed with the numpy model; the message names net, layer, row, column."""


def log(message):
    print(message, file=sys.stderr, flush=True)


# -- training -----------------------------------------------------------------------------

def train_cnns(data, rng, recipes=CNN_RECIPES, epochs=CNN_EPOCHS, fine_epochs=CNN_FINE_EPOCHS):
    """{name: (recipe, layers, float test accuracy)} in recipe order (init/teacher first)."""
    x_train, y_train, x_test, y_test = data
    trained = {}
    for recipe in recipes:
        start = None if recipe.scratch or not recipe.init else trained[recipe.init][1]
        layers = prepare_convnet(recipe, start, rng)
        teacher = None
        if recipe.teacher:
            t_recipe, t_layers, _ = trained[recipe.teacher]
            teacher = cnn_forward(t_layers, t_recipe, x_train)[0]
        n_epochs = recipe.epochs or (fine_epochs if start is not None else epochs)
        cnn_train(layers, recipe, x_train, y_train, rng, epochs=n_epochs,
                  teacher_logits=teacher)
        trained[recipe.name] = (recipe, layers, cnn_accuracy(layers, recipe, x_test, y_test))
    return trained


def train_mlps(data, rng, recipes=MLP_RECIPES, epochs=MLP_EPOCHS):
    """{name: (recipe, layers, float test accuracy)}: :func:`nn.train_all`'s loop, plus
    Apprentice scheme A for the recipes in :data:`JOINT` (a fresh teacher of the
    ``teacher`` recipe trained in the same loop, ``convnet.train(joint_teacher=...)``)."""
    from sparsecore.convnet import train as joint_train
    from sparsecore.nn import accuracy, backward, forward, prepare, train

    x_train, y_train, x_test, y_test = data
    classes = int(y_train.max()) + 1
    trained = {}
    for recipe in recipes:
        start = trained[recipe.init][1] if recipe.init else None
        layers = prepare(recipe, start, rng, x_train.shape[1], classes)
        t_recipe = trained[recipe.teacher][0] if recipe.teacher else None
        if recipe.name in JOINT:
            t_layers = prepare(t_recipe, None, rng, x_train.shape[1], classes)
            joint_train(layers, recipe, x_train, y_train, rng, epochs=epochs,
                        forward_fn=forward, backward_fn=backward,
                        joint_teacher=(t_layers, t_recipe), distill_weight=DISTILL_WEIGHT)
        else:
            teacher = (None if t_recipe is None
                       else forward(trained[recipe.teacher][1], t_recipe, x_train)[0])
            train(layers, recipe, x_train, y_train, rng, epochs=epochs, teacher_logits=teacher,
                  distill_weight=DISTILL_WEIGHT)
        trained[recipe.name] = (recipe, layers, accuracy(layers, recipe, x_test, y_test))
    return trained


def train_rnns(data, rng, recipes=RNN_RECIPES, epochs=RNN_EPOCHS, fine_epochs=RNN_FINE_EPOCHS):
    """{name: (recipe, layers, float test accuracy)} in recipe order."""
    x_train, y_train, x_test, y_test = data
    trained = {}
    for recipe in recipes:
        start = trained[recipe.init][1] if recipe.init else None
        layers = prepare_lstm(recipe, start, rng)
        rnn_train(layers, recipe, x_train, y_train, rng,
                  epochs=fine_epochs if start is not None else epochs)
        trained[recipe.name] = (recipe, layers, rnn_accuracy(layers, recipe, x_test, y_test))
    return trained


def _integer_accuracy(kind, recipe, layers, x_train, x_test, y_test):
    if kind == "rnn":
        net = integer_lstm(recipe, layers, x_train)
        return float((predict(net.run(net.input_codes(x_test))[0]) == y_test).mean())
    if kind == "cnn":
        net = integer_convnet(recipe, layers, x_train)
        codes = net.run(net.input_maps(x_test))[-1][1]
    else:
        net = integer_network(recipe, layers, x_train)
        codes = run_network(net, net.input_codes(x_test))[-1][1]
    return float((predict(codes) == y_test).mean())


def train_seed(args):
    """One training seed: every CNN and MLP variant; accuracies, and the first seed's nets."""
    seed, data, epochs, keep = args
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    x_train, y_train, x_test, y_test = data
    start = time.monotonic()
    out = {"seed": seed, "cnn": {}, "mlp": {}, "rnn": {}, "nets": {}}
    with threadpool_limits(1):   # one BLAS thread: the same sums in every process
        rng = np.random.default_rng([seed, 1])
        cnn = train_cnns(data, rng, epochs=epochs["cnn"], fine_epochs=epochs["fine"])
        rng = np.random.default_rng([seed, 2])
        mlp = train_mlps(data, rng, epochs=epochs["mlp"])
        rng = np.random.default_rng([seed, 3])
        rnn = train_rnns(data, rng, epochs=epochs["rnn"], fine_epochs=epochs["rnn_fine"])
        for kind, trained in (("cnn", cnn), ("mlp", mlp), ("rnn", rnn)):
            for name, (recipe, layers, acc) in trained.items():
                if recipe.quantized:
                    acc = _integer_accuracy(kind, recipe, layers, x_train, x_test, y_test)
                out[kind][name] = acc
                if keep and recipe.quantized:
                    out["nets"][(kind, name)] = (recipe, layers)
    out["seconds"] = time.monotonic() - start
    return out


# -- the record for `sparsecore seeds --check` -----------------------------------------

# The short training: seed, epochs, training images (the first N of the split)
SHORT = {"seed": 0, "epochs": 1, "images": 400}
# Variants of the short training (with what they start from or distil from)
SHORT_VARIANTS = {"cnn": ("fp32", "ternary"),
                  "mlp": (MLP_TEACHER, f"{_M}_fp32", f"{_M}_ternary", f"{_M}_ternary_apprentice",
                          f"{_M}_ternary_apprentice_b", f"{_M}_ternary_apprentice_a"),
                  "rnn": ("rnn_fp32", "rnn_ternary")}


def _classes():
    from sparsecore.convnet import IntegerConvNet
    from sparsecore.rnn import IntegerLstm
    from sparsecore.sim.inference import IntegerNetwork
    return {"cnn": IntegerConvNet, "mlp": IntegerNetwork, "rnn": IntegerLstm}


def integer_net(kind, recipe, layers, x_train):
    """The integer network of a trained quantized variant (training images calibrate)."""
    from sparsecore.convnet import integer_convnet
    from sparsecore.rnn import integer_lstm
    from sparsecore.sim.inference import integer_network
    build = {"cnn": integer_convnet, "mlp": integer_network, "rnn": integer_lstm}[kind]
    return build(recipe, layers, x_train)


def final_codes(kind, net, x):
    """The logits' int8 codes (classes x images) of integer inference on images x."""
    from sparsecore.sim.inference import run_network
    if kind == "rnn":
        return net.run(net.input_codes(x))[0]
    if kind == "cnn":
        return net.run(net.input_maps(x))[-1][1]
    return run_network(net, net.input_codes(x))[-1][1]


def save_nets(path, nets):
    """``{(kind, name): integer net}`` to one .npz (int32 arrays, no pickles)."""
    arrays = {}
    for (kind, name), net in nets.items():
        key = f"{kind}:{name}"
        arrays |= net_arrays(key, net)
        if kind == "rnn":
            arrays[f"{key}/table"] = np.asarray(net.table, dtype=np.int32)
    np.savez_compressed(path, **arrays)


def load_nets(path):
    """``{(kind, name): integer net}`` from :func:`save_nets`' file, each checked."""
    classes = _classes()
    with np.load(path, allow_pickle=False) as npz:
        arrays = dict(npz.items())
    out = {}
    for key in sorted({k.split("/")[0] for k in arrays}):
        kind, name = key.split(":", 1)
        layers, fields = net_from_arrays(arrays, key)
        if kind == "rnn":
            fields["table"] = arrays[f"{key}/table"].astype(np.int64)
        out[(kind, name)] = classes[kind](layers=layers, **fields).check()
    return out


def _subset(recipes, names):
    return tuple(r for r in recipes if r.name in names)


def short_training(data, seed=SHORT["seed"], epochs=SHORT["epochs"], images=SHORT["images"]):
    """{"kind:name": {"weights_sha256", "accuracy"}}: a short seeded run of
    :data:`SHORT_VARIANTS` on the first ``images`` training images (float test accuracy)."""
    x_train, y_train, x_test, y_test = data
    small = (x_train[:images], y_train[:images], x_test, y_test)
    runs = {
        "cnn": train_cnns(small, np.random.default_rng([seed, 1]),
                                _subset(CNN_RECIPES, SHORT_VARIANTS["cnn"]),
                                epochs=epochs, fine_epochs=epochs),
        "mlp": train_mlps(small, np.random.default_rng([seed, 2]),
                                _subset(MLP_RECIPES, SHORT_VARIANTS["mlp"]), epochs=epochs),
        "rnn": train_rnns(small, np.random.default_rng([seed, 3]),
                                _subset(RNN_RECIPES, SHORT_VARIANTS["rnn"]),
                                epochs=epochs, fine_epochs=epochs),
    }
    return {f"{kind}:{name}": {"weights_sha256": weights_digest(layers), "accuracy": acc}
            for kind, trained in runs.items() for name, (_, layers, acc) in trained.items()}


@contextmanager
def _blas_operations():
    """numpy's ``@``, ``exp``, ``tanh``, ``cos`` in place of ``sim.reproducible``'s, in
    the training modules, for the duration (to measure what reproducibility costs)."""
    import sparsecore.convnet
    import sparsecore.nn
    import sparsecore.rnn

    swaps = {"matmul": np.matmul, "exp": np.exp, "tanh": np.tanh, "cos": np.cos}
    saved = []
    for module in (sparsecore.nn, sparsecore.convnet, sparsecore.rnn):
        for name, fn in swaps.items():
            if hasattr(module, name):
                saved.append((module, name, getattr(module, name)))
                setattr(module, name, fn)
    try:
        yield
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)


def blas_timing(data, repeats=2):
    """{"reproducible": s, "blas": s}: the best of ``repeats`` short trainings
    (:func:`short_training`) each way, in this process with one BLAS thread."""
    from threadpoolctl import threadpool_limits

    best = {}
    with threadpool_limits(1):
        for _ in range(repeats):
            for scheme in ("reproducible", "blas"):
                start = time.perf_counter()
                if scheme == "blas":
                    with _blas_operations():
                        short_training(data)
                else:
                    short_training(data)
                elapsed = time.perf_counter() - start
                best[scheme] = min(best.get(scheme, elapsed), elapsed)
    return best


# -- the RTL ------------------------------------------------------------------------------

def run_layer_rtl(config, layer, b, dense, table=None):
    """One layer GEMM + output stage (+ code table) on the RTL: the one place the demo
    calls a runner (:func:`verif.gemm.run_layer` today; a faster engine can take its
    place here)."""
    from sparsecore.verif import gemm as verif_gemm  # Verilator tooling only when RTL runs

    return verif_gemm.run_layer(config, layer.weights, b, layer.mult, layer.shift, layer.bias,
                                 layer.relu, dense, table=table, progress=False)


def run_lstm_on_rtl(name, net, x_codes, dense, cell_tanh_on_rtl=False):
    """An integer LSTM on the RTL in one mode, step by step: the gate GEMM with the output
    stage and the tanh table on the fused layer design, the host's exact elementwise step
    (``IntegerLstm.step``), the cell's tanh by the same table (``cell_tanh_on_rtl``: through
    the same design with identity weights, a pass-through GEMM then the table; else by the
    table's numpy twin), then the classifier. Every run's codes are
    compared with numpy on the same input. Returns (cycles per run, codes compared,
    logit codes)."""
    from sparsecore.sim.code_table import lookup
    from sparsecore.sim.inference import IntegerLayer

    core, gate_cfg, head_cfg = lstm_configs(net)
    latency = {id(gate_cfg): layer_latency(gate_cfg), id(head_cfg): layer_latency(head_cfg)}
    if not dense and not all(layer.sparse for layer in net.layers):
        raise ValueError(f"{name}: sparse mode needs every layer's weights to be 2:4")
    h = net.hidden
    identity = IntegerLayer(np.eye(h, dtype=np.int64), True, np.ones(h, np.int64),
                            np.zeros(h, np.int64), np.zeros(h, np.int64), False, "int8")
    mode = "dense" if dense else "sparse"
    cycles, compared, runs = [], [0], []

    def checked(what, config, layer, b, table):
        run = run_layer_rtl(config, layer, b, dense, table)
        want = numpy_layer(layer, b, net.acc_bits, net.mult_bits, net.shift_bits, dense)[1]
        if table is not None:
            want = lookup(want, table, "int8", "int8")
        if not np.array_equal(run.out, want):
            r, c = (int(v) for v in np.argwhere(run.out != want)[0])
            raise RtlMismatch(f"{name} {mode} {what}: code [{r}, {c}] = {run.out[r, c]}, "
                              f"numpy {want[r, c]}")
        cycles.append(run.cycles)
        runs.append((what.split(" ", 2)[-1], *layer.shape[:1], layer.shape[1], b.shape[1],
                     latency[id(config)], run.cycles))
        compared[0] += want.size
        return run.out

    def gate_fn(t, layer, b):
        out = checked(f"step {t} gates", gate_cfg, layer, b, net.table)
        log(f"    {name} {mode} step {t}: gates {layer.shape[0]}x{layer.shape[1]} and tanh "
            f"table: {cycles[-1]} cycles, exact")
        return out

    def table_fn(t, qc):
        return checked(f"step {t} tanh(cell)", gate_cfg, identity, qc, net.table)

    def head_fn(layer, b):
        return checked("classifier", head_cfg, layer, b, None)

    logits, _ = net.run(x_codes, gate_fn, table_fn, head_fn)
    return cycles, compared[0], logits, runs


def layer_latency(config):
    """The latency of the layer design ``config`` (``hw.layer.SparseLayer``, constructed,
    asked, not elaborated)."""
    from sparsecore.hw.layer import SparseLayer

    layer = SparseLayer(config)
    layer._MustUse__silence = True   # asked for its latency only, never elaborated
    return layer.latency


def lstm_configs(net):
    """(core, gate layer config with the code table, classifier config) an integer LSTM
    runs on; refuses (ValueError) a net that core cannot run."""
    from sparsecore.hw.config import CoreConfig, LayerConfig
    from sparsecore.workflow import CORE_GEOMETRY

    core = CoreConfig(weights=net.weights, acts=net.acts, acc_bits=net.acc_bits,
                      **CORE_GEOMETRY)
    net.check(core.weights, core.acts, core.acc_bits)
    fields = {"mult_bits": net.mult_bits, "shift_bits": net.shift_bits}
    return (core, LayerConfig.of(core, out="int8", table="int8", **fields),
            LayerConfig.of(core, out="int8", **fields))


def run_net_on_rtl(name, net, run_fn, dense):
    """Run ``net`` (an IntegerNetwork or IntegerConvNet) on the RTL in one mode through
    ``run_fn(layer_fn)`` (the net's own layer loop); every layer's codes are compared with
    :func:`sim.inference.numpy_layer` on the same input. Returns (cycles per layer, codes
    compared, last codes)."""
    from sparsecore.workflow import core_for, layer_config

    core = core_for(net)
    net.check(core.weights, core.acts, core.acc_bits)
    configs = [layer_config(core, net, layer) for layer in net.layers]
    latencies = [layer_latency(config) for config in configs]
    if not dense and not all(layer.sparse for layer in net.layers):
        raise ValueError(f"{name}: sparse mode needs every layer's weights to be 2:4")
    mode = "dense" if dense else "sparse"
    cycles, compared, runs = [], [0], []

    def layer_fn(i, layer, b):
        run = run_layer_rtl(configs[i], layer, b, dense)
        want = numpy_layer(layer, b, net.acc_bits, net.mult_bits, net.shift_bits, dense)[1]
        if not np.array_equal(run.out, want):
            r, c = (int(v) for v in np.argwhere(run.out != want)[0])
            raise RtlMismatch(f"{name} {mode} layer {i}: code [{r}, {c}] = {run.out[r, c]}, "
                              f"numpy {want[r, c]}")
        cycles.append(run.cycles)
        runs.append((f"layer {i}", layer.shape[0], layer.shape[1], b.shape[1], latencies[i],
                     run.cycles))
        compared[0] += want.size
        log(f"    {name} {mode} layer {i}: {layer.shape[0]}x{layer.shape[1]} x {b.shape[1]} "
            f"columns: {run.cycles} cycles, {want.size} codes equal")
        return run.out

    last = run_fn(layer_fn)
    return cycles, compared[0], last, runs


def _rtl_job(kind, name, recipe, layers, data, images, dense, cell_tanh_on_rtl=False):
    """One variant in one mode on the RTL: (name, mode, fields)."""
    x_train, _, x_test, y_test = data
    x, y = x_test[:images], y_test[:images]
    mode = "dense" if dense else "sparse"
    fields = {}
    if kind == "rnn":
        net = integer_lstm(recipe, layers, x_train)
        codes = net.input_codes(x)
        want = predict(net.run(codes)[0])
        cycles, compared, last, runs = run_lstm_on_rtl(name, net, codes, dense,
                                                       cell_tanh_on_rtl)
        fields["layer_runs"] = len(cycles)
    else:
        if kind == "cnn":
            net = integer_convnet(recipe, layers, x_train)
            maps = net.input_maps(x)
            want = predict(net.run(maps)[-1][1])

            def run_fn(layer_fn):
                return net.run(maps, layer_fn)[-1][1]
        else:
            net = integer_network(recipe, layers, x_train)
            codes = net.input_codes(x)
            want = predict(run_network(net, codes)[-1][1])

            def run_fn(layer_fn):
                b = codes
                for i, layer in enumerate(net.layers):
                    b = layer_fn(i, layer, b)
                return b
        cycles, compared, last, runs = run_net_on_rtl(name, net, run_fn, dense)
        fields[f"{mode}_layer_cycles"] = cycles
        fields["layers"] = [list(layer.shape) for layer in net.layers]
    got = predict(last)
    if not np.array_equal(got, want):
        raise RtlMismatch(f"{name} {mode}: RTL predictions differ from numpy")
    fields[f"{mode}_runs"] = runs   # (what, M, K, N, latency, cycles) per RTL run
    fields.update({f"{mode}_cycles": sum(cycles) / len(y), "codes_compared": compared,
                   "rtl_accuracy": float((got == y).mean()), "rtl_images": int(len(y))})
    return name, mode, fields


def rtl_runs(nets, data, images, only=None, rnn_images=RNN_RTL_IMAGES, rnn_only=RNN_RTL,
             workers=RTL_WORKERS, cell_tanh_on_rtl=False, log=log):
    """First seed's quantized nets on the RTL (those named in ``only``, default all; of
    the LSTMs those in ``rnn_only``, on ``rnn_images`` images): {name: row fields}.

    Each variant and mode is one job; ``workers`` jobs run at a time (each simulator is
    its own process, so they share the machine's cores)."""
    jobs = []
    for (kind, name), (recipe, layers) in nets.items():
        if (only is not None and name not in only) or (kind == "rnn" and name not in rnn_only):
            continue
        for dense in ([True, False] if recipe.sparse else [True]):
            jobs.append((kind, name, recipe, layers, data,
                         rnn_images if kind == "rnn" else images, dense, cell_tanh_on_rtl))
    log(f"RTL: {len(jobs)} runs of variants, {workers} at a time")
    rows = {}
    with worker_pool(workers) as pool:   # an interrupt cancels the queued runs
        for name, mode, fields in pool.map(lambda job: _rtl_job(*job), jobs):
            row = rows.setdefault(name, {})
            compared = row.get("codes_compared", 0)
            row.update(fields)
            row["codes_compared"] = compared + fields["codes_compared"]
            log(f"  {name} {mode}: {fields[f'{mode}_cycles']:.1f} cycles per image, "
                f"{fields['codes_compared']} codes equal")
    return rows


# -- the report ---------------------------------------------------------------------------

def _mean_sd(values):
    values = 100 * np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _paired_gain(student, plain):
    """The gain seed by seed (same seed: same data order, and for scheme C the same FP32
    start): "mean ± sd (k of n seeds up)"."""
    diff = np.subtract(student["per_seed"], plain["per_seed"])
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    return (f"{float(diff.mean()):+.2f} ± {sd:.2f} ({int((diff > 0).sum())} of {len(diff)} "
            "seeds up)")


def evaluate(runs, rtl):
    """Rows per variant and the targets."""
    rows = {"cnn": {}, "mlp": {}, "rnn": {}}
    for kind, recipes in (("cnn", CNN_RECIPES), ("mlp", MLP_RECIPES), ("rnn", RNN_RECIPES)):
        for recipe in recipes:
            per_seed = [run[kind][recipe.name] for run in runs]
            mean, sd = _mean_sd(per_seed)
            acts = f"uint{recipe.act_bits}" if recipe.act_bits else "fp32"
            if kind == "rnn" and recipe.act_bits:
                acts = f"{recipe.act_bits}-bit signed"   # -Q..Q, in the core's int8 operand
            row = {"description": recipe.description, "weights": recipe.weights,
                   "acts": acts,
                   "sparse": recipe.sparse, "first": 100 * per_seed[0], "mean": mean,
                   "sd": sd, "per_seed": [100 * v for v in per_seed]}
            if kind == "cnn":
                row["width"] = recipe.width
                row["filters"] = list(conv_shapes(recipe.width))
            else:
                row["hidden"] = recipe.hidden
            row.update(rtl.get(recipe.name, {}))
            rows[kind][recipe.name] = row
    cnn = rows["cnn"]
    fp32 = cnn["fp32"]["mean"]
    targets = []

    def within(name, points, ref="fp32"):
        gap = cnn[ref]["mean"] - cnn[name]["mean"]
        return gap <= points, f"{name} {cnn[name]['mean']:.2f} ± {cnn[name]['sd']:.2f} % vs " \
                              f"{ref} {cnn[ref]['mean']:.2f} ± {cnn[ref]['sd']:.2f} % (gap " \
                              f"{gap:+.2f} points)"

    met, text = within("int4_2x", 1.0)
    targets.append(("CNN: WRPN 4-bit with 2x filters within 1 point of FP32 (1x)", met, text))
    t2, t2_text = within("ternary_2x", 1.5)
    t3, t3_text = within("ternary_3x", 1.5)
    targets.append(("CNN: ternary with 2x or 3x filters within 1.5 points of FP32 (1x)",
                    t2 or t3, f"{t2_text}; {t3_text}"))
    worse = fp32 - cnn["ternary"]["mean"], fp32 - cnn["int4"]["mean"]
    targets.append(("Apprentice student narrow enough: plain ternary and 4-bit 1x CNN lose "
                    ">= 1.5 points vs FP32", min(worse) >= 1.5,
                    f"ternary {worse[0]:+.2f}, int4 {worse[1]:+.2f} points below FP32 1x"))
    mlp = rows["mlp"]
    worse_mlp = (mlp[f"{_M}_fp32"]["mean"] - mlp[f"{_M}_ternary"]["mean"],
                 mlp[f"{_M}_fp32"]["mean"] - mlp[f"{_M}_int4"]["mean"])
    targets.append((f"Apprentice student narrow enough: plain ternary and 4-bit {MLP_HIDDEN}-"
                    "hidden MLP lose >= 1.5 points vs FP32", min(worse_mlp) >= 1.5,
                    f"ternary {worse_mlp[0]:+.2f}, int4 {worse_mlp[1]:+.2f} points below FP32 "
                    f"{MLP_HIDDEN}-hidden"))
    for kind, student, plain in APPRENTICE_PAIRS:
        s, p = rows[kind][student], rows[kind][plain]
        gain = s["mean"] - p["mean"]
        spread = max(s["sd"], p["sd"])
        if "ternary" in student:
            paired = _paired_gain(s, p)
            # judged on the seed spread of the accuracies; the paired gain is shown beside it
            targets.append((f"Apprentice: {student} beats {plain} by > 2 sd", gain > 2 * spread,
                            f"{s['mean']:.2f} ± {s['sd']:.2f} vs {p['mean']:.2f} ± "
                            f"{p['sd']:.2f} %: gain {gain:+.2f} points, 2 sd = "
                            f"{2 * spread:.2f}; paired by seed {paired}"))
    rnn = rows["rnn"]
    base = rnn["rnn_fp32"]
    wide = []
    for name in ("rnn_int4_2x", "rnn_int4_4x", "rnn_ternary_2x", "rnn_ternary_4x"):
        gap = base["mean"] - rnn[name]["mean"]
        wide.append((gap <= 1.0, f"{name} {rnn[name]['mean']:.2f} ± {rnn[name]['sd']:.2f} "
                                 f"(gap {gap:+.2f})"))
    targets.append(("RNN: a widened low-precision LSTM within 1 point of FP32 (1x, "
                    f"{base['mean']:.2f} ± {base['sd']:.2f} %)", any(m for m, _ in wide),
                    "; ".join(t for _, t in wide)))
    narrow = []
    for name in ("rnn_ternary", "rnn_int4"):
        gap = base["mean"] - rnn[name]["mean"]
        spread = 2 * max(base["sd"], rnn[name]["sd"])
        narrow.append((gap > spread, f"{name} {rnn[name]['mean']:.2f} ± {rnn[name]['sd']:.2f} "
                                     f"(gap {gap:+.2f}, 2 sd = {spread:.2f})"))
    targets.append(("RNN: the 1x low-precision LSTM measurably worse than FP32 (gap > 2 sd)",
                    any(m for m, _ in narrow), "; ".join(t for _, t in narrow)))
    for label, kind in (("CNN", cnn), ("RNN", rnn)):
        ratios = {name: r["sparse_cycles"] / r["dense_cycles"]
                  for name, r in kind.items() if r.get("sparse_cycles")}
        targets.append((f"{label} 2:4 variants run in <= 0.55x dense cycles",
                        bool(ratios) and max(ratios.values()) <= 0.55,
                        "; ".join(f"{n} {v:.3f}" for n, v in ratios.items()) or "not run"))
    ran = [r for kind in rows.values() for r in kind.values() if r.get("codes_compared")]
    targets.append(("Bit-exact: every RTL output code equals the numpy integer model's",
                    bool(ran), f"{sum(r['codes_compared'] for r in ran):,} codes of "
                               f"{len(ran)} variants compared, all equal"
                    if ran else "nothing ran on the RTL"))
    return rows, targets


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110)
    cnn = rows["cnn"]
    for kind, color in (("fp32", "0.3"), ("int4", "tab:blue"), ("ternary", "tab:red")):
        names = [kind] + [f"{kind}_{w}x" for w in (2, 3)]
        means = [cnn[n]["mean"] for n in names]
        sds = [cnn[n]["sd"] for n in names]
        ax1.errorbar([1, 2, 3], means, yerr=sds, marker="o", capsize=3, color=color,
                     label=kind)
    ax1.axhline(cnn["fp32"]["mean"], color="0.5", linestyle="--", linewidth=1)
    ax1.set_xticks([1, 2, 3], ["1x", "2x", "3x"])
    ax1.set_xlabel("filter width (conv1, conv2 = 4w, 8w filters)")
    ax1.set_ylabel("test accuracy, % (mean ± sd over seeds)")
    ax1.set_title("WRPN on the digits CNN")
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    labels, means, sds, colors = [], [], [], []
    for kind, student, plain in APPRENTICE_PAIRS:
        for name, color in ((plain, "tab:gray"), (student, "tab:green")):
            if f"{kind}:{name}" in labels:
                continue
            labels.append(f"{kind}:{name}")
            means.append(rows[kind][name]["mean"])
            sds.append(rows[kind][name]["sd"])
            colors.append(color)
    ax2.barh(range(len(labels)), means, xerr=sds, color=colors, capsize=3)
    ax2.set_yticks(range(len(labels)), [lab.replace("_apprentice", " + Apprentice")
                                        for lab in labels], fontsize=7)
    ax2.set_xlim(min(means) - 3, max(means) + 1.5)
    ax2.set_xlabel("test accuracy, % (mean ± sd)")
    ax2.set_title("Apprentice: plain (grey) vs distilled (green)")
    ax2.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _cell(value, spec):
    return "-" if value is None else format(value, spec)


def _apprentice_findings(rows):
    """What the MLP Apprentice runs show, in numbers (a paragraph and a blank line)."""
    mlp = rows["mlp"]
    parts = []
    for kind, student, plain in APPRENTICE_PAIRS:
        if kind != "mlp" or "ternary" not in student:
            continue
        s, p = mlp[student], mlp[plain]
        spread = 2 * max(s["sd"], p["sd"])
        parts.append(f"`{student}` {s['mean']:.2f} ± {s['sd']:.2f} against `{plain}` "
                     f"{p['mean']:.2f} ± {p['sd']:.2f} % ({s['mean'] - p['mean']:+.2f} "
                     f"points, 2 sd = {spread:.2f}; seed by seed {_paired_gain(s, p)})")
    loss = mlp[f"{_M}_fp32"]["mean"] - mlp[f"{_M}_ternary"]["mean"]
    return [
        "",
        f"**Apprentice on the {MLP_HIDDEN}-hidden MLP:** plain ternary loses {loss:.2f} "
        "points to FP32, so the student has accuracy to win back, but distillation does "
        "not win it back by more than the spread between seeds: " + "; ".join(parts)
        + ". Schemes A and B start from random weights and vary more between seeds "
        "than scheme C; with a different random stream (the search above) scheme C gained "
        "1.60 points. Scheme C's gain, compared seed by seed (the same FP32 start and data "
        "order), is small but steady; against the spread of the accuracies between seeds, "
        "the target's measure, it is not significant. The Apprentice claim (a distilled "
        "student beating plain training by more than 2 sd) does not reproduce here.",
        "",
    ]


def _reproducibility(info):
    """The doc's section on what makes its numbers reproducible, and what it costs."""
    rec = info["check"]
    short, timing = rec["short"], rec["timing"]
    return [
        "## Reproducibility",
        "",
        "- **Training is bit-exact across machines.** The CNN, MLP and LSTM training take "
        "every matrix product, `exp`, `tanh` and `cos` from `sim/reproducible.py` (an "
        "exact-integer float64 matrix product, operands rounded to 21-24 bits per row and "
        "column; `exp` and `tanh` from exact operations), not from the BLAS and numpy's "
        "SIMD loops, whose last bits depend on the CPU's kernel (`docs/workflow.md`, "
        "\"Reproducibility\", has the cause measured). Adam's bias corrections use "
        "products, not `pow`. The same seed gives the same weights on any BLAS kernel and "
        "thread count.",
        f"- **Cost:** the check's short training ({short['images']} images, "
        f"{short['epochs']} epoch, {len(short['variants'])} variants) took "
        f"{timing['reproducible']:.2f} s with the reproducible operations and "
        f"{timing['blas']:.2f} s with numpy's `@`, `exp`, `tanh`, `cos` (best of 2, one "
        f"thread, same process): {timing['reproducible'] / timing['blas']:.2f}x. The "
        "CNN's many small products cost the most; the LSTM's per-step work is mostly "
        "elementwise.",
        f"- **Check:** `sparsecore seeds --check` (`make seeds-check`, and in `make test`) "
        f"reruns the integer inference of the {len(rec['nets'])} quantized networks of "
        "seed 0 from `docs/seeds_nets.npz` (codes, weights, output-stage fields, the "
        "LSTM's table) on the whole test split and compares the output codes (sha256), "
        "every prediction and the accuracy; the cycles of every RTL run against the "
        "performance model with the elaborated design's latency; and the short training "
        "above, weights to the bit. It names the first difference.",
    ]


def write_markdown(path, info):
    from sparsecore.verif import stamp as doc_stamp

    rows, targets = info["rows"], info["targets"]
    lines = [
        "# The seeds' remaining claims on the RTL: WRPN on convolutions, Apprentice, "
        "low-precision LSTMs",
        "",
        "Written by `make seeds` (`sparsecore seeds`); do not edit by hand. "
        f"Generated {info['stamp']['date']} on {info['stamp']['machine']['cpu']} "
        f"({info['stamp']['machine']['nproc']} cores), {info['seeds']} training seeds; what "
        "decided the numbers: [Stamp](#stamp). `sparsecore seeds --check` reruns the "
        "deterministic parts and compares them with this record ([Reproducibility]"
        "(#reproducibility)).",
        "",
        "## What runs",
        "",
        "- **Data**: scikit-learn's 8 x 8 digits, the split of `docs/workflow.md` "
        f"({info['train_images']} training, {info['test_images']} test images), pixels "
        "/ 16, WRPN 4-bit input codes.",
        "- **CNN** (`sparsecore/convnet.py`): 8x8x1 -> conv 3x3 (4w filters) -> ReLU -> conv 3x3 "
        "(8w filters) -> ReLU -> fully connected -> 10, no padding, w = 1, 2, 3 (WRPN "
        "widening of the filter maps). FP32 nets train "
        f"{info['epochs']['cnn']} epochs from scratch; quantized and 2:4 variants start from "
        f"the trained FP32 net of their width and train {info['epochs']['fine']} more "
        "(Adam, batch 32, cosine rate, STE; quantizers, 2:4 masks and biases as in "
        "`docs/workflow.md`). Every layer, the first and last included, is quantized.",
        "- **Convolutions on the core**: im2col on the host (`sparsecore.convnet.im2col`): a "
        "conv layer is the GEMM filters (C_out x 9 C_in) x patches (9 C_in x images x "
        "positions); its output codes are the next layer's feature maps. 2:4 groups run "
        "along the filter taps (c, dy, dx).",
        "- **Apprentice** (arXiv 1711.05852) on students narrow enough to lose accuracy: "
        f"an MLP 64 -> {MLP_HIDDEN} -> 10 (teacher: FP32 MLP 64 -> 128 -> 10, "
        f"{info['epochs']['mlp']} epochs every variant) and the 1x CNN (teacher: FP32 3x "
        "CNN). The student's loss is (1 - w) x CE(labels) + w x CE(teacher softmax) at "
        f"T = 1, w = {DISTILL_WEIGHT} for the MLP, w = 0.5 (the paper's) for the CNN. "
        "Scheme A: student and a fresh FP32 teacher trained "
        "jointly from random weights, the distillation term updating the student only "
        "(MLP); scheme B: the student from random weights, the trained teacher fixed; "
        "scheme C: the student starts from the trained FP32 net of its own size, the "
        "trained teacher fixed. Each is compared with the same student trained the same "
        "way without a teacher. How the student was chosen (all 40 epochs, integer "
        "accuracy): hidden 4 and 6 (2 seeds) are unstable already in FP32 (83 ± 2 and "
        "87 ± 3 %); 16 lost only 0.9 points to ternary (the previous run); 8 (5 seeds) "
        "lost 6.4 points, but plain ternary varied by 2.6 points (sd) between seeds and "
        "no scheme gained more than 1.7; 12 (5 seeds) lost 3.7 points with an sd of 1.2. "
        "At 12, scheme C gained 1.04 points with w = 0.5, 1.60 with w = 0.9 and 1.52 with "
        "w = 1 (T = 1); T = 2 gained less (0.48, 0.82), and T = 4 with w = 0.7 lost "
        "accuracy at 8 hidden (schemes A, B, C), so T = 1, w = 0.9. WRPN 4-bit lost less "
        "than 1.5 points at every width tried (fine-tuned from the FP32 net; at 8 hidden "
        "92.58 against 92.54 %), so no width makes both ternary and 4-bit lose 1.5 points.",
        "- **LSTM** (`sparsecore/rnn.py`) on sequential digits: each image is 8 time steps of "
        f"one 8-pixel row; hidden {RNN_HIDDEN} (1x), {2 * RNN_HIDDEN} (2x), "
        f"{4 * RNN_HIDDEN} (4x); FP32 trains {info['epochs']['rnn']} epochs, quantized "
        f"variants {info['epochs']['rnn_fine']} more from the FP32 net of their width; "
        "weights WRPN 4-bit or ternary, activations (pixels and hidden state) 4-bit "
        "(-7..7 on one grid 1/7), carried in the core's int8 operand. Why 1x is "
        f"{RNN_HIDDEN} hidden: at 16 the 1x ternary LSTM was 3.34 points below FP32 with a "
        "2 sd of 3.64, not measurably worse; at 8 (2 seeds, searched before this run) "
        "ternary was 11.7 points below FP32 (68.7 ± 3.9 against 80.3 ± 2.4 %), while 16 "
        "and 32 hidden (the 2x and 4x widths) are above the 1x FP32 net. Why sequential "
        "digits, not character-level language modelling: the same data as the MLP and "
        "CNN results, seconds of CPU per variant, and 8 steps per sequence keep the "
        "per-step RTL runs affordable.",
        "- **LSTM on the RTL**, per time step: the gate GEMM W [x_t; h] (4H x (8 + H)) "
        "on the fused layer design with a code table after the output stage "
        "(`LayerConfig(table=\"int8\")`): the output stage rounds each pre-activation "
        "to an int8 code on the grid 1/16 (sigmoid rows at half scale), the table maps "
        "it to rint(127 tanh(q/16)), so sigmoid = (1 + T)/2 and tanh = T come from one "
        "table; the host does the elementwise step exactly in integers "
        "(`IntegerLstm.step`: int16 cell on the grid 2^-12, round half to even); the "
        "cell's tanh is the same table: "
        + ("through the same design with identity weights (a pass-through GEMM, then the "
           "table)" if info["rtl_cell_tanh"] else
           "looked up by the table's numpy twin `sim.code_table.lookup` (bit-exact with "
           "the unit, verified under cocotb); `--rtl-cell-tanh` runs it on the RTL too, "
           "a second simulator run per step")
        + "; the classifier runs last on the layer design. LSTM runs on the RTL use the "
        f"first {info['rnn_rtl_images']} test images.",
        "- **On the RTL**: these variants of the first seed: "
        + ", ".join(f"`{n}`" for n in info["rtl_variants"])
        + " (`--rtl-all` runs every quantized variant), layer by layer on "
        "`SparseLayer` (core 4 x 4, G = 2, + output stage) through one function, "
        "`run_layer_rtl` (today `verif.gemm.run_layer`), CNN and MLP on the first "
        f"{info['rtl_images']} test images. Each run is one simulator start per layer "
        "(per time step for the LSTM); on the machine shared with other jobs that made "
        "every variant on every image too slow for one `make seeds`. numpy integer "
        "inference covers every variant on the whole test split (the accuracies below). "
        "Every output code of every RTL run is compared with the numpy integer model "
        "(`sim.inference.numpy_layer`, and the table's `lookup`) on the same input; 2:4 "
        "variants run in dense and sparse mode.",
        "",
        "## Targets",
        "",
        "| target | met | numbers |",
        "|---|---|---|",
    ]
    for text, met, numbers in targets:
        lines.append(f"| {text} | {'yes' if met else '**no**'} | {numbers} |")
    missed = [text for text, met, _ in targets if not met]
    lines += [
        "",
        f"Accuracy targets are judged on the mean over {info['seeds']} seeds; one test image "
        f"is {100 / info['test_images']:.2f} points. Targets not met: "
        + ("; ".join(missed) if missed else "none")
        + ". A claim that did not reproduce is left standing here with its numbers, "
        "the per-seed accuracies are below.",
        "",
        "## CNN: WRPN and 2:4",
        "",
        "| variant | filters | weights | acts | 2:4 | first seed % | mean ± sd % | RTL images "
        "| dense cycles/img | sparse cycles/img | sparse/dense |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows["cnn"].items():
        ratio = r["sparse_cycles"] / r["dense_cycles"] if r.get("sparse_cycles") else None
        lines.append(
            f"| `{name}` | {r['filters'][0]}, {r['filters'][1]} | {r['weights']} | {r['acts']} "
            f"| {'yes' if r['sparse'] else 'no'} | {r['first']:.2f} | {r['mean']:.2f} ± "
            f"{r['sd']:.2f} | {r.get('rtl_images', '-')} | {_cell(r.get('dense_cycles'), '.1f')}"
            f" | {_cell(r.get('sparse_cycles'), '.1f')} | {_cell(ratio, '.3f')} |")
    lines += [
        "",
        "Accuracy: numpy (float model for FP32, integer inference for quantized variants), "
        "whole test split. Cycles: the fused layer pipeline per RTL image, summed over the "
        "three layers.",
        "",
        "## Apprentice: narrow MLP",
        "",
        "| variant | hidden | weights | first seed % | mean ± sd % | RTL images | dense "
        "cycles/img |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows["mlp"].items():
        lines.append(f"| `{name}` | {r['hidden']} | {r['weights']} | {r['first']:.2f} | "
                     f"{r['mean']:.2f} ± {r['sd']:.2f} | {r.get('rtl_images', '-')} | "
                     f"{_cell(r.get('dense_cycles'), '.1f')} |")
    lines += [
        "",
        *_apprentice_findings(rows),
        "## LSTM on sequential digits: low precision and width",
        "",
        "| variant | hidden | weights | acts | 2:4 | first seed % | mean ± sd % | RTL images "
        "| dense cycles/img | sparse cycles/img | sparse/dense |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows["rnn"].items():
        ratio = r["sparse_cycles"] / r["dense_cycles"] if r.get("sparse_cycles") else None
        lines.append(
            f"| `{name}` | {r['hidden']} | {r['weights']} | {r['acts']} | "
            f"{'yes' if r['sparse'] else 'no'} | {r['first']:.2f} | {r['mean']:.2f} ± "
            f"{r['sd']:.2f} | {r.get('rtl_images', '-')} | {_cell(r.get('dense_cycles'), '.1f')}"
            f" | {_cell(r.get('sparse_cycles'), '.1f')} | {_cell(ratio, '.3f')} |")
    lines += [
        "",
        "LSTM cycles per RTL image: every run of a sequence summed (8 steps x the gate "
        "GEMM with output stage and table" + (", and the cell's tanh pass" if
                                               info["rtl_cell_tanh"] else "")
        + ", + the classifier); the table loads (256 cycles per run) are not counted.",
        "",
        "![CNN accuracy vs width; Apprentice](seeds.png)",
        "",
        "## Per-seed accuracies",
        "",
        "| variant | " + " | ".join(f"seed {s}" for s in range(info["seeds"])) + " |",
        "|---|" + "---|" * info["seeds"],
    ]
    for kind in ("cnn", "mlp", "rnn"):
        for name, r in rows[kind].items():
            lines.append(f"| {kind}:`{name}` | " + " | ".join(f"{v:.2f}" for v in r["per_seed"])
                         + " |")
    lines += [
        "",
        "## Bad input",
        "",
        "- A convolution whose kernel is larger than its input: `sparsecore.convnet.im2col` "
        "raises `ValueError: kernel 3x3 is larger than the input 2x2` before any GEMM.",
        "- A sequence of length 0: `sparsecore.rnn.sequences` raises `ValueError: x holds no "
        "image: a sequence batch of length 0`, `IntegerLstm.run` `ValueError: the "
        "sequence has length 0: nothing to run`.",
        "- A nonlinearity table whose length is not the code count of its input format: "
        "`sim.code_table.check_table` raises `ValueError: table must have 256 entries (one "
        "per int8 code), not shape (255,)`.",
        "",
        "## Run times",
        "",
        f"- Training, {info['seeds']} seeds: {info['times']['training']:.0f} s wall clock "
        f"({info['processes']} processes; {info['times']['per_seed']:.0f} s per seed in one "
        "process).",
        f"- RTL runs (builds included): {info['times']['rtl']:.0f} s; whole run "
        f"{info['times']['total']:.0f} s, on a machine shared with other jobs"
        + (f" (this report reused the {' and '.join(info['times']['reused'])} of that run "
           "from the cache)" if info["times"].get("reused") else "") + ". "
        "`make seeds` keeps the trained nets and the RTL rows in `build/seeds/` and reuses "
        "them while seeds, epochs, variants and RTL settings are unchanged.",
        "",
        *_reproducibility(info),
        "",
        "## Reproduce",
        "",
        "```",
        "make seeds          # writes docs/seeds.{md,png,json} and docs/seeds_nets.npz",
        "make seeds-check    # sparsecore seeds --check: rerun and compare with the record",
        ".venv/bin/sparsecore seeds --quick --out build/seeds   # a fast smoke run",
        "```",
        "",
        *doc_stamp.markdown(info["stamp"]),
        "",
    ]
    Path(path).write_text("\n".join(lines))


def check_record(nets, data, log=log):
    """The record ``sparsecore seeds --check`` compares with: per first-seed quantized
    network its test predictions and output codes (sha256), the short training's weight
    digests and accuracies, and what that short training costs with BLAS operations
    instead of the reproducible ones. Returns (record, {(kind, name): integer net})."""
    from threadpoolctl import threadpool_limits

    from sparsecore.sim.inference import predict

    x_train, _, x_test, _ = data
    integer, record = {}, {}
    for (kind, name), (recipe, layers) in nets.items():
        net = integer_net(kind, recipe, layers, x_train)
        codes = final_codes(kind, net, x_test)
        integer[(kind, name)] = net
        record[f"{kind}:{name}"] = {"codes_sha256": codes_digest(codes),
                                    # one digit per test image: short JSON
                                    "predictions": "".join(map(str, predict(codes)))}
    log(f"check record: short training (seed {SHORT['seed']}, {SHORT['epochs']} epoch(s), "
        f"{SHORT['images']} images), and its cost with BLAS operations")
    with threadpool_limits(1):
        short = short_training(data)
    timing = blas_timing(data)
    return {"nets": record, "short": {**SHORT, "variants": short},
            "timing": timing}, integer


def main(argv=None):
    parser = ArgumentParser(prog="sparsecore seeds", description=__doc__.split("\n")[0],
                            epilog="sparsecore seeds --check [--out DIR]: rerun the "
                                   "deterministic parts and compare them with "
                                   "DIR/seeds.json (sparsecore/seeds_check.py)")
    parser.add_argument("--out", default="docs", help="folder for seeds.md/.png/.json")
    parser.add_argument("--seeds", type=int, default=5, help="training seeds (0..N-1)")
    parser.add_argument("--rtl-images", type=int, default=RTL_IMAGES,
                        help="test images run on the RTL (numpy covers all)")
    parser.add_argument("--processes", type=int, default=2, help="training processes")
    parser.add_argument("--rtl-all", action="store_true",
                        help="every quantized variant on the RTL (default: those the targets "
                             "name)")
    parser.add_argument("--rtl-cell-tanh", action="store_true",
                        help="the LSTM cell's tanh on the RTL too (a second simulator run per "
                             "step; default: by the table's numpy twin)")
    parser.add_argument("--rtl-workers", type=int, default=RTL_WORKERS,
                        help="RTL runs at a time")
    parser.add_argument("--cache", default=None,
                        help="pickle of the trained nets: reused when it matches the seeds, "
                             "epochs and variants (so a report can be redone without "
                             "retraining), written otherwise")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 seeds, 2 epochs, 8 images on the RTL, "
                             "two variants on the RTL")
    args = parser.parse_args(argv)
    epochs = {"cnn": CNN_EPOCHS, "fine": CNN_FINE_EPOCHS, "mlp": MLP_EPOCHS,
              "rnn": RNN_EPOCHS, "rnn_fine": RNN_FINE_EPOCHS}
    rnn_images, rnn_only = RNN_RTL_IMAGES, RNN_RTL
    if args.quick:
        args.seeds, args.rtl_images = 2, 8
        epochs = {"cnn": 2, "fine": 1, "mlp": 2, "rnn": 2, "rnn_fine": 1}
        rnn_images, rnn_only = 4, QUICK_RTL
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 (a spread needs two)")
    if args.rtl_images < 1:
        parser.error("--rtl-images must be at least 1")

    from sparsecore.verif import stamp as doc_stamp

    # Every output path is checked before the hours of work (safe_io's rules), and
    # written whole at the end.
    md_path, png_path, json_path, npz_path = check_output_files(
        args.out, ["seeds.md", "seeds.png", "seeds.json", "seeds_nets.npz"], "--out")
    cache = rtl_cache = None
    if args.cache:   # its folder is created like --out's (build/seeds/ after make clean)
        cache = check_output_file(args.cache, "--cache") if Path(args.cache).parent.is_dir() \
            else check_output_files(Path(args.cache).parent, [Path(args.cache).name],
                                    "--cache")[0]
        rtl_cache = check_output_files(cache.parent, [cache.stem + "_rtl.pkl"],
                                       "--cache (its _rtl.pkl)")[0]
    check_distinct([], [("--out (its seeds.md)", md_path), ("--out (its seeds.png)", png_path),
                        ("--out (its seeds.json)", json_path),
                        ("--out (its seeds_nets.npz)", npz_path), ("--cache", cache),
                        ("--cache (its _rtl.pkl)", rtl_cache)])
    total_start = time.monotonic()
    out_dir = Path(args.out)
    make_dirs(out_dir)
    if cache:
        make_dirs(cache.parent)
    outputs = [md_path, png_path, json_path, npz_path]
    git = doc_stamp.git_state(outputs=outputs)   # the tree the numbers come from
    data = load_digits_split()
    log(f"training {len(CNN_RECIPES)} CNN + {len(MLP_RECIPES)} MLP + {len(RNN_RECIPES)} LSTM "
        f"variants x {args.seeds} seeds in {args.processes} processes")
    start = time.monotonic()
    jobs = [(seed, data, epochs, seed == 0) for seed in range(args.seeds)]
    key = repr((args.seeds, epochs, [r.name for r in (*CNN_RECIPES, *MLP_RECIPES,
                                                       *RNN_RECIPES)]))
    saved = None
    if cache and cache.is_file():
        import pickle
        with open(cache, "rb") as f:
            saved = pickle.load(f)
        if saved.get("key") != key:
            saved = None
    reused = []
    if saved is not None:
        runs, training = saved["runs"], saved["training"]
        reused.append("training")
        log(f"training: reusing {cache} (--cache; delete it to retrain)")
    else:
        if args.processes > 1:
            import multiprocessing
            with multiprocessing.get_context("fork").Pool(args.processes) as pool:
                runs = []
                for run in pool.imap(train_seed, jobs):
                    log(f"  seed {run['seed']}: {run['seconds']:.1f} s")
                    runs.append(run)
        else:
            runs = [train_seed(job) for job in jobs]
        training = time.monotonic() - start
        if cache:
            import pickle
            with atomic_output(cache) as tmp, open(tmp, "wb") as f:
                pickle.dump({"key": key, "runs": runs, "training": training}, f)

    start = time.monotonic()
    only = QUICK_RTL if args.quick else (None if args.rtl_all else RTL_DEFAULT)
    rtl_key = repr((key, args.rtl_images, only, rnn_images, rnn_only, args.rtl_cell_tanh))
    rtl = None
    if rtl_cache and rtl_cache.is_file() and saved is not None:
        import pickle
        with open(rtl_cache, "rb") as f:
            stored = pickle.load(f)
        if stored.get("key") == rtl_key:
            rtl, rtl_seconds = stored["rows"], stored["seconds"]
            reused.append("RTL runs")
            log(f"RTL: reusing {rtl_cache} (same nets, images and variants)")
    if rtl is None:
        rtl = rtl_runs(runs[0]["nets"], data, args.rtl_images, only, rnn_images, rnn_only,
                       workers=args.rtl_workers, cell_tanh_on_rtl=args.rtl_cell_tanh)
        rtl_seconds = time.monotonic() - start
        if rtl_cache:
            import pickle
            with atomic_output(rtl_cache) as tmp, open(tmp, "wb") as f:
                pickle.dump({"key": rtl_key, "rows": rtl, "seconds": rtl_seconds}, f)
    rows, targets = evaluate(runs, rtl)
    cached_seconds = (training if "training" in reused else 0.0) + (
        rtl_seconds if "RTL runs" in reused else 0.0)
    record, integer = check_record(runs[0]["nets"], data)
    info = {
        "stamp": doc_stamp.collect(
            seeds=range(args.seeds), outputs=outputs, git=git,
            settings={"BLAS threads in training": 1,
                      "Training processes": args.processes,
                      "Training arithmetic": "matrix products, exp, tanh, cos from exact "
                                             "operations (sparsecore.sim.reproducible)"}),
        "seeds": args.seeds, "epochs": epochs,
        "processes": args.processes, "rtl_images": args.rtl_images,
        "rnn_rtl_images": rnn_images,
        "rtl_variants": sorted(rtl), "rtl_cell_tanh": args.rtl_cell_tanh,
        "train_images": len(data[1]), "test_images": len(data[3]),
        "rows": rows, "targets": targets, "check": record,
        "times": {"training": training, "rtl": rtl_seconds,
                  "per_seed": float(np.mean([r["seconds"] for r in runs])),
                  # a run from scratch: this run's time plus what it took from the cache
                  "total": time.monotonic() - total_start + cached_seconds,
                  "reused": reused},
    }
    with atomic_output(npz_path) as tmp:
        save_nets(tmp, integer)
    with atomic_output(png_path) as tmp:
        plot(rows, tmp)
    with atomic_output(md_path) as tmp:
        write_markdown(tmp, info)
    write_json(json_path, info)
    for text, met, numbers in targets:
        log(f"target {'MET' if met else 'NOT MET'}: {text}: {numbers}")
    log(f"wrote {out_dir / 'seeds.md'} in {info['times']['total']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
