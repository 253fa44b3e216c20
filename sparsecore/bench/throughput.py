"""Throughput on the RTL: sparse vs dense GEMMs on the Verilated core, next to sim.perf.

Every GEMM runs through :func:`verif.gemm.run_gemm` (the engine of
``sparsecore gemm``), is checked bit-exactly against the numpy model, and its
measured cycle count is put beside :func:`sim.perf.predict_gemm`'s, which takes
the latency from the built core's manifest. A: random int-format 2:4 weights
(the same matrix in both modes), B: random activations; seeds are fixed, so a
rerun measures the same GEMMs.
"""

import numpy as np

from sparsecore.hw.config import PRESETS
from sparsecore.sim.gemm import matmul
from sparsecore.sim.perf import predict_gemm
from sparsecore.sim.sparsity import prune_2to4

__all__ = ["K_SWEEP", "SHAPES", "random_operands", "measure_gemm", "sweep", "sim_speed"]

K_SWEEP = (16, 32, 64, 128, 256, 512, 1024)
SHAPES = ((4, 4), (16, 16), (64, 64))   # M x N of C
SEED = 2024


def random_operands(config, m, n, k, seed):
    """(A 2:4 in the weight format, B in the activation format), plain integer values."""
    rng = np.random.default_rng(seed)
    wf, af = config.weight_format, config.act_format
    a = prune_2to4(rng.integers(wf.min, wf.max, size=(m, k), endpoint=True, dtype=np.int64))
    b = rng.integers(af.min, af.max, size=(k, n), endpoint=True, dtype=np.int64)
    return a, b


def measure_gemm(config, m, n, k, dense, seed=SEED, root=None, bare_cycles=0):
    """One GEMM on the RTL: a dict of measured and predicted figures.

    Raises AssertionError when the core's C differs from the numpy model's.
    """
    from sparsecore.verif.gemm import run_gemm

    a, b = random_operands(config, m, n, k, seed)
    result = run_gemm(config, a=a, b=b, dense=dense, progress=False, root=root,
                      bare_cycles=bare_cycles)
    mismatch = result.describe_mismatch(matmul(a, b, acc_bits=config.acc_bits))
    if mismatch:
        raise AssertionError(f"{m}x{n}x{k} {'dense' if dense else 'sparse'}: {mismatch}")
    latency = result.build.manifest["latency"]
    model = predict_gemm(config, m, n, k, dense=dense, latency=latency)
    row = {
        "m": m, "n": n, "k": k, "mode": result.mode, "macs": result.macs,
        "cycles": result.cycles, "predicted_cycles": model.cycles,
        "difference": result.cycles - model.cycles, "latency": latency, "tiles": model.tiles,
        "beats": result.beats, "utilization": result.utilization(config),
        "predicted_utilization": model.utilization,
        "macs_per_cycle": result.macs / result.cycles, "peak_macs_per_cycle": model.peak,
        "sim_seconds": result.seconds, "cycles_per_second": result.cycles_per_second,
    }
    if bare_cycles:
        row["bare_cycles_per_second"] = result.bare_cycles_per_second
    return row


def sweep(config_name="default", shapes=SHAPES, ks=K_SWEEP, root=None, log=print):
    """Sparse and dense GEMMs for every (M, N) in ``shapes`` and K in ``ks``."""
    config = PRESETS[config_name]
    rows = []
    for m, n in shapes:
        for k in ks:
            for dense in (False, True):
                row = measure_gemm(config, m, n, k, dense, root=root)
                row["config"] = config_name
                rows.append(row)
                log(f"  {config_name} {m}x{n}x{k} {row['mode']:6s} cycles={row['cycles']} "
                    f"model={row['predicted_cycles']} util={row['utilization']:.3f}")
    return rows


def sim_speed(config_name="default", shape=(64, 64, 1024), root=None):
    """The GEMM runner's cycles/s next to a bare clock loop of as many cycles, same run."""
    config = PRESETS[config_name]
    m, n, k = shape
    # A first run sizes the bare loop to the GEMM (the build is cached by then).
    probe = measure_gemm(config, m, n, k, dense=False, root=root)
    row = measure_gemm(config, m, n, k, dense=False, root=root, bare_cycles=probe["cycles"])
    return {"config": config_name, "m": m, "n": n, "k": k, "mode": row["mode"],
            "cycles": row["cycles"], "runner_seconds": row["sim_seconds"],
            "runner_cycles_per_second": row["cycles_per_second"],
            "bare_cycles_per_second": row["bare_cycles_per_second"],
            "ratio": row["cycles_per_second"] / row["bare_cycles_per_second"]}
