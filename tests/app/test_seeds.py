"""sparsecore.seeds' report: targets judged from per-seed accuracies and RTL rows, and the
markdown, JSON-ready rows and plot written without error (no training, no RTL here)."""

import numpy as np

from sparsecore.seeds import (
    CNN_RECIPES,
    MLP_RECIPES,
    RNN_RECIPES,
    evaluate,
    plot,
    write_markdown,
)
from sparsecore.verif.stamp import collect


def _runs(seeds=5, gain=3.0):
    """Per-seed accuracies: every variant 0.95 +- noise; plain 1x students 3 points lower,
    distilled ones ``gain`` points above them."""
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(seeds):
        run = {}
        for kind, recipes in (("cnn", CNN_RECIPES), ("mlp", MLP_RECIPES),
                              ("rnn", RNN_RECIPES)):
            run[kind] = {}
            for r in recipes:
                acc = 0.95 + rng.normal(0, 0.002)
                plain = r.name in ("ternary", "int4", "ternary_scratch", "mlp12_ternary",
                                   "mlp12_int4", "mlp12_ternary_scratch", "rnn_ternary",
                                   "rnn_int4")
                if plain or "apprentice" in r.name:
                    acc -= 0.03
                if "apprentice" in r.name:
                    acc += gain / 100
                run[kind][r.name] = acc
        runs.append(run)
    return runs


RTL = {"ternary_2x_2to4": {"dense_cycles": 400.0, "sparse_cycles": 208.0,
                           "codes_compared": 1000, "rtl_images": 8},
       "rnn_ternary_4x_2to4": {"dense_cycles": 3000.0, "sparse_cycles": 1560.0,
                               "codes_compared": 500, "rtl_images": 4}}


def test_targets_from_the_numbers():
    rows, targets = evaluate(_runs(gain=3.0), RTL)
    by_text = {text: met for text, met, _ in targets}
    apprentice = [met for text, met in by_text.items() if text.startswith("Apprentice: ")]
    assert apprentice and all(apprentice)
    assert by_text["CNN 2:4 variants run in <= 0.55x dense cycles"]
    assert by_text["RNN 2:4 variants run in <= 0.55x dense cycles"]
    assert by_text["Bit-exact: every RTL output code equals the numpy integer model's"]
    narrow = [met for text, met in by_text.items() if "narrow enough" in text]
    assert narrow == [True, True]
    assert rows["rnn"]["rnn_ternary"]["acts"] == "4-bit signed"
    # no gain: the Apprentice targets fail
    _, targets = evaluate(_runs(gain=0.0), RTL)
    assert not any(met for text, met, _ in targets if text.startswith("Apprentice: "))


def test_report_is_written(tmp_path):
    rows, targets = evaluate(_runs(), RTL)
    stamp = collect(seeds=range(5), git={"commit": "0" * 40, "dirty": False, "changed": []})
    check = {"nets": {"cnn:ternary": {}}, "short": {"seed": 0, "epochs": 1, "images": 400,
                                                    "variants": {"cnn:fp32": {}}},
             "timing": {"reproducible": 3.0, "blas": 2.0}}
    info = {"stamp": stamp, "check": check, "seeds": 5,
            "epochs": {"cnn": 1, "fine": 1, "mlp": 1, "rnn": 1, "rnn_fine": 1},
            "processes": 1, "rtl_images": 8, "rnn_rtl_images": 4,
            "rtl_variants": sorted(RTL), "rtl_cell_tanh": False, "train_images": 10,
            "test_images": 539, "rows": rows, "targets": targets,
            "times": {"training": 1.0, "rtl": 1.0, "per_seed": 1.0, "total": 2.0}}
    write_markdown(tmp_path / "seeds.md", info)
    plot(rows, tmp_path / "seeds.png")
    text = (tmp_path / "seeds.md").read_text()
    assert "| `ternary_2x_2to4` |" in text and "0.520" in text
    assert "## Stamp" in text and "`000000000000` (clean)" in text
    assert "1.50x" in text    # the reproducible training's cost, from the record
    assert (tmp_path / "seeds.png").stat().st_size > 1000
