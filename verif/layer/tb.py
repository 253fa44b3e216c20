"""The TB class of hw.layer.SparseLayer: the core and the output stage as one design.

Random layers (weights M x K, activations K x N, per-row bias/multiplier/shift,
a ReLU flag) in sparse mode (2:4 weights) and dense mode are cut into beats by
:func:`sim.tiling.tile_gemm`, packed by the manifest's layouts
(:func:`verif.gemm.pack_beats`, :func:`verif.gemm.pack_params`) and driven
into ``weights``, ``activations`` and ``params`` with random idle cycles on
each; ``codes`` is taken with random backpressure and watched by a protocol
checker. Every code beat is compared with :func:`sim.inference.numpy_layer`
(the model's GEMM composed with ``sim.requant``) on the layer padded to whole
tiles. The seed is logged; SPARSECORE_SEED reruns it.
"""

import dataclasses

import numpy as np

from sparsecore.hw.config import LayerConfig
from sparsecore.sim.inference import IntegerLayer, numpy_layer
from sparsecore.sim.requant import fixed_point_scale
from sparsecore.sim.sparsity import prune_2to4
from sparsecore.sim.tiling import Geometry, tile_gemm
from sparsecore.verif.gemm import pack_beats, pack_params, unpack_codes
from sparsecore.verif.streams import Idle
from sparsecore.verif.tb import TestBench


def _pad(arr, shape):
    out = np.zeros(shape, np.int64)
    out[tuple(slice(0, s) for s in arr.shape)] = arr
    return out


class LayerTB(TestBench):
    """Three sources, a sink with a protocol checker, a scoreboard of code tiles."""

    def __init__(self, dut, name):
        super().__init__(dut, name)
        self.config = LayerConfig(**self.manifest["config"])
        self.geometry = Geometry.of(self.manifest)
        self.idle = {s: Idle(self.random()) for s in ("weights", "activations", "params")}
        self.stall = Idle(self.random())
        self.sources = {s: self.add_source(s, idle) for s, idle in self.idle.items()}
        self.sink = self.add_sink("codes", self.stall)
        self.checker = self.add_checker(self.sink, probe_rate=0.03)
        self.scoreboard = self.add_scoreboard(self._decode, self._describe, "code tiles")
        self.tiles = []      # per expected tile: (layer index, tile origin, acc tile, params)
        self.layers = 0
        self.inside = []     # expected codes strictly inside the out format, per layer
        dut._log.info("%s", self.config)

    def on_reset(self):
        self.tiles.clear()

    def traffic(self, idle=0.0, params_idle=None, stall=0.0, burst=1):
        """Idle probability on the core's inputs and on ``params``; backpressure on codes."""
        for name, gen in self.idle.items():
            gen.probability = idle if name != "params" or params_idle is None else params_idle
            gen.burst = burst
        self.stall.probability, self.stall.burst = stall, burst

    # -- stimulus --------------------------------------------------------------------

    def random_layer(self, dense, m=None, k=None, n=None):
        """Weights (pruned to 2:4 for sparse mode, unpruned for dense), activations, and
        mixed per-row parameters: most rows scaled so their codes spread over the out
        format, a quarter with random multiplier and shift over the whole fields, a
        tenth with a bias anywhere in acc_bits."""
        cfg, g, rng = self.config, self.geometry, self.rng
        wf, af, out = cfg.weight_format, cfg.act_format, cfg.out_format
        m = m or int(rng.integers(1, 3 * g.rows + 1))
        k = k or int(rng.integers(1, 12 * g.groups * 4 + 1))
        n = n or int(rng.integers(1, 3 * g.cols + 1))
        weights = rng.integers(wf.min, wf.max + 1, (m, k))
        if not dense:
            weights = prune_2to4(weights)
        acts = rng.integers(af.min, af.max + 1, (k, n))
        probe = IntegerLayer(weights, not dense, np.zeros(m, np.int64), np.zeros(m, np.int64),
                             np.zeros(m, np.int64), False, cfg.out)
        acc, _ = numpy_layer(probe, acts, cfg.acc_bits, cfg.mult_bits, cfg.shift_bits, dense)
        spread = np.abs(acc).max(axis=1) + 1
        bias_lim = 1 << (cfg.acc_bits - 1)
        bias = np.where(rng.random(m) < 0.1, rng.integers(-bias_lim, bias_lim, m),
                        rng.integers(-spread, spread + 1))
        scale = (out.max - out.min) / (2.0 * (spread + np.abs(bias)))
        mult, shift = fixed_point_scale(scale, cfg.mult_bits, cfg.shift_bits)
        wild = rng.random(m) < 0.25
        mult = np.where(wild, rng.integers(0, 1 << cfg.mult_bits, m), mult)
        shift = np.where(wild, rng.integers(0, 1 << cfg.shift_bits, m), shift)
        relu = bool(rng.integers(2))
        return weights, acts, mult, shift, bias, relu

    def submit(self, weights, acts, mult, shift, bias, relu, dense, swap_indices=False):
        """Queue one layer's beats and params, and its expected code tiles (from sim).

        ``swap_indices``: every sparse group sent with its two values and indices in the
        other order (``idx1 | idx0 << 2``, so a first index of 3 comes); the sum, and so
        every expected code, is the same (docs/core.md: any code is accepted)."""
        cfg, g = self.config, self.geometry
        tiled = tile_gemm(g, acts, a=weights, dense=dense)
        beats = tiled.beats
        if swap_indices:
            n, rows, slots = beats.values.shape
            swapped = beats.values.reshape(n, rows, slots // 2, 2)[..., ::-1].reshape(
                n, rows, slots)
            sparse = ~beats.dense[:, None, None]
            beats = dataclasses.replace(
                beats, values=np.where(sparse, swapped, beats.values),
                meta=np.where(sparse, ((beats.meta >> 2) & 3) | ((beats.meta & 3) << 2),
                              beats.meta))
        w_words, a_words = pack_beats(self.manifest, cfg, beats)
        p_words = pack_params(self.manifest, cfg, tiled, mult, shift, bias, relu)
        # The model on the layer padded to whole tiles: zero rows with zero params, zero
        # columns (their codes are those of the bias alone, as the hardware's).
        m, n, _ = tiled.shape
        mp, np_ = -(-m // g.rows) * g.rows, -(-n // g.cols) * g.cols
        padded = IntegerLayer(_pad(weights, (mp, weights.shape[1])), not dense,
                              _pad(mult, (mp,)), _pad(shift, (mp,)), _pad(bias, (mp,)),
                              relu, cfg.out)
        acc, out = numpy_layer(padded, _pad(acts, (acts.shape[0], np_)), cfg.acc_bits,
                               cfg.mult_bits, cfg.shift_bits, dense)
        expected = []
        for r, c in tiled.tile_origin:
            rows, cols = slice(r, r + g.rows), slice(c, c + g.cols)
            expected.append(out[rows, cols])
            self.tiles.append((self.layers, (int(r), int(c)), acc[rows, cols],
                               (padded.mult[rows], padded.shift[rows], padded.bias[rows], relu),
                               "dense" if dense else "sparse"))
        fmt = cfg.out_format
        self.inside.append(((out[:m, :n] > fmt.min) & (out[:m, :n] < fmt.max)).mean())
        self.layers += 1
        self.sources["weights"].send(w_words)
        self.sources["activations"].send(a_words)
        self.sources["params"].send(p_words)
        self.scoreboard.expect(expected)
        return len(expected)

    # -- checking ----------------------------------------------------------------------

    def _decode(self, word):
        return unpack_codes(self.manifest, self.config, [word])[0]

    def _describe(self, index, got, want, cycle):
        layer, (r0, c0), acc, (mult, shift, bias, relu), mode = self.tiles[index]
        i, j = (int(v) for v in np.argwhere(got != want)[0])
        return (f"tile {index} (layer {layer}, {mode}, origin [{r0}, {c0}]) [{i}][{j}] at "
                f"cycle {cycle}: code {int(got[i, j])}, model {int(want[i, j])} (model acc "
                f"{int(acc[i, j])}, bias {int(bias[i])}, mult {int(mult[i])}, shift "
                f"{int(shift[i])}, relu {relu}); seed {self.seed}")

    async def drain(self, what):
        """Run until every expected tile came out, then check nothing more does."""
        sources = list(self.sources.values())

        def done():
            self.scoreboard.check(self.sink.beats)
            return all(s.done for s in sources) and not self.scoreboard.expected

        queued = sum(len(s.queue) for s in sources)
        await self.loop.run(done, max_cycles=30 * (queued + self.latency) + 200)
        for _ in range(self.latency + 2):
            await self.loop.step()
        self.scoreboard.check(self.sink.beats)
        self.scoreboard.assert_drained()
        self.dut._log.info("%s: %d code tiles of %d layers match sim (%d stall cycles on "
                           "codes)", what, self.scoreboard.checked, self.layers,
                           self.checker.stalls)
