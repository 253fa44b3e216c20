import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from spec_reference import PROPERTY, pack_ref

from sparsecore.sim import (
    META_FORMAT,
    acc_format,
    pack_rows,
    read_hex,
    read_hex_words,
    unpack_rows,
    write_hex,
    write_hex_words,
)
from sparsecore.sim.formats import FORMATS

FIELDS = list(FORMATS.values()) + [META_FORMAT, acc_format(18), acc_format(32),
                                   acc_format(64)]


@st.composite
def field_matrices(draw):
    fmt = draw(st.sampled_from(FIELDS))
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 9)))
    return fmt, draw(hnp.arrays(np.int64, shape, elements=st.integers(fmt.min, fmt.max)))


@given(field_matrices())
@PROPERTY
def test_pack_matches_reference_and_round_trips(case):
    fmt, m = case
    words = pack_rows(m, fmt)
    assert words == [pack_ref(row, fmt.bits) for row in m.tolist()]
    assert unpack_rows(words, fmt, m.shape[1]).tolist() == m.tolist()


@given(field_matrices())
@PROPERTY
def test_hex_round_trip(tmp_path_factory, case):
    fmt, m = case
    path = tmp_path_factory.mktemp("hex") / "m.hex"
    write_hex(path, m, fmt)
    assert read_hex(path, fmt, m.shape[1]).tolist() == m.tolist()


def test_spec_bit_positions():
    assert pack_rows(np.array([[1, -1]]), "int8") == [0xFF01]
    assert pack_rows(np.array([[-1, 0, 1, 1]]), "ternary") == [0b01_01_00_11]
    assert pack_rows(np.array([[0b1110, 0b0100, 0b1001]]), META_FORMAT) == [0x94E]
    assert pack_rows(np.array([[15, 0, 1]], dtype=np.uint8), "uint4") == [0x10F]


def test_hex_file_layout(tmp_path):
    path = write_hex(tmp_path / "a.hex", np.array([[1, -1, 0], [-8, 7, 2]]), "int4")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("// 2 rows of 3 int4")
    assert lines[1:] == ["0f1", "278"]
    write_hex_words(tmp_path / "w.hex", [5, 0x3FFFF], 18)
    assert (tmp_path / "w.hex").read_text().splitlines()[1:] == ["00005", "3ffff"]


def test_read_hex_accepts_readmemh_syntax(tmp_path):
    path = tmp_path / "x.hex"
    path.write_text("// header\n0A_b /* block\ncomment */ ff\n\n  01 // tail\n")
    assert read_hex_words(path, 12) == [0xAB, 0xFF, 0x01]


@pytest.mark.parametrize("text, message", [
    ("@10\n00\n", r"x.hex:1: address record '@10' is not supported"),
    ("00\n0x\n", r"x.hex:2: '0x' is not a hex word"),
    ("1ff\n", r"x.hex:1: word 1ff does not fit in 8 bits"),
])
def test_read_hex_errors(tmp_path, text, message):
    path = tmp_path / "x.hex"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_hex_words(path, 8)


def test_pack_errors_name_format_and_index():
    message = r"value 8 at index \(1, 0\) is outside int4 range -8\.\.7"
    with pytest.raises(ValueError, match=message):
        pack_rows(np.array([[0, 0], [8, 0]]), "int4")
    with pytest.raises(ValueError, match=r"value 16 at index \(0, 1\) is outside meta range"):
        pack_rows(np.array([[0, 16]]), META_FORMAT)
    with pytest.raises(ValueError, match="expected an integer array"):
        pack_rows(np.array([[0.0]]), "int8")
    with pytest.raises(ValueError, match="2-D matrix"):
        pack_rows(np.array([1, 2]), "int8")
    with pytest.raises(ValueError, match="format must be one of"):
        pack_rows(np.array([[1]]), "int3")


def test_unpack_errors():
    # The reserved ternary code 0b10 is refused, not read as -2 or 0.
    with pytest.raises(ValueError, match=r"code 2 at index \(0, 1\) is not a valid ternary"):
        unpack_rows([0b1000], "ternary", 2)
    with pytest.raises(ValueError, match=r"word 1 = 0x100 does not fit in 8 bits"):
        unpack_rows([0, 0x100], "int4", 2)
    with pytest.raises(ValueError, match="not an integer"):
        unpack_rows([1.0], "int4", 2)
    with pytest.raises(ValueError, match=r"word 0 = -0x1 does not fit in 8 bits"):
        write_hex_words("unused.hex", [-1], 8)
