"""``sparsecore`` under hostile input, signals and full disks (SPEC §5), at the command line.

Every case runs the installed console script in a subprocess, in a folder of its own
holding real files, FIFOs, symbolic and hard links. A bad input must give exit 2 and
exactly one stderr line naming the file and the problem, no traceback, and leave every
file in the folder as it was (nothing written, nothing replaced). :data:`CASES` is also
the table in docs/cli.md: ``test_docs_table`` fails when the two differ, and
``SPARSECORE_UPDATE_DOCS=1 pytest tests/app/test_cli_hostile.py -k docs_table``
rewrites the table from what the command prints.

The RTL tests send SIGTERM/SIGINT to a real GEMM while its simulator runs, interrupt a
Verilator build, and fill a small file system (a tmpfs in a private mount namespace).
"""

import dataclasses
import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from sparsecore.hw.registry import showcase
from sparsecore.safe_io import MAX_NPY_ELEMENTS, descendants
from sparsecore.verif.build import build_root

SCRIPT = Path(sys.executable).with_name("sparsecore")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
TABLE_START = "<!-- bad-input table: generated from tests/app/test_cli_hostile.py -->"
TABLE_END = "<!-- end of the bad-input table -->"
UPDATE_DOCS_ENV = "SPARSECORE_UPDATE_DOCS"

A = np.array([[1, 0, -2, 0, 0, 0, 3, 4],
              [0, 5, 0, 0, -6, 0, 0, 0],
              [0, 0, 0, 0, 7, 0, 0, -8]], dtype=np.int8)          # 3 x 8, 2:4
B = (np.arange(16).reshape(8, 2) - 8).astype(np.int8)             # 8 x 2
VALUES = np.array([[1, -2, 3, 4], [5, 0, -6, 0], [0, 0, 7, -8]], dtype=np.int8)
META = np.array([[0b1000, 0b1110], [0b1001, 0b1000], [0b1110, 0b1100]], dtype=np.int8)
LINT_FIRST = showcase()[0][0]   # the first design `lint` writes
GEMM = {"--a": "A.npy", "--b": "B.npy", "--weights": "int8", "--acts": "int8",
        "--config": "tiny", "--out": "C.npy"}


def sparsecore():
    exe = str(SCRIPT) if SCRIPT.exists() else shutil.which("sparsecore")
    assert exe, "the sparsecore console script is not installed"
    return exe


def gemm(**changes):
    """(argv, shown) of the good GEMM with options changed (``a_values="V.npy"`` sets
    --a-values; None drops an option); ``shown`` lists only the changes, for the docs."""
    options = dict(GEMM)
    shown = []
    for key, value in changes.items():
        option = "--" + key.replace("_", "-")
        if value is None:
            options.pop(option, None)
        else:
            options[option] = value
            shown += [option, value]
    argv = ["gemm"] + [x for pair in options.items() for x in pair]
    return argv, "gemm … " + " ".join(shown)


@dataclasses.dataclass
class Case:
    id: str
    what: str                  # the input, as the docs table says it
    command: tuple             # (argv after `sparsecore`, how the docs show it)
    needles: tuple             # the one stderr line contains each
    setup: object = None       # folder -> None: makes the hostile files
    code: int = 2


def write(name, data):
    def setup(folder):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return setup


def save(name, array, **kwargs):
    def setup(folder):
        with open(folder / name, "wb") as f:
            np.save(f, array, **kwargs)
    return setup


def fifo(name):
    def setup(folder):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(folder / name)
    return setup


def symlink(name, target):
    def setup(folder):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, folder / name)
    return setup


def huge_header(folder):
    """A valid .npy header claiming 10^12 int8 elements, followed by 16 bytes."""
    with open(folder / "huge.npy", "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": "|i1", "fortran_order": False,
                                              "shape": (1_000_000, 1_000_000)})
        f.write(bytes(16))


def cut_short(folder):
    with open(folder / "short.npy", "wb") as f:
        np.save(f, A)
    with open(folder / "short.npy", "r+b") as f:
        f.truncate((folder / "short.npy").stat().st_size - 5)


def trailing_bytes(folder):
    with open(folder / "long.npy", "wb") as f:
        np.save(f, A)
        f.write(b"\0" * 8)


def both(*setups):
    def setup(folder):
        for s in setups:
            s(folder)
    return setup


def mkdir(name):
    def setup(folder):
        (folder / name).mkdir(parents=True)
    return setup


CASES = [
    # -- .npy operands ------------------------------------------------------------------
    Case("missing", "a missing operand", gemm(a="nope.npy"), ("nope.npy: no such file",)),
    Case("text", "a text file named .npy", gemm(a="text.npy"),
         ("text.npy: not a valid .npy file",), write("text.npy", b"hello, world\n")),
    Case("empty", "an empty file", gemm(a="empty.npy"), ("empty.npy: not a valid .npy file",),
         write("empty.npy", b"")),
    Case("pickle", "a pickled object array", gemm(a="obj.npy"),
         ("obj.npy: holds Python objects (pickled data), which are never loaded",),
         save("obj.npy", np.array([[1, None]], dtype=object), allow_pickle=True)),
    Case("npz", "an .npz archive", gemm(a="a.npz"), ("a.npz: is an .npz archive",),
         lambda folder: np.savez(folder / "a.npz", a=A)),
    Case("timedelta", "a timedelta64 array", gemm(a="td.npy"),
         ("td.npy: expected an integer array, got dtype timedelta64",),
         save("td.npy", A.astype("m8[s]"))),
    Case("bool", "a bool array", gemm(b="bool.npy"),
         ("bool.npy: expected an integer array, got dtype bool",),
         save("bool.npy", B != 0)),
    Case("float", "a float64 array", gemm(b="f.npy"),
         ("f.npy: expected an integer array, got dtype float64",), save("f.npy", B * 1.0)),
    Case("huge", "a header claiming 10^12 elements", gemm(a="huge.npy"),
         ("huge.npy: shape (1000000, 1000000) has 1000000000000 elements",
          f"limit of {MAX_NPY_ELEMENTS}"), huge_header),
    Case("short", "data cut short of the header's shape", gemm(a="short.npy"),
         ("short.npy: the header's shape (3, 8) of int8 needs 24 bytes", "holds 19"),
         cut_short),
    Case("long", "bytes after the header's data", gemm(a="long.npy"),
         ("long.npy: the header's shape (3, 8) of int8 needs 24 bytes", "holds 32"),
         trailing_bytes),
    Case("fifo-in", "a FIFO as an operand (must not block)", gemm(a="in.fifo"),
         ("in.fifo: is a FIFO, not a .npy file",), fifo("in.fifo")),
    Case("dir-in", "a directory as an operand", gemm(b="dir.npy"),
         ("dir.npy: is a directory, not a .npy file",), mkdir("dir.npy")),
    Case("newline-in", "a missing operand whose name has a newline",
         gemm(a="no\nwhere.npy"), ("no\\nwhere.npy: no such file",)),
    # -- output paths -----------------------------------------------------------------------
    Case("fifo-out", "--out is a FIFO", gemm(out="out.fifo"),
         ("out.fifo: --out is a FIFO; it must be a new file or an existing regular file",),
         fifo("out.fifo")),
    Case("dev-null", "--out is a character device", gemm(out="/dev/null"),
         ("/dev/null: --out is a character device",)),
    Case("link-out", "--out is a symbolic link to a file", gemm(out="link.npy"),
         ("link.npy: --out is a symbolic link; give the file itself",),
         both(write("target.npy", b"keep me"), symlink("link.npy", "target.npy"))),
    Case("dangling-out", "--out is a dangling symbolic link", gemm(out="dangling.npy"),
         ("dangling.npy: --out is a symbolic link",), symlink("dangling.npy", "nowhere.npy")),
    Case("dir-out", "--out is a directory", gemm(out="outdir"),
         ("outdir: --out is a directory",), mkdir("outdir")),
    Case("slash-out", "--out ends in /", gemm(out="newdir/"),
         ("newdir/: --out names a folder (it ends in '/'); give a file name",)),
    Case("newline-out", "--out has a newline in its name", gemm(out="C\n.npy"),
         ("C\\n.npy: --out contains a control character",)),
    Case("nodir-out", "--out in a missing folder", gemm(out="no/C.npy"),
         ("no/C.npy: directory 'no' does not exist",)),
    Case("out-is-a", "--out is --a", gemm(out="A.npy"),
         ("A.npy: --out is the same file as --a A.npy; it would overwrite the input",)),
    Case("out-is-dot-a", "--out is --a spelled ./A.npy", gemm(out="./A.npy"),
         ("./A.npy: --out is the same file as --a A.npy",)),
    Case("out-is-abs-b", "--out is --b by its absolute path", gemm(b="<dir>/B.npy", out="B.npy"),
         ("B.npy: --out is the same file as --b <dir>/B.npy",)),
    Case("out-is-hardlink", "--out is a hard link to --a", gemm(out="hard.npy"),
         ("hard.npy: --out is the same file as --a A.npy",),
         lambda folder: os.link(folder / "A.npy", folder / "hard.npy")),
    Case("a-links-to-out", "--a is a symbolic link to --out", gemm(a="alink.npy", out="C0.npy"),
         ("C0.npy: --out is the same file as --a alink.npy",),
         both(save("C0.npy", A), symlink("alink.npy", "C0.npy"))),
    Case("out-is-values", "--out is --a-values",
         gemm(a=None, a_values="V.npy", a_meta="M.npy", out="V.npy"),
         ("V.npy: --out is the same file as --a-values V.npy",)),
    Case("out-is-meta", "--out is --a-meta",
         gemm(a=None, a_values="V.npy", a_meta="M.npy", out="M.npy"),
         ("M.npy: --out is the same file as --a-meta M.npy",)),
    Case("waves-is-out", "--waves is --out", gemm(out="run.vcd", waves="run.vcd"),
         ("run.vcd: --waves is the same file as --out run.vcd; one would overwrite the other",)),
    Case("gtkw-is-out", "--out is the .gtkw that --waves writes",
         gemm(out="run.gtkw", waves="run.vcd"),
         ("run.gtkw: --waves (its .gtkw) is the same file as --out run.gtkw",)),
    Case("fifo-waves", "--waves is a FIFO", gemm(waves="w.vcd"), ("w.vcd: --waves is a FIFO",),
         fifo("w.vcd")),
    Case("png-waves", "--waves with a suffix that is not a waveform", gemm(waves="w.png"),
         ("w.png: --waves must end in .vcd",)),
    # -- the generator's limits -------------------------------------------------------------
    Case("rows-10000", "a core of 160000 multipliers",
         (["verilog", "--set", "rows=10000", "--out", "v"], "verilog --set rows=10000"),
         ("--set: rows * cols * 2 * groups (the multiplier count) must be at most 1024, "
          "not 160000",)),
    Case("rows-huge", "rows = 10^23 - 1",
         (["verilog", "--set", "rows=99999999999999999999999", "--out", "v"],
          "verilog --set rows=99999999999999999999999"),
         ("--set: rows * cols * 2 * groups (the multiplier count) must be at most 1024",)),
    Case("port-width", "a 16384-bit results port",
         (["verilog", "--config", "tiny", "--set", "rows=16", "--set", "cols=16", "--set",
           "acc_bits=64", "--out", "v"], "verilog --config tiny --set rows=16 --set cols=16 "
                                         "--set acc_bits=64"),
         ("the results port would be 16384 bits wide; the widest port must be at most 8192",)),
    Case("verilog-fifo", "a FIFO where `verilog` writes its .v",
         (["verilog", "--config", "tiny", "--out", "v"], "verilog --config tiny --out v"),
         ("v/sparsecore_tiny.v: --out is a FIFO",), fifo("v/sparsecore_tiny.v")),
    Case("verilog-link", "a symbolic link where `verilog` writes its .json",
         (["verilog", "--config", "tiny", "--out", "v"], "verilog --config tiny --out v"),
         ("v/sparsecore_tiny.json: --out is a symbolic link",),
         both(mkdir("v"), symlink("v/sparsecore_tiny.json", "../A.npy"))),
    Case("verilog-file", "`verilog --out` is a file",
         (["verilog", "--out", "A.npy"], "verilog --out A.npy"),
         ("A.npy: --out must be a folder, but it is a regular file",)),
    # -- the other subcommands that write files ------------------------------------------
    Case("png-fifo", "`waves png` into a FIFO",
         (["waves", "png", "run.vcd", "m.json", "out.png"], "waves png run.vcd m.json out.png"),
         ("out.png: OUT.png is a FIFO",),
         both(write("run.vcd", b""), write("m.json", b"{}"), fifo("out.png"))),
    Case("png-is-vcd", "`waves png` over its own VCD",
         (["waves", "png", "run.vcd", "m.json", "./run.vcd"], "waves png run.vcd m.json ./run.vcd"),
         ("./run.vcd: OUT.png is the same file as RUN.vcd run.vcd",),
         both(write("run.vcd", b""), write("m.json", b"{}"))),
    Case("demo-fifo", "`waves demo` where demo.vcd is a FIFO",
         (["waves", "demo", "--out", "wd"], "waves demo --out wd"),
         ("wd/demo.vcd: --out (its demo.vcd) is a FIFO",), fifo("wd/demo.vcd")),
    Case("demo-png", "`waves demo --png` over the demo's VCD",
         (["waves", "demo", "--out", "wd", "--png", "wd/demo.vcd"],
          "waves demo --out wd --png wd/demo.vcd"),
         ("wd/demo.vcd: --png is the same file as --out (its demo.vcd) wd/demo.vcd",)),
    Case("bench-link", "`bench` where report.md is a symbolic link",
         (["bench", "--out", "r"], "bench --out r"),
         ("r/report.md: --out (its report.md) is a symbolic link",),
         symlink("r/report.md", "../A.npy")),
    Case("demo-dir", "`demo` where workflow.png is a directory",
         (["demo", "--out", "d"], "demo --out d"),
         ("d/workflow.png: --out (its workflow.png) is a directory",), mkdir("d/workflow.png")),
    Case("demo-out-fifo", "`demo --out` is a FIFO", (["demo", "--out", "d.fifo"],
                                                    "demo --out d.fifo"),
         ("d.fifo: --out must be a folder, but it is a FIFO",), fifo("d.fifo")),
    Case("lint-fifo", "`lint` where a design's .v is a FIFO",
         (["lint", "--out", "l"], "lint --out l"),
         (f"l/{LINT_FIRST}.v: --out (its {LINT_FIRST}.v) is a FIFO",),
         fifo(f"l/{LINT_FIRST}.v")),
    Case("lint-file", "`lint --out` is a file", (["lint", "--out", "A.npy"], "lint --out A.npy"),
         ("A.npy: --out must be a folder, but it is a regular file",)),
    Case("lint-newline", "`lint --out` has a newline in its name",
         (["lint", "--out", "l\nx"], "lint --out l\nx"),
         ("l\\nx: --out contains a control character",)),
    Case("formal-link", "`formal` where formal.md is a symbolic link",
         (["formal", "--out", "f"], "formal --out f"),
         ("f/formal.md: --out (its formal.md) is a symbolic link",),
         symlink("f/formal.md", "../A.npy")),
    Case("seeds-fifo", "`seeds` where seeds.png is a FIFO", (["seeds", "--out", "s"],
                                                           "seeds --out s"),
         ("s/seeds.png: --out (its seeds.png) is a FIFO",), fifo("s/seeds.png")),
    Case("seeds-cache-link", "`seeds --cache` is a symbolic link",
         (["seeds", "--out", "s", "--cache", "c.pkl"], "seeds --out s --cache c.pkl"),
         ("c.pkl: --cache is a symbolic link",), symlink("c.pkl", "A.npy")),
    Case("seeds-cache-is-out", "`seeds --cache` is one of its reports",
         (["seeds", "--out", "s", "--cache", "./s/seeds.json"],
          "seeds --out s --cache ./s/seeds.json"),
         ("s/seeds.json: --cache is the same file as --out (its seeds.json) s/seeds.json",)),
    Case("minilm-dir", "`demo minilm` where minilm.md is a directory",
         (["demo", "minilm", "--out", "m"], "demo minilm --out m"),
         ("m/minilm.md: --out (its minilm.md) is a directory",), mkdir("m/minilm.md")),
    Case("minilm-sentences-out", "`demo minilm --sentences` is its own report",
         (["demo", "minilm", "--out", "m", "--sentences", "m/minilm.md"],
          "demo minilm --out m --sentences m/minilm.md"),
         ("m/minilm.md: --out (its minilm.md) is the same file as --sentences m/minilm.md",),
         write("m/minilm.md", b"a sentence\n")),
    Case("bench-accel-fifo", "`bench accel` where accel_report.json is a FIFO",
         (["bench", "accel", "--out", "b"], "bench accel --out b"),
         ("b/accel_report.json: --out (its accel_report.json) is a FIFO",),
         fifo("b/accel_report.json")),
    Case("regress-json-dev", "`regress --json` is a character device",
         (["regress", "--json", "/dev/null"], "regress --json /dev/null"),
         ("/dev/null: --json is a character device",)),
    Case("coverage-file", "`coverage --out` is a file",
         (["coverage", "--out", "A.npy"], "coverage --out A.npy"),
         ("A.npy: --out must be a folder, but it is a regular file",)),
    Case("mutate-link", "`mutate` where mutation.md is a symbolic link",
         (["mutate", "--out", "mu"], "mutate --out mu"),
         ("mu/mutation.md: --out (its mutation.md) is a symbolic link",),
         symlink("mu/mutation.md", "../A.npy")),
]


def snapshot(folder):
    """Every entry under ``folder``: kind, link target, bytes of regular files."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[str(path.relative_to(folder))] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                found[str(path.relative_to(folder))] = ("file", path.read_bytes())
            else:
                found[str(path.relative_to(folder))] = ("other", stat.S_IFMT(st.st_mode))
    return found


def make_workspace(folder):
    for name, array in (("A.npy", A), ("B.npy", B), ("V.npy", VALUES), ("M.npy", META)):
        np.save(folder / name, array)


@dataclasses.dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    before: dict
    after: dict
    folder: Path


def run_case(case, folder):
    folder.mkdir()
    make_workspace(folder)
    if case.setup:
        case.setup(folder)
    argv = [a.replace("<dir>", str(folder)) for a in case.command[0]]
    before = snapshot(folder)
    proc = subprocess.run([sparsecore(), *argv], cwd=folder, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    return Outcome(proc.returncode, proc.stdout, proc.stderr.replace(str(folder), "<dir>"),
                   before, snapshot(folder), folder)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case run once (a few at a time: each is a short-lived process)."""
    root = tmp_path_factory.mktemp("hostile")
    dev_null = os.stat("/dev/null")
    with ThreadPoolExecutor(4) as pool:
        futures = {case.id: pool.submit(run_case, case, root / case.id) for case in CASES}
        results = {key: future.result() for key, future in futures.items()}
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == dev_null.st_rdev
    return results


# One worker runs every case (make test: --dist loadgroup); split over workers, each
# would run the whole module fixture.
@pytest.mark.xdist_group("cli_hostile_cases")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(outcomes, case):
    """Exit 2, one stderr line naming the file and the problem, no traceback, and every
    file as it was: nothing written, no FIFO, link or input replaced."""
    got = outcomes[case.id]
    assert got.code == case.code, (got.code, got.stderr)
    lines = got.stderr.splitlines()
    assert len(lines) == 1, got.stderr
    assert "Traceback" not in got.stderr
    for needle in case.needles:
        assert needle in lines[0], (needle, lines[0])
    assert got.stdout == ""
    assert got.after == got.before, "a bad input changed the folder"


def render_table(outcomes):
    rows = ["| input | command | exit | stderr (one line) |", "|---|---|---|---|"]
    for case in CASES:
        got = outcomes[case.id]
        line = got.stderr.strip().replace("|", "\\|")
        command = case.command[1].replace("\n", "\\n")
        rows.append(f"| {case.what} | `sparsecore {command}` | {got.code} | `{line}` |")
    return "\n".join(rows)


def test_docs_table(outcomes):
    """docs/cli.md holds exactly what the command prints for every case of CASES."""
    text = DOCS.read_text()
    assert TABLE_START in text and TABLE_END in text, f"{DOCS} lacks the table markers"
    head, rest = text.split(TABLE_START)
    _, tail = rest.split(TABLE_END)
    table = render_table(outcomes)
    if os.environ.get(UPDATE_DOCS_ENV):
        DOCS.write_text(f"{head}{TABLE_START}\n{table}\n{TABLE_END}{tail}")
        return
    documented = rest.split(TABLE_END)[0].strip()
    assert documented == table, (f"docs/cli.md's bad-input table is out of date; rerun with "
                                 f"{UPDATE_DOCS_ENV}=1 and review the diff")


# -- on the RTL: signals, interrupted builds, full disks -------------------------------------

BUILDERS = ("make", "perl", "verilator_bin", "cc1plus", "g++", "c++", "as", "ld", "collect2")


def big_operands(folder, n=32, k=262144, n_cols=None):
    """A sparse n x k x n GEMM (n x k x n_cols): about 17 million cycles on the tiny core,
    so that it is still running when the signal comes even on an idle machine (the engine
    does millions of cycles a second there)."""
    rng = np.random.default_rng(11)
    a = rng.integers(-128, 128, size=(n, k)).astype(np.int8)
    a.reshape(n, -1, 4)[:, :, 2:] = 0            # 2:4: positions 0 and 1 of each group
    np.save(folder / "A.npy", a)
    np.save(folder / "B.npy", rng.integers(-128, 128, size=(k, n_cols or n)).astype(np.int8))


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def exe_path(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def exe_name(pid):
    return Path(exe_path(pid)).name


def start(folder, argv, env=None):
    return subprocess.Popen([sparsecore(), *argv], cwd=folder, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})}, start_new_session=True)


def interrupt(proc, sig, watched):
    """Send ``sig`` to the command only (not its group); check that it stopped every
    process in ``watched`` and said so on one line."""
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    assert "Traceback" not in err
    # progress lines ("sparsecore: ...") may come before; the command's own line is one
    own = [line for line in err.splitlines() if not line.startswith("sparsecore: ")]
    assert len(own) == 1, err
    assert f"interrupted by {signal.Signals(sig).name}" in own[0], own[0]
    time.sleep(0.2)
    survivors = [pid for pid in watched if alive(pid)]
    assert not survivors, f"child processes survived: {survivors}"
    return out, err


# The accelerator runs on the engine too; 512 x 1536 x 256 is 8 jobs, 12.7 million cycles
# (about 10 s on an idle machine), so that it is still running when the signal comes.
ACCEL = ["--accel", "--bandwidth", "4"]


# One signal per path: the handler is the same for both (safe_io.interrupt_handling).
@pytest.mark.parametrize("sig, extra", [(signal.SIGTERM, []),
                                        (signal.SIGINT, ["--waves", "run.vcd"]),
                                        (signal.SIGTERM, ACCEL)],
                         ids=["SIGTERM", "SIGINT-waves", "SIGTERM-accel"])
def test_signal_stops_simulator_and_cleans_up(tmp_path, sig, extra):
    """A signal while the simulator runs (the engine, the tracing engine, the accelerator
    on the engine): 143/130, no simulator left, no job folder, no run folder, no output
    (C, or the VCD being recorded)."""
    if extra == ACCEL:
        big_operands(tmp_path, n=512, k=1536, n_cols=256)
    else:
        big_operands(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    argv = [x for pair in GEMM.items() for x in pair] + extra
    proc = start(tmp_path, ["gemm", *argv], env={"TMPDIR": str(tmp)})
    try:
        # the simulator: a child whose executable lives in a build folder (the engine or
        # the cocotb runner's model; compilers do not), once its job files exist
        root = str(build_root())
        sim = wait_for(lambda: list(tmp.iterdir()) and [
            p for p in descendants(proc.pid) if exe_path(p).startswith(root)], 600,
            "the simulator to start")
        time.sleep(0.5)
        watched = descendants(proc.pid)
        assert set(sim) <= set(watched)
        interrupt(proc, sig, watched)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert list(tmp.iterdir()) == [], "temporary files left behind"
    runs = list(build_root().glob(f"*/runs/*-{proc.pid}-*"))
    assert runs == [], f"run folders left behind: {runs}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A.npy", "B.npy", "tmp"], \
        "an interrupted run wrote (part of) an output"


def test_interrupted_build_rebuilds_cleanly(tmp_path):
    """SIGTERM during the Verilator build stops make and the compilers; the next run
    builds again (no stamp of a half build) and is bit-exact."""
    root = tmp_path / "build"
    root.mkdir()
    runtime = build_root() / ".verilator-runtime"
    if runtime.is_dir():   # the design-independent objects: the build is then seconds
        shutil.copytree(runtime, root / ".verilator-runtime")
    env = {"SPARSECORE_BUILD_DIR": str(root)}
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "B.npy", B)
    argv = ["gemm", *[x for pair in GEMM.items() for x in pair], "--check"]
    proc = start(tmp_path, argv, env)
    try:
        wait_for(lambda: any(exe_name(p) in BUILDERS for p in descendants(proc.pid)), 300,
                 "the build to start")
        time.sleep(0.3)
        interrupt(proc, signal.SIGTERM, descendants(proc.pid))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (tmp_path / "C.npy").exists()
    assert not (root / "core_tiny" / ".build-stamp").exists(), "a half build was stamped"
    again = subprocess.run([sparsecore(), *argv], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, **env}, timeout=900)
    assert again.returncode == 0, again.stderr
    assert "check=pass" in again.stdout
    assert np.array_equal(np.load(tmp_path / "C.npy"), A.astype(np.int64) @ B)


def _unshare_works():
    try:
        return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_on_small_disk(folder, argv, kib):
    """Run the command with ``folder/disk`` a ``kib`` KiB tmpfs (a private mount namespace,
    no privileges needed); return the process and what the tmpfs held afterwards."""
    disk = folder / "disk"
    disk.mkdir()
    script = ('mount -t tmpfs -o size="$1"k tmpfs "$2" || exit 99; shift 2; "$@"; rc=$?; '
              'ls -A "$OLDPWD_DISK" > listing; exit $rc')
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh",
         str(kib), str(disk), sparsecore(), *argv],
        cwd=folder, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OLDPWD_DISK": str(disk)})
    if proc.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    return proc, (folder / "listing").read_text().split()


needs_unshare = pytest.mark.skipif(not _unshare_works(),
                                   reason="unshare --user --mount is not available")


@needs_unshare
def test_full_disk_out(tmp_path):
    """C does not fit: exit 1, one line naming --out, nothing left on the disk."""
    rng = np.random.default_rng(3)
    np.save(tmp_path / "A.npy", rng.integers(-8, 8, size=(40, 4)).astype(np.int8) *
            np.array([1, 1, 0, 0], dtype=np.int8))
    np.save(tmp_path / "B.npy", rng.integers(-8, 8, size=(4, 40)).astype(np.int8))
    argv = ["gemm", *[x for pair in GEMM.items() for x in pair]]
    argv[argv.index("--out") + 1] = "disk/C.npy"          # 40 x 40 int64: 12.5 KiB
    proc, listing = run_on_small_disk(tmp_path, argv, 8)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("sparsecore: ")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "disk/C.npy: cannot write it (No space left on device)" in lines[0], lines[0]
    assert listing == [], f"partial files on the full disk: {listing}"


def _environ(pid):
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def waves_engine_processes(mark):
    """Live processes running the tiny core's tracing engine (a hung one would stay)
    that this test started: their environment carries ``mark`` (other pytest workers
    run the same engine at the same time)."""
    engine = str(build_root() / "core_tiny_engine_waves" / "obj" / "engine")
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and exe_path(p) == engine
            and alive(p) and mark.encode() in _environ(p)]


@pytest.fixture
def mark(monkeypatch):
    """A tag for this test's commands: their run folders end with it (SPARSECORE_RUN_TAG)
    and their processes carry it in their environment."""
    tag = f"hostile{os.getpid()}x{time.monotonic_ns()}"
    monkeypatch.setenv("SPARSECORE_RUN_TAG", tag)
    return tag


def run_folders(mark):
    """This test's run folders of the tiny core (other workers make their own)."""
    return {p for p in build_root().glob("core_tiny*/runs/*") if mark in p.name}


def assert_write_failed(proc, path, reason):
    """Exit 1, one line (besides progress lines) naming ``path`` and ``reason``."""
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("sparsecore: ")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{path}: cannot write it ({reason}); nothing was written there" in lines[0], \
        lines[0]


@needs_unshare
def test_full_disk_waves(tmp_path, mark):
    """The VCD does not fit: exit 1 naming --waves, within the timeout (the engine used
    to hang in Verilator's own error path); no VCD, no .gtkw, and no C either (outputs
    are written whole or not at all), no run folder and no simulator left."""
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "B.npy", B)
    argv = ["gemm", *[x for pair in GEMM.items() for x in pair], "--waves", "disk/run.vcd"]
    runs = run_folders(mark)
    proc, listing = run_on_small_disk(tmp_path, argv, 8)   # the VCD is about 23 KiB
    assert_write_failed(proc, "disk/run.vcd", "No space left on device")
    assert listing == [], f"partial files on the full disk: {listing}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A.npy", "B.npy", "disk", "listing"]
    assert run_folders(mark) == runs, "a run folder was left behind"
    assert waves_engine_processes(mark) == []


def limit_file_size(size):
    """A preexec_fn: files of the command's process tree may not grow past ``size`` bytes
    (RLIMIT_FSIZE; no privileges needed). Python ignores SIGXFSZ, so its writes fail with
    EFBIG; the engine simulator ignores it too."""
    import resource

    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return preexec


def test_file_size_limit_waves(tmp_path, mark):
    """The same failure as a full disk where no tmpfs can be mounted: a VCD larger than
    the file size limit. First a run without the limit (into a folder whose name has a
    space): the VCD, its .gtkw and C are written. Then, under a limit of half that VCD:
    exit 1 naming the VCD (EFBIG), nothing written, no staging folder, no simulator left."""
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "B.npy", B)
    (tmp_path / "good run").mkdir()
    argv = ["gemm", *[x for pair in GEMM.items() for x in pair]]
    good = subprocess.run([sparsecore(), *argv, "--waves", "good run/run.vcd", "--check"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert good.returncode == 0, good.stderr
    vcd = tmp_path / "good run" / "run.vcd"
    assert sorted(p.name for p in vcd.parent.iterdir()) == ["run.gtkw", "run.vcd"]
    assert "$enddefinitions" in vcd.read_text(), "the first run wrote no VCD"
    size = vcd.stat().st_size
    assert (tmp_path / "C.npy").exists()
    (tmp_path / "C.npy").unlink()
    shutil.rmtree(vcd.parent)

    runs = run_folders(mark)
    proc = subprocess.run([sparsecore(), *argv, "--waves", "run.vcd"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=limit_file_size(size // 2))
    assert_write_failed(proc, "run.vcd", os.strerror(errno.EFBIG))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A.npy", "B.npy"], \
        "a failed VCD write left files behind"
    assert run_folders(mark) == runs, "a run folder was left behind"
    assert waves_engine_processes(mark) == []
