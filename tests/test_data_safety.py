"""Never lose, duplicate or re-read data; hostile names stay inert; fail fast without a
terminal; every skip reason says what really happened (issue 12)."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import real_files
from hostile import dicom_bytes, insert_before_pixels, nested_sequences, small_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pty_session import signal_on_pty
from pydicom.encaps import encapsulate, generate_frames
from pydicom.filereader import data_element_generator
from pydicom.fileset import FileSet
from pydicom.uid import DeflatedExplicitVRLittleEndian
from test_robustness import assert_no_traceback, export, exported_count, skipped_lines
from test_tui import SIZE, _cursor, pilot_test, settle
from test_tui import write_exam as write_ui_exam

from ustui.cli import main
from ustui.core.errors import UstuiError
from ustui.core.export import ExportFailed, ExportRequest, run_export
from ustui.core.frames import FrameReader
from ustui.core.inputs import InputFile, discover
from ustui.core.printable import printable
from ustui.core.profiles import get_profile
from ustui.core.reading import read_header
from ustui.core.session import FileDecision, Session
from ustui.tui.app import make_app
from ustui.tui.model import Status
from ustui.tui.screens.export import ExportScreen
from ustui.tui.widgets.file_list import FileList

PROJECT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    """The environment for a child ustui: this test's own XDG folders, this checkout."""
    return {**os.environ, "PYTHONPATH": str(PROJECT), **extra}


def _exam(folder: Path, count: int = 2) -> Path:
    """``count`` small images (distinct instances) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (folder / f"IMG{n + 1}.dcm").write_bytes(dicom_bytes(small_image(seed=n + 1)))
    return folder


def _zip_of(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, path.name)
    return archive


@pytest.fixture
def ui_exam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The UI tests' exam as the relative path "exam" (labels then name no tmp folder)."""
    monkeypatch.chdir(tmp_path)
    write_ui_exam(tmp_path / "exam")
    return "exam"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(out: Path) -> dict[str, object]:
    with zipfile.ZipFile(out) as zf:
        document = json.loads(zf.read("manifest.json"))
    assert isinstance(document, dict)
    return document


# --- the destination is never an input -------------------------------------------------------


def test_an_input_zip_as_out_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = _zip_of(_exam(tmp_path / "exam"), tmp_path / "exam.zip")
    before = _digest(archive)
    assert export(archive, "--out", archive) == 2
    printed, errors = capsys.readouterr()
    assert printed == ""
    assert errors == (
        f"ustui: --out {archive} is one of the inputs; writing it would replace them. "
        "Choose another name\n"
    )
    assert _digest(archive) == before


def test_an_out_that_is_a_file_found_in_an_input_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exam = _exam(tmp_path / "exam")
    raw = _zip_of(_exam(tmp_path / "more", 1), exam / "raw.zip")  # an input archive
    before = _digest(raw)
    assert export(exam, "--out", raw) == 2
    _, errors = capsys.readouterr()
    assert errors.count("\n") == 1 and "is one of the input files" in errors
    assert _digest(raw) == before
    # A hard link to an input is the same file under another name.
    link = tmp_path / "link.zip"
    os.link(raw, link)
    assert export(exam, "--out", link) == 2
    assert _digest(raw) == before


def test_run_export_itself_refuses_an_input_as_destination(tmp_path: Path) -> None:
    """The UI's export goes through run_export too."""
    archive = _zip_of(_exam(tmp_path / "exam"), tmp_path / "exam.zip")
    before = _digest(archive)
    request = ExportRequest(
        inputs=discover([archive]).files, profile=get_profile(), out=archive, require_tags=False
    )
    with pytest.raises(ExportFailed, match="is one of the input files"):
        run_export(request)
    assert _digest(archive) == before


@pilot_test
async def test_the_export_screen_refuses_an_input_as_destination(ui_exam: str) -> None:
    archive = _zip_of(Path(ui_exam), Path("exam.zip")).resolve()
    before = _digest(archive)
    app = make_app(["exam.zip"], profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ExportScreen)
        screen.query_one("#destination").value = "exam.zip"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert not screen.running and screen.result is None
        messages = [n.message for n in app._notifications]
        assert any("exam.zip is one of the inputs" in m for m in messages)
    assert _digest(archive) == before


def test_an_export_inside_the_exam_folder_is_not_read_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exam = _exam(tmp_path / "exam", 3)
    out = exam / "export.zip"
    assert export(exam, "--out", out) == 0
    first = _manifest(out)["files"]
    capsys.readouterr()
    assert export(exam, "--out", out) == 0  # replaces the earlier export, never reads it
    printed, _ = capsys.readouterr()
    assert "Ignored 1 earlier ustui export(s) found in folders (not exported)." in printed
    second = _manifest(out)["files"]
    assert isinstance(first, list) and isinstance(second, list)
    assert len(second) == 3
    assert {r["sop_instance_uid"] for r in second} == {r["sop_instance_uid"] for r in first}
    # Named on its own, an earlier export is a problem with its reason.
    assert export(out, "--out", tmp_path / "again.zip") == 3
    printed, _ = capsys.readouterr()
    assert skipped_lines(printed) == [
        f"  {out}: an earlier ustui export (its manifest says so): not exported again"
    ]


# --- one output per instance -------------------------------------------------------------------


def test_copies_of_an_instance_are_exported_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exam = _exam(tmp_path / "exam", 2)
    (exam / "sub").mkdir()
    shutil.copy(exam / "IMG1.dcm", exam / "sub" / "copy.dcm")
    archive = tmp_path / "again.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("IMG1.dcm", "IMG2.dcm"):
            zf.write(exam / name, name)
    out = tmp_path / "out.zip"
    assert export(exam, archive, "--out", out) == 1
    printed, _ = capsys.readouterr()
    rows = _manifest(out)["files"]
    assert isinstance(rows, list) and len(rows) == 2
    assert len({r["sop_instance_uid"] for r in rows}) == 2
    # Natural order of the labels: again.zip/... sorts before exam/...; the first wins.
    assert sorted(skipped_lines(printed)) == sorted(
        [
            f"  {exam}/IMG1.dcm: duplicate of {archive}/IMG1.dcm",
            f"  {exam}/IMG2.dcm: duplicate of {archive}/IMG2.dcm",
            f"  {exam}/sub/copy.dcm: duplicate of {archive}/IMG1.dcm",
        ]
    )


def test_a_broken_first_copy_does_not_hide_a_good_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = dicom_bytes(small_image(seed=5))
    exam = tmp_path / "exam"
    exam.mkdir()
    (exam / "a.dcm").write_bytes(data[:-100])  # header whole, pixels cut
    (exam / "b.dcm").write_bytes(data)
    out = tmp_path / "out.zip"
    assert export(exam, "--out", out) == 1
    assert skipped_lines(capsys.readouterr()[0]) == [
        f"  {exam}/a.dcm: truncated file: the pixel data ends early"
    ]
    assert exported_count(out) == 1


def test_an_excluded_instance_stays_excluded_in_its_copies(tmp_path: Path) -> None:
    data = dicom_bytes(small_image(seed=6))
    exam = tmp_path / "exam"
    exam.mkdir()
    (exam / "a.dcm").write_bytes(data)
    (exam / "b.dcm").write_bytes(data)
    (exam / "c.dcm").write_bytes(dicom_bytes(small_image(seed=7)))
    inputs = discover([exam]).files
    request = ExportRequest(
        inputs=inputs,
        profile=get_profile(),
        out=tmp_path / "out.zip",
        decisions={inputs[0].key: FileDecision(excluded=True)},
        require_tags=False,
    )
    result = run_export(request)
    assert [(s.label, s.reason) for s in result.skipped] == [
        (f"{exam}/a.dcm", "excluded by the user"),
        (f"{exam}/b.dcm", f"duplicate of {exam}/a.dcm"),
    ]
    assert [e.label for e in result.exported] == [f"{exam}/c.dcm"]


@pilot_test
async def test_the_ui_marks_copies_and_leaves_them_out(ui_exam: str) -> None:
    exam = Path(ui_exam)
    (exam / "sub").mkdir()
    shutil.copy(exam / "IMG1.dcm", exam / "sub" / "IMG1-copy.dcm")
    app = make_app(["exam"], profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        ws = screen.workspace
        labels = [e.file.label for e in ws.entries]
        copy = labels.index("exam/sub/IMG1-copy.dcm")
        assert ws.status(copy) == (Status.UNSUPPORTED, "duplicate of exam/IMG1.dcm")
        assert [ws.status(i)[0] for i in range(len(labels)) if i != copy] == [Status.NEEDS_TAGS] * 4
        await pilot.press("e")
        await pilot.pause()
        plan = app.screen
        assert isinstance(plan, ExportScreen)
        assert ("exam/sub/IMG1-copy.dcm", "duplicate of exam/IMG1.dcm") in plan.plan.skipped


# --- hostile names stay inert ------------------------------------------------------------------

HOSTILE = "evil\n\x1b[2J\x1b]0;pwned\x07\u202egnp.dcm"


def test_names_are_escaped_in_the_summary_and_exact_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exam = _exam(tmp_path / "exam", 1)
    (exam / HOSTILE).write_bytes(dicom_bytes(small_image(seed=9))[:-50])
    good = "ok\x1b[31m.dcm"
    (exam / good).write_bytes(dicom_bytes(small_image(seed=8)))
    with zipfile.ZipFile(exam / "arch.zip", "w") as zf:
        zf.writestr("in\rzip\x1b[H.dcm", dicom_bytes(small_image(seed=10))[:-50])
    out = tmp_path / "out.zip"
    assert export(exam, "--out", out) == 1
    printed, errors = capsys.readouterr()
    assert errors == ""
    for char in "\x1b\x07\r\u202e":
        assert char not in printed
    lines = skipped_lines(printed)
    assert lines == [
        f"  {exam}/arch.zip/in\\rzip\\x1b[H.dcm: truncated file: the pixel data ends early",
        f"  {exam}/evil\\n\\x1b[2J\\x1b]0;pwned\\x07\\u202egnp.dcm: truncated file: the pixel "
        "data ends early",
    ]
    assert "ok\\x1b[31m.dcm  ->" in printed

    assert main(["export", str(exam), "--out", str(out), "--workers", "1", "--json"]) == 1
    summary = json.loads(capsys.readouterr()[0])
    assert {s["input"] for s in summary["skipped"]} == {
        f"{exam}/{HOSTILE}",
        f"{exam}/arch.zip/in\rzip\x1b[H.dcm",
    }
    assert f"{exam}/{good}" in {e["input"] for e in summary["exported"]}


def test_undecodable_name_bytes_are_shown_escaped(tmp_path: Path) -> None:
    """A name that is not UTF-8 cannot even be printed as it is (strict stdout)."""
    exam = _exam(tmp_path / "exam", 1)
    with open(os.path.join(os.fsencode(exam), b"caf\xe9.dcm"), "wb") as f:
        f.write(dicom_bytes(small_image(seed=4))[:-40])
    run = subprocess.run(
        [sys.executable, "-m", "ustui", "export", "exam", "--out", "out.zip", "--workers", "1"],
        cwd=tmp_path,
        env=_env(PYTHONIOENCODING="utf-8:strict"),
        capture_output=True,
        text=True,
    )
    assert_no_traceback(run.stdout, run.stderr)
    assert run.returncode == 1
    assert skipped_lines(run.stdout) == [
        "  exam/caf\\xe9.dcm: truncated file: the pixel data ends early"
    ]


def test_printable_escapes_what_acts_on_a_terminal() -> None:
    assert printable("plain é 中.dcm") == "plain é 中.dcm"
    assert printable("a\tb\nc\x1b[2J\x7f\x9b\u200b\u2028") == (
        "a\\tb\\nc\\x1b[2J\\x7f\\x9b\\u200b\\u2028"
    )


@pilot_test
async def test_the_ui_shows_hostile_names_escaped_and_never_as_markup(ui_exam: str) -> None:
    exam = Path(ui_exam)
    os.rename(exam / "IMG1.dcm", exam / "IMG\x1b[2J\nA.dcm")
    os.rename(exam / "IMG2.dcm", exam / "[bold]B.dcm")
    app = make_app(["exam", "gone\x1b[2J[/b]"], profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        shown = [screen.workspace.entries[i].name for i in range(len(screen.workspace.entries))]
        assert "IMG\\x1b[2J\\nA.dcm" in shown and "[bold]B.dcm" in shown
        files = screen.query_one(FileList)
        plain = [files.get_option_at_index(i).prompt for i in range(files.option_count)]
        text = "\n".join(str(getattr(p, "plain", p)) for p in plain)
        assert "\x1b" not in text and "[bold]B.dcm" in text
        messages = [n.message for n in app._notifications]
        assert any("gone\\x1b[2J[/b]: no such file or folder" in m for m in messages)
        assert all("\x1b" not in m for m in messages)


# --- a terminal, or one line and exit 2 ----------------------------------------------------------


def test_the_ui_without_a_terminal_says_so_and_exits_2(tmp_path: Path) -> None:
    _exam(tmp_path / "exam", 1)
    run = subprocess.run(
        [sys.executable, "-m", "ustui", "exam"],
        cwd=tmp_path,
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and "needs a terminal" in run.stderr


def test_a_missing_path_exits_2_before_any_ui(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from ustui.cli import main\n"
        "code = main(['/does/not/exist'])\n"
        "print(code, 'textual' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60
    )
    assert run.stdout == "2 False\n"
    assert run.stderr == "ustui: /does/not/exist: no such file or folder\n"


def test_sigterm_in_the_ui_saves_the_session_and_exits_143(ui_exam: str) -> None:
    """The app on a real pseudo-terminal, started as users do (through the CLI)."""
    code = (
        "import sys\n"
        "from ustui.cli import main\n"
        "sys.exit(main(['exam', '--profile', 'dvt', '--image-protocol', 'halfcell']))\n"
    )
    session = Session.load([ui_exam]).path
    status = signal_on_pty(code, _env(TERM="xterm-256color"), session, signal.SIGTERM, _cursor)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 143
    assert _cursor(session).endswith("IMG2.dcm")


# --- reasons that say what happened ------------------------------------------------------------


def _reason(path: Path, data: bytes | None = None, *, label: str = "t.dcm") -> str | None:
    """The skip reason for a file (None when it reads and decodes whole)."""
    if data is not None:
        path.write_bytes(data)
    source = InputFile(key=str(path), label=label, size=path.stat().st_size, path=path)
    try:
        header = read_header(source)
        with FrameReader(source, header) as reader:
            reader.frame(reader.number_of_frames - 1)
    except UstuiError as exc:
        return exc.reason
    return None


def test_a_truncated_zip_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = _zip_of(_exam(tmp_path / "exam"), tmp_path / "exam.zip")
    cut = tmp_path / "cut.zip"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])
    assert export(cut, "--out", tmp_path / "out.zip") == 3
    assert skipped_lines(capsys.readouterr()[0]) == [f"  {cut}: truncated or damaged ZIP archive"]


def test_a_corrupt_deflate_stream_is_a_damaged_zip_member(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = dicom_bytes(small_image(seed=2, rows=64, columns=96))
    archive = tmp_path / "exam.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("IMG.dcm", data)
    raw = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("IMG.dcm")
    start = info.header_offset + 30 + len(info.filename)
    middle = start + info.compress_size * 3 // 4
    raw[middle : middle + 16] = b"\xff" * 16  # the deflate stream, late enough to pass the header
    archive.write_bytes(bytes(raw))
    assert export(archive, "--out", tmp_path / "out.zip") == 3
    lines = skipped_lines(capsys.readouterr()[0])
    assert len(lines) == 1
    assert lines[0].startswith(f"  {archive}/IMG.dcm: cannot read: the ZIP member is damaged (")


def test_a_file_cut_inside_a_sequence_says_truncated(tmp_path: Path) -> None:
    data = insert_before_pixels(dicom_bytes(small_image()), nested_sequences(3))
    start = data.index(nested_sequences(3))
    reasons = {_reason(tmp_path / "t.dcm", data[:end]) for end in range(start + 1, start + 120)}
    assert reasons and all(r and r.startswith("truncated") for r in reasons), reasons
    assert "truncated file: it ends inside a sequence" in reasons


def test_a_complete_file_without_pixel_data_says_only_that(tmp_path: Path) -> None:
    ds = small_image()
    for keyword in ("PixelData", "Rows", "Columns"):
        delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    assert _reason(tmp_path / "sr.dcm", dicom_bytes(ds)) == "no pixel data"


def test_the_codecs_own_words_are_kept(tmp_path: Path) -> None:
    ds = small_image(jpeg=True)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 2]])  # the codestream stops halfway
    reason = _reason(tmp_path / "j.dcm", dicom_bytes(ds))
    assert reason is not None and reason.startswith("frame 1 cannot be decoded (OSError: ")
    assert "truncated" in reason.lower()  # Pillow's own words


def test_encapsulated_data_cut_between_frames_says_truncated(tmp_path: Path) -> None:
    data = dicom_bytes(small_image(jpeg=True, frames=3))
    pixels = data.rindex(struct.pack("<HH", 0x7FE0, 0x0010))
    items = []
    at = pixels
    while (at := data.find(b"\xfe\xff\x00\xe0", at + 1)) != -1:
        items.append(at)
    # items: offset table, frame 1, frame 2, frame 3: cut at the start of frames 2 and 3.
    for end in items[2:]:
        reason = _reason(tmp_path / "t.dcm", data[:end])
        assert reason == "truncated file: the pixel data ends early"


# --- deflated inputs ---------------------------------------------------------------------------


def test_a_deflated_input_is_exported_with_its_pixels(tmp_path: Path) -> None:
    ds = small_image(seed=3, rows=64, columns=96)
    ds.PatientName = "QZDEFLATED^NAME"
    original = ds.pixel_array.copy()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = tmp_path / "deflated.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert b"QZDEFLATED" not in path.read_bytes()  # really deflated
    out = tmp_path / "out.zip"
    assert export(path, "--out", out, "--no-require-tags") == 0
    row = _manifest(out)["files"][0]  # type: ignore[index]
    left, top, right, bottom = row["crop"]
    with zipfile.ZipFile(out) as zf:
        exported = pydicom.dcmread(io.BytesIO(zf.read(row["path"])))
    np.testing.assert_array_equal(exported.pixel_array, original[top:bottom, left:right])


def test_a_cut_deflated_input_says_truncated(tmp_path: Path) -> None:
    ds = small_image(seed=3, rows=64, columns=96)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    data = dicom_bytes(ds)
    assert _reason(tmp_path / "d.dcm", data[: len(data) - 40]) == (
        "truncated file: the deflated data set ends early"
    )


# --- files met while searching folders -----------------------------------------------------------


def test_non_dicom_files_found_in_folders_are_ignored_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exam = _exam(tmp_path / "exam", 1)
    (exam / "README").write_text("how this exam was made\n")
    (exam / "notes.txt").write_text("report: nothing to see\n" * 10)
    (exam / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(400))
    dicomdir = tmp_path / "dicomdir"
    fileset = FileSet()
    fileset.add(small_image(seed=3))
    fileset.write(dicomdir)
    out = tmp_path / "out.zip"
    assert export(exam, dicomdir, "--out", out) == 0
    printed, errors = capsys.readouterr()
    assert errors == "" and "Skipped" not in printed
    assert "Ignored 4 non-DICOM file(s) found in folders (not exported)." in printed
    assert exported_count(out) == 2  # IMG1 and the image beside the DICOMDIR
    # Named on its own, a non-DICOM file is a problem.
    assert export(exam / "IMG1.dcm", exam / "README", "--out", out) == 1
    assert skipped_lines(capsys.readouterr()[0]) == [f"  {exam}/README: not a DICOM file"]


# --- memory is flat in the number of files --------------------------------------------------------


def test_bench_measures_the_memory_of_many_files(tmp_path: Path) -> None:
    from ustui.core.bench_files import many_files_memory, write_small_files

    folder = write_small_files(tmp_path / "few", 3)
    assert len({pydicom.dcmread(p).SOPInstanceUID for p in folder.iterdir()}) == 3
    result = many_files_memory(tmp_path, files=20, workers=2)
    assert result["files"] == 20 and int(result["worker_peak_mb"]) > 20  # type: ignore[call-overload]
    # What grows with the number of files lives in the main process; the workers also
    # hold the text reader, a constant per process.
    assert 20 < int(result["main_peak_mb"]) < 300  # type: ignore[call-overload]
    with zipfile.ZipFile(tmp_path / "many.zip") as zf:
        assert len(json.loads(zf.read("manifest.json"))["files"]) == 20


# --- truncation anywhere says truncated (property) -----------------------------------------------


def _layout(data: bytes) -> tuple[set[int], int, int]:
    """Offsets where a top-level element of ``data`` starts, where (0028,0010) Rows
    starts (the end of the file when absent) and where the Pixel Data element ends."""
    header = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
    implicit, little = header.original_encoding
    start = 0
    if data[128:132] == b"DICM":
        start = 132
        while struct.unpack_from("<H", data, start)[0] == 0x0002:  # the file meta
            long = data[start + 4 : start + 6] in (b"OB", b"UN", b"UT", b"SQ", b"UC", b"UR")
            length = struct.unpack_from("<I" if long else "<H", data, start + (8 if long else 6))
            start += (12 if long else 8) + length[0]
    fp = io.BytesIO(data)
    fp.seek(start)
    starts, rows, at = {start}, len(data), start
    for element in data_element_generator(fp, bool(implicit), bool(little)):
        if element.tag == 0x7FE00010:
            return starts, rows, fp.tell()
        if element.tag == 0x00280010:
            rows = at
        at = fp.tell()  # the values are read: the next element starts here
        starts.add(at)
    raise AssertionError("no pixel data")


def _check_cut(data: bytes, end: int, folder: Path) -> None:
    """A copy of ``data`` cut at ``end`` is refused as truncated. The exceptions: a cut
    exactly between two elements before Rows leaves a complete-looking file that is an
    image header no more ("no pixel data"); a cut after all the pixel data (in elements
    that follow it, or the encapsulated data's closing delimiter) loses nothing."""
    reason = _reason(folder / "cut.dcm", data[:end])
    if reason is not None and "truncated" in reason:
        return
    starts, rows, pixels_end = _layout(data)
    if reason is None:
        # Cut after all pixel data (elements may follow it), or only the delimiter lost.
        assert end >= min(pixels_end, len(data) - 8), f"cut at {end} of {len(data)} read whole"
        return
    assert end in starts and end <= rows and reason == "no pixel data", (end, reason)


@functools.cache
def _readable(path: Path) -> bytes | None:
    """The file's bytes when it reads and decodes whole here (JPEG XL has no decoder)."""
    data = path.read_bytes()
    source = InputFile(key=str(path), label=path.name, size=len(data), path=path)
    try:
        with FrameReader(source, read_header(source)) as reader:
            reader.frame(reader.number_of_frames - 1)
    except UstuiError:
        return None
    return data


@pytest.mark.skipif(not real_files(), reason="real test files not present")
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(index=st.integers(0, max(len(real_files()) - 1, 0)), fraction=st.floats(0, 1))
def test_a_real_file_cut_anywhere_says_truncated(
    tmp_path: Path, index: int, fraction: float
) -> None:
    path = real_files()[index]
    data = _readable(path)
    if data is None:
        return
    # Past the preamble and 'DICM' (or the first element): before them a file is not
    # recognisably DICOM at all.
    end = min(132 + int(fraction * (len(data) - 132)), len(data) - 1)
    _check_cut(data, end, tmp_path)


@pytest.mark.parametrize("jpeg", [False, True], ids=["native", "jpeg"])
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_synthetic_file_cut_anywhere_says_truncated(
    tmp_path: Path, jpeg: bool, data: st.DataObject
) -> None:
    original = _synthetic(jpeg)
    end = data.draw(st.integers(132, len(original) - 1))
    _check_cut(original, end, tmp_path)


@functools.cache
def _synthetic(jpeg: bool) -> bytes:
    return insert_before_pixels(dicom_bytes(small_image(jpeg=jpeg, frames=2)), nested_sequences(2))
