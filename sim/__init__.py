"""The bit-exact numpy model of sparsecore (SPEC §1-§4), see docs/formats.md.

Pure, vectorised functions on integer arrays; randomness only through an
``np.random.Generator`` passed in.
"""

from sparsecore.sim.arith import wrap
from sparsecore.sim.gemm import acc_format, matmul, sparse_matmul
from sparsecore.sim.packing import (
    pack_rows,
    read_hex,
    read_hex_words,
    unpack_rows,
    write_hex,
    write_hex_words,
)
from sparsecore.sim.quantize import quantize_activations, quantize_weights, ternarize
from sparsecore.sim.sparsity import (
    CANONICAL_CODES,
    META_FORMAT,
    TABLE_CODES,
    compress_2to4,
    decompress_2to4,
    is_2to4,
    prune_2to4,
)
from sparsecore.sim.vectors import golden_vectors, load_golden_vectors, write_golden_vectors

__all__ = [
    "quantize_weights", "quantize_activations", "ternarize",
    "prune_2to4", "is_2to4", "compress_2to4", "decompress_2to4",
    "CANONICAL_CODES", "TABLE_CODES", "META_FORMAT",
    "matmul", "sparse_matmul", "acc_format", "wrap",
    "pack_rows", "unpack_rows", "write_hex", "read_hex", "write_hex_words", "read_hex_words",
    "golden_vectors", "write_golden_vectors", "load_golden_vectors",
]
