"""``sparsecore bench``: measure everything and write docs/report.md, its plots and report.json.

Parts (``--only`` runs some of them and keeps the others from the existing
report.json):

- ``throughput``: sparse vs dense GEMMs on the Verilated default core, and sim.perf.
- ``speed``: the engine's cycles/s end to end next to the raw C++ loop on the same
  Verilated model, ``sparsecore gemm`` on a 4.2M-cycle GEMM next to the raw loop's time,
  and the cocotb runner next to a bare cocotb clock loop.
- ``model``: sparsecore.bench.model (numpy 2:4 path).
- ``area``: product lanes and MAC units of all 12 format pairs (iCE40, gates, ECP5,
  Fmax on iCE40 hx8k and ECP5 25k).
- ``cores``: core presets, sparse-capable and dense-only (area; Fmax of the
  sparse-capable ones on ECP5, and of ``tiny`` on iCE40 hx8k).
- ``fmax``: Fmax of the core as M x N grows from 2x2 to 8x8.
- ``units``: the units after the core: the output stage and the code table (the
  programmable nonlinearity), 4 lanes each (area and memories; no place and route).

``--only report`` measures nothing and rewrites report.md and the plots from report.json.

The timing-sensitive parts (throughput, speed, model) run first and alone; then
the synthesis and place-and-route sweep runs as Dask tasks, one per design
(:func:`run_sweep`, on :mod:`sparsecore.campaign`): ``--jobs`` workers of an
embedded LocalCluster, or an existing scheduler (``--scheduler``), or with
``--serial`` one design after the other in this process; the results are the
same. Synthesis results are cached under build/bench/synth/ by Verilog hash, so
a rerun is quick.
"""

import json
import os
import sys
import time
from pathlib import Path

from sparsecore.bench import synth as syn
from sparsecore.bench.report import PLOTS, write_report
from sparsecore.hw.config import PRESETS, CoreConfig, MacConfig
from sparsecore.hw.registry import build_name, component_for
from sparsecore.safe_io import ArgumentParser, check_output_files
from sparsecore.sim.formats import ACTIVATION_FORMATS, WEIGHT_FORMATS
from sparsecore.sim.perf import predict_gemm

PARTS = ("throughput", "speed", "model", "area", "cores", "fmax", "units")
RENDER_ONLY = "report"   # --only report: rewrite the report from report.json, measure nothing
PROJECT = Path(__file__).resolve().parents[2]   # the checkout: sparsecore/bench/run.py
CORE_PRESETS = ("tiny", "default", "ternary_uint4", "int4_int4")   # "wrap" = tiny, acc_bits 18
REFERENCE_GEMM = (64, 64, 1024)    # for effective MACs per cycle of each core
# The Fmax sweep: int4 x int4 with G = 1 keeps the 8x8 core (128 multipliers, about 22k
# ECP5 LUTs) to minutes of synthesis and place and route; int8 x int8 at 8x8 is about
# four times the LUTs.
UNIT_LANES = (4,)   # a 2 x 2 result tile per beat (a 4 x 4 tile's table is 4 such copies)
SWEEP = {"weights": "int4", "acts": "int4", "groups": 1,
         "sizes": ((2, 2), (4, 4), (8, 8)),
         "why": "int4 x int4 with G=1 keeps the 8x8 core (128 multipliers) to minutes of "
                "synthesis and place and route; int8 x int8 at 8x8 would be about four "
                "times the LUTs. A core with more LUTs than 85 % of a 25k is placed on an "
                "85k, as the device column says."}


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


# -- stamp --------------------------------------------------------------------------------

def stamp(out_dir, load_average=None):
    """The stamp's record (sparsecore.verif.stamp), with the synthesis tools' versions and
    the load average (a shared machine slows the timed parts); the report's own files do
    not count as making the tree dirty."""
    from sparsecore.verif.stamp import DEFAULT_PACKAGES, collect
    record = collect(packages=(*DEFAULT_PACKAGES, "matplotlib", *syn.tool_versions()),
                     outputs=sorted(Path(out_dir).glob("report*")),
                     settings={"synthesis cache": "build/bench/ (same Verilog, script, tools)"})
    record["machine"]["load_average"] = (os.getloadavg()[0] if load_average is None
                                         else load_average)
    return record


# -- designs ------------------------------------------------------------------------------

def _lane(w, a):
    from sparsecore.hw.lanes import ProductLane
    return syn.Design(f"lane_{w}_{a}", lambda: ProductLane(MacConfig(w, a)), "lane")


def _mac(w, a):
    config = MacConfig(w, a)
    return syn.Design(build_name(config), lambda: component_for(config), "mac",
                      pnr=("ice40_hx8k", "ecp5"))


def _core(config, sparse=True, pnr=()):
    """A core for synthesis: the registry's build name, ``_dense_only`` for the dense-only
    variant (the same config without the 2:4 multiplexers)."""
    name = build_name(config) + ("" if sparse else "_dense_only")
    return syn.Design(name, lambda: component_for(config, sparse=sparse), "core", pnr=pnr)


def _units():
    """{label: Design} of the units after the core: output stage and code table."""
    from sparsecore.hw.code_table import CodeTable
    from sparsecore.hw.config import CodeTableConfig, OutputStageConfig
    from sparsecore.hw.output_stage import OutputStage
    out = {}
    for lanes in UNIT_LANES:
        out[f"output_stage_int8_l{lanes}"] = (
            {"unit": "output stage", "lanes": lanes, "formats": "acc32 -> int8"},
            syn.Design(f"output_stage_int8_l{lanes}", lambda n=lanes: OutputStage(
                OutputStageConfig(acts="int8", lanes=n)), "unit"))
        out[f"code_table_int8_int8_l{lanes}"] = (
            {"unit": "code table", "lanes": lanes, "formats": "int8 -> int8, 256 entries"},
            syn.Design(f"code_table_int8_int8_l{lanes}", lambda n=lanes: CodeTable(
                CodeTableConfig(codes="int8", out="int8", lanes=n)), "unit"))
    return out


def format_pairs():
    return [(w, a) for w in WEIGHT_FORMATS for a in ACTIVATION_FORMATS]


def _measure(design, flows, cache):
    """Synthesize ``design`` with ``flows`` and place and route it on ``design.pnr``."""
    out = {"fmax": {}}
    for flow in flows:
        out[flow] = syn.synthesize(design, flow, cache)
    for device in design.pnr:
        family = "ice40" if device.startswith("ice40") else "ecp5"
        chosen = syn.pick_ecp5(out["ecp5"]["netlist_luts"]) if device == "ecp5" else device
        out["fmax"][device] = syn.place_and_route(design, out[family], chosen, cache)
    for flow in flows:
        out[flow].pop("netlist", None)
    return out


def run_sweep(tasks, cache, jobs=2, scheduler=None, serial=False):
    """Measure {key: (Design, flows)} ``tasks``: one Dask task per design (the campaign
    machinery, :func:`sparsecore.campaign.run_tasks`), on an embedded LocalCluster of
    ``jobs`` workers or on the Dask scheduler at ``scheduler`` (or
    $SPARSECORE_SCHEDULER); ``serial``: one design after the other in this process.
    Both paths call the same :func:`_measure`, so their results are identical; each
    design's synthesis is cached by content hash in ``cache`` (workers on other machines
    must see it at the same path). {key: result}, in the order of ``tasks``."""
    from sparsecore.campaign import dask_client, run_tasks

    calls = {key: (_measure, (design, flows, cache)) for key, (design, flows) in tasks.items()}
    say = lambda line: log(f"  done {line}")   # noqa: E731
    if serial:
        return run_tasks(calls, None, log=say)
    with dask_client(workers=jobs, scheduler=scheduler) as client:
        return run_tasks(calls, client, log=say, name="synth")


def synthesis_parts(parts, cache, jobs, scheduler=None, serial=False):
    """Area / Fmax results for the requested parts: {"lanes", "macs", "cores", "fmax_sweep"}."""
    tasks = {}
    flows = ("ice40", "gates", "ecp5")
    core_configs = {}
    if "cores" in parts:
        for name in CORE_PRESETS:
            for sparse in (True, False):
                config = PRESETS[name]
                label = f"core_{name}" + ("" if sparse else "_dense_only")
                pnr = (("ice40_hx8k", "ecp5") if name == "tiny" else ("ecp5",)) if sparse else ()
                core_configs[label] = (name, config, sparse)
                tasks[label] = (_core(config, sparse, pnr), flows)
    if "fmax" in parts:
        for rows, cols in SWEEP["sizes"]:
            config = CoreConfig(weights=SWEEP["weights"], acts=SWEEP["acts"], rows=rows,
                                cols=cols, groups=SWEEP["groups"])
            label = f"sweep_{rows}x{cols}"
            core_configs[label] = (label, config, True)
            tasks[label] = (_core(config, True, ("ecp5",)), ("ecp5",))
    units = _units() if "units" in parts else {}
    for label, (_info, design) in units.items():
        tasks[label] = (design, flows)
    pairs = format_pairs()
    if "area" in parts or "fmax" in parts:
        for w, a in pairs:
            if "area" in parts or (w, a) == (SWEEP["weights"], SWEEP["acts"]):
                tasks[f"mac_{w}_{a}"] = (_mac(w, a), flows)
    if "area" in parts:
        for w, a in pairs:
            tasks[f"lane_{w}_{a}"] = (_lane(w, a), flows)
    # Biggest first, so the long place-and-route runs overlap the many small ones.
    order = sorted(tasks, key=lambda k: (not k.startswith("core_default"),
                                         not k.startswith("core"), not k.startswith("sweep")))
    where = scheduler or os.environ.get("SPARSECORE_SCHEDULER") or f"{jobs} workers"
    log(f"synthesis: {len(tasks)} designs, "
        + ("one at a time (serial)" if serial else f"as Dask tasks ({where})"))
    measured = run_sweep({k: tasks[k] for k in order}, cache, jobs, scheduler, serial)

    out = {}
    if units:
        out["units"] = [{**info, "name": label, **measured[label]}
                        for label, (info, _design) in units.items()]
    if "area" in parts:
        out["lanes"] = [{"weights": w, "acts": a, **measured[f"lane_{w}_{a}"]} for w, a in pairs]
        out["macs"] = [{"weights": w, "acts": a, **measured[f"mac_{w}_{a}"]} for w, a in pairs]
    if "cores" in parts:
        out["cores"] = []
        for label, (name, config, sparse) in core_configs.items():
            if not label.startswith("core_"):
                continue
            m = measured[label]
            latency = m["ice40"]["latency"]
            perf = predict_gemm(config, *REFERENCE_GEMM, dense=not sparse, latency=latency)
            out["cores"].append({
                "name": name, "sparse": sparse, "config": config.as_dict(),
                "multipliers": config.multipliers, "latency": latency,
                "effective_macs_per_cycle": perf.macs_per_cycle, **m})
        out["core_reference_gemm"] = list(REFERENCE_GEMM)
    if "fmax" in parts:
        mac = measured[f"mac_{SWEEP['weights']}_{SWEEP['acts']}"]["fmax"]["ecp5"]
        cores = []
        for label, (_name, config, _sparse) in core_configs.items():
            if not label.startswith("sweep_"):
                continue
            m = measured[label]
            fmax = m["fmax"]["ecp5"]
            cores.append({"rows": config.rows, "cols": config.cols,
                          "multipliers": config.multipliers, **m,
                          "fmax_mhz": fmax["fmax_mhz"] if fmax.get("fits") else None})
        devices = sorted({c["fmax"]["ecp5"]["device"] for c in cores} | {mac["device"]})
        out["fmax_sweep"] = {
            "weights": SWEEP["weights"], "acts": SWEEP["acts"], "groups": SWEEP["groups"],
            "why": SWEEP["why"], "mac_fmax_mhz": mac["fmax_mhz"], "mac": mac,
            "device_label": " / ".join(d.replace("_", " ").upper() for d in devices),
            "cores": cores}
    return out


def _count_runs(results):
    """How many synthesis runs the results hold, and how many came from the cache."""
    entries = [*results.get("lanes", []), *results.get("macs", []), *results.get("cores", []),
               *results.get("units", []),
               *results.get("fmax_sweep", {}).get("cores", [])]
    runs = [x[flow] for x in entries for flow in ("ice40", "gates", "ecp5") if flow in x]
    return {"total": len(runs), "cached": sum(bool(r.get("cached")) for r in runs)}


# -- main ---------------------------------------------------------------------------------

def main(argv=None):
    parser = ArgumentParser(prog="sparsecore bench", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(PROJECT / "docs"),
                        help="folder for report.md, report.json and the plots (default: docs/)")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts to run (default: all of {','.join(PARTS)}); "
                             "the others are kept from the existing report.json; "
                             f"'{RENDER_ONLY}' alone rewrites the report from report.json")
    parser.add_argument("--jobs", type=int, default=2,
                        help="Dask workers of the embedded LocalCluster for the synthesis and "
                             "place-and-route sweep: runs at a time (default: 2)")
    parser.add_argument("--scheduler", default=None,
                        help="run the sweep on this Dask scheduler instead "
                             "(or $SPARSECORE_SCHEDULER)")
    parser.add_argument("--serial", action="store_true",
                        help="run the sweep in this process, one design at a time (no Dask)")
    parser.add_argument("--cache", default=str(PROJECT / "build" / "bench" / "synth"),
                        help="synthesis cache folder (default: build/bench/synth)")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    out_dir = Path(args.out)
    # every file the report may write, checked before hours of synthesis (SPEC §5)
    check_output_files(out_dir, ["report.md", "report.json", *PLOTS.values()], "--out")
    if parts == [RENDER_ONLY]:
        results = json.loads((out_dir / "report.json").read_text())
        for path in write_report(results, out_dir):
            log(f"wrote {path}")
        return 0
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--only: unknown part(s) {', '.join(unknown)}; parts: {', '.join(PARTS)}")

    previous = out_dir / "report.json"
    results = json.loads(previous.read_text()) if previous.is_file() else {}
    results.pop("targets", None)
    wall = {}
    start = time.monotonic()
    load_at_start = os.getloadavg()[0]

    if "throughput" in parts:
        from sparsecore.bench.throughput import sweep
        t = time.monotonic()
        log("throughput: sparse vs dense GEMMs on the RTL")
        config = PRESETS["default"]
        rows = sweep("default", log=lambda s: log(s))
        peak = {r["mode"]: r["peak_macs_per_cycle"] for r in rows}
        results["throughput"] = {
            "config": "default", "rows": rows,
            "core": {**config.as_dict(), "multipliers": config.multipliers,
                     "latency": rows[0]["latency"], "peak_sparse": peak["sparse"],
                     "peak_dense": peak["dense"]}}
        wall["throughput"] = time.monotonic() - t
    if "speed" in parts:
        from sparsecore.bench.throughput import sim_speed
        t = time.monotonic()
        log("speed: the engine and `sparsecore gemm` vs the raw C++ loop; cocotb runner")
        results["sim_speed"] = sim_speed("default", log=lambda s: log(s))
        wall["speed"] = time.monotonic() - t
    if "model" in parts:
        from sparsecore.bench.model import bench_model
        t = time.monotonic()
        log("model: sparsecore.bench.model 4096 x 4096")
        results["model"] = bench_model()
        wall["model"] = time.monotonic() - t
    synth_parts = [p for p in parts if p in ("area", "cores", "fmax", "units")]
    if synth_parts:
        t = time.monotonic()
        results.update(synthesis_parts(synth_parts, Path(args.cache).resolve(), args.jobs,
                                       args.scheduler, args.serial))
        results["gate_set"] = syn.GATE_SET
        results["synthesis_runs"] = _count_runs(results)
        wall["synthesis"] = time.monotonic() - t
    wall["total"] = time.monotonic() - start
    results["wall_seconds"] = wall
    results["parts_run"] = parts
    results["stamp"] = stamp(out_dir, load_at_start)
    for path in write_report(results, out_dir):
        log(f"wrote {path}")
    return 0
