"""sparsecore.safe_io: the header-first .npy reader gives what numpy gives for every valid
file; publishing a write keeps the file mode of a fresh file. (The hostile cases run
through the command in test_cli_hostile.py.)"""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.lib import format as npy_format

from sparsecore.safe_io import BadInput, read_npy, save_npy


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.int8).reshape(3, 4),
    np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
    np.arange(12, dtype=">i2").reshape(4, 3),
    np.arange(6, dtype=np.uint64).reshape(2, 3) * (2**62),
    np.zeros((0, 5), dtype=np.int16),
    np.array(7, dtype=np.int64),
], ids=["int8", "fortran", "big-endian", "uint64", "empty", "0-d"])
def test_read_npy_equals_np_load(tmp_path, array):
    path = tmp_path / "x.npy"
    np.save(path, array)
    got = read_npy(path)
    want = np.load(path)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)


def test_read_npy_version_2_header(tmp_path):
    array = np.arange(8, dtype=np.int16).reshape(2, 4)
    buffer = io.BytesIO()
    npy_format.write_array(buffer, array, version=(2, 0))
    (tmp_path / "v2.npy").write_bytes(buffer.getvalue())
    assert np.array_equal(read_npy(tmp_path / "v2.npy"), array)


def test_read_npy_limit_is_a_parameter(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 4), dtype=np.int8))
    with pytest.raises(BadInput, match=r"x.npy: shape \(4, 4\) has 16 elements, more than "
                                       r"the limit of 15 per operand"):
        read_npy(tmp_path / "x.npy", max_elements=15)


def test_save_npy_mode_follows_umask(tmp_path):
    old = os.umask(0o027)
    try:
        save_npy(tmp_path / "c.npy", np.ones((2, 2), dtype=np.int64))
    finally:
        os.umask(old)
    assert (tmp_path / "c.npy").stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["c.npy"]   # no temporary left



# Run in a process of its own: stop_children stops every descendant of the caller.
POOL_INTERRUPTED = """
import json, subprocess, time
from sparsecore.safe_io import descendants, worker_pool

started = []
def job(i):
    started.append(i)
    for _ in range(2):            # one simulator after another, as a seeds RTL job does
        subprocess.run(["sleep", "30"])
    return i

begin = time.monotonic()
try:
    with worker_pool(2) as pool:
        futures = [pool.submit(job, i) for i in range(6)]
        while len(descendants()) < 2:
            time.sleep(0.01)
        raise KeyboardInterrupt
except KeyboardInterrupt:
    pass
print(json.dumps({"seconds": time.monotonic() - begin, "started": sorted(started),
                  "cancelled": sum(f.cancelled() for f in futures),
                  "children": len(descendants())}))
"""


def test_worker_pool_stops_its_jobs_on_an_interrupt():
    """An interrupt inside worker_pool: the four queued jobs never start, and the two
    running ones lose each child they start (two in a row each) until they end; all
    within seconds, where a plain ThreadPoolExecutor would run on for 3 x 60 s."""
    proc = subprocess.run([sys.executable, "-c", POOL_INTERRUPTED], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["started"] == [0, 1] and got["cancelled"] == 4, got
    assert got["children"] == 0, got
    assert got["seconds"] < 20, got
