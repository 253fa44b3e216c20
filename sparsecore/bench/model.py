"""Throughput of the numpy model's 2:4 path (a benchmark, not a test).

``sparsecore bench model`` times ``compress_2to4``, ``decompress_2to4`` and
``sparse_matmul`` on a random 2:4 int8 A of 4096 x 4096 and an int8 B of
4096 x 64: N = 64 keeps B (and the run) small while A, the matrix the 2:4
functions work on, is full size; ``sparse_matmul`` time grows about linearly
in N. ``dense_matmul`` is the same product from the dense A, for comparison.
Each figure is the best of ``repeats`` runs.
"""

import argparse
import json
import time

import numpy as np

from sparsecore.sim.gemm import matmul, sparse_matmul
from sparsecore.sim.sparsity import compress_2to4, decompress_2to4, prune_2to4


def _best_time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_model(m=4096, k=4096, n=64, repeats=3, seed=0):
    """Time the 2:4 model path; return a dict of seconds and throughputs."""
    rng = np.random.default_rng(seed)
    a = prune_2to4(rng.integers(-128, 127, size=(m, k), endpoint=True, dtype=np.int8))
    b = rng.integers(-128, 127, size=(k, n), endpoint=True, dtype=np.int8)
    timings = {}
    timings["compress_2to4"], (values, meta) = _best_time(lambda: compress_2to4(a), repeats)
    timings["decompress_2to4"], dense = _best_time(lambda: decompress_2to4(values, meta, k),
                                                   repeats)
    timings["sparse_matmul"], c = _best_time(lambda: sparse_matmul(values, meta, b), repeats)
    timings["dense_matmul"], c_dense = _best_time(lambda: matmul(a, b), repeats)
    if not (np.array_equal(dense, a) and np.array_equal(c, c_dense)):
        raise AssertionError("2:4 round trip or sparse_matmul disagrees with the dense path")
    report = {"shape": {"m": m, "k": k, "n": n}, "repeats": repeats, "seconds": timings}
    report["a_elements_per_second"] = {
        name: m * k / timings[name] for name in ("compress_2to4", "decompress_2to4")}
    # Useful MACs: the kept half of A (sparse) vs all of A (dense), times N.
    report["macs_per_second"] = {
        "sparse_matmul": m * (k // 2) * n / timings["sparse_matmul"],
        "dense_matmul": m * k * n / timings["dense_matmul"],
    }
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sparsecore bench model",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=4096)
    parser.add_argument("--k", type=int, default=4096)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = bench_model(args.m, args.k, args.n, args.repeats, args.seed)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    shape = report["shape"]
    print(f"A {shape['m']} x {shape['k']} int8 (2:4), B {shape['k']} x {shape['n']} int8, "
          f"best of {report['repeats']}")
    for name, seconds in report["seconds"].items():
        if name in report["a_elements_per_second"]:
            rate = f"{report['a_elements_per_second'][name] / 1e6:8.1f} M elements/s"
        else:
            rate = f"{report['macs_per_second'][name] / 1e9:8.2f} G useful MAC/s"
        print(f"  {name:16s} {seconds * 1e3:8.1f} ms  {rate}")
