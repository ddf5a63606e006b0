"""What a training pipeline needs to know about each exported file, read from the
de-identified output header: region geometry and physical units, timing, device.

Everything here comes from the dataset as written (output coordinates, after the
crop and de-identification), so it holds no value the profile removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydicom import Dataset

#: Region Data Type (0018,6014), PS3.3 C.8.5.5.1.2.
REGION_DATA_TYPES = {
    0: "none",
    1: "tissue",
    2: "color flow",
    3: "PW spectral Doppler",
    4: "CW spectral Doppler",
    5: "Doppler mean trace",
    6: "Doppler mode trace",
    7: "Doppler max trace",
    8: "volume trace",
    10: "ECG trace",
    11: "pulse trace",
    12: "phonocardiogram trace",
    13: "gray bar",
    14: "color bar",
    15: "integrated backscatter",
    16: "area trace",
    17: "d(area)/dt",
    18: "other physiological input",
}
#: Region Spatial Format (0018,6012).
SPATIAL_FORMATS = {0: "none", 1: "2D", 2: "M-mode", 3: "spectral", 4: "waveform", 5: "graphics"}
#: Physical Units X/Y Direction (0018,6024/6026): (unit written, factor from DICOM's unit).
#: Lengths become millimetres; the others keep DICOM's unit.
UNITS = {
    0: ("none", 1.0),
    1: ("percent", 1.0),
    2: ("dB", 1.0),
    3: ("mm", 10.0),
    4: ("s", 1.0),
    5: ("Hz", 1.0),
    6: ("dB/s", 1.0),
    7: ("cm/s", 1.0),
    8: ("mm2", 100.0),
    9: ("mm2/s", 100.0),
    10: ("mm3", 1000.0),
    11: ("mm3/s", 1000.0),
    12: ("degrees", 1.0),
}
_DEVICE = {
    "manufacturer": "Manufacturer",
    "model": "ManufacturerModelName",
    "transducer_type": "TransducerType",
}


def _number(ds: Dataset, keyword: str) -> float | None:
    try:
        value = ds.get(keyword)
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def regions(ds: Dataset) -> list[dict[str, Any]]:
    """Each ultrasound region of ``ds`` in its own pixel coordinates, with physical units."""
    found = []
    for item in ds.get("SequenceOfUltrasoundRegions") or []:
        try:
            box = [
                int(item.RegionLocationMinX0),
                int(item.RegionLocationMinY0),
                int(item.RegionLocationMaxX1) + 1,
                int(item.RegionLocationMaxY1) + 1,
            ]
        except (AttributeError, TypeError, ValueError):
            continue
        units_x, scale_x = UNITS.get(int(item.get("PhysicalUnitsXDirection", 0) or 0), UNITS[0])
        units_y, scale_y = UNITS.get(int(item.get("PhysicalUnitsYDirection", 0) or 0), UNITS[0])
        delta_x, delta_y = _number(item, "PhysicalDeltaX"), _number(item, "PhysicalDeltaY")
        x0, y0 = _number(item, "ReferencePixelX0"), _number(item, "ReferencePixelY0")
        found.append(
            {
                "box": box,
                "data_type": REGION_DATA_TYPES.get(
                    int(item.get("RegionDataType", 0) or 0), "other"
                ),
                "spatial_format": SPATIAL_FORMATS.get(
                    int(item.get("RegionSpatialFormat", 0) or 0), "other"
                ),
                "units": [units_x, units_y],
                "delta": [
                    None if delta_x is None else abs(delta_x) * scale_x,
                    None if delta_y is None else abs(delta_y) * scale_y,
                ],
                # Reference Pixel X0/Y0 count from the region's corner: here from the image's.
                "reference_pixel": None
                if x0 is None or y0 is None
                else [box[0] + int(x0), box[1] + int(y0)],
                "transducer_frequency_khz": _number(item, "TransducerFrequency"),
            }
        )
    return found


def spacing_mm(found: list[dict[str, Any]]) -> list[float] | None:
    """(x, y) millimetres per pixel, when the 2D tissue regions agree on one."""
    spacings = {
        tuple(r["delta"])
        for r in found
        if r["data_type"] == "tissue"
        and r["spatial_format"] == "2D"
        and r["units"] == ["mm", "mm"]
        and None not in r["delta"]
    }
    return list(spacings.pop()) if len(spacings) == 1 else None


def frame_time_ms(ds: Dataset) -> float | None:
    """Milliseconds between frames: Frame Time, else the mean of the Frame Time Vector."""
    frame_time = _number(ds, "FrameTime")
    if frame_time:
        return frame_time
    vector = ds.get("FrameTimeVector")
    try:
        steps = [float(v) for v in vector or []][1:]  # its first entry is 0
    except (TypeError, ValueError):
        return None
    return sum(steps) / len(steps) if steps else None


def cine_rate(ds: Dataset) -> float | None:
    """Frames per second the cine was acquired or is meant to be shown at."""
    return _number(ds, "CineRate") or _number(ds, "RecommendedDisplayFrameRate")


def device(ds: Dataset) -> dict[str, Any]:
    """The device that made the image, as far as the de-identified header still says."""
    out: dict[str, Any] = {}
    for name, keyword in _DEVICE.items():
        value = str(ds.get(keyword, "") or "").strip()
        if value:
            out[name] = value
    return out


def acquired_at(ds: Dataset) -> datetime | None:
    """When the file was acquired (original header), for offsets within one subject."""
    pairs = (
        ("AcquisitionDate", "AcquisitionTime"),
        ("ContentDate", "ContentTime"),
        ("SeriesDate", "SeriesTime"),
        ("StudyDate", "StudyTime"),
    )
    # A date with its time first; a date alone (midnight) only when no pair has both.
    stamps = [str(ds.get("AcquisitionDateTime", "") or "")]
    stamps += [str(ds.get(d, "") or "") + str(ds.get(t, "") or "") for d, t in pairs if ds.get(t)]
    stamps += [str(ds.get(d, "") or "") for d, _ in pairs]
    for stamp in stamps:
        digits = stamp.strip().split(".")[0].split("+")[0].split("-")[0]
        if len(digits) >= 8 and digits.isdigit():
            try:
                return datetime.strptime((digits + "000000")[:14], "%Y%m%d%H%M%S")
            except ValueError:
                continue
    return None
