"""Compressed-domain crop and mask of JPEG Baseline frames, proven against Pillow decoding.

Tests that crop run twice, with the numba-compiled kernels (skipped without numba) and
with the plain-Python ones; further tests check that both write the same bytes.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import PROJECT, real_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.encaps import generate_frames

from ustui.core import jpeg_kernels
from ustui.core.boxes import Box
from ustui.core.errors import Unsupported
from ustui.core.jpeg_crop import (
    JpegCropUnsupported,
    JpegLayout,
    crop_jpeg,
    parse_layout,
    snap_crop,
)


@pytest.fixture(autouse=True)
def kernels(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> jpeg_kernels.Kernels:
    """The kernels ``crop_jpeg`` runs; ``both_kernels`` tests get "compiled" and "plain"."""
    name = getattr(request, "param", None)
    if name is None:
        return jpeg_kernels.load()
    chosen = compiled_kernels() if name == "compiled" else jpeg_kernels.PLAIN
    monkeypatch.setattr(jpeg_kernels, "load", lambda: chosen)
    return chosen


both_kernels = pytest.mark.parametrize("kernels", ["compiled", "plain"], indirect=True)


def compiled_kernels() -> jpeg_kernels.Kernels:
    """The numba-compiled kernels; skips without numba, fails if it cannot compile them."""
    compiled = jpeg_kernels.compiled()
    if compiled is None:
        pytest.importorskip("numba")
        pytest.fail("numba is installed but the kernels did not compile (see the log)")
    return compiled


# Pillow's subsampling option: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0; None = greyscale.
LAYOUTS = {"444": 0, "422": 1, "420": 2, "grey": None}


def speckle(width: int, height: int, *, seed: int = 0, grey: bool = False) -> np.ndarray:
    """Ultrasound-like content: black background, speckle sector, colour in every MCU."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    sector = np.abs(xx - width / 2) < (yy + 5) * 0.7
    luma = np.where(sector, rng.rayleigh(50, (height, width)), 0)
    luma[3:9, 4 : width // 2] = 255 * (rng.random((6, width // 2 - 4)) > 0.5)  # "text"
    if grey:
        return np.clip(luma, 0, 255).astype(np.uint8)
    rgb = np.repeat(luma[..., None], 3, axis=2)
    rgb[..., 0] += rng.normal(0, 40, (height, width)) * sector  # doppler-like colour
    rgb[..., 2] += np.linspace(-60, 60, width)[None, :]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def encode(
    pixels: np.ndarray, subsampling: int | None = 1, quality: int = 90, **options: object
) -> bytes:
    out = io.BytesIO()
    if subsampling is None:
        Image.fromarray(pixels).save(out, "JPEG", quality=quality, **options)
    else:
        Image.fromarray(pixels).save(
            out, "JPEG", quality=quality, subsampling=subsampling, **options
        )
    return out.getvalue()


def frame(
    layout: str, width: int = 203, height: int = 157, seed: int = 0, **options: object
) -> bytes:
    grey = LAYOUTS[layout] is None
    return encode(speckle(width, height, seed=seed, grey=grey), LAYOUTS[layout], **options)


def decode(data: bytes, mode: str = "RGB") -> np.ndarray:
    """Pillow's pixels; ``mode="YCbCr"`` keeps libjpeg's own YCbCr (no colour conversion)."""
    image = Image.open(io.BytesIO(data))
    if mode == "YCbCr" and image.mode != "L":
        image.draft("YCbCr", image.size)
        assert image.mode == "YCbCr"
        return np.asarray(image)
    return np.asarray(image.convert(mode) if image.mode != "L" else image)


def markers(data: bytes) -> list[int]:
    """Marker codes of a JPEG's segments up to SOS, then EOI if the data ends with it."""
    found = []
    pos = 2
    while data[pos + 1] != 0xDA:
        found.append(data[pos + 1])
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    found.append(0xDA)
    if data.endswith(b"\xff\xd9"):
        found.append(0xD9)
    return found


def chroma_factors(layout: JpegLayout) -> tuple[int, int]:
    """How many luma pixels one chroma sample spans (1 for greyscale and 4:4:4)."""
    if layout.components == 1:
        return 1, 1
    (h, v), *chroma = layout.sampling
    return h // min(c[0] for c in chroma), v // min(c[1] for c in chroma)


def interpolated(layout: JpegLayout, crop: Box, masked: list[Box] = ()) -> np.ndarray:
    """Output pixels whose chroma a fancy-upsampling decoder may compute differently.

    libjpeg interpolates subsampled chroma from the neighbouring sample: along the crop's
    inner edges that neighbour is gone (the decoder repeats the edge), and next to a
    masked MCU it is now neutral. For chroma 2 samples wide or less it does not
    interpolate at all. Luminance never differs.
    """
    zone = np.zeros((crop.height, crop.width), bool)
    sx, sy = chroma_factors(layout)
    if sx > 1 and -(-crop.width // sx) <= 2:
        zone[:] = True
    if sx > 1:
        zone[:, 0] |= crop.left > 0
        zone[:, -1] |= crop.right < layout.width
    if sy > 1:
        zone[0, :] |= crop.top > 0
        zone[-1, :] |= crop.bottom < layout.height
    for box in masked:
        b = box.translate(-crop.left, -crop.top)
        dx, dy = int(sx > 1), int(sy > 1)
        zone[max(b.top - dy, 0) : b.bottom + dy, max(b.left - dx, 0) : b.right + dx] = True
    return zone


def recoded(layout: JpegLayout, crop: Box, content: Box) -> np.ndarray:
    """Output pixels of the MCUs re-coded because they hold image pixels outside
    ``content``: its first MCU row/column when it starts off the grid, its last when the
    crop ends inside an MCU before the image's edge."""
    mw, mh = layout.mcu_width, layout.mcu_height
    zone = np.zeros((crop.height, crop.width), bool)
    last_x = (-(-crop.right // mw) - 1) * mw - crop.left
    last_y = (-(-crop.bottom // mh) - 1) * mh - crop.top
    if content.left > crop.left:
        zone[:, :mw] = True
    if content.top > crop.top:
        zone[:mh, :] = True
    if min(layout.width, crop.right + mw) > content.right and crop.right % mw:
        zone[:, last_x:] = True
    if min(layout.height, crop.bottom + mh) > content.bottom and crop.bottom % mh:
        zone[last_y:, :] = True
    return zone


def recode_loss(data: bytes) -> float:
    """Levels a re-coded block's luminance inside the crop may differ by: requantisation
    rounding, which grows with the luminance quantisation steps."""
    return max(24.0, 1.5 * float(np.mean(list(quantisation_tables(data)[0]))))


def assert_same_crop(
    source: bytes,
    cropped: bytes,
    crop: Box,
    masked: list[Box] = (),
    content: Box | None = None,
) -> None:
    """The crop decodes like the source's crop: luma exactly, chroma outside
    ``interpolated``, except in re-coded MCUs, where luma is close inside ``content``
    and every pixel outside it is exactly black."""
    layout = parse_layout(source)
    content = crop if content is None else content
    inside = np.zeros((crop.height, crop.width), bool)
    c = content.translate(-crop.left, -crop.top)
    inside[c.top : c.bottom, c.left : c.right] = True
    redone = recoded(layout, crop, content)
    sx, sy = chroma_factors(layout)
    near = redone.copy()  # chroma beside a re-coded MCU is interpolated from new samples
    for d in range(1, sx if sx > 1 else 0):
        near[:, d:] |= redone[:, :-d]
        near[:, :-d] |= redone[:, d:]
    for d in range(1, sy if sy > 1 else 0):
        near[d:, :] |= redone[:-d, :]
        near[:-d, :] |= redone[d:, :]
    zone = interpolated(layout, crop, masked) | near
    keep = ~zone
    luma_keep = ~redone
    close = redone & inside
    for box in masked:
        b = box.translate(-crop.left, -crop.top)
        keep[b.top : b.bottom, b.left : b.right] = False
        luma_keep[b.top : b.bottom, b.left : b.right] = False
        close[b.top : b.bottom, b.left : b.right] = False
    for mode in ("YCbCr", "RGB"):
        want = decode(source, mode)[crop.top : crop.bottom, crop.left : crop.right]
        got = decode(cropped, mode)
        assert got.shape == want.shape
        assert np.array_equal(got[keep], want[keep]), f"{mode} differs outside the edge lines"
        black = (0, 128, 128) if mode == "YCbCr" and got.ndim == 3 else 0
        assert (got[~inside] == black).all(), f"{mode}: a pixel outside the crop is not black"
        if mode == "YCbCr":
            got_y = (got[..., 0] if got.ndim == 3 else got).astype(int)
            want_y = (want[..., 0] if want.ndim == 3 else want).astype(int)
            assert np.array_equal(got_y[luma_keep], want_y[luma_keep])
            loss = np.abs(got_y[close] - want_y[close])
            assert loss.max(initial=0) <= recode_loss(source)
    assert_no_hidden_content(cropped, crop, content, layout)


def assert_no_hidden_content(cropped: bytes, crop: Box, content: Box, source: JpegLayout) -> None:
    """The padding a decoder hides past the right and bottom edges is black luma too,
    where the crop ends before the source image's edge: decoded with the frame header
    widened to whole MCUs. (At the source's edge it is the encoder's own padding.)"""
    layout = parse_layout(cropped)
    mw, mh = layout.mcu_width, layout.mcu_height
    width, height = -(-crop.width // mw) * mw, -(-crop.height // mh) * mh
    data = bytearray(cropped)
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    luma = decode(bytes(data), "YCbCr")
    luma = luma[..., 0] if luma.ndim == 3 else luma
    assert luma.shape == (height, width)
    c = content.translate(-crop.left, -crop.top)
    outside = np.ones(luma.shape, bool)
    outside[c.top : c.bottom, c.left : c.right] = False
    if crop.right == source.width:
        outside[:, crop.width :] = False
    if crop.bottom == source.height:
        outside[crop.height :, :] = False
    assert not luma[outside].any(), "content hidden in the MCU padding"


def crops_for(layout: JpegLayout) -> list[Box]:
    w, h, mw, mh = layout.width, layout.height, layout.mcu_width, layout.mcu_height
    return [
        Box(0, 0, w, h),  # everything
        Box(13, 7, 150, 120),  # starts off the grid
        Box(40, 30, w, h),  # touches right and bottom edges
        Box(3 * mw, 0, 4 * mw, h),  # one MCU wide
        Box(0, 2 * mh, w, 3 * mh),  # one MCU high
        Box(2 * mw + 5, mh + 1, 2 * mw + 6, mh + 2),  # one pixel
        Box(w - 3, h - 2, w, h),  # inside the last, partial MCU
        Box(mw, mh, w - 1, h - 1),  # ends inside the last MCU
        Box(-20, -20, 60, 50),  # reaches outside the image
    ]


# --- Layout and snapping ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mcu", "sampling"),
    [
        ("444", (8, 8), ((1, 1), (1, 1), (1, 1))),
        ("422", (16, 8), ((2, 1), (1, 1), (1, 1))),
        ("420", (16, 16), ((2, 2), (1, 1), (1, 1))),
        ("grey", (8, 8), ((1, 1),)),
    ],
)
def test_parse_layout_reads_size_mcu_and_sampling(
    name: str, mcu: tuple[int, int], sampling: tuple
) -> None:
    layout = parse_layout(frame(name))
    assert (layout.width, layout.height) == (203, 157)
    assert layout.components == len(sampling)
    assert (layout.mcu_width, layout.mcu_height) == mcu
    assert layout.sampling == sampling


def test_snap_crop_moves_origin_out_to_the_mcu_grid_and_clips() -> None:
    layout = JpegLayout(1200, 800, 3, 16, 8, ((2, 1), (1, 1), (1, 1)))
    assert snap_crop(Box(100, 20, 1124, 788), layout) == Box(96, 16, 1124, 788)
    assert snap_crop(Box(-5, -5, 2000, 900), layout) == Box(0, 0, 1200, 800)
    assert snap_crop(Box(96, 16, 97, 17), layout) == Box(96, 16, 97, 17)
    with pytest.raises(ValueError):
        snap_crop(Box(1300, 0, 1400, 10), layout)


def test_crop_jpeg_refuses_a_crop_that_is_not_snapped() -> None:
    data = frame("422")
    for crop in (Box(5, 0, 50, 50), Box(0, 3, 50, 50), Box(0, 0, 500, 50), Box(16, 8, 16, 50)):
        with pytest.raises(ValueError):
            crop_jpeg(data, crop)


# --- Bit-exact crops ----------------------------------------------------------------------


@both_kernels
@pytest.mark.parametrize("name", LAYOUTS)
def test_crop_decodes_like_the_cropped_source(name: str) -> None:
    source = frame(name)
    layout = parse_layout(source)
    for wanted in crops_for(layout):
        crop = snap_crop(wanted, layout)
        cropped = crop_jpeg(source, crop)
        assert parse_layout(cropped).width == crop.width
        assert parse_layout(cropped).height == crop.height
        assert_same_crop(source, cropped, crop)


@both_kernels
@pytest.mark.parametrize("name", ["444", "grey"])
def test_crop_is_pixel_identical_without_chroma_subsampling_outside_recoded_mcus(name: str) -> None:
    source = frame(name, 251, 199, seed=3)
    layout = parse_layout(source)
    for wanted in crops_for(layout):
        crop = snap_crop(wanted, layout)
        want = decode(source)[crop.top : crop.bottom, crop.left : crop.right]
        keep = ~recoded(layout, crop, crop)  # MCUs holding pixels past the crop are re-coded
        assert np.array_equal(decode(crop_jpeg(source, crop))[keep], want[keep])


@both_kernels
@pytest.mark.parametrize("name", ["422", "420"])
def test_subsampled_chroma_differs_only_on_inner_edge_lines(name: str) -> None:
    source = frame(name, 240, 160, seed=5)
    layout = parse_layout(source)
    crop = snap_crop(Box(48, 32, 192, 128), layout)  # ends on the grid: nothing re-coded
    got = decode(crop_jpeg(source, crop), "YCbCr").astype(int)
    want = decode(source, "YCbCr")[crop.top : crop.bottom, crop.left : crop.right].astype(int)
    assert np.array_equal(got[..., 0], want[..., 0])
    changed = np.argwhere((got != want).any(axis=2))
    assert len(changed)  # the decoder really interpolates across the old neighbours
    edge_rows = {0, crop.height - 1} if name == "420" else set()
    on_edge = [(r, c) for r, c in changed if c in (0, crop.width - 1) or r in edge_rows]
    assert len(on_edge) == len(changed)


@both_kernels
@pytest.mark.parametrize(
    ("quality", "optimize"), [(50, False), (95, False), (100, True), (75, True)]
)
@pytest.mark.parametrize("name", ["422", "420", "grey"])
def test_crop_handles_quality_and_optimised_huffman_tables(
    name: str, quality: int, optimize: bool
) -> None:
    source = frame(name, 190, 130, seed=quality, quality=quality, optimize=optimize)
    layout = parse_layout(source)
    for wanted in (Box(37, 21, 170, 111), Box(16, 16, 190, 130)):
        crop = snap_crop(wanted, layout)
        try:
            cropped = crop_jpeg(source, crop, content=wanted)
        except JpegCropUnsupported as error:
            # Optimised tables may have no free code for a re-coded edge block's symbols;
            # the export then re-encodes that frame.
            assert optimize and "no room" in error.reason
            continue
        assert_same_crop(source, cropped, crop, content=wanted)


@both_kernels
@pytest.mark.parametrize("options", [{"restart_marker_blocks": 3}, {"restart_marker_rows": 1}])
@pytest.mark.parametrize("name", ["422", "grey"])
def test_restart_intervals_are_read_and_not_written(name: str, options: dict[str, int]) -> None:
    source = frame(name, **options)
    assert 0xDD in markers(source)
    layout = parse_layout(source)
    for wanted in crops_for(layout)[:5]:
        crop = snap_crop(wanted, layout)
        cropped = crop_jpeg(source, crop)
        assert 0xDD not in markers(cropped)
        assert not any(b"\xff" + bytes([m]) in cropped for m in range(0xD0, 0xD8))
        assert_same_crop(source, cropped, crop)


@both_kernels
def test_sof1_extended_8bit_is_cropped_and_written_as_baseline() -> None:
    data = bytearray(frame("422"))
    data[data.index(b"\xff\xc0") + 1] = 0xC1
    source = bytes(data)
    layout = parse_layout(source)
    crop = snap_crop(Box(20, 10, 180, 140), layout)
    cropped = crop_jpeg(source, crop)
    assert 0xC0 in markers(cropped) and 0xC1 not in markers(cropped)
    assert_same_crop(source, cropped, crop)


# --- The margin outside the requested crop -------------------------------------------------


@both_kernels
@pytest.mark.parametrize("name", LAYOUTS)
def test_margin_between_the_grid_and_the_requested_crop_decodes_black(name: str) -> None:
    source = frame(name, 203, 157, seed=13)
    layout = parse_layout(source)
    for wanted in crops_for(layout):
        content = wanted.clip(layout.width, layout.height)
        crop = snap_crop(wanted, layout)
        cropped = crop_jpeg(source, crop, content=content)
        assert (parse_layout(cropped).width, parse_layout(cropped).height) == (
            crop.width,
            crop.height,
        )
        assert_same_crop(source, cropped, crop, content=content)


@both_kernels
def test_text_just_above_a_crop_starting_mid_block_does_not_leak() -> None:
    pixels = speckle(160, 120, seed=17)
    pixels[30:35, 20:140] = 255  # a white text line ending 1 px above the crop
    source = encode(pixels, 1, quality=92)
    layout = parse_layout(source)
    wanted = Box(21, 36, 150, 110)  # starts 5 px into its MCU across, 4 px down
    crop = snap_crop(wanted, layout)
    assert (crop.left, crop.top) == (16, 32)
    plain = decode(crop_jpeg(source, crop))
    assert plain[:4, 8:].max() >= 200  # without the margin rule the text comes back
    cropped = crop_jpeg(source, crop, content=wanted)
    assert not decode(cropped)[:4].any() and not decode(cropped)[:, :5].any()
    assert_same_crop(source, cropped, crop, content=wanted)


@both_kernels
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["422", "420", "grey"]),
    wanted=st.builds(
        lambda x, y, w, h: Box(x, y, x + w, y + h),
        st.integers(0, 150),
        st.integers(0, 110),
        st.integers(1, 90),
        st.integers(1, 70),
    ),
    masks=st.lists(
        st.builds(
            lambda x, y, w, h: Box(x, y, x + w, y + h),
            st.integers(0, 200),
            st.integers(0, 150),
            st.integers(1, 60),
            st.integers(1, 40),
        ),
        max_size=2,
    ),
)
def test_any_requested_crop_and_masks_leave_nothing_outside(
    name: str, wanted: Box, masks: list[Box]
) -> None:
    source = frame(name, 211, 163, seed=21)
    layout = parse_layout(source)
    content = wanted.clip(layout.width, layout.height)
    crop = snap_crop(content, layout)
    cropped = crop_jpeg(source, crop, masks, content=content)
    assert_same_crop(source, cropped, crop, masked_mcus(layout, crop, masks), content)


def test_inward_snap_starts_on_the_grid_inside_the_crop() -> None:
    layout = JpegLayout(1200, 800, 3, 16, 8, ((2, 1), (1, 1), (1, 1)))
    assert snap_crop(Box(100, 20, 1124, 788), layout, inward=True) == Box(112, 24, 1124, 788)
    assert snap_crop(Box(96, 16, 500, 300), layout, inward=True) == Box(96, 16, 500, 300)
    # too small to start on the grid inside: snapped out instead
    assert snap_crop(Box(97, 17, 100, 20), layout, inward=True) == Box(96, 16, 100, 20)


# --- Masks --------------------------------------------------------------------------------


def masked_mcus(layout: JpegLayout, crop: Box, masks: list[Box]) -> list[Box]:
    """The masks widened to whole MCUs and limited to the crop."""
    mw, mh = layout.mcu_width, layout.mcu_height
    out = []
    for mask in masks:
        b = mask.intersect(crop)
        if not b.is_empty:
            snapped = Box(
                b.left // mw * mw, b.top // mh * mh, -(-b.right // mw) * mw, -(-b.bottom // mh) * mh
            )
            out.append(snapped.intersect(crop))
    return out


@both_kernels
@pytest.mark.parametrize("name", LAYOUTS)
def test_masked_mcus_decode_black_and_the_rest_is_untouched(name: str) -> None:
    source = frame(name, 230, 170, seed=11)
    layout = parse_layout(source)
    crop = snap_crop(Box(20, 10, 220, 165), layout)
    masks = [
        Box(30, 12, 75, 20),  # off-grid "text"
        Box(60, 15, 90, 40),  # overlaps the first
        Box(200, 100, 260, 200),  # crosses the crop's corner
        Box(0, 0, 5, 5),  # outside the crop: no effect
    ]
    cropped = crop_jpeg(source, crop, masks)
    black = masked_mcus(layout, crop, masks)
    assert_same_crop(source, cropped, crop, black)
    luma = decode(cropped, "YCbCr")
    luma = luma[..., 0] if luma.ndim == 3 else luma
    rgb = decode(cropped)
    sx, sy = chroma_factors(layout)
    for box in black:
        b = box.translate(-crop.left, -crop.top)
        assert not luma[b.top : b.bottom, b.left : b.right].any()
        inner = rgb[b.top + (sy > 1) : b.bottom - (sy > 1), b.left + (sx > 1) : b.right - (sx > 1)]
        assert not inner.any()  # chroma neutral: black in RGB too, exactly


FRAMES = {name: frame(name, 211, 163, seed=21) for name in ("422", "420", "grey")}
boxes = st.builds(
    lambda x, y, w, h: Box(x, y, x + w, y + h),
    st.integers(-10, 200),
    st.integers(-10, 150),
    st.integers(1, 90),
    st.integers(1, 70),
)


@both_kernels
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["422", "420", "grey"]), wanted=boxes, masks=st.lists(boxes, max_size=3)
)
def test_any_crop_and_masks_keep_every_unmasked_pixel(
    name: str, wanted: Box, masks: list[Box]
) -> None:
    source = FRAMES[name]
    layout = parse_layout(source)
    if wanted.clip(layout.width, layout.height).is_empty:
        return
    crop = snap_crop(wanted, layout)
    black = masked_mcus(layout, crop, masks)
    cropped = crop_jpeg(source, crop, masks)
    assert_same_crop(source, cropped, crop, black)
    luma = decode(cropped, "YCbCr")
    luma = luma[..., 0] if luma.ndim == 3 else luma
    for box in black:
        b = box.translate(-crop.left, -crop.top)
        assert not luma[b.top : b.bottom, b.left : b.right].any()


@both_kernels
def test_masks_with_restart_intervals() -> None:
    source = frame("420", restart_marker_blocks=5)
    layout = parse_layout(source)
    crop = snap_crop(Box(10, 10, 200, 150), layout)
    masks = [Box(40, 40, 120, 60), Box(150, 100, 180, 150)]
    cropped = crop_jpeg(source, crop, masks)
    assert_same_crop(source, cropped, crop, masked_mcus(layout, crop, masks))


@both_kernels
def test_mask_outside_the_crop_changes_nothing() -> None:
    source = frame("420")
    layout = parse_layout(source)
    crop = snap_crop(Box(32, 32, 150, 140), layout)
    assert crop_jpeg(source, crop, [Box(0, 0, 30, 30), Box(150, 140, 203, 157)]) == crop_jpeg(
        source, crop
    )


@both_kernels
def test_mask_of_the_whole_crop_gives_a_black_frame() -> None:
    source = frame("422", seed=2)
    layout = parse_layout(source)
    crop = snap_crop(Box(16, 8, 180, 150), layout)
    assert not decode(crop_jpeg(source, crop, [Box(0, 0, 203, 157)])).any()


@both_kernels
@pytest.mark.parametrize("quality", [100, 30])
def test_mask_needing_codes_missing_from_optimised_tables(quality: int) -> None:
    # Quality 100 means Q=1: the black DC is -1024, a size no optimised table of this
    # image holds; the tables get codes appended, the kept blocks' codes unchanged.
    source = frame("422", seed=4, quality=quality, optimize=True)
    layout = parse_layout(source)
    crop = snap_crop(Box(0, 0, 203, 157), layout)
    masks = [Box(48, 40, 80, 56), Box(100, 100, 150, 120)]
    cropped = crop_jpeg(source, crop, masks)
    assert_same_crop(source, cropped, crop, masked_mcus(layout, crop, masks))
    assert not decode(cropped, "YCbCr")[40:56, 48:80, 0].any()


@both_kernels
def test_mask_on_rgb_coded_jpeg_blacks_every_component() -> None:
    source = encode(speckle(120, 90, seed=8), 0, keep_rgb=True)
    assert b"Adobe" in source
    layout = parse_layout(source)
    crop = snap_crop(Box(8, 8, 120, 90), layout)
    cropped = crop_jpeg(source, crop, [Box(16, 16, 40, 40)])
    assert b"Adobe" in cropped
    rgb = decode(cropped)
    assert not rgb[8:32, 8:32].any()
    want = decode(source)[8:90, 8:120]
    outside = np.ones(rgb.shape[:2], bool)
    outside[8:32, 8:32] = False
    assert np.array_equal(rgb[outside], want[outside])


# --- Output structure ---------------------------------------------------------------------


def test_output_is_baseline_without_metadata_segments() -> None:
    exif = Image.Exif()
    exif[0x010E] = "PATIENT NAME 12345"  # ImageDescription
    source = encode(speckle(100, 80), 1, comment=b"DOE^JOHN", exif=exif.tobytes())
    assert b"DOE^JOHN" in source and b"PATIENT NAME" in source
    layout = parse_layout(source)
    cropped = crop_jpeg(source, snap_crop(Box(16, 8, 90, 70), layout))
    assert cropped.startswith(b"\xff\xd8") and cropped.endswith(b"\xff\xd9")
    found = markers(cropped)
    assert found == [0xE0, 0xDB, 0xC0, 0xC4, 0xDA, 0xD9]  # JFIF, DQT, SOF0, DHT, SOS, EOI
    assert b"DOE^JOHN" not in cropped and b"PATIENT NAME" not in cropped
    assert cropped[6:11] == b"JFIF\x00"
    sof = cropped.index(b"\xff\xc0")
    assert struct.unpack_from(">BHH", cropped, sof + 4) == (8, 62, 74)


def quantisation_tables(data: bytes) -> dict[int, bytes]:
    tables = {}
    pos = 2
    while data[pos + 1] != 0xDA:
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if data[pos + 1] == 0xDB:
            body = data[pos + 4 : pos + 2 + length]
            for at in range(0, len(body), 65):
                tables[body[at]] = body[at + 1 : at + 65]
        pos += 2 + length
    return tables


def test_quantisation_tables_are_kept_byte_for_byte() -> None:
    source = frame("420", quality=63)
    layout = parse_layout(source)
    cropped = crop_jpeg(source, snap_crop(Box(16, 16, 100, 100), layout))
    assert quantisation_tables(cropped) == quantisation_tables(source)
    assert len(quantisation_tables(source)) == 2


# --- Refusals -----------------------------------------------------------------------------


def refuses(data: bytes, words: str) -> None:
    with pytest.raises(JpegCropUnsupported) as error:
        parse_layout(data)
    assert words in error.value.reason
    assert isinstance(error.value, Unsupported)


def test_progressive_is_refused() -> None:
    refuses(frame("422", progressive=True), "progressive")


def test_non_jpeg_bytes_are_refused() -> None:
    refuses(b"not a jpeg at all", "not a JPEG")
    png = io.BytesIO()
    Image.new("L", (8, 8)).save(png, "PNG")
    refuses(png.getvalue(), "not a JPEG")
    refuses(b"", "not a JPEG")


@pytest.mark.parametrize(
    ("marker", "words"), [(0xC3, "lossless"), (0xC9, "arithmetic"), (0xC5, "hierarchical")]
)
def test_other_processes_are_refused(marker: int, words: str) -> None:
    data = bytearray(frame("444"))
    sof = data.index(b"\xff\xc0")
    data[sof + 1] = marker
    refuses(bytes(data), words)


def test_twelve_bit_is_refused() -> None:
    data = bytearray(frame("grey"))
    data[data.index(b"\xff\xc0") + 4] = 12
    refuses(bytes(data), "12-bit")


@both_kernels
def test_truncated_frame_is_refused_not_garbled() -> None:
    source = frame("422")
    layout = parse_layout(source)
    with pytest.raises(JpegCropUnsupported):
        crop_jpeg(source[: len(source) // 2], snap_crop(Box(0, 0, 203, 157), layout))
    with pytest.raises(JpegCropUnsupported):
        parse_layout(source[:40])


@both_kernels
def test_scan_missing_restart_intervals_is_refused() -> None:
    source = frame("422", restart_marker_rows=1)
    data = source[: source.index(b"\xff\xd3")] + b"\xff\xd9"  # rows 4 and on are gone
    layout = parse_layout(data)
    with pytest.raises(JpegCropUnsupported, match="fewer restart intervals"):
        crop_jpeg(data, snap_crop(Box(0, 0, layout.width, layout.height), layout))


# --- Real files ---------------------------------------------------------------------------

REAL_JPEG = {
    "jpeg_baseline_34frame.dcm": None,  # every frame
    "jpeg_baseline_65frame.dcm": 13,  # every 13th frame
    "jpeg_baseline_87frame.dcm": 17,
    "philips_jpeg_baseline.dcm": None,
}


def real_frames(path: Path, step: int | None) -> list[bytes]:
    ds = pydicom.dcmread(path)
    count = int(ds.get("NumberOfFrames", 1))
    frames = list(generate_frames(ds.PixelData, number_of_frames=count))
    return frames[:: step or 1]


@both_kernels
@pytest.mark.parametrize("name", sorted(REAL_JPEG))
def test_real_jpeg_baseline_frames_crop_bit_exact(real_dir: Path, name: str) -> None:
    if name not in {p.name for p in real_files()}:
        pytest.skip(f"{name} not present")
    frames = real_frames(real_dir / name, REAL_JPEG[name])
    layout = parse_layout(frames[0])
    w, h = layout.width, layout.height
    crops = [
        snap_crop(b, layout)
        for b in (Box(20, 20, w - 10, h - 10), Box(0, 0, w, h), Box(w // 3, h // 4, w, h))
    ]
    for data in frames:
        assert parse_layout(data) == layout
        for crop in crops:
            assert_same_crop(data, crop_jpeg(data, crop), crop)


@both_kernels
def test_real_jpeg_baseline_frames_mask_to_black(real_dir: Path) -> None:
    frames = [f for name in sorted(REAL_JPEG) for f in real_frames(real_dir / name, 40)[:1]]
    for data in frames:
        layout = parse_layout(data)
        crop = snap_crop(Box(10, 10, layout.width, layout.height), layout)
        masks = [Box(30, 12, 200, 40)]
        cropped = crop_jpeg(data, crop, masks)
        black = masked_mcus(layout, crop, masks)
        assert_same_crop(data, cropped, crop, black)
        b = black[0].translate(-crop.left, -crop.top)
        assert not decode(cropped, "YCbCr")[b.top : b.bottom, b.left : b.right, 0].any()


# --- Compiled and plain kernels -----------------------------------------------------------


def crop_cases(source: bytes) -> list[tuple[Box, list[Box]]]:
    """Crops, unmasked and masked, over the whole frame and inside it."""
    layout = parse_layout(source)
    w, h = layout.width, layout.height
    inner = snap_crop(Box(w // 7, h // 9, w - w // 11, h - 3), layout)
    banner = Box(w // 10, h // 9, w // 2, h // 9 + 2 * layout.mcu_height)
    return [(Box(0, 0, w, h), []), (inner, []), (inner, [banner]), (Box(0, 0, w, h), [banner])]


def outcome(source: bytes, crop: Box, masks: list[Box]) -> bytes | str:
    try:
        return crop_jpeg(source, crop, masks)
    except JpegCropUnsupported as error:
        return error.reason


def assert_kernels_agree(source: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = compiled_kernels()
    for crop, masks in crop_cases(source):
        monkeypatch.setattr(jpeg_kernels, "load", lambda: compiled)
        fast = outcome(source, crop, masks)
        monkeypatch.setattr(jpeg_kernels, "load", lambda: jpeg_kernels.PLAIN)
        assert outcome(source, crop, masks) == fast


@pytest.mark.parametrize(
    "options",
    [
        {"layout": "422"},
        {"layout": "420", "restart_marker_blocks": 7},
        {"layout": "444", "quality": 100, "optimize": True},  # DC codes longer than 16 bits
        {"layout": "grey", "quality": 30},
    ],
)
def test_compiled_and_plain_kernels_write_the_same_bytes(
    options: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = str(options.pop("layout"))
    assert_kernels_agree(frame(name, 331, 245, seed=9, **options), monkeypatch)


def test_compiled_and_plain_kernels_write_the_same_bytes_for_real_files(
    real_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, step in REAL_JPEG.items():
        if (real_dir / name).exists():
            for data in real_frames(real_dir / name, 10 * (step or 1)):
                assert_kernels_agree(data, monkeypatch)


@both_kernels
def test_corrupt_entropy_data_is_refused_or_cropped_never_crashes(
    kernels: jpeg_kernels.Kernels,
) -> None:
    source = frame("422", 160, 120, seed=6)
    layout = parse_layout(source)
    scan = source.index(b"\xff\xda") + 14  # SOS of 3 components: 12 bytes + marker
    rng = np.random.default_rng(1)
    refused = 0
    for _ in range(60):
        data = bytearray(source)
        at = rng.integers(scan, len(source) - 2, 4).tolist()
        data[at[0]] = 0xFF  # a stray marker, or a stuffed byte
        for i in at[1:]:
            data[i] = int(rng.integers(0, 256))
        try:
            cropped = crop_jpeg(bytes(data), snap_crop(Box(16, 8, 150, 110), layout))
        except JpegCropUnsupported:
            refused += 1
        else:
            assert parse_layout(cropped).width == 134
    assert refused


@both_kernels
def test_write_kernel_concatenates_bit_ranges_and_codes(kernels: jpeg_kernels.Kernels) -> None:
    rng = np.random.default_rng(2)
    source = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    source_bits = "".join(f"{b:08b}" for b in source)
    starts, lengths, values, want = [], [], [], ""
    for _ in range(400):
        length = int(rng.integers(0, 49))
        if rng.random() < 0.5:
            value = int(rng.integers(0, 1 << 62)) & ((1 << length) - 1)
            starts.append(-1)
            want += format(value, f"0{length}b") if length else ""
        else:
            length = int(rng.choice([length, rng.integers(0, 300)]))
            start = int(rng.integers(0, 8 * len(source) - length + 1))
            value = 0
            starts.append(start)
            want += source_bits[start : start + length]
        lengths.append(length)
        values.append(value)
    want += "1" * (-len(want) % 8)
    out = np.zeros(len(want) // 8 + 1, np.uint8)
    size = kernels.write(
        kernels.windows(source)[1],
        kernels.ints(starts),
        kernels.ints(lengths),
        kernels.ints(values),
        out,
    )
    assert out[:size].tobytes() == int(want, 2).to_bytes(len(want) // 8, "big")


def test_plain_kernels_run_without_numba_or_when_disabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    assert jpeg_kernels.compiled.__wrapped__() is None
    monkeypatch.setenv("USTUI_JIT", "0")
    jpeg_kernels.load.cache_clear()
    try:
        assert jpeg_kernels.load() is jpeg_kernels.PLAIN
    finally:
        jpeg_kernels.load.cache_clear()


def test_importing_jpeg_crop_leaves_numba_unloaded() -> None:
    code = "import sys, ustui.core.jpeg_crop; print('numba' in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT
    )
    assert found.stdout.strip() == "False"
