"""``sparsecore regress``: every testbench of the checkout under fresh seeds.

    sparsecore regress [--seeds N] [--core-macs N] [PYTEST ARGS ...]

Each round draws a seed, logs it, and runs the pytest entries of ``verif/``
with ``SPARSECORE_SEED`` set to it and ``SPARSECORE_CORE_MACS`` (the core
testbench's random MAC checks per configuration) raised; the first failing
round stops the regression and its seed reruns it alone. The pytest entries
live in the checkout, not in the installed wheel, so this runs from a checkout.
"""

import argparse
import os
import random
import subprocess
import sys
from pathlib import Path

__all__ = ["main", "checkout_root"]

DEFAULT_CORE_MACS = 600_000   # 5x the default suite's random MAC checks per core configuration


def checkout_root():
    """The source checkout that holds ``verif/``'s pytest entries, or None for a wheel install."""
    import sparsecore.verif

    root = Path(sparsecore.verif.__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sparsecore regress", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="rounds, one fresh seed each")
    parser.add_argument("--core-macs", type=int, default=DEFAULT_CORE_MACS,
                        help=f"core MAC checks per configuration (default {DEFAULT_CORE_MACS})")
    args, pytest_args = parser.parse_known_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be a positive integer, not {args.seeds}")
    root = checkout_root()
    if root is None:
        print("sparsecore regress: error: the testbenches' pytest entries are not installed; "
              "run it from a source checkout", file=sys.stderr)
        return 2
    for i in range(1, args.seeds + 1):
        seed = random.SystemRandom().getrandbits(31)
        print(f"regress {i}/{args.seeds}: SPARSECORE_SEED={seed}", flush=True)
        env = {**os.environ, "SPARSECORE_SEED": str(seed),
               "SPARSECORE_CORE_MACS": str(args.core_macs)}
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", "verif", *pytest_args],
                               cwd=root, env=env)
        if code:
            print(f"regress: round {i} failed; rerun it alone with SPARSECORE_SEED={seed}",
                  file=sys.stderr)
            return 1
    return 0
