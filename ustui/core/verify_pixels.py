"""Verify's pixel check: identifying text still readable in an export's images.

Each DICOM member of the export is read as ustui reads any input, and its frames
are scanned as an export scans them (first, middle, last, and where the text
changes); its text is judged against the identity the caller gives for it.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset

from ustui.core.boxes import Box
from ustui.core.burned_text import scan_file
from ustui.core.errors import UstuiError
from ustui.core.frames import FrameReader
from ustui.core.inputs import InputFile
from ustui.core.pixel_text import Identity
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


def pixel_leaks(
    export: Path, archive: zipfile.ZipFile, identity_for: Callable[[Dataset], Identity]
) -> Iterator[PixelLeak]:
    """Every identifying line of text read in the images of ``archive``.

    Raises
    ------
    UstuiError
        When no text reader is installed (the pixels cannot be read at all).
    """
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
        try:
            header = read_header(member)
            with FrameReader(member, header) as reader:
                area = Box.full(int(header.Columns), int(header.Rows))
                scan = scan_file(reader, area, identity_for(header))
        except (UstuiError, zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError):
            continue  # an unreadable member is reported by the header search already
        if scan is None:
            raise UstuiError("not read for text: no text reader is installed", source=str(export))
        for line in scan.identifying:
            yield PixelLeak(info.filename, tuple(scan.frames_read), line.box, line.reason or "")
