"""Reading DICOM headers robustly: everything but the pixel data, never a traceback.

Bad input of any kind ends in :class:`~ustui.core.errors.Unsupported` (or
:class:`~ustui.core.errors.UstuiError` when the file cannot be read at all) with
a one-line reason that never quotes a value from the file, so no PHI leaks into
messages.
"""

from __future__ import annotations

import logging
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, BinaryIO, cast

from pydicom import config, dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import BytesLengthException
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from ustui.core.deflated import inflate_if_deflated
from ustui.core.errors import Unsupported, UstuiError
from ustui.core.inputs import InputFile
from ustui.core.sniff import looks_like_dicom

logger = logging.getLogger(__name__)

# pydicom's value validation logs offending values (names, UIDs) on its logger;
# ustui tolerates such values anyway and must never log PHI.
config.settings.reading_validation_mode = config.IGNORE

#: Transfer syntaxes that pydicom 3.0 does not name (DICOM 2024 additions).
_EXTRA_NAMES = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
}
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_PIXEL_DATA = 0x7FE00010
_FLOAT_PIXEL_DATA = {0x7FE00008, 0x7FE00009}
_LONG_VRS = {b"OB", b"OW", b"OD", b"OF", b"OL", b"OV", b"UN"}
_UNDEFINED = 0xFFFFFFFF
_ITEM_GROUP = 0xFFFE
_STOP_TAGS = {_PIXEL_DATA, *_FLOAT_PIXEL_DATA}
#: Deepest sequence nesting read; real images nest a few levels, and copying or
#: walking far deeper data sets exhausts Python's recursion limit.
MAX_NESTING = 50
_TOO_DEEP = f"corrupt header: sequences nested more than {MAX_NESTING} levels deep"
_HEADER_ENDS_EARLY = "truncated file: the header ends early"
_PART10_START = bytes(128) + b"DICM"


@dataclass(frozen=True)
class PixelElement:
    """Where the (7FE0,0010) Pixel Data element's value lies in a file."""

    offset: int
    """File offset of the first byte of the value."""
    length: int | None
    """Value length in bytes; None when undefined (encapsulated pixel data)."""
    vr: str
    """The element's VR: as written for explicit VR, OB/OW by Bits Allocated for implicit VR."""


def transfer_syntax_name(uid: str) -> str:
    """A readable name for a transfer syntax UID (the UID itself when unknown)."""
    return _EXTRA_NAMES.get(uid) or UID(uid).name


def is_known_transfer_syntax(uid: str) -> bool:
    """Whether ``uid`` is a transfer syntax defined by DICOM."""
    return uid in _EXTRA_NAMES or (UID(uid).is_valid and UID(uid).is_transfer_syntax)


def is_encapsulated(uid: str) -> bool:
    """Whether a (known) transfer syntax encapsulates its pixel data in fragments."""
    return uid in _EXTRA_NAMES or UID(uid).is_compressed


def read_header(source: InputFile) -> Dataset:
    """Read everything before the pixel data of ``source``.

    Parameters
    ----------
    source : InputFile
        The file to read (on disk or in a ZIP archive); it is only opened for reading.

    Returns
    -------
    Dataset
        The header without Pixel Data, with ``file_meta.TransferSyntaxUID`` set
        (deduced from the encoding when the file has no file meta information),
        every element already converted, stray delimiter items removed, so that
        walking and saving it work.

    Raises
    ------
    Unsupported
        When the file is not a DICOM image that can be cleaned: not DICOM, empty,
        truncated, corrupt, a DICOMDIR, without pixel data, with an unknown or
        unsupported transfer syntax.
    UstuiError
        When the file cannot be read at all.
    """
    stream, size = open_dataset(source)
    with stream:
        header, _ = parse_file(stream, size=size, label=source.label)
    return header


def parse_file(stream: IO[bytes], *, size: int, label: str) -> tuple[Dataset, PixelElement]:
    """Parse the header of an open file and locate its Pixel Data element.

    The stream is left positioned at the start of the Pixel Data value. This is
    the single place that decides how a file is read; :func:`read_header` and the
    frame reader both use it.

    Parameters
    ----------
    stream : IO[bytes]
        A seekable stream at the start of the file.
    size : int
        The file's size in bytes.
    label : str
        How the file is named in error messages.
    """
    if size == 0:
        raise Unsupported("empty file", source=label)
    try:
        part10 = _check_dicom_start(stream, size, label)
        with warnings.catch_warnings():
            # pydicom warns about every oddity it tolerates; the reasons we act on are ours.
            warnings.simplefilter("ignore")
            recorder = _ShortReads(stream)
            header = dcmread(recorder, force=True, stop_before_pixels=True)
            # The header must not hold on to the stream (copying it then fails).
            header.buffer = None
            if not isinstance(getattr(header, "file_meta", None), FileMetaDataset):
                header.file_meta = FileMetaDataset()
            if _ends_inside_last_element(header.file_meta) or _ends_inside_last_element(header):
                raise Unsupported(
                    "truncated or corrupt file: an element runs past the end of the file",
                    source=label,
                )
            if (
                recorder.cut
                or _meta_cut_short(header.file_meta, size)
                or (part10 and not header.file_meta.keys() and not header.keys())
            ):
                raise Unsupported(_HEADER_ENDS_EARLY, source=label)
            if header.file_meta.keys() and not header.keys():
                raise Unsupported("truncated file: no data set after the file meta", source=label)
            _read_past_stray_item_delimiters(stream, header)
            _repair(header, label)
            _set_transfer_syntax(header, label)
            _check_not_dicomdir(header, label)
            pixels = _locate_pixel_data(stream, header, size, label)
    except UstuiError:
        raise
    except RecursionError:
        raise Unsupported(_TOO_DEEP, source=label) from None
    except (EOFError, struct.error, BytesLengthException) as exc:
        if _is_damaged_member(exc):
            raise UstuiError(read_failure(exc), source=label) from None
        logger.debug("truncated header: %s", type(exc).__name__)
        raise Unsupported(_HEADER_ENDS_EARLY, source=label) from None
    except OSError as exc:
        if exc.errno is None and "No tag to read" in str(exc):
            # pydicom's words for a sequence whose items stop at the end of the file.
            raise Unsupported("truncated file: it ends inside a sequence", source=label) from None
        raise UstuiError(read_failure(exc), source=label) from None
    except (zipfile.BadZipFile, zlib.error) as exc:
        raise UstuiError(read_failure(exc), source=label) from None
    except Exception as exc:
        # Exception texts may quote values from the file: give only the kind.
        logger.debug("corrupt header: %s", type(exc).__name__)
        raise Unsupported(f"corrupt header ({type(exc).__name__})", source=label) from None
    return header, pixels


def read_failure(exc: BaseException) -> str:
    """The reason for a failed read of an input's bytes: the system's words, or a
    damaged ZIP member (a bad CRC, a corrupt or cut deflate stream)."""
    if isinstance(exc, zlib.error):
        return "cannot read: the ZIP member is damaged (corrupt compressed data)"
    if isinstance(exc, EOFError) and _is_damaged_member(exc):
        return "cannot read: the ZIP member is damaged (its compressed data end early)"
    if _is_damaged_member(exc):
        return f"cannot read: the ZIP member is damaged ({type(exc).__name__})"
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or type(exc).__name__}"
    return f"cannot read: {type(exc).__name__}"


def _is_damaged_member(exc: BaseException) -> bool:
    # zipfile raises EOFError with these words when a member's deflate stream is cut.
    return isinstance(exc, (zipfile.BadZipFile, zlib.error)) or (
        isinstance(exc, EOFError) and "end-of-stream" in str(exc)
    )


def open_dataset(source: InputFile) -> tuple[IO[bytes], int]:
    """Open ``source`` for :func:`parse_file`: a seekable stream and its size in bytes.

    A deflated data set comes back inflated (see :mod:`ustui.core.deflated`).
    """
    stream = open_input(source)
    try:
        return inflate_if_deflated(stream, source.size, source.label)
    except UstuiError:
        stream.close()
        raise
    except Exception as exc:
        stream.close()
        raise UstuiError(read_failure(exc), source=source.label) from None


def open_input(source: InputFile) -> IO[bytes]:
    """Open ``source`` for reading; any failure becomes a one-line UstuiError."""
    try:
        return source.open()
    except OSError as exc:
        reason = f"cannot read: {exc.strerror or type(exc).__name__}"
        raise UstuiError(reason, source=source.label) from None
    except Exception as exc:  # a damaged ZIP archive raises its own errors
        raise UstuiError(f"cannot read: {type(exc).__name__}", source=source.label) from None


def _check_dicom_start(stream: IO[bytes], size: int, label: str) -> bool:
    """Refuse files that neither carry 'DICM' nor start like a raw data set; return
    whether the file has the Part 10 preamble and 'DICM'."""
    head = stream.read(132)
    stream.seek(0)
    if not looks_like_dicom(head, size):
        raise Unsupported("not a DICOM file", source=label)
    if len(head) < 132 and _PART10_START.startswith(head):
        raise Unsupported(_HEADER_ENDS_EARLY, source=label)  # cut inside the preamble
    return head[128:132] == b"DICM"


class _ShortReads:
    """The stream pydicom parses, noting reads that come back short but not empty.

    pydicom stops quietly where the file ends inside an element's tag or length (it
    takes that for the end of the data set); a short read is how that shows.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.cut = False
        self.seek = stream.seek
        self.tell = stream.tell

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if 0 < len(data) < size:
            self.cut = True
        return data


def _meta_cut_short(meta: Dataset, size: int) -> bool:
    """Whether the file ends before the end its file meta group length announces."""
    try:
        length = int(meta.get("FileMetaInformationGroupLength") or 0)
    except (TypeError, ValueError):
        return False
    return 144 + length > size


def _read_past_stray_item_delimiters(stream: IO[bytes], header: Dataset) -> None:
    """Go on reading where pydicom stopped at a top-level (FFFE,E00D) item delimiter.

    pydicom takes such a stray delimiter for the end of the data set and silently
    drops everything after it, the Image Pixel module included.
    """
    implicit, little = header.original_encoding
    order = "<" if little else ">"
    delimiter = struct.pack(order + "HHI", 0xFFFE, 0xE00D, 0)
    pixel_tag = struct.pack(order + "HH", 0x7FE0, 0x0010)
    while (pos := stream.tell()) >= 8:
        stream.seek(pos - 8)
        before, after = stream.read(8), stream.read(4)
        stream.seek(pos)
        if before != delimiter or len(after) < 4 or after == pixel_tag:
            return
        logger.debug("read past a stray item delimiter")
        rest = read_dataset(
            cast(BinaryIO, stream),
            bool(implicit),
            bool(little),
            stop_when=lambda tag, _vr, _length: int(tag) in _STOP_TAGS,
            parent_encoding=header._character_set,
        )
        for elem in rest.elements():
            header[elem.tag] = elem


def _ends_inside_last_element(ds: Dataset) -> bool:
    """Whether the file ends before the value of the last element of ``ds`` does.

    pydicom keeps the bytes that were there; a file truncated inside a value, or an
    element whose length field is absurd, reads as if it ended cleanly.
    """
    tags = list(ds.keys())  # in the order read
    if not tags:
        return False
    last = ds.get_item(tags[-1], keep_deferred=True)
    return (
        isinstance(last, RawDataElement)
        and last.length != _UNDEFINED
        and last.value is not None
        and len(last.value) < last.length
    )


def _repair(header: Dataset, label: str) -> None:
    """Convert every element now and drop what pydicom could not walk or save.

    Stray (FFFE,xxxx) items and delimiters outside a sequence are structure, not
    data: they are removed. Elements whose value cannot be converted are removed
    too (removing never leaks anything); the tag, never the value, is logged.
    Nested sequences are visited with a stack; nesting deeper than
    :data:`MAX_NESTING` is refused.
    """
    meta = header.file_meta
    for tag in [t for t in meta.keys() if BaseTag(t).group != 0x0002 or t == 0x00020000]:  # noqa: SIM118
        # pydicom computes the group length when saving; a damaged one cannot be saved.
        del meta[tag]
    for tag in [t for t in header.keys() if BaseTag(t).group < 0x0008]:  # noqa: SIM118
        if BaseTag(tag).group != 0x0004:
            # Command or file meta elements inside the data set (damaged tags): pydicom
            # refuses to save them there, and they describe nothing of the image.
            logger.debug("dropped misplaced element %s", BaseTag(tag))
            del header[tag]
    stack: list[tuple[Dataset, int]] = [(header.file_meta, 0), (header, 0)]
    while stack:
        current, depth = stack.pop()
        for tag in list(current.keys()):
            if BaseTag(tag).group == _ITEM_GROUP:
                logger.debug("dropped stray item/delimiter %s", BaseTag(tag))
                del current[tag]
                continue
            try:
                _conform_vr(current, BaseTag(tag))
                elem = current[tag]
            except Exception as exc:
                logger.debug("dropped unreadable element %s: %s", BaseTag(tag), type(exc).__name__)
                del current[tag]
                continue
            if elem.VR == "SQ" and elem.value is not None:
                if depth == MAX_NESTING:
                    raise Unsupported(_TOO_DEEP, source=label)
                stack.extend((item, depth + 1) for item in elem.value if isinstance(item, Dataset))


def _conform_vr(ds: Dataset, tag: BaseTag) -> None:
    """Give a standard element written with a wrong VR the VR of the DICOM dictionary.

    The de-identification rules assume the standard VR (a UID written as LO would
    escape replacement), as pydicom already does for UN. A sequence where the
    dictionary has a value, or the reverse, cannot be reinterpreted: ValueError.
    """
    elem = ds.get_item(tag, keep_deferred=True)
    if elem is None or elem.VR in (None, "UN") or tag.is_private or tag.element == 0:
        return
    try:
        expected = dictionary_VR(tag).split(" or ")
    except KeyError:
        return
    if elem.VR in expected:
        return
    if "SQ" in (elem.VR, expected[0]) or not isinstance(elem, RawDataElement):
        raise ValueError("a sequence where the standard has a value, or the reverse")
    logger.debug("read %s as %s, not %s", tag, expected[0], elem.VR)
    ds[tag] = elem._replace(VR=expected[0])


def _set_transfer_syntax(header: Dataset, label: str) -> None:
    """Make ``file_meta.TransferSyntaxUID`` describe how the data set is really encoded."""
    implicit, little = header.original_encoding
    found = {
        (True, True): ImplicitVRLittleEndian,
        (False, True): ExplicitVRLittleEndian,
        (False, False): ExplicitVRBigEndian,
    }.get((bool(implicit), bool(little)))
    declared = header.file_meta.get("TransferSyntaxUID")
    if declared is None or not str(declared).strip():
        if found is None:
            raise Unsupported("unknown encoding (no transfer syntax)", source=label)
        header.file_meta.TransferSyntaxUID = found
        return
    declared = UID(str(declared).strip().rstrip("\0"))
    if not is_known_transfer_syntax(declared):
        # Quote it only when it is a well-formed UID: a damaged length can make the
        # "UID" run on into the rest of the header.
        shown = f" {declared}" if declared.is_valid else " (not a valid UID)"
        raise Unsupported(f"unknown transfer syntax{shown}", source=label)
    if not is_encapsulated(declared) and found is not None and declared != found:
        # The file says one native encoding but is written in another: pydicom read
        # what is there, and the pixel data follows the same byte order.
        declared = found
    header.file_meta.TransferSyntaxUID = declared


def _check_not_dicomdir(header: Dataset, label: str) -> None:
    if (
        header.file_meta.get("MediaStorageSOPClassUID") == _DICOMDIR_CLASS
        or header.get("SOPClassUID") == _DICOMDIR_CLASS
        or "DirectoryRecordSequence" in header
    ):
        raise Unsupported("DICOMDIR (a directory index, not an image)", source=label)


def _locate_pixel_data(stream: IO[bytes], header: Dataset, size: int, label: str) -> PixelElement:
    """Read the Pixel Data element header at the stream's position (where pydicom stopped)."""
    little = header.file_meta.TransferSyntaxUID != ExplicitVRBigEndian
    order = "<" if little else ">"
    start = stream.tell()
    head = stream.read(8)
    if head and len(head) < 8:
        raise Unsupported(_HEADER_ENDS_EARLY, source=label)  # cut inside an element's tag
    if not head:
        if "Rows" in header:
            # It describes its pixels, then stops where they should start.
            raise Unsupported(
                "truncated file: no pixel data after the image attributes", source=label
            )
        # A header that ends cleanly: a complete file of a kind without pixels.
        raise Unsupported("no pixel data", source=label)
    group, element = struct.unpack(order + "HH", head[:4])
    tag = group << 16 | element
    if tag in _FLOAT_PIXEL_DATA:
        raise Unsupported("float pixel data (not an image)", source=label)
    if tag != _PIXEL_DATA:
        raise Unsupported("no pixel data", source=label)
    if head[4:6] in _LONG_VRS:
        extra = stream.read(4)
        if len(extra) < 4:
            raise Unsupported("truncated file: the pixel data ends early", source=label)
        length = struct.unpack(order + "I", extra)[0]
        vr = head[4:6].decode()
        offset = start + 12
    else:
        length = struct.unpack(order + "I", head[4:8])[0]
        vr = "OW" if int(header.get("BitsAllocated", 8) or 8) > 8 else "OB"
        offset = start + 8
    if length == _UNDEFINED:
        return PixelElement(offset=offset, length=None, vr=vr)
    if offset + length > size:
        raise Unsupported("truncated file: the pixel data ends early", source=label)
    return PixelElement(offset=offset, length=length, vr=vr)
