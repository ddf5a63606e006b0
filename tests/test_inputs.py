from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ustui.core.inputs import MAX_RATIO, discover

#: What a Part 10 file starts with: enough for the search to take it for DICOM.
PART10 = bytes(128) + b"DICM"


def _touch(path: Path, data: bytes = PART10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folders_are_searched_recursively_in_natural_order(tmp_path: Path) -> None:
    for name in ["b/IMG10.dcm", "b/IMG2.dcm", "a/x.dcm", ".hidden/y.dcm", "b/.DS_Store"]:
        _touch(tmp_path / name)
    found = discover([tmp_path])
    labels = [os.path.relpath(f.label, str(tmp_path)) for f in found.files]
    assert labels == ["a/x.dcm", "b/IMG2.dcm", "b/IMG10.dcm"]
    assert found.problems == []


def test_same_file_given_twice_is_listed_once(tmp_path: Path) -> None:
    f = _touch(tmp_path / "one.dcm")
    found = discover([f, tmp_path, str(f)])
    assert len(found.files) == 1


def test_missing_path_and_broken_symlink_are_reported(tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    found = discover([tmp_path / "absent", tmp_path / "dangling"])
    assert found.files == []
    assert [p.reason for p in found.problems] == ["no such file or folder", "broken symlink"]
    assert all(p.source for p in found.problems)


def test_symlink_loop_is_searched_once(tmp_path: Path) -> None:
    _touch(tmp_path / "exam" / "a.dcm")
    (tmp_path / "exam" / "loop").symlink_to(tmp_path / "exam")
    found = discover([tmp_path / "exam"])
    assert [Path(f.label).name for f in found.files] == ["a.dcm"]


def test_zip_members_are_read_in_place_and_bad_ones_refused(tmp_path: Path) -> None:
    archive = tmp_path / "exam.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("study/IMG1.dcm", PART10 + b"-ish bytes")
        zf.writestr("../evil.dcm", b"x")
        zf.writestr("/abs.dcm", b"x")
        zf.writestr("inner.zip", b"x")
        zf.writestr("bomb.dcm", b"\0" * (MAX_RATIO * 1024 * 1024))
    found = discover([archive])
    assert [f.member for f in found.files] == ["study/IMG1.dcm"]
    with found.files[0].open() as stream:
        assert stream.read() == PART10 + b"-ish bytes"
        stream.seek(128)
        assert stream.read(4) == b"DICM"
    reasons = sorted(p.reason for p in found.problems)
    assert len(reasons) == 4
    assert sum("outside the archive" in r for r in reasons) == 2
    assert any("ZIP bomb" in r for r in reasons)
    assert any("archives inside archives" in r for r in reasons)


def test_corrupt_zip_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    bad = _touch(tmp_path / "broken.zip", b"PK\x03\x04 not really a zip")
    found = discover([bad])
    # A ZIP's start without its central directory: cut short or damaged.
    assert found.files == []
    assert [(p.source, p.reason) for p in found.problems] == [
        (str(bad), "truncated or damaged ZIP archive")
    ]
