"""Fuzzing ingest and export: mutated DICOM files and ZIP archives (bit flips, truncation,
inserted and deleted bytes, corrupted length fields and VRs) never make the core raise
anything but UstuiError, never make ``ustui export`` print a traceback or exit with a
code other than 0, 1 or 3, never leave partial output, and never hang."""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import io
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

from hostile import dicom_bytes, length_fields, small_image, time_limit
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ustui.cli import main
from ustui.core.errors import UstuiError
from ustui.core.frames import FrameReader
from ustui.core.inputs import discover
from ustui.core.reading import read_header

#: Seconds one case may take before it counts as a hang.
CASE_LIMIT = 20
#: Cases per test; four tests make a few thousand in all.
EXAMPLES = 800
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the same folders serve every case
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@functools.cache
def seed(kind: str) -> bytes:
    """The valid inputs that are mutated: small 2-frame images, native and JPEG, and a ZIP
    holding both (one stored, one deflated)."""
    if kind == "native":
        ds = small_image(frames=2)
    elif kind == "jpeg":
        ds = small_image(frames=2, jpeg=True)
    else:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("exam/IMG1.dcm", seed("native"), zipfile.ZIP_STORED)
            zf.writestr("exam/IMG2.dcm", seed("jpeg"), zipfile.ZIP_DEFLATED)
        return archive.getvalue()
    ds.PatientName = "QZFUZZ^PATIENT"
    return dicom_bytes(ds)


@functools.cache
def fields(kind: str) -> list[tuple[int, int]]:
    """Length fields of a DICOM seed; of a ZIP seed, its header size and length fields."""
    if kind != "zip":
        return length_fields(seed(kind))
    data = seed(kind)
    found = []
    for signature, offsets in (
        (b"PK\x03\x04", (18, 22, 26, 28)),
        (b"PK\x01\x02", (20, 24, 28, 30, 42)),
    ):
        at = data.find(signature)
        while at >= 0:
            found += [(at + o, 2 if o in (26, 28, 30) else 4) for o in offsets]
            at = data.find(signature, at + 4)
    end = data.rfind(b"PK\x05\x06")
    return [*found, (end + 8, 2), (end + 10, 2), (end + 12, 4), (end + 16, 4)]


_ABSURD = [0, 1, 2, 3, 7, 0xFF, 0xFFFF, 0xFFFE, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFFE]


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> bytes:
    """``seed(kind)`` after one to three mutations."""
    data = bytearray(seed(kind))
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        how = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "length", "vr"]))
        at = draw(st.integers(0, len(data) - 1))
        if how == "flip":
            for _ in range(draw(st.integers(1, 8))):
                data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        elif how == "truncate":
            del data[at:]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif how == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif how == "length":
            offset, width = draw(st.sampled_from(fields(kind)))
            limit = 0xFFFF if width == 2 else 0xFFFFFFFF
            value = draw(st.sampled_from(_ABSURD) | st.integers(0, limit)) & limit
            if offset + width <= len(data):
                data[offset : offset + width] = struct.pack("<H" if width == 2 else "<I", value)
        else:  # a VR (explicit VR files) or any two bytes of the headers replaced
            offset, width = draw(st.sampled_from(fields(kind)))
            where = max(offset - 2, 0) if width == 2 else max(offset - 4, 0)
            data[where : where + 2] = draw(
                st.sampled_from([b"UN", b"SQ", b"OB", b"UT", b"PN", b"US", b"ZZ", b"\0\0"])
                | st.binary(min_size=2, max_size=2)
            )
    return bytes(data)


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """A case that runs past CASE_LIMIT fails as a hang; one stuck in C code (where
    SIGALRM cannot interrupt it) ends the process with a traceback instead of hanging CI."""
    faulthandler.dump_traceback_later(CASE_LIMIT * 3, exit=True)
    try:
        with time_limit(CASE_LIMIT):
            yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def ingest(path: Path) -> None:
    """Discover, read every header and decode every file's first frame; only one-line
    UstuiErrors may come out."""
    found = discover([path])
    assert all(isinstance(p, UstuiError) and "\n" not in str(p) for p in found.problems)
    for source in found.files:
        try:
            header = read_header(source)
            with FrameReader(source, header) as reader:
                reader.frame(0)
        except UstuiError as exc:
            assert "\n" not in str(exc) and "QZFUZZ" not in str(exc)


def export(path: Path, out: Path) -> None:
    """``ustui export`` on one mutated input: 0, 1 or 3, one-line messages, no partial output."""
    printed, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
        code = main(["export", str(path), "--out", str(out), "--workers", "1"])
    text = printed.getvalue() + errors.getvalue()
    event(f"ustui export exits with {code}")
    assert code in (0, 1, 3), text
    assert "Traceback" not in text and "QZFUZZ" not in text, text
    assert out.exists() == (code != 3), text
    assert [p.name for p in out.parent.iterdir()] == ([out.name] if out.exists() else [])
    out.unlink(missing_ok=True)


def run_case(tmp_path: Path, name: str, data: bytes) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir(exist_ok=True)
    outputs.mkdir(exist_ok=True)
    path = inputs / name
    path.write_bytes(data)
    with guarded():
        ingest(path)
        export(path, outputs / "OUT.zip")


@FUZZ
@given(data=mutated("native"))
def test_mutated_native_dicom(tmp_path: Path, data: bytes) -> None:
    run_case(tmp_path, "IMG.dcm", data)


@FUZZ
@given(data=mutated("jpeg"))
def test_mutated_jpeg_dicom(tmp_path: Path, data: bytes) -> None:
    run_case(tmp_path, "IMG.dcm", data)


@FUZZ
@given(data=mutated("native") | mutated("jpeg"))
def test_mutated_dicom_without_a_name_that_says_dicom(tmp_path: Path, data: bytes) -> None:
    run_case(tmp_path, "scan", data)


@FUZZ
@given(data=mutated("zip"))
def test_mutated_zip(tmp_path: Path, data: bytes) -> None:
    run_case(tmp_path, "exam.zip", data)


def test_the_seeds_are_exported_whole(tmp_path: Path) -> None:
    """The unmutated seeds export, so the fuzz cases start from working inputs."""
    out = tmp_path / "o.zip"
    for kind, name in (("native", "IMG.dcm"), ("jpeg", "IMG.dcm"), ("zip", "exam.zip")):
        path = tmp_path / name
        path.write_bytes(seed(kind))
        ingest(path)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = main(["export", str(path), "--out", str(out), "--workers", "1"])
        assert code == 0, printed.getvalue()
        with zipfile.ZipFile(out) as zf:
            dicoms = [n for n in zf.namelist() if n.endswith(".dcm")]
        assert len(dicoms) == (2 if kind == "zip" else 1)
