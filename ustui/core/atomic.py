"""Atomic file writes: a reader sees the old file or the new one, never a part."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def write_atomic(path: Path, content: bytes, *, mode: int = 0o644) -> None:
    """Write ``content`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = write_temporary(path, content, mode=mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_temporary(path: Path, content: bytes, *, mode: int = 0o644) -> Path:
    """``content`` on disk under a temporary name beside ``path``, for the caller to
    rename into place (with other files, say) or to remove."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[io.BufferedRandom]:
    """A new readable and writable file that replaces ``path`` when the block ends well.

    Writers of the same ``path`` never mix their bytes: a job retried while its first
    attempt still runs (a Dask worker thought lost) leaves one whole file. The folder
    must exist; no fsync, for files that only live until the export ends.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as stream:
            yield stream
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
