"""Reviewed notes on surviving mutants: why each one lives, keyed by (design, mutate command).

``docs/mutation.md`` prints a note beside its survivor. A mutant that is not
equivalent and survives is a gap in a testbench: fix the testbench, or say
here why the behaviour the mutant changes does not matter.
"""

NOTES = {
}
