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

The Huffman decoding that finds MCU boundaries, and the copying of bits, run in
``jpeg_kernels``: compiled by numba when it is installed, else as plain Python. Lookup
tables indexed by the next 16 bits decode a whole short block, or several AC symbols,
per step; runs of empty MCUs (black background) take two comparisons each.
"""

from __future__ import annotations

import bisect
import functools
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ustui.core import jpeg_edges as edges
from ustui.core import jpeg_kernels as kernels
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

# Lookups kept per set of tables: a file's frames share their tables (luminance and
# chroma), whose lookups take 2.6 MB (compiled kernels) to 5 MB (plain).
_CACHED_TABLES = 8
_Ints = npt.NDArray[np.int64]


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


def _decode_lut(table: _Table) -> tuple[_Ints, _Ints]:
    """Code length (0: no code) and symbol for every 16-bit prefix."""
    lengths = np.zeros(1 << 16, np.int64)
    symbols = np.zeros(1 << 16, np.int64)
    for symbol, code, length in table.codes():
        lo = code << (16 - length)
        hi = (code + 1) << (16 - length)
        lengths[lo:hi] = length
        symbols[lo:hi] = symbol
    return lengths, symbols


def _extend(value: _Ints, size: _Ints) -> _Ints:
    """JPEG's EXTEND: ``size`` raw bits to a signed value (F.2.2.1)."""
    return np.where(value < (1 << np.maximum(size - 1, 0)), value - (1 << size) + 1, value)


def _dc_decode(dc: _Table) -> tuple[_Ints, _Ints]:
    """Per 16-bit prefix: bits of DC code + extra bits (0 if longer) and DC difference."""
    window = np.arange(1 << 16, dtype=np.int64)
    lengths, symbols = _decode_lut(dc)
    used = lengths + symbols
    ok = (lengths > 0) & (used <= 16) & (symbols <= 11)
    size = np.where(ok, symbols, 0)
    raw = (window >> np.where(ok, 16 - used, 0)) & ((1 << size) - 1)
    return np.where(ok, used, 0), np.where(ok & (size > 0), _extend(raw, size), 0)


def _ac_walk(
    pos: _Ints, k: _Ints, limit: int, ac: _Table, *, steps: int = 64
) -> tuple[_Ints, _Ints, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Walk AC symbols of every 16-bit prefix in parallel while their codes are in it.

    Starts at bit ``pos`` (16: nothing to walk) and coefficient index ``k``, takes at
    most ``steps`` symbols and never goes past index ``limit``. Skipping a coefficient
    needs its code, not its value: the extra bits may run past the prefix, but then the
    walk stops. Returns the bit position and coefficient index reached, whether an EOB
    ended the walk and whether the block ended (EOB or index ``limit``).
    """
    window = np.arange(1 << 16, dtype=np.int64)
    lengths, symbols = _decode_lut(ac)
    eob_read = np.zeros(window.shape, np.bool_)
    done = np.zeros(window.shape, np.bool_)
    active = pos < 16
    for _ in range(steps):
        prefix = (window << pos) & 0xFFFF
        length = lengths[prefix]
        symbol = symbols[prefix]
        size = symbol & 15
        eob = symbol == 0
        advance = np.where(symbol == 0xF0, 16, (symbol >> 4) + 1)
        valid = ((size > 0) & (size <= 10)) | eob | (symbol == 0xF0)
        step = active & (length > 0) & (pos + length <= 16) & valid
        step &= eob | (k + advance <= limit)
        pos = np.where(step, pos + length + size, pos)
        k = np.where(step & ~eob, k + advance, k)
        eob_read |= step & eob
        ended = step & (eob | (k == limit))
        done |= ended
        active = step & ~ended
        if not active.any():
            break
    return pos, k, eob_read, done


def _lookups(dc: _Table, ac: _Table) -> tuple[_Ints, ...]:
    """The lookups ``jpeg_kernels.walk`` reads for blocks coded with ``dc`` and ``ac``.

    Per 16-bit prefix, packed as the kernel's constants say: a whole block (bits, DC
    difference; bits 0 unless the prefix holds every code of the block); a DC code
    with its extra bits (likewise, bits 0 if longer); the DC code alone (length,
    symbol); the AC symbols the prefix holds, and its first AC symbol alone (bits, EOB
    flag, coefficient index advance, an EOB counting one; bits 0 if not a symbol).
    """
    dc_bits, dc_diff = _dc_decode(dc)
    pos, _, _, done = _ac_walk(np.where(dc_bits > 0, dc_bits, 16), np.ones_like(dc_bits), 64, ac)
    block = np.where(done, pos | dc_diff << kernels.SHIFT_DC, 0)
    lengths, symbols = _decode_lut(dc)
    zero = np.zeros_like(dc_bits)
    pos, k, eob, _ = _ac_walk(zero, zero, 63, ac)  # the block's index starts at 1
    ac_run = np.where(pos > 0, pos | eob * kernels.EOB | (k + eob) << kernels.SHIFT_AC, 0)
    pos, k, eob, _ = _ac_walk(zero, zero, 64, ac, steps=1)
    ac_one = np.where(pos > 0, pos | eob * kernels.EOB | (k + eob) << kernels.SHIFT_AC, 0)
    ac_lengths, ac_symbols = _decode_lut(ac)
    return (
        block,
        dc_bits | dc_diff << kernels.SHIFT_DC,
        lengths | symbols << kernels.SHIFT_SYMBOL,
        ac_run,
        ac_one,
        ac_lengths | ac_symbols << kernels.SHIFT_SYMBOL,  # for jpeg_kernels.decode
    )


@functools.lru_cache(maxsize=_CACHED_TABLES)
def _scan_lookups(pairs: tuple[tuple[_Table, _Table], ...], run: kernels.Kernels) -> list[Any]:
    """The lookups of ``pairs`` of (DC, AC) tables, concatenated in that order."""
    tables = [_lookups(dc, ac) for dc, ac in pairs]
    return [run.lookup(np.concatenate(parts)) for parts in zip(*tables, strict=True)]


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
        table = _huffman_table(counts, tuple(body[pos + 17 : end]))
        (ac_tables if table_class else dc_tables)[table_id] = table
        pos = end


@functools.lru_cache(maxsize=4 * _CACHED_TABLES)
def _huffman_table(counts: tuple[int, ...], values: tuple[int, ...]) -> _Table:
    """The table, checked once: a file's frames repeat their tables."""
    table = _Table(counts, values)
    if any(code >= 1 << length for _, code, length in table.codes()):
        raise JpegCropUnsupported("invalid Huffman table")
    return table


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


def snap_crop(crop: Box, layout: JpegLayout, *, inward: bool = False) -> Box:
    """``crop`` clipped to the image, its left and top moved out (or in) to the MCU grid.

    Parameters
    ----------
    crop
        The wanted crop, in pixel coordinates of the frame.
    layout
        The frame's layout from ``parse_layout``.
    inward
        Round left/top up instead, so that the box holds nothing outside ``crop``;
        a crop too small for that is snapped out.

    Returns
    -------
    Box
        The box ``crop_jpeg`` writes: left/top rounded down (or up) to multiples of
        the MCU size, right/bottom as given but clipped to the image.

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
    snapped = Box(
        box.left - box.left % layout.mcu_width,
        box.top - box.top % layout.mcu_height,
        box.right,
        box.bottom,
    )
    if inward:
        moved = Box(
            -(-box.left // layout.mcu_width) * layout.mcu_width,
            -(-box.top // layout.mcu_height) * layout.mcu_height,
            box.right,
            box.bottom,
        )
        return snapped if moved.is_empty else moved
    return snapped


# --- Entropy-coded data -------------------------------------------------------------------


def _entropy_intervals(data: bytes, start: int) -> list[bytes]:
    """The scan's restart intervals, byte stuffing removed, up to the marker ending the scan."""
    scan = np.frombuffer(data, np.uint8)[start:]
    ff = np.flatnonzero(scan[:-1] == 0xFF)  # markers, their fill bytes, and stuffed 0xFF
    stuffed = scan[ff + 1] == 0
    zeros = (ff[stuffed] + start + 1).tolist()
    view = memoryview(data)
    intervals = []
    begin = start
    for at in (ff[~stuffed] + start).tolist():
        if at < begin:  # fill bytes of the marker just read
            continue
        following = at + 1
        while following < len(data) and data[following] == 0xFF:
            following += 1
        if following == len(data):
            break
        pieces = []
        for zero in zeros[bisect.bisect(zeros, begin) : bisect.bisect(zeros, at)]:
            pieces.append(view[begin:zero])
            begin = zero + 1
        pieces.append(view[begin:at])
        intervals.append(b"".join(pieces))
        marker = data[following]
        if 0xD0 <= marker <= 0xD7:
            begin = following + 1
            continue
        if marker != 0xD9:
            raise JpegCropUnsupported(f"JPEG marker 0xFF{marker:02X} after the scan (multi-scan)")
        return intervals
    raise JpegCropUnsupported("JPEG scan is not terminated (truncated frame)")


@dataclass
class _Walked:
    """Where the runs of kept MCUs lie in the unstuffed scan: ``walk``'s outputs."""

    win: Any  # the unstuffed scan as the kernels read it
    pairs: npt.NDArray[np.uint16]  # the same as ``jpeg_kernels.write`` reads it
    ends: list[int]  # per run, the bit after its last MCU
    preds: list[int]  # per run and scan component, the DC predictor after the run
    spans: list[int]  # per run and component, its first block: start bit, AC start bit, DC
    slot_table: Any = None  # ``walk``'s, for ``jpeg_kernels.decode``
    lookups: list[Any] = field(default_factory=list)  # the scan's lookups, by kind


def _slots(jpeg: _Jpeg) -> list[int]:
    """The scan component of each block of an MCU, in coding order."""
    if len(jpeg.scan) == 1:
        return [0]
    return [
        c
        for c, s in enumerate(jpeg.scan)
        for _ in range(jpeg.components[s.index].h * jpeg.components[s.index].v)
    ]


@functools.lru_cache(maxsize=_CACHED_TABLES)
def _empty_mcu(slots: tuple[tuple[_Table, _Table], ...]) -> tuple[int, ...]:
    """``jpeg_kernels.walk``'s ``empty`` for MCUs whose blocks use these (DC, AC) tables."""
    pattern = bits = 0
    for table in (t for pair in slots for t in pair):
        code = table.encoder.get(0)  # DC size 0 and EOB are both symbol 0
        if code is None:
            return (0, 0, 0, 0, 0)
        pattern = pattern << code[1] | code[0]
        bits += code[1]
    if bits > 32:
        return (0, 0, 0, 0, 0)
    mask = ((1 << bits) - 1) << (32 - bits)
    pattern <<= 32 - bits
    return (bits, mask >> 16, pattern >> 16, mask & 0xFFFF, pattern & 0xFFFF)


def _walk(jpeg: _Jpeg, data: bytes, firsts: list[int], stops: list[int]) -> _Walked:
    """Decode the scan as far as the runs of MCUs ``firsts[i]`` to ``stops[i]`` need."""
    intervals = _entropy_intervals(data, jpeg.scan_start)
    if len(intervals) > 1 and not jpeg.restart_interval:
        raise JpegCropUnsupported("JPEG restart markers without a restart interval")
    bounds = (np.cumsum([0, *map(len, intervals)]) * 8).tolist()
    run = kernels.load()
    win, pairs = run.windows(b"".join(intervals))
    slot_component = _slots(jpeg)
    tables = [(jpeg.dc_tables[s.dc], jpeg.ac_tables[s.ac]) for s in jpeg.scan]
    distinct = list(dict.fromkeys(tables))
    n, runs = len(jpeg.scan), len(firsts)
    outputs = [run.ints([0] * size) for size in (runs, runs * n, runs * n * 3)]
    slot_table = run.ints([distinct.index(tables[c]) << 16 for c in slot_component])
    lookups = _scan_lookups(tuple(distinct), run)
    status = run.walk(
        win,
        slot_table,
        run.ints(slot_component),
        run.ints([int(s == slot_component.index(c)) for s, c in enumerate(slot_component)]),
        *lookups[:5],
        run.ints(bounds[:-1]),
        run.ints(bounds[1:]),
        jpeg.restart_interval,
        run.ints(_empty_mcu(tuple(tables[c] for c in slot_component))),
        run.ints(firsts),
        run.ints(stops),
        run.ints([0] * n),
        *outputs,
    )
    if status == kernels.INTERVALS:
        raise JpegCropUnsupported("JPEG scan has fewer restart intervals than MCUs need")
    if status:
        raise JpegCropUnsupported("corrupt or truncated JPEG entropy-coded data")
    ends, preds, spans = map(run.to_list, outputs)
    return _Walked(win, pairs, ends, preds, spans, slot_table, lookups)


# --- Writing ----------------------------------------------------------------------------


def _category(value: int) -> int:
    """JPEG's size category of a coefficient (number of magnitude bits)."""
    return abs(value).bit_length()


@dataclass
class _Copy:
    """A run of unmasked MCUs kept as coded, the first blocks' DC differences recoded."""

    first: list[int]  # DC of each scan component's first block
    after: list[int]  # the DC predictors after the run
    ranges: list[tuple[int, int]]  # per scan component, the bits copied after that code
    diffs: list[int] = field(default_factory=list)  # new DC difference of ``first``


@dataclass
class _Mask:
    """A run of masked MCUs."""

    first: list[int]  # the black DC of each scan component
    count: int
    diffs: list[int] = field(default_factory=list)  # DC difference of the run's first blocks

    @property
    def after(self) -> list[int]:
        return self.first


@dataclass
class _Edge:
    """One MCU on the crop's edge, its blocks re-coded with the pixels outside the crop black."""

    coefficients: npt.NDArray[np.int64]  # per slot, zig-zag, DC absolute
    diffs: list[int] = field(default_factory=list)  # per slot, its DC difference as coded


# Bits that codes written in one piece may take, so that they stay within 64-bit integers.
_CODE_BITS = 48


class _Writer:
    """The new entropy-coded data as pieces: bit ranges of the scan and new codes."""

    def __init__(self, dc: list[_Table], ac: list[_Table]) -> None:
        self.dc = [t.encoder for t in dc]  # per slot
        self.ac = [t.encoder for t in ac]
        self.starts: list[int] = []  # bit of the scan, or -1 for codes
        self.lengths: list[int] = []
        self.values: list[int] = []  # the bits of codes

    def copy(self, start: int, end: int) -> None:
        self.starts.append(start)
        self.lengths.append(end - start)
        self.values.append(0)

    def code(self, value: int, length: int) -> None:
        if self.starts and self.starts[-1] < 0 and self.lengths[-1] + length <= _CODE_BITS:
            self.values[-1] = self.values[-1] << length | value
            self.lengths[-1] += length
        else:
            self.starts.append(-1)
            self.lengths.append(length)
            self.values.append(value)

    def codes(self, values: list[int], lengths: list[int], first: int, stop: int) -> None:
        """Codes ``first`` to ``stop`` of ``values`` (their bits) and ``lengths``."""
        self.starts.extend([-1] * (stop - first))
        self.lengths.extend(lengths[first:stop])
        self.values.extend(values[first:stop])

    def dc_diff(self, slot: int, diff: int) -> None:
        size = _category(diff)
        code, length = self.dc[slot][size]
        self.code(code << size | (diff if diff >= 0 else diff + (1 << size) - 1), length + size)

    def flat_mcus(self, diffs: list[int], count: int) -> None:
        """``count`` MCUs of blocks without AC coefficients, with DC differences
        ``diffs`` (per slot) in the first MCU and 0 in the others."""
        self._flat_mcu(diffs)
        if count > 1:
            first = len(self.starts)
            self.copy(0, 0)  # codes from here on are one MCU, repeated below
            self._flat_mcu([0] * len(diffs))
            for column in (self.starts, self.lengths, self.values):
                column.extend(column[first:] * (count - 2))

    def _flat_mcu(self, diffs: list[int]) -> None:
        for slot, diff in enumerate(diffs):
            self.dc_diff(slot, diff)
            self.code(*self.ac[slot][0])  # EOB

    def entropy_data(self, pairs: npt.NDArray[np.uint16]) -> bytes:
        """The pieces, copied from the scan as ``pairs``, padded with ones to a byte and
        0xFF bytes stuffed."""
        run = kernels.load()
        out = np.zeros(sum(self.lengths) // 8 + 1, np.uint8)
        pieces = [run.ints(column) for column in (self.starts, self.lengths, self.values)]
        size = run.write(pairs, *pieces, out)
        return out[:size].tobytes().replace(b"\xff", b"\xff\x00")


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


# What ``_runs`` yields for each run of MCUs.
_COPY, _MASKED, _EDGE = range(3)


def _edge_cells(layout: JpegLayout, crop: Box, content: Box) -> tuple[set[int], set[int]]:
    """The MCU rows and columns of ``crop`` that hold image pixels outside ``content``."""
    found: list[set[int]] = []
    for size, extent, low, high, inner_low, inner_high in (
        (layout.mcu_height, layout.height, crop.top, crop.bottom, content.top, content.bottom),
        (layout.mcu_width, layout.width, crop.left, crop.right, content.left, content.right),
    ):
        first, last = low // size, -(-high // size) - 1
        cells = set()
        if inner_low > first * size:
            cells.add(first)
        if min(extent, (last + 1) * size) > inner_high:
            cells.add(last)
        found.append(cells)
    return found[0], found[1]


def _shape_grid(
    layout: JpegLayout, crop: Box, shape: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """``shape`` (a flag per pixel of ``crop``) padded with False to whole MCUs."""
    rows = -(-crop.height // layout.mcu_height) * layout.mcu_height
    columns = -(-crop.width // layout.mcu_width) * layout.mcu_width
    grid = np.zeros((rows, columns), bool)
    grid[: crop.height, : crop.width] = shape
    return grid


def _runs(
    layout: JpegLayout,
    crop: Box,
    masks: Sequence[Box],
    restart: int,
    content: Box,
    shape: npt.NDArray[np.bool_] | None = None,
) -> Iterator[tuple[int, int, int, int]]:
    """``(row, first column, stop column, kind)`` runs of the kept MCUs, in scan order.

    Kinds: ``_MASKED`` (also MCUs wholly in ``shape``, from ``_shape_grid``); ``_EDGE``,
    one MCU with pixels outside ``content`` or partly in ``shape``; ``_COPY``, the
    others, whose runs also end at restart interval boundaries, where the coded DC
    differences restart from zero.
    """
    mw, mh = layout.mcu_width, layout.mcu_height
    per_row = -(-layout.width // mw)
    first_row, first_col, stop_col = crop.top // mh, crop.left // mw, -(-crop.right // mw)
    edge_rows, edge_cols = _edge_cells(layout, crop, content)
    rects = []  # masks widened to whole MCUs, in MCU units
    for mask in masks:
        box = mask.intersect(crop)
        if not box.is_empty:
            rects.append((box.top // mh, -(-box.bottom // mh), box.left // mw, -(-box.right // mw)))
    partly: npt.NDArray[np.bool_] = np.zeros((0, 0), bool)
    wholly: npt.NDArray[np.bool_] = np.zeros((0, 0), bool)
    if shape is not None:
        cells = shape.reshape(shape.shape[0] // mh, mh, shape.shape[1] // mw, mw)
        inside = np.zeros_like(shape)
        inside[: crop.height, : crop.width] = True
        inside_cells = inside.reshape(cells.shape)
        partly = np.asarray(cells.any(axis=(1, 3)))
        wholly = np.asarray((cells | ~inside_cells).all(axis=(1, 3)))
    for row in range(first_row, -(-crop.bottom // mh)):
        masked = [(c0, c1) for r0, r1, c0, c1 in rects if r0 <= row < r1]
        edgy = set(edge_cols)
        if shape is not None:
            cells_row = row - first_row
            masked += [
                (first_col + c, first_col + c + 1)
                for c in np.flatnonzero(wholly[cells_row]).tolist()
            ]
            edgy.update(first_col + int(c) for c in np.flatnonzero(partly[cells_row]))
        masked.sort()
        col = first_col
        for c0, c1 in [*masked, (stop_col, stop_col)]:
            while col < c0:
                if row in edge_rows or col in edgy:
                    yield row, col, col + 1, _EDGE
                    col += 1
                    continue
                stop = min([c0, *(c for c in edgy if c > col)])
                if restart:
                    index = row * per_row + col
                    stop = min(stop, col + restart - index % restart)
                yield row, col, stop, _COPY
                col = stop
            if c1 > col:
                yield row, col, c1, _MASKED
                col = c1


def _edge_coding(jpeg: _Jpeg) -> tuple[list[edges.BlockCoding], list[tuple[int, int, int, int]]]:
    """Per slot of an MCU: its coding, and its first sample's offset in the MCU and the
    pixels a sample covers (x, y, step across, step down)."""
    slot_scan = _slots(jpeg)
    codings, places = [], []
    single = len(jpeg.components) == 1
    h_max = max(c.h for c in jpeg.components)
    v_max = max(c.v for c in jpeg.components)
    for slot, c in enumerate(slot_scan):
        scan = jpeg.scan[c]
        component = jpeg.components[scan.index]
        luma = scan.index == 0 or jpeg.rgb
        codings.append(
            edges.BlockCoding(
                quant=np.frombuffer(jpeg.quant[component.quant], np.uint8).astype(np.int64),
                luma=luma,
            )
        )
        j = slot - slot_scan.index(c)  # the block's place among its component's blocks
        sx, sy = (1, 1) if single else (h_max // component.h, v_max // component.v)
        bx, by = (0, 0) if single else (j % component.h, j // component.h)
        places.append((bx * 8 * sx, by * 8 * sy, sx, sy))
    return codings, places


def crop_jpeg(
    data: bytes,
    crop: Box,
    masks: Sequence[Box] = (),
    *,
    content: Box | None = None,
    shape: npt.NDArray[np.bool_] | None = None,
) -> bytes:
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
    content
        The box the user chose, inside ``crop`` (default: ``crop``). Every pixel of
        the written MCUs outside it is black, the padding a decoder hides beyond the
        right and bottom edges included: the MCUs on the edge that hold such pixels
        are decoded and re-coded (``jpeg_edges``), the rest copied.
    shape
        Per pixel of ``crop`` (its height x width), True to write black: a mask of any
        shape, such as what lies outside an ultrasound sector. MCUs wholly in it
        become flat black; MCUs partly in it are re-coded like ``content``'s edge.

    Returns
    -------
    bytes
        A baseline JPEG of ``crop.width`` x ``crop.height``: SOI, the JFIF/Adobe
        segments (no thumbnail), the same quantisation tables, the original Huffman
        tables (with any missing code appended), SOF0, one scan without restart
        markers, EOI. Other APPn and COM segments are dropped. Every kept block but
        those re-coded on ``content``'s edge has its original coefficients, so
        luminance decodes bit-identical to the input's crop; so does chroma, except
        that decoders interpolating subsampled chroma (libjpeg's fancy upsampling) see
        other neighbours along the crop's inner edges and along masked MCUs, where
        pixels can differ by a few levels. Re-coded blocks differ by requantisation
        rounding inside ``content``.

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
    inside = crop if content is None else content.intersect(crop)
    if inside.is_empty:
        raise ValueError(f"content {inside.as_list()} lies outside the crop")
    if any(q == 0 for table in jpeg.quant.values() for q in table):
        raise JpegCropUnsupported("quantisation table with a zero entry")
    slot_scan = _slots(jpeg)
    firsts = [slot_scan.index(c) for c in range(len(jpeg.scan))]  # each component's first slot
    per_row = -(-layout.width // layout.mcu_width)
    grid = None if shape is None else _shape_grid(layout, crop, shape)
    runs = list(_runs(layout, crop, masks, jpeg.restart_interval, inside, grid))
    kept = [
        (row * per_row + col, row * per_row + stop) for row, col, stop, k in runs if k != _MASKED
    ]
    walked = _walk(jpeg, data, [first for first, _ in kept], [stop for _, stop in kept])

    # What each run needs: bits to copy, DC values to recode.
    ops = _operations(jpeg, runs, walked, crop, inside, grid)
    # The Huffman tables must code every DC difference and EOB written anew.
    dc_tables = dict(jpeg.dc_tables)
    ac_tables = dict(jpeg.ac_tables)
    flat = any(isinstance(op, _Mask) for op in ops)
    sizes: dict[int, set[int]] = {tid: {0} if flat else set() for tid in dc_tables}
    symbols: dict[int, set[int]] = {tid: {0} if flat else set() for tid in ac_tables}
    for op in ops:
        if isinstance(op, _Edge):
            for slot, diff in enumerate(op.diffs):
                sizes[jpeg.scan[slot_scan[slot]].dc].add(_category(diff))
        else:
            for c, scan in enumerate(jpeg.scan):
                sizes[scan.dc].add(_category(op.diffs[c]))
    recoded = [op.coefficients for op in ops if isinstance(op, _Edge)]
    ac = edges.ac_symbols(np.concatenate(recoded)) if recoded else None
    if ac is not None:  # the AC table of each code's block
        table_of = np.array([jpeg.scan[c].ac for c in slot_scan])[ac.block % len(slot_scan)]
        for tid in symbols:
            symbols[tid].update(np.unique(ac.symbol[table_of == tid]).tolist())
    for tables, needed_by_table in ((dc_tables, sizes), (ac_tables, symbols)):
        for tid, needed in needed_by_table.items():
            missing = sorted(needed - set(tables[tid].encoder))
            if missing:
                tables[tid] = tables[tid].with_symbols(missing)

    writer = _Writer(
        [dc_tables[jpeg.scan[c].dc] for c in slot_scan],
        [ac_tables[jpeg.scan[c].ac] for c in slot_scan],
    )
    slot_ac = [ac_tables[jpeg.scan[c].ac] for c in slot_scan]
    codes = None if ac is None else _ac_codes(ac, slot_ac, len(recoded) * len(slot_scan))
    block = 0  # re-coded blocks written so far
    for op in ops:
        if isinstance(op, _Copy):
            for slot, diff, (start, end) in zip(firsts, op.diffs, op.ranges, strict=True):
                writer.dc_diff(slot, diff)
                writer.copy(start, end)
        elif isinstance(op, _Edge):
            assert codes is not None  # made above for every re-coded block
            values, lengths, bounds = codes
            for slot, diff in enumerate(op.diffs):
                writer.dc_diff(slot, diff)
                writer.codes(values, lengths, bounds[block], bounds[block + 1])
                block += 1
        else:
            diffs = [op.diffs[c] if slot == firsts[c] else 0 for slot, c in enumerate(slot_scan)]
            writer.flat_mcus(diffs, op.count)
    return _assemble(jpeg, crop, dc_tables, ac_tables, writer.entropy_data(walked.pairs))


def _ac_codes(
    ac: edges.AcSymbols, slot_tables: list[_Table], blocks: int
) -> tuple[list[int], list[int], list[int]]:
    """Each AC code's bits and length (extra bits included), and where each block's
    codes start, for the tables of each slot."""
    slots = len(slot_tables)
    code = np.zeros((slots, 256), np.int64)
    length = np.zeros((slots, 256), np.int64)
    for slot, table in enumerate(slot_tables):
        for symbol, (bits, count) in table.encoder.items():
            code[slot, symbol], length[slot, symbol] = bits, count
    slot_of = ac.block % slots
    values = code[slot_of, ac.symbol] << ac.size | ac.raw
    lengths = length[slot_of, ac.symbol] + ac.size
    bounds = np.searchsorted(ac.block, np.arange(blocks + 1))
    return values.tolist(), lengths.tolist(), bounds.tolist()


def _operations(
    jpeg: _Jpeg,
    runs: list[tuple[int, int, int, int]],
    walked: _Walked,
    crop: Box,
    inside: Box,
    grid: npt.NDArray[np.bool_] | None,
) -> list[_Copy | _Mask | _Edge]:
    """What to write for each run, its DC differences worked out."""
    layout = jpeg.layout
    slot_scan = _slots(jpeg)
    n = len(jpeg.scan)
    mask_dc = _mask_dc(jpeg)
    codings, places = _edge_coding(jpeg) if any(r[3] == _EDGE for r in runs) else ([], [])
    box = (inside.left, inside.top, inside.right, inside.bottom)
    image = (crop.left, crop.top, crop.right, crop.bottom)
    ops: list[_Copy | _Mask | _Edge] = []
    starts: list[int] = []  # per edge MCU, its first bit
    first_dc: list[list[int]] = []  # per edge MCU and scan component, its first block's DC
    corners: list[tuple[int, int]] = []  # per edge MCU, its top-left pixel
    i = 0  # kept runs so far
    for row, col, stop, kind in runs:
        if kind == _MASKED:
            ops.append(_Mask(mask_dc, stop - col))
            continue
        spans = walked.spans[i * 3 * n : (i + 1) * 3 * n]
        if kind == _EDGE:
            corners.append((col * layout.mcu_width, row * layout.mcu_height))
            starts.append(spans[0])
            first_dc.append(spans[2::3])
            ops.append(_Edge(np.zeros(0, np.int64)))
        else:
            # A component's first block gets a new DC code; the bits from its AC codes to
            # the next component's first block (or the run's end) are copied as they are.
            ops.append(
                _Copy(
                    spans[2::3],
                    walked.preds[i * n : (i + 1) * n],
                    list(zip(spans[1::3], [*spans[3::3], walked.ends[i]], strict=True)),
                )
            )
        i += 1
    recoded = [op for op in ops if isinstance(op, _Edge)]
    if recoded:
        blocks = _decode_mcus(walked, starts, first_dc, slot_scan)
        outside, hidden = _edge_flags(tuple(corners), tuple(places), box, image)
        if grid is not None:
            outside = outside | _shape_flags(grid, corners, places, crop)
        touched = outside.any(axis=(1, 2))
        blocks[touched] = edges.blacken(
            blocks[touched],
            np.tile(np.stack([c.quant for c in codings]), (len(recoded), 1))[touched],
            outside[touched],
            np.tile([c.luma for c in codings], len(recoded))[touched],
            ~hidden[touched],
        )
        for op, part in zip(recoded, np.split(blocks, len(recoded)), strict=True):
            op.coefficients = part
    preds = [0] * n
    for step in ops:
        if isinstance(step, _Edge):
            step.diffs, preds = edges.dc_differences(step.coefficients, slot_scan, preds)
        else:
            step.diffs = [dc - pred for dc, pred in zip(step.first, preds, strict=True)]
            preds = step.after
    return ops


@functools.lru_cache(maxsize=4)
def _edge_flags(
    corners: tuple[tuple[int, int], ...],
    places: tuple[tuple[int, int, int, int], ...],
    inside: tuple[int, int, int, int],
    image: tuple[int, int, int, int],
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Per block of the edge MCUs at ``corners``, its samples covering pixels outside
    ``inside`` and outside ``image``: the same for every frame, so computed once."""
    outside, hidden = [], []
    for x, y in corners:
        for dx, dy, sx, sy in places:
            outside.append(edges.sample_outside((x + dx, y + dy), (sx, sy), inside))
            hidden.append(edges.sample_outside((x + dx, y + dy), (sx, sy), image))
    return np.stack(outside), np.stack(hidden)


def _shape_flags(
    grid: npt.NDArray[np.bool_],
    corners: list[tuple[int, int]],
    places: list[tuple[int, int, int, int]],
    crop: Box,
) -> npt.NDArray[np.bool_]:
    """Per block of the edge MCUs, its samples covering a pixel of the shape ``grid``."""
    flags = []
    for x, y in corners:
        for dx, dy, sx, sy in places:
            top, left = y + dy - crop.top, x + dx - crop.left
            pixels = grid[top : top + 8 * sy, left : left + 8 * sx]
            flags.append(pixels.reshape(8, sy, 8, sx).any(axis=(1, 3)))
    return np.stack(flags)


def _decode_mcus(
    walked: _Walked, starts: list[int], first_dc: list[list[int]], slot_scan: list[int]
) -> npt.NDArray[np.int64]:
    """The coefficients (zig-zag, DC values) of the blocks of the MCUs at bits ``starts``,
    one row per block; ``first_dc`` gives each MCU's DC of each component's first block."""
    run = kernels.load()
    slots = len(slot_scan)
    size = len(starts) * slots * 64
    out = np.zeros(size, np.int64) if run.compiled else [0] * size
    lookups = walked.lookups
    if run.decode(walked.win, walked.slot_table, lookups[2], lookups[5], run.ints(starts), out):
        raise JpegCropUnsupported("corrupt JPEG entropy-coded data")
    blocks = np.asarray(out, np.int64).reshape(len(starts), slots, 64)
    firsts = np.asarray(first_dc, np.int64)
    for slot, component in enumerate(slot_scan):  # DC differences to DC values
        if slot == slot_scan.index(component):
            blocks[:, slot, 0] = firsts[:, component]
        else:
            blocks[:, slot, 0] += blocks[:, slot - 1, 0]
    return blocks.reshape(-1, 64)


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
