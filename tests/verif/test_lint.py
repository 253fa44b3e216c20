"""sparsecore.verif.lint: Amaranth idioms pass, real findings fail."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sparsecore.hw.config import MacConfig
from sparsecore.hw.emit import emit
from sparsecore.hw.mac import MacUnit
from sparsecore.verif.lint import lint_file


class UnusedInput(wiring.Component):
    """`spare` drives nothing: a design defect that lint must report."""

    config = MacConfig()
    latency = 1
    data: In(8)
    spare: In(4)
    out: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.out.eq(self.data + 1)
        return m


def ports(manifest):
    return {p["name"] for p in manifest["ports"]}


def test_mac_is_clean(tmp_path):
    manifest = emit(MacUnit(MacConfig("int8", "uint4")), tmp_path, "mac")
    assert lint_file(tmp_path / "mac.v", "mac", ports(manifest)) == []


def test_unused_input_port_is_reported(tmp_path):
    manifest = emit(UnusedInput(), tmp_path, "bad")
    findings = lint_file(tmp_path / "bad.v", "bad", ports(manifest))
    assert len(findings) == 1
    assert "UNUSEDSIGNAL" in findings[0] and "'spare'" in findings[0]


def test_other_warnings_are_reported(tmp_path):
    # A hand-written module with an output that nothing drives: not an Amaranth idiom.
    (tmp_path / "undriven.v").write_text(
        "module undriven(input clk, input a, output reg q, output z);\n"
        "  always @(posedge clk) q <= a;\n"
        "endmodule\n")
    findings = lint_file(tmp_path / "undriven.v", "undriven", {"clk", "a", "q", "z"})
    assert len(findings) == 1 and "UNDRIVEN" in findings[0] and "'z'" in findings[0]
