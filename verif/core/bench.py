"""Core throughput benchmark: utilization per mode and the sparse/dense cycle ratio.

``benchmark(config, shapes)`` builds the core (cached per configuration), runs
each GEMM shape back to back in sparse and in dense mode on the Verilated RTL
(results checked against sim/), and returns one dict per shape:

- ``cycles_sparse`` / ``cycles_dense``: first beat taken .. last result taken;
- ``utilization_sparse`` / ``utilization_dense``: M*N*K / (cycles * peak),
  peak = the manifest's MACs per cycle of that mode (SPEC §5);
- ``busy_sparse`` / ``busy_dense``: beats / cycles, the fraction of cycles the
  multipliers work (padding included);
- ``ratio``: cycles_sparse / cycles_dense.

``sparsecore bench core [--config NAME]`` prints the table.
"""

import argparse
import json
import os

from sparsecore.hw.config import PRESETS
from sparsecore.verif.build import build, run
from sparsecore.verif.core.bench_tests import BENCH_FILE, SHAPES_ENV

__all__ = ["benchmark", "DEFAULT_SHAPES", "format_table"]

DEFAULT_SHAPES = ((4, 4, 64), (16, 16, 64), (32, 32, 64), (16, 16, 256), (8, 8, 1024),
                  (64, 64, 128), (30, 30, 100))


def benchmark(config=None, shapes=DEFAULT_SHAPES, name=None):
    """Run ``shapes`` ([(M, N, K), ...]) on ``config`` (default preset); list of dicts."""
    config = config or PRESETS["default"]
    name = name or "core_" + next((n for n, c in PRESETS.items() if c == config), "bench")
    built = build(config, name)
    result = run(built, "sparsecore.verif.core.bench_tests", run_name="bench",
                 extra_env={SHAPES_ENV: json.dumps([list(s) for s in shapes])})
    raw = json.loads((result.log.parent / BENCH_FILE).read_text())
    peak = built.manifest["throughput"]["macs_per_cycle"]
    out = []
    for m, n, k in shapes:
        row = {"m": m, "n": n, "k": k, "config": name}
        for r in raw:
            if (r["m"], r["n"], r["k"]) == (m, n, k):
                mode = r["mode"]
                row[f"cycles_{mode}"] = r["cycles"]
                row[f"beats_{mode}"] = r["beats"]
                row[f"utilization_{mode}"] = r["macs"] / (r["cycles"] * peak[mode])
                row[f"busy_{mode}"] = r["beats"] / r["cycles"]
        row["ratio"] = row["cycles_sparse"] / row["cycles_dense"]
        out.append(row)
    return out


def format_table(rows):
    head = (f"{'M':>5} {'N':>5} {'K':>5} | {'sparse cyc':>10} {'util':>6} {'busy':>6} | "
            f"{'dense cyc':>10} {'util':>6} {'busy':>6} | {'ratio':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['m']:>5} {r['n']:>5} {r['k']:>5} | {r['cycles_sparse']:>10} "
            f"{r['utilization_sparse']:>6.1%} {r['busy_sparse']:>6.1%} | "
            f"{r['cycles_dense']:>10} {r['utilization_dense']:>6.1%} "
            f"{r['busy_dense']:>6.1%} | {r['ratio']:>6.3f}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sparsecore bench core",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default", choices=sorted(PRESETS))
    args = parser.parse_args(argv)
    os.environ.setdefault("SPARSECORE_SEED", "1")
    rows = benchmark(PRESETS[args.config], name=f"core_{args.config}")
    print(format_table(rows))
    return 0
