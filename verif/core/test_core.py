"""pytest entry: build each core configuration once and run the cocotb core tests on it.

Configurations: the named presets, plus one small core for each weight x
activation pair that no preset has, so every one of the 12 pairs is simulated
(every other one with a narrow accumulator, so that wrapping is tested there too).
Each run's coverage and MAC-check count is read back from the run folder;
every configuration must reach every coverage bin and at least MIN_MAC_CHECKS
random MAC checks (fewer when SPARSECORE_CORE_MACS asks for fewer).
``make regress SEEDS=N`` reruns them with N seeds.
"""

import dataclasses
import json

import pytest

from sparsecore.hw.config import PRESETS, CoreConfig
from sparsecore.sim.formats import ACTIVATION_FORMATS, WEIGHT_FORMATS
from sparsecore.verif.build import build, run
from sparsecore.verif.core.tb import COVERAGE_FILE, SUMMARY, mac_target

# The floor under the testbench's 120000 (tiles come whole); SPARSECORE_CORE_MACS lowers
# it with the target (a campaign's quick jobs), never raises it above 100000.
MIN_MAC_CHECKS = min(100_000, mac_target())


def _configs():
    configs = {f"core_{name}": cfg for name, cfg in PRESETS.items()}
    covered = {(c.weights, c.acts) for c in PRESETS.values()}
    # Small cores of varied shape for the remaining pairs (a few lanes each).
    shapes = [(2, 2, 1), (1, 3, 2), (3, 2, 1), (2, 2, 2), (1, 4, 2), (2, 1, 2)]
    n = 0
    for w in WEIGHT_FORMATS:
        for a in ACTIVATION_FORMATS:
            if (w, a) not in covered:
                rows, cols, groups = shapes[n % len(shapes)]
                config = CoreConfig(rows=rows, cols=cols, groups=groups, weights=w, acts=a)
                if n % 2:   # a narrow accumulator, so the wrap test runs on this pair too
                    config = dataclasses.replace(config, acc_bits=config.chunk_sum_bits + 5)
                configs[f"core_{w}_{a}"] = config
                n += 1
    return configs


CONFIGS = _configs()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_core(name):
    built = build(CONFIGS[name], name)
    result = run(built, "sparsecore.verif.core.tests")
    report = json.loads((result.log.parent / COVERAGE_FILE).read_text())
    stats, coverage = report["stats"], report["coverage"]
    SUMMARY[name] = {"stats": stats, "coverage": coverage, "seed": result.seed,
                     "build_s": built.build_seconds, "run_s": result.seconds}
    missing = {g: [b for b, n in bins.items() if not n] for g, bins in coverage.items()}
    missing = {g: b for g, b in missing.items() if b}
    assert not missing, f"{name}: coverage bins never hit: {missing}"
    assert stats["mac_checks"] >= MIN_MAC_CHECKS, (
        f"{name}: only {stats['mac_checks']} MAC checks (need {MIN_MAC_CHECKS})")
