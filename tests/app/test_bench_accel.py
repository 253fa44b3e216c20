# amaranth: UnusedElaboratable=no
"""The accelerator's report page: the roofline from the model, the speed-up table and the
targets rendered from measured rows (the measuring itself runs in ``make bench``)."""

import json

from sparsecore.bench.accel import (
    BANDWIDTH,
    SWEEP_BYTES,
    TARGETS,
    roofline_part,
    targets,
    write_page,
)


def _row(preset, shape, mode, cycles, model=None, util=0.95):
    return {"preset": preset, "shape": shape, "m": 384, "k": 384, "n": 128, "mode": mode,
            "cycles": cycles, "model_cycles": cycles if model is None else model, "jobs": 1,
            "macs": 384 * 384 * 128, "peak": 128 if mode == "sparse" else 64,
            "utilization": util, "load_bytes": 1000, "exact": True, "sim_seconds": 1.0,
            "cycles_per_second": 1000}


def test_roofline_rises_to_the_peak():
    rf = roofline_part()
    assert len(rf["curves"]) == 4
    for curve in rf["curves"]:
        rates = [p["macs_per_cycle"] for p in curve["points"]]
        assert [p["bytes_per_cycle"] for p in curve["points"]] == list(SWEEP_BYTES)
        assert rates == sorted(rates), "more bandwidth never makes a job slower"
        assert rates[-1] <= curve["points"][-1]["peak"]
        at16 = rates[SWEEP_BYTES.index(BANDWIDTH)]
        assert at16 > 0.9 * curve["points"][0]["peak"]


def test_page_and_targets(tmp_path):
    results = {"rtl": {"bandwidth": 16, "tokens": 128, "rows": [
        _row("default", "MiniLM 384x384", "sparse", 150_000),
        _row("default", "MiniLM 384x384", "dense", 297_000),
        _row("default", "MiniLM 1536x384", "sparse", 600_000, model=599_999, util=0.85),
        _row("default", "MiniLM 1536x384", "dense", 1_000_000),
    ]}}
    rows = {t.split(" (")[0]: (measured, ok) for t, _, measured, ok in targets(results)}
    assert rows["speed-up default MiniLM 384x384"] == ("1.980", True)
    assert rows["speed-up default MiniLM 1536x384"] == ("1.667", False)
    assert rows["sparse utilization default MiniLM 1536x384"][1] is (0.85 >= TARGETS[
        "utilization"])
    assert rows["cycle model = RTL on every report GEMM run on the RTL"] == ("differs", False)
    paths = write_page(results, tmp_path)
    page = paths[0].read_text()
    assert "| default | MiniLM 384x384 | 150,000 | 297,000 | 1.980 |" in page
    assert "NOT met" in page
    assert json.loads(paths[1].read_text()) == results
    assert targets({}) == [], "no measured part, no target rows"


def test_fmax_compared_by_seed_and_median(tmp_path):
    """The Fmax target compares the medians over the placement seeds (hand-worked here:
    62, 69, 67 against 70, 75, 72 -> 67 / 72); a seed that placed but did not route
    counts as 0 MHz and shows its note on the page."""
    def design(mhz, note=None):
        by_seed = {str(s): ({"fmax_mhz": f} if f else {"fmax_mhz": None, "note": note})
                   for s, f in zip((1, 2, 3), mhz)}
        return {"luts": 100, "ff": 10, "ebr": 1, "cells": {}, "fmax": by_seed["1"],
                "fmax_by_seed": by_seed, "cached": True}
    results = {"synth": {"accel_default": design((62.0, 69.0, 67.0)),
                         "core_default": design((70.0, 75.0, 72.0)),
                         "buffer_bits": {"a": 1024, "b": 2048, "p": 1024}}}
    (row,) = [r for r in targets(results) if r[0].startswith("accelerator Fmax")]
    assert "median of seeds 1, 2, 3" in row[0]
    assert row[2] == "93.1% (67.0 vs 72.0 MHz)" and row[3] is True
    results["synth"]["accel_default"] = design((62.0, None, 60.0), note="placed but not routed")
    (row,) = [r for r in targets(results) if r[0].startswith("accelerator Fmax")]
    assert row[2] == "83.3% (60.0 vs 72.0 MHz)" and row[3] is False
    write_page(results, tmp_path)
    page = (tmp_path / "accel_report.md").read_text()
    assert "| 2 | placed but not routed | 75.0 | - |" in page
    assert "| median | 60.0 | 72.0 | 83.3% |" in page


def test_layers_part_codes_cost():
    """A codes job costs its raw twin the parameter words (after B, before the first
    stripe), the output stage's latency and one edge per further tile row (the stage takes
    a row per edge), and code_beats in place of out_beats for the last tile (K is long
    enough that pacing never binds); its result bytes shrink."""
    from sparsecore.bench.accel import geometry, layers_part
    ly = layers_part()
    assert len(ly["rows"]) == 6
    for r in ly["rows"]:
        _, g = geometry(r["preset"])
        m_tiles = -(-r["m"] // g.rows)
        extra = (m_tiles * g.p_word_beats + g.stage_latency + g.rows - 1 + g.code_beats
                 - g.out_beats)
        for mode in ("sparse", "dense"):
            assert r[f"codes_{mode}_cycles"] - r[f"raw_{mode}_cycles"] == extra, (r, mode)
        assert r["codes_result_bytes"] < r["raw_result_bytes"]


def test_layers_on_the_rtl_page_and_targets(tmp_path):
    """Layer rows run on the RTL: the table says, per row, whether the codes job's cycles
    equal the model's and its codes were exact; the targets count every codes job."""
    def layer(shape, rtl_sparse, exact=True):
        return {"preset": "default", "shape": shape, "m": 384, "k": 384, "n": 128,
                "raw_sparse_cycles": 100, "raw_dense_cycles": 200, "codes_sparse_cycles": 110,
                "codes_dense_cycles": 210, "codes_sparse_rtl_cycles": rtl_sparse,
                "codes_dense_rtl_cycles": 210, "codes_sparse_exact": exact,
                "codes_dense_exact": True, "codes_result_bytes": 10, "raw_result_bytes": 40}
    results = {"layers": {"bandwidth": 16, "tokens": 128, "rows": [
        layer("MiniLM 384x384", 110), layer("MiniLM 1536x384", 111)]}}
    rows = {t.split(" (")[0]: (measured, ok) for t, _, measured, ok in targets(results)}
    assert rows["cycle model = RTL on every layer"] == ("differs", False)
    assert rows["every code from the RTL equal to the numpy model"] == ("exact", True)
    page = write_page(results, tmp_path)[0].read_text()
    assert "| default | MiniLM 384x384 | 110 | 210 | 1.909 | 100 | 10 / 40 | yes |" in page
    assert "| default | MiniLM 1536x384 | 110 | 210 | 1.909 | 100 | 10 / 40 | NO |" in page
    results["layers"]["rows"] = [layer("MiniLM 384x384", 110, exact=False)]
    rows = {t.split(" (")[0]: (measured, ok) for t, _, measured, ok in targets(results)}
    assert rows["cycle model = RTL on every layer"] == ("exact", True)
    assert rows["every code from the RTL equal to the numpy model"] == ("differs", False)
