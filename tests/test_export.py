"""End to end through `ustui export` and `ustui verify`: a synthetic exam full of PHI."""

from __future__ import annotations

import io
import json
import re
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from phi import full_item
from pydicom import Dataset, dcmread
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from ustui.cli import main
from ustui.core.boxes import Box
from ustui.core.paths import state_dir
from ustui.core.profiles import user_file
from ustui.core.session import Session
from ustui.core.synthetic import Patient, Study, burn_text, sector_frame, us_dataset

ROWS, COLUMNS = 120, 160
BASIC_ONLY = """
[basic-only]
description = "Basic Profile, no options"
[basic-only.deid]
options = []
"""
#: Attributes the test sets itself to build the exam's structure.
STRUCTURE = {
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
    "FrameOfReferenceUID", "PatientName", "PatientID", "ReferencedImageSequence",
    "SequenceOfUltrasoundRegions", "InstanceNumber", "SeriesNumber", "NumberOfFrames",
    "FrameTime", "FrameIncrementPointer",
}  # fmt: skip


def _with_sentinels(ds: Dataset, start: int) -> Dataset:
    """``ds`` plus a sentinel in every table attribute it does not use for structure."""
    for element in full_item(start):
        if element.keyword not in STRUCTURE and element.tag not in ds and element.tag.group:
            ds.add(element)
    ds.file_meta.SourceApplicationEntityTitle = f"QZMETAAE{start}"
    return ds


def _frames(count: int, seed: int) -> list[np.ndarray]:
    return [
        burn_text(sector_frame(ROWS, COLUMNS, seed=seed, t=t), "QZBURNED") for t in range(count)
    ]


def write_exam(folder: Path) -> dict[str, Dataset]:
    """Two patients, three series; the cine refers to the first image."""
    folder.mkdir(parents=True, exist_ok=True)
    alice = Study(patient=Patient(name="QZALICE^SMITH", id="QZPID-A", birth_date="19610203"))
    bob = Study(patient=Patient(name="QZBOB^JONES", id="QZPID-B", birth_date="19720304"))
    series = [generate_uid() for _ in range(3)]
    first = us_dataset(_frames(1, 1), study=alice, series_uid=series[0], series_number=1,
                       instance_number=1)  # fmt: skip
    second = us_dataset(_frames(1, 2), study=alice, series_uid=series[0], series_number=1,
                        instance_number=2, photometric="RGB")  # fmt: skip
    cine = us_dataset(_frames(6, 3), study=alice, series_uid=series[1], series_number=2,
                      instance_number=1, photometric="RGB", jpeg_quality=92)  # fmt: skip
    reference = Dataset()
    reference.ReferencedSOPClassUID = first.SOPClassUID
    reference.ReferencedSOPInstanceUID = first.SOPInstanceUID
    cine.ReferencedImageSequence = Sequence([reference])
    other = us_dataset(_frames(1, 4), study=bob, series_uid=series[2], series_number=1,
                       instance_number=1)  # fmt: skip
    files = {"a1.dcm": first, "a2.dcm": second, "a3-cine.dcm": cine, "b1.dcm": other}
    for n, (name, ds) in enumerate(files.items()):
        _with_sentinels(ds, 1000 * n)
        ds.save_as(folder / name, enforce_file_format=True)
    return files


def _originals_text(files: dict[str, Dataset]) -> set[str]:
    """Every sentinel, original UID and original date in the exam."""
    values: set[str] = set()

    def collect(ds: Dataset) -> None:
        for element in ds:
            if element.VR == "SQ":
                for item in element.value:
                    collect(item)
            elif element.VR in ("UI", "DA", "DT") and element.value:
                for v in element.value if element.VM > 1 else [element.value]:
                    if not str(v).startswith("1.2.840.10008."):
                        values.add(str(v))
            elif element.keyword != "PixelData" and "QZ" in str(element.value):
                values.update(re.findall(r"QZ[A-Za-z0-9-]+", str(element.value)))

    for ds in files.values():
        collect(ds)
        collect(ds.file_meta)
    return values


def _zip_texts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _export(folder: Path, out: Path, *extra: str) -> int:
    return main(["export", str(folder), "--out", str(out), "--workers", "1", *extra])


@pytest.fixture
def basic_only() -> str:
    user_file().parent.mkdir(parents=True, exist_ok=True)
    user_file().write_text(BASIC_ONLY)
    return "basic-only"


def test_no_sentinel_uid_or_date_survives_and_structure_is_kept(
    tmp_path: Path, basic_only: str
) -> None:
    files = write_exam(tmp_path / "exam")
    out = tmp_path / "out.zip"
    assert _export(tmp_path / "exam", out, "--profile", basic_only) == 0
    members = _zip_texts(out)
    dicoms = {n: dcmread(io.BytesIO(b)) for n, b in members.items() if n.endswith(".dcm")}
    assert len(dicoms) == 4 and {"manifest.csv", "manifest.json"} <= set(members)

    needles = _originals_text(files)
    assert len(needles) > 1000
    digits = re.compile(r"^[0-9.]+$")
    for name, data in members.items():
        text = (name + "\n" + data.decode("latin-1")).lower()
        for needle in needles:
            if digits.match(needle):
                found = re.search(rf"(?<![0-9.]){re.escape(needle)}(?![0-9])", text)
            else:
                found = needle.lower() in text
            assert not found, f"{needle!r} leaked into {name}"

    manifest = json.loads(members["manifest.json"])["files"]
    cine = next(ds for ds in dicoms.values() if int(ds.get("NumberOfFrames", 1)) > 1)
    grey = [ds for ds in dicoms.values() if ds.SamplesPerPixel == 1]
    a1 = next(ds for ds in grey if ds.PatientID == cine.PatientID)
    b1 = next(ds for ds in grey if ds.PatientID != cine.PatientID)
    a2 = next(ds for ds in dicoms.values() if ds.SamplesPerPixel == 3 and ds is not cine)
    # Study and series grouping kept with new UIDs; the reference follows the new UID.
    assert a1.StudyInstanceUID == a2.StudyInstanceUID == cine.StudyInstanceUID
    assert a1.SeriesInstanceUID == a2.SeriesInstanceUID != cine.SeriesInstanceUID
    assert b1.StudyInstanceUID != a1.StudyInstanceUID
    assert cine.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a1.SOPInstanceUID
    assert a1.PatientID == a2.PatientID == cine.PatientID
    for ds in dicoms.values():
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPInstanceUID.startswith("2.25.")
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.StudyInstanceUID.startswith("2.25.")
    assert len(manifest) == 4
    assert {r["crop_source"] for r in manifest} == {"regions"}

    # The same key gives the same UIDs on a second run.
    again = tmp_path / "again.zip"
    assert _export(tmp_path / "exam", again, "--profile", basic_only) == 0
    second = json.loads(_zip_texts(again)["manifest.json"])["files"]
    assert [(r["path"], r["sop_instance_uid"], r["study_uid"]) for r in manifest] == [
        (r["path"], r["sop_instance_uid"], r["study_uid"]) for r in second
    ]


def test_dates_shift_per_subject_with_the_generic_profile(tmp_path: Path) -> None:
    files = write_exam(tmp_path / "exam")
    out = tmp_path / "out.zip"
    assert _export(tmp_path / "exam", out) == 0
    dicoms = [dcmread(io.BytesIO(b)) for n, b in _zip_texts(out).items() if n.endswith(".dcm")]
    original_dates = {str(ds.StudyDate) for ds in files.values()}
    for ds in dicoms:
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
        assert ds.StudyDate and ds.StudyDate not in original_dates
    by_subject: dict[str, set[str]] = {}
    for ds in dicoms:
        by_subject.setdefault(str(ds.PatientID), set()).add(str(ds.StudyDate))
    assert len(by_subject) == 2
    assert all(len(dates) == 1 for dates in by_subject.values())


def test_verify_passes_on_the_export_and_fails_on_an_original(
    tmp_path: Path, basic_only: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_exam(tmp_path / "exam")
    out = tmp_path / "out.zip"
    assert _export(tmp_path / "exam", out, "--profile", basic_only) == 0
    capsys.readouterr()
    assert main(["verify", str(out), "--against", str(tmp_path / "exam")]) == 0
    assert "no leaks" in capsys.readouterr().out

    leaky = tmp_path / "leaky.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(leaky, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        dst.write(tmp_path / "exam" / "b1.dcm", "extra/file.dcm")
    assert main(["verify", str(leaky), "--against", str(tmp_path / "exam"), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["leaks"]
    assert all(leak["where"].startswith("extra/file.dcm") for leak in report["leaks"])
    # The report names places and attributes, never the leaked values themselves.
    assert "QZBOB" not in json.dumps(report)


def test_session_decisions_drive_the_export(tmp_path: Path) -> None:
    write_exam(tmp_path / "exam")
    session = Session.load([tmp_path / "exam"])
    from ustui.core.inputs import discover

    found = {Path(f.label).name: f for f in discover([tmp_path / "exam"]).files}
    session.decision(found["a1.dcm"].key).crop = Box(10, 20, 110, 100)
    session.decision(found["a1.dcm"].key).masks = [Box(10, 20, 30, 30)]
    session.decision(found["a1.dcm"].key).tags = {"quality": "good"}
    session.decision(found["b1.dcm"].key).excluded = True
    session.save()
    out = tmp_path / "out.zip"
    assert _export(tmp_path / "exam", out, "--json") == 1  # one file skipped
    manifest = json.loads(_zip_texts(out)["manifest.json"])["files"]
    assert len(manifest) == 3
    mine = next(r for r in manifest if r["crop_source"] == "session")
    assert mine["crop"] == [10, 20, 110, 100] and mine["masks"] == [[10, 20, 30, 30]]
    assert mine["tags"] == {"quality": "good"} and mine["path"].endswith("_good.dcm")
    ds = dcmread(io.BytesIO(_zip_texts(out)[mine["path"]]))
    assert (ds.Rows, ds.Columns) == (80, 100)
    assert not ds.pixel_array[0:10, 0:20].any()
    assert ds.BurnedInAnnotation == "NO"


def test_required_tags_are_enforced_unless_waived(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_exam(tmp_path / "exam")
    out = tmp_path / "out.zip"
    assert _export(tmp_path / "exam", out, "--profile", "dvt") == 3
    assert "missing required tags: site, side, purpose" in capsys.readouterr().out
    assert not out.exists()
    assert _export(tmp_path / "exam", out, "--profile", "dvt", "--no-require-tags") == 0
    assert out.exists()


def test_crosswalk_and_audit_log_are_private_and_outside_the_zip(tmp_path: Path) -> None:
    write_exam(tmp_path / "exam")
    walk = tmp_path / "private" / "walk.csv"
    walk.parent.mkdir()
    user_file().parent.mkdir(parents=True, exist_ok=True)
    user_file().write_text(f'[cw]\n[cw.export]\ncrosswalk = "{walk}"\n')
    out = tmp_path / "out.zip"
    assert _export(tmp_path / "exam", out, "--profile", "cw") == 0
    assert stat.S_IMODE(walk.stat().st_mode) == 0o600
    text = walk.read_text()
    assert "QZPID-A" in text and "QZPID-B" in text
    assert not any("crosswalk" in n for n in _zip_texts(out))
    audit = (state_dir() / "audit.jsonl").read_text().splitlines()
    entry = json.loads(audit[-1])
    assert entry["exported"] == 4 and entry["profile"] == "cw" and entry["crosswalk_written"]
    assert "QZ" not in audit[-1] and "exam" not in audit[-1]


def test_unreadable_inputs_are_skipped_with_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_exam(tmp_path / "exam")
    (tmp_path / "exam" / "notes.txt").write_text("not dicom")
    (tmp_path / "exam" / "empty.dcm").write_bytes(b"")
    out = tmp_path / "out.zip"
    assert _export(tmp_path / "exam", out) == 1
    printed = capsys.readouterr().out
    skipped = [line for line in printed.split("Skipped", 1)[1].splitlines() if ": " in line]
    # notes.txt is not DICOM: found in a folder, it is only counted.
    assert len(skipped) == 1
    assert any("empty.dcm" in line for line in skipped)
    assert "Ignored 1 non-DICOM file(s) found in folders (not exported)." in printed
    assert "Traceback" not in printed


def test_nothing_exportable_exits_3_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "junk.dcm").write_bytes(b"nope")
    out = tmp_path / "out.zip"
    assert _export(tmp_path / "junk.dcm", out) == 3
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["junk.dcm"]


def test_parallel_workers_write_the_same_zip_as_one(tmp_path: Path) -> None:
    write_exam(tmp_path / "exam")
    one, two = tmp_path / "one.zip", tmp_path / "two.zip"
    assert _export(tmp_path / "exam", one) == 0
    assert main(["export", str(tmp_path / "exam"), "--out", str(two), "--workers", "2"]) == 0
    assert _zip_texts(one) == _zip_texts(two)
    assert one.read_bytes() == two.read_bytes()


def test_verify_reports_a_damaged_member_as_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_exam(tmp_path / "exam")
    out = tmp_path / "out.zip"
    assert _export(tmp_path / "exam", out) == 0
    data = bytearray(out.read_bytes())
    with zipfile.ZipFile(out) as zf:
        info = zf.infolist()[0]
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[middle] ^= 0xFF  # a stored member's CRC no longer matches
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify", str(damaged), "--against", str(tmp_path / "exam")]) == 1
    printed = capsys.readouterr()
    assert f"UNREADABLE  {info.filename}" in printed.out
    assert "Traceback" not in printed.out + printed.err
