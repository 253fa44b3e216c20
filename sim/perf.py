"""Performance model of the tensor core: cycles of a GEMM from the core's geometry and latency.

The core (``hw.core.SparseTensorCore``) takes one beat per cycle, a K-chunk of
``4*groups`` (sparse) or ``2*groups`` (dense) for one ``rows x cols`` output
tile, with no bubble between tiles or mode changes, and its result beat is
ready ``latency`` cycles after the tile's last beat (the manifest's
``latency``; this model takes it as an argument and never assumes one). The
tiling (``sim.tiling.tile_gemm``) cuts an M x N x K GEMM into

    tiles  = ceil(M / rows) * ceil(N / cols)
    chunks = ceil(K / k_per_beat)            (K per beat: 4G sparse, 2G dense)
    beats  = tiles * chunks

and with the results always taken (no backpressure), the last result leaves
``latency`` cycles after the last beat went in:

    cycles = beats + latency

counted as the GEMM runner counts them (``verif.gemm``): from the first beat
offered to the edge that takes the last result. Utilization follows SPEC §5:
``macs / (cycles * peak)``, with ``macs = M*N*K`` and ``peak = rows*cols*k_per_beat``
(the multiplier count in dense mode, twice that in sparse mode).
"""

from dataclasses import dataclass

from sparsecore.sim.tiling import Geometry

__all__ = ["GemmPerf", "predict_gemm", "peak_macs_per_cycle"]


def _size(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def peak_macs_per_cycle(geometry, dense):
    """MACs per cycle at full use: rows * cols * K per beat."""
    g = geometry if isinstance(geometry, Geometry) else Geometry.of(geometry)
    return g.rows * g.cols * g.k_per_beat(dense)


@dataclass(frozen=True)
class GemmPerf:
    """The model's figures for one GEMM on one core in one mode."""

    m: int
    n: int
    k: int
    dense: bool
    tiles: int
    chunks: int       # K-chunks per output tile
    beats: int
    latency: int
    cycles: int
    peak: int         # MACs per cycle at full use

    @property
    def macs(self):
        return self.m * self.n * self.k

    @property
    def macs_per_cycle(self):
        """Effective MACs per cycle: the user's M*N*K over the cycles."""
        return self.macs / self.cycles

    @property
    def utilization(self):
        return self.macs / (self.cycles * self.peak)


def predict_gemm(geometry, m, n, k, *, dense, latency):
    """Predicted :class:`GemmPerf` of C[m x n] = A[m x k] x B[k x n] on the core.

    Arguments:
        geometry: :class:`sim.tiling.Geometry`, a config record or a manifest's
            ``config`` mapping (rows, cols, groups).
        m, n, k: the GEMM's sizes (>= 1).
        dense: dense mode (else sparse).
        latency: the core's latency in cycles, from its manifest.
    """
    g = geometry if isinstance(geometry, Geometry) else Geometry.of(geometry)
    m, n, k = _size("m", m), _size("n", n), _size("k", k)
    if isinstance(latency, bool) or not isinstance(latency, int) or latency < 0:
        raise ValueError(f"latency must be a non-negative integer, not {latency!r}")
    tiles = -(-m // g.rows) * -(-n // g.cols)
    chunks = -(-k // g.k_per_beat(dense))
    beats = tiles * chunks
    return GemmPerf(m=m, n=n, k=k, dense=bool(dense), tiles=tiles, chunks=chunks, beats=beats,
                    latency=latency, cycles=beats + latency,
                    peak=peak_macs_per_cycle(g, dense))
