"""The ``sparsecore`` command: bad inputs (exit 2, one line, nothing written) and Verilog.

The GEMMs that go through the RTL are in verif/tests/test_gemm_runner.py.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sparsecore.cli import main


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_bad_input(capsys, tmp_path, argv, *needles):
    """Exit 2, exactly one stderr line containing every needle, no traceback, nothing written."""
    before = sorted(tmp_path.rglob("*"))
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert out == ""
    assert sorted(tmp_path.rglob("*")) == before, "a bad input wrote something"
    return lines[0]


def save(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, np.asarray(array))
    return path


@pytest.fixture
def files(tmp_path):
    """Good operands for a 3 x 8 x 2 GEMM, dense A 2:4, and its compressed form."""
    a = np.array([[1, 0, -2, 0, 0, 0, 3, 4],
                  [0, 5, 0, 0, -6, 0, 0, 0],
                  [0, 0, 0, 0, 7, 0, 0, -8]])
    b = np.arange(16).reshape(8, 2) - 8
    values = np.array([[1, -2, 3, 4], [5, 0, -6, 0], [0, 0, 7, -8]])
    meta = np.array([[0b1000, 0b1110], [0b1001, 0b1000], [0b1110, 0b1100]])
    return {
        "a": save(tmp_path, "A.npy", a),
        "b": save(tmp_path, "B.npy", b),
        "values": save(tmp_path, "V.npy", values),
        "meta": save(tmp_path, "M.npy", meta),
        "out": tmp_path / "C.npy",
    }


def gemm_argv(files, *extra, a=True):
    argv = ["gemm", "--b", files["b"], "--weights", "int8", "--acts", "int8",
            "--config", "tiny", "--out", files["out"]]
    if a:
        argv += ["--a", files["a"]]
    return argv + list(extra)


# -- files ----------------------------------------------------------------------

def test_missing_npy(capsys, tmp_path, files):
    missing = tmp_path / "nope.npy"
    assert_bad_input(capsys, tmp_path, gemm_argv(files, a=False) + ["--a", missing],
                     str(missing), "no such file")


@pytest.mark.parametrize("content", [b"not an array\n", b"", b"\x93NUMPY\x01\x00garbage"])
def test_unreadable_npy(capsys, tmp_path, files, content):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(content)
    assert_bad_input(capsys, tmp_path, gemm_argv(files, a=False) + ["--a", bad],
                     str(bad), "not a valid .npy file")


def test_directory_as_npy(capsys, tmp_path, files):
    folder = tmp_path / "dir.npy"
    folder.mkdir()
    assert_bad_input(capsys, tmp_path, gemm_argv(files, a=False) + ["--a", folder],
                     str(folder), "is a directory, not a .npy file")


def test_npz_archive(capsys, tmp_path, files):
    archive = tmp_path / "a.npz"
    np.savez(archive, a=np.zeros((2, 4), dtype=np.int8))
    assert_bad_input(capsys, tmp_path, gemm_argv(files, a=False) + ["--a", archive],
                     str(archive), ".npz")


def test_pickled_object_array(capsys, tmp_path, files):
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([[1, None]], dtype=object), allow_pickle=True)
    assert_bad_input(capsys, tmp_path, gemm_argv(files, a=False) + ["--a", obj],
                     str(obj), "pickled data", "never loaded")


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.bool_, np.complex64])
def test_non_integer_dtype(capsys, tmp_path, files, dtype):
    b = save(tmp_path, "Bf.npy", np.ones((8, 2), dtype=dtype))
    argv = gemm_argv(files)
    argv[argv.index("--b") + 1] = b
    assert_bad_input(capsys, tmp_path, argv, str(b), "integer", np.dtype(dtype).name)


@pytest.mark.parametrize("shape", [(8,), (2, 2, 2), (0, 4), (3, 0)])
def test_not_a_matrix(capsys, tmp_path, files, shape):
    a = save(tmp_path, "Ashape.npy", np.zeros(shape, dtype=np.int8))
    assert_bad_input(capsys, tmp_path, gemm_argv(files, a=False) + ["--a", a],
                     str(a), "shape")


# -- values out of the format's range ---------------------------------------------

@pytest.mark.parametrize("weights, bad, index", [
    ("int8", 128, (1, 3)), ("int8", -129, (0, 0)), ("int4", 8, (2, 7)), ("int4", -9, (0, 1)),
    ("ternary", 2, (1, 1)), ("ternary", -2, (2, 4)),
])
def test_a_value_out_of_range(capsys, tmp_path, files, weights, bad, index):
    a = np.zeros((3, 8), dtype=np.int64)
    a[index] = bad
    path = save(tmp_path, "Abad.npy", a)
    argv = gemm_argv(files, a=False) + ["--a", path]
    argv[argv.index("--weights") + 1] = weights
    assert_bad_input(capsys, tmp_path, argv, str(path), str(bad), str(index), weights)


@pytest.mark.parametrize("acts, bad", [("uint8", 256), ("uint8", -1), ("uint4", 16),
                                       ("int4", -9), ("int8", 200)])
def test_b_value_out_of_range(capsys, tmp_path, files, acts, bad):
    b = np.zeros((8, 2), dtype=np.int64)
    b[5, 1] = bad
    path = save(tmp_path, "Bbad.npy", b)
    argv = gemm_argv(files)
    argv[argv.index("--b") + 1] = path
    argv[argv.index("--acts") + 1] = acts
    assert_bad_input(capsys, tmp_path, argv, str(path), str(bad), "(5, 1)", acts)


def test_compressed_value_out_of_range(capsys, tmp_path, files):
    values = np.zeros((3, 4), dtype=np.int16)
    values[2, 1] = 300
    path = save(tmp_path, "Vbad.npy", values)
    argv = gemm_argv(files, "--a-values", path, "--a-meta", files["meta"], a=False)
    assert_bad_input(capsys, tmp_path, argv, str(path), "300", "(2, 1)", "int8")


# -- 2:4 and metadata -------------------------------------------------------------

def test_not_2to4_names_row_and_group(capsys, tmp_path, files):
    a = np.zeros((3, 8), dtype=np.int8)
    a[2, 4:7] = [1, 2, 3]          # row 2, group 1 has three nonzeros
    path = save(tmp_path, "Adense.npy", a)
    line = assert_bad_input(capsys, tmp_path, gemm_argv(files, a=False) + ["--a", path],
                            str(path), "2:4")
    assert "row 2" in line and "group 1" in line, line


@pytest.mark.parametrize("code", [16, -1, 255])
def test_meta_code_outside_0_15(capsys, tmp_path, files, code):
    meta = np.zeros((3, 2), dtype=np.int64)
    meta[1, 1] = code
    path = save(tmp_path, "Mbad.npy", meta)
    argv = gemm_argv(files, "--a-values", files["values"], "--a-meta", path, a=False)
    assert_bad_input(capsys, tmp_path, argv, str(path), str(code), "(1, 1)", "0..15")


# -- shapes -----------------------------------------------------------------------

def test_a_and_b_disagree(capsys, tmp_path, files):
    b = save(tmp_path, "B7.npy", np.zeros((7, 2), dtype=np.int8))
    argv = gemm_argv(files)
    argv[argv.index("--b") + 1] = b
    assert_bad_input(capsys, tmp_path, argv, str(b), "7 rows", "K = 8")


def test_values_and_meta_disagree(capsys, tmp_path, files):
    values = save(tmp_path, "V3.npy", np.zeros((3, 3), dtype=np.int8))
    argv = gemm_argv(files, "--a-values", values, "--a-meta", files["meta"], a=False)
    assert_bad_input(capsys, tmp_path, argv, str(values), "3 columns", "2 groups")


def test_meta_rows_disagree(capsys, tmp_path, files):
    meta = save(tmp_path, "M4.npy", np.zeros((4, 2), dtype=np.int8))
    argv = gemm_argv(files, "--a-values", files["values"], "--a-meta", meta, a=False)
    assert_bad_input(capsys, tmp_path, argv, str(meta), "4 rows", "M = 3")


@pytest.mark.parametrize("k", [4, 12])
def test_b_and_meta_disagree(capsys, tmp_path, files, k):
    b = save(tmp_path, "Bk.npy", np.zeros((k, 2), dtype=np.int8))
    argv = gemm_argv(files, "--a-values", files["values"], "--a-meta", files["meta"],
                     a=False)
    argv[argv.index("--b") + 1] = b
    assert_bad_input(capsys, tmp_path, argv, str(b), f"K = {k}", "has 2")


# -- formats, configurations, options -----------------------------------------------

@pytest.mark.parametrize("option, value, accepted", [
    ("--weights", "uint8", "int8, int4, ternary"),
    ("--weights", "fp8", "int8, int4, ternary"),
    ("--acts", "ternary", "int8, uint8, int4, uint4"),
    ("--config", "huge", "tiny, default"),
])
def test_unknown_format_or_config(capsys, tmp_path, files, option, value, accepted):
    argv = gemm_argv(files)
    argv[argv.index(option) + 1] = value
    assert_bad_input(capsys, tmp_path, argv, option, repr(value), accepted)


def test_acc_bits_too_small(capsys, tmp_path, files):
    assert_bad_input(capsys, tmp_path, gemm_argv(files, "--acc-bits", "8"),
                     "--acc-bits", "acc_bits", "not 8")


def test_acc_bits_not_an_integer(capsys, tmp_path, files):
    assert_bad_input(capsys, tmp_path, gemm_argv(files, "--acc-bits", "wide"),
                     "--acc-bits", "'wide'")


@pytest.mark.parametrize("case", ["both", "values only", "meta only", "none"])
def test_a_options_conflict(capsys, tmp_path, files, case):
    extra = {"both": ["--a", files["a"], "--a-values", files["values"],
                      "--a-meta", files["meta"]],
             "values only": ["--a-values", files["values"]],
             "meta only": ["--a-meta", files["meta"]],
             "none": []}[case]
    assert_bad_input(capsys, tmp_path, gemm_argv(files, *extra, a=False), "--a")


def test_dense_needs_dense_a(capsys, tmp_path, files):
    argv = gemm_argv(files, "--dense", "--a-values", files["values"], "--a-meta",
                     files["meta"], a=False)
    assert_bad_input(capsys, tmp_path, argv, "--dense", "--a")


def test_required_option_missing(capsys, tmp_path, files):
    argv = gemm_argv(files)
    i = argv.index("--weights")
    del argv[i:i + 2]
    assert_bad_input(capsys, tmp_path, argv, "--weights", "required")


def test_out_directory_missing(capsys, tmp_path, files):
    out = tmp_path / "no" / "such" / "C.npy"
    argv = gemm_argv(files)
    argv[argv.index("--out") + 1] = out
    assert_bad_input(capsys, tmp_path, argv, str(out), "does not exist")


def test_waves_suffix(capsys, tmp_path, files):
    waves = tmp_path / "run.png"
    assert_bad_input(capsys, tmp_path, gemm_argv(files, "--waves", waves), str(waves), ".vcd")


# -- sparsecore verilog -------------------------------------------------------------

@pytest.mark.parametrize("item, needles", [
    ("foo=1", ["unknown key 'foo'", "weights, acts, acc_bits, rows, cols, groups"]),
    ("rows", ["KEY=VALUE"]),
    ("rows=two", ["rows must be an integer", "'two'"]),
    ("rows=0", ["rows must be a positive integer", "0"]),
    ("weights=uint8", ["weights must be one of int8, int4, ternary", "'uint8'"]),
    ("acts=ternary", ["acts must be one of", "'ternary'"]),
    ("acc_bits=8", ["acc_bits must be in", "not 8"]),
])
def test_verilog_bad_set(capsys, tmp_path, item, needles):
    out = tmp_path / "v"
    assert_bad_input(capsys, tmp_path, ["verilog", "--set", item, "--out", out],
                     "--set", *needles)


def test_verilog_out_cannot_be_created(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "v"
    assert_bad_input(capsys, tmp_path, ["verilog", "--config", "tiny", "--out", out],
                     str(out), "--out must be a folder", "file is a regular file")


def test_verilog_out_is_a_file(capsys, tmp_path):
    (tmp_path / "v.txt").write_text("")
    assert_bad_input(capsys, tmp_path, ["verilog", "--out", tmp_path / "v.txt"],
                     "v.txt", "--out must be a folder", "it is a regular file")


def test_verilog_unknown_config(capsys, tmp_path):
    assert_bad_input(capsys, tmp_path, ["verilog", "--config", "huge", "--out", tmp_path / "v"],
                     "--config", "'huge'", "tiny, default, ternary_uint4, int4_int4, wrap")


@pytest.mark.parametrize("name", ["tiny", "default", "ternary_uint4", "int4_int4", "wrap"])
def test_verilog_presets(capsys, tmp_path, name):
    from sparsecore.hw.config import preset
    code, out, err = run_cli(capsys, "verilog", "--config", name, "--out", tmp_path)
    assert code == 0, err
    assert len(out.splitlines()) == 1
    manifest = json.loads((tmp_path / f"sparsecore_{name}.json").read_text())
    assert manifest["config"] == preset(name).as_dict()
    assert manifest["top"] == f"sparsecore_{name}"
    verilog = (tmp_path / manifest["verilog"]).read_text()
    assert f"module sparsecore_{name}(" in verilog
    assert set(manifest["tools"]) >= {"amaranth", "verilator", "cocotb", "python"}
    assert manifest["latency"] >= 1


def test_verilog_set_overrides(capsys, tmp_path):
    code, out, err = run_cli(capsys, "verilog", "--config", "tiny", "--set", "rows=3",
                             "--set", "weights=ternary", "--set", "acts=uint4",
                             "--set", "acc_bits=20", "--out", tmp_path)
    assert code == 0, err
    name = "sparsecore_tiny_rows3_weightsternary_actsuint4_acc_bits20"
    manifest = json.loads((tmp_path / f"{name}.json").read_text())
    assert manifest["config"] == {"weights": "ternary", "acts": "uint4", "acc_bits": 20,
                                  "rows": 3, "cols": 2, "groups": 1}
    results = manifest["streams"]["results"]
    assert results["payload_width"] == 3 * 2 * 20
    assert "config=tiny_rows3_weightsternary_actsuint4_acc_bits20" in out


def test_console_script_exit_codes(tmp_path):
    """The installed ``sparsecore`` script: exit 2 and one line, without a traceback."""
    script = Path(sys.executable).with_name("sparsecore")
    exe = [str(script)] if script.exists() else [shutil.which("sparsecore")]
    assert exe[0], "the sparsecore console script is not installed"
    bad = subprocess.run(exe + ["verilog", "--set", "groups=-1", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "groups" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert list(tmp_path.iterdir()) == []
    good = subprocess.run(exe + ["verilog", "--config", "tiny", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert (tmp_path / "sparsecore_tiny.v").exists()


# -- the accelerator ----------------------------------------------------------------


def test_bandwidth_needs_accel(capsys, tmp_path, files):
    assert_bad_input(capsys, tmp_path, gemm_argv(files, "--bandwidth", "8"),
                     "--bandwidth needs --accel")


@pytest.mark.parametrize("value", ["0", "-3"])
def test_bandwidth_must_be_positive(capsys, tmp_path, files, value):
    assert_bad_input(capsys, tmp_path, gemm_argv(files, "--accel", "--bandwidth", value),
                     "--bandwidth", "load_bytes must be a positive integer", value)


def test_accel_waves_are_vcd(capsys, tmp_path, files):
    """An FST is refused (for want of lz4 headers, or, where they exist, by the
    accelerator, whose runner records a VCD)."""
    assert_bad_input(capsys, tmp_path, gemm_argv(files, "--accel", "--waves",
                                                 tmp_path / "w.fst"), "--waves", "w.fst", ".vcd")


@pytest.mark.parametrize("extra,needles", [
    (["--mult", "M.npy", "--bias", "M.npy", "--shift", "M.npy"], ["need --accel"]),
    (["--accel", "--relu"], ["--relu and --out-format need --bias, --mult and --shift"]),
    (["--accel", "--mult", "M.npy", "--bias", "M.npy"], ["--shift missing"]),
    (["--accel", "--out-format", "int9", "--mult", "M.npy", "--bias", "B.npy", "--shift",
      "S.npy"], ["--out-format", "int9"]),
])
def test_accel_output_stage_options(capsys, tmp_path, files, extra, needles):
    assert_bad_input(capsys, tmp_path, gemm_argv(files, *extra), *needles)


def test_accel_output_stage_params_checked(capsys, tmp_path, files):
    """Each parameter file: M values (A has 2 rows) in its field's range, named when not."""
    m = np.load(files["a"]).shape[0]
    good = {"bias": np.zeros(m, np.int64), "mult": np.ones(m, np.int64),
            "shift": np.zeros(m, np.int64)}
    for name, bad, needle in (("shift", np.full(m, 32), "outside u5 range"),
                              ("mult", np.ones(m + 1, np.int64), f"expected {m} mult values"),
                              ("bias", np.array([1 << 40] * m), "outside acc")):
        paths = {k: save(tmp_path, f"{k}.npy", bad if k == name else v)
                 for k, v in good.items()}
        line = assert_bad_input(capsys, tmp_path, gemm_argv(
            files, "--accel", *[x for k, p in paths.items() for x in (f"--{k}", p)]), needle)
        assert f"{name}.npy" in line


def test_accel_k_too_large(capsys, tmp_path, files):
    """The tiny accelerator's stripe buffers hold 384 chunks: K up to 1536 sparse."""
    files["a"] = save(tmp_path, "A.npy", np.zeros((2, 1540), np.int64))
    files["b"] = save(tmp_path, "B.npy", np.zeros((1540, 2), np.int64))
    assert_bad_input(capsys, tmp_path, gemm_argv(files, "--accel"), "B.npy", "K = 1540",
                     "at most 1536 in sparse mode")


def test_verilog_accel(capsys, tmp_path):
    code, out, err = run_cli(capsys, "verilog", "--config", "tiny", "--accel", "--set",
                             "b_depth=64", "--set", "load_bytes=4", "--out", tmp_path)
    assert code == 0, err
    name = "sparsecore_accel_tiny_b_depth64_load_bytes4"
    manifest = json.loads((tmp_path / f"{name}.json").read_text())
    assert manifest["design"] == "SparseAccelerator"
    assert manifest["config"]["b_depth"] == 64 and manifest["config"]["load_bytes"] == 4
    assert manifest["buffers"]["b"]["bits"] == 64 * 4 * 2 * 8   # 4G x cols int8 per word
    assert set(manifest["streams"]) == {"cmd", "load", "results", "status"}
    assert manifest["streams"]["load"]["payload_width"] == 32


def test_verilog_accel_bad_set(capsys, tmp_path):
    assert_bad_input(capsys, tmp_path, ["verilog", "--accel", "--set", "a_depth=0", "--out",
                                        tmp_path / "v"], "--set", "a_depth must be a positive")
    assert_bad_input(capsys, tmp_path, ["verilog", "--set", "a_depth=4", "--out",
                                        tmp_path / "v"], "unknown key 'a_depth'")
