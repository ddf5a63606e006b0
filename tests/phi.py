"""Synthetic PHI for tests: a distinct sentinel in every attribute of PS3.15 Table E.1-1
and in each leak vector beyond it (private tags, curves, overlays, icons, AE titles)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from pydicom import Dataset
from pydicom.datadict import dictionary_VR
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage

from ustui.core.deid import TABLE

TEXT_VRS = {"LO", "SH", "ST", "LT", "UT", "UC", "UR", "CS", "AE"}
#: Sequences missing from the table (kept, items de-identified) used to nest things.
NESTERS = ("ProcedureCodeSequence", "AnatomicRegionSequence", "AnatomicRegionModifierSequence")


# --- building inputs ----------------------------------------------------------------


def vr_of(tag: int) -> str:
    return dictionary_VR(tag).split(" or ")[0]


def sentinel(tag: int, vr: str, index: int) -> object:
    """A value valid for ``vr`` that is unique to this attribute and searchable."""
    code = f"QZ{tag:08X}"
    day = dt.date(1931, 1, 1) + dt.timedelta(days=index)
    values: dict[str, object] = {
        "PN": f"{code}^GIVEN{index:04d}^^DR",
        "DA": day.strftime("%Y%m%d"),
        "DT": day.strftime("%Y%m%d") + "101112.123456+0100",
        "TM": f"10{index % 60:02d}{index // 60 % 60:02d}.{index:06d}",
        "UI": f"1.2.826.0.1.3680043.10.999.{100000 + index}",
        "AS": "077Y",
        "DS": str(7000000 + index),
        "IS": str(7000000 + index),
        "US": 60000 + index,
        "OB": code.encode(),
        "UN": code.encode(),
    }
    if vr in TEXT_VRS:
        return code
    if vr == "SQ":
        item = Dataset()
        item.PersonName = f"{code}^SEQ"
        item.ReferencedSOPClassUID = UltrasoundImageStorage
        item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.10.998.{100000 + index}"
        return Sequence([item])
    return values[vr]


def table_elements(start: int) -> Iterator[tuple[int, str, object]]:
    for index, tag in enumerate(sorted(TABLE), start=start):
        vr = vr_of(tag)
        yield tag, vr, sentinel(tag, vr, index)


def full_item(start: int) -> Dataset:
    """A dataset holding every concrete table attribute (but the meta group) and the extras."""
    ds = Dataset()
    for tag, vr, value in table_elements(start):
        if tag >> 16 != 0x0002:
            ds.add_new(tag, vr, value)
    ds.add_new(0x00090010, "LO", "QZPRIVCREATOR")
    ds.add_new(0x00091001, "LO", "QZPRIVATEVALUE")
    private_item = Dataset()
    private_item.add_new(0x00110010, "LO", "QZNESTEDCREATOR")
    private_item.PatientID = "QZINPRIVATESEQ"
    ds.add_new(0x00091002, "SQ", Sequence([private_item]))
    ds.add_new(0x00111001, "UN", b"QZUNKNOWNPRIV")
    ds.add_new(0x50000005, "US", 1)
    ds.add_new(0x50003000, "OB", b"QZCURVE!")
    ds.add_new(0x60000010, "US", 2)
    ds.add_new(0x60000022, "LO", "QZOVERLAYDESC")
    ds.add_new(0x60003000, "OW", b"QZOVERLY")
    ds.add_new(0x60024000, "LT", "QZOVERLAYCOMMENTS")
    icon = Dataset()
    icon.Rows = 1
    icon.ImageComments = "QZICON"
    ds.IconImageSequence = Sequence([icon])
    ds.TransducerData = "QZTRANSDUCER"
    ds.HardcopyCreationDeviceID = "QZHARDCOPY"
    ds.NTPSourceAddress = "QZNTPADDRESS"
    ds.PatientBirthDateInAlternativeCalendar = "QZALTBIRTH"
    ds.PatientDeathDateInAlternativeCalendar = "QZALTDEATH"
    ds.PatientBodyMassIndex = "27.5"
    ds.IdentificationDescriptionTrial = "QZIDDESC"
    ds.EvaluatorName = "QZEVALUATOR^NAME"
    ds.ExpiryDate = "19450505"
    ds.add_new(0x00000600, "AE", "QZMOVEAE")
    return ds


def full_dataset() -> Dataset:
    """Every table attribute at the top, in an image reference, 3 sequences deep and in meta."""
    ds = full_item(0)
    ds.SOPClassUID = UltrasoundImageStorage
    ds.Modality = "US"
    reference = full_item(1000)
    reference.ReferencedSOPClassUID = UltrasoundImageStorage
    reference.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.10.997.1"
    ds.ReferencedImageSequence = Sequence([reference])
    inner = full_item(2000)
    for keyword in reversed(NESTERS):
        outer = Dataset()
        setattr(outer, keyword, Sequence([inner]))
        inner = outer
    ds.ProcedureCodeSequence = inner.ProcedureCodeSequence
    ds.file_meta = FileMetaDataset()
    for tag, vr, value in table_elements(3000):
        if tag >> 16 == 0x0002:
            ds.file_meta.add_new(tag, vr, value)
    ds.file_meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.996.1"
    ds.file_meta.ImplementationVersionName = "QZIMPLNAME"
    ds.file_meta.SourceApplicationEntityTitle = "QZSOURCEAE"
    ds.file_meta.SendingApplicationEntityTitle = "QZSENDINGAE"
    ds.file_meta.ReceivingApplicationEntityTitle = "QZRECEIVINGAE"
    ds.file_meta.SourcePresentationAddress = "http://QZADDRESS"
    ds.file_meta.add_new(0x00020100, "UI", "1.2.826.0.1.3680043.10.996.2")
    ds.file_meta.add_new(0x00020102, "OB", b"QZPRIVATEINFO!")
    ds.preamble = b"QZPREAMBLE" + bytes(118)
    return ds
