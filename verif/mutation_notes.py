"""Reviewed notes on surviving mutants: why each one lives, keyed by (design, mutate command).

``docs/mutation.md`` prints a note beside its survivor. A mutant that is not
equivalent and survives is a gap in a testbench: fix the testbench, or say
here why the behaviour the mutant changes does not matter.
"""

_CORE_S1_ACTS = ("mutate -mode const1 -module mut_core_tiny -cell $procmux$620 -port B "
                 "-portbit 53 -src mut_core_tiny.v:591.9-591.12 -src mut_core_tiny.v:591.5-593.8")
_LAYER_ROUNDED0 = (r"mutate -mode const1 -module mut_layer_int4_uint4 -cell "
                   r"$flatten\stage.$procmux$1139 -port B -portbit 13 -src "
                   r"mut_layer_int4_uint4.v:2322.9-2322.12 -src "
                   r"mut_layer_int4_uint4.v:2322.5-2324.8")

NOTES = {
    ("core_tiny", _CORE_S1_ACTS):
        "Reviewed: the mutant changes the reset value of stage 1's activation register "
        "(`s1_acts` bit 53: `if (rst) s1_acts = 0` becomes ...1...). `s1_acts` is data: "
        "every accepted beat (`take`) loads all of it before stage 2 uses it for a valid "
        "beat, and `s1_valid` resets to 0, so the stale bit only ever meets beats that are "
        "not valid, which the adder tree and the results register drop. No valid result "
        "can carry it; the equivalence flow leaves the register itself unproven (its value "
        "after reset does differ) and the output miter needs more than its time limit with "
        "the multipliers in the cone.",
    ("layer_int4_uint4", _LAYER_ROUNDED0):
        "Reviewed: the mutant changes the reset value of the output stage's `rounded0` "
        "(lane 0's stage-3 register; bit 13 resets to 1). Every stage register, `valid` "
        "among them, loads on the same `advance`, so the stale value reaches "
        "`codes.payload` only in the beat whose `valid` is the reset 0, and is gone after "
        "it. The stream contract leaves the payload undefined while valid is low (SPEC, "
        "docs/layer.md), so no beat a consumer may read differs: equivalent under the "
        "stream contract. The equivalence flow leaves `rounded0` unproven (its value after "
        "reset does differ) and the output miter needs more than its time limit with the "
        "multipliers in the cone.",
}
