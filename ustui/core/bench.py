"""``ustui bench``: time the export pipeline on synthetic exams like real ones.

Reports milliseconds per frame for each step (read, decode, crop/mask, encode,
write, zip) and for the whole export, the time for a 20 x 50-frame JPEG exam
with two workers, and the peak memory of exporting a large cine (all without
reading burned-in text, whose cost is reported on its own). The numbers are
for the machine it runs on; nothing here asserts them.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
from pydicom import dcmread
from pydicom.uid import UltrasoundMultiFrameImageStorage, generate_uid

from ustui.core import jpeg_kernels
from ustui.core.bench_files import many_files_memory
from ustui.core.boxes import Box
from ustui.core.export import ExportRequest, run_export
from ustui.core.frames import FrameReader
from ustui.core.inputs import discover
from ustui.core.pixels import clean_frame, plan_pixels, write_pixel_data
from ustui.core.profiles import Profile, get_profile
from ustui.core.reading import read_header
from ustui.core.session import FileDecision
from ustui.core.synthetic import Study, burn_text, sector_frame, us_dataset
from ustui.core.text_reader import load_reader

ROWS, COLUMNS = 800, 1200
CROPS = ((576, 432), (768, 576), (1024, 768))
KINDS = ("MONOCHROME2", "RGB", "JPEG")
#: PRODUCT §9 targets, ms per frame for the 1024x768 crop.
TARGETS = {"MONOCHROME2": 3.0, "RGB": 6.0, "JPEG": 3.0}


@dataclass
class StepTimes:
    kind: str
    crop: str
    frames: int
    read: float
    decode: float
    crop_mask: float
    encode: float
    write: float
    zip: float
    export: float
    """Whole single-file export through run_export, per frame."""
    path: str
    """Which pixel path ran (e.g. compressed-domain crop, or the fallback's reason)."""


class _NullSink:
    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.size += len(data)
        return len(data)


def _frames(count: int, seed: int) -> list[np.ndarray]:
    return [
        burn_text(sector_frame(ROWS, COLUMNS, seed=seed, t=t), "BENCH^PATIENT 01-Jan-2000")
        for t in range(count)
    ]


def write_exam_file(
    path: Path, kind: str, frames: int, *, seed: int = 0, study: Study | None = None
) -> Path:
    """A synthetic 1200x800 ultrasound file of ``kind`` (MONOCHROME2, RGB or JPEG)."""
    ds = us_dataset(
        _frames(frames, seed),
        study=study or Study(),
        series_uid=generate_uid(),
        series_number=1,
        instance_number=seed + 1,
        photometric="MONOCHROME2" if kind == "MONOCHROME2" else "RGB",
        jpeg_quality=90 if kind == "JPEG" else None,
    )
    ds.save_as(path, enforce_file_format=True)
    return path


def _profile(pixel_text: str = "off") -> Profile:
    """The default profile; the pipeline's own targets are timed without reading text."""
    profile = get_profile()
    return replace(profile, export=replace(profile.export, pixel_text=pixel_text))


def _centered(width: int, height: int) -> Box:
    left, top = (COLUMNS - width) // 2, (ROWS - height) // 2
    return Box(left, top, left + width, top + height)


def _per_frame(seconds: float, frames: int) -> float:
    return round(1000 * seconds / frames, 3)


def _timed(fn: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def measure_steps(folder: Path, kind: str, frames: int) -> Iterator[StepTimes]:
    """Per-step times for one synthetic file of ``kind``, for each crop size."""
    path = write_exam_file(folder / f"{kind}.dcm", kind, frames)
    source = discover([path]).files[0]
    settings = get_profile().export
    read = _timed(read_header, source)
    header = read_header(source)
    with FrameReader(source, header) as reader:
        decoded = [reader.frame(i) for i in range(2)]
        decode = _timed(lambda: [reader.frame(i) for i in range(frames)])
    with FrameReader(source, header) as reader:  # warm-up: JIT compile, lookup tables
        write_pixel_data(
            plan_pixels(header, _centered(*CROPS[0]), [], settings, reader=reader),
            reader,
            cast(BinaryIO, _NullSink()),
        )
    for width, height in CROPS:
        crop = _centered(width, height)
        mask = Box(crop.left, crop.top, crop.left + 200, crop.top + 40)
        sink = _NullSink()
        with FrameReader(source, header) as reader:
            plan = plan_pixels(header, crop, [mask], settings, reader=reader)
            pixels = _timed(write_pixel_data, plan, reader, cast(BinaryIO, sink))
        compressed_domain = kind == "JPEG" and plan.compressed_domain
        if compressed_domain:  # no decoded pixels: cropping is the re-coding itself
            decode_cost = crop_mask = 0.0
        else:
            decode_cost = decode
            crop_mask = sum(_timed(clean_frame, plan, decoded[i % 2]) for i in range(frames))
        encode = max(pixels - decode_cost - crop_mask, 0.0)
        part = io.BytesIO(b"\0" * sink.size)
        zipped = _timed(_zip_once, part)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            out = Path(tmp) / "one.zip"
            decision = FileDecision(crop=crop, masks=[mask])
            request = ExportRequest(
                inputs=[source],
                profile=_profile(),
                out=out,
                decisions={source.key: decision},
                require_tags=False,
            )
            export = _timed(run_export, request)
        write = _timed(_write_once, folder / "w.bin", sink.size)
        yield StepTimes(
            kind=kind,
            crop=f"{width}x{height}",
            frames=frames,
            read=_per_frame(read, frames),
            decode=_per_frame(decode_cost, frames),
            crop_mask=_per_frame(crop_mask, frames),
            encode=_per_frame(encode, frames),
            write=_per_frame(write, frames),
            zip=_per_frame(zipped, frames),
            export=_per_frame(export, frames),
            path="compressed-domain crop" if compressed_domain else (plan.note or "decode + write"),
        )


def _zip_once(part: io.BytesIO) -> None:
    with zipfile.ZipFile(io.BytesIO(), "w") as zf, zf.open("x.dcm", "w") as dst:
        part.seek(0)
        dst.write(part.getbuffer())


def _write_once(path: Path, size: int) -> None:
    with path.open("wb") as f:
        f.write(b"\0" * size)
        f.flush()
        os.fsync(f.fileno())
    path.unlink()


def exam_seconds(folder: Path, *, files: int, frames: int, workers: int) -> float:
    """Seconds to export ``files`` JPEG cines of ``frames`` frames with ``workers``."""
    exam = folder / "exam"
    exam.mkdir(exist_ok=True)
    study = Study()
    template = write_exam_file(exam / "f000.dcm", "JPEG", frames, study=study)
    for i in range(1, files):
        # Same pixels, new identities: building 20 cines from scratch would dominate.
        ds = dcmread(template)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = i + 1
        ds.save_as(exam / f"f{i:03d}.dcm", enforce_file_format=True)
    request = ExportRequest(
        inputs=discover([exam]).files,
        profile=_profile(),
        out=folder / "exam.zip",
        require_tags=False,
        workers=workers,
    )
    return _timed(run_export, request)


def text_costs(folder: Path, *, frames: int) -> dict[str, object]:
    """What reading burned-in text costs: ms per 1024x768 frame, and seconds added to the
    export of a single-frame file and of a cine of ``frames`` frames (PRODUCT §11)."""
    reader = load_reader()
    if reader is None:
        return {"reader": "not installed"}
    frame = burn_text(sector_frame(768, 1024, seed=5), "DOE, JANE  4471923", size=18, top=700)
    rgb = np.repeat(frame[..., None], 3, axis=2)
    reader.read(rgb)  # warm-up: ONNX Runtime plans its kernels on the first run
    per_frame = min(_timed(reader.read, rgb) for _ in range(3))
    added = {}
    for label, count in (("single_frame", 1), ("cine", frames)):
        path = write_exam_file(folder / f"text-{label}.dcm", "JPEG", count, seed=7)
        times: dict[str, float] = {}
        # "off" first and last: the first run also pays one-time start-up costs.
        for policy in ("off", "mask-identifying", "off"):
            request = ExportRequest(
                inputs=discover([path]).files,
                profile=_profile(policy),
                out=folder / f"text-{label}-{policy}.zip",
                require_tags=False,
            )
            seconds = _timed(run_export, request)
            times[policy] = min(seconds, times.get(policy, seconds))
        added[label] = round(times["mask-identifying"] - times["off"], 2)
    return {
        "ms_per_frame_1024x768": round(1000 * per_frame),
        "added_seconds_single_frame": added["single_frame"],
        "added_seconds_cine": added["cine"],
        "cine_frames": frames,
        "target_seconds": {"single_frame": 1.0, "cine": 3.0},
    }


def peak_memory_mb(folder: Path, *, megabytes: int) -> tuple[float, float]:
    """(input size MB, peak RSS MB) of exporting an RGB cine of about ``megabytes``."""
    frame_bytes = ROWS * COLUMNS * 3
    frames = max(1, megabytes * 1024 * 1024 // frame_bytes)
    path = folder / "big.dcm"
    _write_big_rgb(path, frames)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ustui.cli import main\n"
        f"main(['export', {str(path)!r}, '--out', {str(folder / 'big.zip')!r}, "
        "'--no-require-tags', '--workers', '1', '--json'])\n"
        # VmHWM, not ru_maxrss: Linux carries the forking parent's peak into the
        # child's ru_maxrss across exec, and this process holds the other runs' frames.
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    peak_kb = int(result.stdout.strip().splitlines()[-1])
    return path.stat().st_size / 1024**2, peak_kb / 1024


def _write_big_rgb(path: Path, frames: int) -> None:
    """A large uncompressed RGB cine, written frame by frame to keep this process small."""
    ds = us_dataset(
        [np.zeros((ROWS, COLUMNS), np.uint8)],
        study=Study(),
        series_uid=generate_uid(),
        series_number=1,
        instance_number=1,
        photometric="RGB",
    )
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    ds.NumberOfFrames = frames
    ds.FrameTime = 33.3
    ds.FrameIncrementPointer = 0x00181063
    del ds.PixelData
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    length = frames * ROWS * COLUMNS * 3
    with path.open("wb") as f:
        f.write(buffer.getvalue())
        f.write(b"\xe0\x7f\x10\x00OB\x00\x00" + length.to_bytes(4, "little"))
        rgb = np.repeat(sector_frame(ROWS, COLUMNS)[..., None], 3, axis=2).tobytes()
        for _ in range(frames):
            f.write(rgb)


#: Small files exported by the default run to measure memory against the file count.
MANY_FILES = 1000


def run_bench(*, as_json: bool, quick: bool, files: int | None = None) -> int:
    """Run every measurement and print a table (or JSON); returns 0.

    With ``files``, measure only the peak memory of exporting that many small files.
    """
    if files is not None:
        with tempfile.TemporaryDirectory(prefix="ustui-bench-") as tmp:
            many = many_files_memory(Path(tmp), files=files, workers=2)
        print(json.dumps({"many_files": many}, indent=1) if as_json else _many_line(many))
        return 0
    frames = 10 if quick else 50
    results: dict[str, object] = {"machine": {"cpus": os.cpu_count()}, "frames_per_file": frames}
    # Which JPEG crop kernels every compressed-domain row below ran: numba's or Python's.
    results["jpeg_kernels"] = "compiled" if jpeg_kernels.load().compiled else "python"
    with tempfile.TemporaryDirectory(prefix="ustui-bench-") as tmp:
        folder = Path(tmp)
        steps = [s for kind in KINDS for s in measure_steps(folder, kind, frames)]
        results["steps_ms_per_frame"] = [asdict(s) for s in steps]
        exam_files = 5 if quick else 20
        results["exam"] = {
            "files": exam_files,
            "frames": frames,
            "workers": 2,
            "seconds": round(exam_seconds(folder, files=exam_files, frames=frames, workers=2), 2),
            "target_seconds": 5.0 if not quick else None,
        }
        results["text"] = text_costs(folder, frames=frames)
        size, peak = peak_memory_mb(folder, megabytes=100 if quick else 1024)
        results["memory"] = {"input_mb": round(size), "peak_rss_mb": round(peak), "target_mb": 300}
        results["many_files"] = many_files_memory(
            folder, files=MANY_FILES // 5 if quick else MANY_FILES, workers=2
        )
    if as_json:
        print(json.dumps(results, indent=1))
    else:
        _print_table(steps, results)
    return 0


def _print_table(steps: list[StepTimes], results: dict[str, object]) -> None:
    print(f"ustui bench — {ROWS}x{COLUMNS} input, ms per frame (lower is better)")
    header = (
        f"{'input':<12}{'crop':<10}{'read':>7}{'decode':>8}{'crop':>7}{'encode':>8}"
        f"{'write':>7}{'zip':>7}{'export':>8}  {'target':>6}  path"
    )
    print(header)
    print("-" * len(header))
    for s in steps:
        target = TARGETS[s.kind] if s.crop == "1024x768" else None
        mark = (
            ""
            if target is None
            else (f"{target:>6.1f}" + (" ok" if s.export <= target else " MISS"))
        )
        print(
            f"{s.kind:<12}{s.crop:<10}{s.read:>7.2f}{s.decode:>8.2f}{s.crop_mask:>7.2f}"
            f"{s.encode:>8.2f}{s.write:>7.2f}{s.zip:>7.2f}{s.export:>8.2f}  {mark:<9}  {s.path}"
        )
    kernels = (
        "compiled (numba)"
        if results["jpeg_kernels"] == "compiled"
        else "plain Python (numba missing or USTUI_JIT=0)"
    )
    print(f"JPEG crop kernels: {kernels}")
    exam = results["exam"]
    memory = results["memory"]
    text = results["text"]
    assert isinstance(exam, dict) and isinstance(memory, dict) and isinstance(text, dict)
    print(
        f"\nExam: {exam['files']} JPEG files x {exam['frames']} frames with {exam['workers']} "
        f"workers: {exam['seconds']} s (target 5 s for 20 x 50)"
    )
    print(
        f"Memory: exporting a {memory['input_mb']} MB cine peaked at {memory['peak_rss_mb']} MB "
        f"RSS (target 300 MB for 1 GB)"
    )
    if "ms_per_frame_1024x768" in text:
        print(
            f"Burned-in text: {text['ms_per_frame_1024x768']} ms per 1024x768 frame; adds "
            f"{text['added_seconds_single_frame']} s to a single-frame file (target 1 s) and "
            f"{text['added_seconds_cine']} s to a {text['cine_frames']}-frame cine (target 3 s)"
        )
    else:
        print("Burned-in text: no text reader installed")
    many = results["many_files"]
    assert isinstance(many, dict)
    print(_many_line(many))


def _many_line(many: dict[str, object]) -> str:
    return (
        f"Memory: exporting {many['files']} small files with {many['workers']} workers "
        f"({many['seconds']} s) peaked at {many['main_peak_mb']} MB in the main process and "
        f"{many['worker_peak_mb']} MB per worker, {many['total_peak_mb']} MB in all "
        f"(target {many['target_mb']} MB for 10,000 files; ustui bench --files 10000)"
    )
