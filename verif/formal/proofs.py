"""The formal harnesses of every design, and the list of proofs that ``make formal`` runs.

Proofs (each one SymbiYosys job; the properties are listed by :func:`run.main`
in ``docs/formal.md``):

- ``lanes``: every product lane (12 format pairs, hw/lanes.py) equals the
  SPEC §1 product for every pair of codes. The lanes are combinational, so the
  proof covers all inputs (no depth involved).
- ``stream_<design>``: the output stream of each stream design (core, output
  stage, layer) under any legal input and any ``ready``: valid held, payload
  stable, beats out = tiles in, nothing lost, reset empties the pipeline;
  unbounded, by k-induction. Covers show stalls, full pipelines, back-to-back
  beats, reset while busy and the design's own interesting states.
- ``accel``: the accelerator (tiny buffers): ``results`` and ``status`` keep the
  stream contract, one status per command, a job's status after exactly its
  result beats; bounded (k-induction did not close within 10 minutes without
  invariants of its sequencer, which are not written yet).
- ``mac``: every MAC unit (12 format pairs, narrowest accumulator): one step
  adds the SPEC product (or nothing) onto the accumulator (or zero), wrapped;
  reset zeroes it. Unbounded (k-induction).
- ``core_values_<w>``: a 2x2 G=1 core (int4 x int4, and ternary x uint4), any
  codes (all 16 metadata codes, the reserved ternary code, dense/sparse per
  beat, accumulate, accumulators that wrap): every result beat equals the SPEC
  §3 sum of its tile; bounded depth, at full rate (a beat every cycle, results
  always taken: the stalls are the stream proofs' part).

The configs are tiny on purpose (a few minutes for all of them on 2 cores);
the properties do not depend on the size, which the random testbenches cover.
"""

from dataclasses import dataclass, field

from amaranth.hdl import (
    Array,
    Assert,
    Assume,
    Cover,
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
    signed,
)
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from sparsecore.hw.accel import model_record
from sparsecore.hw.code_table import CodeTable
from sparsecore.hw.config import (
    AccelConfig,
    CodeTableConfig,
    CoreConfig,
    LayerConfig,
    MacConfig,
    OutputStageConfig,
)
from sparsecore.hw.core import SparseTensorCore
from sparsecore.hw.lanes import ProductLane
from sparsecore.hw.layer import SparseLayer
from sparsecore.hw.output_stage import OutputStage
from sparsecore.hw.registry import DESIGNS, component_for
from sparsecore.sim.accel_perf import AccelGeometry, AccelJob, predict_job
from sparsecore.sim.formats import ACTIVATION_FORMATS, WEIGHT_FORMATS
from sparsecore.verif.formal.harness import (
    Internals,
    OutputStreamChecks,
    assume_legal_input,
    past,
    protocol_checks,
)

__all__ = ["Proof", "proofs", "unproven_designs", "NO_HARNESS_YET", "STREAM_CONFIGS",
           "spec_value", "spec_product",
           "stream_harness", "core_values_harness", "accel_harness"]


# -- SPEC §1, written out independently of hw/lanes.py ---------------------------

def spec_value(fmt, code):
    """The value of a raw code by the SPEC §1 table (the reserved ternary code is 0)."""
    code = Value.cast(code)
    if fmt.name == "ternary":
        return Mux(code == 0b01, 1, Mux(code == 0b11, -1, 0)).as_signed()
    return code.as_signed() if fmt.signed else code.as_unsigned()


def spec_product(w_fmt, w_code, a_fmt, a_code):
    """value(w) * value(a) by SPEC §1. A ternary weight is -1, 0 or +1, so its product is
    written as negate / zero / pass (the same number as a multiplication, and a form the
    SMT solver reasons about far more easily than a multiplier)."""
    a = spec_value(a_fmt, a_code)
    if w_fmt.name == "ternary":
        w_code = Value.cast(w_code)
        return Mux(w_code == 0b01, a, Mux(w_code == 0b11, -a, 0))
    return spec_value(w_fmt, w_code) * a


# -- harness skeleton --------------------------------------------------------------

class _Harness(wiring.Component):
    """The DUT's ports as the harness's own (inputs free), plus the checks of ``build``."""

    def __init__(self, dut, build, extra=None):
        self._dut = dut
        self._build = build
        self.properties = {}   # name -> description, filled when elaborated
        self.covers = {}
        super().__init__({**dut.signature.members, **(extra or {})})

    def elaborate(self, platform):
        m = Module()
        dut = self._dut
        if isinstance(dut, ProductLane):   # combinational, no internals needed
            m.submodules.dut = dut
            internals = None
        else:
            internals = Internals(dut)
            m.submodules.dut = internals.fragment
        for name, member in dut.signature.members.items():
            if member.is_port:
                if member.flow == In:
                    m.d.comb += getattr(dut, name).eq(getattr(self, name))
                else:
                    m.d.comb += getattr(self, name).eq(getattr(dut, name))
            else:
                wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(dut, name)) \
                    if member.flow == In else \
                    wiring.connect(m, getattr(dut, name), wiring.flipped(getattr(self, name)))
        self._build(self, m, dut, internals)
        return m


# -- lanes ---------------------------------------------------------------------------

class _LaneBank(wiring.Component):
    """All 12 product lanes side by side, each with its own free inputs."""

    def __init__(self):
        self.pairs = [(w, a) for w in WEIGHT_FORMATS for a in ACTIVATION_FORMATS]
        self.lanes = {f"{w}_{a}": ProductLane(MacConfig(w, a)) for w, a in self.pairs}
        members = {}
        for key, lane in self.lanes.items():
            members[f"w_{key}"] = In(len(lane.w))
            members[f"a_{key}"] = In(len(lane.a))
        super().__init__(members)
        self.properties = {}
        self.covers = {}

    def elaborate(self, platform):
        m = Module()
        for key, lane in self.lanes.items():
            m.submodules[f"lane_{key}"] = lane
            w_fmt, a_fmt = lane.config.weight_format, lane.config.act_format
            w, a = getattr(self, f"w_{key}"), getattr(self, f"a_{key}")
            m.d.comb += [lane.w.eq(w), lane.a.eq(a)]
            expected = spec_value(w_fmt, w) * spec_value(a_fmt, a)
            self.properties[f"lane_{key}.exact"] = (
                f"{w_fmt.name} x {a_fmt.name}: product = SPEC value(w) * value(a), "
                f"all {2 ** (w_fmt.bits + a_fmt.bits)} code pairs")
            m.d.comb += Assert(lane.product == expected, f"lane_{key}.exact")
            corners = [x * y for x in (w_fmt.min, w_fmt.max) for y in (a_fmt.min, a_fmt.max)]
            for label, value in (("min", min(corners)), ("max", max(corners))):
                self.covers[f"lane_{key}.{label}"] = f"{w_fmt.name} x {a_fmt.name}: product {value}"
                m.d.comb += Cover(lane.product == value, f"lane_{key}.{label}")
        return m


class _MacBank(wiring.Component):
    """All 12 MAC units (accumulators as narrow as their product), each with free inputs."""

    def __init__(self):
        self.macs = {}
        members = {}
        for w in WEIGHT_FORMATS:
            for a in ACTIVATION_FORMATS:
                narrow = MacConfig(w, a).product_bits   # the narrowest legal acc: it wraps
                mac = component_for(MacConfig(w, a, acc_bits=narrow))
                key = f"{w}_{a}"
                self.macs[key] = mac
                for name, member in mac.signature.members.items():
                    if member.flow == In:
                        members[f"{name}_{key}"] = In(member.shape)
        super().__init__(members)
        self.properties = {}
        self.covers = {}

    def elaborate(self, platform):
        m = Module()
        rst = ResetSignal()
        after_reset = past(m, rst, "after_reset", init=1)
        for key, mac in self.macs.items():
            m.submodules[f"mac_{key}"] = mac
            c = mac.config
            inputs = {n: getattr(self, f"{n}_{key}") for n in ("w", "a", "valid", "clear")}
            m.d.comb += [getattr(mac, n).eq(v) for n, v in inputs.items()]
            was = {n: past(m, v, f"was_{n}_{key}") for n, v in inputs.items()}
            was_acc = past(m, mac.acc, f"was_acc_{key}")
            product = spec_value(c.weight_format, was["w"]) * spec_value(c.act_format, was["a"])
            expected = Signal(signed(c.acc_bits), name=f"expected_{key}")   # wraps
            m.d.comb += expected.eq(Mux(was["clear"], 0, was_acc) + Mux(was["valid"], product, 0))
            name = f"mac_{key}"
            self.properties[f"{name}.step"] = (
                f"{c.weights} x {c.acts}, acc_bits {c.acc_bits}: acc' = (0 if clear else acc) "
                f"+ (SPEC product if valid else 0), wrapped")
            self.properties[f"{name}.reset"] = "after reset: acc = 0"
            with m.If(after_reset):
                m.d.comb += Assert(mac.acc == 0, f"{name}.reset")
            with m.Else():
                m.d.comb += Assert(mac.acc == expected, f"{name}.step")
            wrapped = ~after_reset & was["valid"] & ~was["clear"] & (was_acc > 0) & (mac.acc < 0)
            self.covers[f"{name}.wrap"] = "the accumulator wraps past its largest value"
            m.d.comb += Cover(wrapped, f"{name}.wrap")
        return m


# -- stream designs ---------------------------------------------------------------------

def _core_occupancy(core, internals, prefix=""):
    """Tiles inside a SparseTensorCore, from its row-0 control registers, and the
    invariants that the other rows' copies equal row 0's."""
    c = core.config
    def sig(name):
        return internals[prefix + name]
    stages = [("s1_valid", "s1_last"), ("s2_valid", "s2_last")]
    stages += [(f"t{s}_valid", f"t{s}_last") for s in range(core.tree_stages - 1)]
    occupancy = sum(sig(f"{v}_0") & sig(f"{last}_0") for v, last in stages)
    occupancy = occupancy + sig("done_0") + ~sig("run_0") + sig("res_valid_0")
    copies = ["run", "res_valid", "done"] + [f"t{s}_fresh" for s in range(core.tree_stages)]
    copies += [f"t{s}_valid" for s in range(core.tree_stages)]
    copies += [f"t{s}_last" for s in range(core.tree_stages - 1)]
    copies += [f"{s}_{f}" for s in ("s1", "s2") for f in ("valid", "last", "fresh")]
    same = [(f"{prefix}{base}_{i}", sig(f"{base}_{i}") == sig(f"{base}_0"))
            for base in copies for i in range(1, c.rows)]
    return occupancy, core.latency + 1, same


def _stage_occupancy(stage, internals, prefix=""):
    """Beats inside an output stage: one valid flag per register stage, ``latency`` in all
    (``valid1`` .. then the output register's)."""
    names = [f"valid{s}" for s in range(1, stage.latency)] + ["o__valid"]
    return sum(internals[prefix + n] for n in names), len(names)


def stream_harness(dut):
    """The stream-protocol harness of a core, output stage or layer."""

    def build(h, m, dut, internals):
        rst = ResetSignal()
        after_reset = past(m, rst, "after_reset", init=1)
        invariants = []
        covers = {}
        if isinstance(dut, SparseLayer):
            for stream in (dut.weights, dut.activations, dut.params):
                assume_legal_input(m, stream, after_reset, stream_name(dut, stream))
            core_occ, core_cap, invariants = _core_occupancy(dut._core, internals, "core.")
            stage_occ, stage_cap = _stage_occupancy(dut._stage, internals, "stage.")
            out = dut.codes
            tile_in = dut.weights.valid & dut.weights.ready & dut.weights.p.last
            occupancy, capacity = core_occ + stage_occ, core_cap + stage_cap
            progress_when = out.ready & dut.params.valid
            bound = dut.latency + 1
            covers["core_pending"] = ("the core holds a finished tile (results full)",
                                      ~internals["core.run_0"])
            covers["params_late"] = ("a result tile waits for its params",
                                     internals["core.results__valid"] & ~dut.params.valid)
        elif isinstance(dut, SparseTensorCore):
            for stream in (dut.weights, dut.activations):
                assume_legal_input(m, stream, after_reset, stream_name(dut, stream))
            occupancy, capacity, invariants = _core_occupancy(dut, internals)
            out = dut.results
            fire = dut.weights.valid & dut.weights.ready
            tile_in = fire & dut.weights.p.last
            progress_when = out.ready
            bound = dut.latency + 1
            covers["pending"] = ("a finished tile waits in the accumulators",
                                 ~internals["run_0"])
            first = internals["first"]
            ended = Signal(name="a_tile_ended")   # since reset
            with m.If(tile_in):
                m.d.sync += ended.eq(1)
            covers["accumulate"] = ("a tile accumulates onto the previous one",
                                    fire & first & dut.weights.p.accumulate & ended)
            if dut.sparse:
                was_dense = Signal()
                with m.If(fire):
                    m.d.sync += was_dense.eq(dut.weights.p.dense)
                covers["mode_switch"] = ("a sparse tile right after a dense one",
                                         fire & first & was_dense & ~dut.weights.p.dense)
        elif isinstance(dut, CodeTable):
            for stream in (dut.i, dut.table):
                assume_legal_input(m, stream, after_reset, stream_name(dut, stream))
            occupancy, capacity = dut.o.valid, 1   # the read register is the only stage
            out = dut.o
            tile_in = dut.i.valid & dut.i.ready
            progress_when = out.ready
            bound = dut.latency + 1
        elif isinstance(dut, OutputStage):
            assume_legal_input(m, dut.i, after_reset, "i")
            occupancy, capacity = _stage_occupancy(dut, internals)
            out = dut.o
            tile_in = dut.i.valid & dut.i.ready
            progress_when = out.ready
            bound = dut.latency + 1
        else:
            raise ValueError(f"no stream harness for {type(dut).__name__}")
        for name, holds in invariants:
            h.properties[f"invariant.{name}"] = "row copy equals row 0's"
            with m.If(~after_reset):
                m.d.comb += Assert(holds, f"invariant.{name}")
        name = stream_name(dut, out)
        checks = OutputStreamChecks(
            m, out, tile_in=tile_in, occupancy=occupancy, capacity=capacity,
            progress_when=progress_when, progress_bound=bound, rst=rst,
            after_reset=after_reset, name=name)
        h.properties.update({f"{name}.{k}": v for k, v in checks.properties.items()})
        h.covers.update({f"{name}.{k}": d for k, (d, _) in checks.covers.items()})
        for key, (description, cond) in covers.items():
            h.covers[f"{name}.{key}"] = description
            m.d.comb += Cover(cond, f"{name}.{key}")

    return _Harness(dut, build)


def stream_name(dut, stream):
    for name in dut.signature.members:
        if getattr(dut, name) is stream:
            return name
    raise ValueError("stream is not a member of the design")


# -- the accelerator (bounded) ------------------------------------------------------------

def accel_harness(dut):
    """The accelerator's two output streams, bounded from reset.

    ``results`` and ``status`` keep the stream contract; one ``status`` beat per
    command; a job's status comes after exactly ``m_tiles * n_tiles * out_beats``
    result beats (``code_beats`` for a codes job; none for a refused one). Reset
    may come at any cycle.
    """

    def build(h, m, dut, internals):
        c = dut.config
        rst = ResetSignal()
        after_reset = past(m, rst, "after_reset", init=1)
        for stream in (dut.cmd, dut.load):
            assume_legal_input(m, stream, after_reset, stream_name(dut, stream))
        for stream in (dut.results, dut.status):
            props, covers = protocol_checks(m, stream, after_reset, stream_name(dut, stream))
            h.properties.update(props)
            h.covers.update(covers)
        cmd_fire = dut.cmd.valid & dut.cmd.ready
        status_fire = dut.status.valid & dut.status.ready
        result_fire = dut.results.valid & dut.results.ready
        busy = Signal(name="job_open")                 # a command without its status yet
        expected = Signal(2 * c.count_bits + 8, name="job_beats_expected")
        beats = Signal(2 * c.count_bits + 8, name="job_beats")
        with m.If(cmd_fire):
            p = dut.cmd.p
            m.d.sync += [busy.eq(1), beats.eq(0),
                         expected.eq(p.m_tiles * p.n_tiles
                                     * Mux(p.codes, c.code_beats, c.out_beats))]
        with m.If(result_fire):
            m.d.sync += beats.eq(beats + 1)
        with m.If(status_fire):
            m.d.sync += busy.eq(0)
        h.properties["status.one_per_command"] = "a status beat only for an open command"
        h.properties["results.beats_per_job"] = (
            "a job's status follows exactly m_tiles*n_tiles*out_beats result beats, "
            "code_beats for a codes job (none when refused)")
        h.properties["results.only_in_a_job"] = "no result beat outside a job"
        h.properties["core.never_holds"] = (
            "the core takes every beat the sequencer gives it (the buffers' read ports "
            "and the read-data registers have no enable)")
        with m.If(~after_reset):
            m.d.comb += Assert(~status_fire | busy, "status.one_per_command")
            m.d.comb += Assert(~result_fire | busy, "results.only_in_a_job")
            core_in = dut._core.weights
            m.d.comb += Assert(~core_in.valid | core_in.ready, "core.never_holds")
            with m.If(status_fire):
                m.d.comb += Assert(beats == Mux(dut.status.p.error, 0, expected),
                                   "results.beats_per_job")
        h.covers["status.job_done"] = "a job's status after all its result beats"
        h.covers["status.refused"] = "a refused descriptor's status"
        h.covers["status.codes_job_done"] = "a codes job's status after all its code beats"
        codes_job = Signal(name="job_codes")
        with m.If(cmd_fire):
            m.d.sync += codes_job.eq(dut.cmd.p.codes)
        m.d.comb += [Cover(status_fire & ~dut.status.p.error & (beats != 0), "status.job_done"),
                     Cover(status_fire & dut.status.p.error, "status.refused"),
                     Cover(status_fire & ~dut.status.p.error & codes_job & (beats != 0),
                           "status.codes_job_done")]

    return _Harness(dut, build)


# -- values through a tiny core ---------------------------------------------------------

PICK_BITS = 2   # the checked tile is one of the first four after reset

def core_values_harness(config, full_rate=False):
    """A core whose every result beat is compared with the SPEC §3 sum of its beats.

    The reference, in the harness: per accepted beat, ``values[i][2g] *
    B[4g + (code & 3)] + values[i][2g+1] * B[4g + (code >> 2)]`` (sparse) or
    ``sum_t values[i][t] * B[t]`` (dense), added onto zero at a tile's first beat
    unless ``accumulate`` (then onto the previous tile's result), wrapped to
    ``acc_bits``; a finished tile's sums wait in a FIFO for their result beat.
    """
    dut = SparseTensorCore(config)

    def build(h, m, dut, internals):
        c = dut.config
        M, N, G = c.rows, c.cols, c.groups
        wf, af = c.weight_format, c.act_format
        rst = ResetSignal()
        after_reset = past(m, rst, "after_reset", init=1)
        for stream in (dut.weights, dut.activations):
            assume_legal_input(m, stream, after_reset, stream_name(dut, stream))
        w, a, res = dut.weights, dut.activations, dut.results
        fire = w.valid & w.ready
        acc_shape = signed(c.acc_bits)

        # reference accumulators and the tile-start flag, reset like the core
        ref = [[Signal(acc_shape, name=f"ref_{i}_{j}") for j in range(N)] for i in range(M)]
        first = Signal(init=1, name="ref_first")
        total = [[Signal(acc_shape, name=f"ref_total_{i}_{j}") for j in range(N)]
                 for i in range(M)]
        products = {}
        for i in range(M):
            for j in range(N):
                chunk = 0
                for g in range(G):
                    code = w.p.meta[i][g]
                    for s, index in enumerate((code[0:2], code[2:4])):
                        t = 2 * g + s
                        # sparse: B[4g + idx]; dense: B[t] (A uncompressed, 2G per beat)
                        picked = Array(a.p[4 * g + p][j] for p in range(4))
                        act = Mux(w.p.dense, a.p[t][j], picked[index])
                        products[i, j, t] = spec_product(wf, w.p.values[i][t], af, act)
                        chunk += products[i, j, t]
                base = Mux(first & ~w.p.accumulate, 0, ref[i][j])
                m.d.comb += total[i][j].eq(base + chunk)
        with m.If(fire):
            m.d.sync += first.eq(w.p.last)
            m.d.sync += [ref[i][j].eq(total[i][j]) for i in range(M) for j in range(N)]
        if full_rate:
            # Stepping stones at full rate: the product registers hold the SPEC products of
            # the beat two cycles back, the accumulators the reference three cycles back.
            # BMC proves them at every step and then assumes them, so the solver meets the
            # pipeline one stage at a time instead of the whole of it at once.
            for (i, j, t), value in products.items():
                held = past(m, past(m, value, f"p1_{i}_{j}_{t}"), f"p2_{i}_{j}_{t}")
                name = f"lemma.product_{i}_{j}_{t}"
                h.properties[name] = "product register = SPEC product of the beat 2 cycles back"
                m.d.comb += Assert(internals[f"prod_{i}_{j}_{t}"] == held, name)
            for i in range(M):
                for j in range(N):
                    back = ref[i][j]
                    for n in range(dut.latency - 1):
                        back = past(m, back, f"r{n}_{i}_{j}")
                    name = f"lemma.acc_{i}_{j}"
                    h.properties[name] = (f"accumulator = reference {dut.latency - 1} cycles "
                                          "back")
                    m.d.comb += Assert(internals[f"acc_{i}_{j}"] == back, name)

        # One tile, any of the first 2**PICK_BITS, is checked: ``pick`` is a free input
        # held for the whole run, so the proof covers every tile index at once while
        # the harness keeps one expected tile (not a FIFO of them).
        tiles_in = Signal(range(2 ** PICK_BITS + 1), name="ref_tiles_in")
        beats_out = Signal(range(2 ** PICK_BITS + 1), name="ref_beats_out")
        expected = Signal(Value.cast(res.payload).shape(), name="ref_expected")
        accumulated = Signal(name="ref_accumulated")   # the picked tile accumulated
        two_beats = Signal(name="ref_two_beats")       # ... and had two beats or more
        tile_accumulates = Signal(name="ref_tile_accumulates")
        tile_in = fire & w.p.last
        fire_out = res.valid & res.ready
        pick = h.pick   # a free input: which tile is checked
        first_cycle = Signal(init=1, reset_less=True, name="first_cycle")
        m.d.sync += first_cycle.eq(0)
        # values only: reset is the stream proofs' business, so it stays low here
        m.d.comb += Assume(~rst, "values.no_reset")
        if full_rate:
            # a beat on every cycle and results always taken: the timing is fixed, so the
            # bounded search is over values, modes and tile boundaries only
            m.d.comb += [Assume(w.valid & a.valid & res.ready, "values.full_rate")]
        # the row copies of the control registers are equal: proven by stream_core_*
        # (k-induction), assumed here so the solver need not rediscover it per step
        for name, holds in _core_occupancy(dut, internals)[2]:
            m.d.comb += Assume(holds, f"values.{name}")
        was_pick = past(m, pick, "was_pick")
        with m.If(~first_cycle):
            m.d.comb += Assume(pick == was_pick, "values.pick_held")
        with m.If(fire & first):
            m.d.sync += tile_accumulates.eq(w.p.accumulate)
        view = res.payload.shape()(expected)
        with m.If(tile_in):
            m.d.sync += tiles_in.eq(tiles_in + (tiles_in != 2 ** PICK_BITS))
            with m.If(tiles_in == pick):
                m.d.sync += [view[i][j].eq(total[i][j]) for i in range(M) for j in range(N)]
                m.d.sync += [accumulated.eq(Mux(first, w.p.accumulate, tile_accumulates)),
                             two_beats.eq(~first)]
        with m.If(fire_out):
            m.d.sync += beats_out.eq(beats_out + (beats_out != 2 ** PICK_BITS))
        h.properties["results.exact"] = (
            "every result beat = the SPEC §3 sum of its tile's beats (any codes, "
            "dense/sparse per beat, accumulate, wrap modulo 2**acc_bits)")
        h.properties["results.no_extra"] = "a result beat only for a finished tile"
        checked = fire_out & (beats_out == pick)
        h.reference = {"expected": expected, "checked": checked}   # for a simulation of it
        with m.If(checked):
            m.d.comb += [Assert(tiles_in > pick, "results.no_extra"),
                         Assert(Value.cast(res.payload) == expected, "results.exact")]
        was_dense = Signal(name="ref_dense")
        with m.If(fire):
            m.d.sync += was_dense.eq(w.p.dense)
        h.covers["results.accumulated"] = "a checked result of a tile that accumulated"
        h.covers["results.two_beat_tile"] = "a checked result of a tile of two beats"
        h.covers["results.mode_switch"] = "a sparse tile right after a dense one"
        h.covers["results.third_tile"] = "the third tile's result checked"
        m.d.comb += [
            Cover(checked & accumulated, "results.accumulated"),
            Cover(checked & two_beats, "results.two_beat_tile"),
            Cover(fire & first & was_dense & ~w.p.dense & ~first_cycle, "results.mode_switch"),
            Cover(checked & (pick == 2), "results.third_tile"),
        ]

    return _Harness(dut, build, {"pick": In(PICK_BITS)})


# -- the list ---------------------------------------------------------------------------

# Tiny configs per registered design (hw/registry.py label): wide enough to exercise every
# pipeline path (two adder-tree stages with groups=3), narrow enough to prove in seconds.
# The properties do not depend on the size; the random testbenches cover the big configs.
STREAM_CONFIGS = {
    "core": {
        "core_2x2_g1": CoreConfig(rows=2, cols=2, groups=1, weights="int4", acts="int4",
                                  acc_bits=9),
        "core_1x1_g3": CoreConfig(rows=1, cols=1, groups=3, weights="ternary", acts="uint4",
                                  acc_bits=8),
    },
    "output_stage": {
        "output_stage": OutputStageConfig(acc_bits=8, acts="int4", lanes=2, mult_bits=4,
                                          shift_bits=2),
        # the accelerator's pipeline: two stages more
        "output_stage_split": OutputStageConfig(acc_bits=8, acts="int4", lanes=2, mult_bits=4,
                                                shift_bits=2, split_mult=True,
                                                split_shift=True),
    },
    "code_table": {
        "code_table": CodeTableConfig(codes="uint4", out="int4", lanes=2),
    },
    "layer": {
        "layer_2x2_g1": LayerConfig(rows=2, cols=2, groups=1, weights="int4", acts="uint4",
                                    acc_bits=9, mult_bits=4, shift_bits=2),
    },
}
FAST = ("lanes", "mac", "stream_core_2x2_g1", "stream_output_stage",
        "stream_output_stage_split", "stream_code_table")
# The value proofs: narrowest accumulators (they wrap), a multiplier lane and a ternary one.
VALUE_CONFIGS = {
    "int4": CoreConfig(rows=2, cols=2, groups=1, weights="int4", acts="int4", acc_bits=9),
    "ternary": CoreConfig(rows=2, cols=2, groups=1, weights="ternary", acts="uint4",
                          acc_bits=6),
}
# The accelerator: words of one load beat, results of two beats, 2-bit descriptor counts.
# Its output stage: 2-bit multipliers and shifts (int4 codes: a tile in one beat), 2 stripes.
ACCEL_CONFIG = AccelConfig(rows=2, cols=2, groups=1, weights="int4", acts="int4", acc_bits=9,
                           load_bytes=4, out_bytes=3, a_depth=2, b_depth=4, count_bits=2,
                           mult_bits=2, shift_bits=2, p_depth=2)


def _one_tile_codes_cycles(config):
    """Edges of a one-tile codes job from its command to its last code beat, as the cycle
    model predicts them (the output stage's latency included, from the design)."""
    return predict_job(AccelGeometry.of(model_record(config)),
                       AccelJob(1, 1, 1, False, codes=True)).cycles


# a one-tile codes job end to end: reset, its command, its cycles, its status, a margin
ACCEL_DEPTH = _one_tile_codes_cycles(ACCEL_CONFIG) + 4
CORE_VALUES_DEPTH = 10   # results of the first six beats: up to six tiles, or one of six beats


@dataclass(frozen=True)
class Proof:
    """One SymbiYosys job: ``harness()`` builds it, ``tasks`` maps task -> (mode, depth)."""

    name: str
    design: str
    summary: str
    harness: object
    tasks: dict = field(default_factory=dict)
    config: object = None

    @property
    def fast(self):
        """In make test's subset."""
        return self.name in FAST


def _stream_proof(label, config):
    probe = component_for(config)
    probe._MustUse__silence = True   # only asked for its latency
    # k must exceed the progress bound (latency + 1) for the induction to close
    depth = probe.latency + 4
    return Proof(
        f"stream_{label}", f"{type(probe).__name__} {label}",
        "output stream protocol, tile count, progress, reset; k-induction",
        lambda: stream_harness(component_for(config)),
        {"prove": ("prove", depth), "cover": ("cover", depth + 4)}, config)


def _designs_proofs():
    """{registry label: [Proof]} for every registered design that has a harness."""
    found = {"mac": [Proof("mac", "MacUnit x 12 format pairs, narrowest acc_bits",
                           "one accumulate step = SPEC product added, wrapped; reset zeroes",
                           _MacBank, {"prove": ("prove", 2), "cover": ("cover", 4)})]}
    for label, configs in STREAM_CONFIGS.items():
        found[label] = [_stream_proof(name, config) for name, config in configs.items()]
    found["accel"] = [Proof(
        "accel", "SparseAccelerator 2x2 G=1 int4 x int4, tiny buffers",
        "results and status stream contract, one status per command, result beats per "
        "job; bounded from reset", lambda: accel_harness(component_for(ACCEL_CONFIG)),
        {"bmc": ("bmc", ACCEL_DEPTH), "cover": ("cover", ACCEL_DEPTH)}, ACCEL_CONFIG)]
    for label, config in VALUE_CONFIGS.items():
        found["core"].append(Proof(
            f"core_values_{label}",
            f"SparseTensorCore 2x2 G=1 {config.weights} x {config.acts}, acc_bits "
            f"{config.acc_bits}", "every result = SPEC §3 sum, any codes, at full rate; "
            "bounded", lambda config=config: core_values_harness(config, full_rate=True),
            {"bmc": ("bmc", CORE_VALUES_DEPTH), "cover": ("cover", CORE_VALUES_DEPTH)},
            config))
    return found


# Registered designs that have no harness yet, each with the reason; docs/formal.md lists
# them, and the test fails on any other unproven design or on a waiver that is stale.
NO_HARNESS_YET = {}   # CodeTable, waived here before, has its stream proof (stream_code_table)


def unproven_designs():
    """Registry labels with no formal proof (a new design needs a harness here)."""
    return [d.label for d in DESIGNS if d.label not in _designs_proofs()]


def proofs():
    """Every proof: the lanes, then each registered design's, in registry order."""
    found = [Proof("lanes", "ProductLane x 12 format pairs",
                   "each lane = SPEC §1 product for every code pair (combinational)",
                   _LaneBank, {"prove": ("prove", 1), "cover": ("cover", 1)})]
    by_design = _designs_proofs()
    for design in DESIGNS:
        found += by_design.get(design.label, [])
    return found
