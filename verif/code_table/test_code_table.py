# amaranth: UnusedElaboratable=no
"""The code table under Verilator: one build per configuration, every cocotb test on it,
against sim.code_table.

Two configurations: the gate nonlinearity of a layer (int8 codes -> int8
entries, 16 lanes: one 4 x 4 result tile per beat) and a narrow one
(uint4 -> uint8, 3 lanes): a table of 16 entries and an unsigned input.
"""

import pytest

from sparsecore.hw.code_table import CodeTable
from sparsecore.hw.config import CodeTableConfig
from sparsecore.verif.build import build, run

CONFIGS = {
    "int8_int8": CodeTableConfig(codes="int8", out="int8", lanes=16),
    "uint4_uint8": CodeTableConfig(codes="uint4", out="uint8", lanes=3),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_code_table_rtl(name):
    table = CodeTable(CONFIGS[name])
    result = build(table)
    assert result.manifest["latency"] == table.latency
    run(result, "verif.code_table.tests")
