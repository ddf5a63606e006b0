"""Deflated Explicit VR Little Endian inputs, inflated into a temporary file.

The frame reader seeks to the pixel data by file offset, which a deflated data set
does not have; inflating it once (streamed, bounded) into a temporary file gives
an ordinary Explicit VR Little Endian file to read. The temporary file is
unlinked at once and private to this process.
"""

from __future__ import annotations

import struct
import tempfile
import zlib
from io import BytesIO
from typing import IO, cast

from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomFileLike
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from ustui.core.errors import Unsupported
from ustui.core.inputs import MAX_MEMBER_BYTES

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"}
_CHUNK = 1024 * 1024
#: Inflated data sets up to this size stay in memory; larger ones go to disk.
_IN_MEMORY = 16 * 1024 * 1024


def inflate_if_deflated(stream: IO[bytes], size: int, label: str) -> tuple[IO[bytes], int]:
    """``(stream, size)`` as they are, or a seekable inflated copy and its size when the
    file's data set is deflated (the original stream is then closed).

    The copy's file meta says Explicit VR Little Endian, which is what it now holds.

    Raises
    ------
    Unsupported
        When the deflated stream is corrupt, ends early or inflates beyond the limit.
    """
    head = stream.read(132)
    meta_end = _meta_end(stream) if head[128:132] == b"DICM" else 0
    stream.seek(132)
    raw_meta = stream.read(max(meta_end - 132, 0))
    if DeflatedExplicitVRLittleEndian.encode() not in raw_meta:
        stream.seek(0)
        return stream, size
    meta = FileMetaDataset(read_dataset(BytesIO(raw_meta), False, True))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if "FileMetaInformationGroupLength" in meta:
        del meta.FileMetaInformationGroupLength
    # Returned open to the caller, who closes it like the input stream it replaces.
    out = cast(IO[bytes], tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY))  # noqa: SIM115
    try:
        out.write(head)
        write_file_meta_info(DicomFileLike(out), meta, enforce_standard=False)
        _inflate(stream, out, label)
        new_size = out.tell()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    stream.close()
    return out, new_size


def _meta_end(stream: IO[bytes]) -> int:
    """Offset just after the file meta group (0002,xxxx), which is explicit VR LE."""
    pos = 132
    while True:
        stream.seek(pos)
        head = stream.read(8)
        if len(head) < 8 or struct.unpack_from("<H", head)[0] != 0x0002:
            return pos
        if head[4:6] in _LONG_VRS:
            extra = stream.read(4)
            if len(extra) < 4:
                return pos
            pos += 12 + struct.unpack("<I", extra)[0]
        else:
            pos += 8 + struct.unpack_from("<H", head, 6)[0]


def _inflate(stream: IO[bytes], out: IO[bytes], label: str) -> None:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    try:
        while not inflater.eof:
            chunk = inflater.unconsumed_tail or stream.read(_CHUNK)
            if not chunk:
                raise Unsupported("truncated file: the deflated data set ends early", source=label)
            # Bounded output per step: a small, highly compressed input cannot flood memory.
            piece = inflater.decompress(chunk, _CHUNK)
            total += len(piece)
            if total > MAX_MEMBER_BYTES:
                raise Unsupported("the deflated data set inflates beyond the limit", source=label)
            out.write(piece)
    except zlib.error:
        raise Unsupported("corrupt file: the deflated data set is damaged", source=label) from None
