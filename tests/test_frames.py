"""Decoding frames one at a time: every encoding, unused high bits, fragments, display.

``build_file`` here writes synthetic multi-frame files in every encoding ustui
reads; test_pixels.py and test_reading.py use it too.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import real_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels.encoders.base import get_encoder
from pydicom.pixels.processing import apply_color_lut, convert_color_space
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

from ustui.core import frames as frames_module
from ustui.core.errors import Unsupported, UstuiError
from ustui.core.frames import FrameReader, display_rgb
from ustui.core.inputs import InputFile
from ustui.core.reading import is_encapsulated, read_header

# --- building synthetic inputs ----------------------------------------------------------


def sample_frames(
    count: int, rows: int, columns: int, *, samples: int = 1, bits: int = 8, seed: int = 0
) -> np.ndarray:
    """Distinct, non-trivial frames (every frame differs, every pixel varies)."""
    rng = np.random.default_rng(seed)
    shape = (count, rows, columns) + ((samples,) if samples > 1 else ())
    return rng.integers(0, 1 << bits, size=shape, dtype=np.uint16 if bits > 8 else np.uint8)


def smooth_frames(count: int, rows: int, columns: int, *, samples: int = 3) -> np.ndarray:
    """Frames JPEG can hold well (for lossy comparisons)."""
    yy, xx = np.mgrid[0:rows, 0:columns]
    out = []
    for t in range(count):
        base = 128 + 90 * np.sin((xx + 3 * t) / 9.0) * np.cos(yy / 13.0)
        planes = [base, np.roll(base, 7, axis=1) * 0.8 + 20, 255 - base]
        out.append(np.stack(planes[:samples], axis=-1) if samples > 1 else base)
    return np.clip(np.array(out), 0, 255).astype(np.uint8)


def grey_palette(entries: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 16-bit palette whose darkest entry is not index 0 (index 7 is black)."""
    ramp = np.linspace(65535, 2000, entries).astype(np.uint16)
    red, green, blue = ramp.copy(), ramp[::-1].copy(), np.full(entries, 30000, np.uint16)
    red[7] = green[7] = blue[7] = 0
    return red, green, blue


def build_file(
    path: Path,
    frames: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    syntax: str = ExplicitVRLittleEndian,
    bits_stored: int | None = None,
    signed: bool = False,
    planar: int = 0,
    meta: bool = True,
    palette: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    encoded: list[bytes] | None = None,
    fragments_per_frame: int = 1,
    offset_table: bool = True,
    raw_pixels: bytes | None = None,
    header: dict[str, object] | None = None,
) -> InputFile:
    """Write ``frames`` (n, rows, columns[, 3]) as a DICOM file and return it as an input.

    For YBR_FULL_422 native data the chroma of each horizontal pixel pair must be
    equal (it is stored once). ``encoded`` gives compressed frames for
    encapsulated syntaxes (default: encoded here for RLE, JPEG-LS, JPEG Baseline).
    """
    count, rows, columns = frames.shape[:3]
    samples = frames.shape[3] if frames.ndim == 4 else 1
    allocated = frames.dtype.itemsize * 8
    ds = Dataset()
    ds.SOPClassUID = UltrasoundMultiFrameImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "SECRET^PATIENT"
    ds.PatientID = "ID-SECRET-1"
    ds.Modality = "US"
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples > 1:
        ds.PlanarConfiguration = planar
    ds.NumberOfFrames = count
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = allocated
    ds.BitsStored = bits_stored or allocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(signed)
    for key, value in (header or {}).items():
        setattr(ds, key, value)
    big = syntax == ExplicitVRBigEndian
    if palette is not None:
        order = ">u2" if big else "<u2"
        for colour, lut in zip(("Red", "Green", "Blue"), palette, strict=True):
            ds.add_new(f"{colour}PaletteColorLookupTableDescriptor", "US", [len(lut), 0, 16])
            ds.add_new(f"{colour}PaletteColorLookupTableData", "OW", lut.astype(order).tobytes())
    if is_encapsulated(syntax):
        if encoded is None:
            encoded = [_encode(frame, ds, syntax) for frame in frames]
        ds.PixelData = encapsulate(
            encoded, fragments_per_frame=fragments_per_frame, has_bot=offset_table
        )
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = (
            raw_pixels if raw_pixels is not None else _native(frames, photometric, planar, big)
        )
        ds["PixelData"].VR = "OW" if allocated > 8 else "OB"
    buffer = io.BytesIO()
    # pydicom refuses to write syntaxes it does not know: write a stand-in of the same length.
    stand_in = syntax if UID(syntax).is_transfer_syntax else _MPEG2
    if meta:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = stand_in
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    else:
        implicit = syntax == ImplicitVRLittleEndian
        pydicom.dcmwrite(buffer, ds, implicit_vr=implicit, little_endian=not big)
    content = buffer.getvalue().replace(stand_in.encode() + b"\0", syntax.encode() + b"\0", 1)
    path.write_bytes(content)
    return input_file(path)


_MPEG2 = "1.2.840.10008.1.2.4.100"


def input_file(path: Path) -> InputFile:
    return InputFile(key=str(path), label=path.name, size=path.stat().st_size, path=path)


def _native(frames: np.ndarray, photometric: str, planar: int, big: bool) -> bytes:
    data = frames
    if photometric == "YBR_FULL_422":
        # Y1 Y2 Cb Cr per horizontal pixel pair (PS3.3 C.7.6.3.1.2).
        data = np.stack(
            [
                frames[..., 0::2, 0],
                frames[..., 1::2, 0],
                frames[..., 0::2, 1],
                frames[..., 0::2, 2],
            ],
            axis=-1,
        )
    elif frames.ndim == 4 and planar == 1:
        data = frames.transpose(0, 3, 1, 2)
    order = ">" if big else "<"
    raw = np.ascontiguousarray(data).astype(data.dtype.newbyteorder(order)).tobytes()
    return raw + b"\0" * (len(raw) % 2)


def _encode(frame: np.ndarray, ds: Dataset, syntax: str) -> bytes:
    if syntax == JPEGBaseline8Bit:
        out = io.BytesIO()
        options = {"subsampling": "4:2:2"} if frame.ndim == 3 else {}
        Image.fromarray(frame).save(out, "JPEG", quality=90, **options)
        return out.getvalue()
    options = {
        "rows": ds.Rows,
        "columns": ds.Columns,
        "samples_per_pixel": ds.SamplesPerPixel,
        "bits_allocated": ds.BitsAllocated,
        "bits_stored": ds.BitsStored,
        "pixel_representation": ds.PixelRepresentation,
        "photometric_interpretation": ds.PhotometricInterpretation,
        "number_of_frames": 1,
    }
    if ds.SamplesPerPixel > 1:
        options["planar_configuration"] = 0
    return bytes(get_encoder(UID(syntax)).encode(np.ascontiguousarray(frame), **options))


def read_all(source: InputFile) -> tuple[FrameReader, np.ndarray]:
    header = read_header(source)
    with FrameReader(source, header) as reader:
        return reader, np.stack([reader.frame(i) for i in range(reader.number_of_frames)])


def ybr422_frames(count: int, rows: int, columns: int) -> np.ndarray:
    """Full-resolution YBR whose chroma is equal within each horizontal pixel pair."""
    frames = sample_frames(count, rows, columns, samples=3, seed=4)
    frames[..., 1::2, 1:] = frames[..., 0::2, 1:]
    return frames


# --- every encoding decodes to exactly what was stored ------------------------------------

LOSSLESS_CASES = {
    "mono8": dict(frames=sample_frames(4, 12, 10), photometric="MONOCHROME2"),
    "mono16": dict(
        frames=sample_frames(3, 9, 14, bits=12), photometric="MONOCHROME2", bits_stored=12
    ),
    "mono1": dict(frames=sample_frames(3, 8, 6), photometric="MONOCHROME1"),
    "rgb_planar0": dict(frames=sample_frames(3, 10, 12, samples=3), photometric="RGB"),
    "rgb_planar1": dict(frames=sample_frames(3, 10, 12, samples=3), photometric="RGB", planar=1),
    "ybr_full": dict(frames=sample_frames(3, 10, 12, samples=3), photometric="YBR_FULL"),
    "palette": dict(
        frames=sample_frames(3, 11, 13), photometric="PALETTE COLOR", palette=grey_palette()
    ),
    "rle_rgb": dict(
        frames=sample_frames(3, 10, 12, samples=3), photometric="RGB", syntax=RLELossless
    ),
    "rle_mono16": dict(frames=sample_frames(3, 10, 12, bits=16), syntax=RLELossless),
    "rle_multi_fragment": dict(
        frames=sample_frames(5, 10, 12),
        syntax=RLELossless,
        fragments_per_frame=2,
        offset_table=True,
    ),
    "jpegls_ybr": dict(
        frames=sample_frames(3, 20, 24, samples=3), photometric="YBR_FULL", syntax=JPEGLSLossless
    ),
    "jpegls_palette": dict(
        frames=sample_frames(3, 20, 24),
        photometric="PALETTE COLOR",
        syntax=JPEGLSLossless,
        palette=grey_palette(),
    ),
    "big_endian16": dict(frames=sample_frames(3, 9, 7, bits=16), syntax=ExplicitVRBigEndian),
    "big_endian_rgb": dict(
        frames=sample_frames(3, 9, 7, samples=3),
        photometric="RGB",
        syntax=ExplicitVRBigEndian,
        planar=1,
    ),
    "big_endian_palette": dict(
        frames=sample_frames(2, 9, 7),
        photometric="PALETTE COLOR",
        syntax=ExplicitVRBigEndian,
        palette=grey_palette(),
    ),
    "implicit": dict(
        frames=sample_frames(3, 9, 7, samples=3), photometric="RGB", syntax=ImplicitVRLittleEndian
    ),
    "no_meta": dict(frames=sample_frames(3, 9, 7), syntax=ImplicitVRLittleEndian, meta=False),
    "no_meta_explicit": dict(frames=sample_frames(2, 9, 7, bits=16), meta=False),
}


@pytest.mark.parametrize("case", sorted(LOSSLESS_CASES))
def test_lossless_encodings_decode_to_the_stored_values(tmp_path: Path, case: str) -> None:
    spec = dict(LOSSLESS_CASES[case])
    expected = spec.pop("frames")
    source = build_file(tmp_path / f"{case}.dcm", expected, **spec)  # type: ignore[arg-type]
    reader, got = read_all(source)
    assert reader.photometric == spec.get("photometric", "MONOCHROME2")
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_native_ybr_full_422_becomes_full_resolution_ybr_full(tmp_path: Path) -> None:
    expected = ybr422_frames(3, 6, 8)
    source = build_file(tmp_path / "ybr422.dcm", expected, photometric="YBR_FULL_422")
    reader, got = read_all(source)
    assert reader.photometric == "YBR_FULL"
    np.testing.assert_array_equal(got, expected)


def test_big_endian_8_bit_ow_with_odd_frame_length(tmp_path: Path) -> None:
    # 3 x 5 pixels: each frame is 15 bytes, so 16-bit swapped words straddle frames.
    expected = sample_frames(3, 3, 5)
    stream = expected.tobytes() + b"\0"
    swapped = np.frombuffer(stream, "<u2").astype(">u2").tobytes()
    source = build_file(
        tmp_path / "be8.dcm", expected, syntax=ExplicitVRBigEndian, raw_pixels=swapped
    )
    ds = pydicom.dcmread(source.path)
    ds["PixelData"].VR = "OW"
    ds.save_as(source.path, enforce_file_format=True)
    _, got = read_all(input_file(source.path))
    np.testing.assert_array_equal(got, expected)


def test_jpeg_frames_are_decoded_to_rgb_one_by_one(tmp_path: Path) -> None:
    expected = smooth_frames(4, 32, 48)
    source = build_file(
        tmp_path / "jpeg.dcm", expected, photometric="YBR_FULL_422", syntax=JPEGBaseline8Bit
    )
    reader, got = read_all(source)
    assert reader.photometric == "RGB"
    assert np.abs(got.astype(int) - expected.astype(int)).mean() < 3


def test_encoded_frame_returns_each_frames_codestream(tmp_path: Path) -> None:
    data = smooth_frames(3, 16, 16)
    codestreams = [_encode(f, Dataset(), JPEGBaseline8Bit) for f in data]
    source = build_file(
        tmp_path / "jpeg.dcm",
        data,
        photometric="YBR_FULL_422",
        syntax=JPEGBaseline8Bit,
        encoded=codestreams,
        fragments_per_frame=2,
        offset_table=False,
    )
    with FrameReader(source, read_header(source)) as reader:
        for index, codestream in enumerate(codestreams):
            assert reader.encoded_frame(index).rstrip(b"\0") == codestream.rstrip(b"\0")


@pytest.mark.parametrize("offset_table", [True, False])
def test_fragments_are_grouped_into_frames(tmp_path: Path, offset_table: bool) -> None:
    data = smooth_frames(4, 16, 24)
    source = build_file(
        tmp_path / "jpeg.dcm",
        data,
        photometric="YBR_FULL_422",
        syntax=JPEGBaseline8Bit,
        fragments_per_frame=3,
        offset_table=offset_table,
    )
    _, got = read_all(source)
    assert got.shape == data.shape
    assert np.abs(got.astype(int) - data.astype(int)).mean() < 3


# --- unused high bits never come out --------------------------------------------------------


def test_bits_above_bits_stored_are_cleared(tmp_path: Path) -> None:
    values = sample_frames(2, 6, 5, bits=12)
    with_overlay = values | np.uint16(0xA000)  # overlay bits hidden in the unused high bits
    source = build_file(tmp_path / "hidden.dcm", with_overlay, bits_stored=12)
    _, got = read_all(source)
    np.testing.assert_array_equal(got, values)


def test_signed_values_are_sign_extended_from_bits_stored(tmp_path: Path) -> None:
    values = np.array([[[-2048, -1, 0, 2047]]], dtype=np.int16)
    stored = (values.view(np.uint16) & 0x0FFF) | np.uint16(0x5000)
    source = build_file(tmp_path / "signed.dcm", stored.view(np.int16), bits_stored=12, signed=True)
    _, got = read_all(source)
    np.testing.assert_array_equal(got, values)


def test_rle_hidden_high_bits_are_cleared(tmp_path: Path) -> None:
    values = sample_frames(2, 6, 5, bits=10)
    source = build_file(
        tmp_path / "rle.dcm", values | np.uint16(0x8000), syntax=RLELossless, bits_stored=16
    )
    ds = pydicom.dcmread(source.path)
    ds.BitsStored, ds.HighBit = 10, 9
    ds.save_as(source.path, enforce_file_format=True)
    _, got = read_all(input_file(source.path))
    np.testing.assert_array_equal(got, values)


# --- what cannot be decoded is refused at creation -----------------------------------------


@pytest.mark.parametrize(
    ("syntax", "name"),
    [
        ("1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression"),
        ("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level"),
        ("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1"),
        ("1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1"),
    ],
)
def test_no_decoder_is_unsupported_when_the_reader_is_created(
    tmp_path: Path, syntax: str, name: str
) -> None:
    source = build_file(
        tmp_path / "video.dcm", sample_frames(2, 8, 8), syntax=syntax, encoded=[b"\0" * 10] * 2
    )
    header = read_header(source)
    with pytest.raises(Unsupported, match=f"no decoder for {name}"):
        FrameReader(source, header)


def test_missing_libjpeg_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = build_file(
        tmp_path / "jpll.dcm", sample_frames(1, 8, 8), syntax=JPEGLosslessSV1, encoded=[b"\0" * 10]
    )
    header = read_header(source)
    decoder = frames_module.get_decoder(JPEGLosslessSV1)
    monkeypatch.setattr(type(decoder), "is_available", property(lambda self: False))
    with pytest.raises(Unsupported, match=r"pylibjpeg-libjpeg \(the ustui\[gpl-codecs\] extra\)"):
        FrameReader(source, header)


def test_truncated_native_pixel_data_is_unsupported(tmp_path: Path) -> None:
    data = sample_frames(4, 8, 8)
    source = build_file(tmp_path / "short.dcm", data, raw_pixels=data[:3].tobytes())
    with pytest.raises(Unsupported, match="3 of 4 frames"):
        FrameReader(source, read_header(source))


def test_truncated_encapsulated_pixel_data_is_unsupported(tmp_path: Path) -> None:
    source = build_file(tmp_path / "rle.dcm", sample_frames(3, 8, 8), syntax=RLELossless)
    content = source.path.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(content[: len(content) - 40])
    with pytest.raises(Unsupported, match="truncated"):
        FrameReader(input_file(cut), read_header(input_file(cut)))


def test_corrupt_frame_is_unsupported_with_its_number(tmp_path: Path) -> None:
    data = smooth_frames(2, 16, 16)
    good = _encode(data[0], Dataset(), JPEGBaseline8Bit)
    source = build_file(
        tmp_path / "bad.dcm",
        data,
        photometric="YBR_FULL_422",
        syntax=JPEGBaseline8Bit,
        encoded=[good, b"\xff\xd8\xff\xdbgarbage!"],
    )
    with FrameReader(source, read_header(source)) as reader:
        reader.frame(0)
        with pytest.raises(Unsupported, match="frame 2 cannot be decoded"):
            reader.frame(1)


def test_frames_read_from_a_zip_member(tmp_path: Path) -> None:
    data = sample_frames(5, 8, 9, samples=3)
    source = build_file(tmp_path / "a.dcm", data, photometric="RGB", syntax=RLELossless)
    archive = tmp_path / "exam.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(source.path, "exam/a.dcm")
    member = InputFile(
        key="zip", label="exam.zip/exam/a.dcm", size=source.size, path=archive, member="exam/a.dcm"
    )
    with FrameReader(member, read_header(member)) as reader:
        got = [reader.frame(i) for i in (0, 4, 2)]  # out of order: seeks back in the member
    for frame, index in zip(got, (0, 4, 2), strict=True):
        np.testing.assert_array_equal(frame, data[index])


# --- display ------------------------------------------------------------------------------


def test_display_applies_palette_and_converts_ybr(tmp_path: Path) -> None:
    palette = grey_palette()
    data = sample_frames(1, 6, 7)
    source = build_file(tmp_path / "pal.dcm", data, photometric="PALETTE COLOR", palette=palette)
    header = read_header(source)
    with FrameReader(source, header) as reader:
        shown = display_rgb(reader.frame(0), reader)
    expected = (apply_color_lut(data[0], pydicom.dcmread(source.path)) >> 8).astype(np.uint8)
    np.testing.assert_array_equal(shown, expected)

    ybr = sample_frames(1, 6, 8, samples=3)
    source = build_file(tmp_path / "ybr.dcm", ybr, photometric="YBR_FULL")
    with FrameReader(source, read_header(source)) as reader:
        shown = display_rgb(reader.frame(0), reader)
    np.testing.assert_array_equal(shown, convert_color_space(ybr[0], "YBR_FULL", "RGB"))


def test_display_windows_16_bit_and_inverts_monochrome1(tmp_path: Path) -> None:
    data = np.array([[[0, 1000, 2000, 4000]]], dtype=np.uint16)
    source = build_file(
        tmp_path / "m1.dcm",
        data,
        photometric="MONOCHROME1",
        bits_stored=12,
        header={"WindowCenter": 2000, "WindowWidth": 4000},
    )
    with FrameReader(source, read_header(source)) as reader:
        shown = display_rgb(reader.frame(0), reader)
    assert shown.dtype == np.uint8 and shown.shape == (1, 4, 3)
    grey = shown[0, :, 0]
    assert grey[0] == 255 and grey[3] == 0 and grey[0] > grey[1] > grey[2] > grey[3]


# --- the real files --------------------------------------------------------------------------


@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.name)
def test_real_file_decodes_every_frame_like_pydicom(real_dir: Path, path: Path) -> None:
    source = input_file(path)
    header = read_header(source)
    if path.name.startswith("jpegxl"):
        with pytest.raises(Unsupported, match="no decoder for JPEG XL"):
            FrameReader(source, header)
        return
    with FrameReader(source, header) as reader:
        got = np.stack([reader.frame(i) for i in range(reader.number_of_frames)])
        shown = display_rgb(got[0], reader)
    assert shown.shape == (reader.rows, reader.columns, 3) and shown.dtype == np.uint8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        ds.file_meta.TransferSyntaxUID = header.file_meta.TransferSyntaxUID
        for tag in [t for t in ds.keys() if t.group == 0xFFFE]:  # noqa: SIM118
            del ds[tag]
        expected = pydicom.pixels.pixel_array(ds, as_rgb=reader.photometric == "RGB")
    expected = expected.reshape(got.shape)
    if ds.file_meta.TransferSyntaxUID in (JPEGBaseline8Bit, JPEGExtended12Bit):
        # Pillow upsamples chroma differently from pydicom's default path.
        assert np.abs(got.astype(int) - expected.astype(int)).mean() < 1.5
    else:
        np.testing.assert_array_equal(got, expected)


@pytest.fixture(scope="module")
def jpeg_and_rle(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Two fixed encapsulated files (hypothesis needs the same bytes for every example)."""
    folder = tmp_path_factory.mktemp("fuzz")
    jpeg = build_file(
        folder / "j.dcm",
        smooth_frames(3, 16, 16),
        photometric="YBR_FULL_422",
        syntax=JPEGBaseline8Bit,
        offset_table=False,
    )
    rle = build_file(
        folder / "r.dcm", sample_frames(3, 8, 8, samples=3), photometric="RGB", syntax=RLELossless
    )
    return [jpeg.path.read_bytes(), rle.path.read_bytes()]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damaged_pixel_data_only_ever_raises_ustui_errors(
    tmp_path: Path, jpeg_and_rle: list[bytes], data: st.DataObject
) -> None:
    content = bytearray(jpeg_and_rle[data.draw(st.integers(0, 1))])
    if data.draw(st.booleans()):
        del content[data.draw(st.integers(400, len(content) - 1)) :]
    else:
        for _ in range(data.draw(st.integers(1, 8))):
            content[data.draw(st.integers(400, len(content) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path / "damaged.dcm"
    path.write_bytes(bytes(content))
    source = input_file(path)
    try:
        with FrameReader(source, read_header(source)) as reader:
            for index in range(reader.number_of_frames):
                assert reader.frame(index).shape[:2] == (reader.rows, reader.columns)
    except UstuiError as exc:
        assert "\n" not in str(exc)
