# amaranth: UnusedElaboratable=no
"""The output stage under Verilator: one build per configuration, every cocotb test on it,
and the job runner that the workflow demo uses, against sim.requant.

Two configurations between them cover an unsigned and a signed activation
format, default and narrow field widths, and a shift field wider than the
product (shifts past every bit).
"""

import numpy as np
import pytest

from hw.config import PRESETS, OutputStageConfig
from hw.output_stage import OutputStage
from sim.requant import requantize
from verif.build import build, run
from verif.output_stage.run import build_name, run_output_stage

CONFIGS = {
    "uint4": OutputStageConfig.for_core(PRESETS["ternary_uint4"]),
    "int8": OutputStageConfig(acc_bits=18, acts="int8", lanes=3, mult_bits=10, shift_bits=6),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_output_stage_rtl(name):
    stage = OutputStage(CONFIGS[name])
    result = build(stage, build_name(CONFIGS[name]))
    assert result.manifest["latency"] == stage.latency
    run(result, "verif.output_stage.output_stage_tb")


@pytest.mark.parametrize("relu", [True, False])
def test_run_output_stage(relu):
    """A 5 x 7 job (not a multiple of the lanes) through the runner equals sim.requant."""
    config = CONFIGS["int8"]
    rng = np.random.default_rng(5)
    acc = rng.integers(-3000, 3000, (5, 7))
    mult = rng.integers(1, 1 << config.mult_bits, 5)
    shift = rng.integers(8, 16, 5)
    bias = rng.integers(-500, 500, 5)
    got = run_output_stage(config, acc, mult, shift, bias, relu)
    want = requantize(acc, mult, shift, bias, "int8", relu, config.acc_bits, config.mult_bits,
                      config.shift_bits)
    assert np.array_equal(got.out, want)
    assert 0 < (want[(want > -128) & (want < 127)]).size  # not all clipped
    assert got.latency == OutputStage.LATENCY
    assert got.beats == 12 and got.cycles == got.beats + got.latency


def test_run_output_stage_refuses_bad_params():
    config = CONFIGS["int8"]
    acc = np.zeros((2, 3), np.int64)
    with pytest.raises(ValueError, match=r"mult must have shape \(2,\)"):
        run_output_stage(config, acc, np.ones(3, np.int64), np.zeros(2, np.int64),
                         np.zeros(2, np.int64), True)
    with pytest.raises(ValueError, match="mult"):
        run_output_stage(config, acc, np.array([1, 1 << 10]), np.zeros(2, np.int64),
                         np.zeros(2, np.int64), True)
