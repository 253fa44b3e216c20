"""Reviewed coverage waivers: points the suite cannot or need not reach, each with its reason.

A waiver names a design (the manifest's ``design``), a kind (``line`` or
``toggle``) and a regular expression matched in full against the point: the
Verilog text of a line point, the signal name of a toggle point (Verilator's
spelling). :mod:`verif.coverage` marks a missed point waived by the first
waiver that matches, and lists every waiver in ``docs/coverage.md`` (unused
ones too, so a stale waiver shows). Change this file only with review.
"""

import re
from dataclasses import dataclass

__all__ = ["Waiver", "WAIVERS", "match_waiver"]


@dataclass(frozen=True)
class Waiver:
    design: str
    kind: str       # "line" or "toggle"
    pattern: str    # regular expression, matched in full
    reason: str

    def __post_init__(self):
        if self.kind not in ("line", "toggle"):
            raise ValueError(f"kind must be 'line' or 'toggle', not {self.kind!r}")
        if not self.reason.strip():
            raise ValueError(f"waiver {self.pattern!r} needs a reason")
        re.compile(self.pattern)


WAIVERS = [
    Waiver("SparseLayer", "line", r"2'h3: \\\$\d+ += s1_acts\[\d+:\d+\];",
           "case 3 of a group's first-index multiplexer, in the code-table layer's build. "
           "Its test goes through the GEMM runner, which sends the canonical codes of SPEC "
           "section 2 (values in ascending position order, so the first index is at most "
           "2). The layer's cocotb testbench sends the indices in the other order too "
           "(test_swapped_index_codes) and reaches these lines in the 2x3 build; the core's "
           "builds reach every code of every lane. The second index's case 3 lines read the "
           "same and are reached: a missed one would show here too, so review this list on "
           "every run"),
    Waiver("SparseLayer", "toggle",
           r"weights___05Fpayload(__024\d+)?(\.accumulate|__02eaccumulate)",
           "the weights stream's accumulate bit (the port's bit found by the manifest's "
           "field offset, and the field's own signal): the layer's tests send whole-K tiles "
           "with accumulate 0, each tile going to the output stage with its params beat. "
           "The layer passes the bit to the core unchanged; the core's builds reach it both "
           "ways and check its function (test_accumulate_and_fresh)"),
    # The code-table layer's build runs through the GEMM runner, which starts a fresh
    # simulation (reset first) for every job: a per-job constant rises at most once.
    Waiver("SparseLayer", "toggle",
           r"relu\d|(i|params)___05Fpayload(\.relu|__02erelu)"
           r"|weights___05Fpayload(__024\d+)?(\.dense|__02edense)",
           "ReLU and dense are one flag per layer. In the code-table build (GEMM runner: one "
           "layer per simulation, reset first) they rise at most once per run, so the "
           "falling edge needs two layers in one run. The layer's cocotb testbench runs "
           "layers back to back in one simulation (the 2x3 build): there both edges of "
           "both flags are reached"),
    *(Waiver(design, "toggle", r"table___05Fready(__024\d+)?",
             "the code table's write port: `table.ready` is tied high (hw/code_table.py, "
             "one entry written per cycle, never held). It rises once, from the simulator's "
             "initial 0, and cannot fall") for design in ("SparseLayer", "CodeTable")),
    Waiver("SparseLayer", "toggle", r"memory\[\*\]",
           "the code table's storage cells. Each GEMM runner job is a fresh simulation that "
           "writes the whole table once after reset: every cell's bits rise (0->1 reached, "
           "with a random table, its complement and it again over the jobs), but a falling "
           "edge needs a second table in the same run. Rewriting entries in one run, "
           "interleaved with lookups, is the code table's own testbench (verif/code_table)"),
]


def match_waiver(waivers, design, kind, text):
    """The first waiver of ``design`` and ``kind`` whose pattern matches ``text``, or None."""
    for waiver in waivers:
        if waiver.design == design and waiver.kind == kind and re.fullmatch(waiver.pattern,
                                                                             text):
            return waiver
    return None
