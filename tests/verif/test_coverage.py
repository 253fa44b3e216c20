"""verif.coverage: the coverage.dat reader, merging, named-signal filter, waivers, figures."""

import json
from pathlib import Path

import pytest

from sparsecore.verif.coverage import Point, analyse, collect, is_temporary, merge, read_dat
from sparsecore.verif.coverage_waivers import Waiver, match_waiver


def _point(page, line, comment, count, span=None, column=3, hier="top"):
    fields = {"f": "/x/top.v", "l": str(line), "n": str(column),
              "t": page.split("/")[0].removeprefix("v_"), "page": page, "o": comment}
    if span:
        fields["S"] = span
    fields["h"] = hier
    text = "".join(f"\x01{k}\x02{v}" for k, v in fields.items())
    return f"C '{text}' {count}\n"


# Lines as Verilator 5.48 writes them (field order f l n t page o [S] h).
SAMPLE_A = ("# SystemC::Coverage-3\n"
            + _point("v_line/top", 10, "block", 5, span="10-11")
            + _point("v_line/top", 12, "if", 0, span="12")
            + _point("v_toggle/top", 4, "acc[0]:0->1", 7)
            + _point("v_toggle/top", 4, "acc[0]:1->0", 0)
            + _point("v_toggle/top", 5, "__02417[3]:0->1", 0)
            + _point("v_toggle/top", 6, "valid:0->1", 2))
SAMPLE_B = ("# SystemC::Coverage-3\n"
            + _point("v_line/top", 12, "if", 3, span="12")
            + _point("v_toggle/top", 4, "acc[0]:1->0", 0))


def test_read_dat_fields_and_counts(tmp_path):
    path = tmp_path / "a.dat"
    path.write_text(SAMPLE_A)
    points = read_dat(path)
    assert len(points) == 6
    block = Point("line", "top", "top", 10, 3, "block", "10-11")
    assert points[block] == 5
    toggle = Point("toggle", "top", "top", 4, 3, "acc[0]:0->1")
    assert points[toggle] == 7 and toggle.signal == "acc"
    assert Point("toggle", "top", "top", 6, 3, "valid:0->1").signal == "valid"
    assert sum(points.values()) == 14


def test_merge_sums_runs(tmp_path):
    (tmp_path / "a.dat").write_text(SAMPLE_A)
    (tmp_path / "b.dat").write_text(SAMPLE_B)
    merged = merge([read_dat(tmp_path / "a.dat"), read_dat(tmp_path / "b.dat")])
    assert merged[Point("line", "top", "top", 12, 3, "if", "12")] == 3   # 0 + 3: now hit
    assert merged[Point("toggle", "top", "top", 4, 3, "acc[0]:1->0")] == 0
    assert len(merged) == 6


def test_malformed_files_are_refused(tmp_path):
    bad = tmp_path / "bad.dat"
    bad.write_text("C 'x' 1\n")
    with pytest.raises(ValueError, match="not a Verilator coverage file"):
        read_dat(bad)
    bad.write_text("# SystemC::Coverage-3\nC 'x' many\n")
    with pytest.raises(ValueError, match="bad.dat:2: not a coverage point"):
        read_dat(bad)


def test_temporaries_are_yosys_dollar_nets():
    assert is_temporary("__02417") and is_temporary("__024auto__024verilog")
    assert not is_temporary("acc") and not is_temporary("acc__024next")


def test_waivers_match_design_kind_and_full_pattern():
    waiver = Waiver("OutputStage", "toggle", r"acc\d*", "top bits")
    assert match_waiver([waiver], "OutputStage", "toggle", "acc12") is waiver
    assert match_waiver([waiver], "OutputStage", "toggle", "acc12x") is None
    assert match_waiver([waiver], "OutputStage", "line", "acc12") is None
    assert match_waiver([waiver], "SparseLayer", "toggle", "acc12") is None
    with pytest.raises(ValueError, match="needs a reason"):
        Waiver("OutputStage", "toggle", "x", " ")


def test_collect_and_analyse_a_build_folder(tmp_path):
    folder = tmp_path / "top_cov"
    (folder / "coverage").mkdir(parents=True)
    (folder / "top.json").write_text(json.dumps({"design": "OutputStage"}))
    (folder / "top.v").write_text("\n".join(f"line{n}" for n in range(1, 20)))
    (folder / ".build-stamp").write_text("x")
    (folder / "coverage" / "a-1.dat").write_text(SAMPLE_A)
    (builds,) = collect(tmp_path)
    assert builds.name == "top" and builds.design == "OutputStage" and builds.runs == 1
    waiver = Waiver("OutputStage", "toggle", "acc", "only ever 0 in this sample")
    per_build, per_design = analyse([builds], [waiver])
    fig = per_build[0]["figures"]
    assert (fig["line"]["hit"], fig["line"]["total"]) == (1, 2)
    # named toggles: acc 0->1 hit, acc 1->0 missed (waived), valid hit; the $17 net excluded
    assert (fig["toggle"]["hit"], fig["toggle"]["total"], fig["toggle"]["waived"]) == (2, 3, 1)
    assert (fig["toggle_all"]["hit"], fig["toggle_all"]["total"]) == (2, 4)
    (line_miss,) = per_build[0]["missed"]["line"]
    assert line_miss[1] == "line12" and line_miss[2] is None
    assert per_design["OutputStage"]["line"]["percent"] == 50.0


def test_memory_cells_are_one_signal_and_payload_bits_name_their_field():
    from sparsecore.verif.coverage import BuildCoverage, stream_fields

    assert Point("toggle", "t", "t", 1, 1, "memory[3][5]:0->1").signal == "memory[*]"
    assert Point("toggle", "t", "t", 1, 1, "acc[5]:1->0").signal == "acc"
    manifest = {"streams": {"weights": {
        "ports": {"payload": "weights__payload"},
        "fields": {"values": {"offset": 0, "width": 16}, "last": {"offset": 25, "width": 1},
                   "accumulate": {"offset": 26, "width": 1}}}}}
    build = BuildCoverage("b", "SparseLayer", Path("b.v"), 1, {},
                          fields=stream_fields(manifest))
    # Verilator's spelling of weights__payload and of a Yosys copy of it, weights__payload$14
    assert build.field_of("weights___05Fpayload", 26) == "accumulate"
    assert build.field_of("weights___05Fpayload__02414", 3) == "values"
    assert build.field_of("weights___05Fpayload", 24) is None     # no field there
    assert build.field_of("acc", 0) is None
