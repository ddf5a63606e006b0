"""The export's manifest: one row per exported file, as CSV and JSON.

Holds only pseudonyms, geometry, tags and encodings: never original identifiers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from ustui import __version__


@dataclass(frozen=True)
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
    """[left, top, right, bottom] in original pixel coordinates."""
    crop_source: str
    masks: list[list[int]]
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
    tag_codes: dict[str, dict[str, str]] = field(default_factory=dict)
    """Coded tags as written to DICOM: field -> code, scheme, meaning (and modifier_*)."""
    tag_sources: dict[str, str] = field(default_factory=dict)
    """Field -> "user" or "header" (the value the original header gave)."""
    tag_notes: list[str] = field(default_factory=list)
    """Where a tag disagreed with the original header, and what was changed to agree."""


def to_json(rows: Sequence[ManifestRow], *, profile: str, tag_names: Sequence[str]) -> bytes:
    document = {
        "generator": f"ustui {__version__}",
        "profile": profile,
        "tags": list(tag_names),
        "files": [asdict(r) for r in rows],
    }
    return json.dumps(document, indent=1).encode()


def to_csv(rows: Sequence[ManifestRow], *, tag_names: Sequence[str]) -> bytes:
    columns = [
        "path", "subject", "study_uid", "series_uid", "sop_instance_uid", "sop_class_uid",
        "frames", "rows", "columns", "crop_left", "crop_top", "crop_right", "crop_bottom",
        "crop_source", "masks", *[f"tag_{t}" for t in tag_names],
        "transfer_syntax_in", "transfer_syntax_out", "lossy", "reencoded", "note", "sha256",
        "pixel_text", "text_masks", "text_kept", "tag_codes", "tag_sources", "tag_notes",
    ]  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([
            r.path, r.subject, r.study_uid, r.series_uid, r.sop_instance_uid, r.sop_class_uid,
            r.frames, r.rows, r.columns, *r.crop, r.crop_source, json.dumps(r.masks),
            *[r.tags.get(t, "") for t in tag_names],
            r.transfer_syntax_in, r.transfer_syntax_out, int(r.lossy), int(r.reencoded),
            r.note, r.sha256, r.pixel_text, json.dumps(r.text_masks),
            json.dumps(r.text_kept, ensure_ascii=False),
            json.dumps(r.tag_codes), json.dumps(r.tag_sources), json.dumps(r.tag_notes),
        ])  # fmt: skip
    return out.getvalue().encode()
