"""The blocking work behind the screens' workers: reading headers, opening a file,
decoding frames. Plain functions that report through callbacks, so they run in
worker threads and in tests alike; they never touch a widget.
"""

from __future__ import annotations

import dataclasses
import queue
import time
from collections.abc import Callable, Sequence

from pydicom import Dataset
from textual.message import Message

from ustui.core.boxes import Box
from ustui.core.burned_text import scan_file
from ustui.core.cropping import choose_crop, fan_sector, header_text
from ustui.core.errors import UstuiError
from ustui.core.frames import FrameReader, decoder_problem, display_rgb, image_info
from ustui.core.inputs import InputFile
from ustui.core.pixels import WrittenGrid, written_grid
from ustui.core.profiles import Profile
from ustui.core.reading import read_header, transfer_syntax_name
from ustui.core.tag_header import read_header_tags
from ustui.tui.messages import FileFailed, FileOpened, FrameDecoded, HeaderResult, TextRead
from ustui.tui.model import FileInfo

DEFAULT_FPS = 20.0
#: Headers are reported in batches at most this often (seconds).
BATCH_SECONDS = 0.1


def cine_fps(header: Dataset) -> float:
    """The cine's own frame rate from the header, within 1-30 frames/s."""
    for keyword, per_second in (
        ("RecommendedDisplayFrameRate", True),
        ("CineRate", True),
        ("FrameTime", False),
    ):
        try:
            value = float(header.get(keyword) or 0)
        except (TypeError, ValueError):
            continue
        if value > 0:
            fps = value if per_second else 1000.0 / value
            return min(max(fps, 1.0), 30.0)
    return DEFAULT_FPS


def file_info(
    header: Dataset,
    profile: Profile,
    *,
    reader: FrameReader | None = None,
) -> FileInfo:
    """What the file list and preview need from a header, with the automatic crop."""
    return FileInfo(
        rows=int(header.Rows),
        columns=int(header.Columns),
        frames=int(header.get("NumberOfFrames", 1) or 1),
        manufacturer=header_text(header, "Manufacturer"),
        model=header_text(header, "ManufacturerModelName"),
        transfer_syntax=transfer_syntax_name(str(header.file_meta.TransferSyntaxUID)),
        fps=cine_fps(header),
        auto=choose_crop(header, profile, None, reader=reader),
        instance_uid=str(header.get("SOPInstanceUID", "")),
        grid=_grid(header, profile, reader) if reader is not None else None,
        header_tags=read_header_tags(header, profile),
    )


def _grid(header: Dataset, profile: Profile, reader: FrameReader) -> WrittenGrid | None:
    """Where the export's boxes land; None when that cannot be known (the export then
    reports why the file cannot be written)."""
    try:
        return written_grid(header, profile.export, reader)
    except (UstuiError, ValueError):
        return None


def header_result(source: InputFile, profile: Profile) -> HeaderResult:
    """Read one header; a file that cannot be cleaned comes back with its reason."""
    try:
        header = read_header(source)
        # The checks FrameReader makes, without reading the pixel data.
        problem = decoder_problem(image_info(header, label=source.label))
        if problem:
            return HeaderResult(source.key, None, problem)
        return HeaderResult(source.key, file_info(header, profile), None)
    except UstuiError as exc:
        return HeaderResult(source.key, None, exc.reason)
    except Exception as exc:  # never let one odd file stop the others
        return HeaderResult(source.key, None, f"cannot read ({type(exc).__name__})")


def analysed_result(source: InputFile, profile: Profile) -> HeaderResult:
    """Like :func:`header_result`, with image analysis of the frames when nothing else
    finds the crop (as the export will do)."""
    try:
        header = read_header(source)
        with FrameReader(source, header) as reader:
            info = file_info(header, profile, reader=reader)
        return HeaderResult(source.key, info, None)
    except UstuiError as exc:
        return HeaderResult(source.key, None, exc.reason)
    except Exception as exc:
        return HeaderResult(source.key, None, f"cannot read ({type(exc).__name__})")


def read_headers(
    files: Sequence[InputFile],
    profile: Profile,
    report: Callable[[list[HeaderResult], str, int, int], object],
    cancelled: Callable[[], bool],
) -> None:
    """Read every header, then analyse the frames of the files whose crop neither a
    preset nor the ultrasound regions give; report batches (at most every
    BATCH_SECONDS) as ``report(results, stage, done, total)``, stage being
    "headers" or "analysis"."""
    unresolved: list[InputFile] = []
    for stage, sources in (("headers", list(files)), ("analysis", unresolved)):
        batch: list[HeaderResult] = []
        last = time.monotonic()
        total = len(sources)
        for done, source in enumerate(sources, 1):
            if cancelled():
                return
            if stage == "headers":
                result = header_result(source, profile)
                if result.info is not None and result.info.auto.source == "full":
                    unresolved.append(source)
            else:
                result = analysed_result(source, profile)
            batch.append(result)
            now = time.monotonic()
            if now - last >= BATCH_SECONDS or done == total:
                report(batch, stage, done, total)
                batch, last = [], now


def read_text(source: InputFile, area: Box, post: Callable[[Message], object]) -> None:
    """Read the text inside ``area`` of the file's frames, as the export will."""
    try:
        header = read_header(source)
        with FrameReader(source, header) as reader:
            post(TextRead(source.key, area, scan_file(reader, area, header)))
    except UstuiError:
        pass  # the preview already says why the file cannot be read


def serve_file(
    source: InputFile,
    profile: Profile,
    first_frame: int,
    requests: queue.Queue[int],
    post: Callable[[Message], object],
    cancelled: Callable[[], bool],
) -> None:
    """Open ``source``, send its first frame and its analysed crop, then decode the
    frames asked for on ``requests`` (only the newest) until cancelled."""
    key = source.key
    try:
        header = read_header(source)
        with FrameReader(source, header) as reader:
            count = reader.number_of_frames
            index = min(max(first_frame, 0), count - 1)
            post(FrameDecoded(key, index, count, display_rgb(reader.frame(index), reader)))
            info = dataclasses.replace(
                file_info(header, profile, reader=reader), sector=fan_sector(reader)
            )
            post(FileOpened(key, header, info))
            while not cancelled():
                try:
                    index = requests.get(timeout=0.05)
                except queue.Empty:
                    continue
                while not requests.empty():
                    index = requests.get_nowait()
                index %= count
                post(FrameDecoded(key, index, count, display_rgb(reader.frame(index), reader)))
    except UstuiError as exc:
        post(FileFailed(key, exc.reason, unsupported=True))
    except Exception as exc:
        post(FileFailed(key, f"cannot show this file ({type(exc).__name__})", unsupported=False))
