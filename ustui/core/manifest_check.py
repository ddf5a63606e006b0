"""Does an export's manifest describe its DICOM files? (Part of ``ustui verify``.)"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

from pydicom import dcmread

from ustui.core import ml_meta


def manifest_problems(archive: zipfile.ZipFile) -> Iterator[str]:
    """One line per manifest field that disagrees with the file it describes."""
    try:
        rows: list[dict[str, Any]] = json.loads(archive.read("manifest.json"))["files"]
    except (KeyError, ValueError, TypeError):
        yield "manifest.json: missing or unreadable"
        return
    names = set(archive.namelist())
    for row in rows:
        path = str(row.get("path", ""))
        if path not in names:
            yield f"manifest.json: {path or 'a row'} names no file in the export"
            continue
        try:
            with archive.open(path) as stream:
                sha = hashlib.sha256()
                while chunk := stream.read(1 << 20):
                    sha.update(chunk)
                digest = sha.hexdigest()
                stream.seek(0)
                ds = dcmread(stream, stop_before_pixels=True)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError):
            continue  # a damaged member is reported UNREADABLE by the header search
        written = {
            "sha256": digest,
            "sop_instance_uid": str(ds.SOPInstanceUID),
            "rows": int(ds.Rows),
            "columns": int(ds.Columns),
            "frames": int(ds.get("NumberOfFrames", 1) or 1),
            "photometric": str(ds.PhotometricInterpretation),
            "bits_allocated": int(ds.BitsAllocated),
            "bits_stored": int(ds.BitsStored),
            "regions": ml_meta.regions(ds),
            "frame_time_ms": ml_meta.frame_time_ms(ds) if row.get("frames", 1) > 1 else None,
            "device": ml_meta.device(ds),
        }
        for field, value in written.items():
            if field in row and row[field] != value:
                yield f"{path}: manifest {field} does not match the file"
