"""Formal proofs of the hardware with SymbiYosys (``make formal``).

:mod:`.harness` holds the property blocks (stream protocol, tile counting,
reset, progress) and :mod:`.proofs` the harness of every design and the list
of proofs; :mod:`.sby` writes the ``.sby`` jobs and runs them on the pip-only
toolchain (YoWASP Yosys, SymbiYosys and Boolector); :mod:`.run` is ``make
formal``: every proof, then ``docs/formal.md``.
"""
