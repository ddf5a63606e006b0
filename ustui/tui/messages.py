"""Messages that worker threads post to the screens (threads never touch widgets)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom import Dataset
from textual.message import Message

from ustui.core.boxes import Box
from ustui.core.export import ExportProgress, ExportResult
from ustui.core.inputs import InputFile
from ustui.core.pixel_text import TextScan
from ustui.core.verify import VerifyReport
from ustui.tui.model import FileInfo


@dataclass
class HeaderResult:
    """What reading one file's header found."""

    key: str
    info: FileInfo | None
    problem: str | None


class FilesFound(Message):
    """The inputs were searched; ``problems`` are paths that could not be used, ``ignored``
    says how many files met in folders are not inputs ("" when none)."""

    def __init__(self, files: list[InputFile], problems: list[str], ignored: str = "") -> None:
        super().__init__()
        self.files = files
        self.problems = problems
        self.ignored = ignored


class HeadersRead(Message):
    """A batch of files was read: ``stage`` "headers", or "analysis" of the frames of
    files whose crop nothing else found (``done`` of ``total`` in that stage)."""

    def __init__(self, results: list[HeaderResult], stage: str, done: int, total: int) -> None:
        super().__init__()
        self.results = results
        self.stage = stage
        self.done = done
        self.total = total


class FileOpened(Message):
    """The current file's header and automatic crop (with image analysis) are known."""

    def __init__(self, key: str, header: Dataset, info: FileInfo) -> None:
        super().__init__()
        self.key = key
        self.header = header
        self.info = info


class FrameDecoded(Message):
    """One frame of the current file, as display RGB at full resolution."""

    def __init__(self, key: str, index: int, count: int, rgb: np.ndarray) -> None:
        super().__init__()
        self.key = key
        self.index = index
        self.count = count
        self.rgb = rgb

    def can_replace(self, message: Message) -> bool:
        # While playing a cine only the newest frame matters.
        return isinstance(message, FrameDecoded) and message.key == self.key


class TextRead(Message):
    """The text in ``area`` of a file's frames; ``scan`` is None without a text reader."""

    def __init__(self, key: str, area: Box, scan: TextScan | None) -> None:
        super().__init__()
        self.key = key
        self.area = area
        self.scan = scan


class FileFailed(Message):
    """The current file cannot be shown; ``reason`` says why."""

    def __init__(self, key: str, reason: str, *, unsupported: bool) -> None:
        super().__init__()
        self.key = key
        self.reason = reason
        self.unsupported = unsupported


class ExportProgressed(Message):
    def __init__(self, progress: ExportProgress) -> None:
        super().__init__()
        self.progress = progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ExportProgressed)


class ExportFinished(Message):
    """The export ended: ``result`` and its verification, or the ``error`` that stopped it."""

    def __init__(
        self, result: ExportResult | None, report: VerifyReport | None, error: str | None
    ) -> None:
        super().__init__()
        self.result = result
        self.report = report
        self.error = error
