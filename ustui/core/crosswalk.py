"""The re-identification crosswalk: original identifiers <-> pseudonyms.

Written only where the profile says, never inside the export, owner-only.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from ustui.core.atomic import write_atomic


@dataclass(frozen=True, slots=True)
class CrosswalkRow:
    input_label: str
    patient_id: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    subject: str
    new_study_uid: str
    new_series_uid: str
    new_sop_instance_uid: str
    path_in_zip: str


def crosswalk_path(place: Path, export: Path) -> Path:
    """``place`` itself, or a file named after the export when ``place`` is a folder."""
    if place.is_dir() or str(place).endswith(("/", "\\")):
        return place / f"{export.stem}.crosswalk.csv"
    return place


def write_crosswalk(place: Path, export: Path, rows: Iterable[CrosswalkRow]) -> Path:
    """Write the crosswalk for ``export`` with mode 0600 and return where it went."""
    path = crosswalk_path(place, export)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f.name for f in fields(CrosswalkRow)])
    writer.writerows(astuple(r) for r in rows)
    write_atomic(path, out.getvalue().encode(), mode=0o600)
    return path
