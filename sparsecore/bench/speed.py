"""Simulation speed of a GEMM runner next to its ceiling (a benchmark, not a test).

``--runner engine`` (default): the engine (:mod:`sparsecore.verif.engine`) against
the raw C++ loop on the same Verilated model (random payloads, valid and ready
high every cycle). ``--runner cocotb``: the per-cycle cocotb runner against a
bare clock loop, one ``await RisingEdge`` per cycle with nothing driven, timed
in the same simulator run (``clock_loop`` in :mod:`sparsecore.verif.gemm_tb`).
``ratio`` is the share of the ceiling that the driving leaves. ``make bench``
measures the same, end to end, on a GEMM of a million cycles
(:func:`sparsecore.bench.throughput.sim_speed`).

    sparsecore bench speed [--config default] [--shape 32 2048 32] [--runner R]
"""

import argparse
import json

import numpy as np

from sparsecore.hw.config import preset
from sparsecore.sim import prune_2to4
from sparsecore.verif.gemm import run_gemm

__all__ = ["measure_speed", "main"]

DEFAULT_SHAPE = (32, 2048, 32)   # M, K, N: 16k sparse / 32k dense cycles on the default core


def measure_speed(config="default", shape=DEFAULT_SHAPE, modes=("sparse", "dense"), seed=0,
                  progress=False, runner="engine"):
    """Cycles per second of :func:`verif.gemm.run_gemm` and of its ceiling (see above).

    Returns one dict per mode: config, mode, shape, cycles, seconds,
    runner_cycles_per_s, bare_cycles_per_s, ratio (runner / bare), and the
    GEMM's utilization. ``config`` is a preset name or a CoreConfig.
    """
    cfg = preset(config) if isinstance(config, str) else config
    m, k, n = shape
    rng = np.random.default_rng(seed)
    wf, af = cfg.weight_format, cfg.act_format
    a = prune_2to4(rng.integers(wf.min, wf.max + 1, size=(m, k)))
    b = rng.integers(af.min, af.max + 1, size=(k, n))
    rows = []
    for mode in modes:
        dense = mode == "dense"
        k_beat = cfg.k_dense if dense else cfg.k_sparse
        beats = -(-m // cfg.rows) * -(-n // cfg.cols) * -(-k // k_beat)
        result = run_gemm(cfg, a=a, b=b, dense=dense, bare_cycles=beats, progress=progress,
                          runner=runner)
        rows.append({
            "config": config if isinstance(config, str) else "custom",
            "mode": mode, "shape": list(shape), "cycles": result.cycles,
            "seconds": round(result.seconds, 4),
            "runner_cycles_per_s": round(result.cycles_per_second),
            "bare_cycles_per_s": round(result.bare_cycles_per_second),
            "ratio": round(result.cycles_per_second / result.bare_cycles_per_second, 3),
            "utilization": round(result.utilization(cfg), 4),
        })
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sparsecore bench speed",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--runner", default="engine", choices=("engine", "cocotb"))
    parser.add_argument("--config", default="default")
    parser.add_argument("--shape", type=int, nargs=3, metavar=("M", "K", "N"),
                        default=list(DEFAULT_SHAPE))
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    rows = measure_speed(args.config, tuple(args.shape), progress=True, runner=args.runner)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"config={r['config']} mode={r['mode']} cycles={r['cycles']} "
                  f"runner={r['runner_cycles_per_s']} cycles/s bare_loop="
                  f"{r['bare_cycles_per_s']} cycles/s ratio={r['ratio']:.2f}")
    return 0
