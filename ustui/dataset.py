"""Reading a ustui export from training code: ``ExportDataset(path)``.

Opens an export ZIP in place (nothing is extracted) or its extracted folder, and
gives one :class:`Item` per exported file: its frames as numpy arrays (decoded
lazily, one at a time for long cines), tags, pixel spacing, frame time and its
manifest row. Needs numpy and pydicom only: no UI package, no deep-learning
framework.

>>> ds = ExportDataset("study.zip").filter(site="CFV", purpose="diagnostic")
>>> item = ds[0]
>>> item.frames.shape          # frames x rows x columns [x 3]
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import numpy as np
from pydicom import dcmread
from pydicom.pixels.processing import apply_color_lut
from pydicom.pixels.utils import iter_pixels

__all__ = ["ExportDataset", "Item"]


class _Source:
    """Where the export's members live: a ZIP archive or a folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # One open archive per thread and process: DataLoader workers forked from a
        # parent that already opened it must not share its file offset.
        self._local = threading.local()

    def open(self, name: str) -> IO[bytes]:
        if self.path.is_dir():
            return (self.path / name).open("rb")
        opened = getattr(self._local, "archive", None)
        if opened is None or opened[0] != os.getpid():
            opened = self._local.archive = (os.getpid(), zipfile.ZipFile(self.path))
        return opened[1].open(name)

    def read(self, name: str) -> bytes:
        with self.open(name) as stream:
            return stream.read()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}  # open archives do not cross processes

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]


@dataclass(frozen=True)
class Item:
    """One exported file."""

    meta: dict[str, Any]
    """Its row of manifest.json."""
    _source: _Source

    @property
    def path(self) -> str:
        return str(self.meta["path"])

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.meta.get("tags", {}))

    @property
    def spacing_mm(self) -> tuple[float, float] | None:
        spacing = self.meta.get("spacing_mm")
        return (float(spacing[0]), float(spacing[1])) if spacing else None

    @property
    def frame_time_ms(self) -> float | None:
        value = self.meta.get("frame_time_ms")
        return None if value is None else float(value)

    @property
    def frames(self) -> np.ndarray:
        """Every frame: (frames, rows, columns) or (frames, rows, columns, 3) for colour."""
        return np.stack(list(self.iter_frames()))

    def iter_frames(self) -> Iterator[np.ndarray]:
        """The frames one at a time, so a long cine never sits in memory whole.

        Colour comes as RGB (YBR is converted, palettes applied), as pydicom gives it.
        """
        with self._open() as stream:
            header = dcmread(stream, stop_before_pixels=True)
            stream.seek(0)
            palette = header.get("PhotometricInterpretation") == "PALETTE COLOR"
            for frame in iter_pixels(cast(BinaryIO, stream)):
                yield apply_color_lut(frame, header) if palette else frame

    def frame(self, index: int) -> np.ndarray:
        """One frame, decoding only that one."""
        count = int(self.meta.get("frames", 1))
        if not -count <= index < count:
            raise IndexError(f"frame {index} of a file with {count} frame(s)")
        with self._open() as stream:
            header = dcmread(stream, stop_before_pixels=True)
            stream.seek(0)
            frame = next(iter_pixels(cast(BinaryIO, stream), indices=[index % count]))
            palette = header.get("PhotometricInterpretation") == "PALETTE COLOR"
            return apply_color_lut(frame, header) if palette else frame

    def _open(self) -> AbstractContextManager[IO[bytes]]:
        return self._source.open(self.path)


class ExportDataset(Sequence[Item]):
    """The files of one ustui export, in manifest order.

    Parameters
    ----------
    path
        The export ZIP, or the folder it was extracted to.
    """

    def __init__(self, path: str | Path, *, _rows: list[dict[str, Any]] | None = None) -> None:
        self.path = Path(path)
        self._source = _Source(self.path)
        if _rows is None:
            manifest = json.loads(self._source.read("manifest.json"))
            _rows = list(manifest["files"])
            self.schema_version = int(manifest.get("schema_version", 1))
        self._rows = _rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int) -> Item:  # type: ignore[override]
        return Item(self._rows[index], self._source)

    def filter(self, **tags: str) -> ExportDataset:
        """The files whose tags have all the given values, e.g. ``filter(site="CFV")``."""
        rows = [r for r in self._rows if all(r["tags"].get(k) == v for k, v in tags.items())]
        subset = ExportDataset(self.path, _rows=rows)
        subset.schema_version = self.schema_version
        return subset
