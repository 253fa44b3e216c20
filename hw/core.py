"""The 2:4 sparse tensor core: an M x N output tile on M*N*2G product lanes.

Sparse mode multiplies 2:4-compressed weights (two kept values and one 4-bit
code per group of four, SPEC §3) by a K-chunk of 4*G activation rows per beat;
dense mode feeds the same product lanes with 2*G uncompressed weights and 2*G
activation rows per beat. Each kept value's 2-bit index drives a 4:1
multiplexer that picks its activation row inside its group; every one of the 16
codes is legal and means ``values[2g] * B[4g + (code & 3)] + values[2g+1] *
B[4g + (code >> 2)]``.

Dense mode reuses the same multiplexers: the activation rows 2g and 2g+1 that
dense lanes need are steered (once per column, shared by all rows) into
positions 0 and 1 of group g, and every code is forced to ``0b0100``. So the
per-lane logic is identical in both modes; only N*2G activation and M*G code
multiplexers are added before the array.

Pipeline (one register stage per line)::

    beat accepted -> [input regs: values, codes, steered acts, last, fresh]
                  -> [4:1 mux + product lane: M*N*2G product regs]
                  -> [adder tree, a register every TREE_LEVELS_PER_STAGE levels]
                  -> [accumulator (acc_bits, wraps) -> results register]

A finished tile moves from the accumulator into the one-beat results register.
If that register is still full and not being read, the finished tile waits in
the accumulator (``pending``) and the whole pipeline holds until it can move.
The enable ``run = ~pending`` is a register, so ``results.ready`` never
reaches the pipeline enables combinationally. The control registers (run, the
stage valid/last/fresh bits, results valid) exist once per tile row, each copy
enabling only its row's registers: one shared copy would fan out to every
register of the array and set the clock of large arrays.
"""

from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sparsecore.hw.config import CoreConfig
from sparsecore.hw.lanes import code_shape, product

__all__ = ["SparseTensorCore", "TREE_LEVELS_PER_STAGE", "DENSE_CODE"]

# Two adder levels per register keep a tree stage no deeper than the product lane.
TREE_LEVELS_PER_STAGE = 2
# Dense mode drives every group's multiplexers with this code: idx0 = 0, idx1 = 1.
DENSE_CODE = 0b0100


def _tree_levels(n):
    levels = 0
    while n > 1:
        n = (n + 1) // 2
        levels += 1
    return levels


class SparseTensorCore(wiring.Component):
    """2:4 sparse tensor core: C[M x N] (+)= A[M x K] x B[K x N], one K-chunk per beat.

    Parameters:
        config: :class:`hw.config.CoreConfig` (rows M, cols N, groups G, weight
            and activation formats, acc_bits).
        sparse: True (default) for the sparse-capable core. False builds the
            dense-only core with the same M*N*2G lanes, for area comparisons:
            no ``meta`` or ``dense`` field, 2G activation rows, no
            multiplexers; it behaves as the sparse-capable core in dense mode.

    Members:
        weights: In(stream.Signature(weights_layout)), one beat per K-chunk, with
            the tile descriptor as sideband fields:

            - ``values[i][t]`` (raw weight codes, i < M, t < 2G): sparse mode,
              the kept values of row i, two per group in ascending position
              order (value 2g+s belongs to group g); dense mode, A[i][k0 + t].
            - ``meta[i][g]`` (4 bits, g < G): sparse mode, the code
              ``idx0 | idx1 << 2`` of group g of row i; ignored in dense mode.
            - ``dense`` (1 bit): 0 sparse, 1 dense. Read on every beat; the
              tilers keep it constant within a tile.
            - ``last`` (1 bit): this beat ends the tile; its result follows.
            - ``accumulate`` (1 bit): read on a tile's first beat only: 0 starts
              the tile from zero, 1 adds onto the previous tile's final
              accumulators (the values in its result beat).
        activations: In(stream.Signature(acts_layout)), ``[k][j]`` (k < 4G,
            j < N) = raw activation code of B[k0 + k][j]; dense mode uses rows
            k < 2G only. A beat is taken together with a weights beat: both
            streams transfer in the same cycle.
        results: Out(stream.Signature(results_layout)), one beat per tile:
            ``[i][j]`` = C[i][j] as a signed ``acc_bits`` value, wrapped modulo
            2**acc_bits.

    Packed layouts (SPEC §4): element ``[i][j]`` of an M x N array of w-bit
    fields sits at bits ``[(i*N + j)*w, (i*N + j + 1)*w)`` of its field.

    Latency: :attr:`latency` cycles from the clock edge that accepts a tile's
    last beat to the first edge at which its result beat can be taken.

    Throughput: one beat per cycle whenever both inputs are valid and finished
    tiles can leave (the results register is free or read in the same cycle):
    K = 4G per cycle sparse, 2G dense, with no bubble between tiles or mode
    changes. A tile's result drains while the next tile computes.
    """

    def __init__(self, config, *, sparse=True):
        if not isinstance(config, CoreConfig):
            self._MustUse__silence = True   # refused, never meant to be elaborated
            raise ValueError(f"config must be a CoreConfig, not {config!r}")
        if not isinstance(sparse, bool):
            self._MustUse__silence = True
            raise ValueError(f"sparse must be True or False, not {sparse!r}")
        self._config = config
        self._sparse = sparse
        super().__init__({
            "weights": In(stream.Signature(self.weights_layout)),
            "activations": In(stream.Signature(self.acts_layout)),
            "results": Out(stream.Signature(self.results_layout)),
        })

    # -- contract ---------------------------------------------------------------

    @property
    def config(self):
        return self._config

    @property
    def sparse(self):
        """True for the sparse-capable core, False for the dense-only variant."""
        return self._sparse

    @property
    def modes(self):
        return ("sparse", "dense") if self._sparse else ("dense",)

    @property
    def weights_layout(self):
        c = self._config
        fields = {"values": data.ArrayLayout(
            data.ArrayLayout(code_shape(c.weight_format), c.products_per_lane), c.rows)}
        if self._sparse:
            fields["meta"] = data.ArrayLayout(data.ArrayLayout(4, c.groups), c.rows)
            fields["dense"] = 1
        return data.StructLayout({**fields, "last": 1, "accumulate": 1})

    @property
    def acts_layout(self):
        c = self._config
        return data.ArrayLayout(data.ArrayLayout(code_shape(c.act_format), c.cols),
                                c.k_sparse if self._sparse else c.k_dense)

    @property
    def results_layout(self):
        c = self._config
        return data.ArrayLayout(data.ArrayLayout(signed(c.acc_bits), c.cols), c.rows)

    @property
    def tree_levels(self):
        """Adder levels that sum one output's 2G products."""
        return _tree_levels(self._config.products_per_lane)

    @property
    def tree_stages(self):
        """Register stages inside the adder tree (at least one)."""
        return max(1, -(-self.tree_levels // TREE_LEVELS_PER_STAGE))

    @property
    def latency(self):
        """Cycles from accepting a tile's last beat to its result beat being valid.

        Input registers (1) + product lanes (1) + adder tree (:attr:`tree_stages`)
        + accumulator into the results register (1).
        """
        return 3 + self.tree_stages

    def macs_per_cycle(self, dense):
        """Multiply-accumulates per cycle, counted on K: M*N*4G sparse, M*N*2G dense."""
        c = self._config
        return c.rows * c.cols * (c.k_dense if dense else c.k_sparse)

    def manifest_extra(self):
        c = self._config
        k = {"sparse": c.k_sparse, "dense": c.k_dense}
        return {
            "latency": self.latency,
            "sparse_capable": self._sparse,
            "throughput": {
                "k_per_cycle": {m: k[m] for m in self.modes},
                "macs_per_cycle": {m: self.macs_per_cycle(m == "dense") for m in self.modes},
                "multipliers": c.multipliers,
                "beats_per_cycle": 1,
                "results_per_tile": 1,
            },
            "pipeline": {
                "input_stages": 1, "product_stages": 1,
                "tree_levels": self.tree_levels, "tree_stages": self.tree_stages,
                "accumulator_stages": 1,
            },
            "descriptor": {
                "where": "weights beat sideband fields",
                "dense": "0 sparse, 1 dense (per beat)",
                "last": "1 on the beat that ends a tile",
                "accumulate": "first beat of a tile: 0 start from zero, 1 add onto the "
                              "previous tile's accumulators",
            },
            "dense_code": DENSE_CODE,
        }

    # -- hardware ---------------------------------------------------------------

    def elaborate(self, platform):
        c = self._config
        m = Module()
        M, N, G, P = c.rows, c.cols, c.groups, c.products_per_lane
        w_in, a_in, res = self.weights, self.activations, self.results

        # The control registers exist once per tile row: copy i enables only row i's
        # registers, so no enable fans out to the whole array (its routing set the
        # clock of big arrays). The copies see the same inputs and so always hold
        # the same values; each one's next value depends on itself (through run),
        # so synthesis does not merge them back into one.
        def copies(name, init=0):
            return [Signal(name=f"{name}_{i}", init=init) for i in range(M)]

        # run = ~pending (a finished tile waits in the accumulators): row i's
        # pipeline enable, held in the positive sense so it drives clock enables
        # without an inverter.
        run = copies("run", init=1)
        res_valid = copies("res_valid")
        take = [Signal(name=f"take_{i}") for i in range(M)]   # a beat is accepted
        first = Signal(init=1)          # the next accepted beat starts a tile

        # Both inputs transfer together: a beat is a (weights, activations) pair.
        m.d.comb += [
            w_in.ready.eq(run[0] & a_in.valid),
            a_in.ready.eq(run[0] & w_in.valid),
            res.valid.eq(res_valid[0]),
        ]
        m.d.comb += [take[i].eq(run[i] & w_in.valid & a_in.valid) for i in range(M)]
        with m.If(take[0]):
            m.d.sync += first.eq(w_in.p.last)

        # -- stage 1: input registers; dense rows steered into positions 0/1 -----
        s1_valid, s1_last, s1_fresh = copies("s1_valid"), copies("s1_last"), copies("s1_fresh")
        s1_values = Signal(data.ArrayLayout(data.ArrayLayout(
            code_shape(c.weight_format), P), M))
        s1_codes = Signal(data.ArrayLayout(data.ArrayLayout(4, G), M))
        s1_acts = Signal(self.acts_layout)
        dense = w_in.p.dense if self._sparse else None
        for i in range(M):
            with m.If(run[i]):
                m.d.sync += s1_valid[i].eq(take[i])
            with m.If(take[i]):
                m.d.sync += [
                    s1_last[i].eq(w_in.p.last),
                    s1_fresh[i].eq(first & ~w_in.p.accumulate),
                    s1_values[i].eq(w_in.p.values[i]),
                ]
                if self._sparse:
                    m.d.sync += [s1_codes[i][g].eq(Mux(dense, DENSE_CODE, w_in.p.meta[i][g]))
                                 for g in range(G)]
        with m.If(take[0]):
            if self._sparse:
                for g in range(G):
                    for p in range(4):
                        row = a_in.p[4 * g + p].as_value()
                        if p < 2 and 2 * g + p != 4 * g + p:
                            row = Mux(dense, a_in.p[2 * g + p].as_value(), row)
                        m.d.sync += s1_acts[4 * g + p].eq(row)
            else:
                m.d.sync += s1_acts.eq(a_in.p)

        # -- stage 2: 4:1 multiplexer (sparse-capable core) + product lane --------
        prod_shape = signed(c.product_bits)
        s2_valid, s2_last, s2_fresh = copies("s2_valid"), copies("s2_last"), copies("s2_fresh")
        s2_prod = [[[Signal(prod_shape, name=f"prod_{i}_{j}_{t}") for t in range(P)]
                    for j in range(N)] for i in range(M)]
        for i in range(M):
            with m.If(run[i]):
                m.d.sync += [s2_valid[i].eq(s1_valid[i]), s2_last[i].eq(s1_last[i]),
                             s2_fresh[i].eq(s1_fresh[i])]
                for g in range(G):
                    code = s1_codes[i][g]
                    for s in range(2):
                        index = code[2 * s:2 * s + 2]
                        w_code = s1_values[i][2 * g + s]
                        for j in range(N):
                            if self._sparse:
                                group = Array(s1_acts[4 * g + p][j] for p in range(4))
                                act = group[index]
                            else:
                                act = s1_acts[2 * g + s][j]
                            m.d.sync += s2_prod[i][j][2 * g + s].eq(product(c, w_code, act))

        # -- adder tree, a register every TREE_LEVELS_PER_STAGE levels -----------
        # After the last tree stage ``last`` is registered as "a valid beat that ends
        # a tile", so the results register's load is one small function per row.
        sum_shape = signed(c.chunk_sum_bits)   # bounds every partial sum too
        terms = [[list(s2_prod[i][j]) for j in range(N)] for i in range(M)]
        valid, last, fresh = s2_valid, s2_last, s2_fresh
        for stage in range(self.tree_stages):
            final = stage == self.tree_stages - 1
            n_valid = copies(f"t{stage}_valid")
            n_last = copies("done" if final else f"t{stage}_last")
            n_fresh = copies(f"t{stage}_fresh")
            for i in range(M):
                with m.If(run[i]):
                    m.d.sync += [n_valid[i].eq(valid[i]), n_fresh[i].eq(fresh[i]),
                                 n_last[i].eq(last[i] & valid[i] if final else last[i])]
                for j in range(N):
                    level = terms[i][j]
                    for _ in range(TREE_LEVELS_PER_STAGE):
                        level = [level[t] + level[t + 1] if t + 1 < len(level) else level[t]
                                 for t in range(0, len(level), 2)]
                    regs = [Signal(sum_shape, name=f"sum{stage}_{i}_{j}_{t}")
                            for t in range(len(level))]
                    with m.If(run[i]):
                        m.d.sync += [r.eq(v) for r, v in zip(regs, level, strict=True)]
                    terms[i][j] = regs
            valid, last, fresh = n_valid, n_last, n_fresh
        chunk_sum = [[terms[i][j][0] for j in range(N)] for i in range(M)]
        done = last

        # -- accumulator and results register ------------------------------------
        acc = [[Signal(signed(c.acc_bits), name=f"acc_{i}_{j}") for j in range(N)]
               for i in range(M)]
        new = [[Signal(signed(c.acc_bits), name=f"acc_next_{i}_{j}") for j in range(N)]
               for i in range(M)]
        for i in range(M):
            for j in range(N):
                # Truncation to acc_bits is the SPEC's wrap modulo 2**acc_bits.
                m.d.comb += new[i][j].eq(Mux(fresh[i], 0, acc[i][j]) + chunk_sum[i][j])

        for i in range(M):
            # The results register loads the waiting tile when it is read, or a tile
            # that just finished when it is empty or read: a function of four bits.
            load = Signal(name=f"load_{i}")
            m.d.comb += load.eq(Mux(run[i], done[i] & (~res_valid[i] | res.ready),
                                    res.ready))
            with m.If(load):
                m.d.sync += res_valid[i].eq(1)
                m.d.sync += [res.p[i][j].eq(Mux(run[i], new[i][j], acc[i][j]))
                             for j in range(N)]
            with m.Elif(res.ready):
                m.d.sync += res_valid[i].eq(0)
            with m.If(~run[i]):
                with m.If(res.ready):
                    m.d.sync += run[i].eq(1)
            with m.Else():
                with m.If(valid[i]):
                    m.d.sync += [acc[i][j].eq(new[i][j]) for j in range(N)]
                with m.If(done[i] & res_valid[i] & ~res.ready):
                    m.d.sync += run[i].eq(0)
        return m
