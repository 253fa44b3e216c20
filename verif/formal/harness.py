"""Property blocks shared by the formal harnesses.

A harness is an Amaranth component whose ports are the free inputs of the
proof: SymbiYosys drives every top-level input with any value on every cycle.
The harness instantiates the design under test (DUT) as an elaborated
:class:`~amaranth.hdl.Fragment`, so that invariants can name the DUT's own
registers (:class:`Internals`): k-induction starts from any state that
satisfies the assertions, and an unbounded proof of "beats out = tiles in"
needs the count tied to what is inside the pipeline.

Clock and reset: the harness and the DUT share Amaranth's ``sync`` domain;
its synchronous reset ``rst`` is a free input too. Every stream property is
checked only on cycles that do not follow a reset, and "reset empties the
pipeline" is a property of its own.

Assertions, assumptions and covers are combinational (``m.d.comb``): checked
on every cycle, with the previous cycle's values from :func:`past`.
"""

from amaranth.hdl import Assert, Assume, Cover, Fragment, Signal, Value, unsigned

__all__ = ["Internals", "past", "assume_legal_input", "OutputStreamChecks", "bits_for"]


def bits_for(n):
    """Unsigned width that holds 0..n."""
    return max(1, int(n).bit_length())


def past(m, value, name, init=0):
    """``value`` one cycle ago (``init`` on the first cycle); never reset by ``rst``.

    Call it outside any ``m.If``: inside one, the register would load only then.
    """
    value = Value.cast(value)
    reg = Signal(value.shape(), name=name, init=init, reset_less=True)
    m.d.sync += reg.eq(value)
    return reg


class Internals:
    """The signals of an elaborated design, by hierarchical name (``"core.run_0"``).

    Arguments:
        component: the design; it is elaborated here, once. Add :attr:`fragment`
            (not the component) to the harness, so the names refer to the
            registers that are really there.
    """

    def __init__(self, component):
        self.component = component
        self.fragment = Fragment.get(component, None)
        self._signals = {}
        self._collect(self.fragment, "")

    def _collect(self, fragment, prefix):
        for statements in fragment.statements.values():
            for statement in statements:
                for signal in (*statement._lhs_signals(), *statement._rhs_signals()):
                    self._signals.setdefault(prefix + signal.name, signal)
        for sub, name, _ in fragment.subfragments:
            self._collect(sub, f"{prefix}{name}.")

    def __getitem__(self, name):
        try:
            return self._signals[name]
        except KeyError:
            raise KeyError(
                f"the design {type(self.component).__name__} has no signal {name!r} "
                f"(the formal invariants name its registers; update the harness when "
                f"they are renamed)") from None

    def __contains__(self, name):
        return name in self._signals


def assume_legal_input(m, stream, after_reset, name):
    """The stream contract for an input: valid held until ready, payload stable meanwhile."""
    waiting = past(m, stream.valid & ~stream.ready, f"{name}_was_waiting")
    payload = past(m, stream.payload, f"{name}_was_payload")
    with m.If(waiting & ~after_reset):
        m.d.comb += [Assume(stream.valid, f"{name}.legal_valid_held"),
                     Assume(Value.cast(stream.payload) == payload,
                            f"{name}.legal_payload_stable")]


class OutputStreamChecks:
    """Every property of one output stream, on one DUT.

    Arguments:
        m: the harness module.
        stream: the DUT's output stream (its ``valid``, ``ready``, ``payload``).
        tile_in: Value, 1 on a cycle in which a tile enters (a transfer that
            will give exactly one output beat).
        occupancy: Value, tiles inside the design, computed from its registers
            (the invariant that makes the count inductive).
        capacity: most tiles the design may hold.
        progress_when: Value, 1 when the environment lets tiles flow
            (``stream.ready``, plus e.g. side inputs that must be valid).
        progress_bound: most cycles that may pass with tiles inside, the
            environment letting them flow, and no beat out.
        rst: the reset; after_reset: 1 on the cycle after a reset.

    Assertions (one name each, listed in :attr:`properties`):
        valid_held: valid is not dropped before ready.
        payload_stable: the payload does not change while stalled.
        no_duplicate: a beat goes out only when a tile is outstanding.
        bounded: outstanding tiles never exceed ``capacity``.
        count_matches: outstanding tiles = the design's occupancy.
        progress: tiles are not lost: a beat comes out within ``progress_bound``.
        reset_empties: after reset, valid is low and the design holds no tile.
    """

    def __init__(self, m, stream, *, tile_in, occupancy, capacity, progress_when,
                 progress_bound, rst, after_reset, name):
        self.name = name
        fire_out = stream.valid & stream.ready
        width = bits_for(capacity + 1) + 1
        self.outstanding = outstanding = Signal(unsigned(width), name=f"{name}_outstanding")
        with m.If(tile_in & ~fire_out):
            m.d.sync += outstanding.eq(outstanding + 1)
        with m.Elif(fire_out & ~tile_in):
            m.d.sync += outstanding.eq(outstanding - 1)
        self.waited = waited = Signal(unsigned(bits_for(progress_bound + 1)),
                                      name=f"{name}_waited")
        with m.If((outstanding != 0) & progress_when & ~fire_out):
            with m.If(waited <= progress_bound):
                m.d.sync += waited.eq(waited + 1)
        with m.Else():
            m.d.sync += waited.eq(0)

        stalled = past(m, stream.valid & ~stream.ready, f"{name}_was_stalled")
        payload = past(m, stream.payload, f"{name}_was_payload")
        occupancy = Value.cast(occupancy)
        self.properties = {
            "valid_held": "valid is not dropped before ready",
            "payload_stable": "payload stable while stalled",
            "no_duplicate": "a beat out only when a tile is outstanding",
            "bounded": f"outstanding tiles <= {capacity}",
            "count_matches": "outstanding tiles (in - out) = tiles inside the design",
            "progress": f"a tile inside leaves within {progress_bound} cycles of "
                        f"flow (nothing lost)",
            "reset_empties": "after reset: valid low, no tile inside",
        }
        with m.If(~after_reset):
            with m.If(stalled):
                m.d.comb += [
                    Assert(stream.valid, f"{name}.valid_held"),
                    Assert(Value.cast(stream.payload) == payload, f"{name}.payload_stable"),
                ]
            m.d.comb += [
                Assert(~fire_out | (outstanding != 0), f"{name}.no_duplicate"),
                Assert(outstanding <= capacity, f"{name}.bounded"),
                Assert(outstanding == occupancy, f"{name}.count_matches"),
                Assert(waited <= progress_bound, f"{name}.progress"),
            ]
        with m.Else():
            m.d.comb += Assert(~stream.valid & (occupancy == 0), f"{name}.reset_empties")

        # reached states, each a trace
        was_fire = past(m, fire_out, f"{name}_was_fire")
        full = Signal(name=f"{name}_full")
        m.d.comb += full.eq(outstanding == capacity)
        was_busy = past(m, outstanding != 0, f"{name}_was_busy")
        self.covers = {
            "stall": ("a beat held while stalled", stalled & stream.valid & stream.ready),
            "back_to_back": ("beats out on two cycles in a row", was_fire & fire_out),
            "full": (f"{capacity} tiles inside at once", full),
            "in_and_out": ("a tile in and a beat out on one cycle", tile_in & fire_out),
            "reset_busy": ("reset while tiles are inside", after_reset & was_busy),
        }
        for key, (_, cond) in self.covers.items():
            m.d.comb += Cover(cond, f"{name}.{key}")
        self.rst = rst
