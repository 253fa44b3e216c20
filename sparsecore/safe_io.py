"""The command's guards against hostile input, signals and failed writes (SPEC §5).

- :func:`read_npy` reads a ``.npy`` operand without trusting it: the header
  first (``numpy.lib.format``), then exactly the bytes it announces. A
  non-regular file, a file that is not ``.npy``, an object (pickled) or
  non-integer dtype (``timedelta64`` and ``bool`` included), more than
  :data:`MAX_NPY_ELEMENTS` elements, or a size that disagrees with the header
  is refused before any large allocation.
- :func:`check_output_file` / :func:`check_output_dir`: an output path is a
  new file or an existing regular file. A symbolic link is refused, never
  followed and never replaced (the link's target may be anything, and
  replacing the link would silently cut it). A directory, FIFO, device or
  socket, a name ending in ``/`` and a name with control characters are
  refused too.
- :func:`check_distinct`: no output is the same file as an input or another
  output, however spelled: existing files compare by (device, inode), which
  catches ``./x``, absolute paths, symlinked inputs and hard links; new files
  by their resolved path.
- :func:`atomic_output` and :func:`staging_dir`: every output is written under
  a temporary name beside its final one and renamed into place, so a failed
  write (full disk, ...) leaves the old file or nothing, never a part.
  :class:`WriteFailed` names the user's file.
- :func:`interrupt_handling`: SIGINT and SIGTERM raise :class:`Interrupted`
  (a ``KeyboardInterrupt``) after stopping every child process of the command,
  grandchildren included (the command is their sub-reaper, so a grandchild
  whose parent died is still found). ``finally`` blocks and context managers
  then remove temporary files as the exception unwinds; the command exits
  with 128 + the signal number (130, 143). Jobs on threads run in a
  :func:`worker_pool`, which cancels the queued ones on an interrupt.

All messages are one line: paths are shown with control characters escaped.
"""

import argparse
import contextlib
import ctypes
import io
import json
import math
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

__all__ = ["ArgumentParser", "BadInput", "WriteFailed", "Interrupted", "MAX_NPY_ELEMENTS",
           "shown", "one_line",
           "read_npy", "check_output_file", "check_output_dir", "check_distinct",
           "check_output_files", "atomic_output", "staging_dir", "publish", "npy_bytes", "save_npy",
           "write_text", "write_json", "make_dirs", "remove_empty_dirs",
           "interrupt_handling", "stop_children", "descendants", "worker_pool"]

# One operand at most 2**26 elements (512 MiB as int64, the dtype the model computes in);
# far beyond what the simulated core can multiply in a session, so only a crafted or
# mistaken header meets it.
MAX_NPY_ELEMENTS = 1 << 26
SIGNAL_EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
TERM_GRACE_S = 1.0     # a child's time to exit after SIGTERM before SIGKILL


class BadInput(Exception):
    """An input the command refuses: exit 2 with this one-line message."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with SPEC §5's errors: :class:`BadInput` (one line, exit 2), not a usage
    block."""

    def error(self, message):
        raise BadInput(message)


class WriteFailed(Exception):
    """An output could not be written (exit 1); nothing was left at its path."""

    def __init__(self, path, error):
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        super().__init__(f"{shown(path)}: cannot write it ({reason}); nothing was written there")
        self.path = Path(path)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; the command's children are already stopped."""

    def __init__(self, signum, stopped=0):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.stopped = stopped

    @property
    def exit_code(self):
        return SIGNAL_EXIT_CODES.get(self.signum, 128 + self.signum)


def shown(path):
    """``path`` as text for a one-line message: control characters escaped."""
    text = os.fspath(path)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def one_line(text):
    """Any message as one line (newlines in paths or errors escaped, runs of spaces kept)."""
    return shown(" ".join(str(text).splitlines()))


def _kind(mode):
    for test, name in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "an unknown kind of file"


# -- .npy inputs ----------------------------------------------------------------------------

def read_npy(path, max_elements=MAX_NPY_ELEMENTS):
    """The integer array in the ``.npy`` file ``path``, read without trusting the file.

    Raises :class:`BadInput` naming the file for: a missing or non-regular file, an
    ``.npz`` archive, a file without a valid ``.npy`` header, an object (pickled)
    or non-integer dtype, a negative or oversized shape (more than ``max_elements``),
    and a data size that disagrees with the header.
    """
    name = shown(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise BadInput(f"{name}: no such file") from None
    except OSError as exc:
        raise BadInput(f"{name}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):   # a FIFO would block, a device would never end
        raise BadInput(f"{name}: is {_kind(st.st_mode)}, not a .npy file")
    try:
        with open(path, "rb") as f:
            head = f.read(npy_format.MAGIC_LEN)
            if head.startswith(b"PK\x03\x04"):
                raise BadInput(f"{name}: is an .npz archive; expected a .npy file holding "
                               "one matrix")
            if not head.startswith(npy_format.MAGIC_PREFIX):
                raise BadInput(f"{name}: not a valid .npy file (it does not start with the "
                               ".npy magic string)")
            f.seek(0)
            try:
                version = npy_format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = npy_format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = npy_format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"format version {version[0]}.{version[1]} is not "
                                     "supported (1.0 and 2.0 are)")
            except (ValueError, TypeError, SyntaxError, EOFError) as exc:
                raise BadInput(f"{name}: not a valid .npy file ({one_line(exc)})") from None
            offset = f.tell()
            _check_header(name, shape, dtype, st.st_size - offset, max_elements)
            data = f.read(st.st_size - offset)
    except OSError as exc:
        raise BadInput(f"{name}: cannot read it ({exc.strerror})") from None
    if len(data) != math.prod(shape) * dtype.itemsize:   # the file shrank while we read it
        raise BadInput(f"{name}: truncated while reading it")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _check_header(name, shape, dtype, data_bytes, max_elements):
    if dtype.hasobject:
        raise BadInput(f"{name}: holds Python objects (pickled data), which are never "
                       "loaded; save a plain integer array")
    if dtype.kind not in "iu":   # not bool ('b'), timedelta64 ('m'), structured ('V'), ...
        raise BadInput(f"{name}: expected an integer array, got dtype {dtype}")
    if any(d < 0 for d in shape):
        raise BadInput(f"{name}: not a valid .npy file (negative dimension in shape {shape})")
    size = math.prod(shape)
    if size > max_elements:
        raise BadInput(f"{name}: shape {shape} has {size} elements, more than the limit of "
                       f"{max_elements} per operand")
    needed = size * dtype.itemsize
    if data_bytes != needed:
        raise BadInput(f"{name}: the header's shape {shape} of {dtype} needs {needed} bytes "
                       f"of data, the file holds {data_bytes}")


# -- output paths ---------------------------------------------------------------------------

def check_output_file(path, option, suffixes=None):
    """``path`` as a Path if it may be written (a new file or an existing regular file).

    BadInput, naming the path and what is wrong, for: an empty name, control
    characters, a name ending in ``/``, a symbolic link, anything that is not a
    regular file, a read-only file, a missing or unwritable folder, a suffix not
    in ``suffixes``.
    """
    text = os.fspath(path)
    name = shown(text)
    if not text:
        raise BadInput(f"{option}: the path is empty")
    if not all(c.isprintable() for c in text):
        raise BadInput(f"{name}: {option} contains a control character; give a plain file name")
    if text.endswith(("/", os.sep)) or Path(text).name in ("", ".", ".."):
        raise BadInput(f"{name}: {option} names a folder (it ends in '/'); give a file name")
    p = Path(text)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise BadInput(f"{name}: {option}: a part of the folder path is not a folder") from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise BadInput(f"{name}: {option} is a symbolic link; give the file itself (links "
                           "are neither followed nor replaced)")
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(f"{name}: {option} is {_kind(st.st_mode)}; it must be a new file or "
                           "an existing regular file")
        if not os.access(p, os.W_OK):
            raise BadInput(f"{name}: {option} is a read-only file")
    parent = p.parent
    if not parent.is_dir():
        raise BadInput(f"{name}: directory {shown(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BadInput(f"{name}: directory {shown(parent)!r} is not writable")
    if suffixes and p.suffix not in suffixes:
        raise BadInput(f"{name}: {option} must end in {' or '.join(suffixes)}"
                       + ("" if ".fst" in suffixes else
                          " (FST needs the lz4 headers, which this machine lacks)"))
    return p


def check_output_dir(path, option):
    """``path`` as a Path if it is a folder, or a new one that can be created (not yet)."""
    text = os.fspath(path)
    name = shown(text)
    if not text:
        raise BadInput(f"{option}: the path is empty")
    if not all(c.isprintable() for c in text):
        raise BadInput(f"{name}: {option} contains a control character; give a plain name")
    p = Path(text)
    ancestor = p
    while True:   # the nearest part of the path that exists
        try:
            st = os.stat(ancestor)   # a symlink to a folder is a folder: files go inside it
            break
        except (FileNotFoundError, NotADirectoryError):
            ancestor = ancestor.parent
    if not stat.S_ISDIR(st.st_mode):
        what = (f"it is {_kind(st.st_mode)}" if ancestor == p else
                f"{shown(ancestor)} is {_kind(st.st_mode)}")
        raise BadInput(f"{name}: {option} must be a folder, but {what}")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise BadInput(f"{name}: {option}: {shown(ancestor)} is not writable")
    return p


def check_output_files(folder, names, option):
    """Paths of the files ``names`` a command writes into ``folder`` (checked as
    :func:`check_output_dir` and :func:`check_output_file`; the folder is not created)."""
    folder = check_output_dir(folder, option)
    paths = [folder / name for name in names]
    if folder.is_dir():
        for path in paths:
            check_output_file(path, f"{option} (its {path.name})")
    return paths


def _identity(path):
    try:
        st = os.stat(path)   # follows links: an input linked to an output is the same file
        return ("file", st.st_dev, st.st_ino)
    except OSError:
        return ("path", os.path.realpath(path))


def check_distinct(inputs, outputs):
    """BadInput if an output is an input or another output. Both are lists of (option, path)."""
    seen = [(option, path, _identity(path), "input") for option, path in inputs
            if path is not None]
    for option, path in outputs:
        if path is None:
            continue
        key = _identity(path)
        for other_option, other, other_key, role in seen:
            if key == other_key:
                effect = ("it would overwrite the input" if role == "input" else
                          "one would overwrite the other")
                raise BadInput(f"{shown(path)}: {option} is the same file as {other_option} "
                               f"{shown(other)}; {effect}")
        seen.append((option, path, key, "output"))


def make_dirs(path):
    """Create folder ``path`` and its missing parents; return the ones created (deepest
    last) so that a failed command can remove them again."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def remove_empty_dirs(created):
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()


# -- writing whole or not at all ------------------------------------------------------------

def publish(*moves):
    """Rename finished temporary files onto their paths: ``publish((tmp, path), ...)``.

    Every file is flushed to disk before the first rename, so a full disk stops
    the command before any path changes.
    """
    umask = os.umask(0)
    os.umask(umask)
    for tmp, path in moves:
        try:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~umask)   # mkstemp's 0600 is for the temporary name only
        except OSError as exc:
            raise WriteFailed(path, exc) from None
    for tmp, path in moves:
        try:   # each path was checked before the run; refuse what appeared there since
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                raise WriteFailed(path, f"it became {_kind(st.st_mode)} during the run")
        except FileNotFoundError:
            pass
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise WriteFailed(path, exc) from None


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside ``path`` (same suffix); on success it becomes ``path``.

    On an exception, or a failed write (:class:`WriteFailed`, naming ``path``),
    the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}",
                                   dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise WriteFailed(path, exc) from None
    tmp = Path(tmp)
    try:
        try:
            yield tmp
        except OSError as exc:
            raise WriteFailed(path, exc) from None
        publish((tmp, path))
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def staging_dir(folder, label):
    """A private temporary folder inside ``folder`` (same file system: renames out of it
    are atomic), removed with whatever is left in it."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".sparsecore-", dir=folder))
    except OSError as exc:
        raise WriteFailed(label, exc) from None
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path, text):
    """Write ``text`` to ``path``, whole or not at all."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj):
    """``obj`` as indented JSON (numpy scalars and arrays as plain numbers and lists),
    whole or not at all."""
    def plain(value):
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        raise TypeError(f"not JSON: {value!r}")
    write_text(path, json.dumps(obj, indent=1, default=plain) + "\n")


def npy_bytes(array):
    """``array`` as the bytes of a .npy file. Written with one ``write``, a full disk gives
    ENOSPC (``ndarray.tofile``, which ``np.save`` uses, reports a short count instead)."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def save_npy(path, array):
    """Write ``array`` to exactly ``path`` (no .npy appended), whole or not at all."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(npy_bytes(array))


# -- signals and child processes ------------------------------------------------------------

_PR_SET_CHILD_SUBREAPER = 36
_nesting = 0


def _set_subreaper(on):
    """Make orphaned descendants our children (Linux), so that stop_children finds a
    simulator whose parent (make, a shell, cocotb's runner) was killed first."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)


def _proc_table():
    """{pid: (parent pid, state)} of every process (Linux /proc)."""
    table = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    text = f.read()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()   # the name may hold spaces and ')'
            table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def descendants(pid=None):
    """Live (not zombie) descendants of ``pid`` (default: this process), parents first."""
    pid = os.getpid() if pid is None else pid
    table = _proc_table()
    children = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, queue = [], list(children.get(pid, []))
    while queue:
        child = queue.pop(0)
        if table[child][1] != "Z":
            found.append(child)
        queue.extend(children.get(child, []))
    return found


def _reap():
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def stop_children():
    """SIGTERM every descendant, SIGKILL what is left after TERM_GRACE_S; reap them.
    Returns how many processes were stopped."""
    stopped = set()
    for sig, grace in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, 2.0)):
        pids = descendants()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        stopped.update(pids)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            _reap()
            if not descendants():
                break
            time.sleep(0.02)
    _reap()
    return len(stopped)


@contextlib.contextmanager
def worker_pool(max_workers):
    """A ``ThreadPoolExecutor`` that an interrupt (or any exception in the block) stops.

    Plain, the pool's exit runs every queued job to its end, each starting new
    simulators after :func:`stop_children` ran and with signals ignored: the command
    went on for minutes after SIGTERM. Here queued jobs are cancelled, and on an
    interrupt every child process a still running job starts is stopped until the job
    gives up (its simulator killed, it fails at once).
    """
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=max_workers)
    try:
        yield pool
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        joined = threading.Event()
        threading.Thread(target=lambda: (pool.shutdown(wait=True), joined.set()),
                         daemon=True).start()
        while not joined.wait(0.05):
            stop_children()
        raise
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _on_signal(signum, frame):
    # Later signals wait until this one is handled; children first, so that no child
    # writes into a temporary folder while the unwinding removes it.
    for sig in SIGNAL_EXIT_CODES:
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum, stop_children())


@contextlib.contextmanager
def interrupt_handling():
    """SIGINT/SIGTERM raise :class:`Interrupted` inside this block (main thread only)."""
    try:
        previous = {sig: signal.signal(sig, _on_signal) for sig in SIGNAL_EXIT_CODES}
    except ValueError:   # not the main thread: leave signals alone
        yield
        return
    global _nesting
    _nesting += 1   # `waves demo` runs `gemm` through main(): only the outer one resets
    if _nesting == 1:
        _set_subreaper(True)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _nesting -= 1
        if _nesting == 0:
            _set_subreaper(False)
