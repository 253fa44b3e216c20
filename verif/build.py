"""Build a design once per configuration under Verilator, and run cocotb tests on it.

Typical use from a pytest entry point::

    from sparsecore.verif.build import build, run

    def test_something():
        result = build(MacUnit(MacConfig("int8", "int4")), "mac_int8_int4")
        run(result, "sparsecore.verif.mac.tests", testcase="test_random")

:func:`build` emits ``build/<name>/<name>.v`` and ``<name>.json`` (the manifest,
see :mod:`hw.emit`) and compiles them with cocotb's Verilator runner, skipping
the compile when the Verilog and the build options are unchanged since the last
build in that folder. :func:`run` runs cocotb tests against it and, on failure,
raises :class:`SimulationFailed` with the failing tests, the first mismatch
lines of the log and the command that reruns the test with waves.

Inside a testbench, :func:`testbench_manifest` and :func:`testbench_seed` give
the manifest and the seed that :func:`run` passed in.

Environment variables:
    SPARSECORE_SEED: the seed for a run (default: a fresh random one, logged).
    SPARSECORE_WAVES=1: build with tracing (in ``build/<name>_waves/``) and write
        ``dump.vcd`` in the run folder.
    SPARSECORE_COVERAGE=1: build with Verilator line and toggle coverage (in
        ``build/<name>_cov/``); every passing run leaves its ``coverage.dat`` in
        ``build/<name>_cov/coverage/`` for :mod:`verif.coverage` to merge.
    SPARSECORE_BUILD_DIR: where build folders go (default: ``build/`` in the
        project checkout, else in the current directory).
    SPARSECORE_RUN_TAG: appended to every run folder name (``runs/<run>-<tag>``),
        so that campaign jobs running the same test with different seeds at the
        same time keep apart.
    SPARSECORE_MANIFEST: set by :func:`run` for the testbench (manifest path).
"""

import contextlib
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

# amaranth and hw are imported inside the functions that need them: testbenches
# import this module inside the simulator, where every import costs start-up time.
from sparsecore.verif.toolchain import AMARANTH_WAIVERS, verilator_environment, verilator_version

__all__ = [
    "BuildResult", "RunResult", "SimulationFailed", "build", "run", "build_root",
    "component_for", "testbench_manifest", "testbench_seed", "waves_requested",
    "coverage_requested", "MANIFEST_ENV", "SEED_ENV", "WAVES_ENV", "COVERAGE_ENV",
    "COVERAGE_ARGS",
]

MANIFEST_ENV = "SPARSECORE_MANIFEST"
SEED_ENV = "SPARSECORE_SEED"
WAVES_ENV = "SPARSECORE_WAVES"
COVERAGE_ENV = "SPARSECORE_COVERAGE"
# Toggle coverage of every signal, the wide packed stream ports too (Verilator skips signals
# wider than 256 bits by default).
COVERAGE_ARGS = ("--coverage-line", "--coverage-toggle", "--coverage-max-width", "16384")
COVERAGE_FOLDER = "coverage"   # under a coverage build folder: one .dat per passing run
BUILD_DIR_ENV = "SPARSECORE_BUILD_DIR"
RUN_TAG_ENV = "SPARSECORE_RUN_TAG"
TIMESCALE = ("1ns", "1ps")  # Amaranth's Verilog has no `timescale
MISMATCH_MARK = "MISMATCH"  # testbenches start each mismatch log line with this
# The design's C++ at -O1 instead of Verilator's -Os: it compiles in two thirds of the time
# (a preset core: 3.5 CPU seconds against 5.2) and simulates faster (the default core under
# cocotb: 32,000 against 30,000 cycles/s for the GEMM runner, 156,000 against 132,000 for a
# bare clock loop). -O0 compiles a little faster still but halves the bare loop's speed.
# Whole jobs run on the engine, compiled with its own flags (verif/engine.py).
OPT_FLAGS = ("OPT_FAST=-O1", "OPT_SLOW=-O1")


@dataclass(frozen=True)
class BuildResult:
    """A compiled design. Paths are absolute."""

    name: str
    build_dir: Path        # build/<name>/ (or build/<name>_waves/)
    verilog: Path
    manifest_path: Path
    manifest: dict
    top: str               # Verilog module name = executable name
    waves: bool            # compiled with --trace
    rebuilt: bool          # False when the existing build was reused
    build_seconds: float   # emit + Verilator (+ C++), or just emit when reused
    coverage: bool = False  # compiled with line and toggle coverage
    runtime: Path | None = None  # the cached Verilator runtime objects it links (see _compile)


@dataclass(frozen=True)
class RunResult:
    results_xml: Path
    log: Path
    seed: int
    tests: int
    seconds: float
    waves: Path | None     # the VCD, when recorded


class SimulationFailed(AssertionError):
    """cocotb tests failed; the message says which, the first mismatches and how to rerun."""


def build_root():
    """Absolute folder that holds every build/<name>/."""
    if os.environ.get(BUILD_DIR_ENV):
        return Path(os.environ[BUILD_DIR_ENV]).resolve()
    project = Path(__file__).resolve().parents[1]
    if (project / "pyproject.toml").is_file():
        return project / "build"
    return Path.cwd().resolve() / "build"


def waves_requested():
    return os.environ.get(WAVES_ENV, "") not in ("", "0")


def coverage_requested():
    return os.environ.get(COVERAGE_ENV, "") not in ("", "0")


def component_for(design):
    """A component from a component or a config record (see :mod:`sparsecore.hw.registry`)."""
    from amaranth.lib import wiring

    if isinstance(design, wiring.Component):
        return design
    from sparsecore.hw.registry import component_for as registry_component_for
    return registry_component_for(design)


def build(design, name=None, *, waves=None, build_args=(), root=None, coverage=None,
          transform=None):
    """Emit and compile ``design`` into ``<root>/<name>/``; reuse an identical earlier build.

    Arguments:
        design: a component, or a config that :func:`component_for` turns into one.
        name: folder and Verilog module name; one per configuration
            (e.g. ``"mac_int8_uint4"``); letters, digits and ``_`` only. Default:
            the registry's build name of the config record.
        waves: compile with VCD tracing; default from SPARSECORE_WAVES. A waves
            build lives in ``<name>_waves/`` so it never displaces the fast one.
        build_args: extra Verilator arguments.
        root: the folder of build folders (default :func:`build_root`).
        coverage: compile with line and toggle coverage; default from
            SPARSECORE_COVERAGE. A coverage build lives in ``<name>_cov/``.
        transform: a function from the emitted Verilog text to the Verilog to
            compile (mutation testing: :mod:`verif.mutate`); the build hash
            covers its output.

    Returns a :class:`BuildResult`. The build is skipped when a hash of the
    Verilog, the Verilator version and the build options matches the stamp of
    the last successful build in that folder. Builds of the same folder from
    concurrent processes wait for each other (a file lock).
    """
    from sparsecore.hw.emit import emit

    if name is None:
        from sparsecore.hw.registry import build_name
        name = build_name(design if not hasattr(design, "config") else design.config)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name or ""):
        raise ValueError(f"name must be a Verilog identifier, not {name!r}")
    waves = waves_requested() if waves is None else bool(waves)
    coverage = coverage_requested() if coverage is None else bool(coverage)
    start = time.monotonic()
    folder = (Path(root).resolve() if root else build_root()) / (
        name + ("_cov" if coverage else "") + ("_waves" if waves else ""))
    folder.mkdir(parents=True, exist_ok=True)
    version = verilator_version()
    args = [*(f"-Wno-{w}" for w in AMARANTH_WAIVERS), *build_args,
            *(COVERAGE_ARGS if coverage else ())]
    # Verilator's runtime objects depend on the version, the options and tracing only
    runtime = folder.parent / ".verilator-runtime" / hashlib.sha256(
        json.dumps([version, args, waves, TIMESCALE]).encode()).hexdigest()[:16]

    with _locked(folder / ".lock"):
        manifest = emit(component_for(design), folder, name)
        verilog = folder / manifest["verilog"]
        if transform is not None:
            verilog.write_text(transform(verilog.read_text()))
        stamp = hashlib.sha256(json.dumps(
            [verilog.read_text(), version, args, waves, TIMESCALE, OPT_FLAGS]).encode()
        ).hexdigest()
        stamp_file = folder / ".build-stamp"
        executable = folder / name
        rebuilt = not (executable.is_file() and stamp_file.is_file()
                       and stamp_file.read_text() == stamp)
        if rebuilt:
            stamp_file.unlink(missing_ok=True)
            # coverage of an older Verilog must not merge with the new one's
            shutil.rmtree(folder / COVERAGE_FOLDER, ignore_errors=True)
            _compile(folder, name, verilog, args, waves, runtime)
            stamp_file.write_text(stamp)
    return BuildResult(name=name, build_dir=folder, verilog=verilog,
                       manifest_path=folder / f"{name}.json", manifest=manifest,
                       top=name, waves=waves, rebuilt=rebuilt,
                       build_seconds=time.monotonic() - start, coverage=coverage,
                       runtime=runtime)


def _compile(folder, name, verilog, args, waves, runtime):
    """Verilate and compile; reuse Verilator's design-independent runtime objects.

    verilated.cpp, verilated_vpi.cpp etc. are the same for every design built
    with the same options and are most of the C++ compile time (about 10 of
    13 CPU seconds for a MAC). The first build compiles them and stores them in
    ``runtime`` (``<root>/.verilator-runtime/<key>/``); later builds link those objects
    instead: VM_GLOBAL_FAST/SLOW emptied for make, objects added by -LDFLAGS.
    cocotb's main (``verilator.cpp``) is not among them: it includes the design's
    ``Vtop.h``, so every build compiles it.
    """
    from cocotb_tools.runner import get_runner

    cached = sorted(runtime.glob("*.o")) if runtime.is_dir() else []
    build_args, makeflags = list(args), list(OPT_FLAGS)
    if COVERAGE_ARGS[0] in args:
        # Coverage builds of the cores are C++ files several times the size of the plain
        # build's; unoptimised, they compile several times faster, which outweighs the
        # slower simulation of a suite run.
        makeflags = ["OPT_FAST=-O0", "OPT_SLOW=-O0", "OPT_GLOBAL=-O0"]
    if cached:
        build_args += ["-LDFLAGS", " ".join(map(str, cached))]
        makeflags += ["VM_GLOBAL_FAST=", "VM_GLOBAL_SLOW="]
    log = folder / "build.log"
    with verilator_environment(makeflags):
        try:
            get_runner("verilator").build(
                sources=[verilog], hdl_toplevel=name, build_dir=folder, build_args=build_args,
                timescale=TIMESCALE, waves=waves, log_file=log, always=True)
        except (RuntimeError, SystemExit) as err:
            if cached:  # a damaged cache must not break builds: drop it, build in full
                shutil.rmtree(runtime, ignore_errors=True)
                return _compile(folder, name, verilog, args, waves, runtime)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) \
                if log.is_file() else ""
            raise RuntimeError(f"Verilator build of {name} failed ({err}); "
                               f"see {log}\n{tail}") from err
    if not cached:
        _store_runtime(folder, runtime)


def _store_runtime(folder, runtime):
    classes = (folder / "Vtop_classes.mk").read_text()
    names = []
    for var in ("VM_GLOBAL_FAST", "VM_GLOBAL_SLOW"):
        match = re.search(rf"^{var} \+= \\\n((?:  \S+ \\\n)*)", classes, re.M)
        if match:
            names += match.group(1).replace("\\", " ").split()
    objects = [folder / f"{n}.o" for n in names]
    if not names or not all(o.is_file() for o in objects):
        return  # nothing recognisable to share; every build compiles its own
    runtime.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=runtime.parent))
    try:
        for obj in objects:
            shutil.copy2(obj, staging)
        staging.rename(runtime)  # atomic: readers see all objects or none
    except OSError:
        pass  # another process stored it first, or the disk is full: build without it
    finally:
        shutil.rmtree(staging, ignore_errors=True)   # also when interrupted


def run(build, test_module, testcase=None, *, extra_env=None, waves=None, seed=None,
        run_name=None):
    """Run cocotb tests from ``test_module`` on a :class:`BuildResult`.

    Arguments:
        build: what :func:`build` returned.
        test_module: dotted module name holding the ``@cocotb.test`` functions.
        testcase: name or list of names to run (default: all in the module).
        extra_env: more environment variables for the testbench.
        waves: record ``dump.vcd`` (needs a waves build); default: ``build.waves``.
        seed: integer seed; default SPARSECORE_SEED, else a fresh random one.
        run_name: the run folder under the build folder (default: from module
            and testcase); its ``sim.log`` and ``results.xml`` are kept.

    The testbench gets SPARSECORE_MANIFEST (the manifest path) and
    SPARSECORE_SEED (also cocotb's random seed). Returns a :class:`RunResult`;
    raises :class:`SimulationFailed` when a test fails or the simulator dies.
    On a coverage build, a passing run's ``coverage.dat`` moves to
    ``<build folder>/coverage/<run_name>-<seed>.dat`` (``-1``, ``-2``... added when a run
    of the same name and seed is there already).
    """
    from cocotb_tools.runner import get_runner

    waves = build.waves if waves is None else bool(waves)
    if waves and not build.waves:
        raise ValueError(f"waves need a build with waves=True; {build.name} was built without")
    if seed is None:
        seed = int(os.environ[SEED_ENV]) if os.environ.get(SEED_ENV) else random.getrandbits(31)
    cases = [testcase] if isinstance(testcase, str) else list(testcase or [])
    run_name = run_name or "-".join([test_module.rsplit(".", 1)[-1], *cases])
    if os.environ.get(RUN_TAG_ENV):
        run_name += f"-{os.environ[RUN_TAG_ENV]}"
    test_dir = build.build_dir / "runs" / run_name
    test_dir.mkdir(parents=True, exist_ok=True)
    results_xml = test_dir / "results.xml"
    log = test_dir / "sim.log"
    env = {MANIFEST_ENV: str(build.manifest_path), SEED_ENV: str(seed), **(extra_env or {})}
    runner = get_runner("verilator")
    start = time.monotonic()
    crashed = None
    # The runner lets os.environ override extra_env, so set the variables there.
    with _locked(test_dir / ".lock"), _environ(env):
        results_xml.unlink(missing_ok=True)
        (test_dir / "coverage.dat").unlink(missing_ok=True)
        try:
            runner.test(test_module=test_module, hdl_toplevel=build.top,
                        hdl_toplevel_lang="verilog", build_dir=build.build_dir, test_dir=test_dir,
                        testcase=cases or None, seed=seed, extra_env=env, waves=waves,
                        results_xml=str(results_xml), log_file=log, timescale=TIMESCALE)
        except (RuntimeError, SystemExit) as err:
            # The runner exits when a test failed; the results tell which.
            crashed = err
        tests, failures = _read_results(results_xml)
        if build.coverage and crashed is None and not failures and tests:
            kept = build.build_dir / COVERAGE_FOLDER
            kept.mkdir(exist_ok=True)
            # one file per run: runs of one process with one seed (the GEMM runner's
            # jobs) share a run name, and each must count
            target, again = kept / f"{run_name}-{seed}.dat", 1
            while target.exists():
                target, again = kept / f"{run_name}-{seed}-{again}.dat", again + 1
            (test_dir / "coverage.dat").replace(target)
    seconds = time.monotonic() - start
    if crashed is not None or failures or tests == 0:
        message = _failure_message(build, test_module, seed, log, tests, failures, crashed)
        # stderr: pytest shows it with the failure, and the CLI's stdout keeps only its summary
        print(log.read_text(errors="replace") if log.is_file() else "", file=sys.stderr)
        raise SimulationFailed(message)
    vcd = test_dir / "dump.vcd"
    return RunResult(results_xml=results_xml, log=log, seed=seed, tests=tests,
                     seconds=seconds, waves=vcd if waves and vcd.is_file() else None)


def testbench_manifest():
    """Inside a cocotb test: the manifest of the design under test (from SPARSECORE_MANIFEST)."""
    with open(os.environ[MANIFEST_ENV]) as f:
        return json.load(f)


def testbench_seed():
    """Inside a cocotb test: the run's seed (from SPARSECORE_SEED)."""
    return int(os.environ[SEED_ENV])


@contextlib.contextmanager
def _environ(overrides):
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _locked(path):
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_results(results_xml):
    """(tests, [(name, message)]) from a cocotb xUnit file; (0, []) if there is none."""
    if not results_xml.is_file():
        return 0, []
    tests, failures = 0, []
    for case in ET.parse(results_xml).getroot().iter("testcase"):
        tests += 1
        for bad in (*case.iter("failure"), *case.iter("error")):
            text = bad.get("message") or bad.text or ""
            failures.append((case.get("name"), text.strip()))
    return tests, failures


def _failure_message(build, test_module, seed, log, tests, failures, crashed):
    lines = []
    if failures:
        lines.append(f"{len(failures)} of {tests} cocotb tests failed in {test_module} "
                     f"on {build.name}:")
        lines += [f"  {name}: {msg.splitlines()[0] if msg else '(no message)'}"
                  for name, msg in failures]
    elif tests == 0:
        lines.append(f"no cocotb test results from {test_module} on {build.name} "
                     f"(simulator crashed or no test matched): {crashed}")
    else:
        lines.append(f"simulator failed on {build.name}: {crashed}")
    if log.is_file():
        text = log.read_text(errors="replace").splitlines()
        first = [line.strip() for line in text if MISMATCH_MARK in line][:5]
        if first:
            lines.append("first mismatches:")
            lines += [f"  {line}" for line in first]
    lines.append(f"seed={seed}  log: {log}")
    nodeid = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    target = f"pytest '{nodeid}'" if nodeid else "the same command"
    lines.append(f"rerun with waves: {WAVES_ENV}=1 {SEED_ENV}={seed} {target}")
    return "\n".join(lines)
