# amaranth: UnusedElaboratable=no
"""OutputStage and its config: validation, port widths, and a short run in Amaranth's
simulator against sim.requant (the full cocotb suite is in verif/output_stage/)."""

import numpy as np
import pytest
from amaranth.lib import data
from amaranth.sim import Simulator

from sparsecore.hw.config import PRESETS, OutputStageConfig
from sparsecore.hw.output_stage import OutputStage, input_layout, output_layout
from sparsecore.sim.formats import get_format
from sparsecore.sim.requant import requantize
from sparsecore.verif.amaranth_streams import get, put, random_pauses


@pytest.mark.parametrize("kwargs,match", [
    ({"acts": "ternary"}, "acts must be one of int8, uint8, int4, uint4, not 'ternary'"),
    ({"lanes": 0}, "lanes must be a positive integer, not 0"),
    ({"acc_bits": 48}, "mult_bits must be in 1..13 with acc_bits=48"),
    ({"shift_bits": 7}, "shift_bits must be in 1..6, not 7"),
    ({"mult_bits": 0}, "mult_bits must be a positive integer, not 0"),
    ({"split_mult": 1}, "split_mult must be True or False, not 1"),
    ({"split_shift": "yes"}, "split_shift must be True or False, not 'yes'"),
])
def test_config_refuses(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OutputStageConfig(**kwargs)


def test_for_core():
    core = PRESETS["int4_int4"]
    cfg = OutputStageConfig.for_core(core)
    assert (cfg.acc_bits, cfg.acts, cfg.lanes) == (core.acc_bits, "int4", core.rows * core.cols)
    assert OutputStageConfig.for_core(core, acts="int8", lanes=2).acts == "int8"
    with pytest.raises(ValueError, match="core must be a CoreConfig"):
        OutputStageConfig.for_core(OutputStageConfig())
    with pytest.raises(ValueError, match="config must be an OutputStageConfig"):
        OutputStage(PRESETS["tiny"])


def test_layouts():
    cfg = OutputStageConfig(acc_bits=20, acts="uint8", lanes=3, mult_bits=12, shift_bits=4)
    assert data.Layout.cast(input_layout(cfg)).size == 3 * (20 + 20 + 12 + 4) + 1
    assert data.Layout.cast(output_layout(cfg)).size == 3 * 8
    assert cfg.product_bits == 20 + 1 + 12 and cfg.max_shift == 15


@pytest.mark.parametrize("split_shift", [False, True])
@pytest.mark.parametrize("split_mult", [False, True])
def test_latency_contract(split_mult, split_shift):
    """Each split adds one cycle, and a beat's code comes exactly ``latency`` edges after
    the beat was taken (``o`` ready), as the manifest states."""
    cfg = OutputStageConfig(acc_bits=16, acts="int4", lanes=2, mult_bits=6, shift_bits=4,
                            split_mult=split_mult, split_shift=split_shift)
    dut = OutputStage(cfg)
    assert dut.latency == 4 + split_mult + split_shift
    rng = np.random.default_rng(3)
    n = 12
    beat = {"acc": [5, -7], "bias": [0, 0], "mult": [1, 1], "shift": [0, 1], "relu": 0}
    sent, came = [], []

    async def source(ctx):
        sent.extend(await put(ctx, dut.i, [beat] * n, pauses=random_pauses(rng, 0.5)))

    async def sink(ctx):   # always ready: every beat must take exactly ``latency`` edges
        came.extend(cycle for cycle, _ in await get(ctx, dut.o, n, max_cycles=20 * n))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    assert len(came) == len(sent) == n
    assert [c - s for s, c in zip(sent, came, strict=True)] == [dut.latency] * n


@pytest.mark.parametrize("split_mult,split_shift", [(False, False), (True, False),
                                                    (False, True), (True, True)])
def test_amaranth_sim_with_stalls(split_mult, split_shift):
    """Every code equal to sim.requant's, with pauses and stalls, in every split setting
    (the multiply in two stages: multipliers of all 6 bits and so both halves; the shift
    apart from ReLU and clip, with the rounding masks decoded a stage early)."""
    cfg = OutputStageConfig(acc_bits=16, acts="int4", lanes=2, mult_bits=6, shift_bits=4,
                            split_mult=split_mult, split_shift=split_shift)
    dut = OutputStage(cfg)
    rng = np.random.default_rng(11)
    n = 60
    acc = rng.integers(-(1 << 15), 1 << 15, (n, 2)) >> rng.integers(0, 15, (n, 2))
    bias = rng.integers(-50, 50, (n, 2))
    mult = rng.integers(0, 64, (n, 2))
    shift = rng.integers(0, 16, (n, 2))
    relu = rng.integers(0, 2, n)
    # a third of the beats are exact halves, (2j + 1) * 2**(shift - 1): round half to even
    halves = slice(0, n // 3)
    shift[halves] = rng.integers(1, 8, (n // 3, 2))
    acc[halves] = (2 * rng.integers(-4, 4, (n // 3, 2)) + 1) << (shift[halves] - 1)
    bias[halves], mult[halves] = 0, 1
    want = np.stack([requantize(acc[b][:, None], mult[b], shift[b], bias[b], "int4",
                                bool(relu[b]), 16, 6, 4)[:, 0] for b in range(n)])
    payloads = [{"acc": acc[b].tolist(), "bias": bias[b].tolist(), "mult": mult[b].tolist(),
                 "shift": shift[b].tolist(), "relu": int(relu[b])} for b in range(n)]
    got = []

    async def source(ctx):
        await put(ctx, dut.i, payloads, pauses=random_pauses(rng, 0.3))

    async def sink(ctx):
        beats = await get(ctx, dut.o, n, stalls=random_pauses(rng, 0.4), max_cycles=400)
        got.extend([int(v) for v in payload] for _, payload in beats)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    got = get_format("int4").decode(np.array(got, dtype=np.int64))
    assert len(got) == n
    assert np.array_equal(got, want)
