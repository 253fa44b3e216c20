"""cocotb tests of SparseTensorCore (run by verif/core/test_core.py, one build per config).

Every test drives beats built from plain integers, lets :class:`CoreTB` compare
each result beat with sim/, and ends drained. ``SPARSECORE_CORE_MACS`` sets how
many random MAC checks ``test_random_tiles`` does (default 120000).
"""

import cocotb
import numpy as np

from sparsecore.sim.formats import get_format
from sparsecore.sim.sparsity import prune_2to4
from sparsecore.sim.tiling import Beats, Geometry, expected_results, tile_gemm
from sparsecore.verif.build import testbench_manifest
from sparsecore.verif.core.tb import COVERAGE, STATS, CoreTB, mac_target, save_coverage

MAC_TARGET = mac_target()

_MANIFEST = testbench_manifest()
_CONFIG = _MANIFEST["config"]
_GEOMETRY = Geometry.of(_CONFIG)
_WF = get_format(_CONFIG["weights"], "weights")
_AF = get_format(_CONFIG["acts"], "acts")
# Beats of all-maximum products needed to overflow acc_bits.
_WRAP_BEATS = -(-(1 << (_CONFIG["acc_bits"] - 1))
                // (2 * _GEOMETRY.groups * max(abs(_WF.min), _WF.max)
                    * max(abs(_AF.min), _AF.max)))


# -- beat builders (plain integers; expected values always come from sim/) -----------

def _values(rng, shape, fmt, zeros=0.2):
    v = rng.integers(fmt.min, fmt.max + 1, size=shape)
    return np.where(rng.random(shape) < zeros, 0, v)


def random_beats(rng, n, dense=None, zeros=0.2):
    """``n`` random beats (one tile), any of the 16 codes, random or given mode."""
    g = _GEOMETRY
    dense = bool(rng.integers(2)) if dense is None else dense
    last = np.zeros(n, dtype=bool)
    last[-1] = True
    acts = _values(rng, (n, 4 * g.groups, g.cols), _AF, zeros)
    if dense:
        acts[:, g.k_dense:] = 0
    return Beats(
        values=_values(rng, (n, g.rows, 2 * g.groups), _WF, zeros),
        meta=(rng.integers(0, 16, size=(n, g.rows, g.groups)) if not dense
              else np.zeros((n, g.rows, g.groups), dtype=np.int64)),
        acts=acts, dense=np.full(n, dense), last=last,
        accumulate=np.zeros(n, dtype=bool))


def random_gemm(rng):
    """A random GEMM through sim.tiling: dense, 2:4 A, or compressed A with any codes."""
    g = _GEOMETRY
    m = int(rng.integers(1, 3 * g.rows + 1))
    n = int(rng.integers(1, 3 * g.cols + 1))
    k = int(rng.integers(1, 24 * g.groups + 1))
    b = _values(rng, (k, n), _AF)
    kind = rng.integers(3)
    k_parts = int(rng.integers(1, 4))
    if kind == 2:
        groups = -(-k // 4)
        return tile_gemm(g, b, values=_values(rng, (m, 2 * groups), _WF),
                         meta=rng.integers(0, 16, size=(m, groups)), k_parts=k_parts)
    a = prune_2to4(_values(rng, (m, k), _WF))
    return tile_gemm(g, b, a=a, dense=bool(kind), k_parts=k_parts)


# -- tests ----------------------------------------------------------------------------

TRAFFIC = [  # (input idle probability, results stall probability, burst)
    (0.0, 0.0, 1), (0.3, 0.3, 3), (0.05, 0.8, 8), (0.5, 0.05, 2), (0.1, 0.5, 12),
]


@cocotb.test()
async def test_random_tiles(dut):
    """Random GEMMs and tiles in both modes under every traffic pattern; >= MAC_TARGET checks."""
    tb = CoreTB(dut, "test_random_tiles")
    await tb.reset()
    start = STATS["mac_checks"]
    segment = 0
    while STATS["mac_checks"] - start < MAC_TARGET:
        tb.traffic(*TRAFFIC[segment % len(TRAFFIC)])
        for _ in range(6):
            if tb.rng.random() < 0.5:
                tiled = random_gemm(tb.rng)
                beats = tiled.beats
            else:
                beats = random_beats(tb.rng, int(tb.rng.integers(1, 9)))
            if tb.rng.random() < 0.3:
                beats.accumulate[0] = True     # onto the previous tile's result
            tb.submit(beats)
        await tb.drain()
        segment += 1
    dut._log.info("random MAC checks: %d in %d segments", STATS["mac_checks"] - start,
                  segment)


@cocotb.test()
async def test_all_codes_every_lane(dut):
    """Every (row, group) meets all 16 codes with nonzero kept values, in every traffic."""
    tb = CoreTB(dut, "test_all_codes_every_lane")
    await tb.reset()
    g = _GEOMETRY
    for traffic in TRAFFIC[:3]:
        tb.traffic(*traffic)
        beats = random_beats(tb.rng, 16, dense=False, zeros=0.0)
        nonzero = [v for v in range(_WF.min, _WF.max + 1) if v]
        beats.values[:] = tb.rng.choice(nonzero, size=beats.values.shape)
        shift = np.arange(g.rows)[:, None] + 5 * np.arange(g.groups)[None, :]
        beats.meta[:] = (np.arange(16)[:, None, None] + shift[None]) % 16
        beats.last[:] = np.arange(16) % 4 == 3           # four tiles of four beats
        tb.submit(beats)
        await tb.drain()


@cocotb.test()
async def test_zero_groups(dut):
    """All-zero groups (any code), all-zero rows and an all-zero tile."""
    tb = CoreTB(dut, "test_zero_groups")
    await tb.reset()
    tb.traffic(0.2, 0.2, 2)
    for dense in (False, True, False):
        beats = random_beats(tb.rng, 6, dense=dense, zeros=0.0)
        pairs = beats.values.reshape(6, _GEOMETRY.rows, _GEOMETRY.groups, 2)
        pairs[tb.rng.random(pairs.shape[:3]) < 0.5] = 0      # zero groups
        beats.values[:, 0] = 0                               # a zero row
        tb.submit(beats)
    empty = random_beats(tb.rng, 3, dense=False)
    empty.values[:] = 0
    tb.submit(empty)
    await tb.drain()


@cocotb.test()
async def test_format_extremes(dut):
    """Operands at each format's min and max, every combination, in both modes."""
    tb = CoreTB(dut, "test_format_extremes")
    await tb.reset()
    tb.traffic(0.1, 0.3, 2)
    for dense in (False, True):
        for _ in range(3):
            beats = random_beats(tb.rng, 8, dense=dense)
            beats.values[:] = tb.rng.choice([_WF.min, _WF.max], size=beats.values.shape)
            beats.acts[:] = tb.rng.choice([_AF.min, _AF.max], size=beats.acts.shape)
            if dense:
                beats.acts[:, _GEOMETRY.k_dense:] = 0
            tb.submit(beats)
    await tb.drain()


@cocotb.skipif(_WRAP_BEATS > 2048, reason="acc_bits too wide to overflow in a short test")
@cocotb.test()
async def test_accumulator_wrap(dut):
    """Extreme products until acc_bits overflows (twice over): the largest positive
    product in sparse mode, the most negative one in dense mode."""
    tb = CoreTB(dut, "test_accumulator_wrap")
    await tb.reset()
    tb.traffic(0.1, 0.1, 1)
    corners = [(w * a, w, a) for w in (_WF.min, _WF.max) for a in (_AF.min, _AF.max)]
    n = 2 * _WRAP_BEATS + 3
    for dense, (_, w, a) in ((False, max(corners)), (True, min(corners))):
        beats = random_beats(tb.rng, n, dense=dense, zeros=0.0)
        beats.values[:] = w
        beats.acts[:] = a
        if dense:
            beats.acts[:, _GEOMETRY.k_dense:] = 0
        # The model must show a wrap, or this test would not test one.
        wide = Geometry(_GEOMETRY.rows, _GEOMETRY.cols, _GEOMETRY.groups, 64)
        assert not np.array_equal(expected_results(beats, _GEOMETRY),
                                  expected_results(beats, wide)), "no wrap in the stimulus"
        tb.submit(beats)
    await tb.drain()


@cocotb.test()
async def test_back_to_back_mode_switches(dut):
    """Tiles of 1..5 beats, modes and accumulate mixed, no idle and no stall: the core
    takes one beat every cycle and each result comes exactly ``latency`` after its last beat."""
    tb = CoreTB(dut, "test_back_to_back_mode_switches")
    await tb.reset()
    tb.traffic(0.0, 0.0)
    parts = []
    for t in range(40):
        beats = random_beats(tb.rng, int(tb.rng.integers(1, 6)), dense=bool(t % 2 ^ (t % 7 == 0)))
        beats.accumulate[0] = bool(tb.rng.integers(2))
        parts.append(beats)
    beats = Beats.concat(parts)
    tb.submit(beats)
    await tb.drain()
    accepted = np.array(tb.accept_cycles)
    assert (np.diff(accepted) == 1).all(), "the core left a bubble between beats"
    last_beats = accepted[np.flatnonzero(beats.last)]
    lag = np.array(tb.result_cycles) - last_beats
    assert (lag == tb.latency).all(), f"result lag {sorted(set(lag.tolist()))}, " \
                                      f"manifest latency {tb.latency}"


@cocotb.test()
async def test_accumulate_and_fresh(dut):
    """K split over several tiles that accumulate; sparse then dense onto it; fresh after;
    accumulate as the first tile after reset (starts from zero)."""
    tb = CoreTB(dut, "test_accumulate_and_fresh")
    await tb.reset()
    tb.traffic(0.2, 0.4, 3)
    first = random_beats(tb.rng, 2)
    first.accumulate[0] = True                 # after reset: onto zero
    tb.submit(first)
    for dense in (False, True):
        rng = tb.rng
        g = _GEOMETRY
        a = prune_2to4(_values(rng, (2 * g.rows, 16 * g.groups), _WF))
        b = _values(rng, (16 * g.groups, g.cols), _AF)
        tb.submit(tile_gemm(g, b, a=a, dense=dense, k_parts=4).beats)
    chain = [random_beats(tb.rng, 3, dense=d) for d in (False, True, False, True)]
    for beats in chain[1:3]:
        beats.accumulate[0] = True
    for beats in chain:
        tb.submit(beats)
    await tb.drain()


@cocotb.test()
async def test_reset_mid_tile(dut):
    """Reset in the middle of a tile, and while a finished tile waits for results ready;
    the next tiles (the first one accumulating, so onto zero) are exact."""
    tb = CoreTB(dut, "test_reset_mid_tile")
    await tb.reset()
    for stall in (0.2, 1.0):
        tb.traffic(0.2, stall, 4)
        long_tile = random_beats(tb.rng, 20, dense=False)
        if stall < 1.0:
            tb.submit(long_tile)
            await tb.run_until_accepted(7)          # 7 of 20 beats in
        else:
            # Results never taken: one finished tile in the results register, the
            # next waiting in the accumulator, the pipeline and inputs held.
            tb.submit(Beats.concat([random_beats(tb.rng, 1) for _ in range(4)] + [long_tile]))
            await tb.run_cycles(40)
            assert not tb.results.beats, "a result was taken while ready was low"
            assert tb.accepted < 24, "the core took every beat with results blocked"
        await tb.reset()
        tb.traffic(0.2, 0.2, 2)
        after = [random_beats(tb.rng, 3) for _ in range(3)]
        after[0].accumulate[0] = True
        for beats in after:
            tb.submit(beats)
        await tb.drain()


@cocotb.skipif(_WF.name != "ternary", reason="the reserved code exists in ternary only")
@cocotb.test()
async def test_ternary_reserved_code(dut):
    """The reserved ternary code 0b10 sent in place of zeros adds nothing."""
    tb = CoreTB(dut, "test_ternary_reserved_code")
    await tb.reset()
    tb.traffic(0.1, 0.1, 1)
    for dense in (False, True):
        tb.submit(random_beats(tb.rng, 10, dense=dense, zeros=0.5), reserved=0.7)
    await tb.drain()


@cocotb.test()
async def test_coverage_closed(dut):
    """Runs last: every coverage bin was hit by the tests above."""
    save_coverage()
    dut._log.info("coverage after %d MAC checks, %d tiles, %d beats:\n%s",
                  STATS["mac_checks"], STATS["tiles_checked"], STATS["beats"],
                  COVERAGE.summary())
    missing = COVERAGE.missing()
    assert not missing, f"coverage bins never hit: {missing}"
