"""`sparsecore seeds --check` against the committed docs/seeds.{json,_nets.npz}.

The committed record must be reproduced by this tree on this machine: integer inference
of the first seed's quantized CNN, MLP and LSTM networks from the committed weights
(codes, predictions, accuracy), the cycles of every RTL run from the performance model,
and a short training to the bit. A change to training or inference that does not
regenerate the doc (`make seeds`) fails here. The check must also name the first
difference when the record is wrong.
"""

import json

import numpy as np
import pytest
from committed_record import DOCS, copy_record, edit_json, quiet

from sparsecore.cli import main as cli_main
from sparsecore.seeds import load_nets, save_nets
from sparsecore.seeds_check import CheckFailed, check


@pytest.fixture
def record(tmp_path):
    """A copy of the committed record that a test may break."""
    return copy_record(tmp_path, ("seeds.json", "seeds_nets.npz"))


def _keep_only(folder, key):
    """Cut the record down to one network (the short training stays whole)."""
    nets = load_nets(folder / "seeds_nets.npz")
    kind, name = key.split(":", 1)
    save_nets(folder / "seeds_nets.npz", {(kind, name): nets[(kind, name)]})
    edit_json(folder / "seeds.json", lambda info: info["check"].update(
        nets={key: info["check"]["nets"][key]}))


def test_committed_record_reproduces_through_the_cli(record, capsys):
    assert cli_main(["seeds", "--check", "--out", str(record)]) == 0
    assert "check passed" in capsys.readouterr().err


def test_record_covers_every_kind_and_the_rtl_runs():
    info = json.loads((DOCS / "seeds.json").read_text())
    kinds = {key.split(":")[0] for key in info["check"]["nets"]}
    assert kinds == {"cnn", "mlp", "rnn"}
    ran = [row for rows in info["rows"].values() for row in rows.values()
           if row.get("dense_runs")]
    assert any(row.get("sparse_runs") for row in ran)   # 2:4 variants checked in both modes
    assert info["stamp"]["git"]["commit"] and info["stamp"]["blas"]


def test_check_names_a_wrong_prediction(record):
    key = next(iter(json.loads((record / "seeds.json").read_text())["check"]["nets"]))

    def flip(info):
        pred = info["check"]["nets"][key]["predictions"]
        wrong = str((int(pred[3]) + 1) % 10)
        info["check"]["nets"][key]["predictions"] = pred[:3] + wrong + pred[4:]
    edit_json(record / "seeds.json", flip)
    with pytest.raises(CheckFailed, match=f"{key}: prediction of test image 3"):
        check(record, log=quiet)


def test_check_names_a_wrong_code_digest(record):
    key = next(iter(json.loads((record / "seeds.json").read_text())["check"]["nets"]))
    edit_json(record / "seeds.json",
              lambda info: info["check"]["nets"][key].update(codes_sha256="0" * 64))
    with pytest.raises(CheckFailed, match=f"{key}: output codes differ"):
        check(record, log=quiet)


def test_check_names_wrong_rtl_cycles(record):
    info = json.loads((record / "seeds.json").read_text())
    kind, name = next((k, n) for k, rows in info["rows"].items() for n, row in rows.items()
                      if row.get("sparse_runs"))
    _keep_only(record, f"{kind}:{name}")

    def slower(info):
        info["rows"][kind][name]["sparse_runs"][1][-1] += 1
    edit_json(record / "seeds.json", slower)
    with pytest.raises(CheckFailed, match=f"{kind}:{name} sparse run 1 .* the RTL counted"):
        check(record, log=quiet)


def test_check_names_a_wrong_training_digest(record):
    info = json.loads((record / "seeds.json").read_text())
    _keep_only(record, next(iter(info["check"]["nets"])))
    victim = sorted(info["check"]["short"]["variants"])[-1]
    edit_json(record / "seeds.json", lambda info: info["check"]["short"]["variants"][victim].update(
        weights_sha256="0" * 64))
    with pytest.raises(CheckFailed, match=f"short training: {victim} weights_sha256"):
        check(record, log=quiet)


def test_nets_round_trip(tmp_path):
    nets = load_nets(DOCS / "seeds_nets.npz")
    save_nets(tmp_path / "n.npz", nets)
    again = load_nets(tmp_path / "n.npz")
    assert again.keys() == nets.keys()
    for key, net in nets.items():
        for a, b in zip(net.layers, again[key].layers, strict=True):
            assert np.array_equal(a.weights, b.weights) and a.out == b.out
        if key[0] == "rnn":
            assert np.array_equal(net.table, again[key].table)
