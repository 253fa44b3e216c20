# amaranth: UnusedElaboratable=no
"""Bad parameters raise ValueError naming the parameter, the value and what is accepted."""

import pytest

from sparsecore.hw.config import PRESETS, CoreConfig, MacConfig, preset
from sparsecore.hw.mac import MacUnit


@pytest.mark.parametrize("kwargs,message", [
    ({"weights": "uint8"}, "weights must be one of int8, int4, ternary, not 'uint8'"),
    ({"weights": "fp8"}, "weights must be one of int8, int4, ternary, not 'fp8'"),
    ({"acts": "ternary"}, "acts must be one of int8, uint8, int4, uint4, not 'ternary'"),
    ({"acts": 8}, "acts must be one of int8, uint8, int4, uint4, not 8"),
    ({"acc_bits": 0}, "acc_bits must be a positive integer, not 0"),
    ({"acc_bits": 32.0}, "acc_bits must be a positive integer, not 32.0"),
    ({"acc_bits": True}, "acc_bits must be a positive integer, not True"),
    # int8 x int8 products span -16256..16384: 16 bits.
    ({"acc_bits": 15}, "acc_bits must be in 16..64 for int8 x int8, not 15"),
    ({"acc_bits": 65}, "acc_bits must be in 16..64 for int8 x int8, not 65"),
    ({"weights": "ternary", "acts": "uint4", "acc_bits": 4},
     "acc_bits must be in 5..64 for ternary x uint4, not 4"),
])
def test_mac_config_rejects(kwargs, message):
    with pytest.raises(ValueError) as err:
        MacConfig(**kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize("kwargs,message", [
    ({"rows": 0}, "rows must be a positive integer, not 0"),
    ({"cols": -2}, "cols must be a positive integer, not -2"),
    ({"groups": 1.5}, "groups must be a positive integer, not 1.5"),
    ({"groups": "2"}, "groups must be a positive integer, not '2'"),
])
def test_core_config_rejects_sizes(kwargs, message):
    with pytest.raises(ValueError) as err:
        CoreConfig(**kwargs)
    assert str(err.value) == message


def test_core_acc_bits_must_hold_a_chunk_sum():
    # 4 int8 x int8 products (groups=2) span 4*-16256 .. 4*16384: 18 bits.
    with pytest.raises(ValueError, match=r"acc_bits must be in 18\.\.64 .*groups=2.*not 17"):
        CoreConfig(groups=2, acc_bits=17)
    assert CoreConfig(groups=2, acc_bits=18).chunk_sum_bits == 18


def test_smallest_acc_bits_per_pair():
    # Written out from SPEC §1 ranges, not from the config's own arithmetic.
    want = {("int8", "int8"): 16, ("int8", "uint8"): 16, ("int8", "int4"): 12,
            ("int8", "uint4"): 12, ("int4", "int8"): 12, ("int4", "uint8"): 12,
            ("int4", "int4"): 8, ("int4", "uint4"): 8, ("ternary", "int8"): 9,
            ("ternary", "uint8"): 9, ("ternary", "int4"): 5, ("ternary", "uint4"): 5}
    for (w, a), bits in want.items():
        assert MacConfig(w, a).product_bits == bits, (w, a)
        MacConfig(w, a, acc_bits=bits)


def test_presets_and_unknown_preset():
    assert set(PRESETS) >= {"tiny", "default", "ternary_uint4", "int4_int4", "wrap"}
    with pytest.raises(ValueError, match="config must be one of tiny, .*not 'huge'"):
        preset("huge")


def test_mac_unit_needs_a_config():
    with pytest.raises(ValueError, match="config must be a MacConfig, not 'int8'"):
        MacUnit("int8")


@pytest.mark.parametrize("kwargs,message", [
    ({"rows": 10000}, "rows * cols * 2 * groups (the multiplier count) must be at most 1024, "
                      "not 160000 (rows=10000, cols=4, groups=2)"),
    ({"rows": 10**23}, "rows * cols * 2 * groups (the multiplier count) must be at most 1024, "
                       f"not {16 * 10**23} (rows={10**23}, cols=4, groups=2)"),
    ({"rows": 16, "cols": 16, "groups": 1, "acc_bits": 64},
     "the results port would be 16384 bits wide; the widest port must be at most 8192 bits"),
    ({"rows": 1, "cols": 1, "groups": 512},
     "the activations port would be 16384 bits wide; the widest port must be at most 8192 bits"),
])
def test_core_config_limits(kwargs, message):
    with pytest.raises(ValueError) as err:
        CoreConfig(**kwargs)
    assert str(err.value) == message


def test_core_config_at_the_limits():
    # 1024 multipliers exactly; a results port of 16 * 16 * 32 = 8192 bits exactly
    assert CoreConfig(rows=16, cols=16, groups=2).multipliers == 1024
    assert CoreConfig(rows=16, cols=16, groups=2).port_bits["results"] == 8192


@pytest.mark.parametrize("config", [PRESETS["tiny"], PRESETS["ternary_uint4"],
                                    CoreConfig(rows=3, cols=2, groups=3, weights="int4",
                                               acts="uint8", acc_bits=24)],
                         ids=["tiny", "ternary_uint4", "3x2x3"])
def test_port_bits_match_the_manifest(config):
    """The limit is checked on the widths the emitted design really has."""
    from sparsecore.hw.registry import component_for

    core = component_for(config)
    assert config.port_bits == {"weights": core.weights_layout.size,
                                "activations": core.acts_layout.size,
                                "results": core.results_layout.size}


def test_output_stage_port_limit():
    from sparsecore.hw.config import OutputStageConfig

    with pytest.raises(ValueError) as err:
        OutputStageConfig(lanes=257, acc_bits=32)
    assert str(err.value) == ("the accumulators port would be 8224 bits wide (lanes=257 x "
                              "acc_bits=32); the widest port must be at most 8192 bits")
    OutputStageConfig(lanes=256, acc_bits=32)
