"""The loops of ``jpeg_crop``: Huffman decoding and bit copying, compiled when possible.

``walk`` and ``write`` are written in the subset of Python that numba compiles
(integers, indexing, loops, array slices), so each runs either compiled over numpy
arrays or as plain Python over lists, which CPython indexes several times faster than
arrays: one algorithm, two speeds. ``load()`` picks: compiled when numba (a required
dependency, kept optional at run time for platforms without its wheels) works, unless
the environment sets ``USTUI_JIT=0``.

numba is imported on first use, not with this module: its import and start cost about
half a second per process. It keeps the compiled code in its cache: ``__pycache__``
beside this file, else the user's cache directory (``jit_cache``), or the user's
``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ustui.core import jit_cache

logger = logging.getLogger(__name__)

# Lookup entries pack small fields into one integer.
BITS = 31  # low 5 bits: bits the entry consumes; 0 when it decodes nothing
EOB = 32  # AC entry: its symbols end the block
SHIFT_DC = 5  # block and DC entries: the DC difference, above the bits
SHIFT_AC = 6  # AC entry: coefficient index advance (an EOB counting 1), above the flags
SHIFT_SYMBOL = 5  # DC code entry: the symbol, above the code length

# walk's results besides 0 (done).
CORRUPT = 1  # a code that decodes to nothing, a block past index 63, or data past the end
INTERVALS = 2  # fewer restart intervals than the MCUs need


def walk(
    win: Any,
    slot_table: Any,
    slot_component: Any,
    slot_first: Any,
    block: Any,
    dc: Any,
    dc_code: Any,
    ac: Any,
    ac_one: Any,
    starts: Any,
    ends: Any,
    restart: int,
    empty: Any,
    firsts: Any,
    stops: Any,
    preds: Any,
    out_end: Any,
    out_preds: Any,
    out_spans: Any,
) -> int:
    """Decode MCUs from the start of the scan, recording where runs of them lie.

    Parameters
    ----------
    win
        Per byte of the unstuffed scan, that byte and the next two as a 24-bit integer;
        padded so that decoding one MCU from anywhere up to the end reads inside it.
    slot_table, slot_component, slot_first
        Per block of an MCU, in coding order: the offset of its tables in the lookups
        (a multiple of 65536), its scan component, and 1 if it is the component's
        first block, else 0.
    block, dc, dc_code, ac, ac_one
        Lookups by the next 16 bits, one 65536-entry part per table: whole short
        blocks, DC codes with their extra bits, DC codes alone, runs of AC symbols,
        single AC symbols (fields as this module's constants pack them).
    starts, ends
        Bit positions where each restart interval starts and ends.
    restart
        MCUs per restart interval, 0 for none.
    empty
        An MCU whose blocks all have DC difference 0 and no AC coefficient: its bits
        (0: too long to check, or not codable), then masks and values that its first
        and its next 16 bits match; such MCUs, the black of most frames, are skipped
        with two comparisons.
    firsts, stops
        The runs: MCU indices, ``firsts[i] < stops[i] <= firsts[i + 1]``.
    preds
        The DC predictors, one per scan component, all 0; used as work space.
    out_end, out_preds, out_spans
        Filled per run ``i``: the bit after its last MCU, the DC predictors after it
        (``out_preds[i * components + c]``), and for the first block of each component
        ``c`` in its first MCU the bit the block starts at, the bit its AC codes start
        at and its DC coefficient (``out_spans[(i * components + c) * 3 + 0, 1, 2]``).

    Returns
    -------
    int
        0, ``CORRUPT`` or ``INTERVALS``.
    """
    slots = len(slot_table)
    components = len(preds)
    runs = len(firsts)
    empty_bits = empty[0]
    p = starts[0]
    limit = ends[0]
    run = 0
    m = 0
    while run < runs:
        if m == stops[run]:
            out_end[run] = p
            for c in range(components):
                out_preds[run * components + c] = preds[c]
            run += 1
            continue
        if restart and m and m % restart == 0:
            interval = m // restart
            if interval >= len(starts):
                return INTERVALS
            p = starts[interval]
            limit = ends[interval]
            for c in range(components):
                preds[c] = 0
        detail = m == firsts[run]
        if empty_bits and not detail:
            # Skip empty MCUs up to the next one that starts a run, ends one or restarts.
            until = firsts[run] if firsts[run] > m else stops[run]
            if restart:
                until = min(until, m - m % restart + restart)
            skipped = m
            q = p + 16
            while (
                m < until
                and ((win[p >> 3] >> (8 - (p & 7))) & empty[1]) == empty[2]
                and ((win[q >> 3] >> (8 - (q & 7))) & empty[3]) == empty[4]
            ):
                p += empty_bits
                q += empty_bits
                m += 1
            if m > skipped:
                if p > limit:
                    return CORRUPT
                continue
        for s in range(slots):
            t = slot_table[s]
            c = slot_component[s]
            keep = detail and slot_first[s] == 1
            x = t | (win[p >> 3] >> (8 - (p & 7))) & 0xFFFF
            if not keep:
                e = block[x]
                if e & BITS:
                    p += e & BITS
                    preds[c] += e >> SHIFT_DC
                    continue
            start = p
            e = dc[x]
            if e & BITS:
                p += e & BITS
                preds[c] += e >> SHIFT_DC
            else:  # the code and its extra bits take more than 16 bits: read 48
                e = dc_code[x]
                length = e & BITS
                size = e >> SHIFT_SYMBOL
                if not length or size > 11:
                    return CORRUPT
                i = p >> 3
                bits = win[i] << 24 | win[i + 3]
                raw = (bits >> (48 - (p & 7) - length - size)) & ((1 << size) - 1)
                if size and raw < 1 << (size - 1):
                    raw -= (1 << size) - 1
                p += length + size
                preds[c] += raw
            ac_start = p
            k = 1
            while k < 64:
                x = t | (win[p >> 3] >> (8 - (p & 7))) & 0xFFFF
                e = ac[x]
                if k + (e >> SHIFT_AC) > 64:  # the symbols run past the block: take one
                    e = ac_one[x]
                if not e & BITS or k + (e >> SHIFT_AC) > 64:
                    return CORRUPT
                p += e & BITS
                k += e >> SHIFT_AC
                if e & EOB:
                    break
            if keep:
                at = (run * components + c) * 3
                out_spans[at] = start
                out_spans[at + 1] = ac_start
                out_spans[at + 2] = preds[c]
        if p > limit:
            return CORRUPT
        m += 1
    return 0


def decode(win: Any, slot_table: Any, dc_code: Any, ac_code: Any, starts: Any, out: Any) -> int:
    """Decode whole MCUs' coefficients: the MCU ``i`` from bit ``starts[i]``, each of its
    blocks ``s`` into ``out[(i * slots + s) * 64 + k]`` in zig-zag order ``k``, the DC as
    its coded difference. ``dc_code`` and ``ac_code`` are ``walk``'s DC-code lookup and
    its AC counterpart (code length, symbol above ``SHIFT_SYMBOL``). Returns 0 or
    ``CORRUPT``."""
    slots = len(slot_table)
    for i in range(len(starts)):
        p = starts[i]
        for s in range(slots):
            t = slot_table[s]
            base = (i * slots + s) * 64
            e = dc_code[t | (win[p >> 3] >> (8 - (p & 7))) & 0xFFFF]
            size = e >> SHIFT_SYMBOL
            if not e & BITS or size > 11:
                return CORRUPT
            p += e & BITS
            value = 0
            if size:
                value = (win[p >> 3] >> (24 - (p & 7) - size)) & ((1 << size) - 1)
                if value < 1 << (size - 1):
                    value -= (1 << size) - 1
                p += size
            out[base] = value
            k = 1
            while k < 64:
                e = ac_code[t | (win[p >> 3] >> (8 - (p & 7))) & 0xFFFF]
                if not e & BITS:
                    return CORRUPT
                p += e & BITS
                symbol = e >> SHIFT_SYMBOL
                if symbol == 0:
                    break
                k += symbol >> 4
                size = symbol & 15
                if size:
                    if k > 63 or size > 10:
                        return CORRUPT
                    value = (win[p >> 3] >> (24 - (p & 7) - size)) & ((1 << size) - 1)
                    if value < 1 << (size - 1):
                        value -= (1 << size) - 1
                    out[base + k] = value
                    p += size
                k += 1
    return 0


def write(pairs: Any, starts: Any, lengths: Any, values: Any, out: Any) -> int:
    """Concatenate bit strings into bytes, padding the last byte with 1s.

    Piece ``i`` is bits ``starts[i]`` to ``starts[i] + lengths[i]`` of the source, or
    when ``starts[i] < 0`` the ``lengths[i]`` (at most 48) low bits of ``values[i]``.
    ``pairs`` holds each byte of the source with the next as a uint16 array; ``out``
    is a uint8 array a byte longer than the bits need. Whole bytes of a copied piece
    are array slices, which numpy shifts fast even uncompiled. Returns the bytes written.
    """
    acc = 0  # bits not yet written: fewer than 8 between pieces
    n = 0
    j = 0
    for i in range(len(starts)):
        a = starts[i]
        if a < 0:
            acc = acc << lengths[i] | values[i]
            n += lengths[i]
            while n >= 8:
                n -= 8
                out[j] = (acc >> n) & 0xFF
                j += 1
            acc &= (1 << n) - 1
            continue
        end = a + lengths[i]
        while a < end:
            q = a >> 3
            r = a & 7
            if n == 0 and end - a >= 8:  # whole bytes
                full = (end - a) >> 3
                out[j : j + full] = (pairs[q : q + full] >> (8 - r)) & 0xFF
                j += full
                a += full << 3
                continue
            k = min(8 - n, end - a)  # bits up to the next byte boundary of out
            acc = acc << k | (int(pairs[q]) >> (16 - r - k)) & ((1 << k) - 1)
            n += k
            a += k
            if n == 8:
                out[j] = acc
                j += 1
                acc = n = 0
    if n:
        out[j] = (acc << (8 - n) | (1 << (8 - n)) - 1) & 0xFF
        j += 1
    return j


# Bytes after the scan that decoding one MCU from its end may read: 10 blocks of at most
# 63 AC symbols of 26 bits and a DC code of 27 bits, and a 48-bit window.
_PADDING = 2112


@dataclass(frozen=True)
class Kernels:
    """The kernels, and the forms of the sequences they take."""

    walk: Callable[..., int]
    write: Callable[..., int]
    decode: Callable[..., int]
    compiled: bool
    """Compiled by numba, taking numpy arrays; else plain Python, taking lists."""

    def ints(self, values: Sequence[int]) -> Any:
        """``values`` as the kernels take integers."""
        return np.array(values, np.int64) if self.compiled else list(values)

    def to_list(self, values: Any) -> list[int]:
        """A sequence the kernels filled, as a list."""
        return values.tolist() if self.compiled else list(values)

    def lookup(self, table: npt.NDArray[np.int64]) -> Any:
        """A lookup for ``walk``; as a list, its few hundred distinct integers are shared."""
        if self.compiled:
            return table.astype(np.int32)
        distinct, inverse = np.unique(table, return_inverse=True)
        return list(operator.itemgetter(*inverse.tolist())(distinct.tolist()))

    def windows(self, scan: bytes) -> tuple[Any, npt.NDArray[np.uint16]]:
        """``walk``'s ``win`` and ``write``'s ``pairs`` for the unstuffed scan ``scan``."""
        data = np.frombuffer(scan + b"\xff" * _PADDING, np.uint8)
        pairs = data[:-1].astype(np.uint16)
        pairs <<= 8
        pairs |= data[1:]
        win = pairs[:-1].astype(np.int32)
        win <<= 8
        win |= data[2:]
        return (win if self.compiled else win.tolist()), pairs


PLAIN = Kernels(walk, write, decode, compiled=False)
"""The kernels as plain Python: without numba, or with ``USTUI_JIT=0``."""


@functools.cache
def load() -> Kernels:
    """The kernels compiled when numba works here and ``USTUI_JIT`` is not ``0``."""
    if os.environ.get("USTUI_JIT") == "0":
        return PLAIN
    return compiled() or PLAIN


@functools.cache
def compiled() -> Kernels | None:
    """The kernels compiled by numba (or loaded from its cache); None without numba."""
    jit_cache.choose(Path(__file__).parent)
    try:
        import numba
    except ImportError:
        return None
    try:
        try:
            jit = numba.njit(cache=True, nogil=True)
            kernels = Kernels(jit(walk), jit(write), jit(decode), compiled=True)
        except RuntimeError:  # no writable cache directory: compile in each process
            logger.info("numba cannot cache here; the JPEG crop kernels compile per process")
            jit = numba.njit(nogil=True)
            kernels = Kernels(jit(walk), jit(write), jit(decode), compiled=True)
        _compile(kernels)
    except Exception:  # a numba that cannot compile them must not stop crops
        logger.debug("numba failed on the JPEG crop kernels; using plain Python", exc_info=True)
        return None
    return kernels


def _compile(kernels: Kernels) -> None:
    """Call the kernels once with arguments of the types ``jpeg_crop`` passes, so that
    numba compiles them (or loads them from its cache) now."""
    none, zero = kernels.ints([]), kernels.ints([0])
    win, pairs = kernels.windows(b"")
    lookup = kernels.lookup(np.zeros(1 << 16, np.int64))
    walk_args = [win, zero, zero, zero, *[lookup] * 5, zero, zero, 0]
    walk_args += [kernels.ints([0] * 5), none, none, zero, none, none, none]
    kernels.walk(*walk_args)
    kernels.write(pairs, none, none, none, np.zeros(1, np.uint8))
    kernels.decode(win, zero, lookup, lookup, none, none)
