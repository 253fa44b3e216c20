"""Run accumulators through the Verilated output stage: the host side of one job.

:func:`run_output_stage` takes an M x N accumulator array with per-row (output
channel) parameters, lays the elements out row-major into beats of ``lanes``
(the last beat padded with zeros), builds the output stage for the
configuration once (:func:`verif.build.build` reuses an identical build),
streams the beats through it with the cocotb module
:mod:`verif.output_stage.job_tb` and returns the codes as values of the
activation format, M x N.

Host and simulator exchange files in a job folder: ``beats.npy`` in (payload
words as little-endian bytes, :func:`verif.streams.words_to_bytes`),
``out.npy`` back (the output words, the same way) and ``cycles.npy`` (from the
first beat offered to the last beat taken).
"""

import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.formats import check_integer_array
from sim.gemm import acc_format
from verif.streams import BIT, PayloadCodec, bytes_to_words, raw_format, words_to_bytes

__all__ = ["OutputStageRun", "run_output_stage", "build_name", "pack_input", "unpack_output",
           "JOB_ENV"]

JOB_ENV = "SPARSECORE_OUTPUT_STAGE_JOB"
TB_MODULE = "verif.output_stage.job_tb"


@dataclass(frozen=True)
class OutputStageRun:
    out: np.ndarray   # M x N int64 values of the activation format
    cycles: int       # first beat offered .. last beat taken
    beats: int
    latency: int      # the stage's latency, from its manifest
    seconds: float    # wall time of the simulator run


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


def build_name(config):
    """One build folder per output stage configuration."""
    return (f"output_stage_{config.acts}_l{config.lanes}_acc{config.acc_bits}_"
            f"m{config.mult_bits}_s{config.shift_bits}")


def _channel_params(name, values, m):
    arr = check_integer_array(values, name)
    if arr.shape != (m,):
        raise ValueError(f"{name} must have shape ({m},) (one per row of acc), not {arr.shape}")
    return arr


def run_output_stage(config, acc, mult, shift, bias, relu, *, root=None):
    """The output stage RTL for ``config`` (:class:`hw.config.OutputStageConfig`) on
    ``acc`` (M x N) with per-row ``mult``, ``shift``, ``bias`` and one ``relu`` flag.

    Values out of a field's range are refused by the packing (ValueError naming
    the field and the first index) before the simulator starts.
    """
    from hw.output_stage import OutputStage
    from verif.build import build, run

    acc = check_integer_array(acc, "acc")
    if acc.ndim != 2:
        raise ValueError(f"acc must be a 2-D array (channels x columns), not shape {acc.shape}")
    m, n = acc.shape
    lanes = config.lanes
    per_row = [_channel_params(name, v, m) for name, v in
               (("bias", bias), ("mult", mult), ("shift", shift))]
    fields = [acc.reshape(-1)] + [np.repeat(p, n) for p in per_row]
    pad = -(m * n) % lanes
    fields = [np.concatenate([f, np.zeros(pad, np.int64)]).reshape(-1, lanes) for f in fields]
    beats = len(fields[0])

    built = build(OutputStage(config), build_name(config), root=root)
    words = pack_input(built.manifest, *fields, np.full(beats, int(bool(relu))))
    with tempfile.TemporaryDirectory(prefix="sparsecore-output-stage-") as folder:
        folder = Path(folder)
        np.save(folder / "beats.npy",
                words_to_bytes(words, built.manifest["streams"]["i"]["payload_width"]))
        result = run(built, TB_MODULE, "run_job", extra_env={JOB_ENV: str(folder)},
                     run_name=f"job-{os.getpid()}-{threading.get_ident()}")
        out_words = bytes_to_words(np.load(folder / "out.npy"))
        cycles = int(np.load(folder / "cycles.npy"))
    out = unpack_output(built.manifest, out_words, config.act_format).reshape(-1)
    return OutputStageRun(out=out[:m * n].reshape(m, n), cycles=cycles, beats=beats,
                          latency=built.manifest["latency"], seconds=result.seconds)
