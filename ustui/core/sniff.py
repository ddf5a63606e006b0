"""Telling DICOM files (and ustui's own exports) from everything else by their first bytes.

Cheap enough to run on every file met while searching a folder, so that a README,
a DICOMDIR or an earlier export found there is ignored rather than reported.
"""

from __future__ import annotations

import json
import struct
import zipfile

#: Bytes read from the start of a file to sniff it.
HEAD_BYTES = 1024
_PART10_START = bytes(128) + b"DICM"
#: Media Storage SOP Class UID of a DICOMDIR, as written in the (explicit VR LE) file meta.
_DICOMDIR_META = b"UI\x14\x001.2.840.10008.1.3.10"
#: Largest manifest.json read to recognise an export (ustui writes ~1 KB per file).
_MAX_MANIFEST = 64 * 1024**2


def looks_like_dicom(head: bytes, size: int) -> bool:
    """Whether a file starting with ``head`` (its first bytes) may be DICOM.

    True for the Part 10 'DICM' marker, for a raw data set (no preamble) starting with
    a low even group, and for a file that ends inside an all-zero preamble (a Part 10
    file cut short: it is reported as truncated, not ignored).
    """
    if head[128:132] == b"DICM":
        return True
    if 0 < len(head) < 132 and _PART10_START.startswith(head):
        return True
    if len(head) < 8:
        return False
    for order in "<>":
        # A raw data set starts with a low, even (public) group: file meta or 0008..0028.
        group, element = struct.unpack(order + "HH", head[:4])
        if group % 2 or not 0x0002 <= group <= 0x0028 or element > 0x1FFF:
            continue
        explicit = head[4:6].isalpha() and head[4:6].isupper()
        implicit_length = struct.unpack(order + "I", head[4:8])[0]
        if explicit or implicit_length < size:
            return True
    return False


def is_dicomdir(name: str, head: bytes) -> bool:
    """Whether a file is a DICOMDIR, by its name or by the SOP class in its file meta."""
    return name.upper() == "DICOMDIR" or _DICOMDIR_META in head


def is_ustui_export(archive: zipfile.ZipFile) -> bool:
    """Whether an open ZIP archive is an export written by ustui (its manifest.json says so)."""
    try:
        info = archive.getinfo("manifest.json")
        if info.file_size > _MAX_MANIFEST:
            return False
        document = json.loads(archive.read(info))
    except Exception:  # absent, damaged or not JSON: not ours
        return False
    generator = document.get("generator") if isinstance(document, dict) else None
    return isinstance(generator, str) and generator.startswith("ustui ")
