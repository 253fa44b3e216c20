"""The engine (C++ driver, :mod:`sparsecore.verif.engine`) against the cocotb runner and its faults.

On the same job and the same stall seed, the engine and the per-cycle cocotb
runner (:mod:`sparsecore.verif.gemm_tb`) must give the same C and the same cycle
count, GEMM and layer, sparse and dense, with and without stalls. C is also
checked against plain numpy. Faults (beat counts that disagree, a design that
never finishes) end with one line, and no temporary file or child is left.
"""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsecore.hw.config import LayerConfig, preset
from sparsecore.sim import prune_2to4
from sparsecore.sim.inference import IntegerLayer, numpy_layer
from sparsecore.sim.packing import pack_fields32, pack_rows, unpack_field32
from sparsecore.sim.tiling import Geometry, tile_gemm
from sparsecore.verif.engine import (
    RESET_CYCLES,
    EngineFailed,
    StallPattern,
    Stalls,
    build_engine,
    run_job,
    verilated_name,
)
from sparsecore.verif.gemm import (
    GemmEngine,
    core_build_name,
    pack_beat_words,
    pack_table_words,
    run_gemm,
    run_layer,
)

SEED = 20261130
TINY = preset("tiny")
# The layer testbench's design (verif/layer/test_layer.py): its cocotb build is shared.
LAYER = LayerConfig(rows=2, cols=3, groups=1, weights="int4", acts="uint4", acc_bits=16,
                    out="int8", mult_bits=10, shift_bits=5)
# A layer with a code table after its output stage (verif/layer/test_layer_table.py's).
TABLE_LAYER = LayerConfig(rows=2, cols=2, groups=1, weights="ternary", acts="int8",
                          out="int8", table="int8")


def plain_product(a, b):
    return a.astype(np.int64) @ b.astype(np.int64)


# -- pure parts --------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.data())
def test_pack_fields32_matches_pack_rows(data):
    """Word w of a row holds bits [32w, 32w+32) of the pack_rows integer (SPEC §4)."""
    bits = data.draw(st.sampled_from([1, 2, 4, 8, 13, 16, 32, 33]))
    count = data.draw(st.integers(1, 9))
    offset = data.draw(st.integers(0, 40))
    n = data.draw(st.integers(0, 5))
    width = offset + count * bits + data.draw(st.integers(0, 20))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    codes = rng.integers(0, 1 << bits, size=(n, count), dtype=np.uint64)
    words = pack_fields32(n, width, [(offset, codes, bits)])
    assert words.dtype == np.uint32 and words.shape == (n, -(-width // 32))
    from sparsecore.verif.payload import raw_format
    expected = pack_rows(codes.astype(np.int64), raw_format(bits)) if n else []
    for row, value in zip(words, expected, strict=True):
        as_int = sum(int(w) << (32 * i) for i, w in enumerate(row))
        assert as_int == value << offset
    np.testing.assert_array_equal(unpack_field32(words, offset, count, bits), codes)


def test_pack_fields32_byte_fields_next_to_bit_fields():
    """Whole-byte fields on byte boundaries (copied as bytes) beside fields of any width
    in one payload: each row's words hold, as Python integers say, element i of a field
    at bits [offset + i*bits, offset + (i+1)*bits)."""
    rng = np.random.default_rng(SEED + 4)
    n = 7
    layout = [(0, 3, 8), (24, 2, 16), (56, 5, 4), (76, 1, 1), (80, 2, 32), (144, 3, 13),
              (184, 1, 64), (248, 2, 8)]
    fields = [(offset, rng.integers(0, 1 << min(bits, 63), size=(n, count),
                                    dtype=np.uint64) | np.uint64(1 << (bits - 1)), bits)
              for offset, count, bits in layout]            # top bit set: no bit lost
    words = pack_fields32(n, 270, fields)
    want = [sum(int(code) << (offset + i * bits) for offset, codes, bits in fields
                for i, code in enumerate(codes[r])) for r in range(n)]
    assert [sum(int(w) << (32 * i) for i, w in enumerate(row)) for row in words] == want


def test_stalls_are_splitmix64():
    """The published splitmix64 sequence from state 0; a draw stalls below the threshold."""
    first = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    always = Stalls(threshold=1 << 24, state=0)
    never = Stalls(threshold=0, state=0)
    some = Stalls(threshold=0x6E789E6AA1B965F4 >> 40, state=0)
    assert [always.next() for _ in range(3)] == [True] * 3
    assert [never.next() for _ in range(3)] == [False] * 3
    # A draw stalls when its top 24 bits are below the threshold (strictly).
    assert [some.next() for _ in range(3)] == [x >> 40 < first[1] >> 40 for x in first]


def test_stall_pattern_validation_and_seeding():
    with pytest.raises(ValueError, match="idle must be a probability in \\[0, 1\\), not 1"):
        StallPattern(idle=1)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        StallPattern(seed=-1)
    p = StallPattern(0.25, 0.5, seed=3)
    assert p.threshold("in") == 1 << 22 and p.threshold("out") == 1 << 23
    assert p.state("weights") != p.state("activations")
    assert p.state("weights") == StallPattern(0.25, 0.5, seed=3).state("weights")
    assert p.state("weights") != StallPattern(0.25, 0.5, seed=4).state("weights")
    assert StallPattern().stalls("weights", "in") is None


def test_verilated_names():
    assert verilated_name("weights__valid") == "weights___05Fvalid"
    assert verilated_name("clk") == "clk"
    assert verilated_name("a.b") == "a__02Eb"


# -- the engine against the cocotb runner ------------------------------------------------

GEMM_CASES = [
    # (M, K, N), dense, stalls, k_parts
    ((5, 37, 3), False, None, 1),
    ((5, 37, 3), False, StallPattern(0.3, 0.4, seed=11), 1),
    ((3, 9, 5), True, StallPattern(0.5, 0.0, seed=12), 1),
    ((4, 40, 2), False, StallPattern(0.0, 0.6, seed=13), 3),
]


@pytest.mark.parametrize("shape, dense, stalls, k_parts", GEMM_CASES)
def test_engine_matches_cocotb_gemm(shape, dense, stalls, k_parts):
    m, k, n = shape
    rng = np.random.default_rng(SEED + m * k * n)
    a = rng.integers(-128, 128, size=(m, k))
    a = a if dense else prune_2to4(a)
    b = rng.integers(-128, 128, size=(k, n))
    runs = {runner: run_gemm(TINY, a=a, b=b, dense=dense, k_parts=k_parts, progress=False,
                             runner=runner, stalls=stalls)
            for runner in ("engine", "cocotb")}
    engine, cocotb = runs["engine"], runs["cocotb"]
    assert engine.runner == "engine" and cocotb.runner == "cocotb"
    np.testing.assert_array_equal(engine.c, plain_product(a, b))
    np.testing.assert_array_equal(engine.tile_results, cocotb.tile_results)
    assert engine.cycles == cocotb.cycles
    if stalls is None:   # full rate: a beat every cycle, one latency at the end at most
        latency = engine.build.manifest["latency"]
        assert engine.beats <= engine.cycles <= engine.beats + latency + 1
    else:                # stalls cost cycles
        free = run_gemm(TINY, a=a, b=b, dense=dense, k_parts=k_parts, progress=False)
        assert engine.cycles > free.cycles


@pytest.mark.parametrize("dense, stalls", [(False, StallPattern(0.3, 0.3, seed=21)),
                                           (True, None)])
def test_engine_matches_cocotb_layer(dense, stalls):
    rng = np.random.default_rng(SEED + 1)
    m, k, n = 5, 19, 4
    a = rng.integers(-8, 8, size=(m, k))
    a = a if dense else prune_2to4(a)
    b = rng.integers(0, 16, size=(k, n))
    mult = rng.integers(1, 1 << 9, size=m)
    shift = rng.integers(4, 12, size=m)
    bias = rng.integers(-200, 200, size=m)
    runs = {runner: run_layer(LAYER, a, b, mult, shift, bias, True, dense=dense,
                              progress=False, runner=runner, stalls=stalls)
            for runner in ("engine", "cocotb")}
    layer = IntegerLayer(a, not dense, mult, shift, bias, True, LAYER.out)
    _, want = numpy_layer(layer, b, LAYER.acc_bits, LAYER.mult_bits, LAYER.shift_bits,
                          dense=dense)
    np.testing.assert_array_equal(runs["engine"].out, want)
    np.testing.assert_array_equal(runs["engine"].out, runs["cocotb"].out)
    assert runs["engine"].cycles == runs["cocotb"].cycles


@pytest.mark.parametrize("dense, stalls", [(False, StallPattern(0.3, 0.3, seed=22)),
                                           (True, None)])
def test_engine_matches_cocotb_layer_with_code_table(dense, stalls):
    """The code table is written in full before the job (not counted in its cycles), on
    both runners; the codes are the table's entries of numpy_layer's codes."""
    from sparsecore.sim.code_table import function_table, lookup

    rng = np.random.default_rng(SEED + 6)
    m, k, n = 5, 14, 3
    a = rng.integers(-1, 2, size=(m, k))
    a = a if dense else prune_2to4(a)
    b = rng.integers(-128, 128, size=(k, n))
    mult = rng.integers(1 << 12, 1 << 14, size=m)
    shift = rng.integers(15, 18, size=m)
    bias = rng.integers(-50, 50, size=m)
    table = function_table("tanh", 1 / 16, 1 / 127)
    runs = {runner: run_layer(TABLE_LAYER, a, b, mult, shift, bias, False, dense=dense,
                              table=table, progress=False, runner=runner, stalls=stalls)
            for runner in ("engine", "cocotb")}
    layer = IntegerLayer(a, not dense, mult, shift, bias, False, TABLE_LAYER.out)
    _, codes = numpy_layer(layer, b, TABLE_LAYER.acc_bits, TABLE_LAYER.mult_bits,
                           TABLE_LAYER.shift_bits, dense=dense)
    np.testing.assert_array_equal(runs["engine"].out, lookup(codes, table, "int8", "int8"))
    np.testing.assert_array_equal(runs["engine"].out, runs["cocotb"].out)
    assert runs["engine"].cycles == runs["cocotb"].cycles
    if stalls is None:   # the table's 256 writes are not in the job's cycles
        latency = runs["engine"].latency
        beats = runs["engine"].tiled.n_beats
        assert beats <= runs["engine"].cycles <= beats + latency + 1


def test_fault_before_stream_never_taken(tiny_engine):
    """The core takes a weight beat only with an activation beat: weights played `before`
    the activations are never taken, and the run ends at the limit with one line."""
    weights, acts, tiles = _job(tiny_engine)
    start = time.monotonic()
    with pytest.raises(EngineFailed, match="did not take the streams played before the job "
                       "within the limit of 500 cycles") as err:
        run_job(tiny_engine, {"weights": weights, "activations": acts}, {"results": tiles},
                before=["weights"], limit=500)
    assert "\n" not in str(err.value) and time.monotonic() - start < 30
    with pytest.raises(ValueError, match="before must name input streams"):
        run_job(tiny_engine, {"weights": weights, "activations": acts},
                {"results": tiles}, before=["results"])


# -- faults --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_engine():
    return build_engine(TINY, core_build_name(TINY))


def _job(built, m=4, k=16, n=4):
    rng = np.random.default_rng(SEED + 2)
    tiled = tile_gemm(Geometry.of(TINY), rng.integers(-9, 9, size=(k, n)),
                      a=prune_2to4(rng.integers(-9, 9, size=(m, k))))
    weights, acts = pack_beat_words(built.manifest, TINY, tiled.beats)
    return weights, acts, tiled.beats.n_tiles


def _no_job_folders(tmp):
    return not any(Path(tmp).glob("sparsecore-engine-*"))


def test_fault_input_beats_left_over(tiny_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    weights, acts, tiles = _job(tiny_engine)
    extra = np.concatenate([weights, weights[:1]])
    with pytest.raises(EngineFailed, match=r"only \d+ of \d+ weights beats were taken") as err:
        run_job(tiny_engine, {"weights": extra, "activations": acts}, {"results": tiles})
    assert "\n" not in str(err.value)
    assert _no_job_folders(tmp_path)


def test_fault_more_output_beats_than_expected(tiny_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    weights, acts, tiles = _job(tiny_engine)
    with pytest.raises(EngineFailed, match=f"gave more than the {tiles - 1} beats"):
        run_job(tiny_engine, {"weights": weights, "activations": acts},
                {"results": tiles - 1})
    assert _no_job_folders(tmp_path)


def test_fault_cycle_limit(tiny_engine, tmp_path, monkeypatch):
    """Fewer results come than the job expects: the run ends at its cycle limit, no hang."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    weights, acts, tiles = _job(tiny_engine)
    start = time.monotonic()
    with pytest.raises(EngineFailed, match=r"did not finish the job within the limit of \d+ "
                       r"cycles \(beats: weights \d+/\d+ activations \d+/\d+ results "
                       rf"{tiles}/{tiles + 1}\)"):
        run_job(tiny_engine, {"weights": weights, "activations": acts},
                {"results": tiles + 1})
    assert time.monotonic() - start < 30
    assert _no_job_folders(tmp_path)


@pytest.fixture(scope="module")
def tiny_waves_engine():
    return build_engine(TINY, core_build_name(TINY), waves=True)


def _vcd_timestamps(path):
    return [int(line[1:]) for line in path.read_text().splitlines() if line.startswith("#")]


def test_failed_job_keeps_its_whole_waveform(tiny_waves_engine, tmp_path):
    """A job stopped by its cycle limit: the VCD holds every cycle up to the limit (the
    driver closes it before exiting), and no temporary file is left beside it."""
    weights, acts, tiles = _job(tiny_waves_engine)
    vcd = tmp_path / "stalled.vcd"
    limit = 40
    with pytest.raises(EngineFailed, match=f"within the limit of {limit} cycles"):
        run_job(tiny_waves_engine, {"weights": weights, "activations": acts},
                {"results": tiles + 1}, limit=limit, vcd=vcd)
    assert [p.name for p in tmp_path.iterdir()] == ["stalled.vcd"]
    # a 10 ns clock: reset cycles, then `limit` cycles, each dumped at its low and high phase
    last = (RESET_CYCLES + limit) * 10 - 5
    assert _vcd_timestamps(vcd)[-1] == last


@pytest.mark.parametrize("what", ["vcd", "out"])
def test_driver_stops_on_a_failed_write(tiny_waves_engine, tmp_path, what):
    """The driver writing the VCD or a captured stream into /dev/full (every write gives
    ENOSPC): exit 5 at once with one line naming the file, and the `write_failed` line for
    the host. (Verilator's own VCD file deadlocked in its error path: the run hung.)"""
    weights, acts, tiles = _job(tiny_waves_engine)
    run_job(tiny_waves_engine, {"weights": weights, "activations": acts}, {"results": tiles},
            vcd=tmp_path / "run.vcd", keep=tmp_path / "job")
    job = tmp_path / "job" / "job.txt"
    lines = job.read_text().splitlines()
    if what == "vcd":
        lines = [line if not line.startswith("vcd ") else "vcd /dev/full" for line in lines]
    else:
        lines = [" ".join(line.split()[:4] + ["/dev/full"]) if line.startswith("out ") else
                 line for line in lines]
    job.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([str(tiny_waves_engine.executable), str(job)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 5, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"write_failed errno={errno.ENOSPC} file=/dev/full"
    assert proc.stderr.splitlines() == [f"cannot write /dev/full: {os.strerror(errno.ENOSPC)}"]


def test_run_job_names_the_vcd_it_cannot_write(tiny_waves_engine, tmp_path):
    """A VCD in a folder that does not exist: OSError naming that VCD, not a temporary name."""
    weights, acts, tiles = _job(tiny_waves_engine)
    vcd = tmp_path / "missing" / "run.vcd"
    with pytest.raises(FileNotFoundError) as err:
        run_job(tiny_waves_engine, {"weights": weights, "activations": acts},
                {"results": tiles}, vcd=vcd)
    assert err.value.filename == str(vcd)


def test_run_job_refuses_bad_streams(tiny_engine):
    weights, acts, tiles = _job(tiny_engine)
    with pytest.raises(ValueError, match="inputs must be given for exactly the streams"):
        run_job(tiny_engine, {"weights": weights}, {"results": tiles})
    with pytest.raises(ValueError, match=r"activations: beats must be \(beats, 2\) uint32"):
        run_job(tiny_engine, {"weights": weights, "activations": acts[:, :1]},
                {"results": tiles})


def test_edges_of_beats(tiny_engine):
    """``edges``: at full rate the core takes a beat at every edge from the first, and the
    last result beat's edge is the run's cycle count; with stalls every beat still has
    its edge, in order. A stream the design lacks, or one played before, is refused."""
    weights, acts, tiles = _job(tiny_engine)
    run = run_job(tiny_engine, {"weights": weights, "activations": acts}, {"results": tiles},
                  edges=("weights", "results"))
    np.testing.assert_array_equal(run.edges["weights"], np.arange(1, len(weights) + 1))
    assert len(run.edges["results"]) == tiles and run.edges["results"][-1] == run.cycles
    assert set(run.edges) == {"weights", "results"}
    stalled = run_job(tiny_engine, {"weights": weights, "activations": acts},
                      {"results": tiles}, stalls=StallPattern(0.4, 0.4, seed=3),
                      edges=("activations", "results"))
    moved = stalled.edges["activations"]
    assert len(moved) == len(acts) and (np.diff(moved) > 0).all()
    assert moved[-1] > len(acts), "the stalls held no beat back"
    assert stalled.edges["results"][-1] == stalled.cycles > run.cycles
    inputs = {"weights": weights, "activations": acts}
    with pytest.raises(ValueError, match="edges must name streams"):
        run_job(tiny_engine, inputs, {"results": tiles}, edges=("nope",))
    with pytest.raises(ValueError, match="edges must name streams"):
        run_job(tiny_engine, inputs, {"results": tiles}, edges=("weights",),
                before=("weights",))


def test_indexed_beats_equal_played_beats(tiny_engine):
    """A stream played as table[index] gives what the beats themselves give."""
    weights, acts, tiles = _job(tiny_engine)
    plain = run_job(tiny_engine, {"weights": weights, "activations": acts},
                    {"results": tiles})
    table, index = np.unique(acts, axis=0, return_inverse=True)
    indexed = run_job(tiny_engine, {"weights": weights, "activations": (table, index.ravel())},
                      {"results": tiles})
    np.testing.assert_array_equal(plain.outputs["results"], indexed.outputs["results"])
    assert plain.cycles == indexed.cycles


def test_beat_runs_equal_played_beats(tiny_engine):
    """A stream played as runs of table rows gives what the beats themselves give, and the
    GEMM's own tables and runs (pack_table_words) give the same results as its beats."""
    rng = np.random.default_rng(SEED + 3)
    tiled = tile_gemm(Geometry.of(TINY), rng.integers(-9, 9, size=(24, 6)),
                      a=prune_2to4(rng.integers(-9, 9, size=(5, 24))), k_parts=2)
    weights, acts = pack_beat_words(tiny_engine.manifest, TINY, tiled.beats)
    plain = run_job(tiny_engine, {"weights": weights, "activations": acts},
                    {"results": tiled.n_tiles})
    tables = pack_table_words(tiny_engine.manifest, TINY, tiled.tables)
    assert tables[0][1].shape == (len(tiled.tables.weight_runs), 2)
    played = run_job(tiny_engine, {"weights": tables[0], "activations": tables[1]},
                     {"results": tiled.n_tiles})
    np.testing.assert_array_equal(plain.outputs["results"], played.outputs["results"])
    assert plain.cycles == played.cycles
    # Runs of any shape, empty ones included: acts reversed in runs of 3, 0 and the rest.
    n = len(acts)
    table = acts[::-1].copy()
    runs = np.array([[n - 3, 3], [0, 0], [0, n - 3]])
    reordered = run_job(tiny_engine, {"weights": weights, "activations": (table, runs)},
                        {"results": tiled.n_tiles})
    reference = run_job(tiny_engine, {"weights": weights, "activations": np.concatenate(
        [table[n - 3:], table[:n - 3]])}, {"results": tiled.n_tiles})
    np.testing.assert_array_equal(reordered.outputs["results"], reference.outputs["results"])


def test_gemm_engine_streams_many_gemms_in_one_run():
    """GemmEngine: built once, several GEMMs (sparse, dense, K in parts) in one simulator
    run; each C equals plain numpy, and the run takes exactly the cycles of the GEMMs one
    after another at full rate (their beats back to back, one latency at the end)."""
    rng = np.random.default_rng(SEED + 5)
    engine = GemmEngine(TINY, progress=False)
    g = Geometry.of(TINY)
    jobs = [((5, 24, 3), False, 1), ((4, 10, 6), True, 1), ((3, 40, 2), False, 3)]
    operands, tiled = [], []
    for (m, k, n), dense, k_parts in jobs:
        a = rng.integers(-128, 128, size=(m, k))
        a = a if dense else prune_2to4(a)
        b = rng.integers(-128, 128, size=(k, n))
        operands.append((a, b))
        tiled.append(tile_gemm(g, b, a=a, dense=dense, k_parts=k_parts))
    batch = engine.run(tiled)
    assert len(batch.c) == len(jobs)
    for (a, b), c in zip(operands, batch.c, strict=True):
        np.testing.assert_array_equal(c, plain_product(a, b))
    assert batch.beats == sum(t.n_beats for t in tiled)
    assert batch.cycles == batch.beats + engine.latency
    alone = engine.run(tiled[1])
    np.testing.assert_array_equal(alone.c[0], batch.c[1])
    np.testing.assert_array_equal(alone.tile_results[0], batch.tile_results[1])
    with pytest.raises(ValueError, match="every GEMM must be tiled for Geometry"):
        engine.run([tile_gemm(Geometry(rows=4, cols=4, groups=2), b, a=a)])


def test_run_job_refuses_bad_runs(tiny_engine):
    weights, acts, tiles = _job(tiny_engine)
    with pytest.raises(ValueError, match=r"activations: runs \(first, count\) must stay in "
                       r"rows 0\.\.\d+, with count >= 0"):
        run_job(tiny_engine, {"weights": weights,
                              "activations": (acts, np.array([[1, len(acts)]]))},
                {"results": tiles})
    with pytest.raises(ValueError, match=r"an index \(n,\) or runs \(n, 2\), not shape"):
        run_job(tiny_engine, {"weights": weights,
                              "activations": (acts, np.zeros((2, 3), np.int64))},
                {"results": tiles})


def _command(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _children(pid):
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# The CLI with run_gemm replaced by a job that never ends (one beat without `last`, a
# result expected, no cycle limit): the engine child runs until it is stopped.
ENDLESS_CLI = """
import sys
import numpy as np
import sparsecore.verif.gemm as gemm
from sparsecore.cli import main
from sparsecore.verif.engine import build_engine, run_job

def endless(config, **kwargs):
    built = build_engine(config, gemm.core_build_name(config))
    beats = {name: np.zeros((1, -(-s["payload_width"] // 32)), np.uint32)
             for name, s in built.manifest["streams"].items() if s["direction"] == "in"}
    run_job(built, beats, {"results": 1}, limit=10**15)

gemm.run_gemm = endless
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_cli_interrupt_stops_the_simulator(tiny_engine, tmp_path, sig, code):
    """`sparsecore gemm` interrupted mid-run: the engine child is killed, the job folder
    removed, exit 130 (SIGINT) or 143 (SIGTERM), one line on stderr, no output file."""
    np.save(tmp_path / "A.npy", np.eye(2, 4, dtype=np.int64))
    np.save(tmp_path / "B.npy", np.ones((4, 2), np.int64))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-c", ENDLESS_CLI, "gemm", "--a", tmp_path / "A.npy", "--b",
         tmp_path / "B.npy", "--weights", "int8", "--acts", "int8", "--config", "tiny",
         "--out", tmp_path / "C.npy"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    engine = []
    try:
        deadline = time.monotonic() + 120
        while not engine and time.monotonic() < deadline and proc.poll() is None:
            engine = [c for c in _children(proc.pid) if _command(c) == "engine"]
            time.sleep(0.05)
        assert engine, f"the engine child never started: {proc.communicate()}"
        assert any(tmp.iterdir())          # the job folder exists while it runs
        time.sleep(1.0)                    # well inside the run, not in its start-up
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err
        assert len(err.strip().splitlines()) == 1, err
        assert not Path(f"/proc/{engine[0]}").exists() or \
            Path(f"/proc/{engine[0]}/stat").read_text().split()[2] == "Z"
        assert list(tmp.iterdir()) == []
    finally:   # a failed check must not leave an endless simulator behind
        if proc.poll() is None:
            for pid in _children(proc.pid):     # still ours: its parent is alive
                if _command(pid) == "engine":
                    os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait()
    assert not (tmp_path / "C.npy").exists()


def test_cli_cycle_limit_exits_1_with_one_line(tiny_engine, capsys, tmp_path, monkeypatch):
    """A run that does not finish within its cycle limit: exit 1, one line, no C written."""
    import sparsecore.verif.engine as engine
    from sparsecore.cli import main

    monkeypatch.setattr(engine, "cycle_limit", lambda *args, **kwargs: 5)
    np.save(tmp_path / "A.npy", np.eye(4, 8, dtype=np.int64))
    np.save(tmp_path / "B.npy", np.ones((8, 4), np.int64))
    code = main(["gemm", "--a", str(tmp_path / "A.npy"), "--b", str(tmp_path / "B.npy"),
                 "--weights", "int8", "--acts", "int8", "--config", "tiny", "--out",
                 str(tmp_path / "C.npy")])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "did not finish the job within the limit of 5 cycles" in err
    assert not (tmp_path / "C.npy").exists()
