# amaranth: UnusedElaboratable=no
"""CodeTable and its config: validation, layouts, and the manifest (the cocotb suite is in
verif/code_table/)."""

import pytest

from sparsecore.hw.code_table import CodeTable, codes_layout, entries_layout, table_layout
from sparsecore.hw.config import PRESETS, CodeTableConfig
from sparsecore.hw.emit import manifest


@pytest.mark.parametrize("kwargs,match", [
    ({"codes": "ternary"}, "codes must be one of int8, uint8, int4, uint4, not 'ternary'"),
    ({"out": "int16"}, "out must be one of int8, uint8, int4, uint4, not 'int16'"),
    ({"lanes": 0}, "lanes must be a positive integer, not 0"),
])
def test_config_refuses(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CodeTableConfig(**kwargs)


def test_refuses_other_configs():
    with pytest.raises(ValueError, match="config must be a CodeTableConfig"):
        CodeTable(PRESETS["tiny"])


@pytest.mark.parametrize("codes,out,entries", [("int8", "uint8", 256), ("uint4", "int8", 16)])
def test_layouts_and_manifest(codes, out, entries):
    cfg = CodeTableConfig(codes=codes, out=out, lanes=5)
    in_bits, out_bits = (8 if "8" in codes else 4), (8 if "8" in out else 4)
    assert cfg.entries == entries
    assert table_layout(cfg).size == in_bits + out_bits
    assert codes_layout(cfg).size == 5 * in_bits
    assert entries_layout(cfg).size == 5 * out_bits
    from amaranth.back import verilog
    table = CodeTable(cfg)
    info = manifest(table, "t", verilog.convert(table, name="t", emit_src=False))
    assert info["latency"] == table.latency == 1
    assert info["table_entries"] == entries
    assert info["streams"]["table"]["payload_width"] == in_bits + out_bits
