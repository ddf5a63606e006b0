"""Choosing each file's crop: the user's decision, else the device preset, else the
Sequence of Ultrasound Regions, else image analysis, else the whole image."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom import Dataset

from ustui.core.autocrop import analyse, analysis_crop
from ustui.core.boxes import Box
from ustui.core.fan import Sector
from ustui.core.frames import FrameReader, display_rgb
from ustui.core.profiles import DevicePreset, Profile
from ustui.core.regions import regions_crop
from ustui.core.session import FileDecision

#: Where a crop came from, best first. Crops from a person (session, preset) count as
#: reviewed: only those let the export state that the pixels were cleaned.
CROP_SOURCES = ("session", "preset", "regions", "analysis", "full")
REVIEWED_SOURCES = frozenset({"session", "preset"})
#: Frames sampled across a cine for image analysis.
ANALYSIS_SAMPLES = 8


@dataclass(frozen=True)
class CropChoice:
    box: Box
    masks: tuple[Box, ...]
    source: str
    """One of CROP_SOURCES."""
    confirmed: bool = False
    """A person kept this box in the review (pressed ``a``, or added masks to it) without
    changing it: its source stays the automatic one, and it counts as reviewed."""

    @property
    def reviewed(self) -> bool:
        return self.confirmed or self.source in REVIEWED_SOURCES


def header_text(header: Dataset, keyword: str) -> str:
    """A header value as stripped text, "" when absent."""
    value = header.get(keyword, "")
    return str(value).strip() if value is not None else ""


def matching_preset(header: Dataset, profile: Profile) -> DevicePreset | None:
    """The profile's device preset for this file, matched before identity is removed."""
    return profile.preset_for(
        manufacturer=header_text(header, "Manufacturer"),
        model=header_text(header, "ManufacturerModelName"),
        serial=header_text(header, "DeviceSerialNumber"),
        rows=int(header.get("Rows", 0) or 0),
        columns=int(header.get("Columns", 0) or 0),
        multi_frame=int(header.get("NumberOfFrames", 1) or 1) > 1,
    )


def choose_crop(
    header: Dataset,
    profile: Profile,
    decision: FileDecision | None,
    *,
    reader: FrameReader | None = None,
) -> CropChoice:
    """The crop and masks to apply to a file, and where they came from.

    Parameters
    ----------
    header
        The original header (device identity still present).
    profile
        The active profile, for device presets.
    decision
        The user's saved decision, if any.
    reader
        The file's frames, sampled for image analysis only when nothing else gives a crop.
    """
    rows, columns = int(header.Rows), int(header.Columns)
    user_masks = tuple(m.clip(columns, rows) for m in decision.masks) if decision else ()
    if decision and decision.crop:
        return pinned_crop(decision, decision.crop.clip(columns, rows), user_masks)
    preset = matching_preset(header, profile)
    if preset:
        masks = user_masks or tuple(m.clip(columns, rows) for m in preset.masks)
        return CropChoice(preset.crop.clip(columns, rows), masks, "preset")
    box = regions_crop(header)
    if box:
        return CropChoice(box, user_masks, "regions")
    if reader is not None:
        box = analysis_crop(sample_frames(reader), rows=rows, columns=columns)
        if box:
            return CropChoice(box, user_masks, "analysis")
    return CropChoice(Box.full(columns, rows), user_masks, "full")


def fan_sector(reader: FrameReader) -> Sector | None:
    """The sector of the ultrasound image in the file's frames, if it is one."""
    found = analyse(sample_frames(reader), rows=reader.rows, columns=reader.columns)
    return found.sector if found else None


def pinned_crop(decision: FileDecision, box: Box, masks: tuple[Box, ...]) -> CropChoice:
    """The choice for a crop kept in the session: the user's, or a confirmed automatic one."""
    return CropChoice(box, masks, decision.crop_source or "session", confirmed=True)


def sample_frames(reader: FrameReader) -> Iterator[np.ndarray]:
    """Display frames spread evenly over a cine, for image analysis."""
    count = reader.number_of_frames
    step = (count - 1) / max(ANALYSIS_SAMPLES - 1, 1)
    for index in sorted({round(i * step) for i in range(ANALYSIS_SAMPLES)}):
        yield display_rgb(reader.frame(index), reader)
