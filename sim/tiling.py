"""Tiling a GEMM onto the tensor core: the beats it consumes and the results it returns.

The core (``hw.core.SparseTensorCore``, docs/core.md) computes one ``rows x cols``
output tile at a time and consumes one K-chunk per beat: ``4*groups`` of K in
sparse mode, ``2*groups`` in dense mode. This module turns C = A x B into that
beat sequence and back, with plain *values* (-1/0/1 for ternary, never bit
codes); packing values into bus words is the testbench's job.

Order: output tiles row-major over C (tile row, then tile column); inside a
tile, K-chunks in ascending K. Padding is zeros: rows of A past M, columns of B
past N, and K up to a whole chunk (a padded sparse group has values 0 and the
canonical all-zero code 0b1110).

One beat (index n) of a :class:`Beats` is:

============  ===============  ==================================================
field         shape            meaning
============  ===============  ==================================================
values        (rows, 2G)       sparse: kept values, two per group; dense: A chunk
meta          (rows, G)        sparse: 4-bit codes ``idx0 | idx1 << 2``; dense: 0
acts          (4G, cols)       sparse: B chunk; dense: B chunk in rows 0..2G-1
dense         ()               True for a dense beat
last          ()               True on the beat that ends a tile
accumulate    ()               on a tile's first beat: add onto the previous
                               tile's result instead of starting from zero
============  ===============  ==================================================

The expected result of every tile comes from the model's ``sparse_matmul`` and
``matmul`` (SPEC §3 meaning, any of the 16 codes) and ``wrap`` (acc_bits).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from sparsecore.sim.arith import check_acc_bits, check_positive_int, wrap
from sparsecore.sim.formats import check_integer_array
from sparsecore.sim.gemm import matmul, sparse_matmul
from sparsecore.sim.sparsity import CANONICAL_CODES, GROUP, check_compressed, compress_2to4

__all__ = ["Geometry", "Beats", "BeatTables", "expand_runs", "TiledGemm", "tile_gemm",
           "expected_results", "assemble", "explain_mismatch"]

ZERO_GROUP_CODE = CANONICAL_CODES["0000"]
KEPT_PER_GROUP = 2  # 2:4: two of every GROUP weights are kept (SPEC §3)


@dataclass(frozen=True)
class Geometry:
    """What tiling needs to know of a core: tile size, groups per beat, acc_bits.

    sim/ does not import hw/, so K per beat follows from SPEC §3 here (a sparse
    beat is ``groups`` groups of GROUP, a dense one the KEPT_PER_GROUP * groups
    values the same lanes take); :meth:`of` checks it against the numbers the
    config record or the manifest states.
    """

    rows: int
    cols: int
    groups: int
    acc_bits: int = 32

    def __post_init__(self):
        for name in ("rows", "cols", "groups"):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name)))
        object.__setattr__(self, "acc_bits", check_acc_bits(self.acc_bits))

    @classmethod
    def of(cls, config):
        """From a config record (``hw.config.CoreConfig``), a manifest's ``config``
        mapping, or a whole manifest (a mapping with ``config`` and ``derived``).

        Where the source states ``k_sparse``/``k_dense`` (a CoreConfig's
        properties, a manifest's ``derived``), a disagreement is a ValueError.
        """
        if isinstance(config, Mapping):
            stated = config.get("derived", {})
            fields = config.get("config", config)
        else:
            stated = {k: getattr(config, k) for k in ("k_sparse", "k_dense")
                      if hasattr(config, k)}
            fields = {k: getattr(config, k) for k in ("rows", "cols", "groups", "acc_bits")
                      if hasattr(config, k)}
        missing = [k for k in ("rows", "cols", "groups", "acc_bits") if k not in fields]
        if missing:
            raise ValueError(f"config must give rows, cols, groups and acc_bits; "
                             f"{', '.join(missing)} missing from {config!r}")
        geometry = cls(fields["rows"], fields["cols"], fields["groups"], fields["acc_bits"])
        for name in ("k_sparse", "k_dense"):
            if name in stated and stated[name] != getattr(geometry, name):
                raise ValueError(f"{name} is {stated[name]!r} in the config but SPEC §3 "
                                 f"tiling with groups={geometry.groups} needs "
                                 f"{getattr(geometry, name)}")
        return geometry

    @property
    def k_sparse(self):
        """K per sparse beat: ``groups`` groups of four."""
        return GROUP * self.groups

    @property
    def k_dense(self):
        """K per dense beat: as many values as a sparse beat keeps."""
        return KEPT_PER_GROUP * self.groups

    def k_per_beat(self, dense):
        return self.k_dense if dense else self.k_sparse


@dataclass
class Beats:
    """A sequence of beats for the core (see the module docstring for the fields)."""

    values: np.ndarray      # (n, rows, 2G) int64
    meta: np.ndarray        # (n, rows, G) int64
    acts: np.ndarray        # (n, 4G, cols) int64
    dense: np.ndarray       # (n,) bool
    last: np.ndarray        # (n,) bool
    accumulate: np.ndarray  # (n,) bool

    def __len__(self):
        return len(self.dense)

    @property
    def n_tiles(self):
        return int(self.last.sum())

    def k_of_beat(self, geometry):
        """K consumed by each beat."""
        return np.where(self.dense, geometry.k_dense, geometry.k_sparse)

    @classmethod
    def concat(cls, parts):
        parts = list(parts)
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("values", "meta", "acts", "dense", "last", "accumulate")))

    def select(self, index):
        """The beats at ``index`` (a slice or index array), as a new Beats."""
        return Beats(self.values[index], self.meta[index], self.acts[index],
                     self.dense[index], self.last[index], self.accumulate[index])


def expand_runs(runs):
    """The row index that ``runs`` plays: (n, 2) ``(first, count)`` rows, each standing for
    the rows ``first, first + 1, ..., first + count - 1``, in order."""
    runs = check_integer_array(runs, "runs").reshape(-1, 2)
    first, count = runs[:, 0], runs[:, 1]
    if (count < 0).any():
        raise ValueError(f"runs: counts must be >= 0, not {int(count[count < 0][0])}")
    start = np.cumsum(count) - count          # where each run begins in the index
    return np.arange(int(count.sum()), dtype=np.int64) + np.repeat(first - start, count)


@dataclass(frozen=True)
class BeatTables:
    """The beats of a tiled GEMM without repeating operand beats.

    A GEMM streams every weight chunk once per tile column and every
    activation chunk once per tile row; here each is stored once. Beat ``n``
    is weight row ``weight_index[n]`` (values, meta and the dense/last/
    accumulate flags, which depend on the chunk only) with activation row
    ``act_index[n]``. Both indices are kept as runs of consecutive rows
    (``weight_runs``, ``act_runs``: (n, 2) ``(first row, count)``, see
    :func:`expand_runs`): one run per output tile, however long K is.
    :meth:`expand` gives the :class:`Beats` themselves.
    """

    values: np.ndarray        # (weight rows, rows, 2G) int64
    meta: np.ndarray          # (weight rows, rows, G) int64
    dense: np.ndarray         # (weight rows,) bool
    last: np.ndarray          # (weight rows,) bool
    accumulate: np.ndarray    # (weight rows,) bool
    acts: np.ndarray          # (activation rows, 4G, cols) int64
    weight_runs: np.ndarray   # (runs, 2) int64: (first weight row, count)
    act_runs: np.ndarray      # (runs, 2) int64: (first activation row, count)

    def __len__(self):
        return int(self.weight_runs[:, 1].sum())

    @property
    def weight_index(self):
        """(n,) int64: the weight row of every beat."""
        return expand_runs(self.weight_runs)

    @property
    def act_index(self):
        """(n,) int64: the activation row of every beat."""
        return expand_runs(self.act_runs)

    def weight_rows(self):
        """The weight table as :class:`Beats` (activations zero): one per weight row."""
        w = len(self.values)
        return Beats(self.values, self.meta, np.zeros((w, 0, self.acts.shape[2]), np.int64),
                     self.dense, self.last, self.accumulate)

    def expand(self):
        w, a = self.weight_index, self.act_index
        return Beats(self.values[w], self.meta[w], self.acts[a], self.dense[w], self.last[w],
                     self.accumulate[w])

    @classmethod
    def concat(cls, parts):
        """The beats of ``parts`` (BeatTables of one geometry) back to back, as one table:
        the tables stacked, each part's runs moved to where its rows now are."""
        parts = list(parts)
        if not parts:
            raise ValueError("parts must hold at least one BeatTables")

        def moved(runs, rows):
            offsets = np.cumsum([0] + [len(r) for r in rows[:-1]])
            return np.concatenate([r + np.array([o, 0]) for r, o in zip(runs, offsets,
                                                                        strict=True)])

        weights = [p.values for p in parts]
        acts = [p.acts for p in parts]
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("values", "meta", "dense", "last", "accumulate", "acts")),
                   weight_runs=moved([p.weight_runs for p in parts], weights),
                   act_runs=moved([p.act_runs for p in parts], acts))


@dataclass
class TiledGemm:
    """A GEMM cut into beats, with what is needed to put C back together.

    ``tables`` holds the beats compactly; ``beats`` expands them on first use
    (a GEMM of millions of beats need never expand them: the engine plays the
    tables, see :mod:`sparsecore.verif.engine`).
    """

    geometry: Geometry
    tables: BeatTables
    shape: tuple              # (M, N, K) of the user's GEMM
    dense: bool
    tile_origin: np.ndarray   # (n_tiles, 2): (row, col) of each result tile in C
    final: np.ndarray         # (n_tiles,) bool: this result completes its output tile
    _expected: np.ndarray | None = field(default=None, repr=False)
    _beats: Beats | None = field(default=None, repr=False)

    @property
    def beats(self):
        """Every beat, in streaming order (:class:`Beats`)."""
        if self._beats is None:
            self._beats = self.tables.expand()
        return self._beats

    @property
    def n_beats(self):
        return len(self.tables)

    @property
    def n_tiles(self):
        """Result tiles (one result beat each)."""
        return len(self.tile_origin)

    @property
    def macs(self):
        """M * N * K of the user's GEMM (SPEC §5)."""
        m, n, k = self.shape
        return m * n * k

    @property
    def expected(self):
        """(n_tiles, rows, cols) int64 results the core must return, from the model."""
        if self._expected is None:
            self._expected = expected_results(self.beats, self.geometry)
        return self._expected


def _pad_to(arr, shape):
    out = np.zeros(shape, dtype=np.int64)
    out[tuple(slice(0, s) for s in arr.shape)] = arr
    return out


def _split_parts(n_chunks, k_parts):
    """Boundaries cutting n_chunks into k_parts contiguous, nearly equal, non-empty parts."""
    k_parts = min(check_positive_int("k_parts", k_parts), n_chunks)
    return np.linspace(0, n_chunks, k_parts + 1).round().astype(int)


def tile_gemm(geometry, b, *, a=None, values=None, meta=None, dense=False, k_parts=1):
    """Cut C = A x B into the core's beats.

    Arguments:
        geometry: :class:`Geometry` (or anything :meth:`Geometry.of` takes).
        b: B, K x N integer values.
        a: A, M x K integer values (dense mode, or sparse mode when A is 2:4:
            it is compressed with the canonical codes).
        values, meta: sparse mode only, A already compressed: M x 2*ceil(K/4)
            values and M x ceil(K/4) codes (any of the 16 codes).
        dense: run the GEMM in dense mode.
        k_parts: cut each output tile's K into this many tiles; all but the
            first accumulate onto the one before (at most one per chunk).

    Returns a :class:`TiledGemm`. Raises ValueError for shapes that do not agree.
    """
    g = geometry if isinstance(geometry, Geometry) else Geometry.of(geometry)
    b = check_integer_array(b, "b")
    if b.ndim != 2:
        raise ValueError(f"b: expected a 2-D matrix (K x N), got shape {b.shape}")
    k, n = b.shape
    if (a is None) == (values is None and meta is None):
        raise ValueError("give either a, or values and meta")
    if a is not None:
        a = check_integer_array(a, "a")
        if a.ndim != 2 or a.shape[1] != k:
            raise ValueError(f"a shape {a.shape} does not match b shape {b.shape}: "
                             f"expected (M, {k})")
        m = a.shape[0]
        if not dense:
            values, meta = compress_2to4(a)
    else:
        if dense:
            raise ValueError("dense mode takes a, not values and meta")
        if values is None or meta is None:
            raise ValueError("give both values and meta")
        values, meta = check_compressed(values, meta)
        m = meta.shape[0]
        if meta.shape[1] != -(-k // GROUP):
            raise ValueError(f"meta shape {meta.shape} does not match b shape {b.shape}: "
                             f"expected (M, {-(-k // GROUP)}) groups for K={k}")
    if min(m, n, k) < 1:
        raise ValueError(f"GEMM sizes must be >= 1, not M={m}, N={n}, K={k}")

    k_beat = g.k_per_beat(dense)
    n_chunks = -(-k // k_beat)
    tm, tn = -(-m // g.rows), -(-n // g.cols)
    mp, np_, kp = tm * g.rows, tn * g.cols, n_chunks * k_beat
    b_pad = _pad_to(b, (kp, np_))
    # acts per (chunk, tile column): (n_chunks, tn, k_beat, cols)
    acts = b_pad.reshape(n_chunks, k_beat, tn, g.cols).transpose(0, 2, 1, 3)
    if dense:
        a_pad = _pad_to(a, (mp, kp))
        vals = a_pad.reshape(tm, g.rows, n_chunks, k_beat).transpose(0, 2, 1, 3)
        codes = np.zeros((tm, n_chunks, g.rows, g.groups), dtype=np.int64)
        # Dense beats use activation rows 0..2G-1; the rest of the 4G rows is zero.
        unused = np.zeros(acts.shape[:2] + (g.k_sparse - k_beat, g.cols), dtype=np.int64)
        acts = np.concatenate([acts, unused], axis=2)
    else:
        gp = n_chunks * g.groups
        vals = _pad_to(values, (mp, KEPT_PER_GROUP * gp)).reshape(
            tm, g.rows, n_chunks, g.k_dense).transpose(0, 2, 1, 3)
        codes = np.full((mp, gp), ZERO_GROUP_CODE, dtype=np.int64)
        codes[:m, :meta.shape[1]] = meta
        codes = codes.reshape(tm, g.rows, n_chunks, g.groups).transpose(0, 2, 1, 3)

    bounds = _split_parts(n_chunks, k_parts)
    part_last = np.zeros(n_chunks, dtype=bool)
    part_last[bounds[1:] - 1] = True
    part_accumulate = np.zeros(n_chunks, dtype=bool)
    part_accumulate[bounds[1:-1]] = True

    # Output tile (tile row i, tile column j) plays its K chunks in order: weight rows
    # i*n_chunks .. and activation rows j*n_chunks .., one run of n_chunks each.
    tile_row, tile_col = (x.reshape(-1) for x in np.meshgrid(np.arange(tm), np.arange(tn),
                                                               indexing="ij"))
    chunks = np.full(tm * tn, n_chunks, dtype=np.int64)
    weight_runs = np.stack([tile_row * n_chunks, chunks], axis=1)
    act_runs = np.stack([tile_col * n_chunks, chunks], axis=1)
    tables = BeatTables(
        values=np.ascontiguousarray(vals).reshape(tm * n_chunks, g.rows, g.k_dense),
        meta=np.ascontiguousarray(codes).reshape(tm * n_chunks, g.rows, g.groups),
        dense=np.full(tm * n_chunks, bool(dense)),
        last=np.tile(part_last, tm),
        accumulate=np.tile(part_accumulate, tm),
        acts=np.ascontiguousarray(acts.transpose(1, 0, 2, 3)).reshape(
            tn * n_chunks, g.k_sparse, g.cols),
        weight_runs=weight_runs,
        act_runs=act_runs,
    )
    parts = len(bounds) - 1
    origin = np.stack([tile_row * g.rows, tile_col * g.cols], axis=1)
    final = np.zeros(parts, dtype=bool)
    final[-1] = True
    return TiledGemm(g, tables, (m, n, k), bool(dense),
                     tile_origin=np.repeat(origin, parts, axis=0),
                     final=np.tile(final, tm * tn))


def _tile_sum(beats, geometry):
    """One tile's sum (before accumulate), from the model, wrapped to acc_bits."""
    g = geometry
    total = np.zeros((g.rows, g.cols), dtype=np.int64)
    dense = beats.dense
    if (~dense).any():
        sp = beats.select(~dense)
        total += sparse_matmul(
            np.concatenate(list(sp.values), axis=1), np.concatenate(list(sp.meta), axis=1),
            np.concatenate(list(sp.acts), axis=0), acc_bits=g.acc_bits)
    if dense.any():
        de = beats.select(dense)
        total += matmul(
            np.concatenate(list(de.values), axis=1),
            np.concatenate(list(de.acts[:, :g.k_dense]), axis=0), acc_bits=g.acc_bits)
    return wrap(total, g.acc_bits)


def expected_results(beats, geometry, previous=None):
    """The (n_tiles, rows, cols) results the core returns for ``beats``, from the model.

    A tile whose first beat has ``accumulate`` starts from the previous tile's
    result: ``previous`` for the first tile (default zero, as after reset);
    sums wrap to acc_bits. Beats after the last ``last`` make no result.
    """
    g = geometry if isinstance(geometry, Geometry) else Geometry.of(geometry)
    ends = np.flatnonzero(beats.last) + 1
    starts = np.concatenate([[0], ends[:-1]])
    out = np.zeros((len(ends), g.rows, g.cols), dtype=np.int64)
    previous = (np.zeros((g.rows, g.cols), dtype=np.int64) if previous is None
                else check_integer_array(previous, "previous"))
    for t, (s, e) in enumerate(zip(starts, ends, strict=True)):
        tile = _tile_sum(beats.select(slice(s, e)), g)
        if beats.accumulate[s]:
            tile = wrap(previous + tile, g.acc_bits)
        out[t] = previous = tile
    return out


def assemble(tiled, results):
    """Put C (M x N int64) back together from the core's (n_tiles, rows, cols) results."""
    g = tiled.geometry
    results = check_integer_array(results, "results")
    if results.shape != (len(tiled.final), g.rows, g.cols):
        raise ValueError(f"results shape {results.shape} does not match the tiling: "
                         f"expected {(len(tiled.final), g.rows, g.cols)}")
    m, n, _ = tiled.shape
    tm, tn = -(-m // g.rows), -(-n // g.cols)
    finals = results[tiled.final]
    c = finals.reshape(tm, tn, g.rows, g.cols).transpose(0, 2, 1, 3)
    return c.reshape(tm * g.rows, tn * g.cols)[:m, :n].copy()


def explain_mismatch(beats, geometry, tile, row, col, got):
    """Where in K a wrong result ``got`` at (tile, row, col) most likely comes from.

    Returns a dict with the tile's beats, the expected value and, when one K
    group alone explains the difference, ``beat``/``group``/``code`` of that
    group and the code whose selection gives exactly ``got`` (a mux that
    picked the wrong activation); otherwise the first group with a nonzero
    contribution.
    """
    g = geometry if isinstance(geometry, Geometry) else Geometry.of(geometry)
    ends = np.flatnonzero(beats.last) + 1
    starts = np.concatenate([[0], ends[:-1]])
    s, e = int(starts[tile]), int(ends[tile])
    expected = int(expected_results(beats.select(slice(0, e)), g)[tile][row, col])
    diff = int(wrap(np.array(got - expected), g.acc_bits))
    info = {"tile": tile, "row": row, "col": col, "expected": expected, "got": got,
            "beats": (s, e - 1), "k_per_beat": [int(k) for k in beats.k_of_beat(g)[s:e]]}
    first_nonzero = None
    for n in range(s, e):
        dense = bool(beats.dense[n])
        for grp in range(g.groups):
            vals = beats.values[n, row, 2 * grp:2 * grp + 2][None]
            if dense:
                b_rows = beats.acts[n, 2 * grp:2 * grp + 2, col][:, None]
                part = int(matmul(vals, b_rows, acc_bits=g.acc_bits)[0, 0])
                code = None
                alternatives = {}
            else:
                b_rows = beats.acts[n, 4 * grp:4 * grp + 4, col][:, None]
                code = int(beats.meta[n, row, grp])
                alternatives = {
                    alt: int(sparse_matmul(vals, np.array([[alt]]), b_rows,
                                           acc_bits=g.acc_bits)[0, 0])
                    for alt in range(16)}
                part = alternatives[code]
            where = {"beat": n, "dense": dense, "group": grp, "code": code}
            if first_nonzero is None and part != 0:
                first_nonzero = where
            for alt, alt_part in alternatives.items():
                if alt != code and wrap(np.array(alt_part - part), g.acc_bits) == diff:
                    return {**info, **where, "explained_by_code": alt}
    return {**info, **(first_nonzero or {})}
