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
    """``sparsecore gemm --accel --bandwidth 4 --waves`` on the tiny preset: C exact, the
    summary line has cycles, macs, utilization, load_bytes and bandwidth (SPEC §5) as the
    model predicts them, and the VCD and its .gtkw show the accelerator's streams. Then the
    same GEMM as output codes (--bias, --mult, --shift, --relu; int8, the default
    --out-format), checked against plain numpy."""
    rng = np.random.default_rng(SEED + 1)
    a = prune_2to4(rng.integers(-128, 128, (6, 40)))
    b = rng.integers(-128, 128, (40, 5))
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "B.npy", b)
    gemm = [str(x) for x in ("gemm", "--a", tmp_path / "A.npy", "--b", tmp_path / "B.npy",
                             "--weights", "int8", "--acts", "int8", "--config", "tiny",
                             "--check", "--accel", "--bandwidth", "4")]
    code = main(gemm + ["--out", str(tmp_path / "C.npy"), "--waves", str(tmp_path / "w.vcd")])
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
    vcd, gtkw = (tmp_path / "w.vcd").read_text(), (tmp_path / "w.gtkw").read_text()
    for port in ("cmd__valid", "load__ready", "results__payload", "status__valid"):
        assert port in vcd and port in gtkw, port
    for group in ("cmd stream", "load stream", "sequencer", "output stage and serializer"):
        assert group in gtkw, group

    bias, mult, shift = rng.integers(-3000, 3000, 6), rng.integers(0, 1 << 16, 6), \
        rng.integers(20, 28, 6)
    for name, arr in (("bias", bias), ("mult", mult), ("shift", shift)):
        np.save(tmp_path / f"{name}.npy", arr)
    code = main(gemm + ["--out", str(tmp_path / "Y.npy"), "--waves", str(tmp_path / "y.vcd"),
                        "--bias", str(tmp_path / "bias.npy"), "--mult",
                        str(tmp_path / "mult.npy"), "--shift", str(tmp_path / "shift.npy"),
                        "--relu"])
    out, err = capsys.readouterr()
    assert code == 0, err
    words = dict(w.split("=", 1) for w in out.split())
    assert (words["codes"], words["out"], words["relu"], words["check"]) == ("1", "int8", "1",
                                                                           "pass")
    # round half to even of (C + bias) * mult / 2**shift, ReLU, clip to int8: exact in floats
    y = ((a @ b) + bias[:, None]) * mult[:, None] / 2.0 ** shift[:, None]
    want = np.clip(np.maximum(np.round(y), 0), -128, 127).astype(np.int64)
    np.testing.assert_array_equal(np.load(tmp_path / "Y.npy"), want)
    assert len(set(want.ravel().tolist())) > 3, "codes that say little: pick other params"
    perf = predict_job(geometry, plan_job(geometry, 6, 5, 40, dense=False, codes=True))
    assert int(words["cycles"]) == perf.cycles
