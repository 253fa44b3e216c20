"""The accelerator's job layout (load stream, result beats) and cycle model, on hand-worked
examples; the RTL checks the model on random jobs in hw/tests/test_accel.py."""

import dataclasses

import numpy as np
import pytest

from sparsecore.hw.accel import model_record
from sparsecore.hw.config import AccelConfig
from sparsecore.sim.accel import expected_c, load_stream, result_beats, split_results
from sparsecore.sim.accel_perf import AccelGeometry, AccelJob, plan_job, predict_job


def _geometry(latency=4, check_cycles=1, **kw):
    """The model's view of a small accelerator (its word numbers from the config record);
    latency and check time set by hand for the hand-worked timings."""
    fields = dict(rows=2, cols=2, groups=1, weights="int8", acts="int8", acc_bits=32,
                  load_bytes=16, out_bytes=16, a_depth=4, b_depth=8, p_depth=4)
    geo = AccelGeometry.of(model_record(AccelConfig(**{**fields, **kw})))
    return dataclasses.replace(geo, latency=latency, check_cycles=check_cycles)


def test_load_stream_bytes_by_hand():
    """One row, one column, one group, one byte per beat: B's four K rows, then the A word
    (values 5, -3 at positions 1 and 3: code 1 | 3 << 2 = 13) in 3 bytes."""
    g = _geometry(rows=1, cols=1, load_bytes=1)
    job, beats = load_stream(g, np.array([[1], [2], [3], [4]]), a=np.array([[0, 5, 0, -3]]))
    assert job == AccelJob(1, 1, 1, False)
    assert beats == [1, 2, 3, 4, 0x05, 0xFD, 0x0D]
    # dense: K = 4 is two chunks of 2; one B word holds both; A words are 2 values + meta 0
    job, beats = load_stream(g, np.array([[1], [2], [3], [4]]), a=np.array([[7, 5, 0, -3]]),
                             dense=True)
    assert job == AccelJob(1, 1, 2, True) and job.b_words == 1
    assert beats == [1, 2, 3, 4, 7, 5, 0, 0x00, 0xFD, 0x00]


def test_result_beats_round_trip():
    g = _geometry(rows=2, cols=3, acc_bits=20, out_bytes=4)   # 120-bit tile: 4 beats
    rng = np.random.default_rng(0)
    c = rng.integers(-(1 << 19), 1 << 19, (3, 4))
    job = plan_job(g, 3, 4, 5, dense=False)
    beats = result_beats(g, job, c)
    assert len(beats) == job.m_tiles * job.n_tiles * g.out_beats == 2 * 2 * 4
    np.testing.assert_array_equal(split_results(g, job, beats, 3, 4), c)
    assert beats[0] & 0xFFFFF == c[0, 0] & 0xFFFFF
    with pytest.raises(ValueError, match="expected 16 result beats, got 15"):
        split_results(g, job, beats[:-1], 3, 4)


def test_expected_c_is_plain_matmul():
    rng = np.random.default_rng(1)
    a = rng.integers(-8, 8, (5, 12))
    a[:, 1::2] = 0    # 2:4
    b = rng.integers(0, 16, (12, 3))
    g = _geometry()
    np.testing.assert_array_equal(expected_c(g, b, a=a), a @ b)
    np.testing.assert_array_equal(expected_c(g, b, a=a, dense=True), a @ b)


def test_cycles_by_hand():
    """2x2 tiles, one group, 16-byte beats: every word one beat, a tile's result one beat.

    Job 3 x 2 tiles, 2 chunks: command at edge 0, check at 1, B (2 columns x 2 words)
    at edges 2-5, stripe 0 at 6-7, stripe 1 at 8-9. Stripe 0 reads at 8-11 (two tiles of
    two chunks), stripe 1 at 12-15; stripe 2 loads into stripe 0's buffer once its reads
    are done (edges 12-13) and reads at 16-19. The core takes the last read at 20, its
    result leaves at 20 + latency 4, its one result beat at 25."""
    g = _geometry()
    assert predict_job(g, AccelJob(1, 1, 1, False)).cycles == 1 + 1 + 1 + 1 + 1 + 4 + 1
    perf = predict_job(g, AccelJob(3, 2, 2, False))
    assert perf.cycles == 25
    assert perf.load_beats == 4 + 3 * 2 and perf.load_bytes == 16 * 10
    assert perf.compute_beats == 12 and perf.peak == 2 * 2 * 4
    # out_bytes 4: 4 beats per tile > 2 chunks, so tiles start 4 edges apart
    slow = predict_job(_geometry(out_bytes=4), AccelJob(1, 2, 2, False))
    # B 2-5, stripe 6-7, tile 0 reads 8-9, tile 1 reads 12-13; result 14+4, beats 19-22
    assert slow.cycles == 22


def test_refusals():
    g = _geometry()
    assert predict_job(g, AccelJob(1, 1, 5, False)).refused == 2
    assert predict_job(g, AccelJob(1, 5, 2, False)).refused == 4     # 10 words > 8
    assert predict_job(g, AccelJob(1, 8, 2, True)).refused == 0      # dense: 1 word/column
    assert predict_job(g, AccelJob(0, 1, 1, True)).refused == 1
    assert predict_job(g, AccelJob(0, 1, 1, True)).cycles == 2


def test_codes_job_by_hand():
    """A codes job: the parameter word (one per stripe) follows B, the output stage takes
    the tile a row per edge and adds its latency, and a tile of int8 codes is one beat.

    1 x 1 tile, 1 chunk: command at 0, check 1, B at 2, parameters at 3, the stripe at 4,
    its read at 5, the core takes it at 6, its result at 6 + 4; row 0 enters the stage at
    10, row 1 at 11, whose codes come out at 11 + 6 (the stage's latency with its split
    multiply and split shift) and go as one beat at 18 (raw: 10)."""
    g = _geometry()
    assert (g.p_word_bits, g.p_word_beats, g.code_beats) == (2 * (32 + 16 + 5), 1, 1)
    raw = predict_job(g, AccelJob(1, 1, 1, False))
    codes = predict_job(g, AccelJob(1, 1, 1, False, codes=True))
    assert g.stage_latency == 6
    assert (raw.cycles, codes.cycles) == (10, 18)
    assert codes.load_beats == raw.load_beats + 1
    assert predict_job(g, AccelJob(5, 1, 1, False, codes=True)).refused == 8   # p_depth 4
    assert predict_job(g, AccelJob(5, 1, 1, False)).refused == 0


def test_codes_load_and_results_by_hand():
    """One row, one column, one-byte beats: B, then the parameter word (bias -2 in 32 bits,
    mult 3 in 16, shift 1 in 5: 7 bytes), then A; the code of (C + bias) * mult >> 1."""
    g = _geometry(rows=1, cols=1, load_bytes=1, out_bytes=1)
    b = np.array([[1], [2], [3], [4]])
    a = np.array([[0, 5, 0, -3]])      # C = 5*2 - 3*4 = -2
    params = (np.array([-2]), np.array([3]), np.array([1]))
    job, beats = load_stream(g, b, a=a, params=params)
    assert job == AccelJob(1, 1, 1, False, codes=True)
    assert beats == [1, 2, 3, 4, 0xFE, 0xFF, 0xFF, 0xFF, 3, 0, 1, 0x05, 0xFD, 0x0D]
    # (-2 - 2) * 3 / 2 = -6 exactly: the int8 code 0xFA; with ReLU 0
    assert result_beats(g, job, np.array([[-2]]), params) == [0xFA]
    relu = plan_job(g, 1, 1, 4, dense=False, codes=True, relu=True)
    assert result_beats(g, relu, np.array([[-2]]), params) == [0]
    assert split_results(g, job, [0xFA], 1, 1).tolist() == [[-6]]
    with pytest.raises(ValueError, match="mult: value 65536"):
        load_stream(g, b, a=a, params=(params[0], np.array([1 << 16]), params[2]))
    with pytest.raises(ValueError, match="need its params"):
        result_beats(g, job, np.array([[-2]]))
