"""Benchmarks and hardware reports: throughput on the RTL, area, Fmax, simulation speed.

``make bench`` runs ``sparsecore bench`` (see :mod:`sparsecore.bench.run`), which writes
docs/report.md, its PNG plots and docs/report.json.
"""
