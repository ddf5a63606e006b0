"""Bad input, faults and an air gap: every bad file gets one line and the rest goes on,
a full disk or a signal leaves nothing partial, inputs are never written, no socket is
opened, private files are 0600 and no PHI reaches logs, messages, manifests or names."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile import (
    audit_events,
    changes_under,
    dicom_bytes,
    insert_before_pixels,
    large_exam,
    make_read_only,
    make_writable,
    nested_sequences,
    network_events,
    small_image,
    tree_digest,
)
from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.fileset import FileSet
from pydicom.sequence import Sequence
from pydicom.uid import MPEG4HP41, DeflatedExplicitVRLittleEndian
from test_export import BASIC_ONLY, _originals_text, write_exam
from test_tui import SIZE, pilot_test, settle
from test_tui import write_exam as write_ui_exam

import ustui.core.export as export_module
from ustui.cli import main
from ustui.core.boxes import Box
from ustui.core.inputs import discover
from ustui.core.paths import data_dir, state_dir
from ustui.core.profiles import user_file
from ustui.core.pseudonyms import load_key
from ustui.core.session import Session, session_path
from ustui.tui.app import make_app
from ustui.tui.model import Status
from ustui.tui.screens.export import ExportScreen

PROJECT = Path(__file__).resolve().parent.parent
#: Linux's /proc: which file a descriptor is, and a folder nobody can write in.
needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")


def export(*args: str | Path) -> int:
    return main(["export", *map(str, args), "--workers", "1"])


def skipped_lines(printed: str) -> list[str]:
    """The lines of the export summary under "Skipped N file(s):"."""
    if "Skipped" not in printed:
        return []
    tail = printed.split("Skipped", 1)[1].splitlines()[1:]
    return [line for line in tail if line.startswith("  ")]


def exported_count(out: Path) -> int:
    with zipfile.ZipFile(out) as zf:
        return len(json.loads(zf.read("manifest.json"))["files"])


def assert_no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text and 'File "' not in text, text


# --- bad inputs: one line each, the rest goes on -----------------------------------------------


def _replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and data.count(old) >= 1
    return data.replace(old, new, 1)


def _good() -> bytes:
    """A small valid image (new UIDs each time)."""
    return dicom_bytes(small_image(seed=7))


def _zip(folder: Path, members: dict[str, bytes]) -> Path:
    """arch.zip in ``folder``: one good image and ``members``."""
    path = folder / "arch.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok/IMG1.dcm", _good())
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _patch_zip_member(path: Path, name: str, patch: Callable[[bytearray, int, int], None]) -> None:
    """Apply ``patch(data, local_header, central_header)`` to the headers of member ``name``."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        local = zf.getinfo(name).header_offset
    central = data.index(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(name)] != name.encode():
        central = data.index(b"PK\x01\x02", central + 4)
    patch(data, local, central)
    path.write_bytes(bytes(data))


def _text(folder: Path) -> str:
    (folder / "notes.txt").write_text("report: nothing to see\n" * 10)
    return "notes.txt"


def _png(folder: Path) -> str:
    (folder / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(400))
    return "scan.png"


def _empty(folder: Path) -> str:
    (folder / "empty.dcm").write_bytes(b"")
    return "empty.dcm"


def _cut_in_header(folder: Path) -> str:
    (folder / "cut.dcm").write_bytes(_good()[:700])
    return "cut.dcm"


def _cut_before_pixels(folder: Path) -> str:
    data = _good()
    (folder / "cut.dcm").write_bytes(data[: data.rindex(struct.pack("<HH", 0x7FE0, 0x0010))])
    return "cut.dcm"


def _cut_in_pixels(folder: Path) -> str:
    (folder / "cut.dcm").write_bytes(_good()[:-100])
    return "cut.dcm"


def _cut_in_meta(folder: Path) -> str:
    (folder / "cut.dcm").write_bytes(_good()[:141])  # inside the meta group length
    return "cut.dcm"


def _cut_after_meta(folder: Path) -> str:
    data = _good()
    meta_end = 144 + struct.unpack_from("<I", data, 140)[0]
    (folder / "cut.dcm").write_bytes(data[:meta_end])
    return "cut.dcm"


def _rows_as_text(folder: Path) -> str:
    ds = small_image()
    del ds.Rows
    ds.add_new(0x00280010, "LO", "many")
    ds.save_as(folder / "rows.dcm", enforce_file_format=True)
    return "rows.dcm"


def _absurd_length(folder: Path) -> str:
    absurd = struct.pack("<HH2sHI", 0x0018, 0x1030, b"UT", 0, 0x7FFFFFF0) + b"short"
    (folder / "long.dcm").write_bytes(insert_before_pixels(_good(), absurd))
    return "long.dcm"


def _absurd_short_length(folder: Path) -> str:
    data = bytearray(_good())
    at = data.index(b"\x10\x00\x10\x00PN")  # PatientName: claims 65535 bytes
    data[at + 6 : at + 8] = b"\xff\xff"
    (folder / "name.dcm").write_bytes(bytes(data))
    return "name.dcm"


def _deep(folder: Path) -> str:
    (folder / "deep.dcm").write_bytes(insert_before_pixels(_good(), nested_sequences(200)))
    return "deep.dcm"


def _very_deep(folder: Path) -> str:
    (folder / "deep.dcm").write_bytes(insert_before_pixels(_good(), nested_sequences(5000)))
    return "deep.dcm"


def _dicomdir(folder: Path) -> str:
    """A real DICOMDIR, written by pydicom with its image beside it (the image is exported)."""
    fileset = FileSet()
    fileset.add(small_image(seed=3))
    fileset.write(folder)
    return "DICOMDIR"


def _unknown_syntax(folder: Path) -> str:
    data = _replace_once(_good(), b"1.2.840.10008.1.2.1\x00", b"1.2.3.4.5.6.7.8.9.10")
    (folder / "odd.dcm").write_bytes(data)
    return "odd.dcm"


def _video(folder: Path) -> str:
    from pydicom.encaps import encapsulate

    ds = small_image()
    ds.file_meta.TransferSyntaxUID = MPEG4HP41
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(100)])
    ds["PixelData"].VR = "OB"
    ds.save_as(folder / "clip.dcm", enforce_file_format=True)
    return "clip.dcm"


def _deflated(folder: Path) -> str:
    ds = small_image()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(folder / "deflated.dcm", enforce_file_format=True)
    return "deflated.dcm"


def _zip_traversal(folder: Path) -> str:
    _zip(folder, {"../../evil.dcm": _good()})
    return "arch.zip/../../evil.dcm"


def _zip_absolute(folder: Path) -> str:
    _zip(folder, {"/etc/evil.dcm": _good()})
    return "arch.zip//etc/evil.dcm"


def _zip_drive(folder: Path) -> str:
    _zip(folder, {"C:/evil.dcm": _good()})
    return "arch.zip/C:/evil.dcm"


def _zip_bomb(folder: Path) -> str:
    _zip(folder, {"bomb.dcm": bytes(65 * 1024 * 1024)})  # 65 MiB of zeros, about 64 KiB packed
    return "arch.zip/bomb.dcm"


def _zip_in_zip(folder: Path) -> str:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("x.dcm", _good())
    _zip(folder, {"inner.zip": inner.getvalue()})
    return "arch.zip/inner.zip"


def _zip_encrypted(folder: Path) -> str:
    def encrypt(data: bytearray, local: int, central: int) -> None:
        data[local + 6] |= 1
        data[central + 8] |= 1

    _patch_zip_member(_zip(folder, {"locked.dcm": _good()}), "locked.dcm", encrypt)
    return "arch.zip/locked.dcm"


def _zip_method(folder: Path) -> str:
    def method(data: bytearray, local: int, central: int) -> None:
        data[local + 8 : local + 10] = struct.pack("<H", 97)
        data[central + 10 : central + 12] = struct.pack("<H", 97)

    _patch_zip_member(_zip(folder, {"odd.dcm": _good()}), "odd.dcm", method)
    return "arch.zip/odd.dcm"


def _zip_damaged(folder: Path) -> str:
    def shrink(data: bytearray, local: int, central: int) -> None:
        # The sizes say 500 bytes: the member ends early and its CRC does not match.
        data[local + 22 : local + 26] = struct.pack("<I", 500)
        data[central + 24 : central + 28] = struct.pack("<I", 500)

    _patch_zip_member(_zip(folder, {"short.dcm": _good()}), "short.dcm", shrink)
    return "arch.zip/short.dcm"


def _zip_garbage(folder: Path) -> str:
    (folder / "broken.zip").write_bytes(b"PK\x03\x04" + bytes(300))
    return "broken.zip"


def _symlink_to_itself(folder: Path) -> str:
    (folder / "self.dcm").symlink_to((folder / "self.dcm").absolute())
    return "self.dcm"


def _broken_symlink(folder: Path) -> str:
    (folder / "gone.dcm").symlink_to((folder / "nowhere.dcm").absolute())
    return "gone.dcm"


def _fifo(folder: Path) -> str:
    os.mkfifo(folder / "pipe.dcm")  # opening it would block forever
    return "pipe.dcm"


def _socket_file(folder: Path) -> str:
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "sock.dcm"))
    return "sock.dcm"


#: (builder, the reason printed after "<input>: "). Builders return the input's name
#: relative to the exam folder. Files that are not DICOM at all are ignored when found
#: in a folder (tests/test_data_safety.py).
BAD_INPUTS: dict[str, tuple[Callable[[Path], str], str]] = {
    "empty file": (_empty, "empty file"),
    "truncated in the file meta": (_cut_in_meta, "truncated file: the header ends early"),
    "truncated after the file meta": (
        _cut_after_meta,
        "truncated file: no data set after the file meta",
    ),
    "truncated inside an element": (
        _cut_in_header,
        "truncated or corrupt file: an element runs past the end of the file",
    ),
    "truncated before the pixel data": (
        _cut_before_pixels,
        "truncated file: no pixel data after the image attributes",
    ),
    "truncated in the pixel data": (_cut_in_pixels, "truncated file: the pixel data ends early"),
    "wrong VR: Rows as text": (
        _rows_as_text,
        "the image attributes (rows, columns, bits) are missing or invalid",
    ),
    "absurd 4-byte element length": (
        _absurd_length,
        "truncated or corrupt file: an element runs past the end of the file",
    ),
    "absurd 2-byte element length": (
        _absurd_short_length,
        "truncated or corrupt file: an element runs past the end of the file",
    ),
    "sequences nested 200 deep": (
        _deep,
        "corrupt header: sequences nested more than 50 levels deep",
    ),
    "sequences nested 5000 deep": (
        _very_deep,
        "corrupt header: sequences nested more than 50 levels deep",
    ),
    "unknown transfer syntax": (_unknown_syntax, "unknown transfer syntax 1.2.3.4.5.6.7.8.9.10"),
    "video transfer syntax": (_video, "no decoder for MPEG-4 AVC/H.264 High Profile / Level 4.1"),
    "ZIP member with ..": (
        _zip_traversal,
        "refused ZIP member: its name points outside the archive",
    ),
    "ZIP member with an absolute path": (
        _zip_absolute,
        "refused ZIP member: its name points outside the archive",
    ),
    "ZIP member with a drive letter": (
        _zip_drive,
        "refused ZIP member: its name points outside the archive",
    ),
    "ZIP bomb": (_zip_bomb, "refused ZIP member: compression ratio suggests a ZIP bomb"),
    "ZIP inside a ZIP": (
        _zip_in_zip,
        "refused ZIP member: archives inside archives are not opened",
    ),
    "encrypted ZIP member": (_zip_encrypted, "refused ZIP member: encrypted"),
    "unknown ZIP compression": (
        _zip_method,
        "refused ZIP member: unsupported compression method 97",
    ),
    "damaged ZIP member": (_zip_damaged, "cannot read: the ZIP member is damaged (BadZipFile)"),
    "garbage named .zip": (_zip_garbage, "truncated or damaged ZIP archive"),
    "symlink to itself": (_symlink_to_itself, "cannot read: Too many levels of symbolic links"),
    "broken symlink": (_broken_symlink, "broken symlink"),
    "FIFO": (_fifo, "not a regular file"),
    "socket": (_socket_file, "not a regular file"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_a_bad_input_gets_one_line_and_the_rest_is_exported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    build, reason = BAD_INPUTS[case]
    exam = tmp_path / "exam"
    exam.mkdir()
    (exam / "good.dcm").write_bytes(_good())
    name = build(exam)
    before = tree_digest(exam)
    out = tmp_path / "out.zip"

    code = export(exam, "--out", out)

    printed, errors = capsys.readouterr()
    assert_no_traceback(printed, errors)
    assert errors == ""
    assert skipped_lines(printed) == [f"  {exam}/{name}: {reason}"]
    assert code == 1
    # The rest went on: good.dcm, and the good image beside it in a ZIP.
    assert exported_count(out) == 1 + name.startswith("arch.zip/")
    assert tree_digest(exam) == before


def test_symlink_loops_and_folders_named_like_files_are_searched_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exam = tmp_path / "exam"
    (exam / "series.dcm").mkdir(parents=True)  # a folder, even if named like a file
    (exam / "series.dcm" / "a.dcm").write_bytes(_good())
    (exam / "series.dcm" / "loop").symlink_to(exam)
    (exam / "again").symlink_to(exam / "series.dcm")
    out = tmp_path / "out.zip"
    assert export(exam, exam / "series.dcm" / "a.dcm", "--out", out) == 0
    printed, errors = capsys.readouterr()
    assert errors == "" and "Skipped" not in printed
    assert exported_count(out) == 1


def test_paths_that_are_missing_or_devices_get_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.dcm").write_bytes(_good())
    out = tmp_path / "out.zip"
    code = export(tmp_path / "good.dcm", tmp_path / "absent", "/dev/zero", "--out", out)
    printed, errors = capsys.readouterr()
    assert code == 1 and errors == ""
    assert sorted(skipped_lines(printed)) == [
        "  /dev/zero: not a regular file",
        f"  {tmp_path}/absent: no such file or folder",
    ]


def _as_unprivileged_root(command: list[str]) -> list[str]:
    """``command`` run without the capabilities that let root read any file."""
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *command]


def test_unreadable_files_and_folders_get_one_line_each(tmp_path: Path) -> None:
    """chmod 000 on a file and on a folder. Root reads them anyway, so as root the export
    runs under setpriv without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (skipped without it)."""
    command = [sys.executable, "-m", "ustui", "export", "exam", "--out", "out.zip"]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root and setpriv is missing: chmod 000 cannot be tested")
        command = _as_unprivileged_root(command)
    exam = tmp_path / "exam"
    (exam / "locked").mkdir(parents=True)
    for path in (exam / "good.dcm", exam / "secret.dcm", exam / "locked" / "inside.dcm"):
        path.write_bytes(_good())
    (exam / "secret.dcm").chmod(0)
    (exam / "locked").chmod(0)
    try:
        env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    finally:
        (exam / "locked").chmod(0o755)
        (exam / "secret.dcm").chmod(0o644)
    assert_no_traceback(run.stdout, run.stderr)
    assert run.returncode == 1, run.stderr
    assert sorted(skipped_lines(run.stdout)) == [
        "  exam/locked: cannot read the folder: Permission denied",
        "  exam/secret.dcm: cannot read: Permission denied",
    ]
    assert exported_count(tmp_path / "out.zip") == 1


def test_library_warnings_never_reach_the_terminal(tmp_path: Path) -> None:
    """pydicom warns on stderr about odd values (here an unknown character set), in the
    CLI and in the spawned export workers alike; users see only ustui's own lines."""
    for n in range(2):
        ds = small_image(seed=n + 1)
        ds.SpecificCharacterSet = "ICO_IR 100"
        ds.PatientName = "Odd^Charset"
        ds.save_as(tmp_path / f"odd{n}.dcm", enforce_file_format=True)
    command = [sys.executable, "-m", "ustui", "export", str(tmp_path), "--out", "out.zip"]
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    run = subprocess.run(
        [*command, "--workers", "2"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0
    assert run.stderr == ""
    assert exported_count(tmp_path / "out.zip") == 2


@pytest.mark.parametrize(
    ("keyword", "vr", "value"),
    [
        ("PatientName", "LO", "QZNAMELO"),
        ("PatientName", "OB", b"QZNAMEOB"),
        ("PatientName", "UN", b"QZNAMEUN"),
        ("PatientName", "SQ", None),
        ("PatientID", "SQ", None),
        ("PatientID", "UT", "QZPIDUT"),
        ("StudyInstanceUID", "LO", "1.2.826.0.1.3680043.10.999.4242"),
        ("StudyInstanceUID", "OB", b"1.2.826.0.1.3680043.10.999.4343"),
        ("PatientBirthDate", "LO", "19330303"),
        ("ReferencedImageSequence", "LO", "QZREFLO"),
    ],
)
def test_wrong_vrs_are_read_as_the_standard_says_and_nothing_leaks(
    tmp_path: Path, keyword: str, vr: str, value: object
) -> None:
    """A UID written as LO must still be replaced, a name as OB still removed, a sequence
    where a value belongs (or the reverse) dropped, never kept."""
    ds = small_image()
    tag = tag_for_keyword(keyword)
    assert tag is not None
    if tag in ds:
        del ds[tag]
    if vr == "SQ":
        item = Dataset()
        item.PatientName = "QZINSIDE^SEQUENCE"
        value = Sequence([item])
    ds.add_new(tag, vr, value)
    ds.save_as(tmp_path / "wrong.dcm", enforce_file_format=True)
    out = tmp_path / "out.zip"
    assert export(tmp_path / "wrong.dcm", "--out", out) == 0
    needle = (
        b"QZINSIDE" if vr == "SQ" else (value if isinstance(value, bytes) else str(value).encode())
    )
    with zipfile.ZipFile(out) as zf:
        for name in zf.namelist():
            assert needle not in zf.read(name) and needle.decode() not in name


# --- truncation everywhere -----------------------------------------------------------------------


@pytest.mark.parametrize("jpeg", [False, True], ids=["native", "jpeg"])
def test_truncation_at_any_point_ends_in_one_line_without_phi(tmp_path: Path, jpeg: bool) -> None:
    from ustui.core.errors import UstuiError
    from ustui.core.frames import FrameReader
    from ustui.core.inputs import InputFile
    from ustui.core.reading import read_header

    ds = small_image(jpeg=jpeg, frames=2)
    ds.PatientName = "QZTRUNC^PATIENT"
    data = dicom_bytes(ds)
    path = tmp_path / "t.dcm"
    reasons: set[str] = set()
    for end in range(0, len(data), 3 if not jpeg else 5):
        path.write_bytes(data[:end])
        source = InputFile(key=str(path), label="t.dcm", size=end, path=path)
        try:
            header = read_header(source)
            with FrameReader(source, header) as reader:
                reader.frame(reader.number_of_frames - 1)
        except UstuiError as exc:
            assert str(exc).startswith("t.dcm: ") and "\n" not in str(exc)
            assert "QZTRUNC" not in str(exc)
            reasons.add(exc.reason)
        else:
            # Only the encapsulated pixel data's closing delimiter may be missing.
            assert jpeg and end >= len(data) - 8, f"cut at {end} of {len(data)} read whole"
    assert "truncated file: the pixel data ends early" in reasons


def test_many_truncated_copies_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _good()
    exam = tmp_path / "exam"
    exam.mkdir()
    cuts = range(0, len(data), len(data) // 40)
    for n, end in enumerate(cuts):
        (exam / f"cut{n:02d}.dcm").write_bytes(data[:end])
    code = export(exam, "--out", tmp_path / "out.zip")
    printed, errors = capsys.readouterr()
    assert_no_traceback(printed, errors)
    assert code == 3 and not (tmp_path / "out.zip").exists()
    lines = skipped_lines(printed)
    assert len(lines) == len(cuts)
    assert all(re.fullmatch(rf"  {re.escape(str(exam))}/cut\d\d\.dcm: .+", line) for line in lines)


# --- faults: a full disk, a failed write, signals -------------------------------------------


class FullDisk:
    """A binary file that takes ``room`` more bytes, then fails like a full disk."""

    def __init__(self, file: Any, room: int) -> None:
        self._file = file
        self._room = room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            self._file.write(bytes(data[: self._room]))
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return int(self._file.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


@pytest.fixture
def exam_with_session(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """The sentinel exam, a saved session with a decision, and that session's bytes."""
    exam = tmp_path / "exam"
    write_exam(exam)
    load_key()  # the personal key exists before the faults start
    session = Session.load([exam])
    first = discover([exam]).files[0]
    session.decision(first.key).crop = Box(10, 20, 110, 100)
    session.save()
    return exam, session.path, session.path.read_bytes()


def assert_nothing_partial(out: Path, *kept: str) -> None:
    """No destination, no temporary ZIP and no parts folder beside it: only ``kept``."""
    assert not out.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(kept)


def assert_disk_full_reported(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One line on stderr naming the destination and the full disk; no traceback."""
    printed, errors = capsys.readouterr()
    assert_no_traceback(printed, errors)
    assert (
        errors == f"ustui: {out}: cannot write the export: the disk is full; nothing was written\n"
    )


def assert_session_intact(exam: Path, path: Path, saved: bytes) -> None:
    assert path.read_bytes() == saved
    again = Session.load([exam])
    assert again.notice is None and len(again.files) == 1
    assert list(path.parent.glob("*.tmp")) == [] and list(path.parent.glob(".*")) == []


@pytest.mark.parametrize("room", [0, 3000, 30000])
def test_disk_full_while_writing_a_part_leaves_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    exam_with_session: tuple[Path, Path, bytes],
    room: int,
) -> None:
    exam, session, saved = exam_with_session
    before = tree_digest(exam)
    real = export_module.write_image
    calls: list[int] = []

    def failing(plan: Any, reader: Any, out: Dataset, stream: Any) -> Any:
        calls.append(1)
        # The second file fails part-way through its pixel data.
        return real(plan, reader, out, FullDisk(stream, room) if len(calls) == 2 else stream)

    monkeypatch.setattr(export_module, "write_image", failing)
    out = tmp_path / "out.zip"
    assert export(exam, "--out", out) == 3
    assert_disk_full_reported(out, capsys)
    assert_nothing_partial(out, "exam")
    assert tree_digest(exam) == before
    assert_session_intact(exam, session, saved)


@needs_proc
@pytest.mark.parametrize("share", [0.0, 0.5, 0.99])
def test_disk_full_while_writing_the_zip_leaves_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    exam_with_session: tuple[Path, Path, bytes],
    share: float,
) -> None:
    exam, session, saved = exam_with_session
    before = tree_digest(exam)
    out = tmp_path / "out.zip"
    assert export(exam, "--out", tmp_path / "sized.zip") == 0
    room = int(share * (tmp_path / "sized.zip").stat().st_size)  # fail at the start, middle, end
    (tmp_path / "sized.zip").unlink()
    real = os.fdopen
    failed: list[str] = []

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        file = real(fd, *args, **kwargs)
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith(f".{out.name}.") and name.endswith(".tmp"):
            failed.append(name)
            return FullDisk(file, room)
        return file

    monkeypatch.setattr(os, "fdopen", fdopen)
    assert export(exam, "--out", out) == 3
    assert_disk_full_reported(out, capsys)
    assert len(failed) == 1
    assert_nothing_partial(out, "exam")
    assert tree_digest(exam) == before
    assert_session_intact(exam, session, saved)


def test_disk_full_while_keeping_the_manifest_rows_leaves_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    exam_with_session: tuple[Path, Path, bytes],
) -> None:
    """The rows of processed files wait on disk beside the parts; that write can fail too."""
    exam, session, saved = exam_with_session
    real = Path.open

    def open_(path: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        file = real(path, mode, *args, **kwargs)
        return FullDisk(file, 0) if path.name == "rows" and "w" in mode else file

    monkeypatch.setattr(Path, "open", open_)
    out = tmp_path / "out.zip"
    assert export(exam, "--out", out) == 3
    assert_disk_full_reported(out, capsys)
    assert_nothing_partial(out, "exam")
    assert_session_intact(exam, session, saved)


def test_a_failed_export_keeps_the_previous_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exam_with_session: tuple[Path, Path, bytes]
) -> None:
    exam, _, _ = exam_with_session
    out = tmp_path / "out.zip"
    assert export(exam, "--out", out) == 0
    previous = out.read_bytes()
    real = export_module.write_image
    monkeypatch.setattr(
        export_module,
        "write_image",
        lambda plan, reader, ds, stream: real(plan, reader, ds, FullDisk(stream, 100)),
    )
    assert export(exam, "--out", out) == 3
    assert out.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exam", "out.zip"]


def test_a_crosswalk_or_audit_log_that_cannot_be_written_stops_the_export(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    exam_with_session: tuple[Path, Path, bytes],
) -> None:
    """A ZIP in place always has its crosswalk and its audit line: when either cannot
    be written, the ZIP is not put in place."""
    exam, _, _ = exam_with_session
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    user_file().parent.mkdir(parents=True, exist_ok=True)
    user_file().write_text(f'[cw]\n[cw.export]\ncrosswalk = "{blocker}/sub/walk.csv"\n')
    out = tmp_path / "out.zip"
    assert export(exam, "--out", out, "--profile", "cw") == 3
    errors = capsys.readouterr().err
    assert errors.startswith(f"ustui: {out}: cannot write {blocker}/sub: ")
    assert errors.endswith("; nothing was exported\n") and errors.count("\n") == 1
    assert not out.exists()

    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))  # the audit log cannot be written
    assert export(exam, "--out", out) == 3
    errors = capsys.readouterr().err
    assert errors.startswith(f"ustui: {out}: cannot write {blocker}/ustui: ")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "exam"]


@needs_proc
def test_a_destination_folder_that_cannot_be_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.dcm").write_bytes(_good())
    assert export(tmp_path / "good.dcm", "--out", "/proc/out.zip") == 3
    printed, errors = capsys.readouterr()
    assert_no_traceback(printed, errors)
    assert errors.startswith("ustui: /proc/out.zip: cannot write in its folder: ")
    assert errors.count("\n") == 1


def test_an_error_of_the_machine_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("a file where a folder should be")
    assert main(["demo", "--dir", str(tmp_path / "file" / "demo")]) == 1
    printed, errors = capsys.readouterr()
    assert_no_traceback(printed, errors)
    assert errors == f"ustui: {tmp_path}/file/demo: Not a directory\n"


def test_a_failed_session_save_keeps_the_previous_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = Session.load([tmp_path])
    session.decision("a").tags["side"] = "left"
    session.save()
    saved = session.path.read_bytes()
    real = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullDisk(real(fd, *a, **k), 10))
    session.decision("b").excluded = True
    with pytest.raises(OSError, match="No space left"):
        session.save()
    monkeypatch.undo()
    assert session.path.read_bytes() == saved
    assert [p.name for p in session.path.parent.iterdir()] == [session.path.name]


SLOW_SITECUSTOMIZE = """
import time

import ustui.core.export as export

_write_part = export._write_part


def _slow(*args, **kwargs):
    time.sleep(0.25)  # every process, the spawned workers too: a slow disk
    return _write_part(*args, **kwargs)


export._write_part = _slow
"""


def _default_signals() -> None:
    # The test runner may ignore some (nohup, `&`): the CLI must see them as a user would.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("signum", "workers", "group"),
    [
        (signal.SIGINT, 1, True),
        (signal.SIGTERM, 1, False),
        (signal.SIGHUP, 1, False),
        (signal.SIGINT, 2, True),  # Ctrl-C: the whole process group, workers included
        (signal.SIGTERM, 2, False),
    ],
    ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGINT-2-workers", "SIGTERM-2-workers"],
)
def test_a_signal_during_export_leaves_nothing_partial(
    tmp_path: Path, signum: int, workers: int, group: bool
) -> None:
    exam = large_exam(tmp_path / "exam", files=12, frames=4, rows=120, columns=160)
    before = tree_digest(exam)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_SITECUSTOMIZE)
    out = tmp_path / "out" / "OUT.zip"
    out.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{PROJECT}"}
    command = [sys.executable, "-m", "ustui", "export", str(exam), "--out", str(out)]
    child = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_default_signals,
    )
    try:
        # Wait until the export is under way: a part file exists beside the destination.
        deadline = time.monotonic() + 60
        while not any(p.is_file() for p in out.parent.glob(".OUT.zip.parts-*/*")):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the export did not start"
            time.sleep(0.02)
        if group:
            os.killpg(child.pid, signum)
        else:
            os.kill(child.pid, signum)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert_no_traceback(stdout, stderr)
    assert child.returncode == 128 + signum, stderr
    assert stderr.strip().splitlines() == ["ustui: interrupted"]
    assert list(out.parent.iterdir()) == []  # no OUT.zip, no temporary ZIP, no parts
    assert tree_digest(exam) == before


# --- sessions that cannot be used ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{ not json", "session file could not be used (Expecting property name"),
        (json.dumps({"version": 99, "files": {}}), "written by a newer ustui (format 99)"),
        (json.dumps({"version": 1, "files": {"k": {"crop": [1, 2]}}}), "could not be used"),
    ],
    ids=["corrupt", "newer", "bad-box"],
)
def test_an_unusable_session_is_set_aside_with_a_message(
    tmp_path: Path, content: str, why: str
) -> None:
    """In a real process: logging's last-resort handler would print records too."""
    exam = tmp_path / "exam"
    exam.mkdir()
    (exam / "good.dcm").write_bytes(_good())
    path = session_path([exam])
    path.parent.mkdir(parents=True)
    path.write_text(content)
    command = [sys.executable, "-m", "ustui", "export", str(exam), "--out", "out.zip"]
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    run = subprocess.run(
        [*command, "--workers", "1"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert_no_traceback(run.stdout, run.stderr)
    assert run.returncode == 0
    aside = list(path.parent.glob("*.unusable-*.json"))
    assert len(aside) == 1 and aside[0].read_text() == content
    [line] = run.stderr.splitlines()
    assert line.startswith("ustui: session file could not be used (") and why in line
    assert line.endswith(f"; moved aside to {aside[0]}")
    assert exported_count(tmp_path / "out.zip") == 1


# --- inputs are never written; no network ------------------------------------------------------


async def review_and_export(paths: list[str], out: Path) -> None:
    """A whole UI session: look at every file, crop, mask, inspect, tag, exclude one,
    export from the export screen, quit."""
    app = make_app(paths, profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        ws = screen.workspace
        await pilot.press("i", "i", "right", "down", "tab", "left", "m", "v", "v")
        for _ in range(len(ws.entries)):
            if not any(ws.status(i)[0] is Status.NEEDS_TAGS for i in range(len(ws.entries))):
                break
            await pilot.press("1", "l", "d")
            screen = await settle(pilot)
        await pilot.press("right_square_bracket", "x", "x", "k", "x")
        screen = await settle(pilot)
        await pilot.press("e")
        await pilot.pause()
        export_screen = app.screen
        assert isinstance(export_screen, ExportScreen)
        export_screen.query_one("#destination").value = str(out)  # type: ignore[attr-defined]
        await pilot.press("enter")
        for _ in range(1500):
            await pilot.pause(0.02)
            if not export_screen.running:
                break
        assert export_screen.error is None
        assert export_screen.result is not None and export_screen.result.exported
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("q")


@pytest.fixture
def read_only_exam(tmp_path: Path) -> Iterator[Path]:
    """The UI tests' exam (four images and a text file) as files and in a ZIP, read-only."""
    root = tmp_path / "inputs"
    write_ui_exam(root / "exam")
    with zipfile.ZipFile(root / "exam.zip", "w") as zf:
        for path in sorted((root / "exam").iterdir()):
            zf.write(path, f"zipped/{path.name}")
    make_read_only(root)
    try:
        yield root
    finally:
        make_writable(root)


def test_inputs_are_never_opened_for_writing_nor_changed(
    tmp_path: Path, read_only_exam: Path
) -> None:
    root = read_only_exam
    before = tree_digest(root)
    with audit_events() as events:
        assert export(root, "--out", tmp_path / "cli.zip") == 1  # the zipped copies are skipped
        pilot_test(review_and_export)(
            [str(root / "exam"), str(root / "exam.zip")], tmp_path / "ui.zip"
        )
    assert changes_under(events, root) == []
    assert tree_digest(root) == before
    # The hook saw the inputs being read, so it was really listening.
    assert any(e == "open" and str(args[0]).startswith(str(root)) for e, args in events)
    assert exported_count(tmp_path / "cli.zip") == 4  # each instance once
    assert exported_count(tmp_path / "ui.zip") >= 1


def test_no_socket_is_opened_by_an_export_a_verify_or_a_ui_session(tmp_path: Path) -> None:
    exam = write_ui_exam(tmp_path / "exam")
    with audit_events() as events:
        assert export(exam, "--out", tmp_path / "cli.zip") == 0  # notes.txt is ignored
        assert main(["verify", str(tmp_path / "cli.zip"), "--against", str(exam)]) == 0
        pilot_test(review_and_export)([str(exam)], tmp_path / "ui.zip")
    assert network_events(events) == []
    # asyncio's self-pipe was seen, so socket events were really being recorded.
    assert any(event == "socket.__new__" for event, _ in events)


AUDIT_SITECUSTOMIZE = """
import os
import socket
import sys

_log = os.open(os.environ["USTUI_AUDIT_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
_root = os.path.realpath(os.environ["USTUI_AUDIT_ROOT"])
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_NETWORK = ("socket.", "http.client.", "urllib.", "ftplib.", "smtplib.", "webbrowser.")


def _hook(event, args):
    # os.write raises no audit event, so the hook cannot call itself.
    if event.startswith(_NETWORK):
        if not (event == "socket.__new__" and args[1] == socket.AF_UNIX):
            os.write(_log, f"{os.getpid()} {event} {args[1:]!r}\\n".encode())
    elif event == "open" and isinstance(args[0], (str, bytes)):
        mode, flags = args[1], args[2]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE
        )
        if writes:
            path = os.path.realpath(os.fsdecode(args[0]))
            if path == _root or path.startswith(_root + os.sep):
                os.write(_log, f"{os.getpid()} write {path}\\n".encode())


sys.addaudithook(_hook)
os.write(_log, f"{os.getpid()} listening\\n".encode())
"""


def _export_watched(tmp_path: Path, inputs: Path) -> list[str]:
    """Export ``inputs`` with two worker processes, every process watched from its start
    (a sitecustomize installs the hook); the events seen, one line each."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(AUDIT_SITECUSTOMIZE)
    log = tmp_path / "audit.log"
    env = {
        **os.environ,
        "PYTHONPATH": f"{site}{os.pathsep}{PROJECT}",
        "USTUI_AUDIT_LOG": str(log),
        "USTUI_AUDIT_ROOT": str(inputs),
    }
    out = tmp_path / "out.zip"
    command = [sys.executable, "-m", "ustui", "export", str(inputs), "--out", str(out)]
    run = subprocess.run([*command, "--workers", "2"], env=env, capture_output=True, text=True)
    assert run.returncode == 1, run.stderr  # the zipped copies are skipped
    assert exported_count(out) == 4  # each instance once
    lines = log.read_text().splitlines()
    listening = [line for line in lines if line.endswith(" listening")]
    assert len(listening) >= 3  # the CLI and its two workers (at least) were watched
    return [line for line in lines if line not in listening]


def test_worker_processes_write_no_input_and_reach_no_network(
    tmp_path: Path, read_only_exam: Path
) -> None:
    events = _export_watched(tmp_path, read_only_exam)
    assert [e for e in events if " write " in e] == []
    # No connection, name lookup, send, listen or bind (ustui.core keeps pydicom from
    # importing requests, whose urllib3 would bind a probe socket to ::1 at import).
    assert events == []


def test_no_process_creates_any_socket(tmp_path: Path, read_only_exam: Path) -> None:
    """Beyond asyncio's in-process AF_UNIX socket pair, no socket is ever created."""
    assert _export_watched(tmp_path, read_only_exam) == []


# --- private files and PHI -----------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 000: modes must come from ustui, not from a careful user's umask."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_key_crosswalk_session_and_audit_log_are_owner_only(tmp_path: Path) -> None:
    write_exam(tmp_path / "exam")
    walk = tmp_path / "private" / "walk.csv"
    user_file().parent.mkdir(parents=True, exist_ok=True)
    user_file().write_text(f'[cw]\n[cw.export]\ncrosswalk = "{walk}"\n')
    assert export(tmp_path / "exam", "--out", tmp_path / "out.zip", "--profile", "cw") == 0
    app = make_app([str(tmp_path / "exam")], profile="dvt")  # creates and saves the session
    private = {
        "key": data_dir() / "key",
        "crosswalk": walk,
        "session": app.workspace.session.path,
        "audit log": state_dir() / "audit.jsonl",
    }
    for what, path in private.items():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, what
    for folder in (data_dir(), state_dir(), app.workspace.session.path.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def _leaked(needles: set[str], text: str) -> list[str]:
    """The needles found in ``text`` (numbers only where they stand alone)."""
    lowered = text.lower()
    found = []
    for needle in needles:
        if re.fullmatch(r"[0-9.]+", needle):
            hit = re.search(rf"(?<![0-9.]){re.escape(needle)}(?![0-9])", lowered)
        else:
            hit = needle.lower() in lowered
        if hit:
            found.append(needle)
    return found


def test_no_phi_in_logs_messages_manifests_or_names(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sentinel in every identifying attribute; files that are skipped, and one that
    fails inside the pipeline with an error quoting PHI, are in the mix."""
    exam = tmp_path / "exam"
    files = write_exam(exam)
    needles = _originals_text(files)
    a1 = (exam / "a1.dcm").read_bytes()
    (exam / "cut.dcm").write_bytes(a1[: len(a1) // 2])
    (exam / "name.dcm").write_bytes(a1.replace(b"QZALICE^SMITH", b"QZALICE^SMITHX", 1))
    (exam / "odd.dcm").write_bytes(
        _replace_once(a1, b"1.2.840.10008.1.2.1\x00", b"1.2.3.4.5.6.7.8.9.10")
    )
    real = export_module.deidentify

    def deidentify(ds: Dataset, **kwargs: Any) -> None:
        if str(ds.PatientName) == "QZBOB^JONES":
            raise ValueError(f"cannot handle {ds.PatientName} {ds.StudyInstanceUID}")
        real(ds, **kwargs)

    monkeypatch.setattr(export_module, "deidentify", deidentify)
    user_file().parent.mkdir(parents=True, exist_ok=True)
    user_file().write_text(BASIC_ONLY)  # shifted dates could meet other sentinel dates
    out = tmp_path / "out.zip"
    with caplog.at_level("DEBUG"):
        assert export(exam, "--out", out, "--profile", "basic-only") == 1
        assert main(["verify", str(out), "--against", str(exam)]) == 0
    printed, errors = capsys.readouterr()
    assert_no_traceback(printed, errors)
    assert "internal error (ValueError)" in printed  # b1.dcm, skipped, never exported
    assert "internal error on input" in caplog.text and "ValueError" in caplog.text
    places = {"logs": caplog.text, "stdout": printed, "stderr": errors}
    with zipfile.ZipFile(out) as zf:
        places["member names"] = "\n".join(zf.namelist())
        places["manifest.csv"] = zf.read("manifest.csv").decode()
        places["manifest.json"] = zf.read("manifest.json").decode()
    places["audit log"] = (state_dir() / "audit.jsonl").read_text()
    for where, text in places.items():
        assert _leaked(needles, text) == [], where


# --- the terminal UI over the same bad inputs ------------------------------------------------


@pilot_test
async def test_the_ui_lists_every_bad_input_with_the_exports_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    expected: dict[str, str] = {}
    for n, (build, reason) in enumerate(BAD_INPUTS.values()):
        folder = Path("bad") / f"{n:02d}"
        folder.mkdir(parents=True)
        expected[f"{folder}/{build(folder)}"] = reason
    (Path("bad") / "good.dcm").write_bytes(_good())
    app = make_app(["bad"], profile="generic-us")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        ws = screen.workspace
        shown = {
            entry.file.label: ws.status(i)[1]
            for i, entry in enumerate(ws.entries)
            if ws.status(i)[0] is Status.UNSUPPORTED
        }
        shown.update(problem.split(": ", 1) for problem in ws.problems)  # type: ignore[arg-type]
        assert shown == expected
        await pilot.press("i")  # the header inspector too
        for _ in ws.entries:  # show every file: previews and frames load, nothing crashes
            await pilot.press("j")
            await settle(pilot)
        assert app.is_running
