"""pytest entry: build one small layer design and run its cocotb tests (verif/layer/).

A 2 x 3 tile (rows differ from columns, so a transposed row parameter shows)
with one group: quick to build. int4 weights x uint4 activations into a
narrow 16-bit accumulator, out ``int8`` (a signed format wider than the input
one, as the logits of the workflow's last layer), and narrow stage fields.
"""

from sparsecore.hw.config import LayerConfig
from sparsecore.hw.layer import SparseLayer
from sparsecore.verif.build import build, run

CONFIG = LayerConfig(rows=2, cols=3, groups=1, weights="int4", acts="uint4", acc_bits=16,
                     out="int8", mult_bits=10, shift_bits=5)


def test_layer_rtl():
    layer = SparseLayer(CONFIG)
    built = build(layer)
    assert built.manifest["latency"] == layer.latency == layer.core_latency + layer.stage_latency
    run(built, "sparsecore.verif.layer.tests")
