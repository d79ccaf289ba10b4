"""read_vbp: well-formed files round-trip; every malformed file is refused naming its line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastplace.packing import VbpFormatError, VbpInstance, read_vbp


def write(tmp_path: Path, text: str, name: str = "instance.vbp") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_a_small_file(tmp_path: Path) -> None:
    path = write(tmp_path, "2\n10 20\n3\n1 2 2\n\n3 4 0\n10 20 1\n", name="tiny_3.vbp")
    instance = read_vbp(path)
    assert isinstance(instance, VbpInstance)
    assert instance.name == "tiny_3"
    assert instance.dims == 2 and instance.n_items == 3
    assert instance.capacity.tolist() == [10, 20]
    assert instance.items.tolist() == [[1, 2], [1, 2], [10, 20]]
    assert instance.item_type.tolist() == [0, 0, 2]
    assert instance.items.dtype == np.int64 and instance.items.flags.c_contiguous


@given(
    dims=st.integers(1, 10),
    data=st.data(),
)
def test_round_trip(
    tmp_path_factory: pytest.TempPathFactory, dims: int, data: st.DataObject
) -> None:
    capacity = data.draw(st.lists(st.integers(0, 10**12), min_size=dims, max_size=dims))
    types = data.draw(
        st.lists(
            st.tuples(st.tuples(*(st.integers(0, c) for c in capacity)), st.integers(0, 4)),
            max_size=12,
        )
    )
    lines = [str(dims), " ".join(map(str, capacity)), str(len(types))]
    lines += [" ".join(map(str, [*sizes, demand])) for sizes, demand in types]
    path = write(tmp_path_factory.mktemp("vbp"), "\n".join(lines) + "\n")
    instance = read_vbp(path)
    expected = [list(sizes) for sizes, demand in types for _ in range(demand)]
    assert instance.capacity.tolist() == capacity
    assert instance.items.reshape(-1, dims).tolist() == expected
    assert instance.items.shape == (len(expected), dims)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "missing line: expected the dimension d"),
        ("2\n", 2, "missing line: expected 2 bin capacities"),
        ("2\n10 10\n", 3, "missing line: expected the number of item types"),
        ("2\n10 10\n2\n1 1 1\n", 5, "missing line: expected item type 2 of 2"),
        ("2\n10 10\n2\n1 1 1\n\n\n", 7, "missing line: expected item type 2 of 2"),
        ("two\n10 10\n0\n", 1, "value 1 ('two') is not an integer"),
        ("2\n10 1.5\n0\n", 2, "value 2 ('1.5') is not an integer"),
        ("2\n10 10\n1\n1 x 1\n", 4, "value 2 ('x') is not an integer"),
        ("2\n10 10 10\n0\n", 2, "expected 2 bin capacities, got 3"),
        ("2\n10 10\n1\n1 1\n", 4, "expected 3 values (2 sizes and a demand), got 2"),
        ("2\n10 10\n1\n1 1 1 1\n", 4, "expected 3 values (2 sizes and a demand), got 4"),
        ("2 3\n10 10\n0\n", 1, "expected 1 value"),
        ("0\n\n0\n", 1, "the dimension d must be at least 1"),
        ("-2\n10 10\n0\n", 1, "value 1 (-2) is negative"),
        ("2\n10 -10\n0\n", 2, "value 2 (-10) is negative"),
        ("2\n10 10\n-1\n", 3, "value 1 (-1) is negative"),
        ("2\n10 10\n1\n1 -1 1\n", 4, "value 2 (-1) is negative"),
        ("2\n10 10\n1\n1 1 -3\n", 4, "value 3 (-3) is negative"),
        ("2\n10 10\n1\n1 11 1\n", 4, "size 11 in dimension 1 exceeds the bin capacity 10"),
        ("1\n99999999999999999999\n0\n", 2, "too large"),
        ("2\n10 10\n1\n1 1 1\n2 2 2\n", 5, "unexpected line after the 1 item types"),
    ],
)
def test_malformed_file_names_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(VbpFormatError, match=re.escape(message)) as info:
        read_vbp(path)
    assert isinstance(info.value, ValueError)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_vbp(tmp_path / "absent.vbp")
