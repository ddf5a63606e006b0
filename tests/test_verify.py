"""`ustui verify` trusted both ways: no false alarm on ustui's own exports, no false
all-clear on a ZIP holding an original, anywhere in it."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from pydicom import Dataset
from pydicom.uid import generate_uid
from test_export import write_exam

from ustui import __version__
from ustui.cli import main
from ustui.core.deid import identifying_values, shift_date
from ustui.core.paths import data_dir
from ustui.core.pseudonyms import Pseudonyms, load_key
from ustui.core.synthetic import Patient, Study, sector_frame, us_dataset


def _export(exam: Path, out: Path, *extra: str) -> None:
    assert main(["export", str(exam), "--out", str(out), "--workers", "1", *extra]) == 0


def _verify(out: Path, *against: Path | str, extra: tuple[str, ...] = ()) -> tuple[int, dict]:  # type: ignore[type-arg]
    buffer = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdout", buffer)
        code = main(["verify", str(out), "--against", *map(str, against), "--json", *extra])
    return code, json.loads(buffer.getvalue())


def _copy_with(out: Path, dest: Path, extra: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(dest, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        for name, data in extra.items():
            dst.writestr(name, data)
    return dest


@pytest.fixture
def sentinel_export(tmp_path: Path) -> tuple[Path, Path]:
    exam = tmp_path / "exam"
    write_exam(exam)
    out = tmp_path / "out.zip"
    _export(exam, out)  # the default profile: modified dates, patient characteristics
    return exam, out


def test_own_default_export_passes_with_kept_values_reported_as_kept(
    sentinel_export: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    exam, out = sentinel_export
    code, report = _verify(out, exam)
    assert code == 0 and report["passed"] and report["paired_with_originals"]
    assert report["leaks"] == []
    kinds = {f["kind"] for f in report["findings"]}
    assert kinds == {"KEPT"}
    sources = " ".join(f["source"] for f in report["findings"])
    assert "StudyTime" in sources and "PatientWeight" in sources  # declared options keep them
    assert main(["verify", str(out), "--against", str(exam)]) == 0
    printed = capsys.readouterr().out
    assert "no leaks" in printed and "kept by the profile's declared options" in printed
    assert "KEPT  " not in printed  # listed in the JSON report only


def test_a_zip_holding_an_original_fails_also_when_nested(
    sentinel_export: tuple[Path, Path], tmp_path: Path
) -> None:
    exam, out = sentinel_export
    original = (exam / "b1.dcm").read_bytes()
    leaky = _copy_with(out, tmp_path / "leaky.zip", {"extra/file.dcm": original})
    code, report = _verify(leaky, exam)
    assert code == 1 and report["leaks"]
    assert all(leak["where"].startswith("extra/file.dcm") for leak in report["leaks"])
    assert "QZBOB" not in json.dumps(report)  # places and attributes, never values

    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("deep/orig.dcm", original)
    nested = _copy_with(out, tmp_path / "nested.zip", {"bundle.zip": inner.getvalue()})
    code, report = _verify(nested, exam)
    assert code == 1
    assert report["leaks"] and all(
        leak["where"].startswith("bundle.zip!/deep/orig.dcm") for leak in report["leaks"]
    )


def test_a_zip_nested_too_deep_is_reported_not_searched(
    sentinel_export: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exam, out = sentinel_export
    data = b"harmless"
    for depth in range(5):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr(f"level{depth}.zip" if depth else "note.txt", data)
        data = buffer.getvalue()
    deep = _copy_with(out, tmp_path / "deep.zip", {"outer.zip": data})
    capsys.readouterr()
    assert main(["verify", str(deep), "--against", str(exam)]) == 1
    printed = capsys.readouterr().out
    assert "NOT SEARCHED" in printed and "nested too deeply" in printed


def test_against_a_missing_path_or_nothing_readable_is_a_usage_error(
    sentinel_export: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = sentinel_export
    missing = tmp_path / "nowhere"
    assert main(["verify", str(out), "--against", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0] and "does not exist" in err[0]
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not dicom")
    assert main(["verify", str(out), "--against", str(junk)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no readable DICOM file" in err[0]


def _one_file_exam(folder: Path, patient: Patient, **keywords: object) -> Dataset:
    folder.mkdir(parents=True, exist_ok=True)
    study = Study(patient=patient, date="20200310")
    ds = us_dataset([sector_frame(48, 64)], study=study, series_uid=generate_uid(),
                    series_number=1, instance_number=1)  # fmt: skip
    for keyword, value in keywords.items():
        setattr(ds, keyword, value)
    ds.save_as(folder / f"{patient.id}.dcm", enforce_file_format=True)
    return ds


def test_a_value_counts_only_against_its_own_patient(tmp_path: Path) -> None:
    exam = tmp_path / "exam"
    # Alice's ethnic group is kept by the profile; Bob's accession number happens to equal it.
    _one_file_exam(exam, Patient(name="QZ^ALICE", id="QZ-A"), EthnicGroup="QZSHARED")
    _one_file_exam(exam, Patient(name="QZ^BOB", id="QZ-B"), AccessionNumber="QZSHARED")
    out = tmp_path / "out.zip"
    _export(exam, out)
    code, report = _verify(out, exam)
    assert code == 0, report["findings"]
    # Without the key the files cannot be told apart: Bob's value is then found in Alice's.
    (data_dir() / "key").rename(tmp_path / "key")
    code, report = _verify(out, exam)
    assert code == 1 and not report["paired_with_originals"]
    assert any("AccessionNumber" in leak["source"] for leak in report["leaks"])
    # Naming the key pairs them again.
    code, _ = _verify(out, exam, extra=("--key-file", str(tmp_path / "key")))
    assert code == 0


def test_a_shifted_date_equal_to_another_original_date_is_no_leak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patient = Patient(name="QZ^DATES", id="QZ-D")
    exam = tmp_path / "exam"
    probe = _one_file_exam(tmp_path / "probe", patient)
    offset = Pseudonyms(load_key()).date_offset_days(
        Pseudonyms(load_key()).subject(probe, "S-"), (1, 3650)
    )
    # The series date is what the study date becomes once shifted.
    _one_file_exam(exam, patient, SeriesDate=shift_date("20200310", "DA", offset))
    out = tmp_path / "out.zip"
    _export(exam, out)
    code, report = _verify(out, exam)
    assert code == 0, report["findings"]
    # Without the key, such a date cannot be told from an original one: unconfirmed.
    (data_dir() / "key").rename(tmp_path / "key")
    capsys.readouterr()
    assert main(["verify", str(out), "--against", str(exam)]) == 1
    printed = capsys.readouterr().out
    assert "UNCONFIRMED" in printed and "--key-file" in printed
    assert "LEAK" not in printed


def test_common_words_booleans_and_ustuis_own_version_identify_nobody() -> None:
    ds = Dataset()
    ds.StudyDescription = "ABDOMEN"
    ds.PatientReligiousPreference = "FALSE"
    ds.AdmittingDiagnosesDescription = f"ustui {__version__}"
    ds.PatientComments = "QZREALCOMMENT"
    values = identifying_values(ds)
    assert values == {"QZREALCOMMENT"}


def test_json_report_lists_every_finding_with_its_kind(
    sentinel_export: tuple[Path, Path], tmp_path: Path
) -> None:
    exam, out = sentinel_export
    damaged = _copy_with(
        out, tmp_path / "d.zip", {"extra/file.dcm": (exam / "a1.dcm").read_bytes()}
    )
    code, report = _verify(damaged, exam)
    assert code == 1
    assert set(report) >= {"passed", "files_checked", "values_searched", "findings", "leaks"}
    assert report["passed"] is False and report["files_checked"] == 7
    assert {f["kind"] for f in report["findings"]} == {"KEPT", "LEAK"}
    assert all(set(f) == {"kind", "where", "source"} for f in report["findings"])
