# amaranth: UnusedElaboratable=no
"""GEMMs through the Verilated accelerator: ``sparsecore gemm --accel`` and
:func:`verif.accel.run.run_accel_gemm`.

The runner test reuses the small accelerator that verif/accel/test_accel.py
builds (same config, same build folder), with B too wide for its buffer so the
GEMM runs as several jobs back to back; the command-line test runs the tiny
preset's accelerator. Results are judged by plain numpy int64 math (values too
small to wrap), cycles by sim.accel_perf.
"""

import numpy as np

from sparsecore.cli import main
from sparsecore.hw.accel import model_record
from sparsecore.hw.config import AccelConfig, preset
from sparsecore.sim import prune_2to4
from sparsecore.sim.accel import column_blocks
from sparsecore.sim.accel_perf import AccelGeometry, plan_job, predict_job, predict_jobs
from sparsecore.verif.accel.run import run_accel_gemm
from sparsecore.verif.accel.test_accel import CONFIG

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


def test_cli_accel(capsys, tmp_path):
    """``sparsecore gemm --accel --bandwidth 4`` on the tiny preset: C exact, and the summary
    line has cycles, macs, utilization, load_bytes and bandwidth (SPEC §5) as the model
    predicts them."""
    rng = np.random.default_rng(SEED + 1)
    a = prune_2to4(rng.integers(-128, 128, (6, 40)))
    b = rng.integers(-128, 128, (40, 5))
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "B.npy", b)
    code = main([str(x) for x in ("gemm", "--a", tmp_path / "A.npy", "--b", tmp_path / "B.npy",
                                  "--weights", "int8", "--acts", "int8", "--config", "tiny",
                                  "--out", tmp_path / "C.npy", "--check", "--accel",
                                  "--bandwidth", "4")])
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
