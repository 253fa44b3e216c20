# amaranth: UnusedElaboratable=no
"""LayerConfig and SparseLayer: validation, the records the layer builds its blocks from,
port layouts and latency (the cocotb suite is in verif/layer/)."""

import pytest

from sparsecore.hw.config import PRESETS, CoreConfig, LayerConfig, OutputStageConfig
from sparsecore.hw.core import SparseTensorCore
from sparsecore.hw.layer import SparseLayer
from sparsecore.hw.output_stage import OutputStage


@pytest.mark.parametrize("kwargs,match", [
    ({"out": "ternary"}, "out must be one of int8, uint8, int4, uint4, not 'ternary'"),
    ({"mult_bits": 0}, "mult_bits must be a positive integer, not 0"),
    ({"shift_bits": 7}, "shift_bits must be in 1..6, not 7"),
    ({"acc_bits": 48}, "mult_bits must be in 1..13 with acc_bits=48"),
    ({"rows": 0}, "rows must be a positive integer, not 0"),
])
def test_config_refuses(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LayerConfig(**kwargs)


def test_config_records():
    core = PRESETS["ternary_uint4"]
    hidden = LayerConfig.of(core)
    assert hidden.out == "uint4" and hidden.core == core and type(hidden.core) is CoreConfig
    logits = LayerConfig.of(core, out="int8", mult_bits=12, shift_bits=4)
    assert logits.output_stage == OutputStageConfig(acc_bits=32, acts="int8", lanes=16,
                                                    mult_bits=12, shift_bits=4)
    assert logits.out_format.bits == 8 and logits.as_dict()["out"] == "int8"
    with pytest.raises(ValueError, match="core must be a CoreConfig"):
        LayerConfig.of(OutputStageConfig())
    with pytest.raises(ValueError, match="config must be a LayerConfig"):
        SparseLayer(core)


def test_ports_and_latency():
    cfg = LayerConfig(rows=2, cols=3, groups=1, weights="int4", acts="uint4", acc_bits=16,
                      out="int8", mult_bits=10, shift_bits=5)
    layer = SparseLayer(cfg)
    core = SparseTensorCore(cfg.core)
    assert layer.latency == core.latency + OutputStage.LATENCY
    sig = layer.signature.members
    assert sig["weights"].signature.members["payload"].shape == core.weights_layout
    assert sig["activations"].signature.members["payload"].shape == core.acts_layout
    # params: 2 rows x (16 bias + 10 mult + 5 shift) + relu; codes: 2 x 3 int8 codes
    assert layer.params_layout.size == 2 * (16 + 10 + 5) + 1
    assert layer.codes_layout.size == 2 * 3 * 8
    assert layer.manifest_extra()["latency_parts"] == {
        "core": core.latency, "output_stage": OutputStage.LATENCY, "join": 0}
