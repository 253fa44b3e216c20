"""``sparsecore lint``: ``verilator --lint-only -Wall`` on every design we emit.

Designs: the design registry's showcase (:func:`sparsecore.hw.registry.showcase`):
MacUnit for each of the 12 format pairs, SparseTensorCore for every preset, the
OutputStage and the SparseLayer as the workflow demo's last layer uses it.
Verilog goes to ``build/lint/``. Exit status 1 on any warning that
is not an Amaranth idiom.

Waived, by name, because Amaranth's Verilog backend produces them by
construction (see verif.toolchain.AMARANTH_WAIVERS): WIDTHEXPAND, WIDTHTRUNC,
PROCASSINIT, DECLFILENAME, and UNUSEDSIGNAL on internal wires: Amaranth keeps
every named Signal and every field view of a data layout as a wire for the
waveforms, even where the logic reads the expression it was assigned from.
UNUSEDSIGNAL on a top-level port is a real finding and fails the lint.
"""

import argparse
import contextlib
import re
import subprocess

from sparsecore.verif.build import build_root
from sparsecore.verif.toolchain import AMARANTH_WAIVERS, verilator_bin, verilator_env

WARNING = re.compile(r"^%(Warning|Error)(?:-([A-Z0-9_]+))?: (.*)$")
UNUSED_NAME = re.compile(r"not used: '([^']+)'")


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


def main(argv=None, staged=None):
    """``sparsecore lint [--out DIR]``. ``staged(DIR)``: a context manager giving the folder
    to emit into, whose files it puts into DIR when the block ends (the command's
    whole-or-nothing outputs, :mod:`sparsecore.safe_io`); default: DIR itself."""
    from sparsecore.hw.emit import emit
    from sparsecore.hw.registry import component_for, showcase

    parser = argparse.ArgumentParser(prog="sparsecore lint", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--out", default=None, help="folder for the Verilog (build/lint)")
    args = parser.parse_args(argv)
    out = build_root() / "lint" if args.out is None else args.out

    found = showcase()
    ports = {}
    with (staged(out) if staged else contextlib.nullcontext(out)) as folder:
        for name, config in found:
            manifest = emit(component_for(config), folder, name)
            ports[name] = {p["name"] for p in manifest["ports"]}
    failed = 0
    for name in ports:   # on the files at their place: findings name them there
        findings = lint_file(f"{out}/{name}.v", name, ports[name])
        print(f"{'FAIL' if findings else 'ok  '} {name}")
        for line in findings:
            print(f"     {line}")
        failed += bool(findings)
    print(f"lint: {len(found) - failed} of {len(found)} designs clean (Amaranth idioms "
          f"waived: {', '.join(AMARANTH_WAIVERS)}, the last on internal wires only)")
    return 1 if failed else 0
