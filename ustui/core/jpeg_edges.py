"""The blocks on a compressed-domain crop's edge, re-coded with what lies outside the crop black.

A JPEG crop without re-encoding keeps whole MCUs, so its left and top edges start
on the MCU grid, up to 15 pixels before the box the user chose; and its right and
bottom MCUs hold coded pixels beyond the new image's edge that decoders hide but
the data keeps. Those pixels are outside the crop and must not leave with
content (PRODUCT §8). ``jpeg_crop`` decodes the few blocks concerned
(``jpeg_kernels.decode``) and hands them to this module: their samples outside the
crop are set to black, transformed and quantised again with their own table, and
their symbols listed for coding. Blocks wholly inside the crop are
never touched, and neither are the others of the frame.

Luminance outside the crop is set below black (see ``blacken``), so that the
rounding of requantisation still decodes, clamped, to exactly 0 there; a chroma
block reaching outside becomes neutral as a whole, so the margin decodes to exact
black in any colour space, and the crop's first MCU row or column may lose its
colour. Luminance inside the crop in a re-coded block differs from the input by
requantisation rounding only (a few levels).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["AcSymbols", "BlockCoding", "ac_symbols", "blacken", "dc_differences", "sample_outside"]

#: Level-shifted sample value below black given to luminance outside the crop.
UNDERSHOOT = 48
#: Largest magnitude of a baseline DC (size 11) and AC (size 10) coefficient.
_DC_LIMIT = 2047
_AC_LIMIT = 1023

#: ``_ZIGZAG[k]``: the row-major index in an 8x8 block of zig-zag coefficient ``k``.
_ZIGZAG = np.array(
    [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
     20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58,
     59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63],
    np.int64,
)  # fmt: skip


def _dct_matrix() -> npt.NDArray[np.float64]:
    """The orthonormal 8-point DCT-II (JPEG's FDCT is this in both directions)."""
    u = np.arange(8)[:, None]
    x = np.arange(8)[None, :]
    matrix = np.cos((2 * x + 1) * u * np.pi / 16) / 2
    matrix[0] /= np.sqrt(2)
    return np.asarray(matrix)


_DCT = _dct_matrix()


@dataclass(frozen=True)
class BlockCoding:
    """How one block slot of an MCU is quantised, and what black is for it."""

    quant: npt.NDArray[np.int64]
    """The 64 quantisation steps, zig-zag order."""
    luma: bool
    """Luminance (or a component of RGB-coded data): black is level 0, not neutral."""


@dataclass(frozen=True)
class AcSymbols:
    """The AC codes of some blocks, in coding order (F.1.2.2): one entry per code."""

    block: npt.NDArray[np.int64]
    """The block (row of the coefficients) each code belongs to."""
    symbol: npt.NDArray[np.int64]
    """Run and size (ZRL 0xF0, EOB 0)."""
    raw: npt.NDArray[np.int64]
    """The extra bits after the code, and how many."""
    size: npt.NDArray[np.int64]


#: Size category (bits of magnitude) of every baseline coefficient magnitude.
_SIZES = np.array([value.bit_length() for value in range(2048)], np.int64)


def _samples(natural: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(_DCT.T @ natural.reshape(-1, 8, 8) @ _DCT)


def blacken(
    coefficients: npt.NDArray[np.int64],
    quant: npt.NDArray[np.int64],
    outside: npt.NDArray[np.bool_],
    luma: npt.NDArray[np.bool_],
    shown: npt.NDArray[np.bool_],
) -> npt.NDArray[np.int64]:
    """Blocks (zig-zag, quantised; n x 64) with their ``outside`` samples (n x 8 x 8)
    black, quantised again with the same steps (``quant``, n x 64).

    Luminance outside goes below black, further (up to ``_TRIES`` times) until the
    requantised block decodes to at most -1 there, which decoders clamp to exactly 0
    whatever their IDCT's rounding. A chroma block with samples outside that are
    ``shown`` (inside the new image, not padding that decoders hide) becomes neutral
    as a whole: a neutral target alone would keep rounding noise, which on black
    shows as colour. Other chroma samples outside get a neutral target.
    """
    n = len(coefficients)
    natural = np.zeros((n, 64))
    natural[:, _ZIGZAG] = coefficients * quant
    samples = _samples(natural)
    target = np.where(luma, -128.0 - UNDERSHOOT, 0.0)
    out = np.zeros_like(coefficients)
    for _ in range(_TRIES):
        wanted = np.where(outside, target[:, None, None], samples)
        back = (_DCT @ wanted @ _DCT.T).reshape(n, 64)[:, _ZIGZAG]
        out = np.rint(back / quant).astype(np.int64)
        out[:, 0] = np.clip(out[:, 0], -_DC_LIMIT, _DC_LIMIT)
        out[:, 1:] = np.clip(out[:, 1:], -_AC_LIMIT, _AC_LIMIT)
        natural[:] = 0
        natural[:, _ZIGZAG] = out * quant
        worst = np.where(outside, _samples(natural), -np.inf).max(axis=(1, 2))
        excess = worst - (-128.0 - 1)
        if not (luma & (excess > 0)).any():
            break
        target = np.where(luma, target - np.maximum(excess, 0) * 2, 0.0)
    out[~luma & (outside & shown).any(axis=(1, 2))] = 0
    return out


#: Rounds of ``blacken`` that push luminance outside the crop further below black.
_TRIES = 4


def ac_symbols(blocks: npt.NDArray[np.int64]) -> AcSymbols:
    """The AC codes of every block (rows of zig-zag coefficients), all at once."""
    rows, ks = np.nonzero(blocks[:, 1:])
    ks = ks + 1
    values = blocks[rows, ks]
    same = np.zeros(rows.size, bool)
    same[1:] = rows[1:] == rows[:-1]
    previous = np.where(same, np.concatenate(([0], ks[:-1])), 0)
    run = ks - previous - 1
    zrl = run >> 4  # runs of 16 zeros before the coefficient
    size = _SIZES[np.abs(values)]
    raw = np.where(values >= 0, values, values + (1 << size) - 1)
    zrl_rows, zrl_ks = np.repeat(rows, zrl), np.repeat(ks, zrl)
    eob = np.flatnonzero(blocks[:, 63] == 0)
    none = np.zeros(zrl_rows.size + eob.size, np.int64)
    # coding order: by block, then coefficient index, ZRLs before their coefficient
    key = np.concatenate((rows * 130 + 2 * ks + 1, zrl_rows * 130 + 2 * zrl_ks, eob * 130 + 128))
    order = np.argsort(key, kind="stable")
    return AcSymbols(
        block=np.concatenate((rows, zrl_rows, eob))[order],
        symbol=np.concatenate(
            ((run & 15) << 4 | size, np.full(zrl_rows.size, 0xF0), none[: eob.size])
        )[order],
        raw=np.concatenate((raw, none))[order],
        size=np.concatenate((size, none))[order],
    )


def dc_differences(
    coefficients: npt.NDArray[np.int64], slot_component: Sequence[int], preds: Sequence[int]
) -> tuple[list[int], list[int]]:
    """An MCU's blocks' DC differences after the predictors ``preds`` (one per scan
    component), and the predictors after them."""
    last = list(preds)
    diffs = []
    for dc, component in zip(coefficients[:, 0].tolist(), slot_component, strict=True):
        diffs.append(dc - last[component])
        last[component] = dc
    return diffs, last


def sample_outside(
    origin: tuple[int, int],
    step: tuple[int, int],
    inside: tuple[int, int, int, int],
) -> npt.NDArray[np.bool_]:
    """Which of a block's 8x8 samples cover a pixel outside ``inside``.

    ``origin`` is the pixel of the block's first sample, ``step`` the pixels one
    sample covers across and down, ``inside`` the crop (left, top, right, bottom).
    """
    x, y = origin
    width, height = 8 * step[0], 8 * step[1]
    left, top, right, bottom = inside
    # Relative to the block and clamped, so that the blocks of a frame share few keys.
    return _outside(
        step,
        min(max(left - x, 0), width),
        min(max(top - y, 0), height),
        min(max(right - x, 0), width),
        min(max(bottom - y, 0), height),
    )


@functools.lru_cache(maxsize=256)
def _outside(
    step: tuple[int, int], left: int, top: int, right: int, bottom: int
) -> npt.NDArray[np.bool_]:
    x0 = np.arange(8) * step[0]
    y0 = np.arange(8) * step[1]
    columns = (x0 < left) | (x0 + step[0] > right)
    rows = (y0 < top) | (y0 + step[1] > bottom)
    outside = np.asarray(rows[:, None] | columns[None, :])
    outside.flags.writeable = False
    return outside
