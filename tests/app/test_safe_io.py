"""sparsecore.safe_io: the header-first .npy reader gives what numpy gives for every valid
file; publishing a write keeps the file mode of a fresh file. (The hostile cases run
through the command in test_cli_hostile.py.)"""

import io
import os

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
