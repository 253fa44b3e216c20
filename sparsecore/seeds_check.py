"""`sparsecore seeds --check`: rerun the deterministic parts of `make seeds` and compare
them with what ``docs/seeds.json`` and ``docs/seeds_nets.npz`` recorded.

1. **Integer inference** of every quantized variant (CNN, MLP, LSTM) from the committed
   integer networks of the first training seed (``seeds_nets.npz``: weight codes,
   multipliers, shifts, biases, the LSTM's table), not from retrained weights: the
   output codes on the whole test split (sha256), every prediction and the first seed's
   accuracy must equal the recorded ones.
2. **Cycles**: for the variants that ran on the RTL, the performance model
   (``sim.perf.predict_gemm``) with the latency of the elaborated layer design must give
   the cycles the RTL counted, per layer (per run for the LSTM) and mode.
3. **A short training run** (:func:`short_training`: the seed, epochs and images in
   ``json["check"]``; a CNN, the Apprentice MLPs with schemes A, B and C, an LSTM):
   weights to the bit (sha256) and float test accuracy.

Any difference is reported by name and the command exits 1. Training is bit-exact
across machines (``sparsecore.sim.reproducible``), so every comparison is exact.
What is recorded, and the short training, are in :mod:`sparsecore.seeds`
(:func:`~sparsecore.seeds.check_record`).
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from sparsecore.seeds import final_codes, load_nets, short_training
from sparsecore.workflow_check import CheckFailed, codes_digest, compare_records

__all__ = ["CheckFailed", "check", "main"]


def _check_inference(info, nets, x_test, y_test, log):
    from sparsecore.sim.inference import predict

    recorded = info["check"]["nets"]
    if sorted(recorded) != sorted(f"{k}:{n}" for k, n in nets):
        raise CheckFailed(f"the committed networks are {sorted(f'{k}:{n}' for k, n in nets)}, "
                          f"the record's {sorted(recorded)}")
    for (kind, name), net in nets.items():
        want = recorded[f"{kind}:{name}"]
        codes = final_codes(kind, net, x_test)
        pred = predict(codes)
        want_pred = np.array([int(c) for c in want["predictions"]])
        if not np.array_equal(pred, want_pred):
            j = int(np.flatnonzero(pred != want_pred)[0])
            raise CheckFailed(f"{kind}:{name}: prediction of test image {j} is {int(pred[j])}, "
                              f"recorded {int(want_pred[j])}")
        if codes_digest(codes) != want["codes_sha256"]:
            raise CheckFailed(f"{kind}:{name}: output codes differ from the recorded ones "
                              "(sha256)")
        acc = 100 * float((pred == y_test).mean())
        first = info["rows"][kind][name]["first"]
        if acc != first:
            raise CheckFailed(f"{kind}:{name}: first-seed accuracy {acc!r}, recorded {first!r}")
        _check_cycles(kind, name, net, info["rows"][kind][name])
    log(f"  {len(nets)} networks: codes, predictions, first-seed accuracy and RTL cycles as "
        "recorded")


def _check_cycles(kind, name, net, row):
    from sparsecore.sim.perf import predict_gemm

    for mode in ("dense", "sparse"):
        runs = row.get(f"{mode}_runs")
        if not runs:
            continue
        for i, (what, m, k, n, latency, cycles) in enumerate(runs):
            model = predict_gemm(_core(kind, net), m, n, k, dense=mode == "dense",
                                 latency=latency).cycles
            if model != cycles:
                raise CheckFailed(f"{kind}:{name} {mode} run {i} ({what}, {m}x{k} x {n}): "
                                  f"{model} cycles (model, latency {latency}), the RTL "
                                  f"counted {cycles}")
            if latency != _latency(kind, net, what):
                raise CheckFailed(f"{kind}:{name} {mode} run {i} ({what}): the layer design's "
                                  f"latency is {_latency(kind, net, what)}, recorded {latency}")


def _core(kind, net):
    if kind == "rnn":
        from sparsecore.seeds import lstm_configs
        return lstm_configs(net)[0]
    from sparsecore.workflow import core_for
    return core_for(net)


def _latency(kind, net, what):
    """The elaborated layer design's latency for a run ``what`` (``layer i``, ``gates``,
    ``tanh(cell)``, ``classifier``)."""
    from sparsecore.seeds import layer_latency
    if kind == "rnn":
        from sparsecore.seeds import lstm_configs
        _, gate_cfg, head_cfg = lstm_configs(net)
        return layer_latency(head_cfg if what == "classifier" else gate_cfg)
    from sparsecore.workflow import layer_config
    layer = net.layers[int(what.split()[-1])]
    return layer_latency(layer_config(_core(kind, net), net, layer))


def check(doc_dir, log=print):
    """Run the checks against ``doc_dir``/seeds.{json,_nets.npz}; raise CheckFailed."""
    from threadpoolctl import threadpool_limits

    from sparsecore.nn import load_digits_split

    doc_dir = Path(doc_dir)
    info = json.loads((doc_dir / "seeds.json").read_text())
    if "check" not in info:
        raise CheckFailed(f"{doc_dir / 'seeds.json'} has no check record: regenerate it with "
                          "make seeds")
    data = load_digits_split()
    start = time.monotonic()
    log("integer inference from the committed networks, cycles from the performance model")
    _check_inference(info, load_nets(doc_dir / "seeds_nets.npz"), data[2], data[3], log)
    rec = info["check"]["short"]
    log(f"short training: seed {rec['seed']}, {rec['epochs']} epoch(s), {rec['images']} "
        "images")
    with threadpool_limits(1):
        got = short_training(data, rec["seed"], rec["epochs"], rec["images"])
    compare_records("short training", got, rec["variants"])
    log("  weights to the bit and accuracies as recorded")
    log(f"check passed in {time.monotonic() - start:.1f} s")


def main(argv=None):
    """``sparsecore seeds --check [--out DIR]``: 0 when everything is as recorded, 1 with
    one line naming the first difference."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="sparsecore seeds", description="Rerun the deterministic parts of `make seeds` "
        "and compare them with the committed record (seeds.json, seeds_nets.npz).")
    parser.add_argument("--check", action="store_true", required=True,
                        help="compare a rerun with the record (this command)")
    parser.add_argument("--out", default="docs", metavar="DIR",
                        help="folder holding seeds.json and seeds_nets.npz (default: docs)")
    args = parser.parse_args(argv)
    try:
        check(args.out, log=lambda message: print(message, file=sys.stderr, flush=True))
    except (CheckFailed, FileNotFoundError) as err:
        print(f"check FAILED: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
