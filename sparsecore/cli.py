"""The ``sparsecore`` command: every user job is one of its subcommands.

    sparsecore verilog [--config NAME] [--set KEY=VALUE ...] [--out DIR]
    sparsecore gemm (--a A.npy | --a-values V.npy --a-meta M.npy) --b B.npy
                    --weights FMT --acts FMT [--dense] [--acc-bits N] [--config NAME]
                    --out C.npy [--waves PATH] [--check]
    sparsecore waves demo [--out DIR] [--png PNG ...] [--config NAME]
    sparsecore waves png RUN.vcd MANIFEST.json OUT.png
    sparsecore lint [--out DIR]
    sparsecore bench [--only PARTS] [--out DIR] | bench model ... | bench speed ...
    sparsecore demo [--out DIR] [--seeds N] [--quick]
    sparsecore regress [--seeds N] [--seed S] [--core-macs N] [--workers N | --scheduler ADDR]
    sparsecore coverage [--out DIR] [--workers N | --scheduler ADDR]
    sparsecore mutate [--mutants N] [--seed S] [--out DIR] [--workers N | --scheduler ADDR]
    sparsecore --version

``verilog``, ``gemm`` and ``waves`` are parsed here, and the campaigns
``regress``, ``coverage`` and ``mutate`` (Dask tasks, :mod:`sparsecore.campaign`);
the others hand their arguments to their module's ``main(argv)`` (listed in
:data:`DELEGATED`).

Exit codes (SPEC §5): 0 success; 2 bad input, with one line on stderr that names
the file (or option) and the problem, no traceback and nothing written; 1
anything else (a failed build or simulation, or a ``--check`` mismatch).

Every input is read and checked before anything is built or written, so a bad
input never leaves a half-written output behind.
"""

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from sparsecore.hw.config import PRESETS, CoreConfig, preset
from sparsecore.sim.formats import (
    ACTIVATION_FORMATS,
    WEIGHT_FORMATS,
    check_integer_array,
    get_format,
)
from sparsecore.sim.sparsity import GROUP, META_FORMAT

__all__ = ["main", "BadInput", "parse_overrides", "load_matrix", "GemmInputs", "read_gemm_inputs"]


class BadInput(Exception):
    """An input the command refuses: exit 2 with this one-line message."""


class _Parser(argparse.ArgumentParser):
    # argparse prints its usage block and exits; SPEC §5 wants one line and exit 2.
    def error(self, message):
        raise BadInput(message)


def _one_line(exc):
    return " ".join(str(exc).split())


# -- configurations -----------------------------------------------------------

CONFIG_FIELDS = {f.name: f for f in dataclasses.fields(CoreConfig)}


def _field_converter(name):
    default = CONFIG_FIELDS[name].default
    return int if isinstance(default, int) else str


def parse_overrides(items):
    """``["KEY=VALUE", ...]`` -> ``{key: typed value}``; BadInput names the bad item."""
    accepted = ", ".join(CONFIG_FIELDS)
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise BadInput(f"--set {item}: expected KEY=VALUE with KEY one of {accepted}")
        if key not in CONFIG_FIELDS:
            raise BadInput(f"--set {item}: unknown key {key!r}; accepted keys: {accepted}")
        convert = _field_converter(key)
        try:
            overrides[key] = convert(text.strip())
        except ValueError:
            raise BadInput(f"--set {item}: {key} must be an integer, not {text!r}") from None
    return overrides


def resolve_config(name, overrides, what="--set"):
    """A preset with fields replaced; every ValueError of the record becomes BadInput."""
    try:
        base = preset(name)
    except ValueError as exc:
        raise BadInput(f"--config: {_one_line(exc)}") from None
    try:
        return dataclasses.replace(base, **overrides)
    except ValueError as exc:
        raise BadInput(f"{what}: {_one_line(exc)}") from None


def config_label(name, overrides):
    """A preset's name plus the fields that differ from it, e.g. ``tiny`` or ``tiny_rows4``."""
    parts = [name] + [f"{key}{value}" for key, value in overrides.items()
                      if getattr(PRESETS[name], key) != value]
    return "_".join(parts)


def module_name(label):
    # A prefix keeps the module name a plain identifier (``default`` is a Verilog keyword).
    return f"sparsecore_{label}"


# -- .npy inputs ----------------------------------------------------------------

def load_matrix(path):
    """Read a 2-D integer matrix from a .npy file, as int64.

    BadInput (naming the file) for a missing or unreadable file, anything that
    is not one array, a non-integer dtype, a shape that is not 2-D or has an
    empty dimension.
    """
    p = Path(path)
    if not p.exists():
        raise BadInput(f"{path}: no such file")
    try:
        with open(p, "rb") as f:
            arr = np.load(f, allow_pickle=False)
            if isinstance(arr, np.lib.npyio.NpzFile):
                raise BadInput(f"{path}: is an .npz archive; expected a .npy file holding "
                               "one matrix")
    except BadInput:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise BadInput(f"{path}: not a readable .npy file ({_one_line(exc)})") from None
    try:
        arr = check_integer_array(arr, path)
    except ValueError as exc:
        raise BadInput(_one_line(exc)) from None
    if arr.ndim != 2:
        raise BadInput(f"{path}: expected a 2-D matrix, got shape {arr.shape}")
    if 0 in arr.shape:
        raise BadInput(f"{path}: shape {arr.shape} has an empty dimension; M, K, N must be >= 1")
    return arr


def _check_range(arr, fmt, path):
    try:
        fmt.check(arr, path)
    except ValueError as exc:
        raise BadInput(_one_line(exc)) from None


@dataclasses.dataclass
class GemmInputs:
    """Checked operands of one GEMM: dense ``a``, or compressed ``values``/``meta``."""

    b: np.ndarray
    a: np.ndarray | None = None
    values: np.ndarray | None = None
    meta: np.ndarray | None = None


def read_gemm_inputs(config, b_path, a_path=None, values_path=None, meta_path=None, dense=False):
    """Load and check the operands for ``config``; BadInput names the file and the problem.

    Sparse mode with a dense A compresses it (it must be 2:4); the compressed
    form is taken as given, any of the 16 codes allowed.
    """
    wfmt, afmt = config.weight_format, config.act_format
    if a_path is not None:
        a = load_matrix(a_path)
        b = load_matrix(b_path)
        if b.shape[0] != a.shape[1]:
            raise BadInput(f"{b_path}: B has {b.shape[0]} rows but A ({a_path}) has K = "
                           f"{a.shape[1]} columns; B must be K x N")
        _check_range(a, wfmt, a_path)
        _check_range(b, afmt, b_path)
        inputs = GemmInputs(b=b, a=a)
        if not dense:
            from sparsecore.sim import compress_2to4
            try:
                inputs.values, inputs.meta = compress_2to4(a)
            except ValueError as exc:
                reason = _one_line(exc)
                reason = "A" + reason[1:] if reason.startswith("a ") else reason
                raise BadInput(f"{a_path}: {reason}; give --dense to run it dense") from None
        return inputs

    values = load_matrix(values_path)
    meta = load_matrix(meta_path)
    b = load_matrix(b_path)
    groups = meta.shape[1]
    if meta.shape[0] != values.shape[0]:
        raise BadInput(f"{meta_path}: meta has {meta.shape[0]} rows but values ({values_path}) "
                       f"has M = {values.shape[0]}")
    if values.shape[1] != 2 * groups:
        raise BadInput(f"{values_path}: values has {values.shape[1]} columns but meta "
                       f"({meta_path}) has {groups} groups; values must be M x 2*groups")
    needed = -(-b.shape[0] // GROUP)
    if needed != groups:
        raise BadInput(f"{b_path}: B has K = {b.shape[0]} rows, which needs ceil(K/4) = "
                       f"{needed} metadata groups, but meta ({meta_path}) has {groups}")
    _check_range(values, wfmt, values_path)
    _check_range(meta, META_FORMAT, meta_path)   # every code 0..15 is legal (SPEC §3)
    _check_range(b, afmt, b_path)
    return GemmInputs(b=b, values=values, meta=meta)


# -- outputs --------------------------------------------------------------------

def _check_output_path(path, option, suffixes=None):
    p = Path(path)
    if p.is_dir():
        raise BadInput(f"{path}: {option} is a directory; give a file name")
    if not p.parent.is_dir():
        raise BadInput(f"{path}: directory {str(p.parent)!r} does not exist")
    if not os.access(p.parent, os.W_OK):
        raise BadInput(f"{path}: directory {str(p.parent)!r} is not writable")
    if suffixes and p.suffix not in suffixes:
        raise BadInput(f"{path}: {option} must end in {' or '.join(suffixes)}"
                       + ("" if ".fst" in suffixes else
                          " (FST needs the lz4 headers, which this machine lacks)"))
    return p


def _save_npy(path, array):
    """Write ``array`` to exactly ``path`` (no .npy appended), replacing it atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # mkstemp's 0600 is for the temporary name only
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- subcommands ----------------------------------------------------------------

def cmd_verilog(args):
    overrides = parse_overrides(args.set)
    config = resolve_config(args.config, overrides)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"{args.out}: --out must be a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"{args.out}: cannot create the --out directory ({exc.strerror})") from None
    if not os.access(out, os.W_OK):
        raise BadInput(f"{args.out}: the --out directory is not writable")

    from sparsecore.hw.emit import emit
    from sparsecore.hw.registry import component_for

    label = config_label(args.config, overrides)
    name = module_name(label)
    manifest = emit(component_for(config), out, name)
    print(f"config={label} " + " ".join(f"{k}={v}" for k, v in config.as_dict().items())
          + f" latency={manifest['latency']} verilog={out / manifest['verilog']}"
          f" manifest={out / (name + '.json')}")
    return 0


def gemm_summary(config_name, config, result, check):
    """The one summary line (SPEC §5) of a :class:`verif.gemm.GemmResult`."""
    m, n, k = result.tiled.shape
    words = [f"mode={result.mode}", f"config={config_name}", f"weights={config.weights}",
             f"acts={config.acts}", f"acc_bits={config.acc_bits}", f"rows={config.rows}",
             f"cols={config.cols}", f"groups={config.groups}", f"m={m}", f"k={k}", f"n={n}",
             f"cycles={result.cycles}", f"macs={result.macs}",
             f"utilization={result.utilization(config):.4f}"]
    if check is not None:
        words.append(f"check={check}")
    return " ".join(words)


def cmd_gemm(args):
    dense_a = args.a is not None
    if dense_a == (args.a_values is not None or args.a_meta is not None):
        raise BadInput("give either --a A.npy or both --a-values V.npy and --a-meta M.npy")
    if not dense_a and (args.a_values is None or args.a_meta is None):
        missing = "--a-meta" if args.a_meta is None else "--a-values"
        raise BadInput(f"{missing} is missing: the compressed A needs --a-values and --a-meta")
    if args.dense and not dense_a:
        raise BadInput("--dense needs a dense A (--a); --a-values/--a-meta are the 2:4 "
                       "compressed form, which only runs in sparse mode")
    for option, name in (("--weights", args.weights), ("--acts", args.acts)):
        try:
            get_format(name, option[2:])
        except ValueError as exc:
            raise BadInput(f"{option}: {_one_line(exc)}") from None
    overrides = {"weights": args.weights, "acts": args.acts}
    if args.acc_bits is not None:
        overrides["acc_bits"] = args.acc_bits
    config = resolve_config(args.config, overrides, what="--acc-bits" if args.acc_bits
                            is not None else f"--config {args.config} with these formats")
    out = _check_output_path(args.out, "--out")
    waves = None
    if args.waves is not None:
        from sparsecore.verif.gemm import wave_formats
        waves = _check_output_path(args.waves, "--waves", suffixes=wave_formats())

    inputs = read_gemm_inputs(config, args.b, args.a, args.a_values, args.a_meta, args.dense)

    from sparsecore.verif.build import SimulationFailed
    from sparsecore.verif.gemm import run_gemm
    try:
        result = run_gemm(config, a=inputs.a if args.dense else None, values=inputs.values,
                          meta=inputs.meta, b=inputs.b, dense=args.dense, waves=waves)
    except (SimulationFailed, RuntimeError) as exc:
        print(f"sparsecore gemm: the run on the core failed: {exc}", file=sys.stderr)
        if waves is None:
            print("sparsecore gemm: add --waves run.vcd to this command to record its "
                  "waveform", file=sys.stderr)
        return 1
    _save_npy(out, result.c)

    mismatch = None
    if args.check:
        from sparsecore.sim import matmul, sparse_matmul
        if args.dense:
            expected = matmul(inputs.a, inputs.b, acc_bits=config.acc_bits)
        else:
            expected = sparse_matmul(inputs.values, inputs.meta, inputs.b,
                                     acc_bits=config.acc_bits)
        mismatch = result.describe_mismatch(expected)
    check = None if not args.check else ("fail" if mismatch else "pass")
    print(gemm_summary(args.config, config, result, check))
    if mismatch:
        hint = "" if waves else "; add --waves run.vcd to see it in a waveform"
        print(f"sparsecore gemm: check failed: {mismatch}{hint}", file=sys.stderr)
        return 1
    return 0


def cmd_waves(args):
    from sparsecore.waves import demo

    if args.waves_command == "demo":
        return demo(main, args.out, args.png or [Path(args.out) / "demo.png"], args.config)
    from sparsecore.hw.emit import load_manifest
    from sparsecore.verif.waves import render_png

    for path, what in ((args.vcd, "VCD"), (args.manifest, "manifest")):
        if not Path(path).is_file():
            raise BadInput(f"{path}: the {what} does not exist")
    render_png(args.vcd, load_manifest(args.manifest), args.png)
    print(f"wrote {args.png}")
    return 0


# Subcommands whose module parses its own arguments: name -> (module, entry, help).
DELEGATED = {
    "lint": ("sparsecore.verif.lint", "main", "Verilator -Wall lint of every registered design"),
    "bench": ("sparsecore.bench.run", "main",
              "throughput, area, Fmax and speed report (docs/report.md); "
              "'bench model', 'bench speed' and 'bench core' time the numpy model, the "
              "GEMM runner and the core's back-to-back throughput"),
    "demo": ("sparsecore.workflow", "main",
             "the seeds' digits workflow on the RTL (docs/workflow.md)"),
}
BENCH_TOOLS = {"model": "sparsecore.bench.model", "speed": "sparsecore.bench.speed",
               "core": "sparsecore.verif.core.bench"}


def run_delegated(name, argv):
    import importlib

    module, entry, _ = DELEGATED[name]
    if name == "bench" and argv and argv[0] in BENCH_TOOLS:
        module, argv = BENCH_TOOLS[argv[0]], argv[1:]
    return getattr(importlib.import_module(module), entry)(argv)


def build_parser():
    from sparsecore import __version__

    parser = _Parser(prog="sparsecore", description="2:4 sparse tensor core: Verilog "
                     "generation, GEMMs on the Verilated RTL, verification and reports.")
    parser.add_argument("--version", action="version", version=f"sparsecore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    presets = ", ".join(PRESETS)

    v = sub.add_parser(
        "verilog", help="write Verilog and a JSON manifest for a configuration",
        epilog="exit codes: 0 success; 2 bad --config/--set (one line on stderr); 1 anything "
               "else")
    v.add_argument("--config", default="default", metavar="NAME",
                   help=f"preset to start from: {presets} (default: default)")
    v.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override one field ({', '.join(CONFIG_FIELDS)}); repeatable")
    v.add_argument("--out", default="build/verilog", metavar="DIR",
                   help="output directory (default: build/verilog)")
    v.set_defaults(run=cmd_verilog)

    g = sub.add_parser(
        "gemm", help="run C = A x B on the Verilated core",
        description="Run C = A x B on the Verilated core (any M, N, K >= 1, zero-padded to "
                    "the tile). .npy inputs hold plain integer values. Prints one line of "
                    "key=value words (mode, config, cycles, macs, utilization, ...).",
        epilog="exit codes: 0 success; 2 bad input (one line on stderr naming the file and "
               "the problem, nothing written); 1 anything else (failed run, --check mismatch)")
    g.add_argument("--a", metavar="A.npy", help="dense A, M x K")
    g.add_argument("--a-values", metavar="V.npy", help="compressed A: kept values, M x K/2")
    g.add_argument("--a-meta", metavar="M.npy",
                   help="compressed A: one 4-bit code per group of four, M x K/4")
    g.add_argument("--b", required=True, metavar="B.npy", help="B, K x N")
    g.add_argument("--weights", required=True, metavar="FMT",
                   help=f"format of A: {', '.join(WEIGHT_FORMATS)}")
    g.add_argument("--acts", required=True, metavar="FMT",
                   help=f"format of B: {', '.join(ACTIVATION_FORMATS)}")
    g.add_argument("--dense", action="store_true", help="run in dense mode (A uncompressed)")
    g.add_argument("--acc-bits", type=int, metavar="N",
                   help="accumulator width (default: the config's)")
    g.add_argument("--config", default="default", metavar="NAME",
                   help=f"core preset: {presets} (default: default)")
    g.add_argument("--out", required=True, metavar="C.npy", help="where C (int64) goes")
    g.add_argument("--waves", metavar="PATH",
                   help="write the waveform here (.vcd, or .fst where supported) "
                        "and a GTKWave save file beside it")
    g.add_argument("--check", action="store_true",
                   help="compare C with the numpy model; exit 1 on a mismatch")
    g.set_defaults(run=cmd_gemm)

    w = sub.add_parser("waves", help="draw a VCD of a core run, or record the demo GEMM's")
    wsub = w.add_subparsers(dest="waves_command", required=True, metavar="WHAT")
    d = wsub.add_parser("demo", help="a small GEMM with --waves, and its PNG (make waves)")
    d.add_argument("--out", default="build/waves", metavar="DIR",
                   help="folder for A/B/C.npy, demo.vcd and demo.gtkw (default: build/waves)")
    d.add_argument("--png", action="append", default=None, metavar="PNG",
                   help="PNG to write (repeatable; default DIR/demo.png)")
    d.add_argument("--config", default="tiny", metavar="NAME",
                   help=f"core preset: {presets} (default: tiny)")
    p = wsub.add_parser("png", help="draw a VCD of a core run into a PNG, headless")
    p.add_argument("vcd", metavar="RUN.vcd")
    p.add_argument("manifest", metavar="MANIFEST.json", help="the core's manifest")
    p.add_argument("png", metavar="OUT.png")
    w.set_defaults(run=cmd_waves)

    for name, (_, _, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)   # main() hands these over

    from sparsecore.campaign import add_campaign_commands
    add_campaign_commands(sub)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 0
    if argv[0] in DELEGATED:
        return run_delegated(argv[0], argv[1:])
    command = "sparsecore"
    try:
        args = parser.parse_args(argv)
        command = f"sparsecore {args.command}"
        return args.run(args)
    except BadInput as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:   # a write that failed after the checks (disk full, ...)
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 1
