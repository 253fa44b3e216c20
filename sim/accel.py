"""An accelerator job's data: the load stream it takes and the result stream it gives.

The order and word layouts are the hardware's (``hw.accel``, docs/accel.md):

1. B, tile column j, then word w: B rows ``w*4G .. w*4G+4G-1`` by columns
   ``j*cols .. j*cols+cols-1``, element ``[k][c]`` at bits ``(k*cols + c)*act_bits``.
   A dense job's chunk (2G rows of K) is half a word: chunk 2w in rows 0..2G-1,
   chunk 2w+1 in rows 2G..4G-1.
P. A ``codes`` job only (``params`` given): one word per stripe s, ``bias[i]``
   (signed ``acc_bits``) at bits ``i*acc_bits``, then ``mult[i]`` at
   ``rows*acc_bits + i*mult_bits``, then ``shift[i]`` after all multipliers, of
   rows ``s*rows + i`` (padding rows: all zero).
2. A, stripe s (rows ``s*rows ..``), then chunk c: ``values[i][t]`` at bits
   ``(i*2G + t)*weight_bits``, then ``meta[i][g]`` at ``values_bits + (i*G + g)*4``.
   Sparse: the compressed kept values and codes of chunk c; dense: ``A[i][c*2G + t]``
   and meta 0.

Every word is ``ceil(bits / 8)`` bytes little end first, zero-padded to whole
beats of ``load_bytes``. Results: one tile per ``out_beats`` beats of
``out_bytes``, low bytes first; a tile is the core's ``[i][j]`` signed
``acc_bits`` values, row-major. A ``codes`` job's tile is instead the output
stage's ``[i][j]`` codes of the ``out`` format (``sim.requant.requantize`` of the
tile with its rows' parameters), row-major, in ``code_beats`` beats; its padding
rows and columns are requantized zeros. Values are plain integers; padding is
zeros (a padded sparse group has the canonical all-zero code).
"""

import numpy as np

from sparsecore.sim.accel_perf import plan_job
from sparsecore.sim.formats import Format, check_integer_array, get_format
from sparsecore.sim.gemm import acc_format, matmul, sparse_matmul
from sparsecore.sim.packing import pack_rows, unpack_rows
from sparsecore.sim.requant import requantize
from sparsecore.sim.sparsity import CANONICAL_CODES, META_FORMAT, check_compressed, compress_2to4

__all__ = ["load_stream", "split_results", "result_beats", "expected_c", "expected_codes",
           "operands", "column_blocks", "check_params"]

ZERO_GROUP_CODE = CANONICAL_CODES["0000"]


def _pad(arr, shape, fill=0):
    out = np.full(shape, fill, dtype=np.int64)
    out[tuple(slice(0, s) for s in arr.shape)] = arr
    return out


def _to_beats(words, word_bits, load_bytes):
    """Words -> the beats that carry them: each word whole beats, low bytes first."""
    nbytes = -(-word_bits // 8)
    beats_per_word = -(-nbytes // load_bytes)
    span = beats_per_word * load_bytes
    raw = b"".join(int(w).to_bytes(span, "little") for w in words)
    return [int.from_bytes(raw[i:i + load_bytes], "little")
            for i in range(0, len(raw), load_bytes)]


def operands(b, *, a=None, values=None, meta=None, dense=False):
    """Checked (M, K, values, meta, a, b): the compressed form in sparse mode."""
    b = check_integer_array(b, "b")
    if b.ndim != 2:
        raise ValueError(f"b: expected a 2-D matrix (K x N), got shape {b.shape}")
    k = b.shape[0]
    if a is not None:
        a = check_integer_array(a, "a")
        if a.ndim != 2 or a.shape[1] != k:
            raise ValueError(f"a shape {a.shape} does not match b shape {b.shape}")
        if not dense:
            values, meta = compress_2to4(a)
        return a.shape[0], k, values, meta, a, b
    if dense:
        raise ValueError("dense mode takes a, not values and meta")
    values, meta = check_compressed(values, meta)
    if meta.shape[1] != -(-k // 4):
        raise ValueError(f"meta shape {meta.shape} does not match K={k}")
    return meta.shape[0], k, values, meta, None, b


def column_blocks(geometry, m, n, k, *, dense):
    """Column ranges ``[(start, stop), ...]`` of B (and C) that each fit the B buffer.

    One job per range, B's columns split into the fewest blocks of whole tiles.
    ValueError when even one tile column does not fit, or K does not fit a stripe
    buffer (naming the limit).
    """
    g = geometry
    job = plan_job(g, m, n, k, dense=dense)
    kb = g.core.k_per_beat(dense)
    if job.k_chunks > g.a_depth:
        raise ValueError(f"K = {k} does not fit the accelerator's stripe buffers: at most "
                         f"{g.a_depth * kb} in {'dense' if dense else 'sparse'} mode "
                         f"(a_depth = {g.a_depth} chunks of {kb})")
    per_block = g.b_depth // job.b_words   # tile columns whose B fits at once
    if per_block < 1:
        raise ValueError(f"K = {k} does not fit the accelerator's B buffer: one tile column "
                         f"needs {job.b_words} words, b_depth = {g.b_depth}")
    blocks = -(-job.n_tiles // per_block)
    tiles = -(-job.n_tiles // blocks)      # the fewest blocks, as even as whole tiles allow
    width = tiles * g.cols
    return [(start, min(start + width, n)) for start in range(0, n, width)]


def _unsigned(bits):
    return Format(f"u{bits}", bits, False, 0, (1 << bits) - 1)


def check_params(geometry, params, m):
    """(bias, mult, shift) as int64 arrays of shape (m,), each in its field's range
    (ValueError naming the one that is not)."""
    g = geometry
    if not isinstance(params, (tuple, list)) or len(params) != 3:
        raise ValueError(f"params must be (bias, mult, shift), not {params!r}")
    out = []
    for name, arr, fmt in (("bias", params[0], acc_format(g.acc_bits)),
                           ("mult", params[1], _unsigned(g.mult_bits)),
                           ("shift", params[2], _unsigned(g.shift_bits))):
        arr = check_integer_array(arr, name)
        if arr.shape != (m,):
            raise ValueError(f"{name} must have shape ({m},) (one per row of A), not "
                             f"{arr.shape}")
        fmt.check(arr, name)
        out.append(arr)
    return tuple(out)


def _params_words(geometry, job, params):
    """One parameter word per stripe (padding rows zero)."""
    g = geometry
    rows = job.m_tiles * g.rows
    fields = [(_pad(arr, (rows,)).reshape(job.m_tiles, g.rows), fmt) for arr, fmt in
              zip(params, (acc_format(g.acc_bits), _unsigned(g.mult_bits),
                           _unsigned(g.shift_bits)), strict=True)]
    words = [0] * job.m_tiles
    offset = 0
    for arr, fmt in fields:
        for s, w in enumerate(pack_rows(arr, fmt, "params")):
            words[s] |= w << offset
        offset += g.rows * fmt.bits
    return words


def load_stream(geometry, b, *, a=None, values=None, meta=None, dense=False, params=None,
                relu=False):
    """(job, beats): the descriptor and the load-stream beats (ints of load_bytes) of a GEMM.

    ``params`` (bias, mult, shift), one per row of A, makes it a ``codes`` job: the
    output stage's codes come out (with ``relu``), and the parameters are loaded."""
    g = geometry
    m, k, values, meta, a, b = operands(b, a=a, values=values, meta=meta, dense=dense)
    codes = params is not None
    if codes:
        params = check_params(g, params, m)
    job = plan_job(g, m, b.shape[1], k, dense=dense, codes=codes, relu=relu)
    G, R, C = g.groups, g.rows, g.cols
    ks = 4 * G
    kb = job.b_words
    b_pad = _pad(b, (kb * ks, job.n_tiles * C))
    # (n_tiles, words, 4G, cols) -> one row of 4G*cols values per word
    b_words = b_pad.reshape(kb, ks, job.n_tiles, C).transpose(2, 0, 1, 3).reshape(-1, ks * C)
    beats = _to_beats(pack_rows(b_words, get_format(g.acts), "b"), g.b_word_bits, g.load_bytes)
    if codes:
        beats += _to_beats(_params_words(g, job, params), g.p_word_bits, g.load_bytes)

    kc, mt = job.k_chunks, job.m_tiles
    if dense:
        vals = _pad(a, (mt * R, kc * 2 * G))
        codes = np.zeros((mt * R, kc * G), dtype=np.int64)
    else:
        vals = _pad(values, (mt * R, kc * 2 * G))
        codes = _pad(meta, (mt * R, kc * G), ZERO_GROUP_CODE)
    vals = vals.reshape(mt, R, kc, 2 * G).transpose(0, 2, 1, 3).reshape(-1, R * 2 * G)
    codes = codes.reshape(mt, R, kc, G).transpose(0, 2, 1, 3).reshape(-1, R * G)
    v_bits = R * 2 * G * get_format(g.weights).bits
    words = [v | (c << v_bits) for v, c in zip(pack_rows(vals, get_format(g.weights), "a"),
                                                pack_rows(codes, META_FORMAT, "meta"),
                                                strict=True)]
    beats += _to_beats(words, g.a_word_bits, g.load_bytes)
    return job, beats


def _tile_format(geometry, job):
    """Format of one element of a result tile: the accumulator, or the output code."""
    return get_format(geometry.out, "acts") if job.codes else acc_format(geometry.acc_bits)


def split_results(geometry, job, beats, m, n):
    """C (m x n int64) from the result-stream beats of ``job``: accumulators, or the
    output codes' values for a ``codes`` job."""
    g = geometry
    ob, width = g.tile_beats(job.codes), 8 * g.out_bytes
    fmt = _tile_format(g, job)
    tiles = job.m_tiles * job.n_tiles
    if len(beats) != tiles * ob:
        raise ValueError(f"expected {tiles * ob} result beats, got {len(beats)}")
    words = []
    for t in range(tiles):
        word = 0
        for i in range(ob):
            word |= int(beats[t * ob + i]) << (i * width)
        words.append(word & ((1 << (g.rows * g.cols * fmt.bits)) - 1))
    vals = unpack_rows(words, fmt, g.rows * g.cols, "results")
    c = vals.reshape(job.m_tiles, job.n_tiles, g.rows, g.cols).transpose(0, 2, 1, 3)
    return c.reshape(job.m_tiles * g.rows, job.n_tiles * g.cols)[:m, :n].copy()


def _requantize(geometry, c, params, relu):
    g = geometry
    bias, mult, shift = params
    return requantize(c, mult, shift, bias, g.out, relu=relu, acc_bits=g.acc_bits,
                      mult_bits=g.mult_bits, shift_bits=g.shift_bits)


def result_beats(geometry, job, c, params=None):
    """The result-stream beats of ``job`` giving C (inverse of :func:`split_results`);
    C's padding to whole tiles is zero, as the hardware's. A ``codes`` job needs its
    ``params`` (bias, mult, shift per row of C): the beats carry the codes of the
    padded C, padding included."""
    g = geometry
    c = check_integer_array(c, "c")
    padded = _pad(c, (job.m_tiles * g.rows, job.n_tiles * g.cols))
    if job.codes:
        if params is None:
            raise ValueError("a codes job's result beats need its params (bias, mult, shift)")
        params = check_params(g, params, c.shape[0])
        padded = _requantize(g, padded, [_pad(p, (padded.shape[0],)) for p in params],
                             job.relu)
    tiles = padded.reshape(job.m_tiles, g.rows, job.n_tiles, g.cols).transpose(0, 2, 1, 3)
    words = pack_rows(tiles.reshape(-1, g.rows * g.cols), _tile_format(g, job), "c")
    width, ob = 8 * g.out_bytes, g.tile_beats(job.codes)
    mask = (1 << width) - 1
    return [(w >> (i * width)) & mask for w in words for i in range(ob)]


def expected_c(geometry, b, *, a=None, values=None, meta=None, dense=False):
    """C = A x B from the model, wrapped to acc_bits (any of the 16 codes in sparse mode)."""
    _, _, values, meta, a, b = operands(b, a=a, values=values, meta=meta, dense=dense)
    if dense:
        return matmul(a, b, acc_bits=geometry.acc_bits)
    return sparse_matmul(values, meta, b, acc_bits=geometry.acc_bits)



def expected_codes(geometry, b, *, params, relu=False, a=None, values=None, meta=None,
                   dense=False):
    """The output codes' values of a ``codes`` job: ``sim.requant.requantize`` of
    :func:`expected_c` with one (bias, mult, shift) per row of A."""
    c = expected_c(geometry, b, a=a, values=values, meta=meta, dense=dense)
    return _requantize(geometry, c, check_params(geometry, params, c.shape[0]), relu)
