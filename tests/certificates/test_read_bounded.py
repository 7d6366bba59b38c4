"""read_bounded reads a file in one call when fstat's size holds, and reads on when it does not
(issue 20): the bytes are always the whole file, and a file over the cap is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.x509.files import TOO_LARGE, Problem, read_bounded


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 64])
def test_a_file_up_to_the_cap_is_read_whole(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f.pem"
    path.write_bytes(bytes(range(256)) * (size // 256) + bytes(size % 256))
    read = read_bounded(str(path), cap=4096)
    assert not isinstance(read, Problem)
    assert read[0] == path.read_bytes() and read[1].st_size == size


def test_a_file_whose_size_lies_is_read_to_its_end() -> None:
    # procfs reports st_size 0 for a file that has content.
    read = read_bounded("/proc/self/status", cap=1 << 20)
    assert not isinstance(read, Problem)
    assert read[1].st_size == 0 and b"VmRSS" in read[0] and read[0].endswith(b"\n")


def test_a_file_whose_size_lies_is_still_capped() -> None:
    read = read_bounded("/proc/self/status", cap=16)
    assert isinstance(read, Problem) and read.reason == TOO_LARGE


def test_a_file_over_the_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.pem"
    path.write_bytes(b"x" * 4097)
    read = read_bounded(str(path), cap=4096)
    assert isinstance(read, Problem) and read.reason == TOO_LARGE
