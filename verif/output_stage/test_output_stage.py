# amaranth: UnusedElaboratable=no
"""The output stage under Verilator: one build per configuration, every cocotb test on it,
against sim.requant (in a network it runs inside the layer design, verif/layer/).

Two configurations between them cover an unsigned and a signed activation
format, default and narrow field widths, a shift field wider than the
product (shifts past every bit), and both pipelines: the plain one (a
layer's) and the one with ``split_mult`` and ``split_shift`` (the
accelerator's), whose latency is two cycles more (``test_full_rate`` checks
each against its manifest).
"""

import pytest

from sparsecore.hw.config import PRESETS, OutputStageConfig
from sparsecore.hw.output_stage import OutputStage
from sparsecore.verif.build import build, run

CONFIGS = {
    "uint4": OutputStageConfig.for_core(PRESETS["ternary_uint4"]),
    "int8_split": OutputStageConfig(acc_bits=18, acts="int8", lanes=3, mult_bits=10,
                                    shift_bits=6, split_mult=True, split_shift=True),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_output_stage_rtl(name):
    stage = OutputStage(CONFIGS[name])
    result = build(stage)
    assert result.manifest["latency"] == stage.latency
    run(result, "sparsecore.verif.output_stage.tests")
