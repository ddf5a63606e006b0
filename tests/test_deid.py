"""Header de-identification: every PS3.15 table row, at every depth, and the extras."""

from __future__ import annotations

import copy
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import real_files
from phi import NESTERS, TEXT_VRS, full_dataset, vr_of
from pydicom import Dataset, dcmread, dcmwrite
from pydicom._uid_dict import UID_dictionary
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.sr._concepts_dict import concepts
from pydicom.tag import Tag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    AllTransferSyntaxes,
    ExplicitVRLittleEndian,
    UltrasoundImageStorage,
)

from ustui.core.deid import (
    EXTRA_REMOVED,
    METHOD_CODES,
    TABLE,
    deidentify,
    identifying_values,
    shift_date,
)
from ustui.core.errors import UstuiError
from ustui.core.profiles import DeidSettings
from ustui.core.pseudonyms import Pseudonyms

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
SUBJECT = "S-TESTSUBJ"
ALL_OPTIONS = (
    "retain-safe-private",
    "retain-device-identity",
    "retain-institution-identity",
    "retain-patient-characteristics",
    "retain-modified-dates",
    "clean-descriptors",
    "clean-structured-content",
    "clean-graphics",
)


def _image(sop: str, *, study: str = "1.2.826.0.1.3680043.10.1", **keywords: object) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = UltrasoundImageStorage
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = study + ".1"
    ds.FrameOfReferenceUID = study + ".9"
    ds.Modality = "US"
    ds.PatientName = "DOE^JOHNATHAN"
    ds.PatientID = "PID12345"
    for keyword, value in keywords.items():
        setattr(ds, keyword, value)
    return ds


def _run(ds: Dataset, *options: str, key: bytes = KEY, pixels_cleaned: bool = False) -> Dataset:
    deidentify(
        ds,
        settings=DeidSettings(options=options),
        pseudonyms=Pseudonyms(key),
        subject=SUBJECT,
        pixels_cleaned=pixels_cleaned,
    )
    return ds


def _written(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _walk(ds: Dataset) -> Iterator[DataElement]:
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item)


def _uids(ds: Dataset) -> set[str]:
    found: set[str] = set()
    for elem in [*_walk(ds), *_walk(ds.file_meta)]:
        if elem.VR == "UI" and elem.value:
            found.update(str(v) for v in (elem.value if elem.VM > 1 else [elem.value]))
    return found


def _well_known(uid: str) -> bool:
    return uid in UID_dictionary or uid.startswith("1.2.840.10008.")


# --- every table row, nested, and the extras ------------------------------------------


def test_the_full_input_holds_every_table_attribute_three_times() -> None:
    assert not {Tag(k) for k in NESTERS} & set(TABLE)
    ds = full_dataset()
    sentinels = [e for e in [*_walk(ds), *_walk(ds.file_meta)] if "QZ" in str(e.value)]
    per_copy = sum(1 for tag in TABLE if vr_of(tag) in TEXT_VRS | {"PN", "SQ"})
    assert len(sentinels) > 3 * per_copy
    deepest = ds.ProcedureCodeSequence[0].AnatomicRegionSequence[0]
    assert Tag("PatientName") in deepest.AnatomicRegionModifierSequence[0]


def test_no_sentinel_survives_at_any_depth_nor_in_meta_or_bytes() -> None:
    original = full_dataset()
    original_uids = {u for u in _uids(original) if not _well_known(u)}
    original_dates = {str(e.value)[:8] for e in _walk(original) if e.VR in ("DA", "DT") and e.value}
    ds = _run(full_dataset())
    data = _written(ds)
    back = dcmread(io.BytesIO(data))
    assert b"QZ" not in data
    for elem in [*_walk(back), *_walk(back.file_meta)]:
        assert "QZ" not in str(elem.value), elem
    for uid in original_uids:
        assert uid.encode() not in data
    for date in original_dates:
        assert date.encode() not in data
    assert not _uids(back) & original_uids
    ours = {PYDICOM_IMPLEMENTATION_UID}
    assert all(u.startswith("2.25.") or _well_known(u) or u in ours for u in _uids(back))


def test_every_table_attribute_at_the_top_is_removed_or_replaced() -> None:
    original = full_dataset()
    ds = _run(full_dataset())
    checked = 0
    for tag in TABLE:
        if tag >> 16 in (0x0000, 0x0002):
            continue
        assert tag in original
        if tag in ds:
            assert ds[tag].value != original[tag].value or ds[tag].VR == "SQ", ds[tag]
        checked += 1
    assert checked > 600


def test_removed_kinds_are_gone_everywhere() -> None:
    back = dcmread(io.BytesIO(_written(_run(full_dataset()))))
    elements = [*_walk(back), *_walk(back.file_meta)]
    for elem in elements:
        group = elem.tag.group
        assert group % 2 == 0, elem  # private
        assert group >> 8 not in (0x50, 0x60), elem  # curves, overlays
        assert group != 0x0000, elem  # command group
        assert elem.VR != "AE", elem
        assert elem.tag != Tag("IconImageSequence")
        assert elem.tag not in EXTRA_REMOVED
    assert "SourcePresentationAddress" not in back.file_meta
    assert Tag(0x00020100) not in back.file_meta
    assert back.preamble == bytes(128)


def test_type_1_and_2_attributes_stay_present() -> None:
    ds = _run(full_dataset())
    for keyword in (
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
        "ContentDate",
        "ContentTime",
        "AcquisitionContextSequence",
    ):
        assert keyword in ds, keyword
        assert not ds[keyword].value, keyword
    for keyword in (
        "SOPInstanceUID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "FrameOfReferenceUID",
    ):
        assert str(ds[keyword].value).startswith("2.25."), keyword
    assert ds.PatientName == SUBJECT
    assert ds.PatientID == SUBJECT
    assert ds.SOPClassUID == UltrasoundImageStorage
    assert "AcquisitionDate" not in ds  # X/Z, Type 3 here: removed
    assert "InstitutionName" not in ds  # X/Z/D, Type 3 here: removed


def test_type_2_attributes_are_added_when_missing() -> None:
    ds = _run(_image("1.2.826.0.1.3680043.10.1.1"))
    for keyword in (
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
    ):
        assert keyword in ds and not ds[keyword].value


def test_dummy_values_are_valid_for_theirvr_of() -> None:
    ds = _image("1.2.826.0.1.3680043.10.1.1")
    ds.PersonName = "DOE^JOHN"  # D
    ds.VerifyingObserverName = "DOE^JANE"  # D
    ds.DeviceLabel = "PROBE 7"  # D, LO
    ds.SelectorASValue = "045Y"  # D, AS
    ds.SelectorUNValue = b"QZ"  # D, UN: cannot be rewritten, removed
    ds.AnnotationGroupUID = "1.2.826.0.1.3680043.10.5"  # D, UI
    ds.add_new(Tag("EncapsulatedDocument"), "OB", b"%PDF-QZ!")  # D, OB
    ds.VerifyingObserverSequence = Sequence([Dataset()])  # D, SQ
    ds.InstructionPerformedDateTime = "20200101101010"  # Z/D
    ds.ConsultingPhysicianName = "QZ^DOC"  # Z
    ds.PerformingPhysicianName = "QZ^DOC"  # X
    _run(ds)
    assert ds.PersonName == "ANONYMOUS"
    assert ds.VerifyingObserverName == "ANONYMOUS"
    assert ds.DeviceLabel == "ANON"
    assert ds.SelectorASValue == "000Y"
    assert "SelectorUNValue" not in ds
    assert ds.AnnotationGroupUID.startswith("2.25.")
    assert ds.EncapsulatedDocument == bytes(8)
    assert ds.VerifyingObserverSequence == Sequence()
    assert ds.InstructionPerformedDateTime == ""
    assert ds.ConsultingPhysicianName == ""
    assert "PerformingPhysicianName" not in ds
    dcmread(io.BytesIO(_written(ds)))


def test_the_output_writes_as_a_file_and_reads_back() -> None:
    ds = _run(full_dataset())
    back = dcmread(io.BytesIO(_written(ds)))
    assert back.SOPInstanceUID == ds.SOPInstanceUID
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    assert back.file_meta.ImplementationClassUID == PYDICOM_IMPLEMENTATION_UID
    assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


# --- what deidentify records ----------------------------------------------------------


def _codes(ds: Dataset) -> dict[str, str]:
    return {item.CodeValue: item.CodeMeaning for item in ds.DeidentificationMethodCodeSequence}


def test_records_method_codes_with_the_standard_meanings() -> None:
    ds = _run(_image("1.2.826.0.1.3680043.10.1.1"), *ALL_OPTIONS, pixels_cleaned=True)
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.BurnedInAnnotation == "NO"
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert _codes(ds) == {
        "113100": "Basic Application Confidentiality Profile",
        "113101": "Clean Pixel Data Option",
        "113103": "Clean Graphics Option",
        "113104": "Clean Structured Content Option",
        "113105": "Clean Descriptors Option",
        "113107": "Retain Longitudinal Temporal Information Modified Dates Option",
        "113108": "Retain Patient Characteristics Option",
        "113109": "Retain Device Identity Option",
        "113111": "Retain Safe Private Option",
        "113112": "Retain Institution Identity Option",
    }
    items = ds.DeidentificationMethodCodeSequence
    assert all(item.CodingSchemeDesignator == "DCM" for item in items)
    assert ds.DeidentificationMethod[0].startswith("ustui")
    assert "Clean Descriptors Option" in ds.DeidentificationMethod


def test_method_codes_match_pydicom_cid_7050() -> None:
    cid_7050 = {
        value: meaning
        for codes in concepts["DCM"].values()
        for value, (meaning, cids) in codes.items()
        if 7050 in cids
    }
    for value, meaning in METHOD_CODES.values():
        assert cid_7050[value] == meaning


def test_basic_profile_alone_records_removed_dates_and_burned_in_text() -> None:
    ds = _run(_image("1.2.826.0.1.3680043.10.1.1"))
    assert set(_codes(ds)) == {"113100"}
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert ds.BurnedInAnnotation == "YES"
    full = _run(_image("1.2.826.0.1.3680043.10.1.1"), "retain-full-dates")
    assert full.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert set(_codes(full)) == {"113100", "113106"}


def test_unknown_or_conflicting_options_are_refused() -> None:
    with pytest.raises(UstuiError, match="unknown de-identification option"):
        _run(_image("1.2.3"), "retain-everything")
    with pytest.raises(UstuiError, match="exclude each other"):
        _run(_image("1.2.3"), "retain-full-dates", "retain-modified-dates")


# --- UIDs -------------------------------------------------------------------------------

FILE_A = "1.2.826.0.1.3680043.10.1.1.1"
FILE_B = "1.2.826.0.1.3680043.10.1.1.2"


def _pair() -> tuple[Dataset, Dataset]:
    a = _image(FILE_A)
    b = _image(FILE_B)
    reference = Dataset()
    reference.ReferencedSOPClassUID = UltrasoundImageStorage
    reference.ReferencedSOPInstanceUID = FILE_A
    b.ReferencedImageSequence = Sequence([reference])
    b.SourceImageSequence = Sequence([copy.deepcopy(reference)])
    b.FailedSOPInstanceUIDList = [FILE_A, "1.2.826.0.1.3680043.10.77", UltrasoundImageStorage]
    return a, b


def test_uids_stay_consistent_across_files() -> None:
    a, b = (_run(ds) for ds in _pair())
    assert a.StudyInstanceUID == b.StudyInstanceUID != "1.2.826.0.1.3680043.10.1"
    assert a.SeriesInstanceUID == b.SeriesInstanceUID
    assert a.FrameOfReferenceUID == b.FrameOfReferenceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert b.SourceImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert b.ReferencedImageSequence[0].ReferencedSOPClassUID == UltrasoundImageStorage
    failed = list(b.FailedSOPInstanceUIDList)
    assert failed[0] == a.SOPInstanceUID and failed[1].startswith("2.25.")
    assert failed[2] == UltrasoundImageStorage  # multi-valued, well-known kept
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID


def test_same_key_same_uids_other_key_other_uids() -> None:
    first = _run(_image(FILE_A))
    again = _run(_image(FILE_A))
    other = _run(_image(FILE_A), key=OTHER_KEY)
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        assert first[keyword].value == again[keyword].value
        assert first[keyword].value != other[keyword].value


def test_well_known_uids_are_kept_even_when_pydicom_does_not_know_them() -> None:
    ds = _image(FILE_A)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.111"  # JPEG XL, DICOM 2024
    ds.CodingSchemeIdentificationSequence = Sequence([Dataset()])
    ds.CodingSchemeIdentificationSequence[0].CodingSchemeUID = "2.16.840.1.113883.6.96"
    _run(ds)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.111"
    assert ds.CodingSchemeIdentificationSequence[0].CodingSchemeUID == "2.16.840.1.113883.6.96"


def test_meta_without_sop_instance_in_dataset_is_mapped_and_meta_is_created() -> None:
    ds = _image(FILE_A)
    del ds.SOPInstanceUID
    _run(ds)
    assert ds.file_meta.MediaStorageSOPInstanceUID == Pseudonyms(KEY).uid(FILE_A)
    bare = Dataset()
    bare.SOPClassUID = UltrasoundImageStorage
    bare.SOPInstanceUID = FILE_B
    _run(bare)
    assert bare.file_meta.MediaStorageSOPInstanceUID == bare.SOPInstanceUID
    assert bare.file_meta.MediaStorageSOPClassUID == UltrasoundImageStorage


# --- dates --------------------------------------------------------------------------------


def _dated(sop: str, study_date: str) -> Dataset:
    return _image(
        sop,
        StudyDate=study_date,
        StudyTime="101112",
        AcquisitionDateTime=study_date + "101112.5+0100",
        ContentDate=study_date,
        ContentTime="101500",
        PatientBirthDate="19700101",
        ExpiryDate="20300101",
        InstanceCreationDate=study_date,
    )


def test_modified_dates_move_back_by_the_subject_offset() -> None:
    offset = Pseudonyms(KEY).date_offset_days(SUBJECT, DeidSettings().date_shift_days)
    a = _run(_dated(FILE_A, "20200315"), "retain-modified-dates")
    b = _run(_dated(FILE_B, "20200320"), "retain-modified-dates")
    expected = dt.date(2020, 3, 15) - dt.timedelta(days=offset)
    assert a.StudyDate == expected.strftime("%Y%m%d")
    assert a.ContentDate == a.StudyDate == a.InstanceCreationDate
    assert a.AcquisitionDateTime == a.StudyDate + "101112.5+0100"
    shifted_b = dt.datetime.strptime(b.StudyDate, "%Y%m%d").date()
    assert shifted_b - expected == dt.timedelta(days=5)  # intervals survive
    assert a.StudyTime == "101112" and a.ContentTime == "101500"  # whole days: times stay
    assert a.PatientBirthDate == ""  # the table has no date option for it
    assert a.ExpiryDate == (dt.date(2030, 1, 1) - dt.timedelta(days=offset)).strftime("%Y%m%d")
    assert a.LongitudinalTemporalInformationModified == "MODIFIED"


def test_without_a_date_option_dates_and_times_go() -> None:
    ds = _run(_dated(FILE_A, "20200315"))
    assert ds.StudyDate == "" and ds.StudyTime == "" and ds.ContentDate == ""
    assert "AcquisitionDateTime" not in ds
    assert "InstanceCreationDate" not in ds
    assert "ExpiryDate" not in ds  # not in the table: treated like its dates
    data = _written(ds)
    assert b"20200315" not in data and b"101112" not in data


def test_full_dates_keep_dates() -> None:
    ds = _run(_dated(FILE_A, "20200315"), "retain-full-dates")
    assert ds.StudyDate == "20200315"
    assert ds.AcquisitionDateTime == "20200315101112.5+0100"
    assert ds.ExpiryDate == "20300101"
    assert ds.LongitudinalTemporalInformationModified == "UNMODIFIED"


@pytest.mark.parametrize(
    ("value", "vr", "expected"),
    [
        ("20200315", "DA", "20200305"),
        ("2020.03.15", "DA", "20200305"),
        ("20200101", "DA", "20191222"),
        ("2020", "DT", "2019"),
        ("202003", "DT", "202002"),
        ("20200315101112.123456-0500", "DT", "20200305101112.123456-0500"),
        ("20200315+0100", "DT", "20200305+0100"),
        ("", "DA", ""),
        ("20201340", "DA", None),
        ("2020-03-15", "DA", None),
        ("not a date", "DT", None),
        ("20201010", "DT", "20200930"),
    ],
)
def test_shift_keeps_precision_and_refuses_nonsense(
    value: str, vr: str, expected: str | None
) -> None:
    assert shift_date(value, vr, 10) == expected


# --- options --------------------------------------------------------------------------------


def test_patient_characteristics_are_kept_only_with_their_option() -> None:
    def characteristics(*options: str) -> Dataset:
        return _run(
            _image(
                FILE_A,
                PatientSex="F",
                PatientAge="045Y",
                PatientWeight="61.5",
                PatientSize="1.68",
                PatientBodyMassIndex="21.8",
                SmokingStatus="NO",
            ),
            *options,
        )

    kept = characteristics("retain-patient-characteristics")
    assert (kept.PatientSex, kept.PatientAge, kept.PatientWeight) == ("F", "045Y", 61.5)
    assert kept.PatientBodyMassIndex == 21.8 and kept.SmokingStatus == "NO"
    gone = characteristics()
    assert gone.PatientSex == ""  # Type 2: emptied
    for keyword in (
        "PatientAge",
        "PatientWeight",
        "PatientSize",
        "PatientBodyMassIndex",
        "SmokingStatus",
    ):
        assert keyword not in gone


def test_device_identity_is_kept_only_with_its_option_but_ae_titles_never() -> None:
    def device(*options: str) -> Dataset:
        return _run(
            _image(
                FILE_A,
                DeviceSerialNumber="SN-77",
                StationName="ROOM 4",
                TransducerData="C5-1 SN123",
                StationAETitle="US_ROOM4",
                Manufacturer="ACME",
            ),
            *options,
        )

    kept = device("retain-device-identity")
    assert (kept.DeviceSerialNumber, kept.StationName, kept.TransducerData) == (
        "SN-77",
        "ROOM 4",
        "C5-1 SN123",
    )
    assert "StationAETitle" not in kept
    gone = device()
    for keyword in ("DeviceSerialNumber", "StationName", "TransducerData", "StationAETitle"):
        assert keyword not in gone
    assert gone.Manufacturer == "ACME"  # not identifying: kept by the standard


def test_institution_identity_is_kept_only_with_its_option() -> None:
    def institution(*options: str) -> Dataset:
        return _run(
            _image(FILE_A, InstitutionName="QZ HOSPITAL", InstitutionalDepartmentName="RADIOLOGY"),
            *options,
        )

    assert institution("retain-institution-identity").InstitutionName == "QZ HOSPITAL"
    assert "InstitutionName" not in institution()
    assert "InstitutionalDepartmentName" not in institution()


def test_clean_descriptors_keeps_only_text_free_of_identifiers() -> None:
    ds = _image(
        FILE_A,
        SeriesDescription="Carotid left",
        StudyDescription="Follow-up for Johnathan",
        ProtocolName="Scan of PID12345",
        ImageComments="seen 12/03/2020",
        AcquisitionComments="from 20200312",
        PerformedProcedureStepDescription="DVT left leg",
        InstitutionName="Mercy General",
        RequestedProcedureDescription="US at Mercy General",
    )
    ds.add_new(0x00090010, "LO", "ACME")
    ds.add_new(0x00091001, "LO", "Carotid left")  # vendors repeat descriptions privately
    _run(ds, "clean-descriptors")
    assert ds.SeriesDescription == "Carotid left"
    assert ds.PerformedProcedureStepDescription == "DVT left leg"
    for keyword in (
        "StudyDescription",
        "ProtocolName",
        "ImageComments",
        "AcquisitionComments",
        "RequestedProcedureDescription",
        "InstitutionName",
    ):
        assert keyword not in ds, keyword
    plain = _run(_image(FILE_A, SeriesDescription="Carotid left"))
    assert "SeriesDescription" not in plain


def test_clean_structured_content_keeps_clean_items_only() -> None:
    item = Dataset()
    item.ConceptNameCodeSequence = Sequence([Dataset()])
    item.ConceptNameCodeSequence[0].CodeValue = "G-C0E8"
    item.ConceptNameCodeSequence[0].CodingSchemeDesignator = "SRT"  # a standard scheme
    item.ConceptNameCodeSequence[0].CodeMeaning = "Finding site"
    item.TextValue = "reported by Johnathan"
    item.ObservationDateTime = "20200315101010"
    ds = _image(FILE_A, AcquisitionContextSequence=Sequence([item]))
    _run(ds, "clean-structured-content")
    kept = ds.AcquisitionContextSequence[0]
    assert kept.ConceptNameCodeSequence[0].CodeMeaning == "Finding site"
    assert "TextValue" not in kept
    assert "ObservationDateTime" not in kept
    emptied = _run(_image(FILE_A, AcquisitionContextSequence=Sequence([copy.deepcopy(item)])))
    assert emptied.AcquisitionContextSequence == Sequence()  # X/Z, Type 2: empty


def test_retain_safe_private_keeps_no_private_attribute_yet() -> None:
    ds = _image(FILE_A)
    ds.add_new(0x00090010, "LO", "ACME 1.0")
    ds.add_new(0x00091001, "LO", "harmless?")
    _run(ds, "retain-safe-private")
    assert not [e for e in ds if e.tag.is_private]
    assert "113111" in _codes(ds)


# --- odd inputs -----------------------------------------------------------------------


def _raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    return RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the bad values
def test_odd_inputs_do_not_crash_and_leave_nothing() -> None:
    ds = _image(FILE_A)
    ds.ReferencedImageSequence = Sequence()
    ds.ProcedureCodeSequence = Sequence([Dataset()])
    ds[0x00080090] = _raw(0x00080090, "PN", b"QZRAW^DOC")  # raw, Z
    ds[0x00081155] = _raw(0x00081155, "UI", b"1.2.826.0.1.3680043.10.55\x00")  # raw UID
    ds[0x00081030] = _raw(0x00081030, "ZZ", b"QZBADVR!")  # undecodable VR
    ds[0xFFFEE000] = _raw(0xFFFEE000, "UN", b"QZSTRAYITEM!")  # stray item tag
    ds.add_new(0x00081048, "LO", "QZWRONG^VR")  # a PN stored as LO: still X
    ds.add_new(0x00080023, "DA", "QZBADDATE")  # unparsable date under modified dates
    ds.add_new(0x00080022, "DA", "QZBAD")
    ds.add_new(0x00080090 + 0x10000000, "UN", b"QZUNKNOWN!")  # unknown standard tag
    ds.add_new(0x00081050, "UN", b"QZ^UN")  # known PN tag with VR UN
    ds.OperatorsName = ["QZFAM^QZGIVEN^QZMID^DR^JR", "QZB^QZC"]
    inner = Dataset()
    inner.PerformingPhysicianName = "QZDEEP^DOC"
    inner.ReferencedSOPInstanceUID = FILE_B
    for _ in range(12):
        outer = Dataset()
        outer.ProcedureCodeSequence = Sequence([inner])
        inner = outer
    ds.AnatomicRegionSequence = inner.ProcedureCodeSequence
    _run(ds, "retain-modified-dates", "clean-descriptors")
    data = _written(ds)
    back = dcmread(io.BytesIO(data))
    assert b"QZ" not in data
    assert back.ContentDate == "" and "AcquisitionDate" not in back
    assert back.ReferringPhysicianName == ""
    assert back.ReferencedSOPInstanceUID == Pseudonyms(KEY).uid("1.2.826.0.1.3680043.10.55")
    deep = back.AnatomicRegionSequence[0]
    for _ in range(11):
        deep = deep.ProcedureCodeSequence[0]
    assert "PerformingPhysicianName" not in deep
    assert deep.ReferencedSOPInstanceUID == Pseudonyms(KEY).uid(FILE_B)


# --- identifying values -------------------------------------------------------------------


def _original() -> Dataset:
    ds = _image(
        FILE_A,
        StudyDate="20200315",
        PatientSex="M",
        PatientWeight="70",
        Manufacturer="ACME",
        BurnedInAnnotation="YES",
        StationName="LOGIQE",
        ManufacturerModelName="LOGIQe",
        InstitutionName="QZ HOSPITAL",
        ImageType=["ORIGINAL", "PRIMARY"],
        StudyTime="101112",
    )
    ds.add_new(0x00090010, "LO", "QZ PRIVATE CREATOR")
    ds.add_new(0x00091001, "UN", b"QZRAWTEXT\x00")
    ds.add_new(0x00091002, "UN", b"\x01\x02\x03\x04\x05")
    ds.file_meta.SourceApplicationEntityTitle = "QZSOURCEAE"
    other = Dataset()
    other.PatientID = "OTHERID99"
    ds.OtherPatientIDsSequence = Sequence([other])
    return ds


def test_identifying_values_hold_what_the_profile_removes() -> None:
    values = identifying_values(_original())
    for wanted in (
        "DOE^JOHNATHAN",
        "JOHNATHAN",
        "PID12345",
        FILE_A,
        "20200315",
        "101112",
        "QZ HOSPITAL",
        "QZ PRIVATE CREATOR",
        "QZRAWTEXT",
        "QZSOURCEAE",
        "OTHERID99",
        "1.2.826.0.1.3680043.10.1",
        "1.2.826.0.1.3680043.10.1.9",
    ):
        assert wanted in values, wanted
    for unwanted in (
        "DOE",
        "M",
        "70",
        "ACME",
        "US",
        "YES",
        UltrasoundImageStorage,
        ExplicitVRLittleEndian,
        "ORIGINAL",
        "LOGIQE",
        "LOGIQe",
    ):
        assert unwanted not in values, unwanted
    assert all(len(v) >= 4 for v in values)


def test_identifying_values_follow_the_options() -> None:
    full = identifying_values(_original(), settings=DeidSettings(options=("retain-full-dates",)))
    assert "20200315" not in full and "101112" not in full
    modified = identifying_values(
        _original(), settings=DeidSettings(options=("retain-modified-dates",))
    )
    assert "20200315" in modified and "101112" not in modified
    institution = identifying_values(
        _original(), settings=DeidSettings(options=("retain-institution-identity",))
    )
    assert "QZ HOSPITAL" not in institution


def test_identifying_values_never_survive_deidentification() -> None:
    values = identifying_values(full_dataset())
    assert len(values) > 1000
    data = _written(_run(full_dataset())).lower()
    assert [v for v in values if v.lower().encode() in data] == []


# --- real files ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::UserWarning")  # real files hold over-long values
@pytest.mark.parametrize("options", [(), ALL_OPTIONS], ids=["basic", "all-options"])
@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.name)
def test_real_headers_leak_no_identifying_value(path: Path, options: tuple[str, ...]) -> None:
    """Every real file, including the two with stray delimiter items (removed unread)."""
    settings = DeidSettings(options=options)
    ds = dcmread(path, stop_before_pixels=True, force=True)
    values = identifying_values(ds, settings=settings)
    subject = Pseudonyms(KEY).subject(ds, "S-")
    deidentify(
        ds, settings=settings, pseudonyms=Pseudonyms(KEY), subject=subject, pixels_cleaned=False
    )
    if ds.file_meta.get("TransferSyntaxUID") not in AllTransferSyntaxes:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # the writer's choice
    data = _written(ds)
    back = dcmread(io.BytesIO(data))
    lowered = data.lower()
    leaks = [v for v in values if v.lower().encode("latin-1", "replace") in lowered]
    assert leaks == []
    assert not [e for e in _walk(back) if e.tag.is_private]
    assert back.PatientName == subject
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
