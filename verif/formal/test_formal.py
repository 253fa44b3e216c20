"""make test's fast formal subset, and proofs that the proofs can fail.

The subset: the product lanes and the MAC units (all inputs), and the
k-induction proofs of the stream protocol on the output stage and a 2x2 core,
with the core's covers.
Then bugs are planted in the designs' source (one edit each, the real design
otherwise) and the same harnesses must fail on the property that names the bug.
The full set, with the layer and the tiny core's values, is ``make formal``.
"""

import contextlib
import importlib
import types

import pytest

from sparsecore.verif.formal.proofs import NO_HARNESS_YET, proofs, unproven_designs
from sparsecore.verif.formal.run import run_proof
from sparsecore.verif.formal.sby import toolchain_env

ALL = {p.name: p for p in proofs()}
FAST = {name: p for name, p in ALL.items() if p.fast}


@pytest.fixture(scope="module")
def formal_env(tmp_path_factory):
    build = tmp_path_factory.mktemp("formal")
    return build, toolchain_env(str(build / "bin"))


@pytest.mark.parametrize("name", sorted(FAST))
def test_fast_proof(name, formal_env):
    build, env = formal_env
    proof = FAST[name]
    tasks = None if name == "stream_core_2x2_g1" else {"prove"}
    outcome = run_proof(proof, build, env, tasks=tasks)
    for task, result in outcome.results.items():
        assert result.status == "PASS", (
            f"{name} {task}: {result.status}, failed {result.failed}; "
            f"log {result.workdir / 'logfile.txt'}\n{result.log_tail}")
    assert outcome.harness.properties, "a proof without properties proves nothing"
    for name_ in outcome.harness.properties:
        assert outcome.property_status(name_).startswith("proven"), name_
    if "cover" in outcome.results:
        unreached = [c for c in outcome.harness.covers
                     if not outcome.cover_status(c).startswith("reached at step")]
        assert not unreached


def test_every_registered_design_has_a_proof():
    """Every design of hw/registry.py has a harness, but for the listed, reasoned waivers;
    a waiver for a design that has a harness (or is not registered) is stale."""
    unproven = set(unproven_designs())
    assert unproven <= set(NO_HARNESS_YET), (
        f"designs in hw/registry.py without a formal harness: "
        f"{sorted(unproven - set(NO_HARNESS_YET))}; add one to verif/formal/proofs.py")
    assert set(NO_HARNESS_YET) <= unproven, (
        f"stale waivers in NO_HARNESS_YET: {sorted(set(NO_HARNESS_YET) - unproven)}")


@contextlib.contextmanager
def planted_bug(module_name, owner, attribute, old, new):
    """``owner.attribute`` (a class's method or a module function) of ``module_name``
    replaced by its twin compiled from the module's source with ``old`` -> ``new``."""
    module = importlib.import_module(module_name)
    source = open(module.__file__).read()
    assert source.count(old) == 1, f"the bug site {old!r} is not once in {module_name}"
    mutant = types.ModuleType(f"{module_name}_mutant")
    mutant.__file__ = module.__file__
    exec(compile(source.replace(old, new), module.__file__, "exec"), mutant.__dict__)
    target = getattr(module, owner) if owner else module
    original = getattr(target, attribute)
    replacement = getattr(getattr(mutant, owner) if owner else mutant, attribute)
    setattr(target, attribute, replacement)
    try:
        yield
    finally:
        setattr(target, attribute, original)


BUGS = [
    # results register emptied whenever ready is low: valid dropped before ready
    ("stream_core_2x2_g1", "sparsecore.hw.core", "SparseTensorCore", "elaborate",
     "with m.Elif(res.ready):\n                m.d.sync += res_valid[i].eq(0)",
     "with m.Elif(~res.ready):\n                m.d.sync += res_valid[i].eq(0)",
     "results.valid_held"),
    # the output stage's pipeline ignores a stalled output: beats overwritten
    ("stream_output_stage", "sparsecore.hw.output_stage", "OutputStage", "elaborate",
     "advance.eq(~self.o.valid | self.o.ready)", "advance.eq(1)",
     "o.valid_held"),
    # a ternary lane that reads the reserved code 0b10 as -1
    ("lanes", "sparsecore.hw.lanes", None, "product",
     "value = Mux(w_code[0], Mux(w_code[1], -a, a), 0)",
     "value = Mux(w_code[0] | w_code[1], Mux(w_code[1], -a, a), 0)",
     "lane_ternary_int8.exact"),
    # accumulate ignored: every tile starts from zero
    ("core_values_ternary", "sparsecore.hw.core", "SparseTensorCore", "elaborate",
     "s1_fresh[i].eq(first & ~w_in.p.accumulate)", "s1_fresh[i].eq(first)",
     ("results.exact", "lemma.acc_")),
]


@pytest.mark.parametrize("bug", BUGS, ids=[b[0] for b in BUGS])
def test_planted_bug_fails_the_proof(bug, formal_env):
    build, env = formal_env
    name, module, owner, attribute, old, new, expected = bug
    task = next(t for t, (mode, _) in ALL[name].tasks.items() if mode != "cover")
    with planted_bug(module, owner, attribute, old, new):
        outcome = run_proof(ALL[name], build / "bugs", env, tasks={task})
    result = outcome.results[task]
    assert result.status == "FAIL", f"{name} with a planted bug: {result.status}"
    expected = (expected,) if isinstance(expected, str) else expected
    assert any(f.startswith(e) for f in result.failed for e in expected), (
        expected, result.failed, result.log_tail)
