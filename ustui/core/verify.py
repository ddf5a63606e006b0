"""Verification of an export against its originals: does any identifying value survive?

Every identifying value of every original (see ``deid.identifying_values``) is
searched, case-insensitively and as a whole word, in the ZIP's member names, the
manifests, every header element at any depth including the file meta, the raw
header bytes, the metadata segments of compressed frames, any bytes after the
pixel data, and the same inside ZIPs held in the ZIP.

What a finding means (:class:`Kind`):

- LEAK: a value the export's de-identification must have removed.
- KEPT: a value the Basic Profile removes but an option the file declares keeps on
  purpose (its De-identification Method Code Sequence: times and patient size
  under Retain Modified Dates and Retain Patient Characteristics, ...). Reported,
  not a failure.
- UNCONFIRMED: a date equal to an original date, in a file whose dates were
  shifted, when the key is not at hand: a shifted date and an original one then
  look alike. A failure until verified with the key.
- UNREADABLE, NOT_SEARCHED: members that could not be read or searched.

With the pseudonym key (the profile's team key, ``$USTUI_KEY_FILE`` or the
personal key), each exported file is paired with its original through its
keyed SOP Instance UID. Its values are then searched against its own source
patient's values only (patients grouped as the export grouped them, see
``subjects``), and a date equal to an original date of that patient counts only
if it is not the shifted image of another of the patient's dates. Members that
pair with no original (an original copied into the ZIP, say) and the manifests
are searched for every patient's values.

The exported images are read for burned-in text too (``verify_pixels``): text
that identifies the member's own patient (every patient's, when unpaired) is a
LEAK named by member, frames and box, never by its text. Without a text reader
the images are NOT SEARCHED (``pixels=False`` skips them on purpose). Manifest
fields that disagree with their files are MISMATCHes.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import IO

from pydicom import Dataset, dcmread
from pydicom.dataelem import DataElement
from pydicom.encaps import generate_fragments
from pydicom.errors import InvalidDicomError

from ustui.core.deid import METHOD_CODES, corpus_identifying_values, shift_date
from ustui.core.errors import UstuiError
from ustui.core.inputs import InputFile, discover
from ustui.core.manifest_check import manifest_problems
from ustui.core.pixel_text import Identity, identity_of
from ustui.core.profiles import DeidSettings, load_profiles
from ustui.core.pseudonyms import Pseudonyms, dataset_text, find_key
from ustui.core.reading import read_header
from ustui.core.subjects import group_patients
from ustui.core.verify_pixels import pixel_leaks

#: How many bytes of a compressed frame are searched for metadata segments (APPn, COM).
FRAME_HEAD_BYTES = 4096
#: Bound on bytes searched in one non-DICOM member or trailer (a hostile ZIP cannot exhaust memory).
MAX_SEARCH_BYTES = 64 * 1024 * 1024
#: How deep ZIPs inside the ZIP are opened.
MAX_ZIP_DEPTH = 3
#: Value representations of binary or numeric data, searched for text needles only.
_BINARY_VRS = frozenset(
    {"OB", "OW", "OD", "OF", "OL", "OV", "UN", "US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT"}
)
_OPTION_OF_CODE = {code: name for name, (code, _) in METHOD_CODES.items()}
#: A DA value, or a DT value to the day at least.
_DATE = re.compile(r"(?:1[89]|2\d)\d{6}(?:\d{0,6}(?:\.\d{1,6})?(?:[+-]\d{4})?)?")
#: Top-level dates that pair an export's date with its original's, to measure the shift.
_PAIRING_DATES = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")


class Kind(StrEnum):
    """What a finding is; all but KEPT make verification fail."""

    LEAK = "LEAK"
    """An original value the de-identification must have removed."""
    KEPT = "KEPT"
    """An original value an option the file declares keeps on purpose."""
    UNCONFIRMED = "UNCONFIRMED"
    """An original date in a date-shifted file, not checkable without the key."""
    UNREADABLE = "UNREADABLE"
    """A damaged member: not searched."""
    MISMATCH = "MISMATCH"
    """A manifest field that does not match the file it describes."""
    NOT_SEARCHED = "NOT SEARCHED"
    """A member that was not searched (too large, too deeply nested, encrypted)."""


@dataclass(frozen=True)
class Finding:
    """One thing found in the export (an original value itself is never kept)."""

    kind: Kind
    where: str
    """Member name and element, or '(member name)' for a file name."""
    source: str
    """Which input and attribute the value came from, or why the member was not searched."""


@dataclass
class VerifyReport:
    files_checked: int = 0
    values_searched: int = 0
    findings: list[Finding] = field(default_factory=list)
    problems: list[UstuiError] = field(default_factory=list)
    """Originals that could not be read (their values were not searched)."""
    paired: bool = False
    """Whether the key paired exported files with their originals (else each is searched
    for every original's values)."""

    def of(self, *kinds: Kind) -> list[Finding]:
        return [f for f in self.findings if f.kind in kinds]

    @property
    def leaks(self) -> list[Finding]:
        return self.of(Kind.LEAK)

    @property
    def passed(self) -> bool:
        return all(f.kind == Kind.KEPT for f in self.findings)

    def as_json(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "files_checked": self.files_checked,
            "values_searched": self.values_searched,
            "paired_with_originals": self.paired,
            "findings": [_as_dict(f) for f in self.findings],
            "leaks": [_as_dict(f) for f in self.leaks],
            "originals_not_read": [str(p) for p in self.problems],
        }


def _as_dict(finding: Finding) -> dict[str, str]:
    return {"kind": finding.kind.value, "where": finding.where, "source": finding.source}


def verify_export(
    export: Path,
    inputs: Sequence[str | Path],
    *,
    key_file: Path | None = None,
    pixels: bool = True,
) -> VerifyReport:
    """Search ``export`` for identifying values of the DICOM files under ``inputs``.

    Raises
    ------
    UstuiError
        When the export is no readable ZIP, an input path does not exist, or no
        input holds a readable DICOM file (nothing to compare with: never a pass).
    """
    try:
        archive = zipfile.ZipFile(export)
    except (OSError, zipfile.BadZipFile) as exc:
        raise UstuiError(f"not a readable ZIP archive ({exc})", source=str(export)) from None
    for path in inputs:
        if not Path(path).exists():
            raise UstuiError("does not exist (--against)", source=str(path))
    report = VerifyReport()
    with archive:
        profile = _manifest_profile(archive)
        originals = _Originals.read(inputs, report)
        key = _key(key_file, profile)
        pseudonyms = Pseudonyms(key) if key else None
        search = _Search(originals, pseudonyms, profile, report)
        report.values_searched = len(originals.values(profile.options if profile else ()).any)
        search.archive(archive, prefix="", depth=0)
        for problem in manifest_problems(archive):
            search.finding(Kind.MISMATCH, "manifest.json", problem)
        if pixels:
            search.pixels(export, archive)
    return report


def _manifest_profile(archive: zipfile.ZipFile) -> DeidSettings | None:
    """The de-identification settings of the profile the export's manifest names."""
    try:
        name = json.loads(archive.read("manifest.json")).get("profile")
        return load_profiles()[name].deid
    except (KeyError, ValueError, AttributeError, UstuiError):
        return None


def _key(key_file: Path | None, profile: DeidSettings | None) -> bytes | None:
    """The pseudonym key: the one named, else the one the export's profile used."""
    if key_file is not None:
        return find_key(key_file)  # named by the user: a missing key is an error
    try:
        return find_key(profile.key_file if profile else None)
    except UstuiError:
        return None


# --- the originals ------------------------------------------------------------------


@dataclass(frozen=True)
class _Values:
    """Identifying values (lower case) of a set of originals, each with its owner."""

    searched: dict[str, int]
    """Values to report as leaks -> index of an original holding it."""
    kept: dict[str, int]
    """Values the declared options keep -> index of an original holding it."""

    @cached_property
    def any(self) -> dict[str, int]:
        return {**self.kept, **self.searched}


@dataclass
class _Originals:
    sources: list[InputFile]
    headers: list[Dataset]
    groups: list[int]
    """Per original, the index of the first original of its patient."""
    _cache: dict[tuple[tuple[str, ...], int | None], _Values] = field(default_factory=dict)
    _per_original: dict[tuple[str, ...], list[set[str]]] = field(default_factory=dict)

    @classmethod
    def read(cls, inputs: Sequence[str | Path], report: VerifyReport) -> _Originals:
        found = discover(inputs)
        report.problems.extend(found.problems)
        sources, headers = [], []
        for source in found.files:
            try:
                headers.append(read_header(source))
                sources.append(source)
            except UstuiError as exc:
                report.problems.append(exc)
        if not headers:
            where = ", ".join(str(p) for p in inputs)
            raise UstuiError("no readable DICOM file to compare the export with", source=where)
        return cls(sources, headers, group_patients(headers))

    def values(self, options: Iterable[str], group: int | None = None) -> _Values:
        """The values of one patient (``group``) or of all, under the declared ``options``."""
        options = tuple(sorted(options))
        cached = self._cache.get((options, group))
        if cached is None:
            basic = self._owned(self._identifying(()), group)
            searched = self._owned(self._identifying(options), group)
            kept = {v: i for v, i in basic.items() if v not in searched}
            cached = self._cache[(options, group)] = _Values(searched, kept)
        return cached

    def _identifying(self, options: tuple[str, ...]) -> list[set[str]]:
        """Per original, its identifying values under ``options`` (computed once)."""
        found = self._per_original.get(options)
        if found is None:
            settings = DeidSettings(options=options)
            found = self._per_original[options] = corpus_identifying_values(
                self.headers, settings=settings
            )
        return found

    def _owned(self, per_original: list[set[str]], group: int | None) -> dict[str, int]:
        owners: dict[str, int] = {}
        for i, values in enumerate(per_original):
            if group is None or self.groups[i] == group:
                for value in values:
                    owners.setdefault(value.lower(), i)
        return owners

    def label(self, index: int, needle: str) -> str:
        return f"{self.sources[index].label}: {_attribute_of(self.headers[index], needle)}"

    def pairing(self, pseudonyms: Pseudonyms) -> dict[str, int]:
        """Keyed SOP Instance UID -> the index of the original it was made from."""
        return {
            pseudonyms.uid(uid): i
            for i, header in enumerate(self.headers)
            if (uid := dataset_text(header, "SOPInstanceUID"))
        }


# --- searching the export -----------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    """One DICOM member's identity after de-identification, as far as verify needs it."""

    options: tuple[str, ...]
    """The options it declares (De-identification Method Code Sequence)."""
    dataset: Dataset


@dataclass
class _Search:
    originals: _Originals
    pseudonyms: Pseudonyms | None
    profile: DeidSettings | None
    report: VerifyReport

    @cached_property
    def pairing(self) -> dict[str, int]:
        return self.originals.pairing(self.pseudonyms) if self.pseudonyms else {}

    def archive(self, archive: zipfile.ZipFile, *, prefix: str, depth: int) -> None:
        for info in archive.infolist():
            name = prefix + info.filename
            self.report.files_checked += 1
            try:
                with archive.open(info) as stream:
                    head = stream.read(4)
                    stream.seek(0)
                    if head == b"PK\x03\x04":
                        self._nested(stream, info, name, depth)
                        continue
                    texts, member = _texts(stream, name)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
                self.finding(Kind.UNREADABLE, name, f"damaged ({type(exc).__name__})")
                continue
            except RuntimeError as exc:  # zipfile: encrypted member
                self.finding(Kind.NOT_SEARCHED, name, f"cannot be opened ({exc})")
                continue
            texts.insert(0, (f"{name} (member name)", name, False))
            self._member(texts, member)

    def _nested(self, stream: IO[bytes], info: zipfile.ZipInfo, name: str, depth: int) -> None:
        if depth >= MAX_ZIP_DEPTH or info.file_size > MAX_SEARCH_BYTES:
            reason = "a ZIP nested too deeply" if depth >= MAX_ZIP_DEPTH else "a ZIP too large"
            self.finding(Kind.NOT_SEARCHED, name, reason)
            return
        self._member([(f"{name} (member name)", name, False)], None)
        with zipfile.ZipFile(io.BytesIO(stream.read())) as inner:
            self.archive(inner, prefix=f"{name}!/", depth=depth + 1)

    def _member(self, texts: list[tuple[str, str, bool]], member: _Member | None) -> None:
        originals = self.originals
        if member is None:  # manifests and other files: the export's own settings
            options = self.profile.options if self.profile else ()
            values, group, original = originals.values(options), None, None
        else:
            original = self.pairing.get(dataset_text(member.dataset, "SOPInstanceUID"))
            self.report.paired |= original is not None
            group = None if original is None else originals.groups[original]
            values = originals.values(member.options, group)
        shifted = self._shifted_dates(member, original, group) if member else None
        for where, needle in _search(texts, values.any):
            owner = values.any[needle]
            source = originals.label(owner, needle)
            if needle in values.kept:
                self.finding(Kind.KEPT, where, source)
            elif shifted is None and _DATE.fullmatch(needle) and _declares_shift(member):
                self.finding(Kind.UNCONFIRMED, where, source)
            elif not (shifted and needle in shifted):
                self.finding(Kind.LEAK, where, source)

    def _shifted_dates(
        self, member: _Member, original: int | None, group: int | None
    ) -> set[str] | None:
        """The patient's original dates moved by the member's shift: dates that may
        equal other original dates by chance. None when the shift is unknown."""
        if original is None:
            return None
        if not _declares_shift(member):
            return set()
        offset = _offset(self.originals.headers[original], member.dataset)
        if offset is None:
            return None
        dates = [v for v in self.originals.values((), group).any if _DATE.fullmatch(v)]
        moved = (shift_date(v, "DT", offset) for v in dates)
        return {m for m in moved if m}

    def pixels(self, export: Path, archive: zipfile.ZipFile) -> None:
        """Identifying text still readable in the exported images."""
        headers = self.originals.headers
        everyone = Identity()
        for header in headers:
            everyone = everyone.merge(identity_of(header))
        # Unpaired, a member is judged against every patient: their short name parts
        # ("US", "OB") then match unrelated words of another file's overlay.
        everyone = replace(everyone, names=frozenset(n for n in everyone.names if len(n) >= 4))

        def identity_for(member: Dataset) -> Identity:
            original = self.pairing.get(dataset_text(member, "SOPInstanceUID"))
            return everyone if original is None else identity_of(headers[original])

        try:
            for leak in pixel_leaks(export, archive, identity_for):
                frames = ",".join(str(f + 1) for f in leak.frames)
                where = f"{leak.member} pixels, frame(s) {frames}, box {leak.box.as_list()}"
                self.finding(Kind.LEAK, where, f"text matching a {leak.reason}")
        except UstuiError as exc:
            self.finding(Kind.NOT_SEARCHED, f"{export.name} images", f"{exc.reason}")

    def finding(self, kind: Kind, where: str, source: str) -> None:
        self.report.findings.append(Finding(kind, where, source))


def _declares_shift(member: _Member | None) -> bool:
    return member is not None and "retain-modified-dates" in member.options


def _offset(original: Dataset, exported: Dataset) -> int | None:
    """Days the exported file's dates lie before its original's (from a shared date)."""
    for keyword in _PAIRING_DATES:
        before, after = _day(original, keyword), _day(exported, keyword)
        if before and after:
            return (before - after).days
    return None


def _day(ds: Dataset, keyword: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(dataset_text(ds, keyword)[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _search(
    texts: list[tuple[str, str, bool]], needles: dict[str, int]
) -> Iterator[tuple[str, str]]:
    """(place, needle) for each needle found in a member's texts."""
    # Binary data (lookup tables, raw header bytes) holds digit runs by chance.
    by_kind = {False: sorted(needles), True: sorted(n for n in needles if _textlike(n))}
    for binary, wanted in by_kind.items():
        places = [(where, text) for where, text, is_binary in texts if is_binary == binary]
        # One pass over the whole member first: most members hold no leak at all.
        wanted = _found(wanted, "\0".join(text for _, text in places))
        for where, text in places if wanted else []:
            for needle in _found(wanted, text):
                yield where, needle


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


def _texts(stream: IO[bytes], name: str) -> tuple[list[tuple[str, str, bool]], _Member | None]:
    """(place, text, is binary data) of everything in one member that could carry an
    identifier, and what the member says of itself when it is DICOM."""
    if stream.read(132)[128:132] != b"DICM":
        stream.seek(0)
        return [(name, stream.read(MAX_SEARCH_BYTES).decode("latin-1"), False)], None
    stream.seek(0)
    try:
        ds = dcmread(stream, stop_before_pixels=True)
    except (InvalidDicomError, ValueError, EOFError, OSError, KeyError):
        stream.seek(0)
        return [(name, stream.read(MAX_SEARCH_BYTES).decode("latin-1"), False)], None
    header_end = stream.tell()  # pydicom stops at the Pixel Data tag
    stream.seek(0)
    texts = [(f"{name} (header bytes)", stream.read(header_end).decode("latin-1"), True)]
    for where, element in [*_elements(ds.file_meta, "meta "), *_elements(ds, "")]:
        texts.append((f"{name} {where}", _element_text(element), element.VR in _BINARY_VRS))
    texts.extend((f"{name} {where}", text, True) for where, text in _pixel_texts(stream))
    return texts, _Member(_declared_options(ds), ds)


def _declared_options(ds: Dataset) -> tuple[str, ...]:
    """The options a de-identified file declares in its method code sequence."""
    try:
        items = ds.get("DeidentificationMethodCodeSequence") or []
        codes = [str(item.get("CodeValue", "")) for item in items]
    except Exception:  # an undecodable sequence declares nothing
        return ()
    names = (_OPTION_OF_CODE.get(code) for code in codes)
    return tuple(sorted(n for n in names if n and n not in ("basic", "clean-pixels")))


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
    elements = [*_elements(header.file_meta, "meta "), *_elements(header, "")]
    texts = [(where, _element_text(element)) for where, element in elements]
    # An element holding just the value first: a time may also sit inside a UID.
    for where, text in texts:
        if needle in (v.strip(" \x00").lower() for v in text.split("\\")):
            return where
    for where, text in texts:
        if _found([needle], text):
            return where
    return "identifying value"
