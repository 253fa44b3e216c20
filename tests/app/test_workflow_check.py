"""`sparsecore demo --check` against the committed docs/workflow.{json,_nets.npz}.

The committed record must be reproduced by this tree on this machine: integer
inference from the committed networks (codes, predictions, accuracy), the cycles
of the RTL from the performance model, and a short training to the bit. A change
to training or inference that does not regenerate the doc (`make demo`) fails here.
The check must also name the first difference when the record is wrong.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from committed_record import copy_record, edit_json, quiet

from sparsecore.cli import main as cli_main
from sparsecore.demo_check import CheckFailed, check
from sparsecore.nn import load_digits_split
from sparsecore.sim.inference import IntegerLayer, IntegerNetwork
from sparsecore.sim.requant import fixed_point_scale
from sparsecore.verif.stamp import numpy_simd
from sparsecore.workflow_check import load_networks, save_networks, short_training


@pytest.fixture
def record(tmp_path):
    """A copy of the committed record that a test may break."""
    return copy_record(tmp_path, ("workflow.json", "workflow_nets.npz"))


def test_committed_record_reproduces_through_the_cli(record, capsys):
    assert cli_main(["demo", "--check", "--out", str(record)]) == 0  # a copy of docs/
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("check passed")


def test_cli_check_fails_naming_the_difference(record, capsys):
    edit_json(record / "workflow.json",
              lambda info: info["rows"]["int4"]["dense_layer_cycles"].__setitem__(
                  1, info["rows"]["int4"]["dense_layer_cycles"][1] + 1))
    assert cli_main(["demo", "--check", "--out", str(record)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("check FAILED: int4 dense layer 1:") and "the RTL counted" in err


def test_check_names_a_wrong_code_digest(record):
    edit_json(record / "workflow.json",
              lambda info: info["rows"]["int4"]["codes_sha256"].__setitem__(1, "0" * 64))
    with pytest.raises(CheckFailed, match="int4 dense layer 1: output codes differ"):
        check(record, log=quiet)


def test_check_names_a_wrong_prediction(record):
    nets = load_networks(record / "workflow_nets.npz")
    net, pred = nets["int4"]
    pred = pred.copy()
    pred[7] = (pred[7] + 1) % 10
    save_networks(record / "workflow_nets.npz", {k: v[0] for k, v in nets.items()},
                  {k: (pred if k == "int4" else v[1]) for k, v in nets.items()})
    with pytest.raises(CheckFailed, match="int4 dense: prediction of test image 7 is"):
        check(record, log=quiet)


def test_check_names_a_wrong_training_digest(record):
    edit_json(record / "workflow.json",
              lambda info: info["check"]["variants"]["fp32_2x"].__setitem__(
                  "weights_sha256", "0" * 64))
    with pytest.raises(CheckFailed, match="short training: fp32_2x weights_sha256"):
        check(record, log=quiet)


def test_networks_round_trip(tmp_path):
    mult, shift = fixed_point_scale(np.full(4, 0.07))
    layer = IntegerLayer(np.array([[1, 0, -1, 0]] * 4), True, mult, shift,
                         np.array([3, -2, 0, 1]), True, "uint4")
    last = IntegerLayer(np.array([[7, -7, 0, 1], [0, 1, 2, 3]]), False, mult[:2], shift[:2],
                        np.array([0, 5]), False, "int8")
    net = IntegerNetwork("int4", "uint4", 4, 32, 16, 5, (layer, last)).check()
    save_networks(tmp_path / "n.npz", {"v": net}, {"v": np.array([1, 0, 1])})
    (got, pred), = load_networks(tmp_path / "n.npz").values()
    assert got.weights == "int4" and got.act_bits == 4 and got.shift_bits == 5
    for a, b in zip(got.layers, net.layers, strict=True):
        assert (a.sparse, a.relu, a.out) == (b.sparse, b.relu, b.out)
        for field in ("weights", "mult", "shift", "bias"):
            assert np.array_equal(getattr(a, field), getattr(b, field))
    assert pred.tolist() == [1, 0, 1]


def test_training_does_not_depend_on_numpy_simd_or_threads(tmp_path):
    """One epoch of every variant in fresh processes, numpy's SIMD targets off and
    two BLAS threads, gives this process's weights to the bit. (The BLAS kernel is
    varied by `make demo`, which records the runs in docs/workflow.md.)"""
    x_train, y_train, x_test, y_test = load_digits_split()
    want = short_training((x_train, y_train, x_test, y_test), seed=3, epochs=1)
    dispatched = " ".join(numpy_simd()["dispatched"])
    runs = [({"NPY_DISABLE_CPU_FEATURES": dispatched}, 1)] if dispatched else []
    runs.append(({}, 2))
    for env_changes, threads in runs:
        out = tmp_path / "w.npz"
        proc = subprocess.run(
            [sys.executable, "-m", "sparsecore.workflow_check", "exact", "3", "1",
             str(len(y_test)), str(out), str(threads)],
            env={**os.environ, **env_changes}, capture_output=True, text=True, check=True)
        got = json.loads(proc.stdout)
        for name, rec in want.items():
            assert got["variants"][name]["weights_sha256"] == rec["weights_sha256"], (
                name, env_changes, threads)
