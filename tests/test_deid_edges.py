"""De-identification edge cases: one subject per patient, C on free text, enumerated
values, Type 1 dummies, dciodvfy on pydicom's own files, and the sentinel exam with
the default profile."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path

from dciodvfy import dciodvfy_errors, needs_dciodvfy
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (
    EnhancedUSVolumeStorage,
    ExplicitVRLittleEndian,
    UltrasoundImageStorage,
    generate_uid,
)
from test_export import _originals_text, write_exam

from ustui.cli import main
from ustui.core.deid import deidentify, shift_date
from ustui.core.iod_rules import BURNED_IN_NO_ONLY, TYPE_1
from ustui.core.profiles import DeidSettings, check_file
from ustui.core.pseudonyms import Pseudonyms, load_key
from ustui.core.safe_values import in_vocabulary
from ustui.core.subjects import assign_subjects
from ustui.core.synthetic import Patient, Study, sector_frame, us_dataset

KEY = bytes(range(32))
SUBJECT = "S-TESTSUBJ"
CHARACTERISTICS = ("retain-patient-characteristics",)


def _header(**keywords: object) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = keywords.pop("SOPClassUID", UltrasoundImageStorage)
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = keywords.pop("StudyInstanceUID", generate_uid())
    ds.PatientName = "DOE^JOHNATHAN"
    ds.PatientID = "PID12345"
    for keyword, value in keywords.items():
        setattr(ds, keyword, value)
    return ds


def _run(ds: Dataset, *options: str, free_text: str = "vocabulary") -> Dataset:
    deidentify(
        ds,
        settings=DeidSettings(options=options, free_text=free_text),
        pseudonyms=Pseudonyms(KEY),
        subject=SUBJECT,
        pixels_cleaned=False,
    )
    return ds


# --- one subject per patient ----------------------------------------------------------


def _subjects(*headers: Dataset) -> list[str | None]:
    return assign_subjects(list(headers), Pseudonyms(KEY), "S-")


def test_an_issuer_in_some_files_only_does_not_split_the_patient() -> None:
    study = generate_uid()
    with_issuer = _header(StudyInstanceUID=study, IssuerOfPatientID="HOSP")
    without = _header(StudyInstanceUID=study)
    later = _header(IssuerOfPatientID="HOSP")  # another study of the same patient
    subjects = _subjects(with_issuer, without, later)
    assert subjects[0] == subjects[1] == subjects[2]
    # The same as the per-file rule gives, so subsets of an exam keep their subject.
    assert subjects[0] == Pseudonyms(KEY).subject(without, "S-")


def test_two_patients_stay_two_subjects_and_competing_issuers_tell_them_apart() -> None:
    alice, bob = _header(PatientID="A1"), _header(PatientID="B2")
    assert len(set(_subjects(alice, bob))) == 2
    hosp_a = _header(PatientID="777", IssuerOfPatientID="HOSP-A")
    hosp_b = _header(PatientID="777", IssuerOfPatientID="HOSP-B")
    same_a = _header(PatientID="777", IssuerOfPatientID="HOSP-A")
    subjects = _subjects(hosp_a, hosp_b, same_a)
    assert subjects[0] == subjects[2] != subjects[1]


def test_every_file_of_one_study_gets_one_subject_whatever_its_identity() -> None:
    study = generate_uid()
    named = _header(StudyInstanceUID=study)
    no_id = _header(StudyInstanceUID=study)
    del no_id.PatientID
    no_id.PatientName = "SOMEONE^ELSE"
    assert _subjects(named, no_id, None) == [*[_subjects(named)[0]] * 2, None]


def test_export_gives_one_study_one_subject_and_one_date_shift(tmp_path: Path) -> None:
    exam = tmp_path / "exam"
    exam.mkdir()
    study = Study(patient=Patient(name="QZ^ISSUER", id="QZPID-I"), date="20200310")
    for n in range(3):
        ds = us_dataset([sector_frame(64, 80, seed=n)], study=study, series_uid=generate_uid(),
                        series_number=n + 1, instance_number=1)  # fmt: skip
        if n == 1:
            ds.IssuerOfPatientID = "QZ-HOSPITAL"  # in one file only
        ds.save_as(exam / f"f{n}.dcm", enforce_file_format=True)
    out = tmp_path / "out.zip"
    assert main(["export", str(exam), "--out", str(out), "--workers", "2"]) == 0
    with zipfile.ZipFile(out) as zf:
        dicoms = [dcmread(io.BytesIO(zf.read(n))) for n in zf.namelist() if n.endswith(".dcm")]
    assert len(dicoms) == 3
    assert len({str(ds.PatientID) for ds in dicoms}) == 1
    assert len({str(ds.StudyDate) for ds in dicoms}) == 1
    assert dicoms[0].StudyDate != "20200310"


# --- C on free text ---------------------------------------------------------------------


def test_free_text_under_clean_stays_only_when_made_of_the_vocabulary() -> None:
    third_person = {
        "Allergies": "PEANUTS, SEE DR SMITH",
        "SpecialNeeds": "ASK MARY SMITH",
        "PatientState": "ACCOMPANIED BY SMITH",
        "PreMedication": "GIVEN BY SMITH",
    }
    ds = _run(_header(**third_person), *CHARACTERISTICS)
    for keyword in third_person:
        assert keyword not in ds, keyword
    safe = {"Allergies": "NKDA", "SpecialNeeds": "WHEELCHAIR", "PatientState": "STABLE, FASTING",
            "PreMedication": "NONE"}  # fmt: skip
    ds = _run(_header(**safe), *CHARACTERISTICS)
    for keyword, value in safe.items():
        assert ds[keyword].value == value


def test_a_profile_may_opt_in_to_keeping_text_free_of_the_files_identifiers() -> None:
    ds = _header(Allergies="MILD ASTHMA", SpecialNeeds="CALL JOHNATHAN FIRST")
    _run(ds, *CHARACTERISTICS, free_text="keep-unidentified")
    assert ds.Allergies == "MILD ASTHMA"  # not in the vocabulary, but names nobody in the file
    assert "SpecialNeeds" not in ds  # holds the patient's name
    assert "Allergies" not in _run(_header(Allergies="MILD ASTHMA"), *CHARACTERISTICS)


def test_structured_attributes_under_clean_stay_only_in_their_form() -> None:
    dates = ("retain-modified-dates",)
    assert _run(_header(TimezoneOffsetFromUTC="+0100"), *dates).TimezoneOffsetFromUTC == "+0100"
    for bad in ("QZ00080201", "CET", "+2500", "0100"):
        assert "TimezoneOffsetFromUTC" not in _run(_header(TimezoneOffsetFromUTC=bad), *dates)


def test_vocabulary_rejects_names_ids_and_dates() -> None:
    assert in_vocabulary("NKDA") and in_vocabulary("left lower limb, 2 weeks") and in_vocabulary("")
    for text in ("SMITH", "DR SMITH", "12345", "seen 12/03/2020", "from 20200312", "MAY", "WHITE"):
        assert not in_vocabulary(text), text


def test_profiles_check_names_a_bad_free_text_policy(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[p]\n[p.deid]\nfree_text = "anything"\n')
    assert any("free_text must be one of" in p for p in check_file(path))


# --- enumerated values, Type 1 dummies ---------------------------------------------------


def test_enumerated_values_kept_by_an_option_must_be_allowed_ones() -> None:
    ds = _run(_header(SmokingStatus="QZ00102180", PatientSexNeutered="ALTERED"), *CHARACTERISTICS)
    assert "SmokingStatus" not in ds and ds.PatientSexNeutered == "ALTERED"
    ds = _run(_header(SmokingStatus="NO", PatientSex="QZSEX"), *CHARACTERISTICS)
    assert ds.SmokingStatus == "NO"
    assert ds.PatientSex == ""  # Type 2: emptied, not removed


def test_type_1_attributes_of_enhanced_iods_get_a_dummy() -> None:
    enhanced = _header(SOPClassUID=EnhancedUSVolumeStorage, DeviceSerialNumber="QZSERIAL",
                       ContentDate="20200310", ContentTime="101010")  # fmt: skip
    _run(enhanced)
    assert enhanced.DeviceSerialNumber and "QZ" not in enhanced.DeviceSerialNumber
    assert enhanced.ContentDate == "19000101" and enhanced.ContentTime == "000000"
    assert enhanced.BurnedInAnnotation == "NO"  # the only value this IOD allows
    plain = _run(_header(DeviceSerialNumber="QZSERIAL", ContentDate="20200310"))
    assert "DeviceSerialNumber" not in plain and plain.ContentDate == ""
    assert plain.BurnedInAnnotation == "YES"


@needs_dciodvfy
def test_iod_rules_match_what_dciodvfy_requires(tmp_path: Path) -> None:
    """Re-derive the Type 1 and Burned In Annotation tables from dciodvfy itself."""
    classes = {c for found in TYPE_1.values() for c in found} | BURNED_IN_NO_ONLY
    classes |= {UltrasoundImageStorage, "1.2.840.10008.5.1.4.1.1.7"}
    for sop_class in sorted(classes):
        ds = _header(SOPClassUID=sop_class, BurnedInAnnotation="YES")
        del ds.PatientName, ds.PatientID
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = tmp_path / "t.dcm"
        ds.save_as(path, enforce_file_format=True)
        errors = "\n".join(dciodvfy_errors(path))
        for keyword, where in TYPE_1.items():
            missing = f"Missing attribute Type N Required Element=<{keyword}>" in errors
            assert missing == (sop_class in where), (keyword, sop_class)
        refused = "enumerated value <YES> for value N of attribute <Burned In Annotation>"
        assert (refused in errors) == (sop_class in BURNED_IN_NO_ONLY), sop_class


#: pydicom's own test files that ustui exports, one per SOP class and encoding family.
PYDICOM_FILES = (
    "CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "ExplVR_BigEnd.dcm", "JPEG2000.dcm",
    "SC_rgb_rle.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_ybr_full_422_uncompressed.dcm",
    "examples_palette.dcm", "examples_ybr_color.dcm", "examples_overlay.dcm", "rtdose.dcm",
    "GDCMJ2K_TextGBR.dcm",
)  # fmt: skip


@needs_dciodvfy
def test_exports_of_pydicoms_test_files_have_no_new_dciodvfy_error(tmp_path: Path) -> None:
    import pydicom

    folder = Path(pydicom.__file__).parent / "data" / "test_files"
    for name in PYDICOM_FILES:
        source = folder / name
        out = tmp_path / f"{name}.zip"
        args = ["export", str(source), "--out", str(out), "--no-require-tags", "--json"]
        assert main(args) == 0, name
        with zipfile.ZipFile(out) as zf:
            member = next(n for n in zf.namelist() if n.endswith(".dcm"))
            (tmp_path / "out.dcm").write_bytes(zf.read(member))
        new = dciodvfy_errors(tmp_path / "out.dcm") - dciodvfy_errors(source)
        assert not new, f"{name}: {sorted(new)}"


# --- the sentinel exam with the default profile -----------------------------------------

#: Kept on purpose by the default profile's Retain Patient Characteristics option (K).
KEPT_BY_DEFAULT = {"QZ00102160"}  # Ethnic Group


def _day(value: object) -> dt.date:
    return dt.datetime.strptime(str(value), "%Y%m%d").date()


def _values(ds: Dataset, vrs: set[str]) -> list[str]:
    found = []
    for elem in ds.iterall():
        if elem.VR in vrs and elem.value not in (None, ""):
            found += [str(v) for v in (elem.value if elem.VM > 1 else [elem.value])]
    return found


def test_sentinel_exam_leaks_nothing_with_the_default_profile(tmp_path: Path) -> None:
    files = write_exam(tmp_path / "exam")
    out = tmp_path / "out.zip"
    assert main(["export", str(tmp_path / "exam"), "--out", str(out), "--workers", "1"]) == 0
    with zipfile.ZipFile(out) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    everything = b"\n".join(n.encode() + b"\n" + data for n, data in members.items()).decode(
        "latin-1"
    )
    sentinels = {v for v in _originals_text(files) if v.startswith("QZ")}
    assert len(sentinels) > 350
    tokens = {t for t in sentinels if t.lower() in everything.lower()}
    assert tokens <= KEPT_BY_DEFAULT, sorted(tokens)
    originals = {uid for ds in files.values() for uid in _values(ds, {"UI"}) + _values(
        ds.file_meta, {"UI"}) if not uid.startswith("1.2.840.10008.")}  # fmt: skip
    assert len(originals) > 300
    assert not {
        u for u in originals if re.search(rf"(?<![0-9.]){re.escape(u)}(?![0-9])", everything)
    }

    # One date shift per patient; every exported date is one of the patient's own
    # original dates moved by it; an original date shows only where a shifted one equals it.
    exported = {
        str(ds.SOPInstanceUID): (ds, data)
        for n, data in members.items()
        if n.endswith(".dcm") and (ds := dcmread(io.BytesIO(data)))
    }
    pseudonyms = Pseudonyms(load_key())
    patients = {"A": ["a1.dcm", "a2.dcm", "a3-cine.dcm"], "B": ["b1.dcm"]}
    shifts: dict[str, set[int]] = {}
    for patient, names in patients.items():
        own_dates = {d for n in names for d in _values(files[n], {"DA"})}
        for name in names:
            ds, data = exported[pseudonyms.uid(str(files[name].SOPInstanceUID))]
            offset = (_day(files[name].StudyDate) - _day(ds.StudyDate)).days
            assert 1 <= offset <= 3650
            shifts.setdefault(patient, set()).add(offset)
            allowed = {shift_date(d, "DA", offset) for d in own_dates} | {"19000101"}
            assert set(_values(ds, {"DA"})) <= allowed, name
            text = data.decode("latin-1")
            shown = {d for d in own_dates if re.search(rf"(?<![0-9.]){d}(?![0-9])", text)}
            assert shown <= allowed, (name, shown - allowed)
    assert all(len(found) == 1 for found in shifts.values())
    assert len({str(ds.PatientID) for ds, _ in exported.values()}) == 2
