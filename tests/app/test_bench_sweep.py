"""The bench's synthesis sweep as Dask tasks: the same results as the serial path."""

import shutil

import pytest

from sparsecore.bench.run import PROJECT, _lane, run_sweep

pytest.importorskip("dask.distributed")


def _without_timing(results):
    """A sweep's results minus what depends on when and where it ran."""
    return {key: {flow: ({k: v for k, v in counts.items() if k not in ("seconds", "cached")}
                         if isinstance(counts, dict) and flow != "fmax" else counts)
                  for flow, counts in result.items()}
            for key, result in results.items()}


@pytest.fixture
def cache_root(tmp_path):
    # under the checkout: YoWASP's Yosys writes its log beside the cache, and it sees only
    # the folders it maps (the system's temporary folder is not among them)
    root = PROJECT / "build" / "test_bench_sweep" / tmp_path.name
    shutil.rmtree(root, ignore_errors=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_sweep_on_dask_equals_the_serial_sweep(cache_root):
    # a small design, synthesized afresh on both paths (separate caches)
    tasks = {"lane_ternary_uint4": (_lane("ternary", "uint4"), ("gates",))}
    serial = run_sweep(tasks, cache_root / "serial", serial=True)
    on_dask = run_sweep(tasks, cache_root / "dask", jobs=1)
    assert list(on_dask) == list(tasks) == list(serial)
    assert not any(r["gates"]["cached"] for r in (*serial.values(), *on_dask.values()))
    assert _without_timing(on_dask) == _without_timing(serial)
    assert all(r["gates"]["gates"] > 0 for r in serial.values())
    # a rerun finds every design in the cache by its content hash
    again = run_sweep(tasks, cache_root / "dask", serial=True)
    assert all(r["gates"]["cached"] for r in again.values())
    assert _without_timing(again) == _without_timing(serial)
