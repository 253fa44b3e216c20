"""pytest entry: MacUnit under Verilator for all 12 format pairs.

Each pair is built twice, each configuration once in its own folder:
``mac_<w>_<a>`` with the default acc_bits (32) and ``mac_<w>_<a>_acc<n>`` with
the smallest legal acc_bits (the product width), where the accumulator wraps
within a few cycles. Rerun one with ``SPARSECORE_SEED=<n> pytest <nodeid>``;
add ``SPARSECORE_WAVES=1`` for ``dump.vcd`` in the run folder.
"""

import itertools

import pytest

from hw.config import MacConfig
from sim.formats import ACTIVATION_FORMATS, WEIGHT_FORMATS
from verif.build import build, run

PAIRS = list(itertools.product(WEIGHT_FORMATS, ACTIVATION_FORMATS))
TB = "verif.mac.mac_tb"
COMMON = ["test_every_code_pair", "test_random", "test_extremes_accumulate",
          "test_clear_controls", "test_reset_mid_run"]


def pair_id(pair):
    return "-".join(pair)


@pytest.mark.parametrize("weights,acts", PAIRS, ids=map(pair_id, PAIRS))
def test_mac(weights, acts):
    config = MacConfig(weights, acts)
    result = run(build(config, f"mac_{weights}_{acts}"), TB, testcase=COMMON)
    assert result.tests == len(COMMON)


@pytest.mark.parametrize("weights,acts", PAIRS, ids=map(pair_id, PAIRS))
def test_mac_small_acc_wraps(weights, acts):
    bits = MacConfig(weights, acts).product_bits
    config = MacConfig(weights, acts, acc_bits=bits)
    cases = ["test_wrap", "test_random", "test_reset_mid_run"]
    result = run(build(config, f"mac_{weights}_{acts}_acc{bits}"), TB, testcase=cases)
    assert result.tests == len(cases)
