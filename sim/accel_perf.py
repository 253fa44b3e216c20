"""Cycle model of the accelerator (``hw.accel.SparseAccelerator``): a job's cycles, exactly.

The accelerator holds all of a job's B on chip and streams A one stripe of
``rows`` rows (all of K) at a time into two ping-pong stripe buffers; each
stripe is used for every tile column of C before its buffer is refilled. The
load stream (``load_bytes`` per cycle) carries B, then the stripes in order.

Edges are counted from the edge that accepts the command (edge 0), with the
load stream always valid and the result stream always ready:

- the descriptor check takes ``check_cycles`` edges; loading starts at edge
  ``check_cycles + 1``, one beat per edge while a buffer is free;
- B takes ``LB = n_tiles * b_words * b_word_beats`` beats (a ``codes`` job's
  parameters follow, ``m_tiles * p_word_beats`` more), each stripe
  ``LA = k_chunks * a_word_beats``; stripe s may start loading once the reads
  of stripe s-2 (same buffer) have all been issued (the edge after its last);
- the sequencer reads one (A word, B word) pair per edge from the edge after
  its stripe is loaded; a tile's first read comes no sooner than ``out_beats``
  edges after the previous tile's first read (``codes_period = max(code_beats,
  rows, 3)`` for a ``codes`` job: the result beats, the row-serial output stage
  and its parameter reads keep up), and no sooner than the edge after the
  previous tile's last read;
- a read shows at the read ports one edge later; a tile's result goes into the
  result queue ``latency`` edges after its last read shows there (the
  manifest's ``latency``: the read-data registers, then the core), then
  ``out_beats`` beats; a codes job's tile enters the output stage a row per
  edge and its codes go into the queue ``latency + stage_latency + rows - 1``
  edges after, then ``code_beats`` beats.

Word widths and beats per word are the manifest's (:class:`AccelGeometry`).

``cycles`` = the edge of the last result beat (from the command's edge). A
refused command's status beat is taken at edge ``check_cycles + 1``. Jobs played
back to back add :data:`JOB_GAP` edges between one's last result and the next
one's command (:func:`predict_jobs`).
"""

from collections.abc import Mapping
from dataclasses import dataclass

from sparsecore.sim.arith import check_positive_int
from sparsecore.sim.formats import get_format
from sparsecore.sim.tiling import Geometry

__all__ = ["AccelGeometry", "AccelJob", "AccelPerf", "plan_job", "predict_job", "predict_jobs",
           "JOB_GAP"]

# Between jobs played back to back: the last result's edge raises status, the status
# moves at the next edge and the next command at the one after.
JOB_GAP = 2

@dataclass(frozen=True)
class AccelGeometry:
    """What the model needs to know of an accelerator, as its manifest states it.

    The word widths and beats per word are inputs, not derived here: the
    accelerator's config record (``hw.config.AccelConfig``) derives them once and
    the manifest carries them (``derived``); :meth:`of` reads a manifest, or the
    same record made without emitting (``hw.accel.model_record``).
    """

    rows: int
    cols: int
    groups: int
    weights: str
    acts: str
    acc_bits: int
    load_bytes: int
    out_bytes: int
    a_depth: int
    b_depth: int
    p_depth: int
    out: str
    mult_bits: int
    shift_bits: int
    a_word_bits: int
    b_word_bits: int
    p_word_bits: int
    a_word_beats: int
    b_word_beats: int
    p_word_beats: int
    out_beats: int
    code_beats: int
    codes_period: int
    latency: int
    stage_latency: int
    check_cycles: int

    CONFIG = ("rows", "cols", "groups", "weights", "acts", "acc_bits", "load_bytes",
              "out_bytes", "a_depth", "b_depth", "p_depth", "out", "mult_bits", "shift_bits")
    DERIVED = ("a_word_bits", "b_word_bits", "p_word_bits", "a_word_beats", "b_word_beats",
               "p_word_beats", "out_beats", "code_beats", "codes_period")
    TOP = ("latency", "stage_latency", "check_cycles")

    def __post_init__(self):
        for name in (*self.CONFIG, *self.DERIVED):
            if name not in ("weights", "acts", "out"):
                check_positive_int(name, getattr(self, name))
        for name in self.TOP:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
        get_format(self.weights, "weights")
        get_format(self.acts, "acts")
        get_format(self.out, "acts")

    @classmethod
    def of(cls, manifest):
        """From an accelerator manifest (``config``, ``derived``, ``latency``,
        ``stage_latency``, ``check_cycles``)."""
        if not isinstance(manifest, Mapping) or not {"config", "derived"} <= set(manifest):
            raise ValueError(f"manifest must be an accelerator manifest, not {manifest!r}")
        cfg, der = manifest["config"], manifest["derived"]
        missing = ([f"config.{f}" for f in cls.CONFIG if f not in cfg]
                   + [f"derived.{f}" for f in cls.DERIVED if f not in der]
                   + [f for f in cls.TOP if f not in manifest])
        if missing:
            raise ValueError(f"accelerator manifest lacks {', '.join(missing)}")
        return cls(**{f: cfg[f] for f in cls.CONFIG}, **{f: der[f] for f in cls.DERIVED},
                   **{f: manifest[f] for f in cls.TOP})

    @property
    def core(self):
        return Geometry(self.rows, self.cols, self.groups, self.acc_bits)

    def tile_beats(self, codes):
        """Result-stream beats per output tile: output codes or raw accumulators."""
        return self.code_beats if codes else self.out_beats

    def tile_period(self, codes):
        """Fewest edges between one tile's first read and the next one's: its result
        beats (raw), or its code beats and its rows through the output stage (codes)."""
        return self.codes_period if codes else self.out_beats

    def tile_latency(self, codes):
        """Edges from a tile's last read at the read ports to its result's write into the
        result queue: ``latency`` (read-data register and core), then (codes) the stage's
        and one edge per further row (the stage takes a row per edge)."""
        return self.latency + (self.stage_latency + self.rows - 1 if codes else 0)


@dataclass(frozen=True)
class AccelJob:
    """One descriptor: C's size in tiles, K in chunks of the mode, the mode, and whether
    the output stage turns the results into codes (with ReLU or not)."""

    m_tiles: int
    n_tiles: int
    k_chunks: int
    dense: bool
    codes: bool = False
    relu: bool = False

    @property
    def b_words(self):
        """B words per tile column: a word holds one sparse chunk or two dense ones."""
        return -(-self.k_chunks // 2) if self.dense else self.k_chunks

    def refusal(self, geometry):
        """The refusal bits the hardware answers (0: accepted); see hw.accel.Refusal."""
        bits = 0
        if min(self.m_tiles, self.n_tiles, self.k_chunks) == 0:
            bits |= 1
        if self.k_chunks > geometry.a_depth:
            bits |= 2
        if self.n_tiles * self.b_words > geometry.b_depth:
            bits |= 4
        if self.codes and self.m_tiles > geometry.p_depth:
            bits |= 8
        return bits


def plan_job(geometry, m, n, k, *, dense, codes=False, relu=False):
    """The descriptor of C[m x n] = A[m x k] x B[k x n] (sizes >= 1); with ``codes`` the
    output stage's codes of C come out instead of C."""
    g = geometry
    for name, v in (("m", m), ("n", n), ("k", k)):
        check_positive_int(name, v)
    return AccelJob(-(-m // g.rows), -(-n // g.cols), -(-k // g.core.k_per_beat(dense)),
                    bool(dense), bool(codes), bool(relu))


@dataclass(frozen=True)
class AccelPerf:
    """The model's figures for one job."""

    job: AccelJob
    cycles: int            # command edge .. last result beat (or status, when refused)
    load_beats: int
    load_bytes: int
    compute_beats: int     # beats into the core
    peak: int              # MACs per cycle at full use in the job's mode
    refused: int           # refusal bits, 0 when accepted

    @property
    def padded_macs(self):
        return self.compute_beats * self.peak

    def utilization(self, macs):
        """``macs / (cycles * peak)`` for the user's ``macs`` (SPEC §5)."""
        return macs / (self.cycles * self.peak)


def predict_job(geometry, job):
    """:class:`AccelPerf` of ``job`` (an :class:`AccelJob`) on ``geometry``."""
    g = geometry
    peak = g.rows * g.cols * g.core.k_per_beat(job.dense)
    refused = job.refusal(g)
    if refused:
        return AccelPerf(job, g.check_cycles + 1, 0, 0, 0, peak, refused)
    kc, n_t, ob = job.k_chunks, job.n_tiles, g.tile_beats(job.codes)
    pace = g.tile_period(job.codes)
    lb = n_t * job.b_words * g.b_word_beats
    if job.codes:   # the parameter words follow B
        lb += job.m_tiles * g.p_word_beats
    la = kc * g.a_word_beats
    period = max(kc, pace)          # first read to first read of the next tile
    next_load = g.check_cycles + 1 + lb
    stripe_end = []                 # edge of each stripe's last read
    prev_first = None               # first-read edge of the previous tile
    prev_last = None
    for s in range(job.m_tiles):
        start = next_load if s < 2 else max(next_load, stripe_end[s - 2] + 1)
        loaded = start + la - 1
        next_load = loaded + 1
        first = loaded + 1
        if prev_first is not None:
            first = max(first, prev_first + pace, prev_last + 1)
        last_first = first + (n_t - 1) * period
        prev_first, prev_last = last_first, last_first + kc - 1
        stripe_end.append(prev_last)
    cycles = prev_last + 1 + g.tile_latency(job.codes) + ob
    beats = lb + job.m_tiles * la
    return AccelPerf(job, cycles, beats, beats * g.load_bytes, job.m_tiles * n_t * kc, peak, 0)


def predict_jobs(geometry, jobs):
    """Cycles of ``jobs`` played back to back (each command right after the previous
    status): from the first command's edge to the last job's last result beat."""
    perfs = [predict_job(geometry, job) for job in jobs]
    return sum(p.cycles for p in perfs) + JOB_GAP * (len(perfs) - 1)
