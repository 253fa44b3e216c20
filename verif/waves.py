"""Waveforms of a core run: a GTKWave save file with named groups, and a PNG without a display.

- :func:`write_gtkw` writes ``<wave>.gtkw`` beside a VCD/FST: the signals
  grouped and named for a reader (each stream's valid/ready/payload, the tile
  descriptor, the result beats, the accumulators, the pipeline control), so
  ``gtkwave run.gtkw`` opens on a useful view.
- :func:`render_png` draws the main signals of a VCD with matplotlib (Agg
  backend, headless), one row per signal, time in clock cycles.
- ``sparsecore waves`` (:mod:`sparsecore.waves`) draws a user's VCD, or runs the
  ``make waves`` demo GEMM, with these.

Signal names come from the manifest (stream ports and payload fields); the
accumulators and pipeline signals are the core's internal names, shown when
the VCD has them.
"""

import re
from pathlib import Path

__all__ = ["trace_groups", "write_gtkw", "verilog_names", "read_vcd", "vcd_names",
           "render_png"]

# Internal signals of hw.core.SparseTensorCore worth a look, by name pattern.
ACCUMULATOR = re.compile(r"acc_\d+_\d+")
PIPELINE = ("adv", "take", "pending", "first")
# hw.accel.SparseAccelerator's descriptor registers, load engine, sequencer and result side.
ACCEL_STATE = {
    "descriptor": ("idle", "check", "running", "m_tiles", "n_tiles", "k_chunks", "dense",
                   "codes", "relu", "b_total", "reason"),
    "load engine (B, parameters, A stripes)": ("l_phase_p", "l_phase_a", "l_word", "l_beat",
                                               "l_stripe", "l_done"),
    "sequencer": ("c_stripe", "col", "chunk", "b_rd_addr0", "pace", "credits", "s1_valid",
                  "s1_last", "s2_valid", "s2_last"),
    "output stage and result queue": ("j_col", "r_in", "r_out", "out_beat", "out_col",
                                      "out_stripe"),
}


def _stream_traces(manifest, stream):
    info = manifest["streams"][stream]
    ports = info["ports"]
    traces = [(ports["valid"], f"{stream}.valid", "bin")]
    if "ready" in ports:
        traces.append((ports["ready"], f"{stream}.ready", "bin"))
    fields = info.get("fields")
    if fields:
        for field, spec in fields.items():
            if spec["width"] > 1 and "." not in field:
                traces.append((f"{ports['payload']}.{field}", f"{stream}.{field}", "hex"))
    elif stream == "results" and "count" in info:   # the core's tile of accumulators
        fmt = "signed" if info.get("elem", {}).get("elem_signed") else "hex"
        for i in range(info["count"]):
            for j in range(info.get("elem", {}).get("count", 1)):
                traces.append((f"{ports['payload']}[{i}][{j}]", f"C tile [{i}][{j}]", fmt))
    else:
        traces.append((ports["payload"], f"{stream}.payload", "hex"))
    return traces


def trace_groups(manifest, available=None):
    """``[(group, [(signal, alias, datafmt)])]`` for the core in ``manifest``.

    ``available``: signal names (without the module scope) that the waveform
    has; signals not in it are left out. None keeps every signal named by the
    manifest and skips the internal ones.
    """
    if "weights" not in manifest["streams"]:
        return _accel_groups(manifest, available)
    weights = manifest["streams"]["weights"]
    payload = weights["ports"]["payload"]
    descriptor = [(f"{payload}.{field}", f"descriptor.{field}" if field != "dense"
                   else "descriptor.dense (mode: 1 dense, 0 sparse)", "bin")
                  for field, spec in weights.get("fields", {}).items() if spec["width"] == 1]
    groups = [
        ("clock and reset", [("clk", "clk", "bin"), ("rst", "rst", "bin")]),
        ("weights stream (A)", _stream_traces(manifest, "weights")),
        ("tile descriptor", descriptor),
        ("activations stream (B)", _stream_traces(manifest, "activations")),
    ]
    named = {"weights", "activations", "results"}
    if "results" in manifest["streams"]:
        groups.append(("results stream (C tiles)", _stream_traces(manifest, "results")))
    # Any other stream of the design (a layer's params and codes), by its manifest name.
    groups += [(f"{stream} stream", _stream_traces(manifest, stream))
               for stream in manifest["streams"] if stream not in named]
    if available is not None:
        accs = sorted((n for n in available if ACCUMULATOR.fullmatch(n)),
                      key=lambda n: [int(x) for x in n.split("_")[1:]])
        groups.append(("accumulators", [(n, n, "signed") for n in accs]))
        groups.append(("pipeline control", [(n, n, "bin") for n in PIPELINE]))
        groups = [(g, [t for t in traces if t[0] in available]) for g, traces in groups]
    return [(g, traces) for g, traces in groups if traces]


def verilog_names(verilog_text):
    """Names of the signals a Verilog module declares (escaped names unescaped)."""
    decl = re.compile(r"^\s*(?:reg|wire|input|output)\b(?:\s+signed)?(?:\s*\[[^\]]*\])?"
                      r"\s*\\?([^\s;=]+)", re.M)
    return set(decl.findall(verilog_text))


def _accel_groups(manifest, available):
    """The accelerator's view: every stream (the command with its one-bit fields), then its
    sequencing state when the waveform has it."""
    groups = [("clock and reset", [("clk", "clk", "bin"), ("rst", "rst", "bin")])]
    for stream, info in manifest["streams"].items():
        traces = _stream_traces(manifest, stream)
        payload = info["ports"]["payload"]
        traces += [(f"{payload}.{field}", f"{stream}.{field}", "bin")
                   for field, spec in info.get("fields", {}).items()
                   if spec["width"] == 1 and "." not in field]
        groups.append((f"{stream} stream", traces))
    if available is not None:
        groups += [(group, [(n, n, "bin" if n in ("idle", "check", "running", "dense", "codes",
                                                  "relu") else "dec") for n in names])
                   for group, names in ACCEL_STATE.items()]
        groups = [(g, [t for t in traces if t[0] in available]) for g, traces in groups]
    return [(g, traces) for g, traces in groups if traces]


def write_gtkw(wave_path, manifest, gtkw_path=None, available=None):
    """Write a GTKWave save file for ``wave_path``; return its path (default: .gtkw beside).

    ``available``: the signal names to pick from (see :func:`trace_groups`);
    by default those in the VCD. An FST cannot be read here: pass the names
    from the Verilog (:func:`verilog_names`), or only the manifest's are used.
    """
    from vcd.gtkw import GTKWSave

    wave_path = Path(wave_path)
    gtkw_path = Path(gtkw_path) if gtkw_path else wave_path.with_suffix(".gtkw")
    top = manifest["top"]
    if available is None and wave_path.suffix == ".vcd":
        available = {n.split(".", 1)[1] for n in vcd_names(wave_path)
                     if n.startswith(f"{top}.")}
    with open(gtkw_path, "w") as f:
        save = GTKWSave(f)
        save.comment(f"{manifest['design']} {top}: open with `gtkwave {gtkw_path.name}`")
        # Relative, so the pair of files can move together.
        save.dumpfile(wave_path.name, abspath=False)
        save.savefile(gtkw_path.name, abspath=False)
        save.treeopen(top)
        save.signals_width(300)
        for group, traces in trace_groups(manifest, available):
            with save.group(group):
                for signal, alias, datafmt in traces:
                    save.trace(f"{top}.{signal}", alias=alias, datafmt=datafmt)
    return gtkw_path


# -- reading a VCD -------------------------------------------------------------------

def _vcd_header(f):
    """Yield (full name, id, width) for each $var; stop at $enddefinitions."""
    scopes = []
    for line in f:
        words = line.split()
        if not words:
            continue
        if words[0] == "$scope":
            scopes.append(words[2])
        elif words[0] == "$upscope":
            scopes.pop()
        elif words[0] == "$var":
            # $var <type> <width> <id> <name> [range] $end
            yield ".".join([*scopes, words[4]]), words[3], int(words[2])
        elif words[0] == "$enddefinitions":
            return


def vcd_names(path):
    """Full names (``scope.signal``) of every variable in a VCD."""
    with open(path) as f:
        return [name for name, _, _ in _vcd_header(f)]


def read_vcd(path, names):
    """Value changes of ``names`` (full names) in a VCD.

    Returns ``{name: (width, [(time, value)])}`` with integer values (None for
    x/z) and the time in the VCD's units.
    """
    wanted = set(names)
    by_id, widths = {}, {}
    with open(path) as f:
        for name, ident, width in _vcd_header(f):
            if name in wanted:
                by_id.setdefault(ident, []).append(name)
                widths[name] = width
        missing = wanted - set(widths)
        if missing:
            raise ValueError(f"{path}: no signals named {', '.join(sorted(missing))}")
        changes = {name: [] for name in widths}
        time = 0
        for line in f:
            if not line or line[0] == "$":
                continue
            head = line[0]
            if head == "#":
                time = int(line[1:])
                continue
            if head in "bB":
                value, ident = line[1:].split()
            elif head in "01xXzZ":
                value, ident = head, line[1:].strip()
            else:
                continue
            targets = by_id.get(ident)
            if targets:
                number = None if any(c in value for c in "xXzZ") else int(value, 2)
                for name in targets:
                    changes[name].append((time, number))
    return {name: (widths[name], changes[name]) for name in widths}


# -- drawing -------------------------------------------------------------------------

def _png_traces(manifest, available):
    """The main signals for a picture: handshakes, descriptor, one result and accumulator."""
    chosen = [("rst", "rst", "bin")] if "rst" in available else []
    for group, traces in trace_groups(manifest, available):
        if group == "clock and reset":
            continue
        for signal, alias, datafmt in traces:
            keep = (datafmt == "bin" and group != "pipeline control") \
                or signal.endswith("[0][0]") or signal == "acc_0_0" \
                or alias in ("weights.meta",)
            if keep:
                chosen.append((signal, alias, datafmt))
    return chosen


def render_png(vcd_path, manifest, png_path, title=None, max_cycles=80):
    """Draw the main signals of a core run's VCD into ``png_path`` (headless)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    top = manifest["top"]
    available = {n.split(".", 1)[1] for n in vcd_names(vcd_path) if n.startswith(f"{top}.")}
    traces = _png_traces(manifest, available)
    data = read_vcd(vcd_path, [f"{top}.clk"] + [f"{top}.{s}" for s, _, _ in traces])
    clock = [t for t, v in data[f"{top}.clk"][1] if v == 1]
    if len(clock) < 2:
        raise ValueError(f"{vcd_path}: the clock has fewer than two rising edges")
    period = clock[1] - clock[0]
    start, end = clock[0], min(clock[-1], clock[0] + max_cycles * period)

    fig_height = 0.42 * len(traces) + 1.2
    fig, ax = plt.subplots(figsize=(13, fig_height))
    for row, (signal, _, datafmt) in enumerate(traces):
        width, changes = data[f"{top}.{signal}"]
        y = len(traces) - 1 - row
        points = _segments(changes, start, end)
        if width == 1:
            xs, ys = [], []
            for t0, t1, v in points:
                level = y + (0.7 if v else 0.1)
                xs += [(t0 - start) / period, (t1 - start) / period]
                ys += [level, level]
            ax.plot(xs, ys, color="tab:blue", linewidth=1.4, drawstyle="default")
        else:
            for t0, t1, v in points:
                x0, x1 = (t0 - start) / period, (t1 - start) / period
                ax.fill_between([x0, x1], y + 0.1, y + 0.7, color="tab:green", alpha=0.15,
                                linewidth=0)
                ax.plot([x0, x0], [y + 0.1, y + 0.7], color="tab:green", linewidth=0.8)
                if v is not None and x1 - x0 >= 0.9:
                    value = v - (1 << width) if datafmt == "signed" and v >> (width - 1) else v
                    text = f"{value}" if datafmt == "signed" else f"{value:x}"
                    ax.text((x0 + x1) / 2, y + 0.4, text, ha="center", va="center",
                            fontsize=6, clip_on=True)
            ax.plot([0, (end - start) / period], [y + 0.1] * 2, color="tab:green", lw=0.5)
            ax.plot([0, (end - start) / period], [y + 0.7] * 2, color="tab:green", lw=0.5)
    ax.set_yticks([len(traces) - 1 - r + 0.4 for r in range(len(traces))])
    ax.set_yticklabels([alias for _, alias, _ in traces], fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, (end - start) / period)
    ax.set_ylim(-0.2, len(traces))
    ax.set_xlabel("clock cycle (rising edges from the first one recorded)")
    ax.grid(axis="x", linestyle=":", linewidth=0.5)
    ax.set_title(title or f"{manifest['design']} {top}", fontsize=10)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return Path(png_path)


def _segments(changes, start, end):
    """(t0, t1, value) pieces of a signal between ``start`` and ``end``."""
    pieces = []
    value = None
    t_prev = start
    for t, v in changes:
        if t <= start:
            value = v
            continue
        if t >= end:
            break
        if v != value:
            pieces.append((t_prev, t, value))
            t_prev, value = t, v
    pieces.append((t_prev, end, value))
    return pieces
