"""The one table of designs: config record type -> component class and build label.

Build, lint, bench, the runners, the command and the tests all ask this module
which component a config record makes and what its build folder (and Verilog
module) is called; nobody else spells a design list or a build name.

| config type       | component        | build name                                     |
|-------------------|------------------|------------------------------------------------|
| MacConfig         | MacUnit          | `mac_<w>_<a>[_acc<n>]`                         |
| CoreConfig        | SparseTensorCore | `core_<preset>` or `core_<RxCxG>_<w>_<a>_acc<n>` |
| OutputStageConfig | OutputStage      | `output_stage_<acts>_l<lanes>_acc<n>_m<m>_s<s>` |
| LayerConfig       | SparseLayer      | `layer_<RxCxG>_<w>_<a>_to_<out>_acc<n>_m<m>_s<s>` |
| CodeTableConfig   | CodeTable        | `code_table_<codes>_<out>_l<lanes>`            |

A layer with a code table (``LayerConfig.table``) adds ``_table_<format>`` to its name.
| AccelConfig       | SparseAccelerator | `accel_<RxCxG>_<w>_<a>_acc<n>_l<L>_o<O>_a<A>_b<B>_c<C>` |

(an accelerator's L, O, A, B, C: load_bytes, out_bytes, a_depth, b_depth, count_bits; its
name ends in ``_to_<out>_m<m>_s<s>_p<P>``: the output stage's code format, mult_bits,
shift_bits and p_depth)

The lookup is by exact type, so a LayerConfig (a CoreConfig too) finds its own row.
Component modules are imported when a component is made, so asking for a name
costs no Amaranth elaboration.
"""

import importlib
import itertools
from dataclasses import dataclass

from sparsecore.hw.config import (
    PRESETS,
    AccelConfig,
    CodeTableConfig,
    CoreConfig,
    LayerConfig,
    MacConfig,
    OutputStageConfig,
)
from sparsecore.sim.formats import ACTIVATION_FORMATS, WEIGHT_FORMATS

__all__ = ["Design", "DESIGNS", "design_for", "component_for", "build_name", "showcase"]


def _mac_name(config):
    name = f"mac_{config.weights}_{config.acts}"
    return name if config.acc_bits == MacConfig().acc_bits else f"{name}_acc{config.acc_bits}"


def _core_name(config):
    # A preset's core is core_<preset>: the testbenches, the command and the runners share it.
    for preset, cfg in PRESETS.items():
        if cfg == config:
            return f"core_{preset}"
    return (f"core_{config.rows}x{config.cols}x{config.groups}_{config.weights}_"
            f"{config.acts}_acc{config.acc_bits}")


def _output_stage_name(config):
    split = "".join(f"_{name}" for name in ("split_mult", "split_shift")
                    if getattr(config, name))
    return (f"output_stage{split}_{config.acts}_"
            f"l{config.lanes}_acc{config.acc_bits}_"
            f"m{config.mult_bits}_s{config.shift_bits}")


def _layer_name(config):
    table = f"_table_{config.table}" if config.table else ""
    return (f"layer_{config.rows}x{config.cols}x{config.groups}_{config.weights}_"
            f"{config.acts}_to_{config.out}_acc{config.acc_bits}_m{config.mult_bits}_"
            f"s{config.shift_bits}{table}")


def _code_table_name(config):
    return f"code_table_{config.codes}_{config.out}_l{config.lanes}"


def _accel_name(config):
    return (f"accel_{config.rows}x{config.cols}x{config.groups}_{config.weights}_"
            f"{config.acts}_acc{config.acc_bits}_l{config.load_bytes}_o{config.out_bytes}_"
            f"a{config.a_depth}_b{config.b_depth}_c{config.count_bits}_to_{config.out}_"
            f"m{config.mult_bits}_s{config.shift_bits}_p{config.p_depth}")


@dataclass(frozen=True)
class Design:
    """One row of the table.

    ``component`` is ``"module:Class"`` under :mod:`sparsecore.hw`, imported on use.
    """

    config_type: type
    component: str
    label: str
    namer: object

    @property
    def component_class(self):
        module, cls = self.component.split(":")
        return getattr(importlib.import_module(f"sparsecore.hw.{module}"), cls)

    def build_name(self, config):
        return self.namer(config)


DESIGNS = (
    Design(MacConfig, "mac:MacUnit", "mac", _mac_name),
    Design(CoreConfig, "core:SparseTensorCore", "core", _core_name),
    Design(OutputStageConfig, "output_stage:OutputStage", "output_stage", _output_stage_name),
    Design(LayerConfig, "layer:SparseLayer", "layer", _layer_name),
    Design(CodeTableConfig, "code_table:CodeTable", "code_table", _code_table_name),
    Design(AccelConfig, "accel:SparseAccelerator", "accel", _accel_name),
)


def design_for(config):
    """The :class:`Design` row of a config record (exact type)."""
    for design in DESIGNS:
        if type(config) is design.config_type:
            return design
    kinds = ", ".join(d.config_type.__name__ for d in DESIGNS)
    raise ValueError(f"config must be one of {kinds}, not {config!r}")


def component_for(config, **kwargs):
    """The component a config record describes (``kwargs`` go to its constructor)."""
    return design_for(config).component_class(config, **kwargs)


def build_name(config):
    """Build folder and Verilog module name of a config record: one per configuration."""
    return design_for(config).build_name(config)


def showcase():
    """``[(build name, config)]``: every design lint and the area report cover.

    The MAC for all 12 format pairs, every core preset, the default output stage,
    the layer of the digits demo's last layer (ternary x uint4 in, int8 logits out),
    the code table after a 4 x 4 tile (int8 codes -> int8 entries, 16 lanes),
    and the accelerator of the default and ternary_uint4 presets (default buffers;
    the ternary words take one load beat each).
    """
    configs = [MacConfig(w, a) for w, a in itertools.product(WEIGHT_FORMATS,
                                                             ACTIVATION_FORMATS)]
    configs += [c for c in PRESETS.values() if type(c) is CoreConfig]
    configs.append(OutputStageConfig())
    configs.append(LayerConfig.of(PRESETS["ternary_uint4"], out="int8"))
    configs.append(CodeTableConfig(lanes=16))
    configs += [AccelConfig.of(PRESETS[p]) for p in ("default", "ternary_uint4")]
    return [(build_name(c), c) for c in configs]
