"""sparsecore: an RTL generator and verification suite for a 2:4-sparse, low-precision core.

One import package, in layers whose imports point one way (a test walks them):

- :mod:`sparsecore.sim`: the bit-exact numpy model (folder ``sim/``); imports nothing else.
- :mod:`sparsecore.hw`: Amaranth components (folder ``hw/``); imports the model's format
  definitions only.
- :mod:`sparsecore.verif`: Verilator builds and cocotb testbenches (folder ``verif/``).
- the application on top (folder ``sparsecore/``): the ``sparsecore`` command and its
  subcommands, the host side of the runners, the demos and the benchmarks.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sparsecore")
except PackageNotFoundError:  # a checkout on sys.path without an install
    __version__ = "0+unknown"
