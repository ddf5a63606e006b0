"""Shared by the robustness and fuzz tests: small valid seeds, the ways to break them,
fingerprints of input trees and a recorder of Python audit events."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydicom import Dataset
from pydicom.uid import generate_uid

from ustui.core.synthetic import Study, sector_frame, us_dataset

ROWS, COLUMNS = 32, 48


# --- valid seeds ----------------------------------------------------------------------------


def small_image(
    *,
    frames: int = 1,
    jpeg: bool = False,
    rows: int = ROWS,
    columns: int = COLUMNS,
    seed: int = 1,
    study: Study | None = None,
) -> Dataset:
    """A complete little US image (greyscale native, or colour JPEG Baseline)."""
    pixels = [sector_frame(rows, columns, seed=seed, t=t) for t in range(frames)]
    return us_dataset(
        pixels,
        study=study or Study(),
        series_uid=generate_uid(),
        series_number=1,
        instance_number=seed,
        photometric="RGB" if jpeg else "MONOCHROME2",
        jpeg_quality=85 if jpeg else None,
    )


def dicom_bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def large_exam(folder: Path, *, files: int, frames: int, rows: int, columns: int) -> Path:
    """``files`` native RGB cines: slow enough to interrupt an export in the middle."""
    folder.mkdir(parents=True, exist_ok=True)
    study = Study()
    series = generate_uid()
    for n in range(files):
        cine = [
            np.repeat(sector_frame(rows, columns, seed=n, t=t)[..., None], 3, axis=2)
            for t in range(frames)
        ]
        ds = us_dataset(
            cine,
            study=study,
            series_uid=series,
            series_number=1,
            instance_number=n + 1,
            photometric="RGB",
        )
        ds.save_as(folder / f"cine{n:02d}.dcm", enforce_file_format=True)
    return folder


# --- raw bytes (explicit VR little endian) ---------------------------------------------------

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"}
ITEM = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
SEQUENCE_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def nested_sequences(depth: int) -> bytes:
    """A Procedure Code Sequence holding itself ``depth`` levels deep (undefined lengths)."""
    body = struct.pack("<HH2sH", 0x0008, 0x0100, b"SH", 4) + b"CODE"
    for _ in range(depth):
        start = struct.pack("<HH2sHI", 0x0008, 0x1032, b"SQ", 0, 0xFFFFFFFF)
        body = start + ITEM + body + ITEM_END + SEQUENCE_END
    return body


def insert_before_pixels(data: bytes, extra: bytes) -> bytes:
    """``data`` (explicit VR LE) with ``extra`` elements just before its Pixel Data."""
    at = data.rindex(struct.pack("<HH", 0x7FE0, 0x0010))
    return data[:at] + extra + data[at:]


def length_fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, width) of every element and item length field of an explicit VR LE file,
    found by walking it (items and sequences with undefined length are entered)."""
    fields: list[tuple[int, int]] = []
    pos = 132
    while pos + 8 <= len(data):
        group, _element = struct.unpack_from("<HH", data, pos)
        if group == 0xFFFE:  # item, item end or sequence end: tag + 4-byte length
            fields.append((pos + 4, 4))
            length = struct.unpack_from("<I", data, pos + 4)[0]
            entered = length == 0xFFFFFFFF or _element != 0xE000
            pos += 8 if entered else 8 + length
            continue
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            fields.append((pos + 8, 4))
            length = struct.unpack_from("<I", data, pos + 8)[0]
            # Sequences (and encapsulated pixel data) are entered, their items listed.
            pos += 12 if length == 0xFFFFFFFF or vr == b"SQ" else 12 + length
        else:
            fields.append((pos + 6, 2))
            pos += 8 + struct.unpack_from("<H", data, pos + 6)[0]
    return fields


# --- input trees ----------------------------------------------------------------------------


def tree_digest(root: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mode of every file under ``root`` (and of ``root`` itself if a file)."""
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode) for p in paths}


def make_read_only(root: Path) -> None:
    """chmod a-w on every file and folder under ``root``, folders last."""
    for path in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):
        path.chmod(path.stat().st_mode & ~0o222)
    root.chmod(root.stat().st_mode & ~0o222)


def make_writable(root: Path) -> None:
    """Undo :func:`make_read_only` so pytest can delete its temporary folders."""
    root.chmod(root.stat().st_mode | 0o200)
    for path in root.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)


# --- audit events ---------------------------------------------------------------------------

#: Events of modules that can reach the network.
NETWORK = ("socket.", "http.client.", "urllib.", "ftplib.", "smtplib.", "webbrowser.")
#: Events that touch the file system or the network; everything else is ignored.
WATCHED = ("open", "os.", "shutil.", *NETWORK)
_sinks: list[list[tuple[str, tuple[object, ...]]]] = []
_installed = False


def _hook(event: str, args: tuple[object, ...]) -> None:
    # Called for every audit event of the process: cheap unless someone records.
    if _sinks and event.startswith(WATCHED):
        if event == "open" and isinstance(args[0], str | bytes | os.PathLike):
            args = (os.path.abspath(os.fsdecode(args[0])), *args[1:])
        for sink in _sinks:
            sink.append((event, args))


@contextlib.contextmanager
def audit_events() -> Iterator[list[tuple[str, tuple[object, ...]]]]:
    """Record file-system and network audit events (of every thread) while the block runs.

    Audit hooks cannot be removed: one hook is installed per process and stays
    idle outside these blocks.
    """
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    sink: list[tuple[str, tuple[object, ...]]] = []
    _sinks.append(sink)
    try:
        yield sink
    finally:
        _sinks.remove(sink)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
#: Events that change a file or folder named by their first argument.
_CHANGES = (
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.utime",
    "os.mkdir",
    "os.symlink",
    "os.link",
    "os.chflags",
    "os.setxattr",
    "os.removexattr",
    "shutil.rmtree",
    "shutil.move",
    "shutil.copyfile",
)


def changes_under(
    events: list[tuple[str, tuple[object, ...]]], root: Path
) -> list[tuple[str, str]]:
    """(event, path) of every write-mode open or change of a path under ``root``."""
    top = os.path.realpath(root)
    found = []
    for event, args in events:
        if event == "open":
            mode, flags = args[1], args[2]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            paths = [args[0]] if writes and isinstance(args[0], str) else []  # not fds
        elif event in _CHANGES:
            paths = [a for a in args[:2] if isinstance(a, str | bytes | os.PathLike)]
        else:
            paths = []
        for path in paths:
            real = os.path.realpath(os.fsdecode(path))  # type: ignore[arg-type]
            if real == top or real.startswith(top + os.sep):
                found.append((event, real))
    return found


def network_events(events: list[tuple[str, tuple[object, ...]]]) -> list[str]:
    """Every network-capable event, except creating an AF_UNIX socket pair.

    asyncio's event loop wakes itself through ``socket.socketpair()`` (two
    unnamed, connected AF_UNIX sockets inside the process): that is not network
    access and is allowed. Any other socket (AF_INET, AF_INET6, ...), and any
    connect, bind, name lookup, send-to or HTTP/URL event is reported.
    """
    bad = []
    for event, args in events:
        if event == "socket.__new__" and args[1] == socket.AF_UNIX:
            continue
        if event.startswith(NETWORK):
            bad.append(f"{event}{args[1:]!r}")
    return bad


# --- time limits ----------------------------------------------------------------------------


class Hang(Exception):
    """A case ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the block after ``seconds`` (main thread: SIGALRM timer)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(_signum: int, _frame: object) -> None:
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
