"""Synthetic ultrasound exams that look like real ones, for the demo, the benchmark
and the tests: a speckled sector with a text banner above it, in a complete
US Image / US Multi-frame Image object with a Sequence of Ultrasound Regions.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

from ustui.core.boxes import Box


@dataclass(frozen=True)
class Patient:
    name: str = "DEMO^PATIENT"
    id: str = "DEMO-0001"
    birth_date: str = "19700101"
    sex: str = "O"


@dataclass
class Study:
    patient: Patient = field(default_factory=Patient)
    uid: str = field(default_factory=generate_uid)
    frame_of_reference: str = field(default_factory=generate_uid)
    date: str = "20240102"
    time: str = "093000"
    accession: str = "ACC0001"
    institution: str = "Demo General Hospital"
    operator: str = "SONO^GRAPHER"


def sector_box(rows: int, columns: int) -> Box:
    """Where ``sector_frame`` draws its image: below the banner, inside the side bars."""
    return Box(columns // 8, rows // 8, columns - columns // 8, rows - rows // 16)


def sector_frame(rows: int, columns: int, *, seed: int = 0, t: int = 0) -> np.ndarray:
    """One uint8 greyscale frame: a speckled fan inside ``sector_box``, black elsewhere."""
    rng = np.random.default_rng(seed * 1000 + t)
    box = sector_box(rows, columns)
    yy, xx = np.mgrid[0 : box.height, 0 : box.width]
    apex_x = box.width / 2
    angle = np.abs(np.arctan2(xx - apex_x, yy + 1))
    radius = np.hypot(xx - apex_x, yy)
    inside = (angle < 0.75) & (radius < box.height)
    tissue = 60 + 50 * np.sin(radius / 9 + t * 0.3) + rng.gamma(2.0, 22.0, size=radius.shape)
    frame = np.zeros((rows, columns), np.uint8)
    frame[box.top : box.bottom, box.left : box.right] = np.where(
        inside, np.clip(tissue, 1, 255), 0
    ).astype(np.uint8)
    return frame


def burn_text(
    frame: np.ndarray, text: str, *, top: int = 4, left: int = 8, size: int | None = None
) -> np.ndarray:
    """``frame`` with ``text`` burned in (by default into its top banner), as scanners do.

    ``size`` picks Pillow's scalable font at that pixel size instead of its small bitmap font.
    """
    image = Image.fromarray(frame)
    font = ImageFont.load_default(size) if size else None
    fill = 255 if frame.ndim == 2 else (255, 255, 255)
    ImageDraw.Draw(image).text((left, top), text, fill=fill, font=font)
    return np.asarray(image)


def region_item(box: Box) -> Dataset:
    """One 2D tissue region of the Sequence of Ultrasound Regions covering ``box``."""
    item = Dataset()
    item.RegionSpatialFormat = 1
    item.RegionDataType = 1
    item.RegionFlags = 0
    item.RegionLocationMinX0 = box.left
    item.RegionLocationMinY0 = box.top
    item.RegionLocationMaxX1 = box.right - 1
    item.RegionLocationMaxY1 = box.bottom - 1
    item.ReferencePixelX0 = box.width // 2
    item.ReferencePixelY0 = 0
    item.PhysicalUnitsXDirection = 3
    item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX = 0.02
    item.PhysicalDeltaY = 0.02
    return item


def us_dataset(
    frames: Sequence[np.ndarray],
    *,
    study: Study,
    series_uid: str,
    series_number: int,
    instance_number: int,
    photometric: str = "MONOCHROME2",
    jpeg_quality: int | None = None,
    regions: bool = True,
    manufacturer: str = "ustui Synthetic",
    model: str = "Sector 1",
) -> Dataset:
    """A complete ultrasound object holding ``frames``.

    Frames are greyscale; ``photometric`` "RGB" stores them as colour. With
    ``jpeg_quality`` the pixels are JPEG Baseline YBR_FULL_422 (colour) or
    greyscale JPEG.
    """
    rows, columns = frames[0].shape[:2]
    multi = len(frames) > 1
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = UltrasoundMultiFrameImageStorage if multi else UltrasoundImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.SourceApplicationEntityTitle = "DEMO_SCANNER"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "", "0001"]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = study.date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = study.time
    ds.AccessionNumber = study.accession
    ds.Modality = "US"
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = model
    ds.DeviceSerialNumber = "SN-DEMO-42"
    ds.InstitutionName = study.institution
    ds.InstitutionAddress = "1 Demo Street, Demo City"
    ds.StationName = "DEMO-US-01"
    ds.ReferringPhysicianName = "REFERRING^DOCTOR"
    ds.OperatorsName = study.operator
    ds.StudyDescription = "Demo venous duplex"
    ds.PatientName = study.patient.name
    ds.PatientID = study.patient.id
    ds.PatientBirthDate = study.patient.birth_date
    ds.PatientSex = study.patient.sex
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.FrameOfReferenceUID = study.frame_of_reference
    ds.PatientOrientation = ""
    ds.BurnedInAnnotation = "YES"
    if multi:
        ds.NumberOfFrames = len(frames)
        ds.FrameTime = 33.3
        ds.FrameIncrementPointer = 0x00181063
    if regions:
        ds.SequenceOfUltrasoundRegions = DicomSequence([region_item(sector_box(rows, columns))])
    colour = photometric != "MONOCHROME2"
    ds.SamplesPerPixel = 3 if colour else 1
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if colour:
        ds.PlanarConfiguration = 0
    stacked = [np.repeat(f[..., None], 3, axis=2) if colour and f.ndim == 2 else f for f in frames]
    if jpeg_quality is None:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PhotometricInterpretation = photometric
        ds.PixelData = np.stack(stacked).tobytes()
    else:
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.PhotometricInterpretation = "YBR_FULL_422" if colour else "MONOCHROME2"
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.PixelData = encapsulate([_jpeg(f, jpeg_quality) for f in stacked])
        ds["PixelData"].VR = "OB"
    return ds


def _jpeg(frame: np.ndarray, quality: int) -> bytes:
    out = io.BytesIO()
    image = Image.fromarray(frame)
    if image.mode == "RGB":
        image.save(out, "JPEG", quality=quality, subsampling=1)  # 4:2:2
    else:
        image.save(out, "JPEG", quality=quality)
    return out.getvalue()
