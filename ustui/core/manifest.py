"""The export's manifest: one row per exported file, as CSV and JSON.

Holds only pseudonyms, geometry, tags and encodings: never original identifiers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

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
        "crop_requested", "crop_source", "masks", "fan", *[f"tag_{t}" for t in tag_names],
        "transfer_syntax_in", "transfer_syntax_out", "lossy", "reencoded", "note", "sha256",
    ]  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([
            r.path, r.subject, r.study_uid, r.series_uid, r.sop_instance_uid, r.sop_class_uid,
            r.frames, r.rows, r.columns, *r.crop, json.dumps(r.crop_requested), r.crop_source,
            json.dumps(r.masks), json.dumps(r.fan) if r.fan else "",
            *[r.tags.get(t, "") for t in tag_names],
            r.transfer_syntax_in, r.transfer_syntax_out, int(r.lossy), int(r.reencoded),
            r.note, r.sha256,
        ])  # fmt: skip
    return out.getvalue().encode()
