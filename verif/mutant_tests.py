"""cocotb tests of a batch of mutants in one simulator run (see :mod:`sparsecore.verif.mutate`).

The design under test is a mutant model: every mutation behind its own value of
the input ``mutsel`` (0: the original). For each mutant of the batch, in order,
this module runs the design's own tests, unchanged: each test first sets
``mutsel`` to the mutant's number, then runs the testbench's test function
(which starts its clock and resets the design). A mutant's first failing test
kills it; its later tests are skipped (they pass at once), so a batch costs one
simulator start and little more than the tests of its survivors.

Environment (set by :func:`sparsecore.verif.mutate.run_batch`):
    SPARSECORE_MUTANT_TB: the testbench module (e.g. ``sparsecore.verif.mac.mac_tb``).
    SPARSECORE_MUTANT_TESTS: its test function names, comma-separated.
    SPARSECORE_MUTANTS: the mutant numbers of the batch, comma-separated.

Tests are named ``m<k>__<test>``; the results file tells which mutant each belongs to.
"""

import importlib
import os

import cocotb

_TB = importlib.import_module(os.environ["SPARSECORE_MUTANT_TB"])
_TESTS = [t for t in os.environ["SPARSECORE_MUTANT_TESTS"].split(",") if t]
_MUTANTS = [int(k) for k in os.environ["SPARSECORE_MUTANTS"].split(",") if k]
_KILLED = set()


def _mutant_test(index, name):
    func = getattr(_TB, name).func   # the function under cocotb's test decorator

    async def run(dut):
        if index in _KILLED:
            return                   # already killed by an earlier test
        dut.mutsel.value = index
        try:
            await func(dut)
        except BaseException:
            _KILLED.add(index)
            raise

    run.__name__ = run.__qualname__ = f"m{index}__{name}"
    return cocotb.test(run)


for _index in _MUTANTS:
    for _name in _TESTS:
        globals()[f"m{_index}__{_name}"] = _mutant_test(_index, _name)
