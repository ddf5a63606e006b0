"""Verify's pixel check: identifying text still readable in an export's images.

Each DICOM member of the export is read as ustui reads any input, and its frames
are scanned like an export scans them (first, middle, last, and where the text
changes). A member is judged against the identity of its own original, found by
recomputing the pseudonymous SOP Instance UID with the key; members whose original
is not among the inputs (another key, another machine) are judged against every
original's identity.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset

from ustui.core.boxes import Box
from ustui.core.burned_text import scan_file
from ustui.core.errors import UstuiError
from ustui.core.frames import FrameReader
from ustui.core.inputs import InputFile
from ustui.core.paths import data_dir
from ustui.core.pixel_text import Identity, identity_of
from ustui.core.pseudonyms import KEY_ENV, Pseudonyms, load_key
from ustui.core.reading import read_header


@dataclass(frozen=True)
class PixelLeak:
    """Identifying text read in an exported image (the text itself is not kept)."""

    member: str
    frames: tuple[int, ...]
    """The frames that were read (the text was found in at least one of them)."""
    box: Box
    reason: str
    """What it matched: name, id, date, place, label or number."""


def existing_key(key_file: Path | None) -> bytes | None:
    """The key the export was probably made with, without creating one."""
    try:
        if key_file is not None or os.environ.get(KEY_ENV) or (data_dir() / "key").exists():
            return load_key(key_file)
    except UstuiError:
        pass
    return None


def identities_by_uid(originals: Sequence[Dataset], key: bytes | None) -> dict[str, Identity]:
    """Each original's identity under the SOP Instance UID its export carries."""
    if key is None:
        return {}
    pseudonyms = Pseudonyms(key)
    return {
        pseudonyms.uid(str(header.SOPInstanceUID)): identity_of(header)
        for header in originals
        if header.get("SOPInstanceUID")
    }


def pixel_leaks(
    export: Path,
    archive: zipfile.ZipFile,
    originals: Sequence[Dataset],
    key: bytes | None,
) -> Iterator[PixelLeak]:
    """Every identifying line of text read in the images of ``archive``.

    Raises
    ------
    UstuiError
        When no text reader is installed (the pixels cannot be read at all).
    """
    by_uid = identities_by_uid(originals, key)
    everyone = Identity()
    for header in originals:
        everyone = everyone.merge(identity_of(header))
    for info in archive.infolist():
        if info.is_dir() or not info.filename.lower().endswith(".dcm"):
            continue
        member = InputFile(
            key=f"{export}::{info.filename}",
            label=info.filename,
            size=info.file_size,
            path=export,
            member=info.filename,
        )
        header = read_header(member)
        identity = by_uid.get(str(header.get("SOPInstanceUID", "")), everyone)
        with FrameReader(member, header) as reader:
            area = Box.full(int(header.Columns), int(header.Rows))
            scan = scan_file(reader, area, identity)
        if scan is None:
            raise UstuiError("pixels not read: no text reader is installed", source=str(export))
        for line in scan.identifying:
            reason = line.reason or ""
            yield PixelLeak(info.filename, tuple(scan.frames_read), line.box, reason)
