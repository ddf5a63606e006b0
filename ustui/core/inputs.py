"""Finding the files to work on: DICOM files, folders (recursive) and ZIP archives.

ZIP members are read in place, never extracted. Members whose names could
escape a folder, encrypted members and members that look like ZIP bombs are
refused with a reason.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from ustui.core.errors import UstuiError
from ustui.core.sniff import HEAD_BYTES, is_dicomdir, is_ustui_export, looks_like_dicom

#: Members larger than this, once decompressed, are refused.
MAX_MEMBER_BYTES = 8 * 1024**3
#: Members that inflate more than this many times (and to over 64 MiB) are refused.
MAX_RATIO = 200
_RATIO_FLOOR = 64 * 1024**2
#: Compression methods Python's zipfile can read.
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
EARLIER_EXPORT = "an earlier ustui export (its manifest says so): not exported again"


@dataclass(frozen=True)
class InputFile:
    """One file to work on, on disk or inside a ZIP archive."""

    key: str
    """Stable identity (resolved path, or ``archive::member``); never written to exports."""
    label: str
    """What the user sees: the path as given, or ``archive/member``."""
    size: int
    path: Path
    """The file itself, or the archive that holds it."""
    member: str | None = None
    """The member name inside ``path`` when that is a ZIP archive."""

    def open(self) -> IO[bytes]:
        """A seekable binary stream of the file's bytes (the caller closes it)."""
        if self.member is None:
            return self.path.open("rb")
        # The archive's file stays open until the member stream is closed too.
        with zipfile.ZipFile(self.path) as archive:
            return archive.open(self.member)


@dataclass
class Discovery:
    """The files found under some paths, the paths refused with reasons, and the files
    met while searching folders or archives that are not meant as inputs."""

    files: list[InputFile] = field(default_factory=list)
    problems: list[UstuiError] = field(default_factory=list)
    ignored: list[UstuiError] = field(default_factory=list)
    """Non-DICOM files, DICOMDIRs and earlier ustui exports met while searching: not
    problems, only counted (a path named on its own is a problem instead)."""


def ignored_summary(ignored: Sequence[tuple[str, str]]) -> str:
    """One line counting the (label, reason) files met while searching that are not inputs."""
    exports = sum(reason == EARLIER_EXPORT for _, reason in ignored)
    others = len(ignored) - exports
    parts = [f"{others} non-DICOM file(s)"] if others else []
    parts += [f"{exports} earlier ustui export(s)"] if exports else []
    return f"Ignored {' and '.join(parts)} found in folders (not exported)."


def _natural_key(text: str) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def discover(paths: Sequence[str | Path]) -> Discovery:
    """Every candidate file under ``paths``, in natural order, without duplicates."""
    found = Discovery()
    seen: set[str] = set()
    for raw in paths:
        for item in _expand(Path(raw), str(raw), found, walked=False):
            if item.key not in seen:
                seen.add(item.key)
                found.files.append(item)
    found.files.sort(key=lambda f: _natural_key(f.label))
    return found


def _expand(path: Path, label: str, found: Discovery, *, walked: bool) -> Iterable[InputFile]:
    try:
        st = path.stat()
    except FileNotFoundError:
        kind = "broken symlink" if path.is_symlink() else "no such file or folder"
        found.problems.append(UstuiError(kind, source=label))
        return
    except OSError as exc:
        found.problems.append(UstuiError(f"cannot read: {exc.strerror}", source=label))
        return
    if stat.S_ISDIR(st.st_mode):
        yield from _walk(path, label, found)
    elif not stat.S_ISREG(st.st_mode):
        found.problems.append(UstuiError("not a regular file", source=label))
    elif path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
        yield from _members(path, label, found, walked=walked)
    else:
        head = _head(path)
        if head.startswith(b"PK\x03\x04") and head[128:132] != b"DICM":
            # A ZIP whose central directory (at its end) is missing: cut short or damaged.
            found.problems.append(UstuiError("truncated or damaged ZIP archive", source=label))
        elif walked and not _is_candidate(path.name, head, st.st_size):
            found.ignored.append(UstuiError(_not_dicom(path.name, head), source=label))
        else:
            yield InputFile(key=str(path.resolve()), label=label, size=st.st_size, path=path)


def _head(path: Path) -> bytes:
    """The first bytes of a file; empty when it cannot be read (reading it later says why)."""
    try:
        with path.open("rb") as f:
            return f.read(HEAD_BYTES)
    except OSError:
        return b""


def _is_candidate(name: str, head: bytes, size: int) -> bool:
    """Whether a file met while searching is worth reading as an image. Files that
    cannot be read or are empty stay candidates: reading them reports why."""
    if size == 0 or not head:
        return True
    return looks_like_dicom(head, size) and not is_dicomdir(name, head)


def _not_dicom(name: str, head: bytes) -> str:
    return "DICOMDIR (a directory index)" if is_dicomdir(name, head) else "not a DICOM file"


def _walk(root: Path, label: str, found: Discovery) -> Iterable[InputFile]:
    visited: set[tuple[int, int]] = set()

    def unreadable(exc: OSError) -> None:
        # A folder that cannot be listed: say so, or its files would be missed silently.
        where = os.path.join(label, os.path.relpath(exc.filename or root, root))
        reason = f"cannot read the folder: {exc.strerror or type(exc).__name__}"
        found.problems.append(UstuiError(reason, source=os.path.normpath(where)))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=unreadable):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in visited:
            # A symlink loop or a second link to a folder already searched.
            dirnames.clear()
            continue
        visited.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            where = os.path.join(label, os.path.relpath(path, root))
            yield from _expand(path, where, found, walked=True)


def _members(archive: Path, label: str, found: Discovery, *, walked: bool) -> Iterable[InputFile]:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            earlier_export = is_ustui_export(zf)
            heads = {i.filename: _member_head(zf, i) for i in infos if not member_problem(i)}
    except Exception as exc:  # zipfile raises many kinds on hostile archives
        found.problems.append(
            UstuiError(f"damaged ZIP archive ({type(exc).__name__})", source=label)
        )
        return
    if earlier_export:
        reason = EARLIER_EXPORT
        (found.ignored if walked else found.problems).append(UstuiError(reason, source=label))
        return
    resolved = archive.resolve()
    for info in infos:
        if not info.filename:
            found.problems.append(UstuiError("refused ZIP member: it has no name", source=label))
            continue
        if info.is_dir():
            continue
        where = f"{label}/{info.filename}"
        problem = member_problem(info)
        if problem:
            found.problems.append(UstuiError(problem, source=where))
            continue
        name = PurePosixPath(info.filename).name
        if name.startswith("."):
            continue
        head = heads.get(info.filename, b"")
        if not _is_candidate(name, head, info.file_size):
            found.ignored.append(UstuiError(_not_dicom(name, head), source=where))
            continue
        yield InputFile(
            key=f"{resolved}::{info.filename}",
            label=where,
            size=info.file_size,
            path=archive,
            member=info.filename,
        )


def _member_head(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The first bytes of a member; empty when it cannot be read (reading it later says why)."""
    if info.is_dir():
        return b""
    try:
        with archive.open(info) as member:
            return member.read(HEAD_BYTES)
    except Exception:  # damaged members are reported when read as inputs
        return b""


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a ZIP member must not be read, or None when it is safe."""
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        return "refused ZIP member: its name points outside the archive"
    if info.flag_bits & 0x1:
        return "refused ZIP member: encrypted"
    if info.compress_type not in _METHODS:
        return f"refused ZIP member: unsupported compression method {info.compress_type}"
    if info.file_size > MAX_MEMBER_BYTES:
        return f"refused ZIP member: {info.file_size} bytes uncompressed is over the limit"
    if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return "refused ZIP member: compression ratio suggests a ZIP bomb"
    if PurePosixPath(name).suffix.lower() == ".zip":
        return "refused ZIP member: archives inside archives are not opened"
    return None
