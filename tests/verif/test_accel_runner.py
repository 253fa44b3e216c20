# amaranth: UnusedElaboratable=no
"""GEMMs through the Verilated accelerator: ``sparsecore gemm --accel`` and
:func:`verif.accel.run.run_accel_gemm`, on the engine and on the cocotb player.

The runner tests reuse the small accelerator that verif/accel/test_accel.py
builds (same config; its cocotb build for the player), with B too wide for its
buffer so that a GEMM runs as several jobs back to back; the command-line tests
run the tiny preset's accelerator at 4 bytes per cycle (its engine build shared
with test_cli_hostile.py's signal test). Results are judged by plain numpy int64
math (values too small to wrap), cycles by sim.accel_perf.
"""

import dataclasses
import tempfile

import numpy as np
import pytest

from sparsecore.cli import main
from sparsecore.hw.accel import model_record
from sparsecore.hw.config import AccelConfig, preset
from sparsecore.sim import prune_2to4
from sparsecore.sim.accel import column_blocks
from sparsecore.sim.accel_perf import AccelGeometry, plan_job, predict_job, predict_jobs
from sparsecore.verif import engine
from sparsecore.verif.accel import run as accel_run
from sparsecore.verif.accel.run import cycle_limit, plan_accel_gemm, play_engine, run_accel_gemm
from sparsecore.verif.accel.test_accel import CONFIG
from sparsecore.verif.engine import EngineFailed, StallPattern

SEED = 20261130


def test_run_accel_gemm_in_column_blocks():
    """B 30 columns wide needs 10 tile columns; with 4 (sparse) or 3 (dense) words per
    column a 20-word buffer holds 5 or 6, so the GEMM is two jobs. C equals plain numpy;
    every job's cycles and the total (jobs + the status/command gap between them) equal
    the model's."""
    rng = np.random.default_rng(SEED)
    for dense in (False, True):
        k = 16 if not dense else 12   # 4 or 3 B words per tile column
        a = rng.integers(-8, 8, (5, k))
        a = a if dense else prune_2to4(a)
        b = rng.integers(0, 256, (k, 30))
        result = run_accel_gemm(CONFIG, b, a=a, dense=dense, progress=False)
        np.testing.assert_array_equal(result.c, a @ b)
        assert len(result.jobs) == 2
        for job, rtl, model in result.jobs:
            assert rtl == model, (job, rtl, model)
        assert result.cycles == result.model_cycles == predict_jobs(
            AccelGeometry.of(result.build.manifest), [job for job, _, _ in result.jobs])
        geometry = AccelGeometry.of(result.build.manifest)
        perfs = [predict_job(geometry, plan_job(geometry, 5, hi - lo, k, dense=dense))
                 for lo, hi in column_blocks(geometry, 5, 30, k, dense=dense)]
        assert result.load_bytes == sum(p.load_bytes for p in perfs)


def plain_codes(c, bias, mult, shift, relu, lo, hi):
    """Output codes by plain numpy: round half to even of (C + bias) * mult / 2**shift,
    ReLU, clip to [lo, hi] (exact in floats at these sizes)."""
    y = np.round((c + bias[:, None]) * mult[:, None] / 2.0 ** shift[:, None])
    return np.clip(np.maximum(y, 0) if relu else y, lo, hi).astype(np.int64)


# (mode, M, K, N, codes, relu, stalls): raw and codes, sparse and dense, one and two jobs
# (N = 30 needs two), with and without seeded stalls on every stream.
RUNNER_CASES = [
    ("sparse", 5, 16, 30, False, False, None),
    ("dense", 3, 12, 7, True, True, None),
    ("sparse", 4, 24, 5, True, False, StallPattern(idle=0.3, backpressure=0.4, seed=7)),
    ("dense", 6, 12, 30, False, False, StallPattern(idle=0.5, backpressure=0.2, seed=8)),
]


def test_engine_equals_cocotb_player():
    """The engine and the cocotb player on the same jobs: the same C (or codes), the
    same cycles, every job's; both equal plain numpy, and at full rate sim.accel_perf's
    exact cycles (each job, and the jobs back to back with the gap between them). With
    stalls the run is slower than the model, the same on both."""
    rng = np.random.default_rng(SEED + 2)
    for mode, m, k, n, codes, relu, stalls in RUNNER_CASES:
        dense = mode == "dense"
        a = rng.integers(-8, 8, (m, k))
        a = a if dense else prune_2to4(a)
        b = rng.integers(0, 256, (k, n))
        params = None
        want = a @ b
        if codes:
            params = (rng.integers(-2000, 2000, m), rng.integers(1 << 10, 1 << 16, m),
                      rng.integers(19, 23, m))
            want = plain_codes(want, *params, relu, -128, 127)   # the config's int8 codes
            assert len(set(want.ravel().tolist())) > 3, "codes that say little"
        runs = {runner: run_accel_gemm(CONFIG, b, a=a, dense=dense, params=params, relu=relu,
                                       stalls=stalls, progress=False, runner=runner)
                for runner in ("engine", "cocotb")}
        case = (mode, m, k, n, codes, relu, stalls)
        for runner, result in runs.items():
            assert result.runner == runner
            np.testing.assert_array_equal(result.c, want, err_msg=f"{runner} {case}")
        engine_run, player = runs["engine"], runs["cocotb"]
        assert engine_run.jobs == player.jobs, case
        assert (engine_run.cycles, engine_run.sim_cycles, engine_run.load_bytes) == \
            (player.cycles, player.sim_cycles, player.load_bytes), case
        assert len(engine_run.jobs) == (2 if n == 30 else 1), case
        geometry = AccelGeometry.of(engine_run.build.manifest)
        model = predict_jobs(geometry, [job for job, _, _ in engine_run.jobs])
        if stalls is None:
            assert all(rtl == cycles for _, rtl, cycles in engine_run.jobs), case
            assert engine_run.cycles == model, case
        else:
            assert engine_run.cycles > model, f"the stalls slowed nothing down: {case}"


def test_engine_equals_cocotb_player_at_a_second_bandwidth():
    """The same equality on another accelerator and stream width: the tiny preset at 4
    bytes per cycle (one-beat words, a tile in one result beat; the command-line tests'
    build). A raw job with stalls on every stream and a codes job at full rate, whose
    cycles are sim.accel_perf's."""
    config = AccelConfig.of(preset("tiny"), load_bytes=4)
    rng = np.random.default_rng(SEED + 3)
    for codes, stalls in ((False, StallPattern(idle=0.4, backpressure=0.6, seed=9)),
                          (True, None)):
        a = prune_2to4(rng.integers(-128, 128, (6, 40)))
        b = rng.integers(-128, 128, (40, 5))
        params = ((rng.integers(-3000, 3000, 6), rng.integers(0, 1 << 16, 6),
                   rng.integers(22, 27, 6)) if codes else None)
        want = plain_codes(a @ b, *params, True, -128, 127) if codes else a @ b
        assert len(set(want.ravel().tolist())) > 3, "results that say little"
        runs = {runner: run_accel_gemm(config, b, a=a, params=params, relu=codes,
                                       stalls=stalls, progress=False, runner=runner)
                for runner in ("engine", "cocotb")}
        for runner, result in runs.items():
            np.testing.assert_array_equal(result.c, want, err_msg=f"{runner} codes={codes}")
        engine_run, player = runs["engine"], runs["cocotb"]
        assert engine_run.jobs == player.jobs
        assert (engine_run.cycles, engine_run.load_bytes) == (player.cycles, player.load_bytes)
        model = predict_jobs(AccelGeometry.of(engine_run.build.manifest),
                             [job for job, _, _ in engine_run.jobs])
        if stalls is None:
            assert engine_run.cycles == model
        else:
            assert engine_run.cycles > model, "the stalls slowed nothing down"


def test_b_buffer_banks():
    """B past its first bank (hw.accel.B_BANK_WORDS words): the tiny preset's accelerator
    at 4 bytes per cycle with 2,100 B words (K = 400, N = 42), sparse and dense, C equal
    to plain numpy and the cycles to sim.accel_perf's."""
    from sparsecore.hw.accel import B_BANK_WORDS
    config = AccelConfig.of(preset("tiny"), load_bytes=4)
    rng = np.random.default_rng(SEED + 4)
    for dense in (False, True):
        a = rng.integers(-128, 128, (3, 400))
        a = a if dense else prune_2to4(a)
        b = rng.integers(-128, 128, (400, 42))
        result = run_accel_gemm(config, b, a=a, dense=dense, progress=False)
        np.testing.assert_array_equal(result.c, a @ b)
        (job, rtl, model), = result.jobs
        assert job.n_tiles * job.b_words > B_BANK_WORDS, job
        assert rtl == model


def test_cycle_limit_from_the_model():
    """The engine's default limit is made from beat counts; an accelerator job whose compute
    outweighs its beats (the tiny preset at 16 bytes per cycle, 128 x 256 x 64: each load
    beat is used by many tiles) needs more cycles than that, and the runner's limit, from
    sim.accel_perf, leaves room for it."""
    record = model_record(AccelConfig.of(preset("tiny"), load_bytes=16))
    geometry = AccelGeometry.of(record)
    job = plan_job(geometry, 128, 64, 256, dense=False)
    perf = predict_job(geometry, job)
    results = job.m_tiles * job.n_tiles * geometry.out_beats
    by_beats = engine.cycle_limit([perf.load_beats, 1], [results, 1], record["latency"])
    assert by_beats < perf.cycles < cycle_limit([perf])
    stalls = StallPattern(idle=0.5, backpressure=0.5)
    assert cycle_limit([perf], stalls) >= 4 * cycle_limit([perf]) - 4000


def test_engine_faults():
    """On the engine, a run past its cycle limit, a result beat more than the job expects,
    and a load beat the jobs never take each end in one EngineFailed line."""
    built = engine.build_engine(CONFIG)
    rng = np.random.default_rng(SEED + 3)
    a = prune_2to4(rng.integers(-8, 8, (4, 8)))
    plan = plan_accel_gemm(built.manifest, rng.integers(0, 256, (8, 6)), a=a)
    assert play_engine(built, plan).sim_cycles == plan.perfs[0].cycles + 2
    cases = [
        ({"limit": plan.perfs[0].cycles}, f"within the limit of {plan.perfs[0].cycles} cycles"),
        ({"plan": dataclasses.replace(plan, n_results=[plan.n_results[0] - 1])},
         "gave more than"),
        ({"plan": dataclasses.replace(plan, load=[*plan.load, 0])},
         f"after only {len(plan.load)} of {len(plan.load) + 1} load beats"),
    ]
    for change, message in cases:
        with pytest.raises(EngineFailed) as info:
            play_engine(built, change.get("plan", plan), limit=change.get("limit"))
        assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def _gemm_argv(tmp_path, rng):
    a = prune_2to4(rng.integers(-128, 128, (6, 40)))
    b = rng.integers(-128, 128, (40, 5))
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "B.npy", b)
    argv = [str(x) for x in ("gemm", "--a", tmp_path / "A.npy", "--b", tmp_path / "B.npy",
                             "--weights", "int8", "--acts", "int8", "--config", "tiny",
                             "--check", "--accel", "--bandwidth", "4")]
    return a, b, argv


def test_cli_accel(capsys, tmp_path, monkeypatch):
    """``sparsecore gemm --accel --bandwidth 4`` on the tiny preset: C exact, the summary
    line has cycles, macs, utilization, load_bytes and bandwidth (SPEC §5) as the model
    predicts them. Then the same GEMM as output codes of another format (--bias, --mult,
    --shift, --relu, --out-format int4) with --waves, checked against plain numpy; the
    VCD and its .gtkw show the accelerator's streams and its sequencer. No job file is
    left behind."""
    rng = np.random.default_rng(SEED + 1)
    a, b, gemm = _gemm_argv(tmp_path, rng)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    code = main(gemm + ["--out", str(tmp_path / "C.npy")])
    out, err = capsys.readouterr()
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "C.npy"), a @ b)
    words = dict(w.split("=", 1) for w in out.split())
    config = AccelConfig.of(preset("tiny"), load_bytes=4)
    geometry = AccelGeometry.of(model_record(config))
    perf = predict_job(geometry, plan_job(geometry, 6, 5, 40, dense=False))
    assert words["check"] == "pass" and words["mode"] == "sparse"
    assert int(words["cycles"]) == perf.cycles
    assert int(words["load_bytes"]) == perf.load_bytes and words["bandwidth"] == "4"
    assert int(words["macs"]) == 6 * 5 * 40
    assert float(words["utilization"]) == round(6 * 5 * 40 / (perf.cycles * perf.peak), 4)
    assert "codes" not in words

    bias, mult, shift = rng.integers(-3000, 3000, 6), rng.integers(0, 1 << 16, 6), \
        rng.integers(22, 27, 6)
    for name, arr in (("bias", bias), ("mult", mult), ("shift", shift)):
        np.save(tmp_path / f"{name}.npy", arr)
    code = main(gemm + ["--out", str(tmp_path / "Y.npy"), "--waves", str(tmp_path / "y.vcd"),
                        "--bias", str(tmp_path / "bias.npy"), "--mult",
                        str(tmp_path / "mult.npy"), "--shift", str(tmp_path / "shift.npy"),
                        "--relu", "--out-format", "int4"])
    out, err = capsys.readouterr()
    assert code == 0, err
    words = dict(w.split("=", 1) for w in out.split())
    assert (words["codes"], words["out"], words["relu"], words["check"]) == ("1", "int4", "1",
                                                                           "pass")
    want = plain_codes(a @ b, bias, mult, shift, True, -8, 7)
    np.testing.assert_array_equal(np.load(tmp_path / "Y.npy"), want)
    assert len(set(want.ravel().tolist())) > 3, "codes that say little: pick other params"
    assert want.max() == 7, "no code clipped to int4's top: pick other params"
    geometry = AccelGeometry.of(model_record(AccelConfig.of(preset("tiny"), load_bytes=4,
                                                            out="int4")))
    perf = predict_job(geometry, plan_job(geometry, 6, 5, 40, dense=False, codes=True))
    assert int(words["cycles"]) == perf.cycles
    assert int(words["load_bytes"]) == perf.load_bytes
    vcd, gtkw = (tmp_path / "y.vcd").read_text(), (tmp_path / "y.gtkw").read_text()
    for port in ("cmd__valid", "load__ready", "results__payload", "status__valid"):
        assert port in vcd and port in gtkw, port
    for group in ("cmd stream", "load stream", "sequencer", "output stage and result queue"):
        assert group in gtkw, group
    assert list(tmp.iterdir()) == [], "job files left behind"


def test_cli_accel_fault(capsys, tmp_path, monkeypatch):
    """A run that does not finish within its cycle limit (here made too short): exit 1,
    one line saying so, no C written, no job files left."""
    rng = np.random.default_rng(SEED + 4)
    _, _, gemm = _gemm_argv(tmp_path, rng)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(accel_run, "cycle_limit", lambda perfs, stalls=None: 50)
    code = main(gemm + ["--out", str(tmp_path / "C.npy")])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if not line.startswith("sparsecore: ")]
    assert code == 1 and out == "", (code, out, err)
    assert len(lines) == 1 and "within the limit of 50 cycles" in lines[0], err
    assert lines[0].startswith("sparsecore gemm: the run on the accelerator failed: "), err
    assert not (tmp_path / "C.npy").exists()
    assert list(tmp.iterdir()) == [], "job files left behind"
