"""The output stage under Verilator: one build per configuration, every cocotb test on it.

Two configurations between them cover an unsigned and a signed activation
format, default and narrow field widths, and a shift field wider than the
product (shifts past every bit).
"""

import pytest

from hw.config import PRESETS, OutputStageConfig
from hw.output_stage import OutputStage
from verif.build import build, run

CONFIGS = {
    "output_stage_uint4": OutputStageConfig.for_core(PRESETS["ternary_uint4"]),
    "output_stage_int8": OutputStageConfig(acc_bits=18, acts="int8", lanes=3, mult_bits=10,
                                           shift_bits=6),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_output_stage_rtl(name):
    stage = OutputStage(CONFIGS[name])
    result = build(stage, name)
    assert result.manifest["latency"] == stage.latency
    run(result, "verif.output_stage.output_stage_tb")
