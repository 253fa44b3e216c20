"""`sparsecore demo --check`: rerun the deterministic parts of `make demo` and
compare them with what ``docs/workflow.json`` and ``docs/workflow_nets.npz`` recorded.

1. **Integer inference** of every quantized variant from the committed integer
   networks (``workflow_nets.npz``: weight codes, multipliers, shifts, biases of
   the first training seed), not from retrained weights: each layer's output
   codes (sha256) and every prediction must equal the recorded ones, which the
   RTL produced (and the numpy model matched) when the doc was generated.
2. **Cycles**: the performance model (``sim.perf.predict_gemm``) with the latency
   of the layer design (``hw.layer.SparseLayer``, elaborated, not built) must
   give the cycles the RTL counted, per layer and mode.
3. **A short training run** (the seed and epochs in ``json["check"]``, every
   variant): weights to the bit (sha256) and test accuracy.
4. With ``--full``: the demo's whole training (every seed, every epoch): the
   accuracies of the table, the first seed's weights to the bit, and the integer
   networks built from them equal the committed ones.

Any difference is reported by name (variant, layer, mode, image or seed) and the
command exits 1. Training is bit-exact across machines (``sparsecore.sim.reproducible``), so
every comparison is exact; there is no tolerance.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from sparsecore.nn import RECIPES, load_digits_split
from sparsecore.sim.inference import integer_network, predict, run_network
from sparsecore.workflow import core_for, layer_config, train_seeds
from sparsecore.workflow_check import (
    LAYER_ARRAYS,
    CheckFailed,
    codes_digest,
    compare_records,
    load_networks,
    short_training,
    weights_digest,
)

__all__ = ["CheckFailed", "check", "main"]


def _check_inference(info, networks, x_test, log):
    from sparsecore.hw.layer import SparseLayer
    from sparsecore.sim.perf import predict_gemm

    quantized = [r.name for r in RECIPES if r.quantized and r.name in info["rows"]]
    if sorted(quantized) != sorted(networks):
        raise CheckFailed(f"the committed networks are {sorted(networks)}, the table's "
                          f"quantized variants {sorted(quantized)}")
    for name in quantized:
        row = info["rows"][name]
        net, want_pred = networks[name]
        x_codes = net.input_codes(x_test)
        core = core_for(net)
        for mode in ("dense", "sparse"):
            if f"{mode}_layer_cycles" not in row:
                continue
            trace = run_network(net, x_codes, dense=mode == "dense")
            for i, (_, out) in enumerate(trace):
                if codes_digest(out) != row["codes_sha256"][i]:
                    raise CheckFailed(f"{name} {mode} layer {i}: output codes differ from the "
                                      "recorded ones (sha256)")
            pred = predict(trace[-1][1])
            if not np.array_equal(pred, want_pred):
                j = int(np.flatnonzero(pred != want_pred)[0])
                raise CheckFailed(f"{name} {mode}: prediction of test image {j} is "
                                  f"{int(pred[j])}, recorded {int(want_pred[j])}")
            acc = float((pred == info["_y_test"]).mean())
            if acc != row["accuracy"]:
                raise CheckFailed(f"{name} {mode}: accuracy {acc!r}, recorded "
                                  f"{row['accuracy']!r}")
            for i, layer in enumerate(net.layers):
                latency = SparseLayer(layer_config(core, net, layer)).latency
                m, k = layer.shape
                cycles = predict_gemm(core, m, x_codes.shape[1], k, dense=mode == "dense",
                                      latency=latency).cycles
                want = row[f"{mode}_layer_cycles"][i]
                if cycles != want:
                    raise CheckFailed(f"{name} {mode} layer {i}: {cycles} cycles (model, "
                                      f"latency {latency}), the RTL counted {want}")
        log(f"  {name}: codes, predictions, accuracy and cycles as recorded")


def check(doc_dir, full=False, log=print):
    """Run the checks against ``doc_dir``/workflow.{json,_nets.npz}; raise CheckFailed."""
    from threadpoolctl import threadpool_limits

    doc_dir = Path(doc_dir)
    info = json.loads((doc_dir / "workflow.json").read_text())
    if "check" not in info:
        raise CheckFailed(f"{doc_dir / 'workflow.json'} has no check record: regenerate it "
                          "with make demo")
    x_train, y_train, x_test, y_test = load_digits_split()
    x_test, y_test = x_test[:info["test_images"]], y_test[:info["test_images"]]
    info["_y_test"] = y_test
    data = (x_train, y_train, x_test, y_test)

    start = time.monotonic()
    log("integer inference from the committed networks, cycles from the performance model")
    _check_inference(info, load_networks(doc_dir / "workflow_nets.npz"), x_test, log)

    rec = info["check"]
    log(f"short training: seed {rec['seed']}, {rec['epochs']} epochs, every variant")
    with threadpool_limits(1):
        got = short_training(data, rec["seed"], rec["epochs"])
    compare_records("short training", got, rec["variants"])
    log("  weights to the bit and accuracies as recorded")

    if full:
        log(f"full training: {info['seeds']} seeds x {info['epochs']} epochs")
        with threadpool_limits(1):
            runs = train_seeds(data, range(info["seeds"]), info["epochs"], log)
        for name, row in info["rows"].items():
            per_seed = [run[name][3 if run[name][0].quantized else 2] for run in runs]
            for seed, (got_acc, want_acc) in enumerate(zip(per_seed, row["per_seed"],
                                                           strict=True)):
                if got_acc != want_acc:
                    raise CheckFailed(f"full training: {name} seed {seed} accuracy "
                                      f"{got_acc!r}, recorded {want_acc!r}")
            digest = weights_digest(runs[0][name][1])
            if digest != row["weights_sha256"]:
                raise CheckFailed(f"full training: {name} seed 0 weights differ from the "
                                  "recorded ones (sha256)")
        committed = load_networks(doc_dir / "workflow_nets.npz")
        for name, (net, _) in committed.items():
            recipe, layers = runs[0][name][0], runs[0][name][1]
            rebuilt = integer_network(recipe, layers, x_train)
            for i, (a, b) in enumerate(zip(rebuilt.layers, net.layers, strict=True)):
                for field in LAYER_ARRAYS:
                    if not np.array_equal(getattr(a, field), getattr(b, field)):
                        raise CheckFailed(f"full training: {name} layer {i} {field} differs "
                                          "from the committed network")
        log("  every seed's accuracies, the first seed's weights and networks as recorded")
    log(f"check passed in {time.monotonic() - start:.1f} s")


def main(argv=None):
    """``sparsecore demo --check [--full] [--out DIR]``: 0 when everything is as recorded,
    1 with one line naming the first difference."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="sparsecore demo", description="Rerun the deterministic parts of `make demo` "
        "and compare them with the committed record (workflow.json, workflow_nets.npz).")
    parser.add_argument("--check", action="store_true", required=True,
                        help="compare a rerun with the record (this command)")
    parser.add_argument("--out", default="docs", metavar="DIR",
                        help="folder holding workflow.json and workflow_nets.npz "
                             "(default: docs)")
    parser.add_argument("--full", action="store_true",
                        help="also retrain every seed at full length (minutes)")
    args = parser.parse_args(argv)
    try:
        check(args.out, full=args.full,
              log=lambda message: print(message, file=sys.stderr, flush=True))
    except (CheckFailed, FileNotFoundError) as err:
        print(f"check FAILED: {err}", file=sys.stderr)
        return 1
    return 0
