"""The accelerator: the tensor core with on-chip buffers and a hardware tile sequencer.

::

    cmd ──> [descriptor check] ──> status (one beat per command: ok or refused)
    load ─> [word assembly] ─┬─> B buffer (whole K x N of B, b_depth words)
                             ├─> P buffer (a codes job's output-stage parameters,
                             │             one word per stripe, p_depth words)
                             └─> A buffers (two stripes of rows x K, a_depth words each)
            [sequencer] ── reads A word + B word per cycle ──> SparseTensorCore
                                                                    │ one tile
                                         raw job ┌──────────────────┤
                                                 │   codes job: OutputStage (P word of
                                                 │              the tile's stripe)
            results <── [result queue: out_bytes per beat] <───────────┘

Reuse scheme (docs/accel.md): B is loaded once per job and stays on chip; A
comes one stripe of ``rows`` rows at a time (all of K), and each stripe is
used for every tile column of C (``n_tiles`` output tiles) before it is
freed. Two stripe buffers let stripe s+1 load while stripe s computes.

External data path: the ``load`` stream (``load_bytes`` per beat) carries the
job's operands in one fixed order, and ``results`` (``out_bytes`` per beat)
brings the result tiles back; nothing else moves data.

Load order of one job (every word little end first, SPEC §4; a word spans
``ceil(bytes / load_bytes)`` beats, the last one zero-padded):

1. B, tile column j = 0 .. n_tiles-1, then word w = 0 .. b_words-1 of that
   column: B rows ``w*4G .. w*4G+4G-1``, columns ``j*cols .. j*cols+cols-1``
   (``b_words = k_chunks`` sparse, ``ceil(k_chunks / 2)`` dense, where a word
   holds two dense chunks: rows ``0..2G-1`` the even one).
P. A ``codes`` job only: the output-stage parameters, stripe s = 0 .. m_tiles-1,
   one word each: ``bias[i]`` (signed ``acc_bits``), then ``mult[i]``
   (``mult_bits``), then ``shift[i]`` (``shift_bits``) of rows ``s*rows + i``.
2. A, stripe s = 0 .. m_tiles-1, then chunk c = 0 .. k_chunks-1: one A word
   (``values[i][t]`` then ``meta[i][g]`` of rows ``s*rows ..``; dense mode:
   ``values[i][t] = A[s*rows + i][c*2G + t]`` and ``meta`` ignored).

Results: output tiles in order (stripe s, then tile column j), each tile cut
into beats of ``out_bytes``, low bytes first: a raw job's tile is the core's
result beat (``[i][j]`` signed ``acc_bits``) in ``out_beats`` beats; a
``codes`` job's is the output stage's codes (``[i][j]`` the ``out`` code of
``clip(relu?(round_half_even((C[i][j] + bias[i]) * mult[i] / 2**shift[i])))``,
``sim/requant.py``) in ``code_beats`` beats.
"""

import enum

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsecore.hw.config import AccelConfig
from sparsecore.hw.core import SparseTensorCore
from sparsecore.hw.emit import derived
from sparsecore.hw.layer import drive_stage_input
from sparsecore.hw.output_stage import OutputStage

__all__ = ["SparseAccelerator", "Refusal", "model_record", "B_SLICES", "READ_STAGES"]

# Registers between the buffers' read ports and the core's inputs: the block RAMs sit
# where the device has them (their data comes late after the clock) and the core's
# multipliers elsewhere; one register beside the block RAMs, one beside the core.
READ_STAGES = 2
# Words in one bank of B (an ECP5 DP16KD holds 2,048 words of 9 bits): a deeper memory
# is cascaded block RAMs with a multiplexer on their slow outputs; in banks, each
# bank's word is registered first and the bank picked after.
B_BANK_BITS = 11
B_BANK_WORDS = 1 << B_BANK_BITS
# B's buffer is up to this many memories side by side, each with its own address registers.
B_SLICES = 4


class Refusal(enum.IntFlag):
    """Why a descriptor was refused (the ``reason`` bits of a status beat)."""

    EMPTY = 1      # m_tiles, n_tiles or k_chunks is 0
    A_TOO_BIG = 2  # k_chunks > a_depth: a stripe does not fit its buffer
    B_TOO_BIG = 4  # n_tiles * b_words > b_depth: B does not fit
    P_TOO_BIG = 8  # a codes job with m_tiles > p_depth: its parameters do not fit


def model_record(config):
    """What the cycle model (``sim.accel_perf.AccelGeometry.of``) reads of an accelerator,
    without emitting it: the manifest's ``config``, ``derived``, ``latency``,
    ``stage_latency`` and ``check_cycles`` for ``config`` (an AccelConfig)."""
    accel = SparseAccelerator(config)
    accel._MustUse__silence = True   # asked for its numbers only, never elaborated
    return {"config": config.as_dict(), "derived": derived(config), "latency": accel.latency,
            "stage_latency": accel.stage_latency, "check_cycles": accel.check_cycles}


class SparseAccelerator(wiring.Component):
    """SparseTensorCore + operand buffers + tile sequencer, one descriptor per GEMM.

    Parameters:
        config: :class:`hw.config.AccelConfig` (core fields, stream widths, depths).

    Members:
        cmd: In(stream.Signature(cmd_layout)), one descriptor per GEMM:

            - ``m_tiles``, ``n_tiles``: C's size in core tiles (rows, cols);
            - ``k_chunks``: K in chunks of the mode (``4G`` sparse, ``2G`` dense);
            - ``dense``: 0 sparse (2:4 compressed A), 1 dense;
            - ``codes``: 0 raw accumulators out, 1 output codes (the output stage,
              with one parameter word per stripe in the load stream);
            - ``relu``: a ``codes`` job's ReLU (clamp negatives to 0).

            Taken only when the accelerator is idle (``cmd.ready``).
        load: In(stream.Signature(8 * load_bytes)), the job's operands in the
            order of the module docstring; ready only while a buffer waits for them.
        results: Out(stream.Signature(8 * out_bytes)), result tiles, ``out_beats``
            each (raw) or ``code_beats`` (codes).
        status: Out(stream.Signature(status_layout)), one beat per command after
            its last result beat (``error`` 0), or right after the check when the
            descriptor is refused (``error`` 1, ``reason`` a :class:`Refusal`; no
            load or result beat moves).

    Timing (:mod:`sim.accel_perf` is the exact model, with the load stream always
    valid and results always ready): the check takes :attr:`check_cycles`; the
    load stream is then taken every cycle while a buffer is free; the sequencer
    issues one core beat per cycle whenever the stripe it needs is loaded, and
    starts a tile no sooner than ``out_beats`` (``codes_period``) cycles after the
    previous one, so the result queue keeps up and neither the core nor the output
    stage ever holds. The output stage (``cols`` lanes) takes a codes job's tile a
    row per cycle: its codes reach the queue :attr:`stage_latency` +
    ``rows - 1`` cycles after the raw tile would.

    Backpressure on ``results`` never reaches the core or the output stage: a tile
    takes one of :attr:`result_credits` places in the result queue when its
    first chunk is issued, so the sequencer waits before that chunk, and what is
    already in the pipeline always finds a place; the core never holds.
    """


    def __init__(self, config):
        if not isinstance(config, AccelConfig):
            self._MustUse__silence = True   # refused, never meant to be elaborated
            raise ValueError(f"config must be an AccelConfig, not {config!r}")
        self._config = config
        self._core = SparseTensorCore(config.core)
        self._stage = OutputStage(config.output_stage)
        # elaborated with the accelerator
        self._core._MustUse__silence = self._stage._MustUse__silence = True
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "load": In(stream.Signature(8 * config.load_bytes)),
            "results": Out(stream.Signature(8 * config.out_bytes)),
            "status": Out(stream.Signature(self.status_layout)),
        })

    # -- contract ---------------------------------------------------------------

    @property
    def config(self):
        return self._config

    @property
    def cmd_layout(self):
        c = self._config
        return data.StructLayout({
            "m_tiles": c.count_bits, "n_tiles": c.count_bits,
            "k_chunks": c.count_bits, "dense": 1, "codes": 1, "relu": 1,
        })

    @property
    def status_layout(self):
        return data.StructLayout({"error": 1, "reason": len(Refusal)})

    @property
    def a_word_layout(self):
        core = self._core.weights_layout
        return data.StructLayout({"values": core["values"].shape, "meta": core["meta"].shape})

    @property
    def p_word_layout(self):
        """One stripe's output-stage parameters (output channel i = the stripe's row i)."""
        c = self._config
        return data.StructLayout({
            "bias": data.ArrayLayout(signed(c.acc_bits), c.rows),
            "mult": data.ArrayLayout(unsigned(c.mult_bits), c.rows),
            "shift": data.ArrayLayout(unsigned(c.shift_bits), c.rows),
        })

    @property
    def stage_latency(self):
        """The output stage's latency: what a codes job's tile adds to :attr:`latency`."""
        return self._stage.latency

    @property
    def check_cycles(self):
        """Edges from the command's to the one that starts loading or refuses it: B's size
        ``n_tiles * b_words`` comes from a shift-and-add over ``count_bits`` edges (no
        wide multiplier on the clock's path), then one edge compares."""
        return self._config.count_bits + 1

    @property
    def result_credits(self):
        """Places for result tiles in the result queue (its depth).

        A tile holds one from the edge that issues its first chunk to the one that sends
        its last beat: its ``k_chunks - 1`` further chunks, then at most ``latency +
        out_beats + 2`` edges for a raw tile, ``latency + rows + stage_latency +
        code_beats + 5`` for a codes tile; tiles start ``k_chunks`` and ``out_beats``
        (``codes_period``) edges apart or more. With one place more than tiles that fit
        in that window, the sequencer never waits for a credit while ``results`` is
        ready, and the cycle model stays exact.
        """
        c = self._config
        raw = (self.latency + c.out_beats + 2) // c.out_beats + 2
        codes = ((self.latency + c.rows + self.stage_latency + c.code_beats + 5)
                 // c.codes_period + 2)
        return max(raw, codes) + 1

    @property
    def core_latency(self):
        return self._core.latency

    @property
    def latency(self):
        """Edges from a tile's last read at the read ports to its result beat: the
        read-data registers (:data:`READ_STAGES`) and the core's latency."""
        return READ_STAGES + self._core.latency

    def manifest_extra(self):
        c = self._config
        core = self._core.manifest_extra()
        return {
            "latency": self.latency,
            "core_latency": self.core_latency,
            "check_cycles": self.check_cycles,
            "stage_latency": self.stage_latency,
            "result_credits": self.result_credits,
            "throughput": core["throughput"],
            "pipeline": core["pipeline"],
            "buffers": {
                "a": {"words": 2 * c.a_depth, "word_bits": c.a_word_bits,
                      "bits": c.a_buffer_bits, "scheme": "two stripes (ping-pong)"},
                "b": {"words": c.b_depth, "word_bits": c.b_word_bits, "bits": c.b_buffer_bits,
                      "scheme": "whole B of a job, loaded once"},
                "p": {"words": c.p_depth, "word_bits": c.p_word_bits, "bits": c.p_buffer_bits,
                      "scheme": "a codes job's output-stage parameters, one word per stripe"},
            },
            "load_order": ("B by tile column then word; a codes job's parameters by stripe; "
                           "then A by stripe then chunk"),
            "output_stage": {"out": c.out, "mult_bits": c.mult_bits, "shift_bits": c.shift_bits,
                             "lanes": c.output_stage.lanes, "rows_per_cycle": 1,
                             "rounding": "half_to_even", "latency": self.stage_latency,
                             "config": c.output_stage.as_dict()},
            "refusal": {r.name: int(r) for r in Refusal},
        }

    # -- hardware ---------------------------------------------------------------

    def elaborate(self, platform):
        c = self._config
        m = Module()
        m.submodules.core = core = self._core
        m.submodules.stage = stage = self._stage
        G, W8 = c.groups, 8 * c.load_bytes
        cb = kb = c.count_bits

        m.submodules.a_mem = a_mem = Memory(shape=self.a_word_layout, depth=2 * c.a_depth,
                                            init=[])
        # B, the largest buffer, is B_SLICES memories side by side (bits of one word), each
        # with its own address registers: one address register would drive every block
        # RAM of B across the device. Each slice counts its own read and write address
        # (the same count, kept apart: synthesis merges equal registers, not counters).
        # Slices are a multiple of 9 bits wide (the block RAMs' 9/18/36-bit ports), so
        # they take no more block RAMs than one memory of the whole word would.
        b_bits = core.acts_layout.size
        width = -(-b_bits // B_SLICES // 9) * 9
        cuts = [*range(0, b_bits, width), b_bits]
        # Each slice is banks of B_BANK_WORDS words (the last one shorter): all banks read
        # at once, each into its own register, and the bank is picked after that register.
        banks = [(lo, min(lo + B_BANK_WORDS, c.b_depth))
                 for lo in range(0, c.b_depth, B_BANK_WORDS)]
        bank_bits = max(1, (len(banks) - 1).bit_length())
        b_wrs, b_rds = [], []           # [slice][bank]
        for i, (lo, hi) in enumerate(zip(cuts, cuts[1:])):
            b_wrs.append([])
            b_rds.append([])
            for d, (first_word, end_word) in enumerate(banks):
                mem = Memory(shape=hi - lo, depth=end_word - first_word, init=[])
                m.submodules[f"b_mem{i}_{d}"] = mem
                b_wrs[-1].append(mem.write_port())
                b_rds[-1].append(mem.read_port())
        word_bits = (c.b_depth - 1).bit_length() or 1
        bank_of = (lambda addr: addr[B_BANK_BITS:word_bits]) if len(banks) > 1 else None
        m.submodules.p_mem = p_mem = Memory(shape=self.p_word_layout, depth=c.p_depth, init=[])
        a_wr, p_wr = a_mem.write_port(), p_mem.write_port()
        a_rd, p_rd = a_mem.read_port(), p_mem.read_port()

        # -- descriptor ------------------------------------------------------------
        m_tiles = Signal(cb)
        n_tiles = Signal(cb)
        k_chunks = Signal(kb)
        dense = Signal()
        codes = Signal()                # output codes (through the stage), not raw results
        relu = Signal()
        b_words = Signal(kb)            # B words per tile column
        b_total = Signal(cb + kb)       # B words of the job
        running = Signal()              # loading and computing a job
        reason = Signal(len(Refusal))
        status_valid = Signal()
        idle = Signal(init=1)
        check = Signal()                # B's size is being worked out
        step = Signal(range(cb + 1))    # shift-and-add steps left
        n_left = Signal(cb)             # multiplier bits not yet used
        addend = Signal(cb + kb)        # b_words << step

        m.d.comb += [self.cmd.ready.eq(idle), self.status.valid.eq(status_valid),
                     self.status.p.error.eq(reason != 0), self.status.p.reason.eq(reason)]
        with m.If(self.cmd.valid & idle):
            p = self.cmd.p
            words = Mux(p.dense, (p.k_chunks + 1) >> 1, p.k_chunks)
            m.d.sync += [
                idle.eq(0), check.eq(1), step.eq(cb),
                m_tiles.eq(p.m_tiles), n_tiles.eq(p.n_tiles), k_chunks.eq(p.k_chunks),
                dense.eq(p.dense), codes.eq(p.codes), relu.eq(p.relu), b_words.eq(words),
                n_left.eq(p.n_tiles), addend.eq(words), b_total.eq(0),
            ]
        with m.If(check):
            with m.If(step != 0):   # b_total = n_tiles * b_words, one bit per edge
                m.d.sync += [step.eq(step - 1), n_left.eq(n_left >> 1),
                             addend.eq(addend << 1)]
                with m.If(n_left[0]):
                    m.d.sync += b_total.eq(b_total + addend)
            with m.Else():
                bad = Cat((m_tiles == 0) | (n_tiles == 0) | (k_chunks == 0),
                          k_chunks > c.a_depth, b_total > c.b_depth,
                          codes & (m_tiles > c.p_depth))
                m.d.sync += [check.eq(0), reason.eq(bad)]
                with m.If(bad.any()):
                    m.d.sync += status_valid.eq(1)
                with m.Else():
                    m.d.sync += running.eq(1)
        with m.If(self.status.valid & self.status.ready):
            m.d.sync += [status_valid.eq(0), idle.eq(1), reason.eq(0)]

        # -- load engine: bytes -> words -> buffers ------------------------------
        nb_a, nb_b, nb_p = c.a_word_beats, c.b_word_beats, c.p_word_beats
        nb_max = max(nb_a, nb_b, nb_p)
        collect = Signal(max(1, (nb_max - 1) * W8))
        l_phase_p = Signal()            # loading a codes job's parameters (after B)
        l_phase_a = Signal()            # loading A stripes (after B and parameters)
        l_done = Signal()
        l_beat = Signal(range(max(2, nb_max)))
        l_word = Signal(cb + kb)
        l_stripe = Signal(cb)           # A stripes fully loaded
        c_stripe = Signal(cb)           # A stripes whose every read has been issued

        nb = Mux(l_phase_a, nb_a - 1, Mux(l_phase_p, nb_p - 1, nb_b - 1))
        words = Mux(l_phase_a, k_chunks, Mux(l_phase_p, m_tiles, b_total))
        free = (l_stripe - c_stripe)[:2] < 2   # a stripe buffer is free
        m.d.comb += self.load.ready.eq(running & ~l_done & (~l_phase_a | free))
        beat = self.load.p

        def word_of(n):
            top = (n - 1) * W8
            return Cat(collect[len(collect) - top:], beat) if top else beat

        # B's write ports are a register stage: their address, data and enable nets reach
        # every block RAM of B (the largest buffer, spread over the device), so they
        # start at flops, not at the load handshake. A word lands one edge after its
        # last beat; B is read only once an A stripe has loaded after it, so no read
        # sees it early. B's words come in order, so a slice's write address counts its
        # writes since the command.
        b_wr_data = Signal(b_bits)
        b_wr_en = Signal()
        m.d.sync += [b_wr_data.eq(word_of(nb_b)), b_wr_en.eq(0)]
        for i, (ports, lo, hi) in enumerate(zip(b_wrs, cuts, cuts[1:])):
            addr = Signal(word_bits, name=f"b_wr_addr{i}")
            with m.If(self.cmd.valid & idle):
                m.d.sync += addr.eq(0)
            with m.Elif(b_wr_en):
                m.d.sync += addr.eq(addr + 1)
            for d, port in enumerate(ports):
                here = (bank_of(addr) == d) if bank_of else 1
                m.d.comb += [port.addr.eq(addr), port.data.eq(b_wr_data[lo:hi]),
                             port.en.eq(b_wr_en & here)]
        m.d.comb += [
            a_wr.addr.eq(Mux(l_stripe[0], c.a_depth, 0) + l_word),
            a_wr.data.eq(word_of(nb_a)),
            p_wr.addr.eq(l_word),
            p_wr.data.eq(word_of(nb_p)),
        ]
        with m.If(self.load.valid & self.load.ready):
            if nb_max > 1:
                m.d.sync += collect.eq(Cat(collect[W8:], beat))
            with m.If(l_beat != nb):
                m.d.sync += l_beat.eq(l_beat + 1)
            with m.Else():
                m.d.sync += [l_beat.eq(0), l_word.eq(l_word + 1)]
                m.d.comb += [a_wr.en.eq(l_phase_a), p_wr.en.eq(l_phase_p)]
                m.d.sync += b_wr_en.eq(~l_phase_a & ~l_phase_p)
                with m.If(l_word == words - 1):
                    m.d.sync += l_word.eq(0)
                    with m.If(l_phase_p):
                        m.d.sync += [l_phase_p.eq(0), l_phase_a.eq(1)]
                    with m.Elif(~l_phase_a):   # B done: a codes job's parameters next
                        m.d.sync += [l_phase_p.eq(codes), l_phase_a.eq(~codes)]
                    with m.Else():
                        m.d.sync += l_stripe.eq(l_stripe + 1)
                        with m.If(l_stripe == m_tiles - 1):
                            m.d.sync += l_done.eq(1)

        # -- sequencer: one core beat per cycle ------------------------------------
        s1_valid = Signal()             # the read ports hold a beat
        s1_last = Signal()
        s1_half = Signal()
        # the two read-data registers hold beats; the second is the core's input
        rd_valid = [Signal(name=f"s{2 + n}_valid") for n in range(READ_STAGES)]
        rd_last = [Signal(name=f"s{2 + n}_last") for n in range(READ_STAGES)]
        chunk = Signal(kb)
        col = Signal(cb)
        b_addrs = [Signal(word_bits, name=f"b_rd_addr{i}") for i in range(len(b_rds))]
        OB, CB, CP = c.out_beats, c.code_beats, c.codes_period
        pace = Signal(range(max(2, OB, CP)))
        loaded = l_phase_a & (c_stripe != l_stripe)
        active = running & (c_stripe != m_tiles)
        first = chunk == 0
        issue = Signal()
        last_chunk = chunk == k_chunks - 1
        # A tile's first chunk takes a place for its result (a credit, see the result
        # queue below); its other chunks follow on the next edges. So tiles reach the
        # core as far apart as their first chunks (codes_period, >= rows, for a codes
        # job), and nothing after the sequencer ever waits: the core never holds (its
        # ``weights.ready`` is always high, which the formal harness proves), and the
        # read ports and the read-data registers have no enable.
        credits = Signal(range(self.result_credits + 1), init=self.result_credits)
        m.d.comb += issue.eq(active & loaded & (~first | ((pace == 0) & (credits != 0))))

        m.d.comb += a_rd.addr.eq(Mux(c_stripe[0], c.a_depth, 0) + chunk)
        for ports, addr in zip(b_rds, b_addrs):
            m.d.comb += [port.addr.eq(addr) for port in ports]
        with m.If(issue & first):
            m.d.sync += pace.eq(Mux(codes, CP - 1, OB - 1))
        with m.Elif(pace != 0):
            m.d.sync += pace.eq(pace - 1)
        m.d.sync += [s1_valid.eq(issue), rd_valid[0].eq(s1_valid), rd_last[0].eq(s1_last),
                     rd_valid[1].eq(rd_valid[0]), rd_last[1].eq(rd_last[0])]
        with m.If(issue):
            m.d.sync += [s1_last.eq(last_chunk), s1_half.eq(chunk[0]), chunk.eq(chunk + 1)]
            with m.If(~dense | chunk[0] | last_chunk):
                m.d.sync += [addr.eq(addr + 1) for addr in b_addrs]
            with m.If(last_chunk):
                m.d.sync += [chunk.eq(0), col.eq(col + 1)]
                with m.If(col == n_tiles - 1):
                    m.d.sync += [col.eq(0), c_stripe.eq(c_stripe + 1)]
                    m.d.sync += [addr.eq(0) for addr in b_addrs]

        # The read-data registers: the A word and the B word. The first register takes
        # the ports' words (every bank of B, and the bank each slice read), nothing else:
        # a block RAM's data comes late after the clock. On the way into the second, each
        # slice's bank is picked and a dense chunk's half (the odd chunk's rows move down
        # to 0..2G-1).
        a_words = [Signal(self.a_word_layout, name=f"a_word{n}") for n in range(READ_STAGES)]
        b_word = Signal(core.acts_layout.size, name="b_word")
        odd = Signal(name="odd0")       # the first register's B word holds an odd chunk
        m.d.sync += [a_words[0].eq(a_rd.data), a_words[1].eq(a_words[0]), odd.eq(s1_half)]
        picked = []
        for i, (ports, addr) in enumerate(zip(b_rds, b_addrs)):
            held = [Signal(len(port.data), name=f"b_bank{i}_{d}") for d, port in enumerate(ports)]
            m.d.sync += [h.eq(port.data) for h, port in zip(held, ports)]
            if bank_of:
                read, took = (Signal(bank_bits, name=f"b_sel{i}_{n}") for n in range(2))
                m.d.sync += [read.eq(bank_of(addr)), took.eq(read)]
                pick = held[0]
                for d in range(1, len(held)):
                    pick = Mux(took == d, held[d], pick)
                picked.append(pick)
            else:
                picked.append(held[0])
        word = core.acts_layout(Cat(*picked))
        m.d.sync += b_word.eq(Cat(
            Mux(dense & odd, word[k + 2 * G].as_value(), word[k].as_value())
            if k < 2 * G else word[k].as_value() for k in range(4 * G)))
        w, a = core.weights, core.activations
        m.d.comb += [
            w.valid.eq(rd_valid[-1]), a.valid.eq(rd_valid[-1]),
            w.p.values.eq(a_words[-1].values), w.p.meta.eq(a_words[-1].meta),
            w.p.dense.eq(dense), w.p.last.eq(rd_last[-1]), w.p.accumulate.eq(0),
            a.p.eq(b_word),
        ]

        # -- output stage: a codes job's tiles, a row per cycle, with the stripe's parameters
        # The stage has cols lanes: row r of the core's result tile enters it with row r's
        # bias, mult and shift; the tile is taken from the core with its last row. The
        # parameter buffer's address is a register (no logic between the stream handshakes
        # and the block RAM): p_addr is the stripe of the tile entering now or next. The
        # port's word is registered (p_next: nothing but routing after the block RAM's
        # slow output). Row 0 of a tile takes p_next and keeps a copy (p_cur) for the
        # other rows; at row 0 of a stripe's last tile p_addr moves on, the port shows
        # the next word an edge later and p_next at the edge after, and the next stripe's
        # row 0 comes codes_period >= 3 edges later.
        R, row_bits = c.rows, c.cols * c.out_format.bits
        r_in = Signal(range(max(2, R)))  # row of the tile entering the stage
        j_col = Signal(cb)              # tile column of the tile entering it
        p_addr = Signal(range(c.p_depth))
        p_cur = Signal(self.p_word_layout)
        p_next = Signal(self.p_word_layout)
        m.d.sync += p_next.eq(p_rd.data)
        row_fire = stage.i.valid & stage.i.ready
        in_first, in_last = r_in == 0, r_in == R - 1
        tile_fire = row_fire & in_last
        m.d.comb += [
            p_rd.addr.eq(p_addr),
            stage.i.valid.eq(core.results.valid & codes),
        ]
        word = self.p_word_layout(Mux(in_first, p_next.as_value(), p_cur.as_value()))
        drive_stage_input(m, stage.i, core.results.p, word, relu, c.rows, c.cols, row=r_in)
        with m.If(row_fire):
            m.d.sync += r_in.eq(Mux(in_last, 0, r_in + 1))
            with m.If(in_first):
                m.d.sync += p_cur.eq(p_next)
                with m.If(j_col == n_tiles - 1):
                    m.d.sync += p_addr.eq(p_addr + 1)
        with m.If(tile_fire):
            m.d.sync += j_col.eq(Mux(j_col == n_tiles - 1, 0, j_col + 1))

        # rows of codes out of the stage -> one tile (row 0 in the low bits)
        r_out = Signal(range(max(2, R)))
        gathered = Signal(max(1, (R - 1) * row_bits))
        row_last = r_out == R - 1
        codes_tile = (Cat(gathered[len(gathered) - (R - 1) * row_bits:], stage.o.p)
                      if R > 1 else stage.o.p.as_value())

        # -- results: tiles -> queue -> beats (out_beats / code_beats a tile) ------------
        # Neither the core nor the output stage ever waits for the results stream: a
        # tile took a credit when its first chunk was issued and gives it back when its
        # last beat leaves, and the queue has a place for every credit. results.ready
        # moves the queue's read side only (its beat counter and read pointer): no wide
        # register's enable, no path back to the core, the stage or the sequencer.
        O8 = 8 * c.out_bytes
        m.submodules.queue = queue = SyncFIFO(width=max(OB, CB) * O8,
                                              depth=self.result_credits)
        out_beat = Signal(range(max(2, OB, CB)))
        out_col = Signal(cb)            # tile column and stripe of the tile going out
        out_stripe = Signal(cb)
        out_last = out_beat == Mux(codes, CB - 1, OB - 1)
        out_taken = self.results.valid & self.results.ready
        raw_fire = core.results.valid & core.results.ready & ~codes
        codes_fire = stage.o.valid & stage.o.ready
        m.d.comb += [
            self.results.valid.eq(queue.r_rdy),
            self.results.p.eq(queue.r_data.word_select(out_beat, O8)),
            core.results.ready.eq(~codes | (stage.i.ready & in_last)),
            stage.o.ready.eq(1),
            queue.w_data.eq(Mux(codes, codes_tile, core.results.p.as_value())),
            queue.w_en.eq(raw_fire | (codes_fire & row_last)),
            queue.r_en.eq(out_taken & out_last),
        ]
        take, give = issue & first, out_taken & out_last
        with m.If(take & ~give):
            m.d.sync += credits.eq(credits - 1)
        with m.Elif(give & ~take):
            m.d.sync += credits.eq(credits + 1)
        with m.If(codes_fire):
            m.d.sync += r_out.eq(Mux(row_last, 0, r_out + 1))
            if R > 1:
                m.d.sync += gathered.eq(Cat(gathered[row_bits:], stage.o.p))
        with m.If(out_taken):
            m.d.sync += out_beat.eq(out_beat + 1)
            with m.If(out_last):
                m.d.sync += [out_beat.eq(0), out_col.eq(out_col + 1)]
                with m.If(out_col == n_tiles - 1):
                    m.d.sync += [out_col.eq(0), out_stripe.eq(out_stripe + 1)]
                with m.If((out_col == n_tiles - 1) & (out_stripe == m_tiles - 1)):
                    m.d.sync += [running.eq(0), status_valid.eq(1), out_stripe.eq(0),
                                 l_phase_a.eq(0), l_phase_p.eq(0), l_done.eq(0),
                                 l_stripe.eq(0), c_stripe.eq(0), j_col.eq(0),
                                 p_addr.eq(0)]
        return m
