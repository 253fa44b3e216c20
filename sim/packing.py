"""Packed words and ``$readmemh`` hex files (SPEC §4).

Layout, the same for every bus and file: a row of n elements of a ``w``-bit
field becomes one ``n * w``-bit word with element i at bits [i*w, (i+1)*w),
little end first. Signed values travel as two's complement codes (the
format's ``encode``/``decode``); metadata codes use ``sim.sparsity.META_FORMAT``
(group g at bits [4g, 4g+4)), results ``sim.gemm.acc_format(acc_bits)``.

Hex files are ``$readmemh``-compatible:

- one word per line, ``ceil(width / 4)`` lowercase hex digits, zero-padded,
  most significant digit first (so element 0 is in the rightmost digits);
- line r (not counting comments) is word r, i.e. row r of the matrix;
- the first line is a ``//`` comment giving the word count, width and layout.

A matrix is written row by row; to put its columns on the lines, pass its
transpose. ``read_hex`` and ``read_hex_words`` accept what ``$readmemh`` reads
except address records (``@``) and x/z digits, which they refuse.
"""

import os
import re

import numpy as np

from sparsecore.sim.arith import check_positive_int
from sparsecore.sim.formats import Format, get_format

__all__ = [
    "pack_rows", "unpack_rows", "word32_count", "pack_fields32", "unpack_field32",
    "write_hex_words", "read_hex_words", "write_hex", "read_hex",
]


def _format(fmt):
    return fmt if isinstance(fmt, Format) else get_format(fmt)


def _word_bytes(width):
    return -(-width // 8)


def pack_rows(matrix, fmt, what="values"):
    """Pack each row of an R x n matrix into one ``n * fmt.bits``-bit word; list of R ints.

    ``fmt`` is a Format or a format name. Values outside the format raise
    ValueError naming the first offending index (nothing is clipped).
    """
    fmt = _format(fmt)
    codes = fmt.encode(matrix, what)
    if codes.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D matrix (rows x elements), got shape "
                         f"{codes.shape}")
    rows, n = codes.shape
    # Bit j of element i goes to bit i*w + j of the word; packbits does the rest.
    bits = np.empty((rows, n, fmt.bits), dtype=np.uint8)
    for j in range(fmt.bits):
        bits[..., j] = (codes >> np.uint64(j)) & np.uint64(1)
    packed = np.packbits(bits.reshape(rows, n * fmt.bits), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def unpack_rows(words, fmt, n, what="words"):
    """Inverse of ``pack_rows``: R words of ``n * fmt.bits`` bits -> R x n int64 values."""
    fmt = _format(fmt)
    n = check_positive_int("n", n)
    width = n * fmt.bits
    words = list(words)
    for r, word in enumerate(words):
        if isinstance(word, bool) or not isinstance(word, (int, np.integer)):
            raise ValueError(f"{what}: word {r} is {type(word).__name__}, not an integer")
        word = words[r] = int(word)
        if not 0 <= word < 1 << width:
            raise ValueError(f"{what}: word {r} = {word:#x} does not fit in {width} bits")
    nbytes = _word_bytes(width)
    raw = np.frombuffer(b"".join(w.to_bytes(nbytes, "little") for w in words),
                        dtype=np.uint8).reshape(len(words), nbytes)
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :width]
    bits = bits.reshape(len(words), n, fmt.bits)
    codes = np.zeros((len(words), n), dtype=np.uint64)
    for j in range(fmt.bits):
        codes |= bits[..., j].astype(np.uint64) << np.uint64(j)
    if fmt.bits == 64:  # the only field whose codes do not fit int64
        return codes.view(np.int64) if fmt.signed else fmt.check(codes, what)
    return fmt.decode(codes.astype(np.int64), what)


def word32_count(width):
    """32-bit words that hold a ``width``-bit word (how simulators store wide ports)."""
    return -(-check_positive_int("width", width) // 32)


def pack_fields32(n, width, fields):
    """Pack ``n`` words of ``width`` bits into an (n, ceil(width/32)) uint32 array.

    ``fields``: ``(offset, codes, bits)`` triples; ``codes`` is (n, count)
    unsigned codes (from a format's ``encode``), element i at bits
    ``[offset + i*bits, offset + (i+1)*bits)`` of each word (SPEC §4 layout).
    Word w of a row holds bits [32w, 32w+32), little end first: the layout of
    a Verilated wide port (``VlWide``) and of the engine's beat files. The
    vectorised twin of :func:`pack_rows` for millions of beats: fields of 8, 16,
    32 or 64-bit elements on byte boundaries are copied in as bytes; any other
    field costs one shift and OR per element column, on whole columns.
    """
    n_words = word32_count(width)
    # Whole columns, one row per word (contiguous); one spare word for the spill.
    out = np.zeros((n_words + 1, n), dtype=np.uint64)
    aligned = []      # fields of whole bytes on byte boundaries: copied as bytes below
    for offset, codes, bits in fields:
        codes = np.asarray(codes, dtype=np.uint64)
        if codes.ndim != 2 or len(codes) != n:
            raise ValueError(f"codes must be ({n}, count), not shape {codes.shape}")
        if offset + codes.shape[1] * bits > width:
            raise ValueError(f"a field at offset {offset} of {codes.shape[1]} x {bits} bits "
                             f"does not fit in {width} bits")
        if bits in _BYTE_TYPES and offset % 8 == 0:
            aligned.append((offset, codes, bits))
            continue
        for i in range(codes.shape[1]):
            column = np.ascontiguousarray(codes[:, i])
            # pieces of at most 32 bits, so that a piece shifted into place fits 64 bits
            for low in range(0, bits, 32):
                piece_bits = min(32, bits - low)
                piece = (column >> np.uint64(low)) & np.uint64((1 << piece_bits) - 1)
                position = offset + i * bits + low
                word, shift = divmod(position, 32)
                shifted = piece << np.uint64(shift)
                out[word] |= shifted & np.uint64(0xFFFFFFFF)
                out[word + 1] |= shifted >> np.uint64(32)
    words = np.ascontiguousarray(out[:n_words].T.astype("<u4"))
    as_bytes = words.view(np.uint8).reshape(n, 4 * n_words)
    for offset, codes, bits in aligned:
        # little end first: element i's bytes at [offset/8 + i*bits/8, ...) of the row
        start = offset // 8
        field = codes.astype(_BYTE_TYPES[bits]).view(np.uint8).reshape(
            n, codes.shape[1] * bits // 8)
        as_bytes[:, start:start + field.shape[1]] |= field
    return words


_BYTE_TYPES = {8: "<u1", 16: "<u2", 32: "<u4", 64: "<u8"}


def unpack_field32(words, offset, count, bits):
    """(n, count) uint64 codes of the field at ``offset`` from :func:`pack_fields32` words."""
    words = np.ascontiguousarray(words, dtype="<u4")
    raw = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")
    field = raw[:, offset:offset + count * bits].reshape(len(words), count, bits)
    codes = np.zeros((len(words), count), dtype=np.uint64)
    for j in range(bits):
        codes |= field[..., j].astype(np.uint64) << np.uint64(j)
    return codes


def write_hex_words(path, words, width, comment=None):
    """Write ``width``-bit words to a ``$readmemh`` file, one per line; return ``path``."""
    width = check_positive_int("width", width)
    digits = -(-width // 4)
    lines = []
    for i, word in enumerate(words):
        if isinstance(word, bool) or not isinstance(word, (int, np.integer)):
            raise ValueError(f"words: word {i} is {type(word).__name__}, not an integer")
        word = int(word)
        if not 0 <= word < 1 << width:
            raise ValueError(f"words: word {i} = {word:#x} does not fit in {width} bits")
        lines.append(f"{word:0{digits}x}")
    header = comment or (f"{len(lines)} words of {width} bits, one per line, "
                         f"most significant hex digit first")
    with open(path, "w", encoding="ascii") as f:
        f.write(f"// {header}\n")
        f.write("".join(line + "\n" for line in lines))
    return path


_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


def read_hex_words(path, width):
    """Read a ``$readmemh`` file of ``width``-bit words; list of ints in file order."""
    width = check_positive_int("width", width)
    name = os.fspath(path)
    with open(path, encoding="ascii") as f:
        text = f.read()
    # Blank out comments but keep their newlines so line numbers stay right.
    text = _COMMENTS.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    words = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        for token in line.split():
            if token.startswith("@"):
                raise ValueError(f"{name}:{line_no}: address record {token!r} is not supported")
            if not re.fullmatch(r"[0-9a-fA-F][0-9a-fA-F_]*", token):
                raise ValueError(f"{name}:{line_no}: {token!r} is not a hex word")
            word = int(token.replace("_", ""), 16)
            if word >> width:
                raise ValueError(f"{name}:{line_no}: word {token} does not fit in {width} bits")
            words.append(word)
    return words


def write_hex(path, matrix, fmt):
    """Write an R x n matrix as R ``$readmemh`` words of ``n * fmt.bits`` bits; return ``path``."""
    fmt = _format(fmt)
    words = pack_rows(matrix, fmt, "matrix")
    n = np.shape(matrix)[1]
    width = n * fmt.bits
    return write_hex_words(path, words, width, comment=(
        f"{len(words)} rows of {n} {fmt.name} ({fmt.bits} bits each), one {width}-bit word "
        f"per line, element 0 in the least significant bits"))


def read_hex(path, fmt, n):
    """Read a file written by ``write_hex``: R x n int64 values of format ``fmt``."""
    fmt = _format(fmt)
    n = check_positive_int("n", n)
    return unpack_rows(read_hex_words(path, n * fmt.bits), fmt, n, what=os.fspath(path))
