"""Verification of an export against its originals: does any identifying value survive?

Every identifying value of every original (see ``deid.identifying_values``) is
searched, case-insensitively, in the ZIP's member names, the manifests, every
header element at any depth including the file meta, the raw header bytes, the
metadata segments of compressed frames and any bytes after the pixel data.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pydicom import Dataset, dcmread
from pydicom.dataelem import DataElement
from pydicom.encaps import generate_fragments
from pydicom.errors import InvalidDicomError

from ustui.core.deid import corpus_identifying_values
from ustui.core.errors import UstuiError
from ustui.core.inputs import InputFile, discover
from ustui.core.manifest_check import manifest_problems
from ustui.core.profiles import DeidSettings, load_profiles
from ustui.core.reading import read_header
from ustui.core.verify_pixels import PixelLeak, existing_key, pixel_leaks

#: How many bytes of a compressed frame are searched for metadata segments (APPn, COM).
FRAME_HEAD_BYTES = 4096
#: Bound on bytes searched in one non-DICOM member or trailer (a hostile ZIP cannot exhaust memory).
MAX_SEARCH_BYTES = 64 * 1024 * 1024
#: Value representations of binary or numeric data, searched for text needles only.
_BINARY_VRS = frozenset(
    {"OB", "OW", "OD", "OF", "OL", "OV", "UN", "US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT"}
)


@dataclass(frozen=True)
class Leak:
    """An original identifying value found in the export (the value itself is not kept)."""

    where: str
    """Member name and element, or 'member name' for a file name."""
    source: str
    """Which input and attribute the value came from."""


@dataclass
class VerifyReport:
    files_checked: int = 0
    values_searched: int = 0
    leaks: list[Leak] = field(default_factory=list)
    problems: list[UstuiError] = field(default_factory=list)
    """Originals that could not be read (their values were not searched)."""
    unreadable: list[str] = field(default_factory=list)
    """Members of the export that could not be read, so not searched: a failure too."""
    pixel_leaks: list[PixelLeak] = field(default_factory=list)
    """Identifying text read in the exported images."""
    pixels_not_read: str | None = None
    """Why the images were not read for text, if they were not."""
    manifest_problems: list[str] = field(default_factory=list)
    """Manifest fields that do not match the files they describe."""

    @property
    def passed(self) -> bool:
        return not (self.leaks or self.unreadable or self.pixel_leaks or self.manifest_problems)


def verify_export(
    export: Path, inputs: Sequence[str | Path], *, pixels: bool = True
) -> VerifyReport:
    """Search ``export`` for identifying values of the DICOM files under ``inputs``.

    Values that the export's profile (named in its manifest) keeps on purpose are
    not searched; without a known profile, everything the Basic Profile removes is.
    With ``pixels``, the images are also read for identifying burned-in text.
    """
    report = VerifyReport()
    try:
        archive = zipfile.ZipFile(export)
    except (OSError, zipfile.BadZipFile) as exc:
        raise UstuiError(f"not a readable ZIP archive ({exc})", source=str(export)) from None
    with archive:
        settings = _profile_settings(archive)
        found = discover(inputs)
        report.problems.extend(found.problems)
        originals: dict[str, tuple[InputFile, Dataset]] = {}
        for source in found.files:
            try:
                originals[source.key] = (source, read_header(source))
            except UstuiError as exc:
                report.problems.append(exc)
        headers = [header for _, header in originals.values()]
        owners: dict[str, str] = {}
        for key, values in zip(
            originals, corpus_identifying_values(headers, settings=settings), strict=True
        ):
            for value in values:
                owners.setdefault(value.lower(), key)
        report.values_searched = len(owners)
        # Binary data (lookup tables, raw header bytes) holds digit runs by chance.
        needles = {False: sorted(owners), True: sorted(n for n in owners if _textlike(n))}
        for info in archive.infolist():
            report.files_checked += 1
            try:
                texts = list(_texts(archive, info))
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
                report.unreadable.append(f"{info.filename} ({type(exc).__name__})")
                continue
            for binary, wanted in needles.items():
                places = [(where, text) for where, text, is_binary in texts if is_binary == binary]
                # One pass over the whole member first: most members hold no leak at all.
                wanted = _found(wanted, "\0".join(text for _, text in places))
                for where, text in places if wanted else []:
                    for needle in _found(wanted, text):
                        source, header = originals[owners[needle]]
                        attribute = _attribute_of(header, needle)
                        report.leaks.append(
                            Leak(where=where, source=f"{source.label}: {attribute}")
                        )
        report.manifest_problems = list(manifest_problems(archive))
        if pixels:
            pseudonym_key = existing_key(settings.key_file if settings else None)
            try:
                report.pixel_leaks = list(pixel_leaks(export, archive, headers, pseudonym_key))
            except UstuiError as exc:
                report.pixels_not_read = exc.reason
    return report


def _profile_settings(archive: zipfile.ZipFile) -> DeidSettings | None:
    """The de-identification settings of the profile the export's manifest names."""
    try:
        name = json.loads(archive.read("manifest.json")).get("profile")
        return load_profiles()[name].deid
    except (KeyError, ValueError, AttributeError, UstuiError):
        return None


def _found(needles: list[str], text: str) -> list[str]:
    """The lower-case ``needles`` that occur in ``text`` as whole words (case ignored):
    an ID or time does not match inside a long pseudonymous UID, nor "Mary" in "PRIMARY".
    """
    lowered = text.lower()
    found = []
    for needle in needles:
        start = lowered.find(needle)
        while start >= 0:
            end = start + len(needle)
            if not (needle[0].isalnum() and _word_char(lowered, start - 1)) and not (
                needle[-1].isalnum() and _word_char(lowered, end)
            ):
                found.append(needle)
                break
            start = lowered.find(needle, start + 1)
    return found


def _word_char(text: str, index: int) -> bool:
    return 0 <= index < len(text) and text[index].isascii() and text[index].isalnum()


def _textlike(needle: str) -> bool:
    """Worth searching for in binary data: not a number, not one repeated character
    (lookup tables and raw bytes hold such runs by chance)."""
    return not needle.isdigit() and len(set(needle)) >= 3


def _texts(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[tuple[str, str, bool]]:
    """(place, text, is binary data) of everything in one member that could carry an identifier."""
    name = info.filename
    yield f"{name} (member name)", name, False
    with archive.open(info) as stream:
        if stream.read(132)[128:132] != b"DICM":
            stream.seek(0)
            yield name, stream.read(MAX_SEARCH_BYTES).decode("latin-1"), False
            return
        stream.seek(0)
        try:
            ds = dcmread(stream, stop_before_pixels=True)
        except (InvalidDicomError, ValueError, EOFError, OSError, KeyError):
            stream.seek(0)
            yield name, stream.read(MAX_SEARCH_BYTES).decode("latin-1"), False
            return
        header_end = stream.tell()  # pydicom stops at the Pixel Data tag
        stream.seek(0)
        yield f"{name} (header bytes)", stream.read(header_end).decode("latin-1"), True
        for where, element in [*_elements(ds.file_meta, "meta "), *_elements(ds, "")]:
            yield f"{name} {where}", _element_text(element), element.VR in _BINARY_VRS
        for where, text in _pixel_texts(stream):
            yield f"{name} {where}", text, True


def _elements(ds: Dataset, prefix: str) -> Iterator[tuple[str, DataElement]]:
    for element in ds:
        where = f"{prefix}{element.tag} {element.keyword or 'private'}".strip()
        if element.VR == "SQ":
            for i, item in enumerate(element.value or []):
                yield from _elements(item, f"{where}[{i}] > ")
        else:
            yield where, element


def _element_text(element: DataElement) -> str:
    value = element.value
    if isinstance(value, bytes | bytearray):
        return bytes(value[:65536]).decode("latin-1")
    if isinstance(value, Iterable) and not isinstance(value, str):
        return "\\".join(str(v) for v in value)
    return str(value)


def _pixel_texts(stream: IO[bytes]) -> Iterator[tuple[str, str]]:
    """Metadata segments of compressed frames, and any bytes after the pixel data.

    ``stream`` is positioned at the Pixel Data element of an explicit VR little
    endian file (what ustui writes).
    """
    element_header = stream.read(12)
    if len(element_header) < 12:
        return
    length = int.from_bytes(element_header[8:12], "little")
    if length != 0xFFFFFFFF:
        stream.seek(length, io.SEEK_CUR)
    else:
        for i, fragment in enumerate(generate_fragments(stream)):
            if i:  # fragment 0 is the basic offset table
                yield f"frame fragment {i}", fragment[:FRAME_HEAD_BYTES].decode("latin-1")
    rest = stream.read(MAX_SEARCH_BYTES)
    if rest.strip(b"\x00"):
        yield "bytes after pixel data", rest.decode("latin-1")


def _attribute_of(header: Dataset, needle: str) -> str:
    """The keyword of the original attribute that held ``needle`` (for the report)."""
    for where, element in _elements(header.file_meta, "meta "):
        if needle in _element_text(element).lower():
            return where
    for where, element in _elements(header, ""):
        if needle in _element_text(element).lower():
            return where
    return "identifying value"
