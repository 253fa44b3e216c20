"""``python -m verif.lint``: ``verilator --lint-only -Wall`` on every design we emit.

Designs: MacUnit for each of the 12 format pairs, SparseTensorCore for every
preset, the OutputStage and the SparseLayer (core + output stage) as the
workflow demo's last layer uses it (each skipped with a note while its module
does not exist yet). Verilog goes to ``build/lint/``. Exit status 1 on any warning that
is not an Amaranth idiom.

Waived, by name, because Amaranth's Verilog backend produces them by
construction (see verif.toolchain.AMARANTH_WAIVERS): WIDTHEXPAND, WIDTHTRUNC,
PROCASSINIT, DECLFILENAME, and UNUSEDSIGNAL on internal wires: Amaranth keeps
every named Signal and every field view of a data layout as a wire for the
waveforms, even where the logic reads the expression it was assigned from.
UNUSEDSIGNAL on a top-level port is a real finding and fails the lint.
"""

import argparse
import itertools
import re
import subprocess
import sys

from sparsecore.verif.build import build_root
from sparsecore.verif.toolchain import AMARANTH_WAIVERS, verilator_bin, verilator_env

WARNING = re.compile(r"^%(Warning|Error)(?:-([A-Z0-9_]+))?: (.*)$")
UNUSED_NAME = re.compile(r"not used: '([^']+)'")


def designs():
    """(name, component factory) for every design, the optional ones only if they exist."""
    from sparsecore.hw.config import PRESETS, CoreConfig, MacConfig
    from sparsecore.hw.mac import MacUnit
    from sparsecore.sim.formats import ACTIVATION_FORMATS, WEIGHT_FORMATS

    found = []
    for w, a in itertools.product(WEIGHT_FORMATS, ACTIVATION_FORMATS):
        found.append((f"mac_{w}_{a}", lambda w=w, a=a: MacUnit(MacConfig(w, a))))
    skipped = []
    try:
        from sparsecore.hw.core import SparseTensorCore
    except ImportError as err:
        skipped.append(f"SparseTensorCore ({err})")
    else:
        for preset, config in PRESETS.items():
            if isinstance(config, CoreConfig):
                found.append((f"core_{preset}", lambda c=config: SparseTensorCore(c)))
    try:
        from sparsecore.hw.config import OutputStageConfig
        from sparsecore.hw.output_stage import OutputStage
    except ImportError as err:
        skipped.append(f"OutputStage ({err})")
    else:
        found.append(("output_stage", lambda: OutputStage(OutputStageConfig())))
    try:
        from sparsecore.hw.config import LayerConfig
        from sparsecore.hw.layer import SparseLayer
    except ImportError as err:
        skipped.append(f"SparseLayer ({err})")
    else:
        # ternary x uint4 in, int8 logits out: the demo's last layer
        found.append(("layer_ternary_uint4_to_int8", lambda: SparseLayer(
            LayerConfig.of(PRESETS["ternary_uint4"], out="int8"))))
    return found, skipped


def lint_file(verilog, top, ports):
    """Findings (lines) of Verilator -Wall on ``verilog``, Amaranth idioms removed."""
    cmd = [str(verilator_bin()), "--lint-only", "-Wall",
           *(f"-Wno-{w}" for w in AMARANTH_WAIVERS if w != "UNUSEDSIGNAL"),
           "--top-module", top, str(verilog)]
    proc = subprocess.run(cmd, env=verilator_env(), capture_output=True, text=True)
    findings, warnings = [], 0
    for line in proc.stderr.splitlines():
        match = WARNING.match(line)
        if not match or match.group(3).startswith("Exiting due to"):
            continue
        warnings += 1
        rule = match.group(2)
        if rule == "UNUSEDSIGNAL":
            name = UNUSED_NAME.search(line)
            if name and name.group(1) not in ports:
                continue  # an Amaranth alias wire, not a port
        findings.append(line)
    if proc.returncode and not warnings:  # failed without saying why in a warning
        findings.append(f"verilator exited with {proc.returncode}: {proc.stderr.strip()}")
    return findings


def main(argv=None):
    from sparsecore.hw.emit import emit

    parser = argparse.ArgumentParser(prog="python -m verif.lint", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--out", default=None, help="folder for the Verilog (build/lint)")
    args = parser.parse_args(argv)
    out = build_root() / "lint" if args.out is None else args.out

    found, skipped = designs()
    failed = 0
    for name, make in found:
        manifest = emit(make(), out, name)
        ports = {p["name"] for p in manifest["ports"]}
        findings = lint_file(f"{out}/{name}.v", name, ports)
        print(f"{'FAIL' if findings else 'ok  '} {name}")
        for line in findings:
            print(f"     {line}")
        failed += bool(findings)
    for what in skipped:
        print(f"skip {what}")
    print(f"lint: {len(found) - failed} of {len(found)} designs clean (Amaranth idioms "
          f"waived: {', '.join(AMARANTH_WAIVERS)}, the last on internal wires only)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
