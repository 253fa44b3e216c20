"""Benchmarks and hardware reports: throughput on the RTL, area, Fmax, simulation speed.

``make bench`` runs ``python -m bench`` (see :mod:`bench.__main__`), which writes
docs/report.md, its PNG plots and docs/report.json.
"""
