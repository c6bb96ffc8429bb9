"""Atomic writes: the final name appears only on success, with the permissions of an ordinary file."""

import os
import stat

import numpy as np
import pytest

from genrad.provenance import atomic_path, write_json


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_outputs_follow_the_umask_not_owner_only(tmp_path, umask_022):
    written = write_json(tmp_path / "manifest.json", {"synthetic": True})
    with atomic_path(tmp_path / "images.npz") as temp:
        np.savez(temp, images=np.zeros((2, 4, 4)))
    for path in (written, tmp_path / "images.npz"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failed_write_leaves_neither_output_nor_temporary_file(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "report.html") as temp:
        temp.write_text("half a report")
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_success_replaces_an_existing_output_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with atomic_path(target) as temp:
        assert temp.parent == tmp_path and temp.name.startswith(".table.csv.") and temp.suffix == ".csv"
        temp.write_text("new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]
