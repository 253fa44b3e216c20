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
    "get_format", "check_integer_array",
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
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what}: expected an integer array, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{what}: values exceed int64")
    return arr.astype(np.int64)
