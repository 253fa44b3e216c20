"""Stream put/get for Amaranth's own simulator (``amaranth.sim`` unit tests).

The cocotb testbenches drive streams through :mod:`sparsecore.verif.streams`;
tests that run a component in ``amaranth.sim`` use these two coroutines instead
of writing the valid/ready handshake by hand. Both take the idle (or stall)
pattern as any iterator of booleans, True meaning "hold back this cycle", and
return the cycle of every transfer, counted in clock edges from their start, so
tests can check timing as well as values.

    async def testbench(ctx):
        cycles = await put(ctx, dut.i, payloads, pauses=random_pauses(rng, 0.3))

    async def sink(ctx):
        beats = await get(ctx, dut.o, count=len(payloads), stalls=random_pauses(rng, 0.5))
"""

import itertools

__all__ = ["put", "get", "random_pauses"]


def random_pauses(rng, probability):
    """An endless pattern: each cycle held back with ``probability`` (numpy Generator)."""
    while True:
        yield bool(rng.random() < probability)


def _streams(stream):
    return stream if isinstance(stream, (tuple, list)) else (stream,)


async def put(ctx, stream, payloads, pauses=()):
    """Send ``payloads`` in order on ``stream`` (or on a tuple of streams that take their
    beats together, each payload then a tuple); return the cycle of each transfer.

    Before each beat, valid stays low while ``pauses`` yields True.
    """
    streams = _streams(stream)
    pauses = iter(pauses)
    cycle, accepted = 0, []
    for payload in payloads:
        while next(pauses, False):
            await ctx.tick()
            cycle += 1
        parts = payload if len(streams) > 1 else (payload,)
        for s, part in zip(streams, parts, strict=True):
            ctx.set(s.payload, part)
            ctx.set(s.valid, 1)
        while True:
            readies = (await ctx.tick().sample(*(s.ready for s in streams)))[2:]
            cycle += 1
            if all(readies):
                accepted.append(cycle)
                break
        for s in streams:
            ctx.set(s.valid, 0)
    return accepted


async def get(ctx, stream, count, stalls=(), max_cycles=None):
    """Take ``count`` beats from ``stream``; return ``[(cycle, payload)]``.

    ``ready`` is low on the cycles where ``stalls`` yields True. With
    ``max_cycles``, gives up after that many cycles (returning what came).
    """
    stalls = iter(stalls)
    beats = []
    for cycle in itertools.count(1):
        if len(beats) == count or (max_cycles is not None and cycle > max_cycles):
            break
        ready = not next(stalls, False)
        ctx.set(stream.ready, int(ready))
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if valid and ready:
            beats.append((cycle, payload))
    ctx.set(stream.ready, 0)
    return beats
