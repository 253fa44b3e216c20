"""Number formats: the one definition that hw/, sim/ and verif/ all use.

| name      | bits | encoding                          | values     | role              |
|-----------|------|-----------------------------------|------------|-------------------|
| `int8`    | 8    | two's complement                  | -128..127  | weight, activation|
| `uint8`   | 8    | unsigned                          | 0..255     | activation        |
| `int4`    | 4    | two's complement                  | -8..7      | weight, activation|
| `uint4`   | 4    | unsigned                          | 0..15      | activation        |
| `ternary` | 2    | two's complement, `0b10` reserved | -1, 0, +1  | weight            |

Values are plain integers (-1/0/1 for ternary); *codes* are the unsigned bit
patterns that travel on a bus. Hardware treats the reserved ternary code
`0b10` as 0; `decode` refuses it, `encode` never makes it.
"""

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Format", "FORMATS", "WEIGHT_FORMATS", "ACTIVATION_FORMATS",
    "get_format", "check_integer_array", "check_positive_int",
    "DEFAULT_MULT_BITS", "DEFAULT_SHIFT_BITS", "check_fields",
]


@dataclass(frozen=True)
class Format:
    """One number format. ``min``/``max`` are the representable values."""

    name: str
    bits: int
    signed: bool
    min: int
    max: int
    reserved_code: int | None = None

    @property
    def mask(self) -> int:
        return (1 << self.bits) - 1

    def check(self, values, what="values"):
        """Return ``values`` as int64; raise ValueError naming the first value out of range."""
        arr = check_integer_array(values, what)
        bad = (arr < self.min) | (arr > self.max)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{what}: value {int(arr[idx])} at index {idx} is outside {self.name} "
                f"range {self.min}..{self.max}")
        return arr

    def encode(self, values, what="values"):
        """Values -> unsigned bit codes (uint64 array)."""
        arr = self.check(values, what)
        # via uint64 so that a 64-bit field's mask does not overflow int64
        return arr.astype(np.uint64) & np.uint64(self.mask)

    def decode(self, codes, what="codes"):
        """Unsigned bit codes -> values (int64 array); the reserved code is refused."""
        arr = check_integer_array(codes, what)
        bad = (arr < 0) | (arr > self.mask)
        if self.reserved_code is not None:
            bad |= arr == self.reserved_code
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{what}: code {int(arr[idx])} at index {idx} is not a valid "
                             f"{self.name} code")
        if self.signed:
            arr = np.where(arr > self.mask >> 1, arr - (1 << self.bits), arr)
        return arr.astype(np.int64)


FORMATS = {
    "int8": Format("int8", 8, True, -128, 127),
    "uint8": Format("uint8", 8, False, 0, 255),
    "int4": Format("int4", 4, True, -8, 7),
    "uint4": Format("uint4", 4, False, 0, 15),
    "ternary": Format("ternary", 2, True, -1, 1, reserved_code=0b10),
}
WEIGHT_FORMATS = ("int8", "int4", "ternary")
ACTIVATION_FORMATS = ("int8", "uint8", "int4", "uint4")


def get_format(name, role=None):
    """Look a format up by name; ``role`` is "weights", "acts" or None (any)."""
    accepted = {"weights": WEIGHT_FORMATS, "acts": ACTIVATION_FORMATS,
                None: tuple(FORMATS)}[role]
    if not isinstance(name, str) or name not in accepted:
        param = role or "format"
        raise ValueError(f"{param} must be one of {', '.join(accepted)}, not {name!r}")
    return FORMATS[name]


def check_integer_array(values, what="values"):
    """Return ``values`` as an int64 array; refuse non-integer dtypes (no silent casts)."""
    arr = np.asarray(values)
    # dtype kinds, not issubdtype: numpy files timedelta64 under signedinteger
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{what}: expected an integer array, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{what}: values exceed int64")
    return arr.astype(np.int64)


def check_positive_int(name, value):
    """Return ``value`` as an int if it is an integer >= 1 (bool refused), else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


# -- the output stage's fixed-point fields (sim.requant computes with them) ----------

DEFAULT_MULT_BITS = 16
DEFAULT_SHIFT_BITS = 5
_INT64_BITS = 63  # bits of magnitude in int64


def check_fields(acc_bits, mult_bits=DEFAULT_MULT_BITS, shift_bits=DEFAULT_SHIFT_BITS):
    """Validate the output stage's field widths; raise ValueError naming the culprit."""
    check_positive_int("acc_bits", acc_bits)
    check_positive_int("mult_bits", mult_bits)
    check_positive_int("shift_bits", shift_bits)
    # product plus the rounding term must fit int64 exactly: acc_bits + 1 + mult_bits <= 62
    max_acc_bits = _INT64_BITS - 3   # leaves mult_bits = 1
    if acc_bits > max_acc_bits:
        raise ValueError(f"acc_bits must be in 1..{max_acc_bits} for the output stage "
                         f"(acc_bits + 1 + mult_bits <= {_INT64_BITS - 1}), not {acc_bits!r}")
    if acc_bits + 1 + mult_bits > _INT64_BITS - 1:
        raise ValueError(
            f"mult_bits must be in 1..{_INT64_BITS - 2 - acc_bits} with acc_bits={acc_bits}"
            f" (acc_bits + 1 + mult_bits <= {_INT64_BITS - 1}), not {mult_bits!r}")
    if shift_bits > 6:
        raise ValueError(f"shift_bits must be in 1..6, not {shift_bits!r}")
