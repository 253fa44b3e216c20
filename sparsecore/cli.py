"""The ``sparsecore`` command: every user job is one of its subcommands.

    sparsecore verilog [--config NAME] [--set KEY=VALUE ...] [--accel] [--out DIR]
    sparsecore gemm (--a A.npy | --a-values V.npy --a-meta M.npy) --b B.npy
                    --weights FMT --acts FMT [--dense] [--acc-bits N] [--config NAME]
                    --out C.npy [--waves PATH] [--check]
                    [--accel [--bandwidth BYTES_PER_CYCLE]
                     [--bias BIAS.npy --mult MULT.npy --shift SHIFT.npy [--relu]
                      [--out-format FMT]]]
    sparsecore waves demo [--out DIR] [--png PNG ...] [--config NAME]
    sparsecore waves png RUN.vcd MANIFEST.json OUT.png
    sparsecore lint [--out DIR]
    sparsecore bench [--only PARTS] [--out DIR] | bench model|speed|core|accel|campaign ...
    sparsecore demo [--out DIR] [--seeds N] [--quick] [--no-kernels]
    sparsecore demo --check [--full] [--out DIR]
    sparsecore seeds [--out DIR] [--seeds N] [--rtl-images N] [--cache PKL] [--quick]
    sparsecore seeds --check [--out DIR]
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
anything else (a failed build or simulation, or a ``--check`` mismatch); 130 / 143
on SIGINT / SIGTERM.

Every input is read and checked before anything is built or written, so a bad
input never leaves a half-written output behind; outputs are written whole or
not at all. SIGINT and SIGTERM stop every child process, remove temporary files
and exit 130 and 143. The machinery for all of this is :mod:`sparsecore.safe_io`.
"""

import contextlib
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

from sparsecore.hw.config import PRESETS, AccelConfig, CoreConfig, preset
from sparsecore.safe_io import (
    ArgumentParser,
    BadInput,
    Interrupted,
    WriteFailed,
    atomic_output,
    check_distinct,
    check_output_dir,
    check_output_file,
    check_output_files,
    interrupt_handling,
    make_dirs,
    npy_bytes,
    one_line,
    publish,
    read_npy,
    remove_empty_dirs,
    shown,
    staging_dir,
)
from sparsecore.sim.formats import (
    ACTIVATION_FORMATS,
    WEIGHT_FORMATS,
    check_integer_array,
    get_format,
)
from sparsecore.sim.sparsity import GROUP, META_FORMAT

__all__ = ["main", "BadInput", "parse_overrides", "load_matrix", "GemmInputs", "read_gemm_inputs"]


TRACEBACK_ENV = "SPARSECORE_TRACEBACK"
_Parser = ArgumentParser   # errors are one line and exit 2 (SPEC §5), not a usage block


def _one_line(exc):
    return one_line(exc)


# -- configurations -----------------------------------------------------------

CONFIG_FIELDS = {f.name: f for f in dataclasses.fields(CoreConfig)}
ACCEL_FIELDS = {f.name: f for f in dataclasses.fields(AccelConfig)}


def _field_converter(name):
    default = ACCEL_FIELDS[name].default
    return int if isinstance(default, int) else str


def parse_overrides(items, fields=CONFIG_FIELDS):
    """``["KEY=VALUE", ...]`` -> ``{key: typed value}``; BadInput names the bad item."""
    accepted = ", ".join(fields)
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise BadInput(f"--set {item}: expected KEY=VALUE with KEY one of {accepted}")
        if key not in fields:
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

    BadInput (naming the file) for anything :func:`sparsecore.safe_io.read_npy`
    refuses (a missing, non-regular, non-.npy, pickled, non-integer, oversized or
    truncated file), a shape that is not 2-D or has an empty dimension.
    """
    arr = read_npy(path)
    try:
        arr = check_integer_array(arr, shown(path))
    except ValueError as exc:
        raise BadInput(_one_line(exc)) from None
    if arr.ndim != 2:
        raise BadInput(f"{shown(path)}: expected a 2-D matrix, got shape {arr.shape}")
    if 0 in arr.shape:
        raise BadInput(f"{shown(path)}: shape {arr.shape} has an empty dimension; M, K, N "
                       "must be >= 1")
    return arr


def _check_range(arr, fmt, path):
    try:
        fmt.check(arr, shown(path))
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
            raise BadInput(f"{shown(b_path)}: B has {b.shape[0]} rows but A ({shown(a_path)}) "
                           f"has K = {a.shape[1]} columns; B must be K x N")
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
                raise BadInput(f"{shown(a_path)}: {reason}; give --dense to run it dense") from None
        return inputs

    values = load_matrix(values_path)
    meta = load_matrix(meta_path)
    b = load_matrix(b_path)
    groups = meta.shape[1]
    if meta.shape[0] != values.shape[0]:
        raise BadInput(f"{shown(meta_path)}: meta has {meta.shape[0]} rows but values "
                       f"({shown(values_path)}) has M = {values.shape[0]}")
    if values.shape[1] != 2 * groups:
        raise BadInput(f"{shown(values_path)}: values has {values.shape[1]} columns but meta "
                       f"({shown(meta_path)}) has {groups} groups; values must be M x 2*groups")
    needed = -(-b.shape[0] // GROUP)
    if needed != groups:
        raise BadInput(f"{shown(b_path)}: B has K = {b.shape[0]} rows, which needs ceil(K/4) = "
                       f"{needed} metadata groups, but meta ({shown(meta_path)}) has {groups}")
    _check_range(values, wfmt, values_path)
    _check_range(meta, META_FORMAT, meta_path)   # every code 0..15 is legal (SPEC §3)
    _check_range(b, afmt, b_path)
    return GemmInputs(b=b, values=values, meta=meta)


# -- subcommands ----------------------------------------------------------------

def cmd_verilog(args):
    fields = ACCEL_FIELDS if args.accel else CONFIG_FIELDS
    overrides = parse_overrides(args.set, fields)
    core_overrides = {k: v for k, v in overrides.items() if k in CONFIG_FIELDS}
    config = resolve_config(args.config, core_overrides)   # limits checked: nothing created
    if args.accel:
        config = accel_config(config, {k: v for k, v in overrides.items()
                                       if k not in CONFIG_FIELDS})
    out = check_output_dir(args.out, "--out")
    label = config_label(args.config, core_overrides)
    if args.accel:
        label = "_".join(["accel", label] + [f"{k}{v}" for k, v in overrides.items()
                                             if k not in CONFIG_FIELDS])
    name = module_name(label)
    files = [check_output_file(out / f"{name}{suffix}", "--out")
             for suffix in (".v", ".json")] if out.is_dir() else [out / f"{name}.v",
                                                                   out / f"{name}.json"]

    from sparsecore.hw.emit import emit
    from sparsecore.hw.registry import component_for
    from sparsecore.verif.gemm import _Progress

    created = make_dirs(out)
    try:
        with staging_dir(out, out) as staging, _Progress(
                f"elaborating {name} ({config.multipliers} multipliers)"):
            try:
                manifest = emit(component_for(config), staging, name)
            except OSError as exc:   # name the user's file, not the staging one
                failed = Path(exc.filename or files[0]).name
                raise WriteFailed(out / failed, exc) from None
            publish(*[(staging / path.name, path) for path in files])
    except BaseException:
        remove_empty_dirs(created)
        raise
    print(f"config={label} " + " ".join(f"{k}={v}" for k, v in config.as_dict().items())
          + f" latency={manifest['latency']} verilog={out / manifest['verilog']}"
          f" manifest={out / (name + '.json')}")
    return 0


def accel_config(core, fields):
    """The accelerator around ``core`` with ``fields``; ValueError -> BadInput naming it."""
    try:
        return AccelConfig.of(core, **fields)
    except ValueError as exc:
        option = "--bandwidth" if "load_bytes" in str(exc) and "load_bytes" in fields \
            and len(fields) == 1 else "--set"
        raise BadInput(f"{option}: {_one_line(exc)}") from None


def accel_summary(config_name, config, result, check, codes=False, relu=False):
    """The summary line of a GEMM on the accelerator (SPEC §5: adds load_bytes, bandwidth;
    output codes add codes=1, out= and relu=)."""
    m, n = result.c.shape
    k = result.macs // (m * n)
    words = [f"mode={result.mode}", f"config={config_name}", "accel=1",
             f"weights={config.weights}", f"acts={config.acts}", f"acc_bits={config.acc_bits}",
             f"rows={config.rows}", f"cols={config.cols}", f"groups={config.groups}",
             f"m={m}", f"k={k}", f"n={n}", f"jobs={len(result.jobs)}",
             f"cycles={result.cycles}", f"macs={result.macs}",
             f"utilization={result.utilization:.4f}", f"load_bytes={result.load_bytes}",
             f"bandwidth={config.load_bytes}"]
    if codes:
        words += ["codes=1", f"out={config.out}", f"relu={int(relu)}"]
    if check is not None:
        words.append(f"check={check}")
    return " ".join(words)


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
    out = check_output_file(args.out, "--out")
    waves = gtkw = None
    if args.waves is not None:
        from sparsecore.verif.gemm import wave_formats
        waves = check_output_file(args.waves, "--waves", suffixes=wave_formats())
        gtkw = check_output_file(waves.with_suffix(".gtkw"), "--waves (its .gtkw)")
    stage_options = [o for o, v in (("--bias", args.bias), ("--mult", args.mult),
                                    ("--shift", args.shift)) if v is not None]
    if (stage_options or args.relu or args.out_format) and not args.accel:
        raise BadInput("--bias, --mult, --shift, --relu and --out-format need --accel (the "
                       "output stage runs on the accelerator)")
    if stage_options and len(stage_options) != 3:
        missing = [o for o in ("--bias", "--mult", "--shift") if o not in stage_options]
        raise BadInput(f"{', '.join(missing)} missing: output codes need --bias, --mult and "
                       "--shift (one value per row of A each)")
    if (args.relu or args.out_format) and not stage_options:
        raise BadInput("--relu and --out-format need --bias, --mult and --shift (output codes)")
    if args.out_format is not None:
        try:
            get_format(args.out_format, "acts")
        except ValueError as exc:
            raise BadInput(f"--out-format: {_one_line(exc)}") from None
    check_distinct([("--a", args.a), ("--a-values", args.a_values), ("--a-meta", args.a_meta),
                    ("--b", args.b), ("--bias", args.bias), ("--mult", args.mult),
                    ("--shift", args.shift)],
                   [("--out", args.out), ("--waves", args.waves), ("--waves (its .gtkw)", gtkw)])

    if args.bandwidth is not None and not args.accel:
        raise BadInput("--bandwidth needs --accel (it is the accelerator's load stream width)")
    if args.accel and waves is not None and waves.suffix != ".vcd":
        raise BadInput(f"--waves: {shown(waves)}: the accelerator's waveform is a .vcd")
    if args.accel:
        fields = {"load_bytes": 16 if args.bandwidth is None else args.bandwidth}
        if args.out_format is not None:
            fields["out"] = args.out_format
        config = accel_config(config, fields)

    inputs = read_gemm_inputs(config, args.b, args.a, args.a_values, args.a_meta, args.dense)

    from sparsecore.verif.build import SimulationFailed
    if args.accel:
        return _gemm_on_accel(args, config, inputs, out, waves, gtkw)
    from sparsecore.verif.gemm import run_gemm
    with contextlib.ExitStack() as stack:
        staged = _staged_outputs(stack, (out, waves, gtkw))
        try:
            result = run_gemm(config, a=inputs.a if args.dense else None, values=inputs.values,
                              meta=inputs.meta, b=inputs.b, dense=args.dense,
                              waves=staged.get(waves))
        except OSError as exc:   # the waveform could not be stored (full disk, ...)
            failed = _staged_output(exc, staged, (waves, gtkw))
            if failed is not None:
                raise WriteFailed(failed, exc) from None
            raise
        except (SimulationFailed, RuntimeError) as exc:
            # One line: what happened (a Verilator build failure adds its log's tail after it).
            hint = "" if waves is not None else "; add --waves run.vcd to record its waveform"
            first, _, rest = str(exc).partition("\n")
            print(f"sparsecore gemm: the run on the core failed: {shown(first)}{hint}"
                  + (f"\n{rest}" if rest else ""), file=sys.stderr)
            return 1
        _publish_c(result.c, staged, out, (waves, gtkw))
    mismatch = None
    if args.check:
        mismatch = result.describe_mismatch(_expected(config, inputs, args.dense))
    check = None if not args.check else ("fail" if mismatch else "pass")
    print(gemm_summary(args.config, config, result, check))
    if mismatch:
        hint = "" if waves else "; add --waves run.vcd to see it in a waveform"
        print(f"sparsecore gemm: check failed: {mismatch}{hint}", file=sys.stderr)
        return 1
    return 0


def _staged_outputs(stack, paths):
    """{path: its staged file} (and {folder: its staging folder}) for the outputs among
    ``paths``: they are written into private folders beside their paths and renamed into
    place only after the run (:func:`_publish_c`), so outputs are whole or absent."""
    staged = {}
    for path in paths:
        if path is not None:
            folder = staged.get(path.parent) or stack.enter_context(
                staging_dir(path.parent, path))
            staged[path.parent] = folder
            staged[path] = folder / path.name
    return staged


def _publish_c(c, staged, out, others):
    """Write C into its staged file, then rename every staged output into place."""
    try:
        staged[out].write_bytes(npy_bytes(c))
    except OSError as exc:
        raise WriteFailed(out, exc) from None
    publish(*[(staged[p], p) for p in (out, *others) if p is not None])


def _staged_output(exc, staged, outputs):
    """The user's path among ``outputs`` whose staged file ``exc`` (an OSError) names, or
    None when it names another file."""
    named = {os.path.realpath(name) for name in (exc.filename, exc.filename2) if name}
    for path in outputs:
        if path is not None and os.path.realpath(staged[path]) in named:
            return path
    return None


def _expected(config, inputs, dense):
    from sparsecore.sim import matmul, sparse_matmul
    if dense:
        return matmul(inputs.a, inputs.b, acc_bits=config.acc_bits)
    return sparse_matmul(inputs.values, inputs.meta, inputs.b, acc_bits=config.acc_bits)


def _stage_params(args, geometry, m):
    """(bias, mult, shift) from --bias/--mult/--shift, each M values in its field's range;
    None without them. BadInput names the file."""
    from sparsecore.sim.accel import check_params
    if args.mult is None:
        return None
    paths = {"bias": args.bias, "mult": args.mult, "shift": args.shift}
    arrays = []
    for name, path in paths.items():
        try:
            arr = check_integer_array(read_npy(path), shown(path))
        except ValueError as exc:
            raise BadInput(_one_line(exc)) from None
        if arr.shape != (m,):
            raise BadInput(f"{shown(path)}: expected {m} {name} values (one per row of A), "
                           f"got shape {arr.shape}")
        arrays.append(arr)
    try:
        return check_params(geometry, arrays, m)
    except ValueError as exc:
        name = str(exc).split(":", 1)[0]
        raise BadInput(f"{shown(paths.get(name, args.mult))}: {_one_line(exc)}") from None


def _gemm_on_accel(args, config, inputs, out, waves=None, gtkw=None):
    from sparsecore.hw.accel import model_record
    from sparsecore.sim.accel import column_blocks, expected_codes
    from sparsecore.sim.accel_perf import AccelGeometry
    from sparsecore.verif.accel.run import run_accel_gemm
    from sparsecore.verif.build import SimulationFailed

    m = (inputs.a if inputs.a is not None else inputs.meta).shape[0]
    k, n = inputs.b.shape
    geometry = AccelGeometry.of(model_record(config))
    try:
        column_blocks(geometry, m, n, k, dense=args.dense)
    except ValueError as exc:
        raise BadInput(f"{shown(args.b)}: {_one_line(exc)}") from None
    params = _stage_params(args, geometry, m)
    operands = {"a": inputs.a if args.dense else None,
                "values": None if args.dense else inputs.values,
                "meta": None if args.dense else inputs.meta, "dense": args.dense}
    with contextlib.ExitStack() as stack:
        staged = _staged_outputs(stack, (out, waves, gtkw))
        try:
            result = run_accel_gemm(config, inputs.b, **operands, params=params,
                                    relu=args.relu, waves=staged.get(waves))
        except OSError as exc:   # the waveform could not be stored (full disk, ...)
            if waves is not None and str(staged[waves].parent) in f"{exc.filename}{exc.filename2}":
                raise WriteFailed(waves, exc) from None
            raise
        except (SimulationFailed, RuntimeError) as exc:
            print(f"sparsecore gemm: the run on the accelerator failed: {exc}",
                  file=sys.stderr)
            return 1
        _publish_c(result.c, staged, out, (waves, gtkw))
    mismatch = None
    if args.check:
        expected = (_expected(config, inputs, args.dense) if params is None else
                    expected_codes(geometry, inputs.b, params=params, relu=args.relu,
                                   **operands))
        bad = np.argwhere(result.c != expected)
        if len(bad):
            i, j = (int(x) for x in bad[0])
            mismatch = (f"{len(bad)} of {result.c.size} results differ; first C[{i}, {j}]: "
                        f"accelerator {int(result.c[i, j])}, model {int(expected[i, j])}")
    check = None if not args.check else ("fail" if mismatch else "pass")
    print(accel_summary(args.config, config, result, check, params is not None, args.relu))
    if mismatch:
        print(f"sparsecore gemm: check failed: {mismatch}", file=sys.stderr)
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
            raise BadInput(f"{shown(path)}: the {what} does not exist or is not a regular file")
    png = check_output_file(args.png, "OUT.png")
    check_distinct([("RUN.vcd", args.vcd), ("MANIFEST.json", args.manifest)],
                   [("OUT.png", args.png)])
    try:
        manifest = load_manifest(args.manifest)
    except (ValueError, KeyError) as exc:
        raise BadInput(f"{shown(args.manifest)}: not a manifest ({one_line(exc)})") from None
    with atomic_output(png) as tmp:
        render_png(args.vcd, manifest, tmp)
    print(f"wrote {shown(png)}")
    return 0


# Subcommands whose module parses its own arguments: name -> (module, entry, help).
DELEGATED = {
    "lint": ("sparsecore.verif.lint", "main", "Verilator -Wall lint of every registered design"),
    "bench": ("sparsecore.bench.run", "main",
              "throughput, area, Fmax and speed report (docs/report.md); "
              "'bench model', 'bench speed' and 'bench core' time the numpy model, the "
              "GEMM runner and the core's back-to-back throughput; 'bench accel' the "
              "accelerator's report (docs/accel_report.md); 'bench campaign' the regress "
              "campaign on 1 and 2 Dask workers (docs/campaign_scale.md)"),
    "demo": ("sparsecore.workflow", "main",
             "the seeds' digits workflow on the RTL (docs/workflow.md); 'demo minilm': "
             "all-MiniLM-L6-v2 pruned 2:4 and quantized, on the RTL (docs/minilm.md)"),
    "seeds": ("sparsecore.seeds", "main",
              "WRPN CNN, Apprentice and low-precision LSTM on the RTL (docs/seeds.md)"),
    "formal": ("sparsecore.verif.formal.run", "main",
               "formal proofs of every registered design with SymbiYosys (docs/formal.md)"),
}
DEMO_TOOLS = {"minilm": "sparsecore.minilm"}
BENCH_TOOLS = {"model": "sparsecore.bench.model", "speed": "sparsecore.bench.speed",
               "core": "sparsecore.verif.core.bench", "accel": "sparsecore.bench.accel",
               "campaign": "sparsecore.bench.scale"}


def _lint_files():
    from sparsecore.hw.registry import showcase
    return [f"{name}{suffix}" for name, _ in showcase() for suffix in (".v", ".json")]


def _lint_default():
    from sparsecore.verif.build import build_root
    return build_root() / "lint"


# Delegated verif subcommands that write into a folder (their modules sit below
# safe_io, so the rules are applied here): the folder option, its default (None: nothing
# is written without it), the files written there, and whether the module takes
# ``staged=`` (a context manager: a staging folder whose files are renamed into place
# when it ends). formal writes its one report itself, under a temporary name.
FOLDER_OUTPUTS = {
    "lint": ("--out", _lint_default, _lint_files, True),
    "formal": ("--out", None, lambda: ["formal.md"], False),
}


def _run_with_folder_outputs(name, argv, run):
    """``run(argv)`` with the output folder of ``name`` checked first (the safe_io rules:
    :func:`check_output_files`), created only then, and (when staged) written whole."""
    option, default, files, staged = FOLDER_OUTPUTS[name]
    if any(a in ("-h", "--help") for a in argv):
        return run(argv)
    pick = ArgumentParser(add_help=False)
    pick.add_argument(option, default=None)
    known, _ = pick.parse_known_args(argv)
    folder = getattr(known, option.lstrip("-").replace("-", "_"))
    if folder is None and default is None:
        return run(argv)
    folder = default() if folder is None else folder
    paths = check_output_files(folder, files(), option)
    folder = Path(folder)

    @contextlib.contextmanager
    def stage(_):
        with staging_dir(folder, folder) as staging:
            yield staging
            publish(*[(staging / p.name, p) for p in paths if (staging / p.name).exists()])

    created = make_dirs(folder)
    try:
        return run(argv, staged=stage) if staged else run(argv)
    except BaseException:
        remove_empty_dirs(created)
        raise


def run_delegated(name, argv):
    import importlib

    module, entry, _ = DELEGATED[name]
    if name == "bench" and argv and argv[0] in BENCH_TOOLS:
        module, argv = BENCH_TOOLS[argv[0]], argv[1:]
    if name == "demo" and argv and argv[0] in DEMO_TOOLS:
        module, argv = DEMO_TOOLS[argv[0]], argv[1:]
    elif name == "demo" and "--check" in argv:  # rerun and compare, not a new demo
        module = "sparsecore.demo_check"
    elif name == "seeds" and "--check" in argv:
        module = "sparsecore.seeds_check"
    run = getattr(importlib.import_module(module), entry)
    if name in FOLDER_OUTPUTS:
        return _run_with_folder_outputs(name, argv, run)
    return run(argv)


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
                   help=f"override one field ({', '.join(CONFIG_FIELDS)}; with --accel also "
                        f"{', '.join(k for k in ACCEL_FIELDS if k not in CONFIG_FIELDS)}); "
                        "repeatable")
    v.add_argument("--accel", action="store_true",
                   help="the accelerator around the core (buffers, tile sequencer; "
                        "docs/accel.md) instead of the bare core")
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
    g.add_argument("--accel", action="store_true",
                   help="run on the accelerator (on-chip buffers, hardware tile sequencer, "
                        "docs/accel.md); cycles count every cycle from the command to the "
                        "last result, and the summary adds load_bytes and bandwidth")
    g.add_argument("--bandwidth", type=int, metavar="BYTES_PER_CYCLE",
                   help="with --accel: width of the load stream in bytes per cycle "
                        "(default 16)")
    g.add_argument("--bias", metavar="BIAS.npy",
                   help="with --accel: output codes instead of C: the output stage's bias, "
                        "one per row of A (signed acc_bits); needs --mult and --shift")
    g.add_argument("--mult", metavar="MULT.npy",
                   help="with --accel: the output stage's multiplier per row of A "
                        "(unsigned mult_bits)")
    g.add_argument("--shift", metavar="SHIFT.npy",
                   help="with --accel: the output stage's right shift per row of A "
                        "(unsigned shift_bits)")
    g.add_argument("--relu", action="store_true",
                   help="with output codes: clamp negatives to 0 before clipping")
    g.add_argument("--out-format", metavar="FMT",
                   help=f"with output codes: their format, {', '.join(ACTIVATION_FORMATS)} "
                        "(default: --acts); C.npy then holds the codes' values")
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
    """Run one subcommand; return its exit code (SPEC §5: 0, 2 bad input, 130/143 on
    SIGINT/SIGTERM, 1 anything else), with one line on stderr when it is not 0."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 0
    command = f"sparsecore {argv[0]}" if argv[0] in DELEGATED else "sparsecore"
    with interrupt_handling():
        try:
            if argv[0] in DELEGATED:
                return run_delegated(argv[0], argv[1:])
            args = parser.parse_args(argv)
            command = f"sparsecore {args.command}"
            return args.run(args)
        except BadInput as exc:
            print(f"{command}: error: {one_line(exc)}", file=sys.stderr)
            return 2
        except WriteFailed as exc:
            print(f"{command}: error: {one_line(exc)}", file=sys.stderr)
            return 1
        except ModuleNotFoundError as exc:   # an optional extra (demo, bench) not installed
            print(f"{command}: error: needs the Python package {exc.name!r}, which is not "
                  "installed (make demo / make bench install their extras)", file=sys.stderr)
            return 1
        except OSError as exc:   # anything else the system refused after the checks
            print(f"{command}: error: {one_line(exc)}", file=sys.stderr)
            return 1
        except Exception as exc:   # a defect or a tool's failure: still one line (SPEC §5)
            if os.environ.get(TRACEBACK_ENV):
                raise
            first = next((line for line in str(exc).splitlines() if line.strip()), "")
            print(f"{command}: error: {type(exc).__name__}: {shown(first[:300])} "
                  f"({TRACEBACK_ENV}=1 shows the traceback)", file=sys.stderr)
            return 1
        except Interrupted as exc:
            print(f"{command}: interrupted by {exc}: stopped {exc.stopped} child "
                  f"process{'es' if exc.stopped != 1 else ''}, removed temporary files",
                  file=sys.stderr)
            return exc.exit_code
