"""Planning and writing cropped, masked pixel data: every encoding, every policy, bounded memory."""

from __future__ import annotations

import copy
import io
import os
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import real_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.pixels.processing import apply_color_lut
from pydicom.uid import (
    JPEG2000,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSLossless,
    RLELossless,
)
from test_frames import (
    build_file,
    grey_palette,
    input_file,
    sample_frames,
    smooth_frames,
    ybr422_frames,
)

from ustui.core import jpeg_crop
from ustui.core.boxes import Box
from ustui.core.errors import Unsupported
from ustui.core.frames import FrameReader
from ustui.core.inputs import InputFile
from ustui.core.pixels import (
    PixelPlan,
    PixelStats,
    apply_plan,
    header_bytes,
    plan_pixels,
    write_image,
    write_pixel_data,
)
from ustui.core.profiles import ExportSettings
from ustui.core.reading import read_header

# --- helpers ---------------------------------------------------------------------------------


def output_header(header: Dataset) -> Dataset:
    """What the export hands to apply_plan: a copy of the header with media storage UIDs."""
    out = copy.deepcopy(header)
    out.file_meta.MediaStorageSOPClassUID = out.SOPClassUID
    out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    return out


def export_two_steps(
    source: InputFile, crop: Box, masks: list[Box], settings: ExportSettings
) -> tuple[PixelPlan, PixelStats, Dataset]:
    """Header first (apply_plan + pydicom), then write_pixel_data appended, read back."""
    header = read_header(source)
    with FrameReader(source, header) as reader:
        plan = plan_pixels(header, crop, masks, settings, reader=reader)
        out = output_header(header)
        apply_plan(plan, out)
        buffer = io.BytesIO()
        buffer.write(header_bytes(out))
        stats = write_pixel_data(plan, reader, buffer)
    return plan, stats, pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def export(
    source: InputFile,
    crop: Box,
    masks: list[Box],
    settings: ExportSettings,
    *,
    reader_given: bool = True,
) -> tuple[PixelPlan, PixelStats, Dataset]:
    """The whole file through write_image, read back."""
    header = read_header(source)
    with FrameReader(source, header) as reader:
        plan = plan_pixels(header, crop, masks, settings, reader=reader if reader_given else None)
        buffer = io.BytesIO()
        stats = write_image(plan, reader, output_header(header), buffer)
    return plan, stats, pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def decoded(ds: Dataset, *, as_rgb: bool = False) -> np.ndarray:
    """All frames of ``ds`` decoded by pydicom, with a frame axis."""
    arr = pydicom.pixels.pixel_array(ds, as_rgb=as_rgb)
    return arr if int(ds.get("NumberOfFrames", 1) or 1) > 1 else arr[None]


def rendered(ds: Dataset) -> np.ndarray:
    """What a viewer shows: RGB, palette applied, frame axis."""
    arr = decoded(ds, as_rgb=True)
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    return arr


def cut(frames: np.ndarray, crop: Box) -> np.ndarray:
    return frames[:, crop.top : crop.bottom, crop.left : crop.right].copy()


def blacken(frames: np.ndarray, crop: Box, masks: list[Box], black: object) -> np.ndarray:
    for mask in masks:
        box = mask.intersect(crop).translate(-crop.left, -crop.top)
        frames[:, box.top : box.bottom, box.left : box.right] = black
    return frames


# --- lossless input stays lossless, exact per pixel in every frame -------------------------

#: name -> (frames, build options, the black a mask must hold in the output's stored values)
INPUTS: dict[str, tuple[np.ndarray, dict[str, object], object]] = {
    "mono8": (sample_frames(4, 20, 26, seed=1), {}, 0),
    "mono16": (sample_frames(3, 20, 26, bits=12, seed=2), {"bits_stored": 12}, 0),
    "mono1": (sample_frames(3, 20, 26, seed=3), {"photometric": "MONOCHROME1"}, 255),
    "rgb_planar0": (sample_frames(3, 20, 26, samples=3), {"photometric": "RGB"}, (0, 0, 0)),
    "rgb_planar1": (
        sample_frames(3, 20, 26, samples=3),
        {"photometric": "RGB", "planar": 1},
        (0, 0, 0),
    ),
    "ybr_full": (sample_frames(3, 20, 26, samples=3), {"photometric": "YBR_FULL"}, (0, 128, 128)),
    "ybr_full_422": (ybr422_frames(3, 20, 26), {"photometric": "YBR_FULL_422"}, (0, 128, 128)),
    "palette": (
        sample_frames(3, 20, 26),
        {"photometric": "PALETTE COLOR", "palette": grey_palette()},
        7,
    ),
    "palette_big_endian": (
        sample_frames(2, 20, 26),
        {"photometric": "PALETTE COLOR", "palette": grey_palette(), "syntax": ExplicitVRBigEndian},
        7,
    ),
    "rle": (
        sample_frames(3, 20, 26, samples=3),
        {"photometric": "RGB", "syntax": RLELossless},
        (0, 0, 0),
    ),
    "jpeg_ls": (sample_frames(3, 20, 26), {"syntax": JPEGLSLossless}, 0),
    "big_endian": (sample_frames(3, 20, 26, bits=16), {"syntax": ExplicitVRBigEndian}, 0),
    "implicit": (
        sample_frames(3, 20, 26, samples=3),
        {"photometric": "RGB", "syntax": ImplicitVRLittleEndian},
        (0, 0, 0),
    ),
    "no_meta": (sample_frames(3, 20, 26), {"syntax": ImplicitVRLittleEndian, "meta": False}, 0),
}
CROP = Box(3, 2, 23, 17)
#: One mask inside the crop, one reaching outside it (clipped).
MASKS = [Box(5, 4, 9, 7), Box(20, 0, 30, 5)]
OUTPUTS = {"uncompressed": ExplicitVRLittleEndian, "rle": RLELossless, "jpeg-ls": JPEGLSLossless}


@pytest.mark.parametrize("family", sorted(OUTPUTS))
@pytest.mark.parametrize("name", sorted(INPUTS))
def test_crop_and_masks_are_exact_in_every_frame(tmp_path: Path, name: str, family: str) -> None:
    frames, options, black = INPUTS[name]
    source = build_file(tmp_path / f"{name}.dcm", frames, **options)  # type: ignore[arg-type]
    plan, stats, back = export_two_steps(source, CROP, MASKS, ExportSettings(lossless=family))

    syntax, crop, masks = OUTPUTS[family], CROP, (Box(5, 4, 9, 7), Box(20, 2, 23, 5))
    if name == "ybr_full" and family == "uncompressed":
        syntax = RLELossless  # the US Image IOD allows YBR_FULL only compressed
        assert plan.note == "YBR_FULL is kept as RLE Lossless"
    elif name == "ybr_full_422" and family == "uncompressed":
        # Subsampled pixels are cut on pixel pairs; the column each edge pair adds is
        # black, and the pair's shared chroma neutral.
        crop, masks = Box(2, 2, 24, 17), (Box(4, 4, 10, 7), Box(20, 2, 24, 5))
        assert plan.requested == CROP and plan.content == CROP
    else:
        assert plan.note == ""
    assert plan.transfer_syntax_out == syntax
    assert back.file_meta.TransferSyntaxUID == syntax
    assert not plan.lossy and not plan.reencoded
    assert (back.Rows, back.Columns, back.NumberOfFrames) == (crop.height, crop.width, len(frames))
    assert plan.crop == crop and plan.masks == masks
    expected = blacken(cut(frames, crop), crop, list(masks), black)
    if crop != CROP:
        margin = [Box(2, 2, 3, 17), Box(23, 2, 24, 17)]
        expected = blacken(expected, crop, margin, black)
        expected = blacken(expected[..., 1:], crop, [Box(2, 2, 4, 17), Box(22, 2, 24, 17)], 128)
        expected = np.concatenate([cut(frames, crop)[..., :1], expected], axis=-1)
        expected = blacken(expected, crop, [*masks, *margin], black)
    np.testing.assert_array_equal(decoded(back), expected)
    assert stats.frames == len(frames)
    assert stats.decoded_bytes == len(frames) * plan.frame_bytes


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_colour_is_right_for_each_photometric(tmp_path: Path, name: str) -> None:
    frames, options, _ = INPUTS[name]
    source = build_file(tmp_path / f"{name}.dcm", frames, **options)  # type: ignore[arg-type]
    plan, _, back = export_two_steps(source, CROP, [], ExportSettings())
    if options.get("photometric") == "PALETTE COLOR":
        # pydicom reads big-endian LUT data wrongly, so the expectation is built here.
        expected = np.stack(grey_palette(), axis=-1)[cut(frames, plan.crop)]
    else:
        original = pydicom.dcmread(source.path, force=True)
        original.file_meta.TransferSyntaxUID = read_header(source).file_meta.TransferSyntaxUID
        expected = cut(rendered(original), plan.crop)
    got = rendered(back)
    inside = np.zeros(got.shape[1:3], bool)
    content = plan.content.translate(-plan.crop.left, -plan.crop.top)
    inside[content.top : content.bottom, content.left : content.right] = True
    assert not got[:, ~inside].any()  # the margin a pixel-pair cut adds is black
    if plan.crop != plan.content:  # ... and the pairs it shares chroma with are grey
        inside[:, [content.left, content.right - 1]] = False
    np.testing.assert_array_equal(got[:, inside], expected[:, inside])
    assert ("PlanarConfiguration" in back) == (int(back.SamplesPerPixel) > 1)
    # The US Image IOD wants YBR_FULL colour-by-plane (PS3.3 C.8.5.6.1.16).
    assert back.get("PlanarConfiguration", 0) == (back.PhotometricInterpretation == "YBR_FULL")


@pytest.mark.parametrize("photometric", ["RGB", "YBR_FULL", "PALETTE COLOR", "MONOCHROME1"])
def test_masks_look_black(tmp_path: Path, photometric: str) -> None:
    samples = 3 if photometric in ("RGB", "YBR_FULL") else 1
    palette = grey_palette() if photometric == "PALETTE COLOR" else None
    frames = sample_frames(2, 20, 26, samples=samples)
    source = build_file(tmp_path / "a.dcm", frames, photometric=photometric, palette=palette)
    _, _, back = export_two_steps(source, CROP, MASKS, ExportSettings())
    shown = rendered(back)
    if photometric == "MONOCHROME1":
        shown = 255 - shown  # pydicom shows stored values; in MONOCHROME1 the maximum is black
    box = MASKS[0].translate(-CROP.left, -CROP.top)
    assert shown[:, box.top : box.bottom, box.left : box.right].max() <= 1  # YBR rounds by 1


def test_mask_black_of_signed_monochrome_is_the_minimum(tmp_path: Path) -> None:
    frames = sample_frames(2, 20, 26, bits=12).astype(np.int16) - 2048
    source = build_file(tmp_path / "s.dcm", frames, bits_stored=12, signed=True)
    _, _, back = export_two_steps(source, CROP, MASKS, ExportSettings())
    expected = blacken(cut(frames, CROP), CROP, MASKS, -2048)
    np.testing.assert_array_equal(decoded(back), expected)


# --- lossy input --------------------------------------------------------------------------------


def jpeg_input(
    tmp_path: Path, *, header: dict[str, object] | None = None
) -> tuple[InputFile, np.ndarray]:
    frames = smooth_frames(4, 48, 64)
    source = build_file(
        tmp_path / "jpeg.dcm",
        frames,
        photometric="YBR_FULL_422",
        syntax=JPEGBaseline8Bit,
        header=header,
    )
    return source, frames


def fragments(ds: Dataset) -> list[bytes]:
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))


def test_lossy_input_is_reencoded_as_jpeg_baseline_with_lossy_attributes(tmp_path: Path) -> None:
    source, frames = jpeg_input(tmp_path)
    crop, masks = Box(5, 3, 59, 41), [Box(10, 10, 30, 20)]
    plan, stats, back = export(
        source, crop, masks, ExportSettings(lossy="reencode", jpeg_quality=90)
    )

    assert plan.reencoded and plan.lossy and not plan.compressed_domain
    assert back.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert back.PhotometricInterpretation == "YBR_FULL_422" and back.PlanarConfiguration == 0
    assert (back.Rows, back.Columns) == (crop.height, crop.width)
    assert back.LossyImageCompression == "01"
    assert back.LossyImageCompressionMethod == "ISO_10918_1"
    encoded = sum(len(f) for f in fragments(back))
    assert float(back.LossyImageCompressionRatio) == pytest.approx(
        crop.width * crop.height * 3 * len(frames) / encoded, abs=0.01
    )
    assert stats.ratio == pytest.approx(float(back.LossyImageCompressionRatio), abs=0.01)
    shown = decoded(back, as_rgb=True).astype(int)
    expected = blacken(cut(frames, crop), crop, masks, 0).astype(int)
    assert np.abs(shown - expected).mean() < 4
    box = masks[0].translate(-crop.left, -crop.top)
    assert shown[:, box.top + 2 : box.bottom - 2, box.left + 2 : box.right - 2].max() < 12


def test_reencoding_appends_to_the_inputs_lossy_history(tmp_path: Path) -> None:
    history = {
        "LossyImageCompression": "01",
        "LossyImageCompressionMethod": "ISO_10918_1",
        "LossyImageCompressionRatio": "12.5",
    }
    source, _ = jpeg_input(tmp_path, header=history)
    _, stats, back = export(source, Box(0, 0, 32, 32), [], ExportSettings(lossy="reencode"))
    assert list(back.LossyImageCompressionMethod) == ["ISO_10918_1", "ISO_10918_1"]
    assert [str(v) for v in back.LossyImageCompressionRatio] == ["12.5", f"{stats.ratio:.2f}"]


def test_lossy_input_written_losslessly_stays_marked_lossy(tmp_path: Path) -> None:
    source, _ = jpeg_input(tmp_path)
    crop = Box(5, 3, 59, 41)
    header = read_header(source)
    with FrameReader(source, header) as reader:
        expected = cut(np.stack([reader.frame(i) for i in range(4)]), crop)
    plan, _, back = export(source, crop, [], ExportSettings(lossy="lossless"))
    assert plan.lossy and not plan.reencoded
    assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert back.PhotometricInterpretation == "RGB"
    assert back.LossyImageCompression == "01"
    assert "LossyImageCompressionMethod" not in back
    np.testing.assert_array_equal(decoded(back), expected)


def test_jpeg_baseline_is_cropped_in_the_compressed_domain(tmp_path: Path) -> None:
    source, _ = jpeg_input(tmp_path)
    plan, stats, back = export(source, Box(5, 3, 59, 41), [Box(20, 20, 25, 25)], ExportSettings())
    assert plan.compressed_domain and not plan.reencoded and plan.lossy
    assert plan.crop == Box(0, 0, 59, 41)  # left/top snapped out to the 16x8 MCU grid
    assert plan.requested == plan.content == Box(5, 3, 59, 41)
    assert plan.masks == (Box(16, 16, 32, 32),)  # widened to whole MCUs
    assert stats.reencoded_frames == 0
    assert back.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert back.PhotometricInterpretation == "YBR_FULL_422"
    assert back.LossyImageCompression == "01"
    assert "LossyImageCompressionMethod" not in back
    assert (back.Rows, back.Columns) == (41, 59)
    with FrameReader(source, read_header(source)) as reader:
        for index, fragment in enumerate(fragments(back)):
            wanted = jpeg_crop.crop_jpeg(
                reader.encoded_frame(index), plan.crop, plan.masks, content=plan.content
            )
            assert fragment.rstrip(b"\0") == wanted.rstrip(b"\0")
    shown = decoded(back, as_rgb=True)
    assert shown.shape == (4, 41, 59, 3)
    assert shown[:, 18:30, 18:30].max() < 12
    assert not shown[:, :3].any() and not shown[:, :, :5].any()  # the margin is black
    assert shown[:, 3:, 5:].mean() > 20


def test_frame_jpeg_crop_cannot_handle_is_reencoded_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = jpeg_input(tmp_path)
    real = jpeg_crop.crop_jpeg
    calls = []

    def flaky(data: bytes, crop: Box, masks: object, **options: object) -> bytes:
        calls.append(1)
        if len(calls) == 2:
            raise jpeg_crop.JpegCropUnsupported("restart markers")
        return real(data, crop, masks, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(jpeg_crop, "crop_jpeg", flaky)
    plan, stats, back = export(source, Box(5, 3, 59, 41), [], ExportSettings())
    assert plan.compressed_domain and stats.reencoded_frames == 1
    assert back.LossyImageCompressionMethod == "ISO_10918_1"
    assert float(back.LossyImageCompressionRatio) == pytest.approx(stats.ratio, abs=0.01)
    shown = decoded(back, as_rgb=True)
    assert shown.shape == (4, 41, 59, 3)
    # Re-encoded from pixels whose margin was black: only the encoder's rounding (and its
    # chroma interpolated from the crop's first column) is left.
    assert shown[1, :3].mean() <= 4 and shown[1, :, :5].mean() <= 4


def test_keep_without_a_reader_reencodes_and_says_why(tmp_path: Path) -> None:
    source, _ = jpeg_input(tmp_path)
    plan, _, back = export(source, Box(5, 3, 59, 41), [], ExportSettings(), reader_given=False)
    assert plan.reencoded and "no frame reader" in plan.note
    assert back.LossyImageCompressionMethod == "ISO_10918_1"


# --- plans from headers alone ---------------------------------------------------------------------


def header_for(
    syntax: str, *, photometric: str = "MONOCHROME2", bits: int = 8, samples: int = 1
) -> Dataset:
    """An input header alone (plans need no pixel data)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.Rows, ds.Columns = 40, 50
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.PixelRepresentation = 0
    if samples > 1:
        ds.PlanarConfiguration = 0
    if photometric == "PALETTE COLOR":
        order = ">u2" if syntax == ExplicitVRBigEndian else "<u2"
        for colour, lut in zip(("Red", "Green", "Blue"), grey_palette(), strict=True):
            ds.add_new(f"{colour}PaletteColorLookupTableDescriptor", "US", [256, 0, 16])
            ds.add_new(f"{colour}PaletteColorLookupTableData", "OW", lut.astype(order).tobytes())
    return ds


@pytest.mark.parametrize(
    ("header", "settings", "syntax", "note"),
    [
        (
            header_for(JPEGExtended12Bit, photometric="YBR_FULL", samples=3),
            ExportSettings(),
            JPEGBaseline8Bit,
            "JPEG Extended (Process 2 and 4) cannot be cropped without decoding",
        ),
        (
            header_for(JPEG2000, bits=16),
            ExportSettings(lossy="reencode"),
            ExplicitVRLittleEndian,
            "JPEG Baseline holds 8 bits only",
        ),
        (
            header_for(JPEG2000, photometric="PALETTE COLOR"),
            ExportSettings(lossy="reencode"),
            ExplicitVRLittleEndian,
            "JPEG would change palette indices",
        ),
        (
            header_for(ExplicitVRLittleEndian, bits=32),
            ExportSettings(lossless="rle"),
            ExplicitVRLittleEndian,
            "RLE Lossless cannot hold 32-bit MONOCHROME2",
        ),
        (
            header_for(ExplicitVRLittleEndian, bits=32),
            ExportSettings(lossless="jpeg-ls"),
            ExplicitVRLittleEndian,
            "cannot hold 32-bit MONOCHROME2",
        ),
    ],
)
def test_fallbacks_are_explained(
    header: Dataset, settings: ExportSettings, syntax: str, note: str
) -> None:
    plan = plan_pixels(header, Box(0, 0, 50, 40), [], settings)
    assert plan.transfer_syntax_out == syntax
    assert note in plan.note


def test_lossless_jpeg_2000_is_not_treated_as_lossy() -> None:
    header = header_for(JPEG2000)
    header.LossyImageCompression = "00"
    plan = plan_pixels(header, Box(0, 0, 50, 40), [], ExportSettings(lossy="reencode"))
    assert plan.transfer_syntax_out == ExplicitVRLittleEndian and not plan.lossy


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.4.111", "1.2.840.10008.1.2.4.102"])
def test_files_without_a_decoder_cannot_be_planned(syntax: str) -> None:
    with pytest.raises(Unsupported, match="no decoder for"):
        plan_pixels(header_for(syntax), Box(0, 0, 10, 10), [], ExportSettings())


def test_crop_outside_the_image_is_refused() -> None:
    with pytest.raises(Unsupported, match="outside the image"):
        plan_pixels(header_for(ExplicitVRLittleEndian), Box(60, 50, 90, 80), [], ExportSettings())


def test_apply_plan_is_idempotent_and_describes_the_output() -> None:
    header = header_for(ExplicitVRBigEndian, photometric="PALETTE COLOR")
    header.PlanarConfiguration = 0  # wrongly present for one sample per pixel
    header.SmallestImagePixelValue = 3
    header.add_new(0xFFFCFFFC, "OB", b"\0\0")  # trailing padding after the pixel data
    plan = plan_pixels(header, Box(5, 5, 25, 35), [], ExportSettings())
    out = copy.deepcopy(header)
    apply_plan(plan, out)
    once = copy.deepcopy(out)
    apply_plan(plan, out)
    assert out == once
    assert (out.Rows, out.Columns) == (30, 20)
    assert "PlanarConfiguration" not in out and "SmallestImagePixelValue" not in out
    assert 0xFFFCFFFC not in out and "NumberOfFrames" not in out
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    # The big-endian LUT data is little endian in the output.
    assert out.RedPaletteColorLookupTableData == grey_palette()[0].astype("<u2").tobytes()


# --- memory does not grow with the number of frames ------------------------------------------


def peak_while_writing(source: InputFile, settings: ExportSettings) -> int:
    header = read_header(source)
    with FrameReader(source, header) as reader, open(os.devnull, "wb") as sink:
        plan = plan_pixels(
            header, Box(8, 8, 248, 200), [Box(10, 10, 50, 30)], settings, reader=reader
        )
        tracemalloc.start()
        try:
            write_pixel_data(plan, reader, sink)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


@pytest.mark.parametrize(
    ("syntax", "settings", "many"),
    [
        (ExplicitVRLittleEndian, ExportSettings(), 120),
        (RLELossless, ExportSettings(lossless="rle"), 120),
        (JPEGBaseline8Bit, ExportSettings(lossy="reencode"), 120),
        # jpeg_crop runs Python per block, slow under tracemalloc: fewer frames.
        (JPEGBaseline8Bit, ExportSettings(lossy="keep"), 30),
    ],
)
def test_peak_memory_does_not_grow_with_frames(
    tmp_path: Path, syntax: str, settings: ExportSettings, many: int
) -> None:
    frame = smooth_frames(1, 256, 256)[0]
    photometric = "YBR_FULL_422" if syntax == JPEGBaseline8Bit else "RGB"
    peaks = []
    for count in (3, many):
        frames = np.ascontiguousarray(np.broadcast_to(frame, (count, *frame.shape)))
        source = build_file(
            tmp_path / f"{count}.dcm", frames, photometric=photometric, syntax=syntax
        )
        peaks.append(peak_while_writing(source, settings))
    # Ten times the frames or more, yet the peak stays within one frame of the small file's
    # (the small file goes first and pays for one-off caches).
    assert peaks[1] < peaks[0] + frame.nbytes
    assert peaks[1] < 12 * frame.nbytes


_BIG_CINE = """
import struct, sys
import numpy as np
from pathlib import Path
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid
from ustui.core.boxes import Box
from ustui.core.frames import FrameReader
from ustui.core.inputs import InputFile
from ustui.core.pixels import header_bytes, plan_pixels, write_image
from ustui.core.profiles import ExportSettings
from ustui.core.reading import read_header

def peak_rss():
    # VmHWM is this process image's peak (ru_maxrss on Linux keeps the forking parent's).
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise SystemExit("no VmHWM")


path, count = Path(sys.argv[1]), int(sys.argv[2])
rows, columns = 600, 800
ds = Dataset()
ds.file_meta = FileMetaDataset()
ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, count
ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
frame = np.random.default_rng(0).integers(0, 255, (rows, columns, 3), dtype=np.uint8)
with path.open("wb") as f:  # written frame by frame: this process never holds the cine
    f.write(header_bytes(ds))
    f.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, frame.nbytes * count))
    for _ in range(count):
        f.write(frame.tobytes())
source = InputFile(key=str(path), label=path.name, size=path.stat().st_size, path=path)
before = peak_rss()
header = read_header(source)
with FrameReader(source, header) as reader, open("/dev/null", "wb") as sink:
    plan = plan_pixels(header, Box(40, 30, 760, 570), [Box(50, 40, 300, 80)], ExportSettings())
    out = header.copy()
    stats = write_image(plan, reader, out, sink)
after = peak_rss()
print(source.size, stats.frames, after - before, after)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_exporting_a_cine_far_larger_than_the_memory_it_may_use(tmp_path: Path) -> None:
    # 240 frames of 800x600 RGB: a 330 MiB file, exported by a process whose whole peak
    # resident size stays far below it (PRODUCT: at most 300 MB for a 1 GB cine).
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", _BIG_CINE, str(tmp_path / "cine.dcm"), "240"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    )
    size, frames, growth, peak = (int(v) for v in done.stdout.split())
    assert frames == 240 and size > 320 * 1024**2
    assert growth < 40 * 1024**2
    assert peak < 200 * 1024**2  # the whole process, interpreter and libraries included


# --- the real files -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.name)
def test_real_file_is_written_or_unsupported(real_dir: Path, path: Path) -> None:
    source = input_file(path)
    header = read_header(source)
    if path.name.startswith("jpegxl"):
        with pytest.raises(Unsupported, match="no decoder for JPEG XL"):
            plan_pixels(header, Box(0, 0, 10, 10), [], ExportSettings())
        return
    rows, columns = int(header.Rows), int(header.Columns)
    crop = Box(columns // 8 + 3, rows // 8 + 1, columns - columns // 8, rows - rows // 10)
    masks = [Box(crop.left + 20, crop.top + 16, crop.left + 90, crop.top + 40)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan, stats, back = export(source, crop, masks, ExportSettings())
        with FrameReader(source, header) as reader:
            frames = np.stack([reader.frame(i) for i in range(reader.number_of_frames)])
        got = decoded(back, as_rgb=plan.transfer_syntax_out == JPEGBaseline8Bit)
    assert (int(back.Rows), int(back.Columns)) == (plan.crop.height, plan.crop.width)
    assert stats.frames == len(frames) == len(got)
    expected = blacken(cut(frames, plan.crop), plan.crop, list(plan.masks), plan.fill)
    if plan.lossy and plan.transfer_syntax_out == JPEGBaseline8Bit:
        assert np.abs(got.astype(int) - expected.astype(int)).mean() < 3
    else:
        np.testing.assert_array_equal(got, expected)


def test_big_endian_palette_file_renders_like_its_little_endian_twin(real_dir: Path) -> None:
    crop = Box(32, 24, 600, 400)
    shown = []
    for name in ("aloka16_pal_evrbe.dcm", "aloka16_pal_ivrle.dcm"):
        _, _, back = export(input_file(real_dir / name), crop, [], ExportSettings())
        assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        shown.append(rendered(back))
    original = pydicom.dcmread(real_dir / "aloka16_pal_ivrle.dcm")
    np.testing.assert_array_equal(shown[0], shown[1])
    np.testing.assert_array_equal(shown[1], cut(rendered(original), crop))
