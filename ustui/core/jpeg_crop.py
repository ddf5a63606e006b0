"""Crop and mask JPEG Baseline frames in the compressed domain, without re-encoding.

A baseline JPEG is a grid of MCUs (minimum coded units) of 8x8 DCT blocks whose
coefficients are Huffman coded, the DC coefficient of each block as a difference
from the previous block of the same component. Cropping on the MCU grid therefore
needs no DCT work: MCUs outside the crop are dropped, the kept MCUs' bits are copied
as they are, and only the DC differences whose predecessor changed are coded again.
A masked MCU becomes flat black: every AC coefficient zero and a DC that decodes to
black. Quantisation tables and every kept coefficient stay exactly as they were, so
the decoded crop is the decoded input cropped, except where a decoder interpolates
subsampled chroma across the new image edges or a mask edge (see ``crop_jpeg``).

The Huffman decoding needed to find MCU boundaries runs in Python, table-driven:
lookup tables indexed by the next 16 bits decode a whole short block, or several
AC symbols, per step.
"""

from __future__ import annotations

import functools
import operator
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ustui.core.boxes import Box
from ustui.core.errors import Unsupported

__all__ = ["JpegCropUnsupported", "JpegLayout", "crop_jpeg", "parse_layout", "snap_crop"]


class JpegCropUnsupported(Unsupported):
    """A JPEG frame this module cannot crop in the compressed domain; ``reason`` says why."""


@dataclass(frozen=True)
class JpegLayout:
    """Geometry of a baseline JPEG frame, from its SOF header."""

    width: int
    height: int
    components: int
    mcu_width: int
    """Pixels per MCU across: 8 x the largest horizontal sampling factor (8 for one component)."""
    mcu_height: int
    """Pixels per MCU down: 8 x the largest vertical sampling factor (8 for one component)."""
    sampling: tuple[tuple[int, int], ...]
    """``(h, v)`` sampling factors per component, in frame order."""


# --- Huffman tables ---------------------------------------------------------------------

_LutEntry = tuple[int, int]
# Lookups kept per kind: a file's frames share their tables (luminance and chroma),
# and each lookup costs about 0.6 MB.
_CACHED_TABLES = 8
_Lut = list[_LutEntry]
_Bits = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class _Table:
    """A Huffman table as a DHT segment stores it: code counts per length 1..16, symbols."""

    counts: tuple[int, ...]
    values: tuple[int, ...]

    def codes(self) -> Iterator[tuple[int, int, int]]:
        """``(symbol, code, length)`` in canonical order (JPEG Annex C)."""
        code = 0
        index = 0
        for length, count in enumerate(self.counts, start=1):
            for _ in range(count):
                yield self.values[index], code, length
                code += 1
                index += 1
            code <<= 1

    @functools.cached_property
    def encoder(self) -> dict[int, tuple[int, int]]:
        return {symbol: (code, length) for symbol, code, length in self.codes()}

    def segment_body(self, table_class: int, table_id: int) -> bytes:
        return bytes([table_class << 4 | table_id, *self.counts, *self.values])

    def with_symbols(self, missing: Sequence[int]) -> _Table:
        """This table plus ``missing`` symbols, every existing code kept as it is.

        Canonical codes of the existing symbols do not move when new symbols are
        appended at the longest length or longer; the all-ones code stays unused.
        """
        longest = max((i + 1 for i, n in enumerate(self.counts) if n), default=0)
        next_code = sum(n << (longest - i - 1) for i, n in enumerate(self.counts[:longest]))
        free = (1 << longest) - next_code  # codes left at the longest length
        for length in range(max(longest, 1), 17):
            if (free << (length - longest)) - 1 >= len(missing):
                counts = list(self.counts)
                counts[length - 1] += len(missing)
                return _Table(tuple(counts), self.values + tuple(missing))
        raise JpegCropUnsupported("a Huffman table has no room for the codes a crop needs")


def _decode_lut(table: _Table) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Code length (0: no code) and symbol for every 16-bit prefix."""
    lengths = np.zeros(1 << 16, np.int64)
    symbols = np.zeros(1 << 16, np.int64)
    for symbol, code, length in table.codes():
        lo = code << (16 - length)
        hi = (code + 1) << (16 - length)
        lengths[lo:hi] = length
        symbols[lo:hi] = symbol
    return lengths, symbols


def _extend(value: npt.NDArray[np.int64], size: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """JPEG's EXTEND: ``size`` raw bits to a signed value (F.2.2.1)."""
    return np.where(value < (1 << np.maximum(size - 1, 0)), value - (1 << size) + 1, value)


def _as_lut(bits: npt.NDArray[np.int64], values: npt.NDArray[np.int64]) -> _Lut:
    """The lookup as a list for fast indexing. Its few hundred distinct entries are
    shared, so a lookup costs a list of pointers rather than 65536 tuples."""
    keys, inverse = np.unique(bits << 32 | (values & 0xFFFFFFFF), return_inverse=True)
    distinct = []
    for key in keys.tolist():
        value = key & 0xFFFFFFFF
        distinct.append((key >> 32, value - (value >> 31 << 32)))  # value as signed 32-bit
    return list(operator.itemgetter(*inverse.tolist())(distinct))


def _dc_decode(dc: _Table) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per 16-bit prefix: bits of DC code + extra bits (0 if longer) and DC difference."""
    window = np.arange(1 << 16, dtype=np.int64)
    lengths, symbols = _decode_lut(dc)
    used = lengths + symbols
    ok = (lengths > 0) & (used <= 16) & (symbols <= 11)
    size = np.where(ok, symbols, 0)
    raw = (window >> np.where(ok, 16 - used, 0)) & ((1 << size) - 1)
    return np.where(ok, used, 0), np.where(ok & (size > 0), _extend(raw, size), 0)


@functools.lru_cache(maxsize=_CACHED_TABLES)
def _dc_lut(dc: _Table) -> _Lut:
    """Per 16-bit prefix: (bits of DC code + extra bits, DC difference), bits 0 if longer."""
    return _as_lut(*_dc_decode(dc))


# Added to an AC lookup's coefficient index advance: the step ended the block with EOB;
# the step decoded nothing (no valid symbol), so the caller goes symbol by symbol.
_EOB = 1000
_INVALID = 2000


def _ac_walk(
    window: npt.NDArray[np.int64],
    pos: npt.NDArray[np.int64],
    k: npt.NDArray[np.int64],
    active: npt.NDArray[np.bool_],
    ac: _Table,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Walk AC symbols of every 16-bit window in parallel while their codes are in it.

    Skipping a coefficient needs its code, not its value: the extra bits may run past
    the window, but then the walk stops. Returns the bit position reached, the
    coefficient index reached (``_EOB`` added when an EOB was read) and whether the
    block ended (EOB or index 64).
    """
    lengths, symbols = _decode_lut(ac)
    done = np.zeros_like(active)
    while active.any():
        prefix = (window << pos) & 0xFFFF
        length = lengths[prefix]
        symbol = symbols[prefix]
        size = symbol & 15
        eob = symbol == 0
        advance = np.where(symbol == 0xF0, 16, (symbol >> 4) + 1)
        valid = ((size > 0) & (size <= 10)) | eob | (symbol == 0xF0)
        step = active & (length > 0) & (pos + length <= 16) & valid
        step &= eob | (k + advance <= 64)
        pos = np.where(step, pos + length + size, pos)
        k = np.where(step, np.where(eob, k + _EOB, k + advance), k)
        ended = step & (eob | (k == 64))
        done |= ended
        active = step & ~ended
    return pos, k, done


@functools.lru_cache(maxsize=_CACHED_TABLES)
def _block_lut(dc: _Table, ac: _Table) -> _Lut:
    """Per 16-bit prefix: (bits of a whole block, its DC difference) if the prefix holds
    every code of the block, else (0, 0)."""
    window = np.arange(1 << 16, dtype=np.int64)
    dc_bits, dc_diff = _dc_decode(dc)
    pos, _, done = _ac_walk(window, dc_bits, np.ones_like(window), dc_bits > 0, ac)
    return _as_lut(np.where(done, pos, 0), np.where(done, dc_diff, 0))


@functools.lru_cache(maxsize=_CACHED_TABLES)
def _ac_lut(ac: _Table) -> _Lut:
    """Per 16-bit prefix: (bits, coefficient index advance) of the AC symbols it holds.

    The advance has ``_EOB`` added when the symbols end with EOB; ``(0, _INVALID)``
    when the prefix starts with no valid symbol.
    """
    window = np.arange(1 << 16, dtype=np.int64)
    zero = np.zeros_like(window)
    pos, k, _ = _ac_walk(window, zero, zero, np.ones(window.shape, np.bool_), ac)
    return _as_lut(pos, np.where(pos > 0, k, _INVALID))


@functools.lru_cache(maxsize=_CACHED_TABLES)
def _symbol_lut(table: _Table) -> _Lut:
    """Per 16-bit prefix: (code length, symbol) of its first code; length 0 if none."""
    return _as_lut(*_decode_lut(table))


# --- Headers ---------------------------------------------------------------------------

_SOF_KINDS = {
    0xC2: "progressive",
    0xC3: "lossless",
    0xC5: "hierarchical",
    0xC6: "hierarchical progressive",
    0xC7: "hierarchical lossless",
    0xC9: "arithmetic-coded",
    0xCA: "arithmetic-coded progressive",
    0xCB: "arithmetic-coded lossless",
    0xCD: "hierarchical arithmetic-coded",
    0xCE: "hierarchical arithmetic-coded progressive",
    0xCF: "hierarchical arithmetic-coded lossless",
}


@dataclass(frozen=True)
class _Component:
    ident: int
    h: int
    v: int
    quant: int


@dataclass(frozen=True)
class _ScanComponent:
    index: int  # into the frame's components
    dc: int
    ac: int


@dataclass
class _Jpeg:
    """What a crop needs from a frame's headers."""

    layout: JpegLayout
    components: list[_Component]
    scan: list[_ScanComponent]
    quant: dict[int, bytes]  # table id -> 64 zig-zag entries, 8-bit precision
    dc_tables: dict[int, _Table]
    ac_tables: dict[int, _Table]
    restart_interval: int
    scan_start: int  # offset of the entropy-coded data
    keep: list[bytes]  # APP0 (JFIF) / APP14 (Adobe) segments to write, marker included
    rgb: bool  # decoders read the three components as RGB, not YCbCr


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body


def _parse(data: bytes) -> _Jpeg:
    if data[:2] != b"\xff\xd8":
        raise JpegCropUnsupported("not a JPEG stream (no SOI marker)")
    quant: dict[int, bytes] = {}
    dc_tables: dict[int, _Table] = {}
    ac_tables: dict[int, _Table] = {}
    keep: list[bytes] = []
    frame: tuple[int, int, list[_Component]] | None = None
    jfif = False
    adobe_transform: int | None = None
    restart_interval = 0
    pos = 2
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise JpegCropUnsupported("truncated or malformed JPEG headers")
        while data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
            if pos + 4 > len(data):
                raise JpegCropUnsupported("truncated JPEG headers")
        marker = data[pos + 1]
        (length,) = struct.unpack_from(">H", data, pos + 2)
        body = data[pos + 4 : pos + 2 + length]
        if length < 2 or len(body) != length - 2:
            raise JpegCropUnsupported("truncated JPEG headers")
        pos += 2 + length
        if marker in _SOF_KINDS or marker == 0xCC:
            kind = _SOF_KINDS.get(marker, "arithmetic-coded")
            raise JpegCropUnsupported(
                f"{kind} JPEG, only baseline sequential is cropped losslessly"
            )
        if marker in (0xC0, 0xC1):
            frame = _parse_sof(body)
        elif marker == 0xC4:
            _parse_dht(body, dc_tables, ac_tables)
        elif marker == 0xDB:
            _parse_dqt(body, quant)
        elif marker == 0xDD:
            if len(body) != 2:
                raise JpegCropUnsupported("malformed DRI segment")
            (restart_interval,) = struct.unpack(">H", body)
        elif marker == 0xE0 and body[:5] == b"JFIF\x00" and len(body) >= 12:
            jfif = True
            keep.append(_segment(0xE0, body[:12] + b"\x00\x00"))  # no thumbnail: it is pixels
        elif marker == 0xEE and body[:5] == b"Adobe" and len(body) >= 12:
            adobe_transform = body[11]
            keep.append(_segment(0xEE, body[:12]))
        elif marker == 0xDA:
            if frame is None:
                raise JpegCropUnsupported("JPEG scan before its frame header")
            height, width, components = frame
            scan = _parse_sos(body, components, dc_tables, ac_tables, quant)
            break
        elif marker in (0xD8, 0xD9) or 0xD0 <= marker <= 0xD7 or marker in (0xDC, 0xDE, 0xDF):
            raise JpegCropUnsupported(f"unexpected JPEG marker 0xFF{marker:02X} before the scan")
        # other APPn, COM and JPGn segments are dropped: they can hold identifying text
    rgb = False
    if len(components) == 3:
        if not jfif and adobe_transform is not None:
            rgb = adobe_transform == 0
        elif not jfif:
            rgb = [c.ident for c in components] == [ord("R"), ord("G"), ord("B")]
    single = len(components) == 1
    layout = JpegLayout(
        width=width,
        height=height,
        components=len(components),
        mcu_width=8 if single else 8 * max(c.h for c in components),
        mcu_height=8 if single else 8 * max(c.v for c in components),
        sampling=tuple((c.h, c.v) for c in components),
    )
    return _Jpeg(
        layout=layout,
        components=components,
        scan=scan,
        quant={c.quant: quant[c.quant] for c in components},
        dc_tables={s.dc: dc_tables[s.dc] for s in scan},
        ac_tables={s.ac: ac_tables[s.ac] for s in scan},
        restart_interval=restart_interval,
        scan_start=pos,
        keep=keep,
        rgb=rgb,
    )


def _parse_sof(body: bytes) -> tuple[int, int, list[_Component]]:
    if len(body) < 6:
        raise JpegCropUnsupported("malformed SOF segment")
    precision, height, width, count = struct.unpack_from(">BHHB", body)
    if precision != 8:
        raise JpegCropUnsupported(f"{precision}-bit JPEG, only 8-bit is cropped losslessly")
    if height == 0 or width == 0:
        raise JpegCropUnsupported("JPEG with its height in a DNL marker")
    if count not in (1, 3):
        raise JpegCropUnsupported(f"JPEG with {count} components (1 or 3 are cropped)")
    if len(body) != 6 + 3 * count:
        raise JpegCropUnsupported("malformed SOF segment")
    components = []
    for i in range(count):
        ident, sampling, tq = body[6 + 3 * i : 9 + 3 * i]
        components.append(_Component(ident, sampling >> 4, sampling & 15, tq))
    if len({c.ident for c in components}) != count:
        raise JpegCropUnsupported("JPEG components share an identifier")
    h_max = max(c.h for c in components)
    v_max = max(c.v for c in components)
    for c in components:
        if not (1 <= c.h <= 4 and 1 <= c.v <= 4) or h_max % c.h or v_max % c.v:
            raise JpegCropUnsupported(f"unusual JPEG sampling factors {c.h}x{c.v}")
    if count > 1 and sum(c.h * c.v for c in components) > 10:
        raise JpegCropUnsupported("more than 10 blocks per JPEG MCU")
    return height, width, components


def _parse_dht(body: bytes, dc_tables: dict[int, _Table], ac_tables: dict[int, _Table]) -> None:
    pos = 0
    while pos < len(body):
        if pos + 17 > len(body):
            raise JpegCropUnsupported("malformed DHT segment")
        table_class, table_id = body[pos] >> 4, body[pos] & 15
        counts = tuple(body[pos + 1 : pos + 17])
        end = pos + 17 + sum(counts)
        if table_class > 1 or table_id > 3 or end > len(body) or sum(counts) > 256:
            raise JpegCropUnsupported("malformed DHT segment")
        table = _Table(counts, tuple(body[pos + 17 : end]))
        if any(code >= 1 << length for _, code, length in table.codes()):
            raise JpegCropUnsupported("invalid Huffman table")
        (ac_tables if table_class else dc_tables)[table_id] = table
        pos = end


def _parse_dqt(body: bytes, quant: dict[int, bytes]) -> None:
    pos = 0
    while pos < len(body):
        precision, table_id = body[pos] >> 4, body[pos] & 15
        if precision != 0:
            raise JpegCropUnsupported("16-bit quantisation table (not baseline)")
        if table_id > 3 or pos + 65 > len(body):
            raise JpegCropUnsupported("malformed DQT segment")
        quant[table_id] = body[pos + 1 : pos + 65]
        pos += 65


def _parse_sos(
    body: bytes,
    components: list[_Component],
    dc_tables: dict[int, _Table],
    ac_tables: dict[int, _Table],
    quant: dict[int, bytes],
) -> list[_ScanComponent]:
    count = body[0] if body else 0
    if len(body) != 4 + 2 * count or count == 0:
        raise JpegCropUnsupported("malformed SOS segment")
    if count != len(components):
        raise JpegCropUnsupported("JPEG with one scan per component (not interleaved)")
    if tuple(body[1 + 2 * count :]) != (0, 63, 0):
        raise JpegCropUnsupported("JPEG scan is not sequential (spectral selection)")
    ids = [c.ident for c in components]
    scan = []
    for i in range(count):
        ident, tables = body[1 + 2 * i : 3 + 2 * i]
        if ident not in ids:
            raise JpegCropUnsupported("JPEG scan names an unknown component")
        sc = _ScanComponent(ids.index(ident), tables >> 4, tables & 15)
        if sc.dc > 1 or sc.ac > 1:
            raise JpegCropUnsupported("Huffman table number above 1 (not baseline)")
        if sc.dc not in dc_tables or sc.ac not in ac_tables:
            raise JpegCropUnsupported("JPEG scan uses an undefined Huffman table")
        if components[sc.index].quant not in quant:
            raise JpegCropUnsupported("JPEG component uses an undefined quantisation table")
        scan.append(sc)
    if len({s.index for s in scan}) != count:
        raise JpegCropUnsupported("JPEG scan names a component twice")
    return scan


def parse_layout(data: bytes) -> JpegLayout:
    """The MCU layout of a JPEG Baseline frame.

    Parameters
    ----------
    data
        One complete JPEG frame (SOI to EOI).

    Returns
    -------
    JpegLayout
        Size, component count, MCU size and sampling factors.

    Raises
    ------
    JpegCropUnsupported
        For anything but 8-bit sequential Huffman JPEG (SOF0, or SOF1 with baseline
        tables) with one interleaved scan of 1 or 3 components and integer sampling
        ratios: progressive, lossless, hierarchical, arithmetic, 12-bit, or not a JPEG.
    """
    return _parse(data).layout


def snap_crop(crop: Box, layout: JpegLayout) -> Box:
    """``crop`` clipped to the image, its left and top moved out to the MCU grid.

    Parameters
    ----------
    crop
        The wanted crop, in pixel coordinates of the frame.
    layout
        The frame's layout from ``parse_layout``.

    Returns
    -------
    Box
        The box ``crop_jpeg`` writes: left/top rounded down to multiples of the MCU
        size, right/bottom as given but clipped to the image.

    Raises
    ------
    ValueError
        If the crop does not overlap the image.
    """
    box = crop.clip(layout.width, layout.height)
    if box.is_empty:
        raise ValueError(
            f"crop {crop.as_list()} does not overlap the {layout.width}x{layout.height} image"
        )
    return Box(
        box.left - box.left % layout.mcu_width,
        box.top - box.top % layout.mcu_height,
        box.right,
        box.bottom,
    )


# --- Entropy-coded data -------------------------------------------------------------------


def _entropy_intervals(data: bytes, start: int) -> list[bytes]:
    """The scan's restart intervals, byte stuffing removed, up to the marker ending the scan."""
    intervals = []
    begin = pos = start
    while True:
        at = data.find(b"\xff", pos)
        if at < 0 or at + 1 >= len(data):
            raise JpegCropUnsupported("JPEG scan is not terminated (truncated frame)")
        following = at + 1
        while data[following] == 0xFF:  # fill bytes before a marker
            following += 1
            if following >= len(data):
                raise JpegCropUnsupported("JPEG scan is not terminated (truncated frame)")
        marker = data[following]
        if marker == 0 and following == at + 1:
            pos = at + 2
            continue
        intervals.append(data[begin:at].replace(b"\xff\x00", b"\xff"))
        if 0xD0 <= marker <= 0xD7:
            begin = pos = following + 1
            continue
        if marker != 0xD9:
            raise JpegCropUnsupported(f"JPEG marker 0xFF{marker:02X} after the scan (multi-scan)")
        return intervals


class _Slow:
    """Symbol-by-symbol decoding, for what the multi-symbol lookups leave out."""

    def __init__(self, buf: bytes, win: list[int], dc: list[_Table], ac: list[_Table]) -> None:
        self.buf = buf
        self.win = win
        self.dc = [_symbol_lut(t) for t in dc]  # per slot
        self.ac = [_symbol_lut(t) for t in ac]

    def dc_diff(self, p: int, slot: int) -> tuple[int, int]:
        """(bits, DC difference) of the DC code at bit ``p``."""
        i = p >> 3
        window = (int.from_bytes(self.buf[i : i + 5], "big") >> (8 - (p & 7))) & 0xFFFFFFFF
        length, size = self.dc[slot][window >> 16]
        if not length or size > 11:
            raise JpegCropUnsupported("corrupt JPEG entropy-coded data (bad DC code)")
        raw = (window >> (32 - length - size)) & ((1 << size) - 1)
        value = raw - (1 << size) + 1 if size and raw < 1 << (size - 1) else raw
        return length + size, value

    def skip_ac(self, p: int, slot: int) -> int:
        """Bit position after the AC coefficients of the block whose AC data starts at ``p``."""
        lut = self.ac[slot]
        win = self.win
        k = 1
        while k < 64:
            length, symbol = lut[(win[p >> 3] >> (8 - (p & 7))) & 0xFFFF]
            size = symbol & 15
            p += length + size
            if symbol == 0:
                return p
            if not length or (not 0 < size <= 10 and symbol != 0xF0):
                raise JpegCropUnsupported("corrupt JPEG entropy-coded data (bad AC code)")
            k += 16 if symbol == 0xF0 else (symbol >> 4) + 1
        if k > 64:
            raise JpegCropUnsupported("corrupt JPEG entropy-coded data (block overflow)")
        return p


_Slot = tuple[int, int, _Lut, _Lut, _Lut]  # slot, scan component, block/DC/AC lookups


class _EmptyRuns:
    """Finds runs of empty MCUs: every block with DC difference 0 and no AC coefficient.

    The black background of ultrasound frames is mostly such runs, which one integer
    comparison per ``_CHUNK`` MCUs skips instead of a lookup per block.
    """

    _CHUNK_BITS = 1024

    def __init__(self, buf: bytes, dc: list[_Table], ac: list[_Table]) -> None:
        self.buf = buf
        # DC size 0 and EOB share symbol 0: an empty block is the two codes.
        codes = [t.encoder.get(0) for pair in zip(dc, ac, strict=True) for t in pair]
        self.bits = 0  # bits of one empty MCU; 0 when a table cannot code one
        self.first: _LutEntry = (-1, 0)  # block lookup entry of an empty first block
        known = [code for code in codes if code is not None]
        if len(known) == len(codes):
            pattern = 0
            for code, length in known:
                pattern = pattern << length | code
                self.bits += length
            self.first = (known[0][1] + known[1][1], 0)
            self.chunk = max(1, self._CHUNK_BITS // self.bits)
            self.repeated = int(format(pattern, f"0{self.bits}b") * self.chunk, 2)

    def count(self, p: int, limit: int) -> int:
        """How many empty MCUs (at most ``limit``) start at bit ``p``."""
        found = 0
        while found < limit:
            n = min(self.chunk, limit - found)
            size = n * self.bits
            i = p >> 3
            nbytes = ((p & 7) + size + 7) >> 3
            if i + nbytes > len(self.buf):
                break
            actual = int.from_bytes(self.buf[i : i + nbytes], "big") >> (
                8 * nbytes - (p & 7) - size
            )
            diff = (actual & ((1 << size) - 1)) ^ (self.repeated >> (self.chunk - n) * self.bits)
            if diff:
                return found + (size - diff.bit_length()) // self.bits
            found += n
            p += size
        return found


def _skip_mcus(
    win: list[int],
    p: int,
    preds: list[int],
    count: int,
    slots: list[_Slot],
    slow: _Slow,
    empty: _EmptyRuns,
) -> int:
    """Decode ``count`` MCUs from bit ``p``, updating the DC predictors; returns the end bit.

    This is the hot loop: the 24-bit window at byte ``p >> 3`` gives the next 16 bits.
    """
    first_block = slots[0][2]
    empty_first = empty.first
    while count:
        if first_block[(win[p >> 3] >> (8 - (p & 7))) & 0xFFFF] == empty_first:
            n = empty.count(p, count)
            if n:
                p += n * empty.bits
                count -= n
                continue
        count -= 1
        for index, c, block, dc, ac in slots:
            x = (win[p >> 3] >> (8 - (p & 7))) & 0xFFFF
            b, d = block[x]
            if b:
                p += b
                preds[c] += d
                continue
            b, d = dc[x]
            if not b:
                b, d = slow.dc_diff(p, index)
            p += b
            preds[c] += d
            q = p
            k = 1
            while k < 64:
                b, kk = ac[(win[p >> 3] >> (8 - (p & 7))) & 0xFFFF]
                p += b
                k += kk
            if k != 64 and not _EOB < k < _EOB + 64:
                p = slow.skip_ac(q, index)
    return p


@dataclass
class _BlockSpan:
    """Where one block of a decoded MCU lies, in bits of the unstuffed scan."""

    dc_start: int
    ac_start: int
    end: int
    dc: int  # absolute DC coefficient (quantised)


class _Decoder:
    """Walks the scan MCU by MCU, tracking bit position and DC predictors."""

    def __init__(self, jpeg: _Jpeg, data: bytes) -> None:
        intervals = _entropy_intervals(data, jpeg.scan_start)
        if len(intervals) > 1 and not jpeg.restart_interval:
            raise JpegCropUnsupported("JPEG restart markers without a restart interval")
        self.starts = []
        offset = 0
        for interval in intervals:
            self.starts.append(8 * offset)
            offset += len(interval)
        self.ends = [*self.starts[1:], 8 * offset]
        self.buf = b"".join(intervals) + b"\xff" * 8
        array = np.frombuffer(self.buf, np.uint8).astype(np.int32)
        self.win: list[int] = (array[:-2] << 16 | array[1:-1] << 8 | array[2:]).tolist()
        slot_tables = [
            (s.index, jpeg.dc_tables[s.dc], jpeg.ac_tables[s.ac])
            for s in jpeg.scan
            for _ in range(
                1
                if len(jpeg.scan) == 1
                else jpeg.components[s.index].h * jpeg.components[s.index].v
            )
        ]
        self.slots: list[_Slot] = [
            (i, c, _block_lut(dc, ac), _dc_lut(dc), _ac_lut(ac))
            for i, (c, dc, ac) in enumerate(slot_tables)
        ]
        dcs = [dc for _, dc, _ in slot_tables]
        acs = [ac for _, _, ac in slot_tables]
        self.slow = _Slow(self.buf, self.win, dcs, acs)
        self.empty = _EmptyRuns(self.buf, dcs, acs)
        self.restart = jpeg.restart_interval
        self.mcu = 0  # index of the next MCU to decode
        self.p = 0
        self.preds = [0] * len(jpeg.scan)

    def _enter(self) -> None:
        """Start of a restart interval: DC predictors reset, data byte-aligned."""
        if self.restart and self.mcu % self.restart == 0:
            interval = self.mcu // self.restart
            if interval >= len(self.starts):
                raise JpegCropUnsupported("JPEG scan has fewer restart intervals than MCUs need")
            if interval:
                self._check_end(interval - 1)
            self.p = self.starts[interval]
            self.preds = [0] * len(self.preds)

    def _check_end(self, interval: int | None = None) -> None:
        """Whether decoding stayed inside the interval of the last MCU decoded."""
        if interval is None:
            interval = (self.mcu - 1) // self.restart if self.restart and self.mcu else 0
        if self.p > self.ends[interval]:
            raise JpegCropUnsupported("corrupt or truncated JPEG entropy-coded data")

    def skip_to(self, mcu: int) -> None:
        """Decode up to (not including) MCU ``mcu``."""
        try:
            while self.mcu < mcu:
                self._enter()
                count = mcu - self.mcu
                if self.restart:
                    count = min(count, self.restart - self.mcu % self.restart)
                self.p = _skip_mcus(
                    self.win, self.p, self.preds, count, self.slots, self.slow, self.empty
                )
                self.mcu += count
        except IndexError:
            raise JpegCropUnsupported("corrupt or truncated JPEG entropy-coded data") from None
        self._check_end()

    def decode_mcu(self) -> list[_BlockSpan]:
        """Decode the next MCU keeping every block's position."""
        self._enter()
        spans = []
        for index, c, *_ in self.slots:
            start = self.p
            bits, diff = self.slow.dc_diff(start, index)
            self.preds[c] += diff
            end = self.slow.skip_ac(start + bits, index)
            spans.append(_BlockSpan(start, start + bits, end, self.preds[c]))
            self.p = end
        self.mcu += 1
        self._check_end()
        return spans


# --- Writing ----------------------------------------------------------------------------


def _category(value: int) -> int:
    """JPEG's size category of a coefficient (number of magnitude bits)."""
    return abs(value).bit_length()


def _bits(value: int, count: int) -> _Bits:
    return np.frombuffer(format(value, f"0{count}b").encode(), np.uint8) - 48 if count else _NO_BITS


_NO_BITS: _Bits = np.zeros(0, np.uint8)


@dataclass
class _Copy:
    """A run of unmasked MCUs kept as coded, the first blocks' DC differences recoded."""

    spans: list[_BlockSpan]  # the run's first MCU
    diffs: list[int]  # new DC difference of each scan component's first block
    end: int  # bit after the run's last MCU


@dataclass
class _Mask:
    """A run of masked MCUs."""

    diffs: list[int]  # DC difference of each scan component's first block in the run
    count: int


class _Writer:
    """Assembles the new entropy-coded data as an array of bits."""

    def __init__(self, source: bytes, dc: list[_Table], ac: list[_Table]) -> None:
        self.source = np.unpackbits(np.frombuffer(source, np.uint8))
        self.dc = dc  # per slot
        self.ac = ac
        self.pieces: list[_Bits] = []

    def copy(self, start: int, end: int) -> None:
        self.pieces.append(self.source[start:end])

    def dc_diff(self, slot: int, diff: int) -> None:
        size = _category(diff)
        code, length = self.dc[slot].encoder[size]
        self.pieces.append(_bits(code, length))
        self.pieces.append(_bits(diff if diff >= 0 else diff + (1 << size) - 1, size))

    def flat_mcus(self, diffs: list[int], count: int) -> None:
        """``count`` MCUs of blocks without AC coefficients, with DC differences
        ``diffs`` (per slot) in the first MCU and 0 in the others."""
        self._flat_mcu(diffs)
        if count > 1:
            start = len(self.pieces)
            self._flat_mcu([0] * len(diffs))
            if count > 2:
                self.pieces.append(np.tile(np.concatenate(self.pieces[start:]), count - 2))

    def _flat_mcu(self, diffs: list[int]) -> None:
        for slot, diff in enumerate(diffs):
            self.dc_diff(slot, diff)
            self.pieces.append(_bits(*self.ac[slot].encoder[0]))  # EOB

    def entropy_data(self) -> bytes:
        """The bits padded with ones to a byte, 0xFF bytes stuffed."""
        padding = -sum(len(p) for p in self.pieces) % 8
        bits = np.concatenate([*self.pieces, np.ones(padding, np.uint8)])
        return np.packbits(bits).tobytes().replace(b"\xff", b"\xff\x00")


def _mask_dc(jpeg: _Jpeg) -> list[int]:
    """Per scan component, the DC coefficient of a flat black block.

    Luminance (and every component of RGB-coded data) gets the largest DC whose
    decoded level ``128 + DC * Q / 8`` is at most 0, which clips to black; chroma
    gets 0, neutral.
    """
    dcs = []
    for s in jpeg.scan:
        q = jpeg.quant[jpeg.components[s.index].quant][0]
        dcs.append(-1024 // q if s.index == 0 or jpeg.rgb else 0)
    return dcs


def _runs(
    layout: JpegLayout, crop: Box, masks: Sequence[Box], restart: int
) -> Iterator[tuple[int, int, int, bool]]:
    """``(row, first column, stop column, masked)`` runs of the kept MCUs, in scan order.

    Unmasked runs also end at restart interval boundaries, where the coded DC
    differences restart from zero.
    """
    mw, mh = layout.mcu_width, layout.mcu_height
    per_row = -(-layout.width // mw)
    first_col, stop_col = crop.left // mw, -(-crop.right // mw)
    rects = []  # masks widened to whole MCUs, in MCU units
    for mask in masks:
        box = mask.intersect(crop)
        if not box.is_empty:
            rects.append((box.top // mh, -(-box.bottom // mh), box.left // mw, -(-box.right // mw)))
    for row in range(crop.top // mh, -(-crop.bottom // mh)):
        masked = sorted((c0, c1) for r0, r1, c0, c1 in rects if r0 <= row < r1)
        col = first_col
        for c0, c1 in [*masked, (stop_col, stop_col)]:
            while col < c0:
                stop = c0
                if restart:
                    index = row * per_row + col
                    stop = min(stop, col + restart - index % restart)
                yield row, col, stop, False
                col = stop
            if c1 > col:
                yield row, col, c1, True
                col = c1


def crop_jpeg(data: bytes, crop: Box, masks: Sequence[Box] = ()) -> bytes:
    """Crop and mask a JPEG Baseline frame without decoding its pixels.

    Parameters
    ----------
    data
        One complete baseline JPEG frame.
    crop
        The box to keep, already snapped with ``snap_crop`` (left/top on the MCU grid).
    masks
        Boxes to black out, in the frame's original coordinates; each is widened to
        whole MCUs, every block of which becomes flat black.

    Returns
    -------
    bytes
        A baseline JPEG of ``crop.width`` x ``crop.height``: SOI, the JFIF/Adobe
        segments (no thumbnail), the same quantisation tables, the original Huffman
        tables (with any missing DC size or EOB code appended), SOF0, one scan without
        restart markers, EOI. Other APPn and COM segments are dropped. Every kept block
        has its original coefficients, so luminance decodes bit-identical to the
        input's crop; so does chroma, except that decoders interpolating subsampled
        chroma (libjpeg's fancy upsampling) see other neighbours along the crop's
        inner edges and along masked MCUs, where pixels can differ by a few levels.

    Raises
    ------
    ValueError
        If ``crop`` is not a box that ``snap_crop`` returns for this frame.
    JpegCropUnsupported
        If the frame is not a baseline JPEG this module handles (see ``parse_layout``),
        or its entropy-coded data is corrupt.
    """
    jpeg = _parse(data)
    layout = jpeg.layout
    if crop.is_empty or crop != snap_crop(crop, layout):
        raise ValueError(f"crop {crop.as_list()} is not snapped to this frame's MCU grid")
    if any(q == 0 for table in jpeg.quant.values() for q in table):
        raise JpegCropUnsupported("quantisation table with a zero entry")
    decoder = _Decoder(jpeg, data)
    slot_scan = [c for _, c, *_ in decoder.slots]
    firsts = [slot_scan.index(c) for c in range(len(jpeg.scan))]  # each component's first slot
    per_row = -(-layout.width // layout.mcu_width)

    # Decode what each run needs: bits to copy, DC values to recode.
    mask_dc = _mask_dc(jpeg)
    preds = [0] * len(jpeg.scan)
    ops: list[_Copy | _Mask] = []
    for row, col, stop, masked in _runs(layout, crop, masks, jpeg.restart_interval):
        if masked:
            ops.append(
                _Mask([dc - pred for dc, pred in zip(mask_dc, preds, strict=True)], stop - col)
            )
            preds = list(mask_dc)
            continue
        decoder.skip_to(row * per_row + col)
        spans = decoder.decode_mcu()
        decoder.skip_to(row * per_row + stop)
        ops.append(
            _Copy(spans, [spans[firsts[c]].dc - preds[c] for c in range(len(preds))], decoder.p)
        )
        preds = list(decoder.preds)

    # The Huffman tables must code every DC difference and EOB written anew.
    dc_tables = dict(jpeg.dc_tables)
    ac_tables = dict(jpeg.ac_tables)
    sizes: dict[int, set[int]] = {tid: set() for tid in dc_tables}
    for op in ops:
        for s, diff in zip(jpeg.scan, op.diffs, strict=True):
            sizes[s.dc].add(_category(diff))
            if isinstance(op, _Mask):
                sizes[s.dc].add(0)
                if 0 not in ac_tables[s.ac].encoder:
                    ac_tables[s.ac] = ac_tables[s.ac].with_symbols([0])
    for tid, needed in sizes.items():
        missing = sorted(needed - set(dc_tables[tid].encoder))
        if missing:
            dc_tables[tid] = dc_tables[tid].with_symbols(missing)

    writer = _Writer(
        decoder.buf,
        [dc_tables[jpeg.scan[c].dc] for c in slot_scan],
        [ac_tables[jpeg.scan[c].ac] for c in slot_scan],
    )
    for op in ops:
        if isinstance(op, _Copy):
            for slot, span in enumerate(op.spans):
                c = slot_scan[slot]
                if slot == firsts[c]:
                    writer.dc_diff(slot, op.diffs[c])
                    writer.copy(span.ac_start, span.end)
                else:
                    writer.copy(span.dc_start, span.end)
            writer.copy(op.spans[-1].end, op.end)
        else:
            diffs = [op.diffs[c] if slot == firsts[c] else 0 for slot, c in enumerate(slot_scan)]
            writer.flat_mcus(diffs, op.count)
    return _assemble(jpeg, crop, dc_tables, ac_tables, writer.entropy_data())


def _assemble(
    jpeg: _Jpeg,
    crop: Box,
    dc_tables: dict[int, _Table],
    ac_tables: dict[int, _Table],
    entropy: bytes,
) -> bytes:
    sof = struct.pack(">BHHB", 8, crop.height, crop.width, len(jpeg.components))
    sof += b"".join(bytes([c.ident, c.h << 4 | c.v, c.quant]) for c in jpeg.components)
    sos = bytes([len(jpeg.scan)])
    sos += b"".join(bytes([jpeg.components[s.index].ident, s.dc << 4 | s.ac]) for s in jpeg.scan)
    sos += bytes([0, 63, 0])
    return b"".join(
        [
            b"\xff\xd8",
            *jpeg.keep,
            _segment(
                0xDB, b"".join(bytes([tid]) + table for tid, table in sorted(jpeg.quant.items()))
            ),
            _segment(0xC0, sof),
            _segment(
                0xC4,
                b"".join(t.segment_body(0, tid) for tid, t in sorted(dc_tables.items()))
                + b"".join(t.segment_body(1, tid) for tid, t in sorted(ac_tables.items())),
            ),
            _segment(0xDA, sos),
            entropy,
            b"\xff\xd9",
        ]
    )
