"""pytest entry: MacUnit under Verilator for all 12 format pairs.

Each pair is one configuration, built once in its own folder ``build/mac_<w>_<a>``
(``..._acc<n>`` when narrow). Half the pairs use the default acc_bits (32), the
other half the smallest legal acc_bits, the product width, where the
accumulator wraps within a few cycles; every weight format and every
activation format appears with both widths. One build per pair instead of two
halves the suite's Verilator builds (a build costs more than the whole run).

Rerun one with ``SPARSECORE_SEED=<n> pytest <nodeid>``; add
``SPARSECORE_WAVES=1`` for ``dump.vcd`` in the run folder.
"""

import itertools

import pytest

from sparsecore.hw.config import MacConfig
from sparsecore.hw.registry import build_name
from sparsecore.sim.formats import ACTIVATION_FORMATS, WEIGHT_FORMATS
from sparsecore.verif.build import build, run

TB = "sparsecore.verif.mac.tests"
NARROW = {("int8", "uint8"), ("int8", "int4"), ("int4", "int8"), ("int4", "uint4"),
          ("ternary", "uint8"), ("ternary", "int4")}
TESTS = ["test_every_code_pair", "test_random", "test_extremes_accumulate",
         "test_clear_controls", "test_reset_mid_run"]


def configs():
    for weights, acts in itertools.product(WEIGHT_FORMATS, ACTIVATION_FORMATS):
        config = MacConfig(weights, acts)
        if (weights, acts) in NARROW:
            config = MacConfig(weights, acts, acc_bits=config.product_bits)
        yield config


CONFIGS = list(configs())


def test_every_pair_and_both_widths_are_covered():
    pairs = {(c.weights, c.acts) for c in CONFIGS}
    assert pairs == set(itertools.product(WEIGHT_FORMATS, ACTIVATION_FORMATS))
    for fmt in WEIGHT_FORMATS:
        assert {c.acc_bits == 32 for c in CONFIGS if c.weights == fmt} == {True, False}
    for fmt in ACTIVATION_FORMATS:
        assert {c.acc_bits == 32 for c in CONFIGS if c.acts == fmt} == {True, False}


@pytest.mark.parametrize("config", CONFIGS, ids=build_name)
def test_mac(config):
    # The wrap test needs an accumulator it can wrap in a short run.
    cases = TESTS + (["test_wrap"] if config.acc_bits == config.product_bits else [])
    result = run(build(config, build_name(config)), TB, testcase=cases)
    assert result.tests == len(cases)
