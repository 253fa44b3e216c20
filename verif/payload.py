"""Stream payloads as integers: packing fields into words by the manifest, and back.

Plain numpy and Python, no cocotb: the host side of the runners packs jobs with
these, and the testbenches (:mod:`sparsecore.verif.streams`) drive the same words.
Field offsets and widths come from the manifest's ``streams`` entry, element i
of a field at bits [i*bits, (i+1)*bits) (SPEC §4).
"""

import numpy as np

from sparsecore.sim.formats import Format
from sparsecore.sim.packing import (
    pack_fields32,
    pack_rows,
    unpack_field32,
    unpack_rows,
    word32_count,
)

__all__ = ["BIT", "raw_format", "PayloadCodec", "words_to_bytes", "bytes_to_words",
           "words_to_words32"]

BIT = Format("bit", 1, False, 0, 1)


def raw_format(bits):
    """An unsigned field of ``bits`` bits: raw bus codes, packed as they are."""
    return Format(f"raw{bits}", bits, False, 0, (1 << bits) - 1)


class PayloadCodec:
    """Packs batches of field arrays into payload integers, and back, by the manifest.

    ``stream`` is one entry of ``manifest["streams"]``. A payload with
    ``fields`` (a struct) is packed from ``{field: (matrix, fmt)}``; a payload
    that is one array is the field ``""``. Each matrix is (beats, elements)
    of plain values in ``fmt`` (a :class:`sim.formats.Format`), element i of
    the field at bits [i*bits, (i+1)*bits) (SPEC §4); its size must fill the
    field exactly.
    """

    def __init__(self, stream):
        self.width = stream["payload_width"]
        if "fields" in stream:
            self.fields = {name: (f["offset"], f["width"])
                           for name, f in stream["fields"].items()}
        else:
            self.fields = {"": (0, self.width)}

    def _check(self, name, matrix, fmt):
        if name not in self.fields:
            raise ValueError(f"payload has no field {name!r}; fields: {', '.join(self.fields)}")
        width = self.fields[name][1]
        if matrix.ndim != 2 or matrix.shape[1] * fmt.bits != width:
            raise ValueError(f"field {name!r} is {width} bits wide, not "
                             f"{matrix.shape[1:]} x {fmt.bits}-bit {fmt.name} elements")

    def pack(self, fields):
        """``{field: (matrix, fmt)}`` -> list of payload ints, one per matrix row."""
        words = None
        for name, (matrix, fmt) in fields.items():
            matrix = np.asarray(matrix)
            matrix = matrix.reshape(len(matrix), -1)
            self._check(name, matrix, fmt)
            offset = self.fields[name][0]
            packed = [w << offset for w in pack_rows(matrix, fmt, name or "payload")]
            words = packed if words is None else [a | b for a, b in zip(words, packed,
                                                                         strict=True)]
        return words

    def pack_words(self, fields):
        """Like :meth:`pack`, as an (n, ceil(width/32)) uint32 array (the engine's beat files)."""
        triples, n = [], None
        for name, (matrix, fmt) in fields.items():
            matrix = np.asarray(matrix)
            matrix = matrix.reshape(len(matrix), -1)
            self._check(name, matrix, fmt)
            n = len(matrix) if n is None else n
            if len(matrix) != n:
                raise ValueError(f"field {name!r} has {len(matrix)} rows, not {n}")
            triples.append((self.fields[name][0], fmt.encode(matrix, name or "payload"),
                            fmt.bits))
        return pack_fields32(n or 0, self.width, triples)

    def unpack_words(self, words, name, fmt):
        """:meth:`unpack` of :meth:`pack_words`-style uint32 rows."""
        offset, width = self.fields[name]
        codes = unpack_field32(words, offset, width // fmt.bits, fmt.bits)
        if fmt.bits == 64:  # the only field whose codes do not fit int64
            return codes.view(np.int64) if fmt.signed else fmt.check(codes, name or "payload")
        return fmt.decode(codes.astype(np.int64), name or "payload")

    def unpack(self, words, name, fmt):
        """Payload ints -> (beats, elements) int64 values of field ``name``."""
        offset, width = self.fields[name]
        mask = (1 << width) - 1
        count = width // fmt.bits
        return unpack_rows([(w >> offset) & mask for w in words], fmt, count)


def words_to_bytes(words, width):
    """Payload ints of ``width`` bits -> (len(words), bytes) uint8 rows, little end first.

    How payload words cross between the host and a simulator run in a job
    folder (``np.save``); :func:`bytes_to_words` reads them back.
    """
    nbytes = max(1, -(-width // 8))
    return np.frombuffer(b"".join(w.to_bytes(nbytes, "little") for w in words),
                         dtype=np.uint8).reshape(len(words), nbytes)


def words_to_words32(words, width):
    """Payload ints of ``width`` bits -> (len(words), ceil(width/32)) uint32 rows: the
    engine's beat files (the layout of :meth:`PayloadCodec.pack_words`). The engine's
    captured rows go back to ints with :func:`bytes_to_words`."""
    return words_to_bytes(words, 32 * word32_count(width)).view("<u4")


def bytes_to_words(rows):
    """The payload ints of :func:`words_to_bytes` rows (or of any little-endian rows, such
    as the engine's uint32 beats)."""
    return [int.from_bytes(row.tobytes(), "little") for row in rows]
