# amaranth: UnusedElaboratable=no
"""AccelConfig and SparseAccelerator under amaranth.sim: every result against the numpy
model, every job's cycles against sim.accel_perf, refusals, stalls on every stream
(the cocotb suite under Verilator is in verif/accel/)."""

import dataclasses
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from sparsecore.hw.accel import Refusal, SparseAccelerator, model_record
from sparsecore.hw.config import PRESETS, AccelConfig, CoreConfig
from sparsecore.hw.output_stage import OutputStage
from sparsecore.sim.accel import (
    expected_c,
    expected_codes,
    load_stream,
    result_beats,
    split_results,
)
from sparsecore.sim.accel_perf import AccelGeometry, AccelJob, predict_job
from sparsecore.sim.sparsity import prune_2to4


@pytest.mark.parametrize("kwargs,match", [
    ({"load_bytes": 0}, "load_bytes must be a positive integer, not 0"),
    ({"out_bytes": 1.5}, "out_bytes must be a positive integer, not 1.5"),
    ({"a_depth": -1}, "a_depth must be a positive integer, not -1"),
    ({"b_depth": True}, "b_depth must be a positive integer, not True"),
    ({"count_bits": 40}, "count_bits must be in 1..32, not 40"),
])
def test_config_refuses(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AccelConfig(**kwargs)


def test_config_sizes():
    cfg = AccelConfig.of(PRESETS["default"])
    assert cfg.core == PRESETS["default"]
    # default: 4 rows x 4 kept int8 values + 4 rows x 2 codes = 128 + 32 bits per A word;
    # 8 K rows x 4 int8 columns = 256 bits per B word; 4 x 4 x 32-bit results
    assert (cfg.a_word_bits, cfg.b_word_bits, cfg.result_bits) == (160, 256, 512)
    assert (cfg.a_word_beats, cfg.b_word_beats, cfg.out_beats) == (2, 2, 4)
    assert cfg.a_buffer_bits == 2 * 384 * 160 and cfg.b_buffer_bits == 6144 * 256
    with pytest.raises(ValueError, match="config must be an AccelConfig"):
        SparseAccelerator(PRESETS["default"])
    ter = AccelConfig.of(PRESETS["ternary_uint4"])
    assert (ter.a_word_bits, ter.b_word_bits, ter.a_word_beats) == (64, 128, 1)


def test_output_stage_record():
    """The accelerator's stage splits its multiply and its shift (two cycles more than a
    layer's stage); the manifest carries its config record and latency, and the cycle
    model's record the same latency."""
    cfg = AccelConfig.of(PRESETS["default"])
    stage = cfg.output_stage
    assert (stage.split_mult, stage.split_shift, stage.lanes) == (True, True, cfg.cols)
    dut = SparseAccelerator(cfg)
    extra = dut.manifest_extra()
    assert extra["output_stage"]["config"] == stage.as_dict()
    plain = OutputStage(dataclasses.replace(stage, split_mult=False, split_shift=False))
    assert dut.stage_latency == plain.latency + 2 == extra["stage_latency"]
    assert extra["output_stage"]["latency"] == dut.stage_latency
    assert model_record(cfg)["stage_latency"] == dut.stage_latency


def _geometry(cfg, dut):
    return AccelGeometry.of(model_record(cfg))


def _run(cfg, jobs, *, stall=0.0, seed=0):
    """Run (kind, operands) jobs back to back; per job: (C or None, status, cycles, loads)."""
    dut = SparseAccelerator(cfg)
    geo = _geometry(cfg, dut)
    rng = random.Random(seed)
    log = []

    async def bench(ctx):
        for job, beats in jobs:
            ctx.set(dut.cmd.p.m_tiles, job.m_tiles)
            ctx.set(dut.cmd.p.n_tiles, job.n_tiles)
            ctx.set(dut.cmd.p.k_chunks, job.k_chunks)
            ctx.set(dut.cmd.p.dense, job.dense)
            ctx.set(dut.cmd.p.codes, job.codes)
            ctx.set(dut.cmd.p.relu, job.relu)
            ctx.set(dut.cmd.valid, 1)
            while True:   # the command moves at the edge after which we count
                ready = ctx.get(dut.cmd.ready)
                await ctx.tick()
                if ready:
                    break
            ctx.set(dut.cmd.valid, 0)
            edge, sent, out, last_out = 0, 0, [], None
            while True:
                load_valid = sent < len(beats) and rng.random() >= stall
                ctx.set(dut.load.valid, load_valid)
                ctx.set(dut.load.p, beats[sent] if load_valid else 0)
                ctx.set(dut.results.ready, rng.random() >= stall)
                ctx.set(dut.status.ready, rng.random() >= stall)
                await ctx.delay(1e-9)
                moved = load_valid and ctx.get(dut.load.ready)
                res = ctx.get(dut.results.valid) and ctx.get(dut.results.ready)
                payload = ctx.get(dut.results.p)
                st = ctx.get(dut.status.valid) and ctx.get(dut.status.ready)
                status = (ctx.get(dut.status.p.error), ctx.get(dut.status.p.reason))
                await ctx.tick()
                edge += 1
                sent += bool(moved)
                if res:
                    out.append(payload)
                    last_out = edge
                if st:
                    break
            log.append((out, status, last_out if out else edge, sent))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return geo, log


CFG = AccelConfig.of(CoreConfig(rows=2, cols=3, groups=1, weights="int4", acts="uint8",
                                acc_bits=20), load_bytes=2, out_bytes=4, a_depth=6, b_depth=20,
                      p_depth=3)


def _random_gemm(rng, cfg, geo, dense, m=None, n=None, k=None):
    wf, af = cfg.weight_format, cfg.act_format
    kb = geo.core.k_per_beat(dense)
    m = m or int(rng.integers(1, 3 * cfg.rows + 1))
    n = n or int(rng.integers(1, 3 * cfg.cols + 1))
    k = k or int(rng.integers(1, cfg.a_depth * kb + 1))
    a = rng.integers(wf.min, wf.max + 1, (m, k))
    if not dense:
        a = prune_2to4(a)
    return a, rng.integers(af.min, af.max + 1, (k, n))


def _random_params(rng, cfg, m):
    """(bias, mult, shift) per row: biases near the results' scale, any multiplier, shifts
    that keep many codes off the clip limits."""
    return (rng.integers(-(1 << (cfg.acc_bits - 6)), 1 << (cfg.acc_bits - 6), m),
            rng.integers(0, 1 << cfg.mult_bits, m),
            rng.integers(cfg.mult_bits - 4, 1 << cfg.shift_bits, m))


# every word and every result tile in one beat
CFG_WIDE = AccelConfig.of(CFG.core, load_bytes=16, out_bytes=16, a_depth=5, b_depth=12,
                          out="int4")


@pytest.mark.parametrize("cfg,stall", [(CFG, 0.0), (CFG, 0.3), (CFG_WIDE, 0.0)])
def test_random_jobs_match_model(cfg, stall):
    """Random sparse and dense GEMMs, raw or through the output stage (modes and kinds
    switching), each C or code equal to the model; with no stalls every job's cycles
    equal sim.accel_perf's, with stalls they can only grow."""
    rng = np.random.default_rng(7)
    dut = SparseAccelerator(cfg)
    geo = _geometry(cfg, dut)
    gemms, jobs = [], []
    while len(jobs) < 12:
        dense = bool(rng.integers(2))
        a, b = _random_gemm(rng, cfg, geo, dense)
        params = _random_params(rng, cfg, a.shape[0]) if len(jobs) % 3 else None
        relu = bool(rng.integers(2))
        job, beats = load_stream(geo, b, a=a, dense=dense, params=params, relu=relu)
        if job.refusal(geo):
            continue
        gemms.append((a, b, dense, params, relu))
        jobs.append((job, beats))
    assert {job.codes for job, _ in jobs} == {False, True}
    _, log = _run(cfg, jobs, stall=stall, seed=int(rng.integers(1 << 30)))
    for (a, b, dense, params, relu), (job, beats), (out, status, cycles, sent) in zip(
            gemms, jobs, log, strict=True):
        perf = predict_job(geo, job)
        got = split_results(geo, job, out, a.shape[0], b.shape[1])
        c = expected_c(geo, b, a=a, dense=dense)
        if params is None:
            np.testing.assert_array_equal(got, c)
        else:   # the output stage by plain numpy: sim.requant's formula on a @ b
            np.testing.assert_array_equal(got, expected_codes(geo, b, a=a, dense=dense,
                                                              params=params, relu=relu))
            np.testing.assert_array_equal(got, _plain_codes(cfg, a @ b, params, relu))
        assert out == result_beats(geo, job, c, params)
        assert status == (0, 0) and sent == len(beats) == perf.load_beats
        if stall:
            assert cycles >= perf.cycles
        else:
            assert cycles == perf.cycles, (job, cycles, perf.cycles)


def _plain_codes(cfg, c, params, relu):
    """round_half_even((c + bias) * mult / 2**shift), ReLU, clip: Python integers."""
    fmt = cfg.out_format
    out = np.zeros(c.shape, dtype=np.int64)
    for i in range(c.shape[0]):
        bias, mult, shift = (int(p[i]) for p in params)
        for j in range(c.shape[1]):
            num = (int(c[i, j]) + bias) * mult
            q, r = divmod(num, 1 << shift)       # floor division, 0 <= r < 2**shift
            if 2 * r > (1 << shift) or (2 * r == (1 << shift) and q % 2):
                q += 1
            if relu:
                q = max(q, 0)
            out[i, j] = min(max(q, fmt.min), fmt.max)
    return out


def test_refusals_and_largest_fits():
    """Descriptors too big for a buffer (or empty) are refused check_cycles + 1 edges after
    the command, with no load taken; the largest that fit run and are exact."""
    rng = np.random.default_rng(3)
    dut = SparseAccelerator(CFG)
    geo = _geometry(CFG, dut)
    fits = [  # (dense, gemm): k_chunks = a_depth; B exactly b_depth words (5 cols x 4)
        (False, _random_gemm(rng, CFG, geo, False, k=CFG.a_depth * 4, n=3)),
        (True, _random_gemm(rng, CFG, geo, True, k=CFG.a_depth * 2, n=4)),
        (False, _random_gemm(rng, CFG, geo, False, k=16, n=5 * CFG.cols)),
        (False, _random_gemm(rng, CFG, geo, False, m=CFG.p_depth * CFG.rows)),  # P full
    ]
    params = [None, None, None, _random_params(rng, CFG, CFG.p_depth * CFG.rows)]
    cases = [
        (AccelJob(1, 1, CFG.a_depth + 1, False), int(Refusal.A_TOO_BIG)),
        (AccelJob(2, 11, 4, True), int(Refusal.B_TOO_BIG)),               # 11 x 2 words > 20
        (AccelJob(0, 1, 1, False), int(Refusal.EMPTY)),
        (AccelJob(1, 3, 7, False), int(Refusal.A_TOO_BIG | Refusal.B_TOO_BIG)),
        (AccelJob(CFG.p_depth + 1, 1, 1, False, codes=True), int(Refusal.P_TOO_BIG)),
    ]
    jobs = [(job, []) for job, _ in cases]
    for (dense, (a, b)), p in zip(fits, params, strict=True):
        jobs.append(load_stream(geo, b, a=a, dense=dense, params=p))
    assert jobs[-2][0].n_tiles * jobs[-2][0].b_words == CFG.b_depth
    assert jobs[-4][0].k_chunks == jobs[-3][0].k_chunks == CFG.a_depth
    assert jobs[-1][0].m_tiles == CFG.p_depth and jobs[-1][0].codes
    _, log = _run(CFG, jobs)
    n = len(cases)
    for (job, reason), (out, status, cycles, sent) in zip(cases, log[:n], strict=True):
        assert job.refusal(geo) == reason
        assert status == (1, reason) and out == [] and sent == 0
        assert cycles == predict_job(geo, job).cycles == dut.check_cycles + 1
    for (dense, (a, b)), p, (job, _), (out, status, cycles, _) in zip(
            fits, params, jobs[n:], log[n:], strict=True):
        assert status == (0, 0) and job.refusal(geo) == 0
        c = split_results(geo, job, out, a.shape[0], b.shape[1])
        want = (expected_c(geo, b, a=a, dense=dense) if p is None else
                expected_codes(geo, b, a=a, dense=dense, params=p))
        np.testing.assert_array_equal(c, want)
        assert cycles == predict_job(geo, job).cycles
