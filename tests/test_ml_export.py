"""The ML-ready export: geometry, timing and device in the manifest, and the reader."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pydicom import Dataset, dcmread
from pydicom.pixels import apply_color_lut
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from ustui.cli import main
from ustui.core.boxes import Box
from ustui.core.inputs import discover
from ustui.core.profiles import user_file
from ustui.core.session import FileDecision, Session
from ustui.core.synthetic import Patient, Study, region_item, sector_frame, us_dataset
from ustui.dataset import ExportDataset

ROWS, COLUMNS = 200, 300
#: Where the test puts its two regions, in input pixels.
TISSUE = Box(40, 20, 200, 150)
DOPPLER = Box(40, 150, 260, 195)
CROP = Box(50, 30, 250, 190)  # clips both regions on every side it can


def _doppler_item(box: Box) -> Dataset:
    item = region_item(box)
    item.RegionSpatialFormat = 3  # spectral
    item.RegionDataType = 3  # PW spectral Doppler
    item.PhysicalUnitsXDirection = 4  # seconds
    item.PhysicalUnitsYDirection = 7  # cm/s
    item.PhysicalDeltaX = 0.004
    item.PhysicalDeltaY = 1.5
    item.ReferencePixelX0 = 0
    item.ReferencePixelY0 = 20
    return item


def _write(folder: Path, name: str, *, study: Study, frames: int = 1, **extra: object) -> Path:
    cine = [sector_frame(ROWS, COLUMNS, seed=1, t=t) for t in range(frames)]
    ds = us_dataset(
        cine, study=study, series_uid=generate_uid(), series_number=1, instance_number=1
    )
    tissue = region_item(TISSUE)
    tissue.ReferencePixelX0, tissue.ReferencePixelY0 = 80, 0
    tissue.TransducerFrequency = 7500
    ds.SequenceOfUltrasoundRegions = Sequence([tissue, _doppler_item(DOPPLER)])
    ds.TransducerType = "LINEAR"
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return path


def _manifest(out: Path) -> tuple[dict, list[dict[str, str]]]:
    with zipfile.ZipFile(out) as zf:
        document = json.loads(zf.read("manifest.json"))
        rows = list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode())))
    return document, rows


def test_manifest_holds_regions_spacing_timing_and_device_in_output_pixels(
    tmp_path: Path,
) -> None:
    exam = tmp_path / "exam"
    study = Study(patient=Patient(name="ML^ONE", id="ML1"))
    path = _write(exam, "cine.dcm", study=study, frames=3, FrameTime=40.0, CineRate=25)
    session = Session.load([str(exam)])
    session.files[discover([path]).files[0].key] = FileDecision(crop=CROP)
    session.save()
    out = tmp_path / "out.zip"
    assert main(["export", str(exam), "--out", str(out), "--no-require-tags"]) == 0
    document, csv_rows = _manifest(out)
    assert document["schema_version"] == 2
    row = document["files"][0]
    tissue, doppler = row["regions"]
    # Moved by the crop's origin (50, 30) and clipped to the 200 x 160 output.
    assert tissue["box"] == [0, 0, 150, 120]
    assert doppler["box"] == [0, 120, 200, 160]
    assert tissue["data_type"] == "tissue" and tissue["spatial_format"] == "2D"
    assert tissue["units"] == ["mm", "mm"] and tissue["delta"] == pytest.approx([0.2, 0.2])
    # The reference pixel keeps pointing at the same place: the input's (120, 20), now
    # (70, -10), just above the cropped image.
    assert tissue["reference_pixel"] == [120 - 50, 20 - 30]
    assert tissue["transducer_frequency_khz"] == 7500
    assert doppler["data_type"] == "PW spectral Doppler"
    assert doppler["units"] == ["s", "cm/s"] and doppler["delta"] == pytest.approx([0.004, 1.5])
    assert row["spacing_mm"] == pytest.approx([0.2, 0.2])
    assert row["frame_time_ms"] == 40.0 and row["cine_rate"] == 25.0
    assert row["still"] is False and row["frames"] == 3
    assert row["photometric"] == "MONOCHROME2" and row["bits_stored"] == 8
    assert row["device"] == {
        "manufacturer": "ustui Synthetic",
        "model": "Sector 1",
        "transducer_type": "LINEAR",
    }
    flat = csv_rows[0]
    assert (flat["spacing_x_mm"], flat["frame_time_ms"], flat["device_transducer_type"]) == (
        "0.2",
        "40.0",
        "LINEAR",
    )
    assert json.loads(flat["regions"]) == row["regions"]
    # The manifest matches the DICOM file it describes.
    with zipfile.ZipFile(out) as zf:
        ds = dcmread(zf.open(row["path"]))
    assert [int(ds.Columns), int(ds.Rows)] == [row["columns"], row["rows"]] == [200, 160]
    item = ds.SequenceOfUltrasoundRegions[1]
    assert [item.RegionLocationMinX0, item.RegionLocationMaxY1 + 1] == [0, 160]


def test_time_offsets_keep_a_subjects_order_without_its_dates(tmp_path: Path) -> None:
    exam = tmp_path / "exam"
    patient = Patient(name="ML^TWO", id="ML2")
    first = Study(patient=patient, date="20200301", time="080000")
    later = Study(patient=patient, date="20200302", time="093000")
    _write(exam, "a.dcm", study=first)
    _write(exam, "b.dcm", study=later)
    out = tmp_path / "out.zip"
    assert main(["export", str(exam), "--out", str(out), "--no-require-tags"]) == 0
    rows = _manifest(out)[0]["files"]
    assert sorted(r["time_offset_s"] for r in rows) == [0.0, 86400.0 + 5400.0]
    assert len({r["subject"] for r in rows}) == 1
    assert "20200301" not in json.dumps(rows)


def test_no_time_offsets_when_the_profile_removes_temporal_information(tmp_path: Path) -> None:
    user_file().parent.mkdir(parents=True, exist_ok=True)
    user_file().write_text('[basic]\ndescription = "x"\n[basic.deid]\noptions = []\n')
    exam = tmp_path / "exam"
    _write(exam, "a.dcm", study=Study())
    out = tmp_path / "out.zip"
    assert main(["export", str(exam), "--out", str(out), "--profile", "basic"]) == 0
    assert _manifest(out)[0]["files"][0]["time_offset_s"] is None


ENCODINGS = {
    # profile export settings -> the kinds of file written
    "uncompressed": ('lossless = "uncompressed"', {}),
    "rle": ('lossless = "rle"', {}),
    "jpeg-ls": ('lossless = "jpeg-ls"', {}),
    "jpeg": ('lossy = "keep"', {"photometric": "RGB", "jpeg_quality": 90}),
    "rgb": ('lossless = "uncompressed"', {"photometric": "RGB"}),
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("where", ["zip", "folder"])
def test_reader_gives_the_pixels_pydicom_gives(tmp_path: Path, encoding: str, where: str) -> None:
    setting, kind = ENCODINGS[encoding]
    user_file().parent.mkdir(parents=True, exist_ok=True)
    user_file().write_text(
        f'[enc]\ndescription = "x"\n[enc.export]\n{setting}\npixel_text = "off"\n'
        '[[enc.tags]]\nname = "site"\nvalues = { CFV = "1", PV = "2" }\n'
    )
    exam = tmp_path / "exam"
    exam.mkdir()
    cine = [sector_frame(ROWS, COLUMNS, seed=4, t=t) for t in range(3)]
    ds = us_dataset(
        cine, study=Study(), series_uid=generate_uid(), series_number=1, instance_number=1, **kind
    )
    ds.save_as(exam / "a.dcm", enforce_file_format=True)
    out = tmp_path / "out.zip"
    assert main(["export", str(exam), "--out", str(out), "--profile", "enc"]) in (0,)
    source: Path = out
    if where == "folder":
        source = tmp_path / "extracted"
        with zipfile.ZipFile(out) as zf:
            zf.extractall(source)
    data = ExportDataset(source)
    assert len(data) == 1
    item = data[0]
    with zipfile.ZipFile(out) as zf:
        expected = dcmread(zf.open(item.path))
    pixels = expected.pixel_array
    if expected.PhotometricInterpretation == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, expected)
    assert np.array_equal(item.frames, pixels)
    assert np.array_equal(item.frame(2), pixels[2])
    assert item.frames.shape[:3] == (3, item.meta["rows"], item.meta["columns"])


def test_filter_keeps_the_files_with_those_tags(tmp_path: Path) -> None:
    exam = tmp_path / "exam"
    study = Study()
    paths = [_write(exam, f"{n}.dcm", study=study) for n in ("a", "b", "c")]
    session = Session.load([str(exam)])
    for path, (site, side) in zip(
        paths, [("CFV", "left"), ("CFV", "right"), ("PV", "left")], strict=True
    ):
        key = discover([path]).files[0].key
        session.files[key] = FileDecision(
            tags={"site": site, "side": side, "purpose": "diagnostic"}
        )
    session.save()
    out = tmp_path / "out.zip"
    assert main(["export", str(exam), "--out", str(out), "--profile", "dvt"]) == 0
    data = ExportDataset(out)
    assert len(data) == 3
    cfv = data.filter(site="CFV")
    assert len(cfv) == 2 and {i.tags["side"] for i in cfv} == {"left", "right"}
    assert len(data.filter(site="CFV", side="left")) == 1
    assert len(data.filter(site="GSV")) == 0
    assert data[0].spacing_mm == (0.2, 0.2)


_ITERATE = """
import sys
from ustui.dataset import ExportDataset
item = ExportDataset(sys.argv[1])[0]
count = sum(1 for _ in item.iter_frames())
peak = next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))
print(count, int(peak) // 1024)
"""


def test_a_long_cine_is_read_frame_by_frame_in_bounded_memory(tmp_path: Path) -> None:
    rows, columns, frames = 600, 800, 200  # 288 MB of RGB frames
    frame = np.repeat(sector_frame(rows, columns, seed=2)[..., None], 3, axis=2)
    ds = us_dataset(
        [frame], study=Study(), series_uid=generate_uid(), series_number=1, instance_number=1,
        photometric="RGB",
    )  # fmt: skip
    ds.NumberOfFrames = frames
    ds.FrameTime = 33.3
    ds.FrameIncrementPointer = 0x00181063
    ds.PixelData = frame.tobytes() * frames
    exam = tmp_path / "exam"
    exam.mkdir()
    ds.save_as(exam / "big.dcm", enforce_file_format=True)
    del ds
    out = tmp_path / "big.zip"
    code = main(["export", str(exam), "--out", str(out), "--no-require-tags", "--workers", "1"])
    assert code == 0
    (exam / "big.dcm").unlink()
    done = subprocess.run(
        [sys.executable, "-c", _ITERATE, str(out)], capture_output=True, text=True, check=True
    )
    count, peak_mb = map(int, done.stdout.split())
    assert count == frames
    assert peak_mb < 200, f"peak {peak_mb} MB while iterating a 288 MB cine"


def test_verify_reports_a_manifest_that_does_not_match_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exam = tmp_path / "exam"
    _write(exam, "a.dcm", study=Study(), frames=2, FrameTime=40.0)
    out = tmp_path / "out.zip"
    assert main(["export", str(exam), "--out", str(out), "--no-require-tags"]) == 0
    assert main(["verify", str(out), "--against", str(exam), "--no-pixels"]) == 0
    # The same export with one field of the manifest changed.
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "manifest.json":
                document = json.loads(data)
                document["files"][0]["spacing_mm"] = [0.3, 0.3]
                document["files"][0]["regions"][0]["delta"] = [0.3, 0.3]
                data = json.dumps(document).encode()
            dst.writestr(info, data)
    capsys.readouterr()
    assert main(["verify", str(bad), "--against", str(exam), "--no-pixels"]) == 1
    assert "manifest regions does not match the file" in capsys.readouterr().out


_SHARED: ExportDataset | None = None


def _checksum(index: int) -> int:
    assert _SHARED is not None
    return int(_SHARED[index].frames.sum())


def test_forked_loader_workers_read_an_archive_the_parent_opened(tmp_path: Path) -> None:
    """DataLoader workers are forked after the dataset has read its manifest: each must
    read the ZIP through its own handle, or their reads corrupt each other."""
    global _SHARED
    exam = tmp_path / "exam"
    study = Study()
    for n in range(4):
        _write(exam, f"{n}.dcm", study=study, frames=3)
    out = tmp_path / "out.zip"
    assert main(["export", str(exam), "--out", str(out), "--no-require-tags"]) == 0
    _SHARED = ExportDataset(out)
    expected = [int(item.frames.sum()) for item in _SHARED]  # the parent's handle is open
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert pool.map(_checksum, list(range(4)) * 3) == expected * 3
