"""What `make demo` records so that a rerun can be compared with it, and the training
runs under other kernels.

- :func:`weights_digest`, :func:`codes_digest`: sha256 of trained weights and of
  integer codes (``docs/workflow.json`` holds them);
- :func:`save_networks` / :func:`load_networks`: the first seed's integer
  networks and predictions (``docs/workflow_nets.npz``);
- :func:`short_training`: the short seeded run that ``sparsecore demo --check``
  repeats (:mod:`sparsecore.demo_check`);
- :func:`cross_kernel_runs`: the same kind of run in fresh processes under other
  OpenBLAS kernels, numpy SIMD targets and thread counts, with the reproducible
  operations and with plain BLAS/libm ones (``python -m sparsecore.workflow_check``
  is one such run).
"""

import hashlib
import time

import numpy as np

from sparsecore.nn import train_all
from sparsecore.sim.inference import (
    IntegerLayer,
    IntegerNetwork,
    integer_network,
    predict,
    run_network,
)

__all__ = ["weights_digest", "codes_digest", "save_networks", "load_networks",
           "short_training", "cross_kernel_runs", "SHORT_SEED", "SHORT_EPOCHS", "LAYER_ARRAYS",
           "net_arrays", "net_from_arrays", "CheckFailed", "compare_records"]

SHORT_SEED = 0
SHORT_EPOCHS = 2
LAYER_ARRAYS = ("weights", "mult", "shift", "bias")
_NET_FIELDS = ("weights", "acts", "act_bits", "acc_bits", "mult_bits", "shift_bits")


class CheckFailed(AssertionError):
    """A rerun differs from the committed record; the message names the first difference
    (``sparsecore demo --check``, ``sparsecore seeds --check``)."""


def compare_records(what, got, want):
    """Raise CheckFailed on the first variant or key of ``want`` that ``got`` lacks or
    differs in."""
    for name, want_rec in want.items():
        if name not in got:
            raise CheckFailed(f"{what}: variant {name!r} missing from the rerun")
        for key, value in want_rec.items():
            if got[name][key] != value:
                raise CheckFailed(f"{what}: {name} {key} = {got[name][key]!r}, recorded "
                                  f"{value!r}")


def weights_digest(layers):
    """sha256 of a trained network's float64 weights and biases, layer by layer."""
    h = hashlib.sha256()
    for layer in layers:
        for array in (layer.w, layer.b):
            h.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    return h.hexdigest()


def codes_digest(codes):
    """sha256 of an integer array (shape and values as little-endian int64)."""
    codes = np.ascontiguousarray(codes, dtype="<i8")
    return hashlib.sha256(repr(codes.shape).encode() + codes.tobytes()).hexdigest()


def net_arrays(key, net):
    """An integer network's fields and layers as int arrays under ``key/`` (no pickles):
    the .npz layout of ``docs/workflow_nets.npz`` and ``docs/seeds_nets.npz``."""
    arrays = {f"{key}/{field}": np.array(getattr(net, field)) for field in _NET_FIELDS}
    for i, layer in enumerate(net.layers):
        for field in LAYER_ARRAYS:
            arrays[f"{key}/{i}/{field}"] = np.asarray(getattr(layer, field), dtype=np.int32)
        arrays[f"{key}/{i}/flags"] = np.array([layer.sparse, layer.relu])
        arrays[f"{key}/{i}/out"] = np.array(layer.out)
    return arrays


def net_from_arrays(arrays, key):
    """(layers, fields) of the network :func:`net_arrays` stored under ``key/``."""
    layers = []
    while f"{key}/{len(layers)}/weights" in arrays:
        prefix = f"{key}/{len(layers)}/"
        sparse, relu = (bool(v) for v in arrays[prefix + "flags"])
        layers.append(IntegerLayer(
            arrays[prefix + "weights"].astype(np.int64), sparse,
            *(arrays[prefix + f].astype(np.int64) for f in ("mult", "shift", "bias")),
            relu, str(arrays[prefix + "out"])))
    return tuple(layers), {f: arrays[f"{key}/{f}"].item() for f in _NET_FIELDS}


def save_networks(path, networks, predictions):
    """Write ``{variant: IntegerNetwork}`` and ``{variant: predictions}`` to one .npz."""
    arrays = {}
    for name, net in networks.items():
        arrays |= net_arrays(name, net)
        arrays[f"{name}/predictions"] = np.asarray(predictions[name], dtype=np.int8)
    np.savez_compressed(path, **arrays)


def load_networks(path):
    """``{variant: (IntegerNetwork, predictions)}`` from :func:`save_networks`' file."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = dict(npz.items())
    out = {}
    for name in sorted({key.split("/")[0] for key in arrays}):
        layers, fields = net_from_arrays(arrays, name)
        net = IntegerNetwork(layers=layers, **fields).check()
        out[name] = (net, arrays[f"{name}/predictions"].astype(np.int64))
    return out


def _int_accuracy(recipe, layers, x_train, x_test, y_test):
    net = integer_network(recipe, layers, x_train)
    return float((predict(run_network(net, net.input_codes(x_test))[-1][1]) == y_test).mean())


def short_training(data, seed=SHORT_SEED, epochs=SHORT_EPOCHS):
    """{variant: {"weights_sha256", "accuracy", "int_accuracy"}} of a short seeded run."""
    x_train, y_train, x_test, y_test = data
    trained = train_all(x_train, y_train, x_test, y_test, np.random.default_rng(seed),
                        epochs=epochs)
    out = {}
    for name, (recipe, layers, acc) in trained.items():
        out[name] = {"weights_sha256": weights_digest(layers), "accuracy": acc,
                     "int_accuracy": (_int_accuracy(recipe, layers, x_train, x_test, y_test)
                                      if recipe.quantized else None)}
    return out


# -- the same short training under other kernels, in fresh processes ------------------------

KERNEL_EPOCHS = 10
_SCHEMES = {
    "exact": "sparsecore.sim.reproducible (as trained)",
    "blas": "plain `@`, np.exp, np.cos (before the fix)",
}


def _use_blas_scheme():
    """Swap sparsecore.nn's reproducible operations for the BLAS and libm ones it used before."""
    import sparsecore.nn

    sparsecore.nn.matmul = np.matmul
    sparsecore.nn.exp = np.exp
    sparsecore.nn.cos = np.cos


def _variations():
    """(label, environment changes, BLAS threads) to train under."""
    import platform

    from sparsecore.verif.stamp import numpy_simd

    out = [("this machine's defaults", {}, 1), ("2 BLAS threads", {}, 2)]
    if platform.machine() in ("x86_64", "AMD64"):
        out.append(("OpenBLAS kernel Prescott (SSE3)", {"OPENBLAS_CORETYPE": "Prescott"}, 1))
        try:
            flags = open("/proc/cpuinfo").read()
        except OSError:
            flags = ""
        if " avx2" in flags:
            out.append(("OpenBLAS kernel Haswell (AVX2)", {"OPENBLAS_CORETYPE": "Haswell"}, 1))
    dispatched = numpy_simd()["dispatched"]
    if dispatched:
        out.append((f"numpy without {' '.join(dispatched)}",
                    {"NPY_DISABLE_CPU_FEATURES": " ".join(dispatched)}, 1))
    return out


def _child(argv):
    """In a fresh process: a short training; JSON to stdout, weights to an .npz."""
    import json

    from threadpoolctl import threadpool_info, threadpool_limits

    from sparsecore.nn import load_digits_split
    from sparsecore.verif.stamp import numpy_simd

    scheme, seed, epochs, images, weights_path, threads = argv
    if scheme == "blas":
        _use_blas_scheme()
    x_train, y_train, x_test, y_test = load_digits_split()
    data = (x_train, y_train, x_test[:int(images)], y_test[:int(images)])
    start = time.perf_counter()
    with threadpool_limits(int(threads)):
        trained = train_all(*data, np.random.default_rng(int(seed)), epochs=int(epochs))
    seconds = time.perf_counter() - start
    record = {"seconds": seconds,
              "kernel": ", ".join(dict.fromkeys(  # numpy's and scipy's OpenBLAS, deduplicated
                  str(i.get("architecture")) for i in threadpool_info()
                  if i.get("user_api") == "blas")),
              "simd": " ".join(numpy_simd()["dispatched"]) or "-", "variants": {}}
    arrays = {}
    for name, (recipe, layers, acc) in trained.items():
        record["variants"][name] = {
            "weights_sha256": weights_digest(layers),
            "accuracy": (_int_accuracy(recipe, layers, *data[:1], *data[2:])
                         if recipe.quantized else acc),
            "quantized": recipe.quantized}
        for i, layer in enumerate(layers):
            arrays[f"{name}/{i}"] = layer.w
    np.savez(weights_path, **arrays)
    print(json.dumps(record))


def cross_kernel_runs(seed, epochs=KERNEL_EPOCHS, images=None, log=print, jobs=2):
    """Train every variant briefly under each variation of :func:`_variations`, with the
    reproducible operations and with plain BLAS/libm ones; compare each with the
    defaults' run of the same scheme. ``jobs``: training processes at once.

    Returns ``{"epochs", "seed", "schemes", "runs": [{label, kernel, simd, scheme:
    {identical, variants, max_accuracy_points, max_rel_weight_diff_fp32,
    max_rel_weight_diff_quantized}}]}``.
    """
    import json
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    epochs = KERNEL_EPOCHS if epochs is None else epochs
    images = 10 ** 6 if images is None else images
    out = {"seed": seed, "epochs": epochs, "schemes": _SCHEMES, "runs": []}
    base = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, env_changes, threads in _variations():
            env = {k: v for k, v in os.environ.items()
                   if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
            env.update(env_changes)
            run = {"label": label, "env": env_changes, "threads": threads}
            # the schemes of one variation train side by side (one CPU each when jobs > 1):
            # the same conditions for both, so their time ratio is the cost of exactness
            paths = {scheme: Path(tmp) / f"{len(out['runs'])}_{scheme}.npz"
                     for scheme in _SCHEMES}

            def start(scheme, env=env, threads=threads, paths=paths):
                return subprocess.Popen(
                    [sys.executable, "-m", "sparsecore.workflow_check", scheme, str(seed),
                     str(epochs), str(images), str(paths[scheme]), str(threads)],
                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

            procs = {scheme: start(scheme) for scheme in _SCHEMES} if jobs > 1 else {}
            for scheme in _SCHEMES:
                proc = procs.get(scheme) or start(scheme)
                stdout, stderr = proc.communicate()
                if proc.returncode != 0:
                    raise RuntimeError(f"training under {label} failed:\n{stderr}")
                record = json.loads(stdout)
                with np.load(paths[scheme]) as npz:
                    record["weights"] = dict(npz.items())
                run["kernel"], run["simd"] = record["kernel"], record["simd"]
                if scheme not in base:
                    base[scheme] = record
                run[scheme] = _compare_runs(record, base[scheme])
                run[scheme]["seconds"] = record["seconds"]
            log(f"  {label}: kernel {run['kernel']}, numpy SIMD {run['simd']}: " + "; ".join(
                f"{s} {run[s]['identical']}/{run[s]['variants']} identical" for s in _SCHEMES))
            out["runs"].append(run)
    return out


def _compare_runs(got, want):
    identical, points, rel = 0, 0.0, {"fp32": 0.0, "quantized": 0.0}
    for name, rec in got["variants"].items():
        ref = want["variants"][name]
        identical += rec["weights_sha256"] == ref["weights_sha256"]
        points = max(points, 100 * abs(rec["accuracy"] - ref["accuracy"]))
        kind = "quantized" if rec["quantized"] else "fp32"
        for key, w in got["weights"].items():
            if key.startswith(name + "/"):
                w_ref = want["weights"][key]
                scale = float(np.abs(w_ref).max()) or 1.0
                rel[kind] = max(rel[kind], float(np.abs(w - w_ref).max()) / scale)
    return {"identical": identical, "variants": len(got["variants"]),
            "max_accuracy_points": points, "max_rel_weight_diff_fp32": rel["fp32"],
            "max_rel_weight_diff_quantized": rel["quantized"]}


if __name__ == "__main__":
    import sys

    _child(sys.argv[1:])
