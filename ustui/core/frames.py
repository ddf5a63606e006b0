"""Decoding frames one at a time, straight from the file.

A :class:`FrameReader` opens its input once, finds the Pixel Data element and,
for encapsulated data, the fragments of every frame; each call to
:meth:`FrameReader.frame` then reads and decodes one frame only, so memory does
not grow with the number of frames (and a ZIP member is read forwards).

Decoded frames keep the stored colour space wherever that is lossless: RGB and
YBR_FULL stay as they are, native YBR_FULL_422 becomes full-resolution YBR_FULL,
PALETTE COLOR stays indices. 8-bit JPEG (Baseline/Extended) is decoded by
Pillow to RGB, JPEG 2000 YBR_ICT/YBR_RCT by OpenJPEG to RGB; ``photometric``
always says what the arrays hold. Bits above Bits Stored are cleared (or
sign-extended), so overlays hidden in unused high bits never come out.
"""

from __future__ import annotations

import bisect
import logging
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from io import BytesIO
from types import TracebackType
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_color_lut, convert_color_space
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEG2000TransferSyntaxes,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
)

from ustui.core.errors import Unsupported, UstuiError
from ustui.core.inputs import InputFile
from ustui.core.reading import (
    is_encapsulated,
    open_dataset,
    parse_file,
    read_failure,
    transfer_syntax_name,
)

logger = logging.getLogger(__name__)

_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_PALETTE = "PALETTE COLOR"
_DEFINED_PHOTOMETRICS = {
    *_MONOCHROME,
    _PALETTE,
    "RGB",
    "HSV",
    "ARGB",
    "CMYK",
    "XYB",
    "YBR_FULL",
    "YBR_FULL_422",
    "YBR_PARTIAL_422",
    "YBR_PARTIAL_420",
    "YBR_ICT",
    "YBR_RCT",
}
_ITEM = 0xFFFEE000
_PIXELS_END_EARLY = "truncated file: the pixel data ends early"
#: Longest codec message quoted in a reason.
_MAX_MESSAGE = 200
_SEQUENCE_END = 0xFFFEE0DD
#: Codestream starts that open a new frame when fragments must be grouped by content.
_FRAME_STARTS = (b"\xff\xd8", b"\xff\x4f", b"\x00\x00\x00\x0c")
#: Palette LUT elements whose OW data follow the file's byte order.
PALETTE_DATA = (
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "AlphaPaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
    "SegmentedAlphaPaletteColorLookupTableData",
)
PALETTE_DESCRIPTORS = (
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "AlphaPaletteColorLookupTableDescriptor",
)


@dataclass(frozen=True)
class ImageInfo:
    """The Image Pixel module of a header, checked, and what decoding will yield."""

    transfer_syntax: str
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    """As stored (the header's Photometric Interpretation)."""
    planar_configuration: int
    number_of_frames: int
    decoded_photometric: str
    """Photometric Interpretation of the arrays :meth:`FrameReader.frame` returns."""

    @property
    def dtype(self) -> np.dtype[Any]:
        """The numpy dtype of decoded samples (native byte order)."""
        kind = "i" if self.pixel_representation else "u"
        return np.dtype(f"{kind}{self.bits_allocated // 8}")


def is_pillow_jpeg(info: ImageInfo) -> bool:
    """8-bit JPEG Baseline/Extended, decoded with Pillow (fast, permissively licensed)."""
    return info.transfer_syntax == JPEGBaseline8Bit or (
        info.transfer_syntax == JPEGExtended12Bit and info.bits_stored <= 8
    )


def image_info(header: Dataset, *, label: str | None = None) -> ImageInfo:
    """Check the Image Pixel module of ``header`` and describe the decoded frames.

    Raises
    ------
    Unsupported
        When the attributes are missing, absurd or describe pixels ustui cannot
        decode and clean.
    """
    ts = str(header.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian))
    try:
        rows = int(header.Rows)
        columns = int(header.Columns)
        samples = int(header.get("SamplesPerPixel", 1) or 1)
        allocated = int(header.BitsAllocated)
        stored = int(header.get("BitsStored", allocated) or allocated)
        representation = int(header.get("PixelRepresentation", 0) or 0)
        photometric = str(header.PhotometricInterpretation).strip().upper()
        planar = int(header.get("PlanarConfiguration", 0) or 0)
        frames = int(header.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        raise Unsupported(
            "the image attributes (rows, columns, bits) are missing or invalid", source=label
        ) from None
    if rows <= 0 or columns <= 0 or frames <= 0:
        raise Unsupported("the image is empty (no rows, columns or frames)", source=label)
    if allocated not in (8, 16, 32):
        raise Unsupported(f"{allocated}-bit pixel data is not supported", source=label)
    if not 0 < stored <= allocated or representation not in (0, 1):
        raise Unsupported("Bits Stored or Pixel Representation is invalid", source=label)
    decoded = _decoded_photometric(ts, samples, photometric, stored)
    if decoded is None:
        # Quote the value only when it is a defined term: a damaged one may run on into PHI.
        shown = (
            photometric
            if photometric in _DEFINED_PHOTOMETRICS
            else "this Photometric Interpretation"
        )
        raise Unsupported(
            f"{shown} with {samples} sample(s) per pixel is not supported", source=label
        )
    return ImageInfo(
        transfer_syntax=ts,
        rows=rows,
        columns=columns,
        samples_per_pixel=samples,
        bits_allocated=allocated,
        bits_stored=stored,
        pixel_representation=representation,
        photometric=photometric,
        planar_configuration=planar,
        number_of_frames=frames,
        decoded_photometric=decoded,
    )


def _decoded_photometric(ts: str, samples: int, photometric: str, stored: int) -> str | None:
    """What decoding yields, or None when the combination is not supported."""
    if samples == 1:
        return photometric if photometric in (*_MONOCHROME, _PALETTE) else None
    if samples != 3:
        return None
    if ts in (JPEGBaseline8Bit, JPEGExtended12Bit) and stored <= 8:
        return "RGB" if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422") else None
    if ts in JPEG2000TransferSyntaxes and photometric in ("YBR_ICT", "YBR_RCT"):
        return "RGB"
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        # Native 4:2:2 is upsampled; the codecs return full-resolution components.
        return "YBR_FULL"
    return "RGB" if photometric == "RGB" else None


def decoder_problem(info: ImageInfo) -> str | None:
    """Why the frames of an image cannot be decoded here, or None when they can."""
    ts = info.transfer_syntax
    name = transfer_syntax_name(ts)
    if is_pillow_jpeg(info):
        return None
    try:
        decoder = get_decoder(UID(ts))
    except (NotImplementedError, ValueError):
        return f"no decoder for {name}"
    if decoder.is_available:
        return None
    if ts in (JPEGLossless, JPEGLosslessSV1, JPEGExtended12Bit):
        return f"no decoder for {name}: install pylibjpeg-libjpeg (the ustui[gpl-codecs] extra)"
    return f"no decoder for {name}"


class FrameReader:
    """Reads and decodes the frames of one input, one at a time.

    Use as a context manager, or call :meth:`close`.

    Parameters
    ----------
    source : InputFile
        The input; opened once, for reading only.
    header : Dataset
        Its header, as returned by :func:`ustui.core.reading.read_header`.

    Raises
    ------
    Unsupported
        When there is no decoder for the transfer syntax, the image attributes are
        unusable, or the pixel data is truncated or cannot be split into frames.
    """

    def __init__(self, source: InputFile, header: Dataset) -> None:
        self.label = source.label
        self.header = header
        self.info = image_info(header, label=source.label)
        problem = decoder_problem(self.info)
        if problem:
            raise Unsupported(problem, source=source.label)
        self.number_of_frames = self.info.number_of_frames
        self.rows = self.info.rows
        self.columns = self.info.columns
        self.samples_per_pixel = self.info.samples_per_pixel
        self.photometric = self.info.decoded_photometric
        self.encapsulated = is_encapsulated(self.info.transfer_syntax)
        self._palette: np.ndarray | None = None
        self._frames: list[list[tuple[int, int]]] = []
        self._complete = True
        """False when encapsulated pixel data lack their closing delimiter (cut short?)."""
        self._stream, size = open_dataset(source)
        try:
            _, self._pixels = parse_file(self._stream, size=size, label=source.label)
            if self.encapsulated:
                self._frames = self._frame_table(size)
            else:
                self._check_native_length()
        except BaseException:
            self._stream.close()
            raise

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the input."""
        self._stream.close()

    # --- reading ------------------------------------------------------------------

    def _read(self, offset: int, length: int) -> bytes:
        try:
            self._stream.seek(offset)
            data = self._stream.read(length)
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise UstuiError(read_failure(exc), source=self.label) from None
        if len(data) != length:
            raise Unsupported(_PIXELS_END_EARLY, source=self.label)
        return data

    @property
    def _native_frame_bytes(self) -> int:
        info = self.info
        samples = 2 if info.photometric == "YBR_FULL_422" else info.samples_per_pixel
        return info.rows * info.columns * samples * info.bits_allocated // 8

    def _check_native_length(self) -> None:
        length = self._pixels.length
        if length is None:
            raise Unsupported(
                "the pixel data is encapsulated but the transfer syntax is not", source=self.label
            )
        if length < self._native_frame_bytes * self.number_of_frames:
            present = length // self._native_frame_bytes
            raise Unsupported(
                f"truncated pixel data: {present} of {self.number_of_frames} frames present",
                source=self.label,
            )

    def _frame_table(self, size: int) -> list[list[tuple[int, int]]]:
        """(offset, length) of every fragment of every frame."""
        if self._pixels.length is not None:
            raise Unsupported(
                "the transfer syntax is compressed but the pixel data is not encapsulated",
                source=self.label,
            )
        offsets, fragments, starts = self._scan_items(size)
        frames = self.number_of_frames
        if not fragments:
            raise Unsupported("the pixel data holds no frames", source=self.label)
        if frames == 1:
            return [fragments]
        if len(fragments) == frames:
            return [[f] for f in fragments]
        first_item = fragments[0][0] - 8
        for table in (offsets, self._extended_offsets()):
            if len(table) == frames and table[0] == 0 and table == sorted(table):
                groups: list[list[tuple[int, int]]] = [[] for _ in range(frames)]
                for fragment in fragments:
                    groups[bisect.bisect_right(table, fragment[0] - 8 - first_item) - 1].append(
                        fragment
                    )
                if all(groups):
                    return groups
        grouped: list[list[tuple[int, int]]] = []
        for fragment, start in zip(fragments, starts, strict=True):
            if start.startswith(_FRAME_STARTS) or not grouped:
                grouped.append([])
            grouped[-1].append(fragment)
        if len(grouped) != frames:
            if not self._complete:
                # Whole fragments, then the end of the file: the last frames are missing.
                raise Unsupported(_PIXELS_END_EARLY, source=self.label)
            raise Unsupported(
                f"cannot split the pixel data into {frames} frames", source=self.label
            )
        return grouped

    def _scan_items(self, size: int) -> tuple[list[int], list[tuple[int, int]], list[bytes]]:
        """Walk the items of encapsulated pixel data without reading their values."""
        pos = self._pixels.offset
        tag, bot_length = self._item_header(pos)
        if tag != _ITEM or bot_length % 4:
            raise Unsupported("corrupt encapsulated pixel data", source=self.label)
        if pos + 8 + bot_length > size:
            raise Unsupported(_PIXELS_END_EARLY, source=self.label)
        bot = self._read(pos + 8, bot_length)
        offsets = list(struct.unpack(f"<{bot_length // 4}I", bot))
        pos += 8 + bot_length
        fragments: list[tuple[int, int]] = []
        starts: list[bytes] = []
        self._complete = False
        while pos < size:
            tag, length = self._item_header(pos)
            if tag == _SEQUENCE_END:
                self._complete = True
                break
            if tag != _ITEM:
                raise Unsupported("corrupt encapsulated pixel data", source=self.label)
            if pos + 8 + length > size:
                raise Unsupported(_PIXELS_END_EARLY, source=self.label)
            fragments.append((pos + 8, length))
            starts.append(self._stream.read(min(length, 4)))
            pos += 8 + length
        if not fragments and not self._complete:
            raise Unsupported(_PIXELS_END_EARLY, source=self.label)
        return offsets, fragments, starts

    def _item_header(self, pos: int) -> tuple[int, int]:
        group, element, length = struct.unpack("<HHI", self._read(pos, 8))
        return group << 16 | element, length

    def _extended_offsets(self) -> list[int]:
        table = self.header.get("ExtendedOffsetTable")
        if table is None or not isinstance(table.value, bytes):
            return []
        return [int(v) for v in np.frombuffer(table.value, dtype="<u8")]

    # --- decoding -----------------------------------------------------------------

    def encoded_frame(self, index: int) -> bytes:
        """The compressed bytes of one frame (its fragments joined).

        Only for encapsulated transfer syntaxes; raises ValueError otherwise.
        """
        if not self.encapsulated:
            raise ValueError("native pixel data has no encoded frames")
        self._check_index(index)
        return b"".join(self._read(offset, length) for offset, length in self._frames[index])

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based), decoded.

        Returns
        -------
        numpy.ndarray
            Shape (rows, columns) or (rows, columns, 3), native byte order, in
            :attr:`photometric`. A new writeable array on every call.

        Raises
        ------
        Unsupported
            When the frame's data is truncated or cannot be decoded.
        """
        self._check_index(index)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if not self.encapsulated:
                    arr, have = self._decode_native(index)
                elif is_pillow_jpeg(self.info):
                    arr, have = self._decode_pillow(self.encoded_frame(index))
                else:
                    arr, have = self._decode_pydicom(self.encoded_frame(index))
        except UstuiError:
            raise
        except Exception as exc:
            logger.debug("frame %d failed to decode: %s", index, type(exc).__name__)
            if not self._complete:
                raise Unsupported(_PIXELS_END_EARLY, source=self.label) from None
            raise Unsupported(
                f"frame {index + 1} cannot be decoded ({codec_message(exc)})", source=self.label
            ) from None
        return self._conform(arr, have, index)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.number_of_frames:
            raise IndexError(f"frame {index} out of range 0..{self.number_of_frames - 1}")

    def _options(self) -> dict[str, Any]:
        info = self.info
        options: dict[str, Any] = {
            "rows": info.rows,
            "columns": info.columns,
            "samples_per_pixel": info.samples_per_pixel,
            "bits_allocated": info.bits_allocated,
            "bits_stored": info.bits_stored,
            "pixel_representation": info.pixel_representation,
            "photometric_interpretation": info.photometric,
            "number_of_frames": 1,
            "pixel_keyword": "PixelData",
            "as_rgb": False,
        }
        if info.samples_per_pixel > 1:
            options["planar_configuration"] = info.planar_configuration
        return options

    def _decode_native(self, index: int) -> tuple[np.ndarray, str]:
        size = self._native_frame_bytes
        start = self._pixels.offset + index * size
        vr = self._pixels.vr
        big_endian = self.info.transfer_syntax == ExplicitVRBigEndian
        if big_endian and self.info.bits_allocated == 8 and vr == "OW":
            # 8-bit data in big-endian OW is byte-swapped in 16-bit words that may
            # straddle frames: swap an aligned span, then cut the frame out.
            skew = (start - self._pixels.offset) % 2
            span = self._read(start - skew, size + skew + (size + skew) % 2)
            data = np.frombuffer(span, ">u2").astype("<u2").tobytes()[skew : skew + size]
            vr = "OB"
        else:
            data = self._read(start, size)
        options = self._options()
        options["pixel_vr"] = vr
        decoder = get_decoder(UID(self.info.transfer_syntax))
        arr, props = decoder.as_array(data, index=0, **options)
        return arr, str(props.get("photometric_interpretation", self.info.photometric))

    def _decode_pillow(self, data: bytes) -> tuple[np.ndarray, str]:
        with Image.open(BytesIO(data), formats=("JPEG",)) as image:
            want = "RGB" if self.samples_per_pixel == 3 else "L"
            converted = image if image.mode == want else image.convert(want)
            arr = np.array(converted)
        return arr, self.photometric

    def _decode_pydicom(self, data: bytes) -> tuple[np.ndarray, str]:
        # One frame as its own encapsulated pixel data: empty offset table + one item.
        padded = data + b"\0" * (len(data) % 2)
        wrapped = struct.pack("<HHIHHI", 0xFFFE, 0xE000, 0, 0xFFFE, 0xE000, len(padded)) + padded
        decoder = get_decoder(UID(self.info.transfer_syntax))
        arr, props = decoder.as_array(wrapped, index=0, **self._options())
        return arr, str(props.get("photometric_interpretation", self.info.photometric))

    def _conform(self, arr: np.ndarray, have: str, index: int) -> np.ndarray:
        """Shape, dtype, colour space and unused bits as promised, whatever the codec did."""
        info = self.info
        shape = (info.rows, info.columns) + ((3,) if info.samples_per_pixel == 3 else ())
        if arr.shape != shape:
            raise Unsupported(
                f"frame {index + 1} does not match the image size in the header", source=self.label
            )
        if arr.dtype != info.dtype:
            arr = arr.astype(info.dtype)
        if not arr.flags.writeable:
            arr = arr.copy()
        have = "YBR_FULL" if have == "YBR_FULL_422" else have
        if have != self.photometric and info.samples_per_pixel == 3:
            # The codestream disagreed with the header (e.g. RGB component IDs).
            arr = convert_color_space(arr, have, self.photometric)
        mask_unused_bits(arr, info.bits_stored, signed=bool(info.pixel_representation))
        return arr

    # --- palette ------------------------------------------------------------------

    @property
    def palette(self) -> np.ndarray:
        """PALETTE COLOR only: RGB of every index, shape (2**BitsAllocated, 3)."""
        if self._palette is None:
            self._palette = palette_lut(self.header)
        return self._palette


def codec_message(exc: Exception) -> str:
    """What a codec said about a frame it could not decode, after the error's kind: its
    own words (codecs describe the codestream, never header values), cut short. pydicom's
    "raised by all available plugins:" is replaced by what each plugin said."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]
    words = "".join(c if c.isprintable() else " " for c in "; ".join(lines))
    if len(words) > _MAX_MESSAGE:
        words = words[: _MAX_MESSAGE - 1] + "…"
    return f"{type(exc).__name__}: {words}" if words else type(exc).__name__


def mask_unused_bits(arr: np.ndarray, bits_stored: int, *, signed: bool) -> None:
    """Clear (or sign-extend over) the bits above ``bits_stored``, in place."""
    spare = arr.dtype.itemsize * 8 - bits_stored
    if spare <= 0:
        return
    if signed:
        np.left_shift(arr, spare, out=arr)
        np.right_shift(arr, spare, out=arr)
    else:
        np.bitwise_and(arr, (1 << bits_stored) - 1, out=arr, casting="unsafe")


def palette_module(header: Dataset) -> Dataset:
    """The palette descriptors and LUT data of ``header``, with OW data little endian.

    Big-endian files store LUT data words big endian; pydicom writes such bytes
    unchanged, so they are swapped here once, for display and for the output.
    """
    module = Dataset()
    module.file_meta = FileMetaDataset()
    module.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    swap = header.file_meta.get("TransferSyntaxUID") == ExplicitVRBigEndian
    for keyword in (*PALETTE_DESCRIPTORS, *PALETTE_DATA):
        if keyword not in header:
            continue
        elem = header[keyword]
        value = elem.value
        if keyword in PALETTE_DATA and swap and isinstance(value, bytes):
            value = np.frombuffer(value[: len(value) // 2 * 2], ">u2").astype("<u2").tobytes()
        module.add_new(elem.tag, "US" if keyword in PALETTE_DESCRIPTORS else "OW", value)
    return module


def palette_lut(header: Dataset) -> np.ndarray:
    """RGB (uint8 or uint16, as the LUT) of every possible index of a PALETTE COLOR image."""
    allocated = int(header.BitsAllocated)
    indices = np.arange(2**allocated, dtype=f"u{allocated // 8}")
    try:
        rgb: np.ndarray = apply_color_lut(indices, palette_module(header))
    except Exception as exc:
        raise Unsupported(f"unusable palette ({type(exc).__name__})") from None
    return np.ascontiguousarray(rgb[..., :3])


def display_rgb(frame: np.ndarray, reader: FrameReader) -> np.ndarray:
    """An 8-bit RGB rendering of ``frame`` for the preview.

    The palette is applied, YBR converted to RGB, and grey levels above 8 bits or
    MONOCHROME1 are windowed (Window Center/Width from the header when present,
    else the frame's range).

    Parameters
    ----------
    frame : numpy.ndarray
        A frame from ``reader.frame()`` (or a crop of one).
    reader : FrameReader
        The reader it came from.

    Returns
    -------
    numpy.ndarray
        Shape (rows, columns, 3), dtype uint8.
    """
    photometric = reader.photometric
    if photometric == _PALETTE:
        rgb: np.ndarray = reader.palette[frame]
        return rgb if rgb.dtype == np.uint8 else (rgb >> 8).astype(np.uint8)
    if photometric in ("RGB", "YBR_FULL"):
        rgb8 = frame if frame.dtype == np.uint8 else _to_uint8(frame, reader.info.bits_stored)
        if photometric == "YBR_FULL":
            rgb8 = convert_color_space(rgb8, "YBR_FULL", "RGB")
        return rgb8
    grey = _window(frame, reader)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    return np.repeat(grey[..., None], 3, axis=2)


def _to_uint8(frame: np.ndarray, bits_stored: int) -> np.ndarray:
    shift = max(bits_stored - 8, 0)
    return (frame.astype(np.int64) >> shift).clip(0, 255).astype(np.uint8)


def _window(frame: np.ndarray, reader: FrameReader) -> np.ndarray:
    info = reader.info
    if frame.dtype == np.uint8 and info.bits_stored == 8:
        return frame
    center, width = _first_window(reader.header)
    if center is None or width is None or width <= 1:
        low, high = (float(frame.min()), float(frame.max())) if frame.size else (0.0, 1.0)
    else:
        low, high = center - width / 2, center + width / 2
    scale = 255.0 / max(high - low, 1.0)
    return ((frame.astype(np.float32) - low) * scale).clip(0, 255).astype(np.uint8)


def _first_window(header: Dataset) -> tuple[float | None, float | None]:
    values = []
    for keyword in ("WindowCenter", "WindowWidth"):
        value = header.get(keyword)
        if value is not None and not isinstance(value, (int, float, str)):
            value = value[0] if len(value) else None
        try:
            values.append(float(value) if value not in (None, "") else None)
        except (TypeError, ValueError):
            values.append(None)
    return values[0], values[1]
