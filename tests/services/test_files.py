"""Stored files (``core.files``): the one "store the file, remove it if the write fails" helper."""

from __future__ import annotations

import pytest

from hms_app.services.core import files
from hms_app.services.core.errors import ValidationError
from tests.services.clinical_helpers import pdf_bytes, stored_files, use_private_data_dir


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


def test_a_block_that_completes_keeps_its_file_encrypted():
    data = pdf_bytes("Kept")
    with files.stored_encrypted(data) as name:
        assert [p.name for p in stored_files()] == [name]
    assert [p.name for p in stored_files()] == [name]
    assert stored_files()[0].read_bytes() != data
    assert files.read_decrypted(name) == data


@pytest.mark.parametrize("failure", [RuntimeError("the commit failed"), KeyboardInterrupt()])
def test_a_block_that_fails_leaves_no_file_and_the_failure_goes_on(failure):
    seen: list[str] = []

    def write_the_row() -> None:
        with files.stored_encrypted(pdf_bytes("Lost")) as name:
            seen.append(name)
            assert len(stored_files()) == 1
            raise failure

    with pytest.raises(type(failure)):
        write_the_row()
    [name] = seen
    assert stored_files() == []
    with pytest.raises(ValidationError, match="missing from storage"):
        files.read_decrypted(name)


def test_each_file_gets_a_new_generated_name():
    with files.stored_encrypted(b"one") as first, files.stored_encrypted(b"two") as second:
        pass
    assert first != second
    assert {p.name for p in stored_files()} == {first, second}
    assert all(len(n) == 32 and int(n, 16) >= 0 for n in (first, second))
