# amaranth: UnusedElaboratable=no
"""pytest entry: build one small accelerator and run its cocotb tests (verif/accel/).

A 2 x 3 tile (rows differ from columns) with one group, int4 weights x uint8
activations into a 20-bit accumulator; a 2-byte load stream (A words of 3 bytes
and B words of 12 bytes span several beats, the last one padded) and a 4-byte
result stream (a 15-byte tile in 4 beats); stripe buffers of 6 chunks and a
B buffer of 20 words, so the largest jobs that fit and those that do not are
small; the output stage gives int8 codes (a 6-byte tile in 2 beats; signed, so
ReLU matters), and its
parameter buffer holds 4 stripes (an 11-byte word in 6 beats). Every coverage
bin must be hit.
"""

import json

from sparsecore.hw.accel import SparseAccelerator
from sparsecore.hw.config import AccelConfig, CoreConfig
from sparsecore.verif.accel.tb import COVERAGE_FILE
from sparsecore.verif.build import build, run

CONFIG = AccelConfig.of(CoreConfig(rows=2, cols=3, groups=1, weights="int4", acts="uint8",
                                   acc_bits=20), load_bytes=2, out_bytes=4, a_depth=6,
                        b_depth=20, p_depth=4, out="int8")


def test_accel_rtl():
    accel = SparseAccelerator(CONFIG)   # for its contract; build() makes its own
    built = build(CONFIG)   # build/<registry name>/, shared with the runner's test
    assert built.manifest["latency"] == accel.latency
    result = run(built, "sparsecore.verif.accel.tests", run_name="accel_tests")
    coverage = json.loads((result.log.parent / COVERAGE_FILE).read_text())["coverage"]
    missing = {g: [b for b, n in bins.items() if not n] for g, bins in coverage.items()}
    missing = {g: b for g, b in missing.items() if b}
    assert not missing, f"accelerator coverage bins never hit: {missing}"
