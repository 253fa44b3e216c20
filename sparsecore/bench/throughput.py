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


ENGINE_GEMM = (128, 128, 8192)   # M, N, K: 1,048,580 sparse cycles on the default core
CLI_GEMM = (256, 256, 8192)      # about 4.2 million sparse cycles: the `sparsecore gemm` target
COCOTB_GEMM = (64, 64, 1024)     # the per-cycle cocotb runner, for comparison (32k cycles)
# Timed runs of each kind, interleaved with their reference (engine, raw loop, engine, raw
# loop, ...); the best (shortest) of each is reported, so a burst of load from other jobs
# on the machine slows one run, not the figure. About 2 minutes on 2 idle cores.
REPEATS = {"engine": 5, "cli": 5, "cocotb": 3}


def sim_speed(config_name="default", engine_shape=ENGINE_GEMM, cli_shape=CLI_GEMM,
              cocotb_shape=COCOTB_GEMM, repeats=REPEATS, root=None, log=print):
    """Simulation speed: the engine end to end against the raw C++ loop on the same
    Verilated model, ``sparsecore gemm`` as a command against the raw loop's time for as
    many cycles, and the per-cycle cocotb runner against its bare clock loop.

    Engine end to end: from the tiled GEMM (its tables packed) to C in numpy
    (:attr:`sparsecore.verif.gemm.GemmResult.job_seconds`). The engine build is made (or
    found cached) first and counted on its own. Each measured run and its reference run
    alternate ``repeats[kind]`` times (engine, raw, engine, raw, ...); every figure is
    the best (shortest time) of its runs, and every run's time is kept (``runs``). Every
    C is checked against the model.
    """
    from sparsecore.verif.engine import build_engine, raw_loop
    from sparsecore.verif.gemm import core_build_name, run_gemm

    repeats = {**REPEATS, **repeats}
    config = PRESETS[config_name]
    built = build_engine(config, core_build_name(config), root=root)
    out = {"config": config_name, "repeats": repeats,
           "build": {"seconds": built.build_seconds, "rebuilt": built.rebuilt}}
    log(f"  engine build: {built.build_seconds:.1f} s ({'built' if built.rebuilt else 'cached'})")

    m, n, k = engine_shape
    a, b = random_operands(config, m, n, k, SEED)
    expected = matmul(a, b, acc_bits=config.acc_bits)
    engine_runs, raw_runs = [], []
    for _ in range(repeats["engine"]):
        result = run_gemm(config, a=a, b=b, progress=False, root=root)
        _check(result, expected, engine_shape)
        raw_cycles, raw_seconds = raw_loop(built, result.cycles)
        engine_runs.append((result.job_seconds, result.seconds))
        raw_runs.append(raw_seconds)
    end_to_end, sim = min(r[0] for r in engine_runs), min(r[1] for r in engine_runs)
    engine_rate, raw_rate = result.cycles / end_to_end, raw_cycles / min(raw_runs)
    out["engine"] = {"m": m, "n": n, "k": k, "mode": result.mode, "cycles": result.cycles,
                     "end_to_end_seconds": end_to_end, "sim_seconds": sim,
                     "cycles_per_second": engine_rate,
                     "sim_cycles_per_second": result.cycles / sim,
                     "runs": [{"end_to_end_seconds": e, "sim_seconds": s}
                              for e, s in engine_runs]}
    out["raw_loop"] = {"cycles": raw_cycles, "seconds": min(raw_runs),
                       "cycles_per_second": raw_rate, "runs": raw_runs}
    out["ratio"] = engine_rate / raw_rate
    log(f"  engine {m}x{n}x{k}: {result.cycles} cycles, {engine_rate:,.0f} cycles/s end to "
        f"end; raw loop {raw_rate:,.0f} cycles/s; ratio {out['ratio']:.2f} (best of "
        f"{repeats['engine']} each)")

    out["cli"] = _cli_gemm(config_name, config, cli_shape, built, root, repeats["cli"])
    log(f"  sparsecore gemm {'x'.join(map(str, cli_shape))}: {out['cli']['seconds']:.1f} s "
        f"for {out['cli']['cycles']} cycles; raw loop {out['cli']['raw_seconds']:.1f} s; "
        f"ratio {out['cli']['ratio']:.2f} (best of {repeats['cli']} each)")

    m, n, k = cocotb_shape
    a, b = random_operands(config, m, n, k, SEED)
    expected = matmul(a, b, acc_bits=config.acc_bits)
    probe = run_gemm(config, a=a, b=b, progress=False, root=root)   # sizes the bare loop
    runs = []
    for _ in range(repeats["cocotb"]):
        slow = run_gemm(config, a=a, b=b, progress=False, root=root, runner="cocotb",
                        bare_cycles=probe.cycles)
        _check(slow, expected, cocotb_shape)
        runs.append((slow.cycles_per_second, slow.bare_cycles_per_second))
    runner_rate, bare_rate = max(r[0] for r in runs), max(r[1] for r in runs)
    out["cocotb"] = {"m": m, "n": n, "k": k, "cycles": slow.cycles,
                     "runner_cycles_per_second": runner_rate,
                     "bare_cycles_per_second": bare_rate, "ratio": runner_rate / bare_rate,
                     "runs": [{"runner_cycles_per_second": r, "bare_cycles_per_second": b}
                              for r, b in runs]}
    log(f"  cocotb runner {m}x{n}x{k}: {runner_rate:,.0f} cycles/s, bare clock loop "
        f"{bare_rate:,.0f} (best of {repeats['cocotb']} each)")
    return out


def _check(result, expected, shape):
    mismatch = result.describe_mismatch(expected)
    if mismatch:
        raise AssertionError(f"{'x'.join(map(str, shape))}: {mismatch}")


def _cli_gemm(config_name, config, shape, built, root, repeats):
    """``sparsecore gemm`` as a user runs it (a new process, build cached): wall time, and
    the raw loop's time for the same number of cycles on the same build, alternating
    ``repeats`` times; the best of each."""
    import os
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    from sparsecore.verif.engine import raw_loop

    m, n, k = shape
    a, b = random_operands(config, m, n, k, SEED)
    expected = matmul(a, b, acc_bits=config.acc_bits)
    runs, raw_runs = [], []
    with tempfile.TemporaryDirectory(prefix="sparsecore-bench-") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "A.npy", a.astype(np.int8))
        np.save(tmp / "B.npy", b.astype(np.int8))
        env = dict(os.environ)
        if root is not None:
            env["SPARSECORE_BUILD_DIR"] = str(root)
        for run in range(repeats):
            c_path = tmp / f"C{run}.npy"
            command = [sys.executable, "-m", "sparsecore", "gemm", "--a", str(tmp / "A.npy"),
                       "--b", str(tmp / "B.npy"), "--weights", config.weights, "--acts",
                       config.acts, "--config", config_name, "--out", str(c_path)]
            start = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True, env=env)
            runs.append(time.perf_counter() - start)
            if proc.returncode:
                raise RuntimeError(f"sparsecore gemm failed ({proc.returncode}): "
                                   f"{proc.stderr}")
            words = dict(w.split("=", 1) for w in proc.stdout.split())
            cycles = int(words["cycles"])
            if not np.array_equal(np.load(c_path), expected):
                raise AssertionError(f"sparsecore gemm {m}x{n}x{k}: C differs from the model")
            c_path.unlink()
            raw_cycles, raw_seconds = raw_loop(built, cycles)
            raw_runs.append(raw_seconds)
    return {"m": m, "n": n, "k": k, "cycles": cycles, "seconds": min(runs),
            "raw_seconds": min(raw_runs), "ratio": min(runs) / min(raw_runs),
            "runs": runs, "raw_runs": raw_runs}
