"""Planning the output encoding and streaming the cropped, masked Pixel Data element.

Three steps, so that the export can write the header before the pixels:

1. :func:`plan_pixels` decides, from the input header, the crop, the masks and
   the profile's export settings, what will be written (transfer syntax,
   photometric interpretation, lossy or not) and why (``note``).
2. :func:`apply_plan` makes the output header's Image Pixel module describe
   exactly that.
3. :func:`write_pixel_data` writes the complete (7FE0,0010) element, one frame at
   a time: decode, crop, blacken the masks, encode.

The Lossy Image Compression Ratio of a re-encoded file is known only once every
frame is encoded, while the header goes first. :func:`write_pixel_data` returns
:class:`PixelStats`; calling ``apply_plan(plan, out, stats)`` again records the
ratio. :func:`write_image` does the whole sequence (spooling the pixel data to a
temporary file when the ratio must precede it) and is the simplest way to use
this module.

Policy (issue 3, PRODUCT §8): lossless input stays lossless (uncompressed, or
RLE / JPEG-LS when the profile says so); big-endian becomes little-endian;
lossy input (JPEG Baseline/Extended, lossy JPEG 2000, near-lossless JPEG-LS) is
cropped in the compressed domain when it is JPEG Baseline and the profile keeps
lossy data, otherwise re-encoded as JPEG Baseline, or written losslessly when
the profile says ``lossy = "lossless"``.
"""

from __future__ import annotations

import functools
import shutil
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any, BinaryIO

import numpy as np
from PIL import Image
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.encoders.base import ENCODING_PROFILES, get_encoder
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from ustui.core import jpeg_crop
from ustui.core.boxes import Box
from ustui.core.errors import Unsupported
from ustui.core.fan import Sector
from ustui.core.frames import (
    PALETTE_DATA,
    PALETTE_DESCRIPTORS,
    FrameReader,
    ImageInfo,
    decoder_problem,
    image_info,
    palette_lut,
    palette_module,
)
from ustui.core.profiles import ExportSettings
from ustui.core.reading import is_encapsulated, transfer_syntax_name

JPEG_METHOD = "ISO_10918_1"
"""Lossy Image Compression Method of JPEG Baseline (PS3.3 C.7.6.1.1.5)."""

_LOSSLESS_SYNTAX = {
    "uncompressed": ExplicitVRLittleEndian,
    "rle": RLELossless,
    "jpeg-ls": JPEGLSLossless,
}
_LOSSY_SYNTAXES = {JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless}
#: Lossy unless the header says otherwise (Lossy Image Compression "00").
_MAYBE_LOSSY_SYNTAXES = {JPEG2000, HTJ2K}
#: Elements that describe input pixel data that is not written, or values cropping changes.
_STALE = (
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
)
_PIXEL_GROUP_START = 0x7FE00000


@dataclass(frozen=True)
class PixelPlan:
    """What :func:`write_pixel_data` will write for one input, and why."""

    crop: Box
    """The box written, in original coordinates: the requested crop, or (JPEG kept in the
    compressed domain, native YBR_FULL_422) that box on the encoding's grid."""
    masks: tuple[Box, ...]
    """Boxes blackened in every frame, in original coordinates, inside ``crop``."""
    transfer_syntax_in: str
    transfer_syntax_out: str
    photometric_out: str
    lossy: bool
    """The output pixels have been lossy-compressed at some point (input lossy or re-encoded)."""
    reencoded: bool
    """A lossy encoding is applied now (JPEG Baseline)."""
    note: str
    """Why a fallback was used; empty otherwise."""
    info: ImageInfo
    """The input's Image Pixel module, as decoded by the frame reader."""
    fill: tuple[int, ...]
    """The black written into masks, in the decoded frames' colour space."""
    jpeg_quality: int = 95
    compressed_domain: bool = False
    """JPEG Baseline frames are cropped and masked without decoding (``jpeg_crop``)."""
    prior_methods: tuple[str, ...] = ()
    """The input's Lossy Image Compression Method values."""
    prior_ratios: tuple[str, ...] = ()
    """The input's Lossy Image Compression Ratio values."""
    palette: tuple[tuple[str, Any], ...] = ()
    """PALETTE COLOR: descriptor and LUT data values (keyword, value), data little endian."""
    requested: Box | None = None
    """The crop asked for, clipped to the image, when ``crop`` differs from it."""
    fan: Sector | None = None
    """Black out what lies outside this sector, inside the crop (profile ``fan_mask``)."""

    @property
    def content(self) -> Box:
        """The part of ``crop`` written with content: every pixel outside it is black."""
        return self.crop if self.requested is None else self.requested.intersect(self.crop)

    @property
    def frames(self) -> int:
        return self.info.number_of_frames

    @property
    def frame_bytes(self) -> int:
        """Size of one output frame, uncompressed."""
        info = self.info
        samples = self.crop.width * self.crop.height * info.samples_per_pixel
        if (
            self.photometric_out == "YBR_FULL_422"
            and self.transfer_syntax_out == ExplicitVRLittleEndian
        ):
            samples = samples * 2 // 3  # two chroma samples per pair of pixels
        return samples * info.bits_allocated // 8


@dataclass(frozen=True)
class PixelStats:
    """What :func:`write_pixel_data` wrote."""

    frames: int
    decoded_bytes: int
    """Size of the written pixels uncompressed."""
    encoded_bytes: int
    """Size of the pixel data as written (the element's value, or the fragments' data)."""
    reencoded_frames: int = 0
    """Frames of a compressed-domain plan that had to be re-encoded instead."""

    @property
    def ratio(self) -> float:
        """Lossy Image Compression Ratio: uncompressed size / compressed size."""
        return self.decoded_bytes / max(self.encoded_bytes, 1)


@dataclass(frozen=True)
class WrittenGrid:
    """Where an export's crop and masks land for one input, known before any frame is
    cut: what the TUI's export view draws as the user moves the boxes."""

    layout: jpeg_crop.JpegLayout | None = None
    """JPEG Baseline kept in the compressed domain: its MCU grid."""
    inward: bool = False
    """The JPEG crop snaps inward (profile ``crop_snap = "inward"``)."""
    pair_columns: int = 0
    """Native YBR_FULL_422: the image's width; the crop is cut on pixel pairs."""

    def crop(self, box: Box) -> Box:
        """The box written for the crop ``box`` (already clipped to the image)."""
        if self.layout is not None:
            return jpeg_crop.snap_crop(box, self.layout, inward=self.inward)
        return _even(box, self.pair_columns) if self.pair_columns else box

    def mask(self, box: Box) -> Box:
        """The box blackened for the mask ``box``."""
        if self.layout is not None:
            return _widen(box, self.layout.mcu_width, self.layout.mcu_height)
        return _even(box, self.pair_columns) if self.pair_columns else box


def written_grid(header: Dataset, settings: ExportSettings, reader: FrameReader) -> WrittenGrid:
    """The grid an export of this input writes on, as :func:`plan_pixels` decides it.

    Raises
    ------
    Unsupported
        When the pixels cannot be decoded.
    """
    info = image_info(header)
    plan = plan_pixels(header, Box.full(info.columns, info.rows), (), settings, reader=reader)
    if plan.compressed_domain:
        layout = jpeg_crop.parse_layout(reader.encoded_frame(0))
        return WrittenGrid(layout=layout, inward=settings.crop_snap == "inward")
    if (
        plan.photometric_out == "YBR_FULL_422"
        and plan.transfer_syntax_out == ExplicitVRLittleEndian
    ):
        return WrittenGrid(pair_columns=info.columns)
    return WrittenGrid()


# --- planning -------------------------------------------------------------------------


def plan_pixels(
    header: Dataset,
    crop: Box,
    masks: Sequence[Box],
    settings: ExportSettings,
    *,
    reader: FrameReader | None = None,
    fan: Sector | None = None,
) -> PixelPlan:
    """Decide how the pixels of one input are written.

    Parameters
    ----------
    header : Dataset
        The input's header, from :func:`ustui.core.reading.read_header`.
    crop : Box
        Wanted crop, original coordinates; clipped to the image.
    masks : Sequence[Box]
        Boxes to blacken in every frame, original coordinates; clipped to the crop.
    settings : ExportSettings
        The profile's output policy (``lossy``, ``lossless``, ``jpeg_quality``).
    reader : FrameReader, optional
        The input's reader. JPEG Baseline is cropped in the compressed domain
        (``lossy="keep"``) only when it is given, since the MCU grid is read from
        the first frame; without it such input is re-encoded.
    fan : Sector, optional
        Black out what lies outside this sector inside the crop, in every frame.

    Returns
    -------
    PixelPlan

    Raises
    ------
    Unsupported
        When the pixels cannot be decoded (and so cannot be cleaned), or the crop
        lies outside the image.
    """
    info = image_info(header)
    problem = decoder_problem(info)
    if problem:
        raise Unsupported(problem)
    box = crop.clip(info.columns, info.rows)
    if box.is_empty:
        raise Unsupported("the crop box lies outside the image")
    ts_in = info.transfer_syntax
    lossy_syntax = ts_in in _LOSSY_SYNTAXES or (
        ts_in in _MAYBE_LOSSY_SYNTAXES and header.get("LossyImageCompression") != "00"
    )
    was_lossy = lossy_syntax or header.get("LossyImageCompression") == "01"
    common: dict[str, Any] = {
        "transfer_syntax_in": ts_in,
        "info": info,
        "jpeg_quality": settings.jpeg_quality,
        "prior_methods": _strings(header.get("LossyImageCompressionMethod")),
        "prior_ratios": _strings(header.get("LossyImageCompressionRatio")),
        "palette": _palette_values(header) if info.photometric == "PALETTE COLOR" else (),
        "fill": _black(header, info),
        "fan": fan,
    }

    if lossy_syntax and settings.lossy != "lossless":
        note = ""
        if settings.lossy == "keep":
            kept = _plan_compressed_domain(info, box, masks, reader, was_lossy, settings, common)
            if isinstance(kept, PixelPlan):
                return kept
            note = kept
        refusal = _jpeg_refusal(info)
        if refusal is None:
            return PixelPlan(
                crop=box,
                masks=_clip_masks(masks, box),
                transfer_syntax_out=JPEGBaseline8Bit,
                photometric_out="YBR_FULL_422" if info.samples_per_pixel == 3 else info.photometric,
                lossy=True,
                reencoded=True,
                note=note,
                **common,
            )
        return _lossless_plan(
            box,
            masks,
            "uncompressed",
            was_lossy,
            f"not re-encoded: {refusal}; written uncompressed",
            common,
        )
    return _lossless_plan(box, masks, settings.lossless, was_lossy, "", common)


def _plan_compressed_domain(
    info: ImageInfo,
    box: Box,
    masks: Sequence[Box],
    reader: FrameReader | None,
    was_lossy: bool,
    settings: ExportSettings,
    common: dict[str, Any],
) -> PixelPlan | str:
    """A plan that keeps JPEG Baseline as it is, or the reason (a note) why not."""
    name = transfer_syntax_name(info.transfer_syntax)
    if info.transfer_syntax != JPEGBaseline8Bit:
        return f"re-encoded: {name} cannot be cropped without decoding"
    if info.photometric not in ("YBR_FULL_422", "YBR_FULL", "MONOCHROME1", "MONOCHROME2"):
        return f"re-encoded: {info.photometric} JPEG is not cropped in the compressed domain"
    if reader is None:
        return "re-encoded: no frame reader was given to read the JPEG block grid"
    # INTEGRATION POINT (jpeg_crop): the crop snaps out to the MCU grid of the first
    # frame; masks widen to whole MCUs exactly as jpeg_crop.crop_jpeg blackens them.
    try:
        layout = jpeg_crop.parse_layout(reader.encoded_frame(0))
    except jpeg_crop.JpegCropUnsupported as exc:
        return f"re-encoded: {exc.reason}"
    if (layout.width, layout.height) != (info.columns, info.rows):
        return "re-encoded: the JPEG size differs from the header's"
    grid = WrittenGrid(layout=layout, inward=settings.crop_snap == "inward")
    snapped = grid.crop(box)
    widened = tuple(grid.mask(mask) for mask in _clip_masks(masks, snapped))
    return PixelPlan(
        crop=snapped,
        masks=_clip_masks(widened, snapped),
        transfer_syntax_out=JPEGBaseline8Bit,
        photometric_out=info.photometric,
        lossy=was_lossy,
        reencoded=False,
        note="",
        compressed_domain=True,
        requested=None if snapped == box else box,
        **common,
    )


def _lossless_plan(
    box: Box, masks: Sequence[Box], family: str, was_lossy: bool, note: str, common: dict[str, Any]
) -> PixelPlan:
    info: ImageInfo = common["info"]
    syntax = _LOSSLESS_SYNTAX.get(family, ExplicitVRLittleEndian)
    native_422 = info.photometric == "YBR_FULL_422" and not is_encapsulated(info.transfer_syntax)
    if (
        syntax == ExplicitVRLittleEndian
        and info.decoded_photometric == "YBR_FULL"
        and not native_422
    ):
        # The US Image IOD allows YBR_FULL only compressed (PS3.3 C.8.5.6.1.2), and
        # converting to RGB would round: keep it exact as RLE.
        syntax = RLELossless
        note = "; ".join(filter(None, [note, "YBR_FULL is kept as RLE Lossless"]))
    if syntax != ExplicitVRLittleEndian:
        refusal = _encoder_refusal(syntax, info)
        if refusal:
            syntax = ExplicitVRLittleEndian
            note = "; ".join(filter(None, [note, f"written uncompressed: {refusal}"]))
    photometric = info.decoded_photometric
    written = box
    if syntax == ExplicitVRLittleEndian and native_422:
        # Keep the subsampling (YBR_FULL would be a different, larger image that the
        # US Image IOD does not allow uncompressed): crop and masks on pixel pairs,
        # the column a pair adds to the crop written black.
        photometric = "YBR_FULL_422"
        grid = WrittenGrid(pair_columns=info.columns)
        written = grid.crop(box)
        masks = [grid.mask(m) for m in masks]
    return PixelPlan(
        crop=written,
        requested=None if written == box else box,
        masks=_clip_masks(masks, written),
        transfer_syntax_out=syntax,
        photometric_out=photometric,
        lossy=was_lossy,
        reencoded=False,
        note=note,
        **common,
    )


def _even(box: Box, columns: int) -> Box:
    """``box`` widened to start and end on even columns (within an even-width image)."""
    right = min(box.right + box.right % 2, columns - columns % 2)
    return Box(box.left - box.left % 2, box.top, right, box.bottom)


def _jpeg_refusal(info: ImageInfo) -> str | None:
    """Why JPEG Baseline cannot hold these pixels, or None."""
    if info.decoded_photometric == "PALETTE COLOR":
        return "JPEG would change palette indices"
    if info.bits_stored > 8 or info.bits_allocated != 8:
        return "JPEG Baseline holds 8 bits only"
    if info.pixel_representation:
        return "JPEG Baseline holds unsigned samples only"
    return None


def _encoder_refusal(syntax: str, info: ImageInfo) -> str | None:
    """Why ``syntax`` cannot losslessly encode these pixels here, or None."""
    name = transfer_syntax_name(syntax)
    encoder = get_encoder(UID(syntax))
    if not encoder.is_available:
        return f"no {name} encoder installed"
    for photometric, samples, representations, allocated, stored in ENCODING_PROFILES[UID(syntax)]:
        if (
            photometric == info.decoded_photometric
            and samples == info.samples_per_pixel
            and info.pixel_representation in representations
            and info.bits_allocated in allocated
            and info.bits_stored in stored
        ):
            return None
    return f"{name} cannot hold {info.bits_stored}-bit {info.decoded_photometric}"


def _clip_masks(masks: Sequence[Box], crop: Box) -> tuple[Box, ...]:
    clipped = (mask.intersect(crop) for mask in masks)
    return tuple(dict.fromkeys(m for m in clipped if not m.is_empty))


def _widen(box: Box, width: int, height: int) -> Box:
    """``box`` grown to whole cells of a ``width`` x ``height`` grid."""
    return Box(
        box.left - box.left % width,
        box.top - box.top % height,
        -(-box.right // width) * width,
        -(-box.bottom // height) * height,
    )


def _strings(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, (str, int, float)):
        return (str(value),)
    return tuple(str(v) for v in value)


def _palette_values(header: Dataset) -> tuple[tuple[str, Any], ...]:
    module = palette_module(header)
    values: list[tuple[str, Any]] = []
    for keyword in (*PALETTE_DESCRIPTORS, *PALETTE_DATA):
        if keyword in module:
            value = module[keyword].value
            values.append((keyword, tuple(value) if keyword in PALETTE_DESCRIPTORS else value))
    return tuple(values)


def _black(header: Dataset, info: ImageInfo) -> tuple[int, ...]:
    """Black in the colour space of the decoded frames."""
    bits, signed = info.bits_stored, bool(info.pixel_representation)
    low = -(1 << (bits - 1)) if signed else 0
    high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    photometric = info.decoded_photometric
    if photometric == "MONOCHROME1":
        return (high,)
    if photometric == "YBR_FULL":
        return (0, 1 << (bits - 1), 1 << (bits - 1))
    if photometric == "RGB":
        return (0, 0, 0)
    if photometric == "PALETTE COLOR":
        rgb = palette_lut(header)[: 1 << bits].astype(np.float64)
        return (int(np.argmin(rgb @ np.array([0.299, 0.587, 0.114]))),)
    return (low,)


# --- the output header ------------------------------------------------------------------


def apply_plan(plan: PixelPlan, out: Dataset, stats: PixelStats | None = None) -> None:
    """Make the output header's Image Pixel module describe what is written.

    Idempotent: call it before writing the header, and again with the
    :class:`PixelStats` of :func:`write_pixel_data` to record the Lossy Image
    Compression Ratio of a re-encoding (until then the ratio holds the input's
    values only).

    Parameters
    ----------
    plan : PixelPlan
        From :func:`plan_pixels`.
    out : Dataset
        The output (de-identified) header; changed in place. Elements from Pixel
        Data on are removed: the pixel data is appended by :func:`write_pixel_data`.
    stats : PixelStats, optional
        What :func:`write_pixel_data` wrote.
    """
    info = plan.info
    out.Rows = plan.crop.height
    out.Columns = plan.crop.width
    out.SamplesPerPixel = info.samples_per_pixel
    out.PhotometricInterpretation = plan.photometric_out
    if info.samples_per_pixel > 1:
        out.PlanarConfiguration = _planar_configuration(plan)
    elif "PlanarConfiguration" in out:
        del out.PlanarConfiguration
    out.BitsAllocated = info.bits_allocated
    out.BitsStored = info.bits_stored
    out.HighBit = info.bits_stored - 1
    out.PixelRepresentation = info.pixel_representation
    if "NumberOfFrames" in out or info.number_of_frames > 1:
        out.NumberOfFrames = info.number_of_frames
    for keyword, value in plan.palette:
        # Descriptors are US (SS when indices are signed); LUT data is little-endian OW.
        if keyword in PALETTE_DESCRIPTORS:
            out.add_new(keyword, "SS" if info.pixel_representation else "US", list(value))
        else:
            out.add_new(keyword, "OW", value)
    for keyword in _STALE:
        if keyword in out:
            delattr(out, keyword)
    for tag in [t for t in out.keys() if t >= _PIXEL_GROUP_START]:  # noqa: SIM118
        del out[tag]
    if plan.lossy:
        out.LossyImageCompression = "01"
    if plan.reencoded or (stats is not None and stats.reencoded_frames):
        out.LossyImageCompressionMethod = [*plan.prior_methods, JPEG_METHOD]
        ratios = list(plan.prior_ratios)
        if stats is not None:
            ratios.append(_ratio_text(stats.ratio))
        if ratios:
            out.LossyImageCompressionRatio = ratios
        elif "LossyImageCompressionRatio" in out:
            del out.LossyImageCompressionRatio
    if not isinstance(getattr(out, "file_meta", None), FileMetaDataset):
        out.file_meta = FileMetaDataset()
    out.file_meta.TransferSyntaxUID = UID(plan.transfer_syntax_out)


def _ratio_text(ratio: float) -> str:
    """A DS value (at most 16 characters)."""
    return f"{ratio:.2f}"[:16]


# --- writing ----------------------------------------------------------------------------


def write_pixel_data(plan: PixelPlan, reader: FrameReader, out: BinaryIO) -> PixelStats:
    """Write the complete (7FE0,0010) Pixel Data element, Explicit VR Little Endian.

    Native output is one OB/OW element of even length; encapsulated output has
    an undefined length, an empty Basic Offset Table item, one fragment per frame
    and a sequence delimiter. Frames are decoded, cropped, masked and encoded one
    at a time, so peak memory does not depend on the number of frames.

    Parameters
    ----------
    plan : PixelPlan
        From :func:`plan_pixels` for the reader's input.
    reader : FrameReader
        The input's open reader.
    out : BinaryIO
        Where the element goes (after the header).

    Returns
    -------
    PixelStats
        Sizes written; pass to :func:`apply_plan` to record a compression ratio.

    Raises
    ------
    Unsupported
        When a frame cannot be decoded.
    """
    if (reader.rows, reader.columns, reader.number_of_frames) != (
        plan.info.rows,
        plan.info.columns,
        plan.frames,
    ):
        raise ValueError("the plan was made for another image")
    if plan.transfer_syntax_out == ExplicitVRLittleEndian:
        return _write_native(plan, reader, out)
    return _write_encapsulated(plan, reader, out)


def _planar_configuration(plan: PixelPlan) -> int:
    """Colour-by-plane for YBR_FULL, as the US Image IOD requires (PS3.3 C.8.5.6.1.16);
    colour-by-pixel everywhere else. (RLE stores planes whatever the attribute says.)"""
    return 1 if plan.photometric_out == "YBR_FULL" else 0


def _write_native(plan: PixelPlan, reader: FrameReader, out: BinaryIO) -> PixelStats:
    length = plan.frame_bytes * plan.frames
    vr = b"OB" if plan.info.bits_allocated == 8 else b"OW"
    out.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, vr, 0, length + length % 2))
    little = plan.info.dtype.newbyteorder("<")
    by_plane = _planar_configuration(plan) == 1
    pairs = plan.photometric_out == "YBR_FULL_422"
    for index in range(plan.frames):
        pixels = clean_frame(plan, reader.frame(index)).astype(little, copy=False)
        if pairs:  # Y0 Y1 Cb Cr per pair; the pair's chroma is stored once (PS3.3 C.7.6.3.1.2)
            for box in margin_boxes(plan.crop, plan.content):  # a pair in the margin is grey
                box = _even(box, plan.info.columns).translate(-plan.crop.left, -plan.crop.top)
                pixels[box.top : box.bottom, box.left : box.right, 1:] = plan.fill[1:]
            pixels = np.concatenate(
                (pixels[:, :, 0].reshape(pixels.shape[0], -1, 2), pixels[:, ::2, 1:]), axis=2
            )
        out.write((np.moveaxis(pixels, 2, 0) if by_plane else pixels).tobytes())
    if length % 2:
        out.write(b"\0")
    return PixelStats(frames=plan.frames, decoded_bytes=length, encoded_bytes=length + length % 2)


def _write_encapsulated(plan: PixelPlan, reader: FrameReader, out: BinaryIO) -> PixelStats:
    out.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF))
    out.write(struct.pack("<HHI", 0xFFFE, 0xE000, 0))  # empty Basic Offset Table
    encoded = reencoded = 0
    for index in range(plan.frames):
        data, fallback = _encode_frame(plan, reader, index)
        reencoded += fallback
        data += b"\0" * (len(data) % 2)
        out.write(struct.pack("<HHI", 0xFFFE, 0xE000, len(data)))
        out.write(data)
        encoded += len(data)
    out.write(struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    return PixelStats(
        frames=plan.frames,
        decoded_bytes=plan.frame_bytes * plan.frames,
        encoded_bytes=encoded,
        reencoded_frames=reencoded,
    )


def _encode_frame(plan: PixelPlan, reader: FrameReader, index: int) -> tuple[bytes, bool]:
    """One encoded frame, and whether a compressed-domain plan had to re-encode it."""
    try:
        return _encode(plan, reader, index)
    except Unsupported:
        raise
    except Exception as exc:  # an encoder failing on odd content must skip the file, not crash
        name = transfer_syntax_name(plan.transfer_syntax_out)
        raise Unsupported(
            f"frame {index + 1} cannot be encoded as {name} ({type(exc).__name__})"
        ) from None


def _encode(plan: PixelPlan, reader: FrameReader, index: int) -> tuple[bytes, bool]:
    if plan.compressed_domain:
        # INTEGRATION POINT (jpeg_crop): crop and mask without decoding; a frame it
        # cannot handle is re-encoded instead (PixelStats.reencoded_frames counts them).
        try:
            frame = reader.encoded_frame(index)
            shape = None if plan.fan is None else outside_fan(plan.fan, plan.crop)
            cropped = jpeg_crop.crop_jpeg(
                frame, plan.crop, plan.masks, content=plan.content, shape=shape
            )
            return cropped, False
        except jpeg_crop.JpegCropUnsupported:
            return _jpeg(plan, clean_frame(plan, reader.frame(index)), reader.photometric), True
    pixels = clean_frame(plan, reader.frame(index))
    if plan.transfer_syntax_out == JPEGBaseline8Bit:
        return _jpeg(plan, pixels, reader.photometric), False
    info = plan.info
    options: dict[str, Any] = {
        "rows": plan.crop.height,
        "columns": plan.crop.width,
        "samples_per_pixel": info.samples_per_pixel,
        "bits_allocated": info.bits_allocated,
        "bits_stored": info.bits_stored,
        "pixel_representation": info.pixel_representation,
        "photometric_interpretation": plan.photometric_out,
        "number_of_frames": 1,
    }
    if info.samples_per_pixel > 1:
        options["planar_configuration"] = 0
    return get_encoder(UID(plan.transfer_syntax_out)).encode(pixels, **options), False


def clean_frame(plan: PixelPlan, frame: np.ndarray) -> np.ndarray:
    """The crop of ``frame`` as a contiguous array, masks and the margin outside the
    requested crop blackened."""
    crop = plan.crop
    # Every frame from the reader is a fresh array: masking may write through a view.
    pixels = np.ascontiguousarray(frame[crop.top : crop.bottom, crop.left : crop.right])
    fill = plan.fill[0] if len(plan.fill) == 1 else np.asarray(plan.fill, dtype=pixels.dtype)
    for mask in (*plan.masks, *margin_boxes(crop, plan.content)):
        box = mask.translate(-crop.left, -crop.top)
        pixels[box.top : box.bottom, box.left : box.right] = fill
    if plan.fan is not None:
        pixels[outside_fan(plan.fan, crop)] = fill
    return pixels


@functools.lru_cache(maxsize=4)
def outside_fan(fan: Sector, crop: Box) -> np.ndarray:
    """Per pixel of ``crop``, whether it lies outside ``fan`` (computed once per file)."""
    outside = ~fan.mask(crop)
    outside.flags.writeable = False
    return outside


def margin_boxes(written: Box, content: Box) -> list[Box]:
    """The parts of ``written`` outside ``content`` (up to four boxes)."""
    inner = content.intersect(written)
    parts = [
        Box(written.left, written.top, written.right, inner.top),
        Box(written.left, inner.bottom, written.right, written.bottom),
        Box(written.left, inner.top, inner.left, inner.bottom),
        Box(inner.right, inner.top, written.right, inner.bottom),
    ]
    return [p for p in parts if not p.is_empty]


def _jpeg(plan: PixelPlan, pixels: np.ndarray, photometric: str) -> bytes:
    """JPEG Baseline with Pillow: YCbCr 4:2:2 for colour (YBR_FULL_422), else greyscale."""
    height, width = pixels.shape[:2]
    if photometric == "YBR_FULL":
        image = Image.frombuffer("YCbCr", (width, height), pixels.tobytes(), "raw", "YCbCr", 0, 1)
    else:
        image = Image.fromarray(pixels)
    buffer = BytesIO()
    options: dict[str, Any] = {"quality": plan.jpeg_quality}
    if pixels.ndim == 3:
        options["subsampling"] = "4:2:2"
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def write_image(plan: PixelPlan, reader: FrameReader, out: Dataset, stream: BinaryIO) -> PixelStats:
    """Write a whole output file: preamble, file meta, ``out`` as header, then the pixels.

    Applies ``plan`` to ``out``. When the file may be re-encoded, the pixel data
    is spooled to a temporary file first so that the header can carry the
    compression ratio.

    Parameters
    ----------
    plan : PixelPlan
    reader : FrameReader
    out : Dataset
        The de-identified header (file meta with the media storage UIDs set).
    stream : BinaryIO
        The output file.
    """
    apply_plan(plan, out)
    if not (plan.reencoded or plan.compressed_domain):
        stream.write(header_bytes(out))
        return write_pixel_data(plan, reader, stream)
    with tempfile.TemporaryFile() as spool:
        stats = write_pixel_data(plan, reader, spool)
        apply_plan(plan, out, stats)
        stream.write(header_bytes(out))
        spool.seek(0)
        shutil.copyfileobj(spool, stream, 1 << 20)
    return stats


def header_bytes(ds: Dataset) -> bytes:
    """Preamble, file meta and every element of ``ds`` (no Pixel Data), in its transfer syntax."""
    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
