"""Payload words of the output stage's streams, by its manifest, and its build name.

Used by its testbench (:mod:`sparsecore.verif.output_stage.tb`) and pytest
entry; in a network the stage runs inside the layer design (``hw/layer.py``).
"""

import numpy as np

from sparsecore.sim.gemm import acc_format
from sparsecore.verif.payload import BIT, PayloadCodec, raw_format

__all__ = ["pack_input", "unpack_output"]


def pack_input(manifest, acc, bias, mult, shift, relu):
    """Payload words of the ``i`` stream: arrays beats x lanes, ``relu`` one per beat."""
    cfg = manifest["config"]
    acc_fmt = acc_format(cfg["acc_bits"])
    return PayloadCodec(manifest["streams"]["i"]).pack({
        "acc": (acc, acc_fmt), "bias": (bias, acc_fmt),
        "mult": (mult, raw_format(cfg["mult_bits"])),
        "shift": (shift, raw_format(cfg["shift_bits"])),
        "relu": (np.asarray(relu).reshape(-1, 1), BIT)})


def unpack_output(manifest, words, fmt):
    """beats x lanes values of ``fmt`` from ``o`` payload words."""
    return PayloadCodec(manifest["streams"]["o"]).unpack(words, "", fmt)
