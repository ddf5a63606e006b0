"""The export's manifest: one row per exported file, as CSV and JSON.

Holds only pseudonyms, geometry, tags and encodings: never original identifiers.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from ustui import __version__

#: Version of the manifest's layout; raised whenever a field changes meaning or goes away.
SCHEMA_VERSION = 2


@dataclass(frozen=True, slots=True)
class ManifestRow:
    path: str
    """Member name in the ZIP."""
    subject: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    frames: int
    rows: int
    columns: int
    crop: list[int]
    """The box written, [left, top, right, bottom] in original pixel coordinates: the
    exported image's pixel (0, 0) is the original's (left, top)."""
    crop_requested: list[int]
    """The box chosen; pixels of ``crop`` outside it are written black (a JPEG kept in
    the compressed domain starts on its 8/16-pixel block grid)."""
    crop_source: str
    masks: list[list[int]]
    fan: dict[str, float] | None
    """The sector blacked outside of (profile ``fan_mask``), in original pixel
    coordinates: apex, edge angles in degrees from straight down, near/far radius."""
    tags: dict[str, str]
    transfer_syntax_in: str
    transfer_syntax_out: str
    lossy: bool
    """The written pixels have been through lossy compression (now or before)."""
    reencoded: bool
    """ustui applied a lossy encoding to this file."""
    note: str
    sha256: str
    pixel_text: str = "off"
    """How text in the pixels was handled: checked, reviewed, flagged, off, or not
    checked (no text reader installed)."""
    text_masks: list[list[int]] = field(default_factory=list)
    """Masks placed over identifying text (source ``text``), also listed in ``masks``."""
    text_kept: list[dict[str, object]] = field(default_factory=list)
    """Text left in the exported pixels: ``{"box": [...], "text": ...}`` for review."""
    still: bool = True
    """One frame (a still image) rather than a cine."""
    photometric: str = ""
    """Photometric Interpretation as written."""
    bits_allocated: int = 8
    bits_stored: int = 8
    regions: list[dict[str, Any]] = field(default_factory=list)
    """Ultrasound regions in output pixels: box, data type, spatial format, units and
    delta per pixel (mm for lengths), reference pixel, transducer frequency."""
    spacing_mm: list[float] | None = None
    """[x, y] millimetres per pixel, where the 2D tissue regions agree on one."""
    frame_time_ms: float | None = None
    cine_rate: float | None = None
    """Frames per second (Cine Rate, else Recommended Display Frame Rate)."""
    time_offset_s: float | None = None
    """Seconds since the subject's first acquisition in this export (only when the
    profile keeps temporal information, as the shifted dates do)."""
    device: dict[str, Any] = field(default_factory=dict)
    """Manufacturer, model and transducer type, where the de-identified header keeps them."""
    tag_codes: dict[str, dict[str, str]] = field(default_factory=dict)
    """Coded tags as written to DICOM: field -> code, scheme, meaning (and modifier_*)."""
    tag_sources: dict[str, str] = field(default_factory=dict)
    """Field -> "user" or "header" (the value the original header gave)."""
    tag_notes: list[str] = field(default_factory=list)
    """Where a tag disagreed with the original header, and what was changed to agree."""


def write_json(
    out: TextIO,
    rows: Iterable[ManifestRow],
    *,
    profile: str,
    tag_names: Sequence[str],
    shards: Sequence[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """``manifest.json``, written row by row: 10,000 rows never sit in memory as one
    document. The bytes are those of ``json.dumps(document, indent=1)``.

    ``shards`` names the shard of each row (a combined manifest); ``extra`` adds
    top-level fields after ``files``.
    """
    head = {
        "schema_version": SCHEMA_VERSION,
        "generator": f"ustui {__version__}",
        "profile": profile,
        "tags": list(tag_names),
    }
    out.write(json.dumps(head, indent=1)[:-2] + ',\n "files": [')
    count = 0
    for count, r in enumerate(rows, 1):
        entry = asdict(r) | ({"shard": shards[count - 1]} if shards is not None else {})
        separator = "," if count > 1 else ""
        out.write(separator + "\n  " + json.dumps(entry, indent=1).replace("\n", "\n  "))
    out.write("\n ]" if count else "]")
    for key, value in (extra or {}).items():
        out.write(f",\n {json.dumps(key)}: " + json.dumps(value, indent=1).replace("\n", "\n "))
    out.write("\n}")


def csv_columns(tag_names: Sequence[str]) -> list[str]:
    return [
        "path", "subject", "study_uid", "series_uid", "sop_instance_uid", "sop_class_uid",
        "frames", "rows", "columns", "crop_left", "crop_top", "crop_right", "crop_bottom",
        "crop_requested", "crop_source", "masks", "fan", *[f"tag_{t}" for t in tag_names],
        "transfer_syntax_in", "transfer_syntax_out", "lossy", "reencoded", "note", "sha256",
        "pixel_text", "text_masks", "text_kept",
        "still", "photometric", "bits_allocated", "bits_stored", "spacing_x_mm", "spacing_y_mm",
        "frame_time_ms", "cine_rate", "time_offset_s", "device_manufacturer", "device_model",
        "device_transducer_type", "regions", "tag_codes", "tag_sources", "tag_notes",
    ]  # fmt: skip


def write_csv(
    out: TextIO,
    rows: Iterable[ManifestRow],
    *,
    tag_names: Sequence[str],
    shards: Sequence[str] | None = None,
) -> None:
    """``manifest.csv``: the manifest flattened, one line per row (lists and mappings as
    JSON). ``shards`` adds a first column naming each row's shard."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*(["shard"] if shards is not None else []), *csv_columns(tag_names)])
    for i, r in enumerate(rows):
        writer.writerow([
            *([shards[i]] if shards is not None else []),
            r.path, r.subject, r.study_uid, r.series_uid, r.sop_instance_uid, r.sop_class_uid,
            r.frames, r.rows, r.columns, *r.crop, json.dumps(r.crop_requested), r.crop_source,
            json.dumps(r.masks), json.dumps(r.fan) if r.fan else "",
            *[r.tags.get(t, "") for t in tag_names],
            r.transfer_syntax_in, r.transfer_syntax_out, int(r.lossy), int(r.reencoded),
            r.note, r.sha256, r.pixel_text, json.dumps(r.text_masks),
            json.dumps(r.text_kept, ensure_ascii=False),
            int(r.still), r.photometric, r.bits_allocated, r.bits_stored,
            *(r.spacing_mm or ("", "")), _blank(r.frame_time_ms), _blank(r.cine_rate),
            _blank(r.time_offset_s), r.device.get("manufacturer", ""), r.device.get("model", ""),
            r.device.get("transducer_type", ""), json.dumps(r.regions),
            json.dumps(r.tag_codes), json.dumps(r.tag_sources), json.dumps(r.tag_notes),
        ])  # fmt: skip


def _blank(value: float | None) -> object:
    return "" if value is None else value
