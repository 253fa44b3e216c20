"""Independent references for the model tests: plain Python integers and loops.

Deliberately slow and simple; nothing here imports the code under test.
"""

import itertools

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# Reproducible property tests: same examples every run, no example database.
PROPERTY = settings(max_examples=60, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# SPEC §3, copied as text: pattern (position 0 first) -> code.
SPEC_TABLE = """
| 0000    | 0b1110 | 0001    | 0b1110 | 0010    | 0b1110 | 0100    | 0b1001 |
| 1000    | 0b1000 | 1100    | 0b0100 | 1010    | 0b1000 | 1001    | 0b1100 |
| 0110    | 0b1001 | 0101    | 0b1101 | 0011    | 0b1110 |         |        |
"""


def spec_codes():
    cells = [c.strip() for line in SPEC_TABLE.strip().splitlines()
             for c in line.strip("|").split("|")]
    pairs = zip(cells[0::2], cells[1::2], strict=True)
    return {pattern: int(code, 2) for pattern, code in pairs if pattern}


def wrap_ref(x, bits):
    x = int(x)
    half = 1 << (bits - 1)
    return ((x + half) % (1 << bits)) - half


def matmul_ref(a, b, bits):
    m, k, n = len(a), len(b), len(b[0]) if len(b) else 0
    return [[wrap_ref(sum(int(a[i][t]) * int(b[t][j]) for t in range(k)), bits)
             for j in range(n)] for i in range(m)]


def sparse_matmul_ref(values, meta, b, bits):
    """SPEC §3 hardware meaning, one group at a time; B padded with zero rows."""
    m, g = len(meta), len(meta[0]) if len(meta) else 0
    n = len(b[0])
    rows = [list(map(int, row)) for row in b] + [[0] * n] * (4 * g - len(b))
    out = []
    for i in range(m):
        line = []
        for j in range(n):
            total = 0
            for grp in range(g):
                code = int(meta[i][grp])
                total += int(values[i][2 * grp]) * rows[4 * grp + (code & 3)][j]
                total += int(values[i][2 * grp + 1]) * rows[4 * grp + (code >> 2)][j]
            line.append(wrap_ref(total, bits))
        out.append(line)
    return out


def decompress_ref(values, meta):
    out = []
    for i in range(len(meta)):
        row = []
        for grp in range(len(meta[i])):
            group = [0, 0, 0, 0]
            code = int(meta[i][grp])
            group[code & 3] = int(values[i][2 * grp])
            group[code >> 2] = int(values[i][2 * grp + 1])
            row += group
        out.append(row)
    return out


def prune_ref(row):
    """Keep the two largest magnitudes of each group of four, ties to the lower index."""
    out = [0] * len(row)
    for start in range(0, len(row), 4):
        idx = list(range(start, min(start + 4, len(row))))
        keep = sorted(idx, key=lambda i: (-abs(row[i]), i))[:2]
        for i in keep:
            out[i] = row[i]
    return out


def pack_ref(row, bits):
    """Element i at bits [i*bits, (i+1)*bits), two's complement codes."""
    word = 0
    for i, value in enumerate(row):
        word |= (int(value) & ((1 << bits) - 1)) << (i * bits)
    return word


ALL_PATTERNS = ["".join(p) for p in itertools.product("01", repeat=4)]
LEGAL = [p for p in ALL_PATTERNS if p.count("1") <= 2]


@st.composite
def sparse_matrices(draw, max_rows=5, max_k=13, lo=-128, hi=127):
    """A 2:4 integer matrix with any K: random values, then a random legal mask per group."""
    m = draw(st.integers(1, max_rows))
    k = draw(st.integers(1, max_k))
    groups = -(-k // 4)
    values = draw(hnp.arrays(np.int64, (m, 4 * groups), elements=st.integers(lo, hi)))
    masks = draw(hnp.arrays(np.int64, (m, groups), elements=st.integers(0, len(LEGAL) - 1)))
    flags = np.array([[int(c) for c in LEGAL[i]] for i in masks.ravel()]).reshape(m, -1)
    return (values * flags)[:, :k]
