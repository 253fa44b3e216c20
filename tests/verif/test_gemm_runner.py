"""GEMMs through the Verilated core: ``sparsecore gemm`` and :func:`verif.gemm.run_gemm`.

Small shapes on the tiny presets, so that each configuration is built once
(cached across tests and runs) and a GEMM takes a second or two. Results are
judged by ``--check`` (the numpy model in sim/) and, independently, by plain
numpy int64 math on values small enough not to wrap.
"""

import dataclasses
import re

import numpy as np
import pytest

from sparsecore.cli import main
from sparsecore.hw.config import preset
from sparsecore.sim import compress_2to4, prune_2to4
from sparsecore.verif.gemm import fst_supported, run_gemm

SEED = 20261125


def plain_product(a, b):
    return a.astype(np.int64) @ b.astype(np.int64)


def summary_words(line):
    return dict(word.split("=", 1) for word in line.split())


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def check_summary(out, config, mode, shape):
    """The one summary line: its keys, macs = M*N*K and utilization = macs/(cycles*peak)."""
    lines = out.splitlines()
    assert len(lines) == 1, out
    words = summary_words(lines[0])
    m, k, n = shape
    assert words["mode"] == mode
    assert int(words["macs"]) == m * n * k
    cycles = int(words["cycles"])
    peak = config.multipliers * (2 if mode == "sparse" else 1)
    assert cycles >= 1
    assert float(words["utilization"]) == pytest.approx(m * n * k / (cycles * peak), abs=1e-4)
    assert words["check"] == "pass"
    return words


def test_cli_sparse_odd_shape(capsys, tmp_path):
    """M=3, K=5, N=1: padding on every axis of the tiny 2 x 2 x G1 core."""
    rng = np.random.default_rng(SEED)
    a = prune_2to4(rng.integers(-128, 128, size=(3, 5)))
    b = rng.integers(-128, 128, size=(5, 1))
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "B.npy", b)
    code, out, err = run_cli(capsys, "gemm", "--a", tmp_path / "A.npy", "--b",
                             tmp_path / "B.npy", "--weights", "int8", "--acts", "int8",
                             "--config", "tiny", "--out", tmp_path / "C.npy", "--check")
    assert code == 0, err
    words = check_summary(out, preset("tiny"), "sparse", (3, 5, 1))
    assert words["config"] == "tiny"
    c = np.load(tmp_path / "C.npy")
    assert c.dtype == np.int64 and c.shape == (3, 1)
    np.testing.assert_array_equal(c, plain_product(a, b))


def test_cli_dense(capsys, tmp_path):
    """A dense A (not 2:4) in dense mode, several tiles and K chunks."""
    rng = np.random.default_rng(SEED + 1)
    a = rng.integers(-128, 128, size=(5, 9))
    b = rng.integers(-128, 128, size=(9, 3))
    np.save(tmp_path / "A.npy", a.astype(np.int8))
    np.save(tmp_path / "B.npy", b.astype(np.int16))
    code, out, err = run_cli(capsys, "gemm", "--a", tmp_path / "A.npy", "--b",
                             tmp_path / "B.npy", "--weights", "int8", "--acts", "int8",
                             "--dense", "--config", "tiny", "--out", tmp_path / "C.npy",
                             "--check")
    assert code == 0, err
    check_summary(out, preset("tiny"), "dense", (5, 9, 3))
    np.testing.assert_array_equal(np.load(tmp_path / "C.npy"), plain_product(a, b))


def test_cli_compressed_non_canonical_codes(capsys, tmp_path):
    """Compressed A with codes outside the canonical table (0b0101 picks position 1 twice)."""
    rng = np.random.default_rng(SEED + 2)
    m, k, n = 3, 7, 2
    groups = -(-k // 4)
    values = rng.integers(-128, 128, size=(m, 2 * groups))
    meta = rng.integers(0, 16, size=(m, groups))
    meta[0, 0], meta[1, 1], meta[2, 0] = 0b0101, 0b0000, 0b1111
    b = rng.integers(-128, 128, size=(k, n))
    np.save(tmp_path / "V.npy", values)
    np.save(tmp_path / "M.npy", meta.astype(np.uint8))
    np.save(tmp_path / "B.npy", b)
    code, out, err = run_cli(capsys, "gemm", "--a-values", tmp_path / "V.npy", "--a-meta",
                             tmp_path / "M.npy", "--b", tmp_path / "B.npy", "--weights",
                             "int8", "--acts", "int8", "--config", "tiny", "--out",
                             tmp_path / "C.npy", "--check")
    assert code == 0, err
    check_summary(out, preset("tiny"), "sparse", (m, k, n))
    # Independent expectation, SPEC §3 written out: each kept value picks B[4g + index].
    b_pad = np.zeros((4 * groups, n), dtype=np.int64)
    b_pad[:k] = b
    expected = np.zeros((m, n), dtype=np.int64)
    for i in range(m):
        for g in range(groups):
            code_ = int(meta[i, g])
            expected[i] += values[i, 2 * g] * b_pad[4 * g + (code_ & 3)]
            expected[i] += values[i, 2 * g + 1] * b_pad[4 * g + (code_ >> 2)]
    np.testing.assert_array_equal(np.load(tmp_path / "C.npy"), expected)


def test_cli_formats_override_and_wrap(capsys, tmp_path):
    """--weights/--acts/--acc-bits rebuild the core for those fields; sums wrap to acc_bits."""
    rng = np.random.default_rng(SEED + 3)
    a = prune_2to4(rng.choice([-1, 1], size=(2, 64)))
    b = np.full((64, 2), 15)
    b[:, 1] = rng.integers(0, 16, size=64)
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "B.npy", b)
    code, out, err = run_cli(capsys, "gemm", "--a", tmp_path / "A.npy", "--b",
                             tmp_path / "B.npy", "--weights", "ternary", "--acts", "uint4",
                             "--acc-bits", "6", "--config", "tiny", "--out",
                             tmp_path / "C.npy", "--check")
    assert code == 0, err
    words = check_summary(out, preset("tiny"), "sparse", (2, 64, 2))
    assert (words["weights"], words["acts"], words["acc_bits"]) == ("ternary", "uint4", "6")
    wrapped = (plain_product(a, b) + 32) % 64 - 32
    np.testing.assert_array_equal(np.load(tmp_path / "C.npy"), wrapped)


def test_cli_check_failure_exits_1(capsys, tmp_path, monkeypatch):
    """A model that disagrees with the core: exit 1, the first mismatch located on stderr."""
    from sparsecore import sim

    a = np.array([[1, 0, 2, 0]])
    b = np.array([[1], [2], [3], [4]])
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "B.npy", b)
    true_model = sim.sparse_matmul
    monkeypatch.setattr(sim, "sparse_matmul",
                        lambda *args, **kw: true_model(*args, **kw) + 1)
    code, out, err = run_cli(capsys, "gemm", "--a", tmp_path / "A.npy", "--b",
                             tmp_path / "B.npy", "--weights", "int8", "--acts", "int8",
                             "--config", "tiny", "--out", tmp_path / "C.npy", "--check")
    assert code == 1
    assert summary_words(out.splitlines()[0])["check"] == "fail"
    assert re.search(r"first C\[0, 0\]: core 7, model 8", err), err
    assert "--waves" in err


def test_run_gemm_accumulate_cache_and_speed():
    """K split into accumulating tiles; the second run reuses the build; speed figures."""
    rng = np.random.default_rng(SEED + 4)
    config = preset("tiny")
    a = prune_2to4(rng.integers(-128, 128, size=(4, 40)))
    b = rng.integers(-128, 128, size=(40, 2))
    values, meta = compress_2to4(a)
    first = run_gemm(config, values=values, meta=meta, b=b, k_parts=3, progress=False)
    np.testing.assert_array_equal(first.c, plain_product(a, b))
    assert first.tiled.beats.accumulate.any()
    # 2 row tiles x 3 K parts, 10 sparse beats per output tile.
    assert first.tile_results.shape == (6, 2, 2)
    assert first.beats == 20 and first.mode == "sparse" and first.macs == 4 * 40 * 2
    second = run_gemm(config, a=a, b=b, dense=True, progress=False, bare_cycles=2000)
    assert not second.build.rebuilt
    np.testing.assert_array_equal(second.c, plain_product(a, b))
    # Back-to-back beats: no fewer cycles than beats, no more than beats + a latency each.
    latency = second.build.manifest["latency"]
    assert second.beats <= second.cycles <= second.beats + latency + 1
    assert second.bare_cycles_per_second > 0 and second.cycles_per_second > 0


def test_describe_mismatch_locates_the_group():
    """A core that picked the wrong activation: the report names the tile, beat, group, code."""
    config = preset("tiny")
    a = np.array([[0, 3, 0, 0, 5, 0, 0, 1]])    # group 1: positions 0 and 3, code 0b1100
    b = np.arange(1, 17).reshape(8, 2)
    result = run_gemm(config, a=a, b=b, progress=False)
    expected = plain_product(a, b)
    np.testing.assert_array_equal(result.c, expected)
    assert result.describe_mismatch(expected) is None
    # Had group 1 used code 0b0100 (positions 0 and 1): 5*B[4] + 1*B[5], not 5*B[4] + 1*B[7].
    broken_c = result.c.copy()
    broken_c[0, 0] += b[5, 0] - b[7, 0]
    broken_tiles = result.tile_results.copy()
    broken_tiles[0, 0, 0] = broken_c[0, 0]
    broken = dataclasses.replace(result, c=broken_c, tile_results=broken_tiles)
    message = broken.describe_mismatch(expected)
    assert message.startswith(f"1 of 2 results differ; first C[0, 0]: core {broken_c[0, 0]}, "
                              f"model {expected[0, 0]}")
    assert "K columns 4..7" in message
    assert "code 0b1100; code 0b0100 gives the core's value" in message


def test_cli_waves(capsys, tmp_path):
    """--waves writes the VCD and a GTKWave save file with the signals grouped and named."""
    from sparsecore.verif.waves import read_vcd, vcd_names

    rng = np.random.default_rng(SEED + 5)
    a = prune_2to4(rng.integers(-128, 128, size=(2, 8)))
    b = rng.integers(-128, 128, size=(8, 2))
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "B.npy", b)
    vcd = tmp_path / "run.vcd"
    code, out, err = run_cli(capsys, "gemm", "--a", tmp_path / "A.npy", "--b",
                             tmp_path / "B.npy", "--weights", "int8", "--acts", "int8",
                             "--config", "tiny", "--out", tmp_path / "C.npy", "--waves",
                             vcd, "--check")
    assert code == 0, err
    gtkw = (tmp_path / "run.gtkw").read_text()
    assert '[dumpfile] "run.vcd"' in gtkw
    for group in ("weights stream (A)", "tile descriptor", "activations stream (B)",
                  "results stream (C tiles)", "accumulators"):
        assert f"-{group}" in gtkw, group
    traced = re.findall(r"^\+\{[^}]*\} (\S+)$", gtkw, re.M)
    names = set(vcd_names(vcd))
    assert traced and set(traced) <= names
    # The waveform itself: one result beat per tile, as many as the run returned.
    top = traced[0].split(".")[0]
    data = read_vcd(vcd, [f"{top}.clk", f"{top}.results__valid"])
    rises = [t for t, v in data[f"{top}.clk"][1] if v == 1]
    valid = data[f"{top}.results__valid"][1]
    high = sum(1 for t in rises if _value_at(valid, t - 1) == 1)
    assert high == 1    # a 2 x 8 x 2 GEMM is one output tile of the 2 x 2 core


def _value_at(changes, time):
    value = None
    for t, v in changes:
        if t > time:
            break
        value = v
    return value


def test_waves_png(tmp_path):
    """A PNG of a recorded run, drawn headless."""
    pytest.importorskip("matplotlib")
    from sparsecore.verif.waves import render_png

    a = np.array([[1, 0, 0, -1], [0, 2, 3, 0]])
    b = np.arange(8).reshape(4, 2)
    result = run_gemm(preset("tiny"), a=a, b=b, waves=tmp_path / "w.vcd", progress=False)
    png = render_png(result.waves, result.build.manifest, tmp_path / "w.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not fst_supported(), reason="no lz4/zlib headers: FST cannot be built here")
def test_cli_waves_fst(capsys, tmp_path):
    """--waves x.fst where the machine can: an FST file and its save file."""
    np.save(tmp_path / "A.npy", np.array([[1, 0, 0, 2]]))
    np.save(tmp_path / "B.npy", np.array([[1], [2], [3], [4]]))
    fst = tmp_path / "run.fst"
    code, out, err = run_cli(capsys, "gemm", "--a", tmp_path / "A.npy", "--b",
                             tmp_path / "B.npy", "--weights", "int8", "--acts", "int8",
                             "--config", "tiny", "--out", tmp_path / "C.npy", "--waves", fst,
                             "--check")
    assert code == 0, err
    assert fst.read_bytes()[:1] == b"\x00"    # an FST header block, not VCD text
    gtkw = (tmp_path / "run.gtkw").read_text()
    assert '[dumpfile] "run.fst"' in gtkw and "acc_0_0" in gtkw
    assert np.load(tmp_path / "C.npy")[0, 0] == 9


def test_progress_on_stderr_only_for_long_steps(monkeypatch, capsys):
    import time

    from sparsecore.verif import gemm

    with gemm._Progress("quick step", lambda: "1/2 beats"):
        pass
    assert capsys.readouterr() == ("", "")
    monkeypatch.setattr(gemm, "PROGRESS_AFTER_S", 0.01)
    monkeypatch.setattr(gemm, "PROGRESS_LOG_S", 0.01)
    with gemm._Progress("long step", lambda: "1/2 beats"):
        time.sleep(0.2)
    out, err = capsys.readouterr()
    assert out == ""
    assert "sparsecore: long step: 1/2 beats" in err and "long step: done in" in err
