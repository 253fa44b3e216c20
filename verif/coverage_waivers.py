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
]


def match_waiver(waivers, design, kind, text):
    """The first waiver of ``design`` and ``kind`` whose pattern matches ``text``, or None."""
    for waiver in waivers:
        if waiver.design == design and waiver.kind == kind and re.fullmatch(waiver.pattern,
                                                                             text):
            return waiver
    return None
