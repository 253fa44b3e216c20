"""``sparsecore bench accel``: the accelerator's report, docs/accel_report.{md,json,png}.

Parts (``--only`` runs some and keeps the others from the existing JSON):

- ``rtl``: every report GEMM (MiniLM weight shapes 384x384, 1536x384, 384x1536
  against 128 tokens; the digits MLP's two layers, 128x64 and 10x128, against
  128 images) in sparse and dense mode on the Verilated accelerator of the
  ``default`` and ``ternary_uint4`` presets at 16 bytes per cycle, on the engine
  (:func:`verif.accel.run.run_accel_gemm`, the C++ driver); C checked
  against the numpy model, cycles (command to last result) against
  :mod:`sim.accel_perf`.
- ``layers``: the MiniLM GEMMs as layers, the fused output stage giving int8
  codes (``codes`` jobs), sparse and dense: each codes job run on the engine
  (its codes checked against :func:`sim.accel.expected_codes`, its cycles
  beside :mod:`sim.accel_perf`'s), cycles and result bytes beside the
  raw-accumulator jobs' (from the model; the ``rtl`` part runs those).
- ``roofline``: effective MACs per cycle vs the load stream's bytes per cycle
  (1 .. 64), sparse and dense, both presets, from :mod:`sim.accel_perf` (the
  model the ``rtl`` part checks cycle for cycle).
- ``synth``: area (LUTs, flip-flops, block RAMs) and Fmax of the default
  accelerator and of the bare default core on the same ECP5 85k, with the flow
  of :mod:`sparsecore.bench.synth` (cached by Verilog hash).

``--only report`` measures nothing and rewrites the page from the JSON.
"""

import json
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from sparsecore.bench import synth as syn
from sparsecore.bench.run import PROJECT, log, stamp
from sparsecore.hw.config import PRESETS, AccelConfig
from sparsecore.safe_io import (
    ArgumentParser,
    atomic_output,
    check_output_files,
    make_dirs,
    write_text,
)
from sparsecore.sim.accel_perf import AccelGeometry, plan_job, predict_job
from sparsecore.verif.stamp import markdown as stamp_markdown

PARTS = ("rtl", "layers", "roofline", "synth")
PRESET_NAMES = ("default", "ternary_uint4")
TOKENS = 128
# (label, M = output features, K = input features); B is K x TOKENS
SHAPES = [("MiniLM 384x384", 384, 384), ("MiniLM 1536x384 (FFN up)", 1536, 384),
          ("MiniLM 384x1536 (FFN down)", 384, 1536),
          ("digits MLP layer 1 (128x64)", 128, 64), ("digits MLP layer 2 (10x128)", 10, 128)]
BANDWIDTH = 16
SWEEP_BYTES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
ROOFLINE_SHAPE = ("MiniLM 384x384", 384, 384)
ECP5_DEVICE = "ecp5_85k"
ECP5_EBR = 208               # DP16KD blocks of an ECP5 85k, 18 kbit each
SEED = 20261130
# nextpnr placement seeds of the Fmax comparison: one seed's placement can move Fmax
# by 10 %, so both designs are placed with each and compared seed by seed and by median
PNR_SEEDS = (1, 2, 3)
TARGETS = {"speedup": 1.9, "utilization": 0.90, "fmax_ratio": 0.90}


def geometry(name, load_bytes=BANDWIDTH):
    from sparsecore.hw.accel import model_record
    config = AccelConfig.of(PRESETS[name], load_bytes=load_bytes)
    return config, AccelGeometry.of(model_record(config))


def operands(config, m, k, dense, rng):
    from sparsecore.sim import prune_2to4
    wf, af = config.weight_format, config.act_format
    a = rng.integers(wf.min, wf.max + 1, (m, k))
    if not dense:
        a = prune_2to4(a)
    return a, rng.integers(af.min, af.max + 1, (k, TOKENS))


def rtl_part():
    from sparsecore.sim.accel import expected_c
    from sparsecore.verif.accel.run import run_accel_gemm
    rows = []
    for name in PRESET_NAMES:
        config, _ = geometry(name)
        rng = np.random.default_rng(SEED)
        for label, m, k in SHAPES:
            for dense in (False, True):
                a, b = operands(config, m, k, dense, rng)
                t = time.monotonic()
                result = run_accel_gemm(config, b, a=a, dense=dense, progress=False)
                exact = bool(np.array_equal(result.c, expected_c(
                    AccelGeometry.of(result.build.manifest), b, a=a, dense=dense)))
                row = {"source": "rtl", "preset": name, "shape": label, "m": m, "k": k,
                       "n": TOKENS,
                       "mode": result.mode, "cycles": result.cycles,
                       "model_cycles": result.model_cycles, "jobs": len(result.jobs),
                       "macs": result.macs, "peak": result.peak,
                       "utilization": result.utilization, "load_bytes": result.load_bytes,
                       "exact": exact, "sim_seconds": round(time.monotonic() - t, 1),
                       "cycles_per_second": round(result.cycles_per_second),
                       "runner": result.runner}
                log(f"rtl {name} {label} {result.mode}: {result.cycles} cycles "
                    f"(model {result.model_cycles}), exact {exact}, {row['sim_seconds']} s")
                log("row " + json.dumps(row))
                rows.append(row)
    return {"bandwidth": BANDWIDTH, "tokens": TOKENS, "rows": rows}


def model_rows(presets=PRESET_NAMES):
    """The report GEMMs' rows from sim.accel_perf alone (``source`` "model")."""
    rows = []
    for name in presets:
        _, geo = geometry(name)
        for label, m, k in SHAPES:
            for dense in (False, True):
                perf = predict_job(geo, plan_job(geo, m, TOKENS, k, dense=dense))
                rows.append({"source": "model", "preset": name, "shape": label, "m": m,
                             "k": k, "n": TOKENS, "mode": "dense" if dense else "sparse",
                             "cycles": perf.cycles, "model_cycles": perf.cycles, "jobs": 1,
                             "macs": m * k * TOKENS, "peak": perf.peak,
                             "utilization": perf.utilization(m * k * TOKENS),
                             "load_bytes": perf.load_bytes, "exact": None})
    return rows


def stage_params(geo, c, rng):
    """Random (bias, mult, shift) per row of ``c`` in the stage's field ranges, each row's
    shift scaled to its values so that the codes spread over the ``out`` format."""
    from sparsecore.sim.formats import get_format
    m = c.shape[0]
    bias = rng.integers(-64, 64, m)
    mult = rng.integers(1 << (geo.mult_bits - 1), 1 << geo.mult_bits, m)
    top = np.abs(c).max(axis=1) + 128
    shift = np.ceil(np.log2(top)).astype(np.int64) + geo.mult_bits - get_format(geo.out).bits
    return bias, mult, np.clip(shift, 0, (1 << geo.shift_bits) - 1)


def _codes_on_rtl(config, geo, m, k, dense, rng):
    """One codes job on the engine: (cycles, codes equal to the model's)."""
    from sparsecore.sim.accel import expected_c, expected_codes
    from sparsecore.verif.accel.run import run_accel_gemm
    a, b = operands(config, m, k, dense, rng)
    params = stage_params(geo, expected_c(geo, b, a=a, dense=dense), rng)
    result = run_accel_gemm(config, b, a=a, dense=dense, params=params, progress=False)
    exact = bool(np.array_equal(result.c, expected_codes(geo, b, params=params, a=a,
                                                         dense=dense)))
    return result.cycles, exact


def layers_part(rtl=False):
    """The layers table; with ``rtl`` each codes job also runs on the engine."""
    rows = []
    for name in PRESET_NAMES:
        config, geo = geometry(name)
        rng = np.random.default_rng(SEED)
        for label, m, k in SHAPES:
            if not label.startswith("MiniLM"):
                continue
            row = {"preset": name, "shape": label, "m": m, "k": k, "n": TOKENS}
            for kind, codes in (("raw", False), ("codes", True)):
                for dense in (False, True):
                    perf = predict_job(geo, plan_job(geo, m, TOKENS, k, dense=dense,
                                                     codes=codes))
                    mode = "dense" if dense else "sparse"
                    row[f"{kind}_{mode}_cycles"] = perf.cycles
                    if rtl and codes:
                        cycles, exact = _codes_on_rtl(config, geo, m, k, dense, rng)
                        row[f"codes_{mode}_rtl_cycles"], row[f"codes_{mode}_exact"] = \
                            cycles, exact
                        log(f"layers {name} {label} codes {mode}: {cycles} cycles (model "
                            f"{perf.cycles}), exact {exact}")
                job = plan_job(geo, m, TOKENS, k, dense=False, codes=codes)
                row[f"{kind}_result_bytes"] = (job.m_tiles * job.n_tiles
                                               * geo.tile_beats(codes) * geo.out_bytes)
            rows.append(row)
    return {"bandwidth": BANDWIDTH, "tokens": TOKENS, "rows": rows}


def roofline_part():
    label, m, k = ROOFLINE_SHAPE
    curves = []
    for name in PRESET_NAMES:
        for dense in (False, True):
            points = []
            for bw in SWEEP_BYTES:
                _, geo = geometry(name, bw)
                perf = predict_job(geo, plan_job(geo, m, TOKENS, k, dense=dense))
                points.append({"bytes_per_cycle": bw, "cycles": perf.cycles,
                               "macs_per_cycle": m * k * TOKENS / perf.cycles,
                               "peak": perf.peak})
            curves.append({"preset": name, "mode": "dense" if dense else "sparse",
                           "points": points})
    return {"shape": label, "m": m, "k": k, "n": TOKENS, "curves": curves}


_MEMORY_INIT = re.compile(r"^  initial begin\n(?:    \w+\[\d+\] = \d+'h[0-9a-f]+;\n)+  end\n",
                          re.M)


def _emit_without_memory_init(emit):
    """``synth.emit_harness`` minus the buffers' all-zero ``initial`` blocks.

    Block RAMs power up at zero, so the blocks say nothing the device does not
    do; Yosys's Verilog frontend spends most of its time (and, for the default
    depths, all of its memory) on their 7,000 assignments.
    """
    def wrapped(design, folder):
        text, harness, manifest = emit(design, folder)
        stripped = _MEMORY_INIT.sub(lambda m: "" if not re.search(r"'h0*[1-9a-f]", m.group(0))
                                    else m.group(0), text)
        (Path(folder) / f"{syn.TOP}.v").write_text(stripped)
        return stripped, harness, manifest
    return wrapped


def synth_part(cache):
    from sparsecore.hw.accel import SparseAccelerator
    from sparsecore.hw.core import SparseTensorCore
    syn.emit_harness = _emit_without_memory_init(syn.emit_harness)
    config = AccelConfig.of(PRESETS["default"])
    designs = [
        syn.Design("accel_default", lambda: SparseAccelerator(config), "accel",
                   pnr=(ECP5_DEVICE,)),
        syn.Design("core_default", lambda: SparseTensorCore(PRESETS["default"]), "core",
                   pnr=(ECP5_DEVICE,)),
    ]
    out = {}
    synthesized = {}
    for design in designs:
        log(f"synth {design.name} (ECP5) ...")
        synthesized[design.name] = s = syn.synthesize(design, "ecp5", cache)
        log(f"  {s['luts']} LUTs, {s['ff']} FFs")
    # every (design, seed) place and route, two at a time (each one nextpnr process)
    runs = [(design, seed) for seed in PNR_SEEDS for design in designs]
    log(f"place and route on {ECP5_DEVICE}: {len(runs)} runs (seeds "
        f"{', '.join(map(str, PNR_SEEDS))}), two at a time ...")
    with ThreadPoolExecutor(max_workers=2) as pool:
        fmaxes = dict(zip(runs, pool.map(
            lambda run: syn.place_and_route(run[0], synthesized[run[0].name], ECP5_DEVICE,
                                            cache, seed=run[1]), runs)))
    for design in designs:
        s = synthesized[design.name]
        s.pop("netlist", None)
        ebr = s["cells"].get("DP16KD", 0)
        by_seed = {str(seed): fmaxes[design, seed] for seed in PNR_SEEDS}
        out[design.name] = {"luts": s["luts"], "ff": s["ff"], "ebr": ebr,
                            "cells": s["cells"], "fmax": by_seed[str(PNR_SEEDS[0])],
                            "fmax_by_seed": by_seed, "cached": s["cached"]}
        log(f"  {design.name}: Fmax {', '.join(str(f.get('fmax_mhz')) for f in by_seed.values())}"
            f" MHz (seeds {', '.join(by_seed)}), {ebr} EBR")
    out["config"] = config.as_dict()
    out["buffer_bits"] = {"a": config.a_buffer_bits, "b": config.b_buffer_bits,
                          "p": config.p_buffer_bits}
    return out


# -- the page ---------------------------------------------------------------------------

def _median_fmax(design):
    """Median Fmax (MHz) over the placement seeds; a seed that did not route counts as 0.
    None when no seed gave an Fmax."""
    runs = design.get("fmax_by_seed") or {"1": design["fmax"]}
    values = [r.get("fmax_mhz") or 0.0 for r in runs.values()]
    return round(statistics.median(values), 2) if any(values) else None


def _speedups(rtl):
    table = {}
    for r in rtl["rows"]:
        table.setdefault((r["preset"], r["shape"]), {})[r["mode"]] = r
    return table


def targets(results):
    rows = []
    if "rtl" in results:
        table = _speedups(results["rtl"])
        for (preset, shape), modes in table.items():
            if not shape.startswith("MiniLM") or len(modes) < 2:
                continue
            s = modes["dense"]["cycles"] / modes["sparse"]["cycles"]
            where = "" if modes["sparse"].get("source", "rtl") == "rtl" else " (model only)"
            rows.append((f"speed-up {preset} {shape}", f">= {TARGETS['speedup']}",
                         f"{s:.3f}{where}", s >= TARGETS["speedup"]))
            u = modes["sparse"]["utilization"]
            rows.append((f"sparse utilization {preset} {shape}",
                         f">= {TARGETS['utilization']:.0%}", f"{u:.1%}{where}",
                         u >= TARGETS["utilization"]))
        measured = [r for r in results["rtl"]["rows"] if r.get("source", "rtl") == "rtl"]
        same = all(r["cycles"] == r["model_cycles"] for r in measured)
        rows.append((f"cycle model = RTL on every report GEMM run on the RTL ({len(measured)})",
                     "exact", "exact" if same else "differs", same))
        exact = all(r["exact"] for r in measured)
        rows.append(("every C from the RTL equal to the numpy model", "exact",
                     "exact" if exact else "differs", exact))
    on_rtl = [r for r in results.get("layers", {}).get("rows", [])
              if "codes_sparse_rtl_cycles" in r]
    if on_rtl:
        same = all(r[f"codes_{m}_rtl_cycles"] == r[f"codes_{m}_cycles"]
                   for r in on_rtl for m in ("sparse", "dense"))
        rows.append((f"cycle model = RTL on every layer (codes) job ({2 * len(on_rtl)})",
                     "exact", "exact" if same else "differs", same))
        exact = all(r[f"codes_{m}_exact"] for r in on_rtl for m in ("sparse", "dense"))
        rows.append(("every code from the RTL equal to the numpy model", "exact",
                     "exact" if exact else "differs", exact))
    if "synth" in results:
        acc, core = results["synth"]["accel_default"], results["synth"]["core_default"]
        fa, fc = _median_fmax(acc), _median_fmax(core)
        if fa and fc:
            seeds = ", ".join(acc.get("fmax_by_seed", {"1": None}))
            rows.append((f"accelerator Fmax vs bare core, same ECP5 85k (median of seeds {seeds})",
                         f">= {TARGETS['fmax_ratio']:.0%}", f"{fa / fc:.1%} ({fa} vs {fc} MHz)",
                         fa / fc >= TARGETS["fmax_ratio"]))
        else:
            notes = {d["fmax"].get("note") for d in (acc, core) if d["fmax"].get("note")}
            rows.append(("accelerator Fmax vs bare core, same ECP5 85k",
                         f">= {TARGETS['fmax_ratio']:.0%}",
                         "; ".join(sorted(notes)) or "no Fmax", None))
        rows.append(("block RAMs fit an ECP5 85k with room", f"<= {ECP5_EBR} EBR",
                     f"{acc['ebr']} EBR ({acc['ebr'] / ECP5_EBR:.0%})",
                     acc["ebr"] <= 0.75 * ECP5_EBR))
    return rows


def write_page(results, out_dir):
    out_dir = Path(out_dir)
    make_dirs(out_dir)
    write_text(out_dir / "accel_report.json", json.dumps(results, indent=1) + "\n")
    lines = ["# Accelerator report", "",
             "Generated by `make bench` (`sparsecore bench accel`); the design and "
             "its reuse scheme are in [accel.md](accel.md).", ""]
    if results.get("stamp"):
        lines += ["What decided the numbers: [Stamp](#stamp).", ""]
    rows = targets(results)
    if rows:
        lines += ["## Targets", "", "| target | wanted | measured | met |", "|---|---|---|---|"]
        verdict = {True: "met", False: "NOT met", None: "not measured"}
        lines += [f"| {t} | {w} | {m} | {verdict[ok]} |" for t, w, m, ok in rows]
        lines.append("")
    if "rtl" in results:
        rtl = results["rtl"]
        lines += [
            "## Sparse vs dense on the RTL, every cycle counted", "",
            f"Each GEMM runs on the Verilated accelerator (`sparsecore gemm --accel` path) with "
            f"a load stream of {rtl['bandwidth']} bytes per cycle, always valid, and results "
            f"always taken; B is K x {rtl['tokens']}. Cycles run from the edge that takes the "
            "command to the edge that takes the last result beat: loading B and the first "
            "stripe, the descriptor check, the pipeline fill and drain, all included. "
            "Utilization = M*N*K / (cycles x peak MACs per cycle of the mode).", ""]
        if any(r.get("source", "rtl") != "rtl" for r in rtl["rows"]):
            lines += [
                "Rows marked *model only* were not run on the RTL in this report (the model "
                "equals the RTL on every job the tests and the other rows run).", ""]
        lines += [
            "| preset | GEMM (M x K) | sparse cycles | dense cycles | speed-up | sparse util. "
            "| dense util. | load bytes sparse / dense | model = RTL |",
            "|---|---|---|---|---|---|---|---|---|"]
        for (preset, shape), modes in _speedups(rtl).items():
            s, d = modes["sparse"], modes["dense"]
            same = s["cycles"] == s["model_cycles"] and d["cycles"] == d["model_cycles"]
            same = ("yes" if same else "NO") if s.get("source", "rtl") == "rtl" else "model only"
            lines.append(
                f"| {preset} | {shape} | {s['cycles']:,} | {d['cycles']:,} | "
                f"{d['cycles'] / s['cycles']:.3f} | {s['utilization']:.1%} | "
                f"{d['utilization']:.1%} | {s['load_bytes']:,} / {d['load_bytes']:,} | "
                f"{same} |")
        speed = [r["cycles_per_second"] for r in rtl["rows"] if r.get("cycles_per_second")]
        if speed:
            # rows measured before the engine ran the accelerator carry no runner
            runners = {r.get("runner", "cocotb") for r in rtl["rows"]}
            how = {"engine": "on the engine (the C++ driver, no per-cycle Python)",
                   "cocotb": "under cocotb (one await per cycle)"}
            lines += ["", f"Simulation: {min(speed):,} to {max(speed):,} cycles/s "
                      f"{' and '.join(how[r] for r in sorted(runners))}.", ""]
        if rtl.get("note"):
            lines += ["", rtl["note"], ""]
    if "layers" in results:
        ly = results["layers"]
        on_rtl = all("codes_sparse_rtl_cycles" in r for r in ly["rows"])
        where = ("each run on the Verilated accelerator (the engine), every code equal to "
                 "the numpy model's and every cycle count to `sim.accel_perf`'s (model = "
                 "RTL); raw cycles from the model" if on_rtl else
                 "from `sim.accel_perf` (equal to the RTL on every codes job of the tests)")
        lines += ["## Layers: the fused output stage's codes out", "",
                  f"The same MiniLM GEMMs as `codes` jobs: the output stage behind the core "
                  f"turns each result tile into codes of the core's activation format (its "
                  f"bias, multiplier and shift per output channel loaded after B), at "
                  f"{ly['bandwidth']} bytes per cycle, {where}. The output stage adds its "
                  "latency and the parameter words to each job, and cuts the result bytes.",
                  "",
                  "| preset | GEMM (M x K) | codes sparse cycles | codes dense cycles | "
                  "speed-up | raw sparse cycles | result bytes codes / raw |"
                  + (" model = RTL, codes exact |" if on_rtl else ""),
                  "|---|---|---|---|---|---|---|" + ("---|" if on_rtl else "")]
        for r in ly["rows"]:
            line = (f"| {r['preset']} | {r['shape']} | {r['codes_sparse_cycles']:,} | "
                    f"{r['codes_dense_cycles']:,} | "
                    f"{r['codes_dense_cycles'] / r['codes_sparse_cycles']:.3f} | "
                    f"{r['raw_sparse_cycles']:,} | {r['codes_result_bytes']:,} / "
                    f"{r['raw_result_bytes']:,} |")
            if on_rtl:
                ok = all(r[f"codes_{m}_rtl_cycles"] == r[f"codes_{m}_cycles"]
                         and r[f"codes_{m}_exact"] for m in ("sparse", "dense"))
                line += f" {'yes' if ok else 'NO'} |"
            lines.append(line)
        lines.append("")
    if "roofline" in results:
        rf = results["roofline"]
        lines += ["## Effective MACs per cycle vs external bandwidth", "",
                  f"{rf['shape']} against {rf['n']} tokens, from `sim.accel_perf` (which the "
                  "RTL part matches cycle for cycle). The dotted lines are each mode's peak, "
                  "the grey line the default 16 bytes per cycle.",
                  "", "![roofline](accel_roofline.png)", "",
                  "| bytes/cycle | " + " | ".join(f"{c['preset']} {c['mode']}"
                                                  for c in rf["curves"]) + " |",
                  "|---" * (1 + len(rf["curves"])) + "|"]
        for i, bw in enumerate(SWEEP_BYTES):
            lines.append(f"| {bw} | " + " | ".join(
                f"{c['points'][i]['macs_per_cycle']:.1f}" for c in rf["curves"]) + " |")
        lines.append("")
        with atomic_output(out_dir / "accel_roofline.png") as tmp:
            _plot(rf, tmp)
    if "synth" in results:
        sy = results["synth"]
        lines += ["## Area and Fmax on ECP5 85k", "",
                  "Yosys `synth_ecp5 -nodsp` with classic ABC LUT4 mapping and nextpnr-ecp5 "
                  "(router2), the flow of `sparsecore.bench.synth`, each design inside the "
                  "timing harness; the accelerator's memories map to DP16KD block RAMs "
                  f"(18 kbit each, {ECP5_EBR} on an 85k).", "",
                  "| design | LUTs | FFs | EBR | Fmax (MHz) | critical path |",
                  "|---|---|---|---|---|---|"]
        for name in ("accel_default", "core_default"):
            d = sy[name]
            cp = d["fmax"].get("critical_path") or {}
            path = (f"{cp.get('from')} -> {cp.get('to')}.{cp.get('to_port')} "
                    f"({cp.get('logic_ns')} ns logic + {cp.get('routing_ns')} ns routing)"
                    if cp else "")
            fmax = d["fmax"].get("fmax_mhz") or d["fmax"].get("note", "-")
            lines.append(f"| {name} | {d['luts']:,} | {d['ff']:,} | {d['ebr']} | "
                         f"{fmax} | {path} |")
        acc, core = sy["accel_default"], sy["core_default"]
        if "fmax_by_seed" in acc:
            lines += ["", "Fmax (MHz) by nextpnr placement seed (the table above is the "
                      "first seed's run):", "", "| seed | accelerator | bare core | ratio |",
                      "|---|---|---|---|"]
            for seed in acc["fmax_by_seed"]:
                fa = acc["fmax_by_seed"][seed].get("fmax_mhz")
                fc = core["fmax_by_seed"].get(seed, {}).get("fmax_mhz")
                ratio = f"{fa / fc:.1%}" if fa and fc else "-"
                lines.append(f"| {seed} | {fa or acc['fmax_by_seed'][seed].get('note', '-')} "
                             f"| {fc or '-'} | {ratio} |")
            ma, mc = _median_fmax(acc), _median_fmax(core)
            lines.append(f"| median | {ma} | {mc} | "
                         f"{f'{ma / mc:.1%}' if ma and mc else '-'} |")
        lines += ["", f"The buffers, sequencer, output stage and result queue add "
                  f"{acc['luts'] - core['luts']:,} "
                  f"LUTs ({acc['luts'] / core['luts'] - 1:+.1%}) and "
                  f"{acc['ff'] - core['ff']:,} flip-flops to the core; the EBRs hold A, B "
                  "and the output-stage parameters "
                  f"({acc['ebr']} of {ECP5_EBR}, {acc['ebr'] / ECP5_EBR:.0%})."]
        bits = sy["buffer_bits"]
        p_bits = (f", output-stage parameters {bits['p'] / 1024:.0f} kbit" if "p" in bits
                  else "")
        lines += ["", f"Buffers of the default accelerator: A {bits['a'] / 1024:.0f} kbit "
                  f"(two stripes), B {bits['b'] / 1024:.0f} kbit{p_bits}.", ""]
    if results.get("stamp"):
        lines += [*stamp_markdown(results["stamp"]), ""]
    write_text(out_dir / "accel_report.md", "\n".join(lines) + "\n")
    return [out_dir / "accel_report.md", out_dir / "accel_report.json"]


def _plot(rf, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"default": "-", "ternary_uint4": "--"}
    colours = {"sparse": "tab:red", "dense": "tab:blue"}
    for c in rf["curves"]:
        x = [p["bytes_per_cycle"] for p in c["points"]]
        y = [p["macs_per_cycle"] for p in c["points"]]
        ax.plot(x, y, styles[c["preset"]], marker="o", ms=3, color=colours[c["mode"]],
                label=f"{c['preset']} {c['mode']}")
    for mode, colour in colours.items():
        peak = next(c["points"][0]["peak"] for c in rf["curves"] if c["mode"] == mode)
        ax.axhline(peak, color=colour, lw=0.8, ls=":")
    ax.axvline(BANDWIDTH, color="grey", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("load stream, bytes per cycle")
    ax.set_ylabel("effective MACs per cycle")
    ax.set_title(f"{rf['shape']} x {rf['n']} tokens on the accelerator")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = ArgumentParser(prog="sparsecore bench accel", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(PROJECT / "docs"))
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts (default: {','.join(PARTS)}); "
                             "'report' rewrites the page from the JSON")
    parser.add_argument("--cache", default=str(PROJECT / "build" / "bench" / "synth"))
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    check_output_files(out_dir, ["accel_report.md", "accel_report.json", "accel_roofline.png"],
                       "--out")   # before the synthesis: BadInput, exit 2
    previous = out_dir / "accel_report.json"
    results = json.loads(previous.read_text()) if previous.is_file() else {}
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if parts != ["report"]:
        unknown = sorted(set(parts) - set(PARTS))
        if unknown:
            parser.error(f"--only: unknown part(s) {', '.join(unknown)}")
        if "roofline" in parts:
            results["roofline"] = roofline_part()
        if "layers" in parts:
            results["layers"] = layers_part(rtl=True)
        if "synth" in parts:
            results["synth"] = synth_part(Path(args.cache))
        if "rtl" in parts:
            results["rtl"] = rtl_part()
        results["stamp"] = {**stamp(out_dir), "seeds": [SEED]}
    for path in write_page(results, out_dir):
        log(f"wrote {path}")
    return 0
