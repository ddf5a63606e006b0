"""Reading headers robustly: every real file, every kind of bad input, one-line reasons."""

from __future__ import annotations

import hashlib
import io
import logging
import struct
import zipfile
from pathlib import Path

import pydicom
import pytest
from conftest import real_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)
from test_frames import build_file, input_file, sample_frames

from ustui.core.errors import Unsupported, UstuiError
from ustui.core.inputs import InputFile
from ustui.core.reading import read_header

SECRET = "SECRET^PATIENT"


def write(path: Path, content: bytes) -> InputFile:
    path.write_bytes(content)
    return input_file(path)


def explicit_file(tmp_path: Path, *, frames: int = 2) -> InputFile:
    """A small explicit VR little endian file with PHI in its header."""
    return build_file(tmp_path / "base.dcm", sample_frames(frames, 4, 6))


def saves_and_walks(ds: Dataset) -> None:
    ds.walk(lambda _ds, _elem: None)
    str(ds)
    ds.save_as(io.BytesIO())


# --- the real files ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.name)
def test_real_file_header_reads_walks_and_saves(real_dir: Path, path: Path) -> None:
    header = read_header(input_file(path))
    assert "PixelData" not in header
    assert header.file_meta.TransferSyntaxUID
    assert int(header.Rows) > 0
    header.walk(lambda _ds, _elem: None)
    str(header)
    if not path.name.startswith("jpegxl"):  # pydicom cannot write a syntax it does not know
        header.save_as(io.BytesIO())


@pytest.mark.parametrize("name", ["jpegls_mono.dcm", "jpeg_baseline_65frame.dcm"])
def test_real_files_with_stray_delimiters_are_repaired(real_dir: Path, name: str) -> None:
    header = read_header(input_file(real_dir / name))
    assert not [tag for tag in header.keys() if tag.group == 0xFFFE]  # noqa: SIM118
    saves_and_walks(header)


def test_file_without_preamble_or_meta_gets_its_transfer_syntax(real_dir: Path) -> None:
    header = read_header(input_file(real_dir / "esopecho_nopreamble_ivrle.dcm"))
    assert header.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian


# --- encodings and deduced transfer syntaxes ----------------------------------------------------


@pytest.mark.parametrize(
    ("syntax", "meta"),
    [
        (ExplicitVRLittleEndian, True),
        (ImplicitVRLittleEndian, True),
        (ExplicitVRBigEndian, True),
        (ImplicitVRLittleEndian, False),
        (ExplicitVRLittleEndian, False),
        (ExplicitVRBigEndian, False),
    ],
)
def test_transfer_syntax_is_set_or_deduced(tmp_path: Path, syntax: str, meta: bool) -> None:
    frames = sample_frames(2, 4, 6, bits=16)
    source = build_file(tmp_path / "a.dcm", frames, syntax=syntax, meta=meta)
    header = read_header(source)
    assert header.file_meta.TransferSyntaxUID == syntax
    assert header.PatientName == SECRET
    saves_and_walks(header)


def test_header_is_read_from_a_zip_member_and_inputs_are_never_written(tmp_path: Path) -> None:
    source = explicit_file(tmp_path)
    source.path.chmod(0o444)
    digest = hashlib.sha256(source.path.read_bytes()).hexdigest()
    archive = tmp_path / "exam.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(source.path, "a.dcm")
    member = InputFile(
        key="z", label="exam.zip/a.dcm", size=source.size, path=archive, member="a.dcm"
    )
    assert read_header(member).PatientName == SECRET
    assert read_header(source).PatientName == SECRET
    assert hashlib.sha256(source.path.read_bytes()).hexdigest() == digest


# --- bad input: a one-line reason, never a traceback -----------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"hello, this is a text file\n" * 20, "not a DICOM file"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 300, "not a DICOM file"),
        (b"PK\x03\x04" + b"\0" * 300, "not a DICOM file"),
        (b"\0" * 400, "not a DICOM file"),
        (b"\0" * 128 + b"DICM", "truncated file: the header ends early"),
    ],
)
def test_not_dicom(tmp_path: Path, content: bytes, reason: str) -> None:
    with pytest.raises(Unsupported, match=reason) as caught:
        read_header(write(tmp_path / "x.dcm", content))
    assert str(caught.value) == f"x.dcm: {reason}"


def test_missing_file_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "gone.dcm"
    with pytest.raises(UstuiError, match="cannot read"):
        read_header(InputFile(key=str(path), label="gone.dcm", size=10, path=path))


def dataset_bytes(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", "1.2.840.10008.5.1.4.1.1.6.1")
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def test_dicomdir_is_refused(tmp_path: Path) -> None:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.1.3.10"
    ds.FileSetID = "EXAM"
    ds.DirectoryRecordSequence = Sequence([Dataset()])
    with pytest.raises(Unsupported, match=r"DICOMDIR \(a directory index, not an image\)"):
        read_header(write(tmp_path / "DICOMDIR", dataset_bytes(ds)))


def test_no_pixel_data(tmp_path: Path) -> None:
    ds = Dataset()
    ds.PatientName = SECRET
    ds.Rows = 4
    with pytest.raises(Unsupported, match="no pixel data"):
        read_header(write(tmp_path / "sr.dcm", dataset_bytes(ds)))


def test_float_pixel_data(tmp_path: Path) -> None:
    ds = Dataset()
    ds.Rows, ds.Columns = 1, 1
    ds.FloatPixelData = struct.pack("<f", 1.0)
    with pytest.raises(Unsupported, match="float pixel data"):
        read_header(write(tmp_path / "f.dcm", dataset_bytes(ds)))


def test_unknown_transfer_syntax(tmp_path: Path) -> None:
    content = explicit_file(tmp_path).path.read_bytes()
    unknown = content.replace(b"1.2.840.10008.1.2.1\0", b"1.2.3.4.5.6.7.8.9.1\0", 1)
    with pytest.raises(Unsupported, match=r"unknown transfer syntax 1\.2\.3\.4\.5\.6\.7\.8\.9\.1"):
        read_header(write(tmp_path / "u.dcm", unknown))


def test_truncated_pixel_data_is_reported(tmp_path: Path) -> None:
    content = explicit_file(tmp_path).path.read_bytes()
    with pytest.raises(Unsupported, match="truncated file: the pixel data ends early"):
        read_header(write(tmp_path / "t.dcm", content[:-5]))


def test_truncation_anywhere_gives_a_reason(tmp_path: Path) -> None:
    content = explicit_file(tmp_path).path.read_bytes()
    for end in range(0, len(content), 3):
        try:
            read_header(write(tmp_path / "t.dcm", content[:end]))
        except Unsupported as exc:
            assert SECRET not in str(exc) and "\n" not in str(exc)


@pytest.fixture(scope="module")
def base_content(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One fixed file for every example (hypothesis needs the same length each time)."""
    return explicit_file(tmp_path_factory.mktemp("base")).path.read_bytes()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_corruption_only_ever_raises_ustui_errors_without_phi(
    tmp_path: Path, base_content: bytes, data: st.DataObject
) -> None:
    content = bytearray(base_content)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(128, len(content) - 1))
        content[position] = data.draw(st.integers(0, 255))
    try:
        header = read_header(write(tmp_path / "c.dcm", bytes(content)))
    except UstuiError as exc:
        assert SECRET not in str(exc) and "\n" not in str(exc)
    else:
        header.walk(lambda _ds, _elem: None)
        header.save_as(io.BytesIO())


def test_pydicom_logs_no_values_while_reading(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = build_file(
        tmp_path / "bad.dcm", sample_frames(1, 4, 4), header={"StudyInstanceUID": "SECRET.UID.X"}
    )
    with caplog.at_level(logging.DEBUG):
        read_header(source)
    assert "SECRET" not in caplog.text


# --- stray delimiters and deep nesting (built byte by byte) ------------------------------------


def element(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def undefined_sequence(group: int, elem: int, items: list[bytes]) -> bytes:
    out = struct.pack("<HH2sHI", group, elem, b"SQ", 0, 0xFFFFFFFF)
    for item in items:
        out += struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + item
        out += struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    return out + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def raw_file(body: bytes) -> bytes:
    """Preamble, file meta (explicit VR little endian) and ``body`` as the data set."""
    meta = element(0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1\0")
    group_length = element(0x0002, 0x0000, b"UL", struct.pack("<I", len(meta)))
    return b"\0" * 128 + b"DICM" + group_length + meta + body


def image_elements() -> tuple[bytes, bytes]:
    """(elements before the region, the image pixel module and 2x2 pixel data)."""
    before = element(0x0010, 0x0010, b"PN", SECRET.encode())
    pixels = b"".join(
        [
            element(0x0028, 0x0002, b"US", struct.pack("<H", 1)),
            element(0x0028, 0x0004, b"CS", b"MONOCHROME2 "),
            element(0x0028, 0x0010, b"US", struct.pack("<H", 2)),
            element(0x0028, 0x0011, b"US", struct.pack("<H", 2)),
            element(0x0028, 0x0100, b"US", struct.pack("<H", 8)),
            element(0x0028, 0x0101, b"US", struct.pack("<H", 8)),
            element(0x0028, 0x0102, b"US", struct.pack("<H", 7)),
            element(0x0028, 0x0103, b"US", struct.pack("<H", 0)),
            element(0x7FE0, 0x0010, b"OB", b"\1\2\3\4"),
        ]
    )
    return before, pixels


@pytest.mark.parametrize(
    "stray",
    [
        struct.pack("<HHI", 0xFFFE, 0xE00D, 0),  # item delimiter outside any item
        struct.pack("<HHI", 0xFFFE, 0xE0DD, 0),  # sequence delimiter outside any sequence
        # an orphaned item holding a region (as in jpegls_mono.dcm)
        struct.pack("<HHI", 0xFFFE, 0xE000, 10) + element(0x0018, 0x6012, b"US", b"\1\0"),
    ],
    ids=["item-delimiter", "sequence-delimiter", "orphan-item"],
)
def test_stray_delimiters_are_dropped_and_the_header_saves(tmp_path: Path, stray: bytes) -> None:
    before, pixels = image_elements()
    source = write(
        tmp_path / "stray.dcm",
        raw_file(before + element(0x0018, 0x1020, b"LO", b"V1") + stray + pixels),
    )
    header = read_header(source)
    assert header.PatientName == SECRET and header.Rows == 2
    assert not [tag for tag in header.keys() if tag.group == 0xFFFE]  # noqa: SIM118
    saves_and_walks(header)


def nested(depth: int) -> bytes:
    inner = element(0x0008, 0x0100, b"SH", b"CODE")
    for _ in range(depth):
        inner = undefined_sequence(0x0040, 0xA730, [inner])
    return inner


def test_nested_sequences_read(tmp_path: Path) -> None:
    before, pixels = image_elements()
    header = read_header(write(tmp_path / "n.dcm", raw_file(before + nested(40) + pixels)))
    saves_and_walks(header)


def test_absurdly_deep_nesting_is_refused_not_crashed(tmp_path: Path) -> None:
    before, pixels = image_elements()
    try:
        header = read_header(write(tmp_path / "deep.dcm", raw_file(before + nested(3000) + pixels)))
    except Unsupported as exc:
        assert "corrupt header" in exc.reason
    else:
        header.walk(lambda _ds, _elem: None)


def test_absurd_element_length_is_refused(tmp_path: Path) -> None:
    before, pixels = image_elements()
    absurd = struct.pack("<HH2sHI", 0x0018, 0x1030, b"UT", 0, 0x7FFFFFF0) + b"short"
    with pytest.raises(Unsupported):
        read_header(write(tmp_path / "long.dcm", raw_file(before + absurd + pixels)))
